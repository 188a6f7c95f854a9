"""One-call entry points: train a config into a run directory, reload a finished run."""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from graphlearn.config import Config
from graphlearn.tasks.base import Task, build_task
from graphlearn.train.rundir import CheckpointError, RunDir
from graphlearn.train.trainer import Trainer, config_fingerprint
from graphlearn.train.utils import resolve_device

__all__ = ["default_run_dir", "load_run", "train"]


def default_run_dir(cfg: Config, base: str | os.PathLike = "runs") -> Path:
    """``runs/<dataset>-<model>-<YYYYmmdd-HHMMSS>``, with ``-2``, ``-3``... if taken."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{cfg.data.name}-{cfg.model.name}-{stamp}")
    path = Path(base) / name
    counter = 2
    while path.exists():
        path = Path(base) / f"{name}-{counter}"
        counter += 1
    return path


def train(cfg: Config, out: str | os.PathLike | None = None, resume: bool = False,
          data: Any = None, progress: bool | None = None,
          log: Callable[[str], None] | None = None, command: Sequence[str] | None = None,
          max_epochs: int | None = None) -> tuple[RunDir, dict[str, Any] | None]:
    """Train ``cfg`` into a run directory.

    Args:
        cfg: the resolved config.
        out: the run directory; default ``cfg.out``, else :func:`default_run_dir`.
        resume: continue the run in ``out`` (its config must match ``cfg``).
        data: the dataset object (default: loaded from ``cfg.data``).
        progress, log, command: see :class:`~graphlearn.train.Trainer`.
        max_epochs: stop this session after this many epochs (see ``Trainer.fit``).

    Returns:
        ``(run, final)``: the run directory and the content of ``final.json``
        (``None`` when stopped by ``max_epochs``).

    The directory is checked before the data is loaded and written only after
    the task and the model have been built, so a bad config or missing data
    leaves nothing behind.
    """
    if out is None:
        out = cfg.out if cfg.out is not None else default_run_dir(cfg)
    cfg = dataclasses.replace(cfg, out=str(out))
    if resume:
        run = RunDir.open(out)
        run.check_resume(cfg)
    else:
        run = RunDir(out)
        run.check_new(cfg)
    task = build_task(cfg, data)
    trainer = Trainer(task, run, progress=progress, log=log, command=command)
    if not resume:
        run.initialize(cfg)
    return run, trainer.fit(resume=resume, max_epochs=max_epochs)


def load_run(path: str | os.PathLike, checkpoint: str = "best", root: str | None = None,
             data: Any = None) -> tuple[RunDir, Task, nn.Module]:
    """A run's task (data prepared as in training) and model with a checkpoint loaded.

    Args:
        path: the run directory.
        checkpoint: ``"best"`` (the selected model) or ``"last"``.
        root: a data root overriding the run's ``data.root``.
        data: the dataset object (default: loaded from the run's config).

    Raises:
        RunDirError: not a run directory.
        CheckpointError: missing, corrupt or foreign checkpoint.
    """
    run = RunDir.open(path)
    cfg = run.config()
    if root is not None:
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, root=root))
    state = run.load_checkpoint(checkpoint)
    if state.get("config_sha256") != config_fingerprint(cfg):
        raise CheckpointError(f"{run.checkpoint_path(checkpoint)}: belongs to a run with "
                              f"another config than {run.config_path}")
    task = build_task(cfg, data)
    task.to(resolve_device(cfg.train.device))
    model = task.build_model()
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError, TypeError) as error:
        reason = " ".join(str(error).split())[:200]
        raise CheckpointError(f"{run.checkpoint_path(checkpoint)}: model state does not fit "
                              f"the model ({reason})") from None
    model.eval()
    return run, task, model
