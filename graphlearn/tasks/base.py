r"""The task interface: what the trainer needs from a kind of problem.

A **task** turns a :class:`~graphlearn.config.Config` into everything
problem-specific: the data and its split, the model's constructor arguments,
training batches (with their negatives), the loss of a batch and the
evaluation protocol. The trainer (:class:`graphlearn.train.Trainer`) is generic:
it only runs epochs, steps the optimizer, evaluates, selects, stops early and
checkpoints, calling the task for everything else.

One task per ``cfg.task`` value, registered in :data:`TASKS`
(``"recommendation"``, ``"kg"``, ``"link"``, ``"node"`` and ``"ogbl"``). A task subclass implements:

=================================  ======================================================
method                             contract
=================================  ======================================================
``setup(data)``                    preprocess the loaded dataset (filters, split,
                                   sampler tables, evaluation ground truth and
                                   filters). Called once by ``__init__``; ``data`` is
                                   what :meth:`load_data` returned (or what the caller
                                   passed, for tests and the Python API).
``model_context()``                the constructor arguments the data decides
                                   (``num_users``, ``num_entities``, a graph, ...):
                                   :meth:`build_model` passes those the model's
                                   constructor accepts, plus ``cfg.model.params``.
``train_batches(epoch, generator)``  an iterator over the epoch's training batches,
                                   negatives included. **All randomness comes from**
                                   ``generator`` (a CPU ``torch.Generator`` owned and
                                   checkpointed by the trainer), so a resumed run
                                   draws exactly what an uninterrupted one draws.
                                   Batches may stay on the CPU; ``training_step`` moves
                                   them.
``num_batches()``                  how many batches ``train_batches`` yields (the
                                   progress bar's total).
``num_examples(batch)``            the batch's number of training examples (positives),
                                   for the throughput shown in the progress bar; the
                                   default reads the first tensor's first dimension.
``training_step(model, batch)``    the scalar loss of one batch (the trainer calls
                                   ``backward`` and steps the optimizer). The loss
                                   (``cfg.train.loss``: BPR, BCE with self-adversarial
                                   weights, ...) and any model regulariser are the
                                   task's business.
``evaluate(model, split)``         ``{metric name: float}`` on ``"valid"`` or ``"test"``,
                                   with the task's protocol (filtered ranking, full
                                   ranking with seen items masked, AUROC, ...); called
                                   with the model in eval mode under ``no_grad``.
``metric_names()``                 every key :meth:`evaluate` returns, so a bad
                                   ``train.metric`` fails before training.
=================================  ======================================================

and may override :meth:`higher_is_better` (default: every metric except ``mr``
and names ending in ``loss``), :meth:`has_split` (e.g. no validation split),
:meth:`to` (move the task's tensors to the training device), :meth:`summary`
(dataset statistics for ``final.json``), :meth:`evaluation_sample` (the split's
evaluation as resampling units, for bootstrap confidence intervals; link, kg,
ogbl and recommendation),
and :meth:`state_dict` /
:meth:`load_state_dict` (any task state that changes during training and must
survive a resume; none by default).

Class attributes: ``name`` (the ``cfg.task`` value) and ``losses`` (the
``cfg.train.loss`` values the task implements; anything else is a config error
before any data is loaded), ``uses_adversarial_temperature`` (whether
``train.adversarial_temperature`` means anything to the task), ``allows_one_vs_all``
(whether ``train.num_negative: 0``, 1-vs-all training, is implemented; otherwise
it is a config error), ``uses_negative_mode`` (whether ``train.negative_mode``
means anything to the task).

Distributed training (``torchrun``, see :mod:`graphlearn.train.trainer`): the
trainer sets :attr:`Task.rank` and :attr:`Task.world_size` and passes the
*unwrapped* model to ``training_step`` and ``evaluate`` (DistributedDataParallel
wraps the trainer's step, not the model), so model attributes such as
``uses_graph`` read as in a single process. A task that sets
``supports_distributed = True`` (recommendation, kg, link and ogbl; not node) then

* yields only its rank's share of each of the epoch's batches from
  ``train_batches`` (:meth:`Task.shard`: contiguous, sized as
  ``tensor_split``), drawing the *global* permutation and negatives from the
  shared generator first (every rank holds the same generator state), so the
  union of the ranks' shards is the single-process batch and the generator
  stays in step on every rank; ``num_batches`` stays the global count;
* returns a loss that is a mean over the ``num_examples(batch)`` examples of
  its share (the trainer weights it by the share's size, so the averaged
  gradient is the global batch's), and keeps everything else of the global
  batch that the loss depends on (e.g. a graph model's message graph loses the
  answer edges of the *whole* batch, not only of the share);
* in ``evaluate``, scores its share of the queries (a disjoint, contiguous
  slice: no padding duplicates) and combines the ranks' results exactly once:
  either an all-reduce of the per-query sums and counts before dividing
  (recommendation), or an all-gather of the per-query values in rank order
  (:meth:`Task.gather`: KG ranks, link scores) before computing the metrics,
  so every rank returns the same, single-process metrics.

Under ``WORLD_SIZE > 1`` a task with ``supports_distributed = False`` (the
default, e.g. a new task) is a :class:`~graphlearn.errors.ConfigError` when
constructed.
"""

from __future__ import annotations

import math
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import torch
import torch.distributed as dist
from torch import Tensor, nn

from graphlearn.config import Config
from graphlearn.errors import ConfigError, GraphlearnError
from graphlearn.metrics.bootstrap import EvaluationSample
from graphlearn.registry import Registry, did_you_mean

__all__ = ["TASKS", "Task", "build_task"]

#: Task classes by ``cfg.task`` name.
TASKS: Registry[type[Task]] = Registry("task")


class Task(ABC):
    """Base class of the tasks (see the module docstring for the contract).

    Args:
        cfg: the resolved run config (its ``task`` must be this task's ``name``).
        data: the dataset object; default: loaded by :meth:`load_data` from
            ``cfg.data`` (fetched if missing and ``cfg.data.download``).

    Raises:
        ConfigError: a loss or option the task does not implement.
    """

    name: ClassVar[str] = ""
    losses: ClassVar[tuple[str, ...]] = ()
    uses_adversarial_temperature: ClassVar[bool] = False
    allows_one_vs_all: ClassVar[bool] = False
    uses_negative_mode: ClassVar[bool] = False
    supports_distributed: ClassVar[bool] = False

    def __init__(self, cfg: Config, data: Any = None) -> None:
        if cfg.task != self.name:
            raise ConfigError(f"config task {cfg.task!r} given to the {self.name!r} task")
        self.cfg = cfg
        self.device = torch.device("cpu")
        self.rank = 0
        self.world_size = 1
        world_size = os.environ.get("WORLD_SIZE", "1")
        if world_size.isdigit() and int(world_size) > 1 and not self.supports_distributed:
            able = ", ".join(n for n in TASKS.names() if TASKS.get(n).supports_distributed)
            raise ConfigError(f"WORLD_SIZE={world_size}: task {self.name!r} does not implement "
                              f"distributed training (supports_distributed is False; tasks "
                              f"that do: {able or 'none'}); run a single process")
        self.check_config(cfg)
        self.setup(self.load_data() if data is None else data)

    # -- configuration -----------------------------------------------------------------

    def check_config(self, cfg: Config) -> None:
        """Reject options the task would silently ignore. Extend in subclasses."""
        if cfg.train.loss not in self.losses:
            raise ConfigError(f"train.loss {cfg.train.loss!r} is not implemented by task "
                              f"{self.name!r} (valid: {', '.join(self.losses)})")
        if cfg.train.adversarial_temperature is not None \
                and not self.uses_adversarial_temperature:
            raise ConfigError(f"train.adversarial_temperature is not used by task "
                              f"{self.name!r}; remove it")
        if cfg.train.num_negative == 0 and not self.allows_one_vs_all:
            raise ConfigError(f"train.num_negative 0 (1-vs-all) is not implemented by task "
                              f"{self.name!r}; set it to 1 or more")
        if cfg.train.negative_mode is not None and not self.uses_negative_mode:
            raise ConfigError(f"train.negative_mode is not used by task {self.name!r} "
                              f"(only by 'link'); remove it")
        if cfg.train.num_workers != 0:
            raise ConfigError(f"train.num_workers: task {self.name!r} builds its batches "
                              f"in-process from tensors; set it to 0")

    def load_data(self) -> Any:
        """The dataset named by ``cfg.data`` (:func:`graphlearn.data.registry.load_dataset`)."""
        from graphlearn.data.registry import load_dataset

        data = self.cfg.data
        return load_dataset(data.name, root=data.root, download=data.download)

    @abstractmethod
    def setup(self, data: Any) -> None:
        """Preprocess the dataset: filters, split, samplers, evaluation sets."""

    # -- model ---------------------------------------------------------------------------

    @abstractmethod
    def model_context(self) -> dict[str, Any]:
        """Constructor arguments decided by the data (see module docstring)."""

    def build_model(self) -> nn.Module:
        """The model named by ``cfg.model`` on :attr:`device`, via the model registry."""
        from graphlearn.models import build_model

        model = build_model(self.cfg.model.name, self.cfg.model.params, **self.model_context())
        return model.to(self.device)

    def to(self, device: torch.device | str) -> Task:
        """Move the task's tensors used in training and evaluation to ``device``."""
        self.device = torch.device(device)
        return self

    # -- distributed ---------------------------------------------------------------------

    def shard(self, n: int) -> slice:
        """This rank's contiguous share of ``n`` items (the whole range in a single process).

        The split of ``torch.tensor_split``: the first ``n % world_size`` ranks get
        one item more; a rank's share may be empty when ``n < world_size``.
        """
        size, extra = divmod(n, self.world_size)
        start = self.rank * size + min(self.rank, extra)
        return slice(start, start + size + (1 if self.rank < extra else 0))

    def gather(self, part: Tensor) -> Tensor:
        """Every rank's ``part`` concatenated along dim 0 in rank order, on every rank.

        The parts may differ in length along dim 0 (one all-gather of the lengths,
        then one of the parts padded to the longest); with one process, or no
        process group, ``part`` itself. The result is on ``part``'s device.
        """
        if self.world_size == 1 or not dist.is_initialized():
            return part
        device = self.device if self.device.type == "cuda" else torch.device("cpu")
        local = part.to(device)
        length = torch.tensor([local.size(0)], dtype=torch.long, device=device)
        lengths = [torch.empty_like(length) for _ in range(self.world_size)]
        dist.all_gather(lengths, length)
        sizes = [int(x) for x in torch.cat(lengths).cpu()]
        longest = max(sizes)
        padded = local.new_zeros((longest, *local.shape[1:]))
        padded[:local.size(0)] = local
        parts = [torch.empty_like(padded) for _ in range(self.world_size)]
        dist.all_gather(parts, padded)
        return torch.cat([p[:size] for p, size in zip(parts, sizes)]).to(part.device)

    # -- training ------------------------------------------------------------------------

    @abstractmethod
    def train_batches(self, epoch: int, generator: torch.Generator) -> Iterator[Any]:
        """The batches of epoch ``epoch`` (1-based), every random draw from ``generator``."""

    @abstractmethod
    def num_batches(self) -> int:
        """How many batches :meth:`train_batches` yields per epoch."""

    def num_examples(self, batch: Any) -> int:
        """Training examples in ``batch``; default: the first dimension of its first tensor."""
        first = batch[0] if isinstance(batch, (tuple, list)) else batch
        return int(first.size(0)) if isinstance(first, Tensor) else 1

    @abstractmethod
    def training_step(self, model: nn.Module, batch: Any) -> Tensor:
        """The scalar loss of ``batch``."""

    # -- evaluation ----------------------------------------------------------------------

    @abstractmethod
    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        """Metrics of ``model`` on ``split`` (``"valid"`` or ``"test"``)."""

    def evaluation_sample(self, model: nn.Module, split: str) -> EvaluationSample:
        """``split``'s evaluation of ``model`` as resampling units, for bootstrap
        confidence intervals (:mod:`graphlearn.metrics.bootstrap`); its statistic on
        every unit gives :meth:`evaluate`'s metrics. Tasks without one raise."""
        raise GraphlearnError(f"task {self.name!r} does not support bootstrap intervals "
                              "(supported: link, kg, ogbl, recommendation)")

    @abstractmethod
    def metric_names(self) -> list[str]:
        """Every key :meth:`evaluate` returns."""

    def higher_is_better(self, metric: str) -> bool:
        """Whether a larger value of ``metric`` is better (``mr`` and ``*loss`` are not)."""
        base = metric.split("@", 1)[0]
        return not (base == "mr" or base.endswith("loss"))

    def has_split(self, split: str) -> bool:
        """Whether the data has a non-empty ``split``; default: always."""
        return True

    def check_metric(self, metric: str) -> None:
        """Fail early when ``metric`` is not among :meth:`metric_names`."""
        names = self.metric_names()
        if metric not in names:
            raise ConfigError(f"train.metric {metric!r} is not reported by task {self.name!r}"
                              f"{did_you_mean(metric, names)} (valid: {', '.join(names)})")

    def improved(self, metric: str, value: float, best: float | None) -> bool:
        """Whether ``value`` is strictly better than ``best`` (``None``: nothing yet)."""
        if math.isnan(value):
            return False
        if best is None:
            return True
        return value > best if self.higher_is_better(metric) else value < best

    # -- reporting and state ---------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """Facts about the prepared data for ``final.json`` (sizes of the splits, ...)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Task state to checkpoint (tensors and plain containers only); none by default."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        if state:
            raise ValueError(f"task {self.name!r} has no state, got keys {sorted(state)}")


def build_task(cfg: Config, data: Any = None) -> Task:
    """The task of ``cfg.task``, with its data loaded (or ``data`` when given)."""
    import graphlearn.tasks  # noqa: F401  (registers the built-in tasks)

    return TASKS.get(cfg.task)(cfg, data)
