"""Small helpers of the trainer: device, optimizer, seeds, provenance, process facts."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from graphlearn import allocator
from graphlearn.config import TrainConfig
from graphlearn.errors import GraphlearnError

__all__ = ["DistInfo", "git_commit", "init_distributed", "machine_info", "make_optimizer",
           "peak_memory_mb", "resolve_device"]


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``"cuda"`` without CUDA is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise GraphlearnError("train.device is 'cuda' but CUDA is not available "
                              "(use train.device=auto or cpu)")
    return torch.device(name)


def make_optimizer(cfg: TrainConfig, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    """The optimizer of ``train.optimizer`` with ``train.lr`` and ``train.weight_decay``."""
    params = [p for p in params if p.requires_grad]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adagrad":
        return torch.optim.Adagrad(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def peak_memory_mb() -> float:
    """Peak resident set size of this process so far, in MiB (``getrusage`` max RSS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes vs KiB


def git_commit(path: str | os.PathLike | None = None) -> str | None:
    """``HEAD`` of the git checkout holding ``path`` (default: this package), with
    ``+dirty`` when tracked files have changes; ``None`` outside a checkout."""
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], check=True,
                              capture_output=True, text=True, timeout=10).stdout.strip()
        status = subprocess.run(["git", "-C", str(where), "status", "--porcelain",
                                 "--untracked-files=no"], check=True, capture_output=True,
                                text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if status else "") if head else None


def machine_info(device: torch.device) -> dict[str, Any]:
    """Host, OS, Python, CPU count, torch threads and the accelerator, for ``final.json``."""
    info: dict[str, Any] = {
        "host": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "allocator": allocator.state(),
    }
    if device.type == "cuda":
        info["cuda_device"] = torch.cuda.get_device_name(device)
    return info


@dataclass(frozen=True)
class DistInfo:
    """The process's place in a distributed run (``torchrun`` sets the variables).

    ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (default ``0``, ``1``, ``0``: a
    single process). With ``world_size > 1``, :func:`graphlearn.train.train`
    initialises the process group (:func:`init_distributed`: gloo on CPU, nccl on
    CUDA), the trainer wraps the model in DistributedDataParallel, passes
    ``rank`` / ``world_size`` to the task (see :mod:`graphlearn.tasks.base`), and
    only ``rank == 0`` writes the run directory (:attr:`is_main`).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_env(cls) -> DistInfo:
        try:
            world_size = int(os.environ.get("WORLD_SIZE", "1"))
            rank = int(os.environ.get("RANK", "0"))
            local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        except ValueError as error:
            raise GraphlearnError(f"bad distributed environment variable ({error})") from None
        if world_size < 1 or not 0 <= rank < world_size or local_rank < 0:
            raise GraphlearnError(f"bad distributed environment: RANK={rank}, "
                                  f"WORLD_SIZE={world_size}, LOCAL_RANK={local_rank}")
        return cls(rank, world_size, local_rank)

    def device(self, device: torch.device) -> torch.device:
        """``device`` for this process: ``cuda:LOCAL_RANK`` for CUDA under ``torchrun``."""
        if self.distributed and device.type == "cuda" and device.index is None:
            return torch.device("cuda", self.local_rank)
        return device


def init_distributed(info: DistInfo, device: torch.device) -> bool:
    """Initialise the default process group for ``info`` (gloo on CPU, nccl on CUDA).

    Returns whether this call initialised it (``False``: a single process, or a
    group the caller already initialised), i.e. whether the caller should
    :func:`torch.distributed.destroy_process_group` at the end.
    """
    import torch.distributed as dist

    if not info.distributed or dist.is_initialized():
        return False
    if not dist.is_available():
        raise GraphlearnError("torch.distributed is not available in this PyTorch build")
    device = info.device(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world_size)
    return True
