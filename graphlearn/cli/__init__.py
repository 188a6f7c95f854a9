"""The ``graphlearn`` command line: a thin layer over the library.

Every user-facing error (:class:`graphlearn.errors.GraphlearnError`) is printed
as one line on stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from graphlearn import __version__
from graphlearn.cli import bench as bench_commands
from graphlearn.cli import data as data_commands
from graphlearn.cli import train as train_commands
from graphlearn.errors import GraphlearnError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphlearn",
        description="Link prediction and recommendation on graphs.",
    )
    parser.add_argument("--version", action="version", version=f"graphlearn {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    data_commands.add_parser(commands)
    bench_commands.add_parser(commands)
    train_commands.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except GraphlearnError as error:
        message = " ".join(str(error).split())
        print(f"graphlearn: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("graphlearn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
