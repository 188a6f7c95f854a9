"""Shared helpers of the baseline scripts: the command line, result files, seeding."""

from __future__ import annotations

import json
import os
import platform
import random
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
#: ``../shared/data`` beside the repository (the reference data of DESIGN.md).
DEFAULT_DATA_ROOT = REPO.parent / "shared" / "data"
RESULTS = REPO / "experiments" / "results" / "baselines"


def command_line(script: str | Path | None = None, argv: list[str] | None = None) -> str:
    """The command that runs ``script`` with ``argv``, copy-pasteable from the repository root.

    Defaults to the running process (``sys.argv``); a script calling another
    script's ``main(argv)`` passes both so the record names the call itself.
    """
    path = Path(script if script is not None else sys.argv[0]).resolve()
    args = sys.argv[1:] if argv is None else argv
    try:
        text = str(path.relative_to(REPO))
    except ValueError:
        text = str(path)
    return shlex.join(["python", text, *args])


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a fresh ``torch.Generator`` seeded the same."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` atomically (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=2)
            f.write("\n")
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
