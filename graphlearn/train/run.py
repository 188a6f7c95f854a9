"""One-call entry points: train a config into a run directory, reload a finished run.

A config with a ``forward:`` section trains with
:class:`graphlearn.train.forward.trainer.ForwardTrainer` (forward learning),
any other with :class:`graphlearn.train.Trainer` (backpropagation); both write
the same run directory.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch.distributed as dist
from torch import nn

from graphlearn.config import Config
from graphlearn.errors import GraphlearnError
from graphlearn.tasks.base import Task, build_task
from graphlearn.train.rundir import CheckpointError, RunDir
from graphlearn.train.trainer import Trainer, accepted_fingerprints
from graphlearn.train.utils import DistInfo, init_distributed, resolve_device

__all__ = ["default_run_dir", "load_run", "train"]


def run_label(cfg: Config) -> str:
    """The model part of a run's name: ``cfg.model.name``, or ``forward_<variant>``
    (``_layerwise`` added for that schedule) for a forward-learning run."""
    if cfg.forward is not None:
        layerwise = "_layerwise" if cfg.forward.schedule == "layerwise" else ""
        return f"forward_{cfg.forward.variant}{layerwise}"
    assert cfg.model is not None
    return cfg.model.name


def default_run_dir(cfg: Config, base: str | os.PathLike = "runs") -> Path:
    """``runs/<dataset>-<model>-<YYYYmmdd-HHMMSS>``, with ``-2``, ``-3``... if taken
    (``<model>``: :func:`run_label`)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{cfg.data.name}-{run_label(cfg)}-{stamp}")
    path = Path(base) / name
    counter = 2
    while path.exists():
        path = Path(base) / f"{name}-{counter}"
        counter += 1
    return path


def train(cfg: Config, out: str | os.PathLike | None = None, resume: bool = False,
          data: Any = None, progress: bool | None = None,
          log: Callable[[str], None] | None = None, command: Sequence[str] | None = None,
          max_epochs: int | None = None, time_limit_s: float | None = None,
          finish: bool = False) -> tuple[RunDir, dict[str, Any] | None]:
    """Train ``cfg`` into a run directory.

    Args:
        cfg: the resolved config.
        out: the run directory; default ``cfg.out``, else :func:`default_run_dir`.
        resume: continue the run in ``out`` (its config must match ``cfg``).
        data: the dataset object (default: loaded from ``cfg.data``).
        progress, log, command: see :class:`~graphlearn.train.Trainer`.
        max_epochs: stop this session after this many epochs (see ``Trainer.fit``).
        time_limit_s: stop this session before an epoch that would end later than
            this many seconds after this call (loading the data counts; see
            ``Trainer.fit``).
        finish: with ``resume``, train no further: evaluate the checkpoint selected
            so far and write ``final.json`` (``Trainer.fit``).

    Returns:
        ``(run, final)``: the run directory and the content of ``final.json``
        (``None`` when stopped by ``max_epochs`` or ``time_limit_s``).

    The directory is checked before the data is loaded and written only after
    the task and the model have been built, so a bad config or missing data
    leaves nothing behind.

    Under ``torchrun`` (``WORLD_SIZE > 1``) this initialises the default process
    group (gloo on CPU, nccl on CUDA) unless the caller did, and destroys it at
    the end. Rank 0 chooses the run directory, checks it and loads the data
    first (a failure there is raised on every rank); the other ranks follow,
    and only rank 0 writes (see :mod:`graphlearn.train.trainer`). Every rank
    returns the same ``final``. Several nodes need the run directory on a
    shared file system (all ranks read rank 0's checkpoints).
    """
    if finish and not resume:
        raise GraphlearnError("finish=True ends an interrupted run: it needs resume=True")
    called = time.perf_counter()
    info = DistInfo.from_env()
    owns_group = init_distributed(info, resolve_device(cfg.train.device))
    try:
        if out is None:
            out = cfg.out if cfg.out is not None else default_run_dir(cfg)
        if info.distributed:  # rank 0's choice (a default name holds a timestamp)
            box = [str(out)]
            dist.broadcast_object_list(box, src=0)
            out = box[0]
        cfg = dataclasses.replace(cfg, out=str(out))

        def check() -> RunDir:
            run = RunDir.open(out) if resume else RunDir(out)
            if resume:
                run.check_resume(cfg)
            else:
                run.check_new(cfg)
            return run

        run = _main_first(info, check)
        if cfg.forward is not None:  # forward learning: the same run directory and loop
            from graphlearn.train.forward.tasks import build_forward_task
            from graphlearn.train.forward.trainer import ForwardTrainer

            task = build_forward_task(cfg, data)
            trainer: Trainer = ForwardTrainer(task, run, progress=progress, log=log,
                                              command=command)
        else:
            task = _main_first(info, lambda: build_task(cfg, data))
            trainer = Trainer(task, run, progress=progress, log=log, command=command)
        if not resume and info.is_main:
            run.initialize(cfg)
        if time_limit_s is not None:
            time_limit_s -= time.perf_counter() - called
        final = trainer.fit(resume=resume, max_epochs=max_epochs, time_limit_s=time_limit_s,
                            finish=finish)
        if owns_group:
            # every rank is done before any tears the group down: destroying it while
            # another rank is still finishing can hang that rank's exit (pytorch#75097;
            # seen once here under load: the run complete, torchrun still waiting)
            dist.barrier()
        return run, final
    finally:
        if owns_group:
            dist.destroy_process_group()


def _main_first(info: DistInfo, fn: Callable[[], Any]) -> Any:
    """``fn()`` on rank 0, then on the other ranks; a :class:`GraphlearnError` on rank 0
    is raised on every rank (instead of leaving the others waiting)."""
    if not info.distributed:
        return fn()
    result, error = None, None
    if info.is_main:
        try:
            result = fn()
        except GraphlearnError as caught:
            error = caught
    box = [None if error is None else (type(error).__name__, str(error))]
    dist.broadcast_object_list(box, src=0)
    if error is not None:
        raise error
    if box[0] is not None:
        name, message = box[0]
        raise GraphlearnError(f"rank 0 failed ({name}): {message}")
    return result if info.is_main else fn()


def _build_any_task(cfg: Config, data: Any = None) -> Task:
    """The backprop task of ``cfg``, or its forward-learning task when it has ``forward``."""
    if cfg.forward is not None:
        from graphlearn.train.forward.tasks import build_forward_task

        return build_forward_task(cfg, data)
    return build_task(cfg, data)


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
    if state.get("config_sha256") not in accepted_fingerprints(cfg):
        raise CheckpointError(f"{run.checkpoint_path(checkpoint)}: belongs to a run with "
                              f"another config than {run.config_path}")
    task = _build_any_task(cfg, data)
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
