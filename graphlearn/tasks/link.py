r"""Homogeneous link prediction (DESIGN.md §2): AUROC and AP on held-out edges.

Data
----
A homogeneous graph with node features ``x`` (e.g. a Planetoid citation graph)
is split with :func:`graphlearn.data.link_split.random_link_split`:
``data.val_ratio`` / ``data.test_ratio`` of the undirected edges held out,
seed ``data.split_seed`` (default ``0``), one strict negative per validation
and test positive. Training messages use the training edges only; validation
uses the training edges, test the training and validation edges.

Training
--------
One full-graph step per epoch: the model encodes the nodes on the training
message graph (``model.encode(x, edge_index)``) and decodes the training
positives and ``train.num_negative`` fresh strict negatives per positive
(:func:`~graphlearn.data.link_split.sample_negative_edges`, never a training
edge, drawn from the trainer's generator); the loss is binary cross-entropy
with logits over positives and negatives together.

Evaluation
----------
Encode on the split's message graph, decode its ``edge_label_index`` and
report ``auroc`` and ``ap`` (:func:`graphlearn.metrics.classification.auroc_ap`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphlearn.data.link_split import random_link_split, sample_negative_edges
from graphlearn.errors import ConfigError, GraphlearnError
from graphlearn.metrics.classification import auroc_ap
from graphlearn.tasks.base import TASKS, Task

__all__ = ["LinkBatch", "LinkTask"]


class LinkBatch(NamedTuple):
    """A training batch: positive ``[2, P]`` and negative ``[2, P * k]`` node pairs."""

    pos: Tensor
    neg: Tensor


@TASKS.register("link")
class LinkTask(Task):
    """Link prediction on one homogeneous graph (module docstring).

    Attributes (after setup):
        data: the input graph.
        splits: ``{"train", "valid", "test"}`` :class:`Data` of the edge split.
    """

    name = "link"
    losses = ("bce",)

    def setup(self, data: Any) -> None:
        if getattr(data, "edge_index", None) is None or getattr(data, "x", None) is None:
            raise ConfigError(f"{self.cfg.data.name}: task 'link' needs a homogeneous graph "
                              f"with node features x and edge_index")
        d = self.cfg.data
        self.data = data
        self.num_nodes = int(data.num_nodes)
        seed = 0 if d.split_seed is None else d.split_seed
        train, valid, test = random_link_split(data, val_ratio=d.val_ratio,
                                               test_ratio=d.test_ratio, seed=seed)
        self.splits = {"train": train, "valid": valid, "test": test}
        if train.edge_label_index.size(1) == 0:
            raise GraphlearnError(f"{d.name}: the training split has no edges")

    def to(self, device: torch.device | str) -> LinkTask:
        super().to(device)
        self.splits = {name: split.to(self.device) for name, split in self.splits.items()}
        return self

    # -- model ---------------------------------------------------------------------------

    def model_context(self) -> dict[str, Any]:
        return {"in_channels": int(self.data.x.size(1)), "num_nodes": self.num_nodes}

    # -- training ------------------------------------------------------------------------

    def num_batches(self) -> int:
        return 1

    def num_examples(self, batch: LinkBatch) -> int:
        return int(batch.pos.size(1))

    def train_batches(self, epoch: int, generator: torch.Generator) -> Iterator[LinkBatch]:
        train = self.splits["train"]
        pos = train.edge_label_index.cpu()  # (2, P): positives only, each edge once
        k = self.cfg.train.num_negative
        neg = sample_negative_edges(train.edge_index.cpu(), self.num_nodes, pos.size(1) * k,
                                    generator=generator)
        yield LinkBatch(pos, neg)

    def training_step(self, model: nn.Module, batch: LinkBatch) -> Tensor:
        train = self.splits["train"]
        pos, neg = batch.pos.to(self.device), batch.neg.to(self.device)
        z = model.encode(train.x, train.edge_index)
        logits = model.decode(z, torch.cat([pos, neg], dim=1))
        labels = torch.cat([logits.new_ones(pos.size(1)), logits.new_zeros(neg.size(1))])
        return F.binary_cross_entropy_with_logits(logits, labels)

    # -- evaluation ----------------------------------------------------------------------

    def metric_names(self) -> list[str]:
        return ["auroc", "ap"]

    def has_split(self, split: str) -> bool:
        return split in ("valid", "test") and self.splits[split].edge_label.numel() > 0

    @torch.no_grad()
    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        if split not in ("valid", "test"):
            raise ConfigError(f"cannot evaluate on split {split!r} (valid: valid, test)")
        if not self.has_split(split):
            raise GraphlearnError(f"{self.cfg.data.name}: the {split} split is empty "
                                  f"(data.val_ratio / data.test_ratio)")
        part = self.splits[split]
        z = model.encode(part.x, part.edge_index)
        logits = model.decode(z, part.edge_label_index)
        return auroc_ap(logits.float().cpu(), part.edge_label.cpu())

    # -- reporting -------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        sizes = {name: int(split.edge_label.sum()) if name != "train"
                 else int(split.edge_label_index.size(1)) for name, split in self.splits.items()}
        return {"dataset": self.cfg.data.name, "nodes": self.num_nodes,
                "features": int(self.data.x.size(1)), "positive_edges": sizes}
