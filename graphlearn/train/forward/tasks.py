"""Forward learning as pipeline tasks: what :class:`ForwardTrainer` needs from a config.

A :class:`ForwardTask` is a :class:`~graphlearn.tasks.base.Task` for a config
with a ``forward:`` section: it loads and splits the data exactly as the
backprop task of the same ``task:`` does, builds the stack of the section
(``backbone``, ``hidden_channels``, ``num_layers``, with the input widths the
variant needs: :func:`~graphlearn.train.forward.build_stack`) and the
variant's objective, and evaluates a stack. One training step is one
full-batch step of the variant (:meth:`ForwardTask.local_losses`);
:class:`~graphlearn.train.forward.trainer.ForwardTrainer` steps every
layer's own optimizer.

* ``task: link`` (:class:`ForwardLinkTask`): the link task's split
  (:func:`~graphlearn.data.link_split.random_link_split` with
  ``data.val_ratio``, ``data.test_ratio``, ``data.split_seed``); metrics
  ``auroc`` and ``ap``, plus every layer's own (``layer0_auroc``, ...).
* ``task: node`` (:class:`ForwardNodeTask`): the node task's split
  (:func:`~graphlearn.tasks.node.prepare_node_data`); metric ``accuracy``, plus
  every layer's own (``layer0_accuracy``, ...; none for ``backprop``).

Under ``schedule: layerwise`` (link ``ff`` and ``sf``; node ``sf``, ``ff-label``
and ``ff-virtual``) the trainer trains one layer at a time: ``begin_stage``
enters it, the detached input of the current layer (and, for validation, the
scores of the layers below) is computed once and cached, the step trains that
layer only, and validation scores the layers trained so far, as
:func:`~graphlearn.train.forward.train_forward` (mean logit) and
:func:`~graphlearn.train.forward.train_forward_node` (summed class scores).

Every random draw of training comes from the trainer's generator (negatives,
SF batches, wrong labels) and the initialisation from ``train.seed``, so a
run reproduces :func:`train_forward` / :func:`train_forward_node` with the
same seed (tested).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar, NamedTuple

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from graphlearn.config import Config
from graphlearn.data.link_split import sample_negative_edges
from graphlearn.errors import ConfigError, GraphlearnError
from graphlearn.metrics.classification import auroc_ap
from graphlearn.registry import Registry
from graphlearn.tasks.base import Task
from graphlearn.tasks.link import link_splits
from graphlearn.tasks.node import accuracy, node_summary, prepare_node_data
from graphlearn.train.forward.core import LayerLocalStack, backward_summed
from graphlearn.train.forward.link import VARIANTS, ForwardConfig, LinkObjective, evaluate_link
from graphlearn.train.forward.node import NODE_VARIANTS, NodeForwardConfig, NodeObjective
from graphlearn.train.forward.variants import build_stack

__all__ = ["BACKBONES", "FORWARD_TASKS", "ForwardBatch", "ForwardLinkTask", "ForwardNodeTask",
           "ForwardTask", "build_forward_task"]

ConvFactory = Callable[[int, int], nn.Module]

#: ``forward.backbone`` -> a factory ``(in_channels, out_channels) -> convolution``.
BACKBONES: Registry[ConvFactory] = Registry("forward-learning backbone")


@BACKBONES.register("gcn")
def _gcn(in_channels: int, out_channels: int) -> nn.Module:
    from torch_geometric.nn import GCNConv

    return GCNConv(in_channels, out_channels)


@BACKBONES.register("sage")
def _sage(in_channels: int, out_channels: int) -> nn.Module:
    from torch_geometric.nn import SAGEConv

    return SAGEConv(in_channels, out_channels)


@BACKBONES.register("gat")
def _gat(in_channels: int, out_channels: int) -> nn.Module:
    from torch_geometric.nn import GATConv

    return GATConv(in_channels, out_channels, heads=1)


@BACKBONES.register("gatv2")
def _gatv2(in_channels: int, out_channels: int) -> nn.Module:
    # GATv2 (Brody et al., ICLR 2022): the attention MLP sees source and target
    # together, so the ranking of a node's neighbours may depend on the node
    # ("dynamic" attention); GAT's ranking is the same for every target.
    from torch_geometric.nn import GATv2Conv

    return GATv2Conv(in_channels, out_channels, heads=1)


class ForwardBatch(NamedTuple):
    """One full-batch training step: its 0-based index, the link negatives ``[2, P]``
    (``None`` when the variant takes none) and the generator the loss draws from."""

    step: int
    neg: Tensor | None
    generator: torch.Generator


class ForwardTask(Task):
    """Base of the forward-learning tasks (module docstring).

    Args:
        cfg: a resolved config with a ``forward`` section; ``cfg.task`` is :attr:`name`.
        data: the dataset object (default: loaded from ``cfg.data``).

    Attributes:
        objective: the variant's objective (link or node).
        stage: the layer being trained under ``schedule: layerwise`` (set by
            :meth:`begin_stage`), ``None`` otherwise and for the final evaluation.
    """

    losses: ClassVar[tuple[str, ...]] = ()

    def __init__(self, cfg: Config, data: Any = None) -> None:
        if cfg.forward is None:
            raise ConfigError("a forward-learning task needs a config with a `forward` section")
        self.fwd = cfg.forward
        self.stage: int | None = None
        self.objective = self.make_objective(cfg)
        super().__init__(cfg, data)

    # -- to implement --------------------------------------------------------------------

    def make_objective(self, cfg: Config) -> LinkObjective | NodeObjective:
        """The variant's objective from ``cfg.forward``."""
        raise NotImplementedError

    def graph(self) -> Data:
        """The training graph (its ``x`` and ``edge_index`` build the heads)."""
        raise NotImplementedError

    def local_losses(self, model: nn.Module, batch: ForwardBatch) -> dict[str, Tensor]:
        """The step's local losses (``"layer<l>"``, heads'); each reaches its own layer."""
        raise NotImplementedError

    def local_step(self, model: nn.Module, batch: ForwardBatch) -> dict[str, Tensor]:
        """The step's local losses with their gradients accumulated into the parameters
        (``backward`` done; the caller zeroes gradients before and steps after); the
        returned losses are detached. Default: :meth:`local_losses`, one backward of
        their sum."""
        return backward_summed(self.local_losses(model, batch))

    # -- model ---------------------------------------------------------------------------

    @property
    def layerwise(self) -> bool:
        return self.fwd.schedule == "layerwise"

    def num_classes(self) -> int | None:
        """Classes of a node task (label-appending variants widen the first layer)."""
        return None

    def model_context(self) -> dict[str, Any]:
        return {"in_channels": int(self.graph().x.size(-1)), "num_classes": self.num_classes()}

    def build_model(self) -> LayerLocalStack:
        """The stack of ``forward.num_layers`` ``forward.backbone`` layers, initialised from
        ``train.seed`` and with the variant's heads (as ``train_forward(reset=True)``)."""
        fwd = self.fwd
        stack = build_stack(BACKBONES.get(fwd.backbone), self.model_context()["in_channels"],
                            [fwd.hidden_channels] * fwd.num_layers, variant=fwd.variant,
                            task=self.name, num_classes=self.num_classes()).to(self.device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.cfg.train.seed)
            stack.heads.clear()
            stack.reset_parameters()
            self.objective.setup(stack, self.graph(), reset=True)
        return stack

    def make_optimizers(self, stack: LayerLocalStack) -> list[torch.optim.Optimizer]:
        """One Adam per layer (first ``L``) and per head part, ``train.lr`` / ``weight_decay``."""
        return stack.make_optimizers(self.cfg.train.lr, self.cfg.train.weight_decay)

    # -- training ------------------------------------------------------------------------

    def num_batches(self) -> int:
        return 1

    def num_examples(self, batch: Any) -> int:
        return 1

    def train_batches(self, epoch: int, generator: torch.Generator) -> Iterator[ForwardBatch]:
        yield ForwardBatch(epoch - 1, None, generator)

    def training_step(self, model: nn.Module, batch: ForwardBatch) -> Tensor:
        """The sum of the local losses (the detached inputs keep each term in its layer)."""
        return torch.stack(list(self.local_losses(model, batch).values())).sum()

    def begin_stage(self, model: nn.Module, stage: int | None) -> None:
        """Enter layer ``stage`` of the layerwise schedule (``None``: the whole stack)."""
        if stage is not None and not self.layerwise:
            raise GraphlearnError(f"schedule {self.fwd.schedule!r} has no stages")
        self.stage = stage

    # -- state ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {"objective": self.objective.state_dict()}

    def load_state_dict(self, state: Any) -> None:
        self.objective.load_state_dict(dict(state.get("objective") or {}))


# ----------------------------------------------------------------------------------------
# link prediction
# ----------------------------------------------------------------------------------------


class ForwardLinkTask(ForwardTask):
    """Forward learning for link prediction (``task: link``; module docstring)."""

    name = "link"
    losses = ("bce",)

    def make_objective(self, cfg: Config) -> LinkObjective:
        fwd = cfg.forward
        assert fwd is not None
        config = ForwardConfig(variant=fwd.variant, schedule=fwd.schedule, theta=fwd.theta,
                               sf_batch_size=fwd.sf_batch_size,
                               ccl_temperature=fwd.ccl_temperature,
                               topdown_iterations=fwd.topdown_iterations)
        return VARIANTS.get(fwd.variant).from_config(config)

    def setup(self, data: Any) -> None:
        self.data = data
        self.num_nodes = int(data.num_nodes)
        self.splits = link_splits(self.cfg, data)
        train = self.splits["train"]
        label = getattr(train, "edge_label", None)
        pos = train.edge_label_index
        self.pos = pos if label is None else pos[:, label > 0.5]  # (2, P)
        if self.pos.size(1) == 0:
            raise GraphlearnError(f"{self.cfg.data.name}: the training split has no edges")
        self._cache: dict[str, tuple[Tensor, Tensor]] = {}

    def graph(self) -> Data:
        return self.splits["train"]

    def to(self, device: torch.device | str) -> ForwardLinkTask:
        super().to(device)
        self.splits = {name: split.to(self.device) for name, split in self.splits.items()}
        self.pos = self.pos.to(self.device)
        self._cache = {}
        return self

    # -- training ------------------------------------------------------------------------

    def train_batches(self, epoch: int, generator: torch.Generator) -> Iterator[ForwardBatch]:
        neg = None
        if self.objective.needs_negatives:  # strict non-edges of the training graph, fresh
            train = self.splits["train"]
            neg = sample_negative_edges(train.edge_index.cpu(), self.num_nodes,
                                        self.pos.size(1), generator).to(self.device)
        yield ForwardBatch(epoch - 1, neg, generator)

    def local_step(self, model: nn.Module, batch: ForwardBatch) -> dict[str, Tensor]:
        if self.stage is None:  # layer by layer, each loss's backward before the next layer
            return self.objective.train_step(model, self.splits["train"], self.pos, batch.neg,
                                             batch.step, batch.generator)
        return super().local_step(model, batch)

    def local_losses(self, model: nn.Module, batch: ForwardBatch) -> dict[str, Tensor]:
        train = self.splits["train"]
        if self.stage is None:
            return self.objective.step_losses(model, train, self.pos, batch.neg, batch.step,
                                              batch.generator)
        h = model.layer_forward(self.stage, self._stage_input("train"), train.edge_index)
        return {f"layer{self.stage}": self.objective.loss(h, self.pos, batch.neg,
                                                          batch.generator)}

    def begin_stage(self, model: nn.Module, stage: int | None) -> None:
        super().begin_stage(model, stage)
        self._model = model
        self._cache = {}

    def _stage_input(self, split: str) -> Tensor:
        return self._stage_cache(split)[0]

    @torch.no_grad()
    def _stage_cache(self, split: str) -> tuple[Tensor, Tensor]:
        """``(input of layer stage [N, d], summed logits of the layers below [M])`` on
        ``split``'s message graph and target pairs, computed once per stage."""
        if split not in self._cache:
            assert self.stage is not None
            part, model = self.splits[split], self._model
            was_training = model.training
            model.eval()
            x = part.x
            pairs = getattr(part, "edge_label_index", None)
            prefix = torch.zeros(0 if pairs is None else pairs.size(1), device=self.device)
            for index in range(self.stage):
                x = model.layer_forward(index, x, part.edge_index)  # (N, d_index)
                if split != "train":
                    prefix = prefix + self.objective.logits(x, pairs)
            model.train(was_training)
            self._cache[split] = (x, prefix)
        return self._cache[split]

    # -- evaluation ----------------------------------------------------------------------

    def metric_names(self) -> list[str]:
        return ["auroc", "ap"]

    def has_split(self, split: str) -> bool:
        return split in ("valid", "test") and self.splits[split].edge_label.numel() > 0

    @torch.no_grad()
    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        if split not in ("valid", "test"):
            raise ConfigError(f"cannot evaluate on split {split!r} (valid: valid, test)")
        part = self.splits[split]
        if self.stage is None:
            result = evaluate_link(model, part, self.objective)
            out = {"auroc": result["auroc"], "ap": result["ap"]}
            for index, layer in enumerate(result["per_layer"]):
                out.update({f"layer{index}_{k}": v for k, v in layer.items()})
            return out
        # layerwise: the mean logit of the layers trained so far (train_forward's selection)
        x, prefix = self._stage_cache(split)
        logits = self.objective.logits(model.layer_forward(self.stage, x, part.edge_index),
                                       part.edge_label_index)
        out = auroc_ap((prefix + logits) / (self.stage + 1), part.edge_label)
        out.update({f"layer{self.stage}_{k}": v
                    for k, v in auroc_ap(logits, part.edge_label).items()})
        return out

    def summary(self) -> dict[str, Any]:
        sizes = {name: int(split.edge_label.sum()) if name != "train"
                 else int(self.pos.size(1)) for name, split in self.splits.items()}
        return {"dataset": self.cfg.data.name, "nodes": self.num_nodes,
                "features": int(self.data.x.size(1)), "positive_edges": sizes}


# ----------------------------------------------------------------------------------------
# node classification
# ----------------------------------------------------------------------------------------


class ForwardNodeTask(ForwardTask):
    """Forward learning for node classification (``task: node``; module docstring)."""

    name = "node"
    losses = ("ce",)

    def make_objective(self, cfg: Config) -> NodeObjective:
        fwd = cfg.forward
        assert fwd is not None
        config = NodeForwardConfig(variant=fwd.variant, schedule=fwd.schedule, theta=fwd.theta,
                                   ccl_temperature=fwd.ccl_temperature,
                                   topdown_iterations=fwd.topdown_iterations,
                                   label_context=fwd.label_context,
                                   class_members=fwd.class_members)
        return NODE_VARIANTS.get(fwd.variant).from_config(config)

    def setup(self, data: Any) -> None:
        self.data = prepare_node_data(self.cfg, data)
        self._num_classes = int(self.data.y.max()) + 1
        self._cache: tuple[list[tuple[Tensor, Tensor]], Tensor] | None = None

    def num_classes(self) -> int | None:
        return self._num_classes

    def graph(self) -> Data:
        return self.data

    def to(self, device: torch.device | str) -> ForwardNodeTask:
        super().to(device)
        self.data = self.data.to(self.device)
        self._cache = None
        return self

    def local_losses(self, model: nn.Module, batch: ForwardBatch) -> dict[str, Tensor]:
        if self.stage is None:
            return self.objective.step_losses(model, self.data, batch.step, batch.generator)
        outputs = [model.layer_forward(self.stage, x, edge_index)
                   for x, edge_index in self._stage_cache()[0]]
        return {f"layer{self.stage}": self.objective.layer_loss(outputs, self.data,
                                                                batch.generator)}

    def local_step(self, model: nn.Module, batch: ForwardBatch) -> dict[str, Tensor]:
        if self.stage is None:
            return self.objective.train_step(model, self.data, batch.step, batch.generator)
        return super().local_step(model, batch)

    def begin_stage(self, model: nn.Module, stage: int | None) -> None:
        super().begin_stage(model, stage)
        self._model = model
        self._cache = None

    @torch.no_grad()
    def _stage_cache(self) -> tuple[list[tuple[Tensor, Tensor]], Tensor]:
        """``(the passes' inputs of layer stage, summed class scores [N, C] of the layers
        below)``, computed once per stage."""
        if self._cache is None:
            assert self.stage is not None
            model, data = self._model, self.data
            was_training = model.training
            model.eval()
            passes = self.objective.passes(model, data)
            prefix = torch.zeros(data.y.size(0), self._num_classes, device=self.device)
            for index in range(self.stage):
                passes, scores = self.objective.next_passes(model, index, passes, data)
                prefix = prefix + scores
            model.train(was_training)
            self._cache = (passes, prefix)
        return self._cache

    def metric_names(self) -> list[str]:
        return ["accuracy"]

    def has_split(self, split: str) -> bool:
        mask = {"valid": "val_mask", "test": "test_mask"}.get(split)
        return mask is not None and bool(getattr(self.data, mask).any())

    @torch.no_grad()
    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        mask = {"valid": self.data.val_mask, "test": self.data.test_mask}.get(split)
        if mask is None:
            raise ConfigError(f"cannot evaluate on split {split!r} (valid: valid, test)")
        was_training = model.training
        model.eval()
        try:
            if self.stage is not None:  # layerwise: the layers trained so far
                passes, prefix = self._stage_cache()
                layer = self.objective.layer_scores(
                    [model.layer_forward(self.stage, x, ei) for x, ei in passes], self.data)
                scores, per_layer = prefix + layer, {self.stage: layer}
            else:
                scores, layers = self.objective.class_scores(model, self.data)
                per_layer = dict(enumerate(layers))
        finally:
            model.train(was_training)
        y = self.data.y
        out = {"accuracy": accuracy(scores, y, mask)}
        out.update({f"layer{index}_accuracy": accuracy(s, y, mask)
                    for index, s in per_layer.items()})
        return out

    def summary(self) -> dict[str, Any]:
        return node_summary(self.cfg, self.data)


#: ``cfg.task`` -> its forward-learning task.
FORWARD_TASKS: dict[str, type[ForwardTask]] = {"link": ForwardLinkTask, "node": ForwardNodeTask}


def build_forward_task(cfg: Config, data: Any = None) -> ForwardTask:
    """The forward-learning task of ``cfg`` (it must have a ``forward`` section)."""
    if cfg.forward is None:
        raise ConfigError("build_forward_task: the config has no `forward` section")
    if cfg.task not in FORWARD_TASKS:
        raise ConfigError(f"forward learning is implemented for tasks "
                          f"{', '.join(FORWARD_TASKS)}, not {cfg.task!r}")
    return FORWARD_TASKS[cfg.task](cfg, data)
