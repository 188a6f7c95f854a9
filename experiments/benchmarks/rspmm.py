"""Benchmark of graphlearn.ops.rspmm: time and peak memory per backend.

A thin wrapper over :mod:`graphlearn.ops.bench` (the same as ``graphlearn bench
rspmm``; cases, method and options are documented there). From the repository root::

    python experiments/benchmarks/rspmm.py --json experiments/benchmarks/results/rspmm.json
    python experiments/benchmarks/rspmm.py --cases random --reductions sum,pna --repeats 3
    python experiments/benchmarks/rspmm.py --device cuda --json $OUT/rspmm_cuda.json

fb237_v4 is read from ``../shared/data/kg/grail/fb237_v4/train.txt`` beside the
repository unless ``--fb237`` or ``$GRAPHLEARN_DATA`` says otherwise.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"

if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    if "GRAPHLEARN_DATA" not in os.environ and SHARED_DATA.is_dir():
        os.environ["GRAPHLEARN_DATA"] = str(SHARED_DATA)
    from graphlearn.ops.bench import main

    sys.exit(main())
