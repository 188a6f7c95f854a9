"""Transductive node classification on one homogeneous graph (``task: node``).

Data
----
A graph with features ``x [N, F]``, ``edge_index [2, E]`` and labels ``y [N]``
(Planetoid Cora / CiteSeer / PubMed: ``graphlearn data list``). The split
(:func:`~graphlearn.data.node_split.node_split`) is ``data.split: public``, the
dataset's own masks (Planetoid: 20 labelled nodes per class, 500 validation,
1000 test), or ``data.split: random``, a seeded random node split by
``data.val_ratio`` / ``data.test_ratio`` (e.g. ``0.16`` / ``0.20``: 64/16/20)
with ``data.split_seed`` (null: 0). The message graph is always the whole
graph; only the labels of training nodes are read in training.

Training (backpropagation, a ``model:``)
----------------------------------------
Full batch: one step per epoch; the model is called as ``model(x, edge_index)``
and returns class logits ``[N, C]`` (it receives ``in_channels``,
``num_classes`` and ``num_nodes`` from the data); the loss is the softmax
cross-entropy over the training nodes (``train.loss: ce``).

Forward learning (a ``forward:`` section) runs through
:class:`graphlearn.train.forward.ForwardTrainer` on the same data and split.

Evaluation
----------
``accuracy`` on the split's nodes (argmax of the logits).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data

from graphlearn.config import Config
from graphlearn.data.node_split import node_split
from graphlearn.errors import ConfigError, GraphlearnError
from graphlearn.tasks.base import TASKS, Task

__all__ = ["NodeTask", "prepare_node_data"]

_MASK = {"train": "train_mask", "valid": "val_mask", "test": "test_mask"}


def prepare_node_data(cfg: Config, data: Any) -> Data:
    """``data`` with ``cfg.data.split``'s masks (a copy); checks labels and the training set."""
    d = cfg.data
    if not isinstance(data, Data):
        raise ConfigError(f"{d.name}: task 'node' needs a homogeneous graph (PyG Data), got "
                          f"{type(data).__name__}")
    seed = 0 if d.split_seed is None else d.split_seed
    out = node_split(data, d.split, val_ratio=d.val_ratio, test_ratio=d.test_ratio, seed=seed)
    if not bool(out.train_mask.any()):
        raise GraphlearnError(f"{d.name}: the training split has no node")
    if int(out.y.max()) < 1:
        raise GraphlearnError(f"{d.name}: node classification needs at least two classes")
    return out


@TASKS.register("node")
class NodeTask(Task):
    """Node classification (module docstring).

    Attributes (after setup):
        data: the graph with ``train_mask`` / ``val_mask`` / ``test_mask``.
        num_classes: ``max(y) + 1``.
    """

    name = "node"
    losses = ("ce",)

    def setup(self, data: Any) -> None:
        self.data = prepare_node_data(self.cfg, data)
        self.num_classes = int(self.data.y.max()) + 1

    def to(self, device: torch.device | str) -> NodeTask:
        super().to(device)
        self.data = self.data.to(self.device)
        return self

    # -- model ---------------------------------------------------------------------------

    def model_context(self) -> dict[str, Any]:
        return {"in_channels": int(self.data.x.size(1)), "num_classes": self.num_classes,
                "num_nodes": int(self.data.num_nodes)}

    # -- training ------------------------------------------------------------------------

    def num_batches(self) -> int:
        return 1

    def num_examples(self, batch: Any) -> int:
        return int(self.data.train_mask.sum())

    def train_batches(self, epoch: int, generator: torch.Generator) -> Iterator[None]:
        yield None  # full batch: the training nodes are the mask

    def training_step(self, model: nn.Module, batch: Any) -> Tensor:
        mask = self.data.train_mask
        logits = model(self.data.x, self.data.edge_index)  # (N, C)
        return F.cross_entropy(logits[mask], self.data.y[mask])

    # -- evaluation ----------------------------------------------------------------------

    def metric_names(self) -> list[str]:
        return ["accuracy"]

    def has_split(self, split: str) -> bool:
        return split in ("valid", "test") and bool(getattr(self.data, _MASK[split]).any())

    def mask(self, split: str) -> Tensor:
        """The boolean node mask ``[N]`` of ``"train"``, ``"valid"`` or ``"test"``."""
        if split not in _MASK:
            raise ConfigError(f"cannot evaluate on split {split!r} (valid: valid, test)")
        return getattr(self.data, _MASK[split])

    @torch.no_grad()
    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        mask = self.mask(split)
        logits = model(self.data.x, self.data.edge_index)
        return {"accuracy": accuracy(logits, self.data.y, mask)}

    def summary(self) -> dict[str, Any]:
        return node_summary(self.cfg, self.data)


def accuracy(scores: Tensor, y: Tensor, mask: Tensor) -> float:
    """Share of ``mask``'s nodes whose argmax of ``scores [N, C]`` is ``y``."""
    if not bool(mask.any()):
        return float("nan")
    return float((scores[mask].argmax(-1) == y[mask]).float().mean())


def node_summary(cfg: Config, data: Data) -> dict[str, Any]:
    """Dataset facts for ``final.json``."""
    return {"dataset": cfg.data.name, "split": cfg.data.split, "nodes": int(data.num_nodes),
            "features": int(data.x.size(1)), "classes": int(data.y.max()) + 1,
            "labelled_nodes": {name: int(getattr(data, mask).sum())
                               for name, mask in _MASK.items()}}
