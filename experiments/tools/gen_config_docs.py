"""Write docs/config.md, the config reference, from graphlearn/config.py.

    python experiments/tools/gen_config_docs.py          # rewrite docs/config.md
    python experiments/tools/gen_config_docs.py --check  # exit 1 if it is out of date

``tests/test_config.py`` fails when the committed file differs from the generated text.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from graphlearn.config import config_reference_markdown

DOCS = Path(__file__).resolve().parents[2] / "docs" / "config.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="only check that the file is up to date (exit 1 if not)")
    parser.add_argument("--output", type=Path, default=DOCS, help=f"default: {DOCS}")
    args = parser.parse_args(argv)
    text = config_reference_markdown()
    current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
    if args.check:
        if current != text:
            print(f"{args.output} is out of date; run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    if current != text:
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
