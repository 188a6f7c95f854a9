"""``graphlearn bench rspmm``: time and peak memory of each ``rspmm`` backend.

A thin layer over :mod:`graphlearn.ops.bench` (same options as
``python -m graphlearn.ops.bench``)::

    graphlearn bench rspmm --json runs/bench_rspmm.json
    graphlearn bench rspmm --cases random --reductions sum,pna --repeats 3
    graphlearn bench rspmm --device cuda --cases random,fb237_v4 --json $OUT/rspmm_cuda.json
"""

from __future__ import annotations

import argparse


def add_parser(commands: argparse._SubParsersAction) -> None:
    from graphlearn.ops.bench import add_arguments

    bench = commands.add_parser("bench", help="benchmark the fused kernels")
    sub = bench.add_subparsers(dest="bench_command", metavar="KERNEL", required=True)
    rspmm = sub.add_parser(
        "rspmm",
        help="generalized relational SpMM: time and peak memory per backend",
        description="Time (best of --repeats) and peak memory of forward and forward+backward "
                    "of graphlearn.ops.rspmm per backend, each in fresh subprocesses; ratios "
                    "against the reference of the same run.",
    )
    add_arguments(rspmm)
    rspmm.set_defaults(run=run_rspmm)


def run_rspmm(args: argparse.Namespace) -> int:
    from graphlearn.ops.bench import run_from_args

    run_from_args(args, out=lambda line: print(line, flush=True))
    return 0
