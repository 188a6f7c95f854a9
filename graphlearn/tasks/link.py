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

Graph models (NBFNet)
---------------------
A model with ``uses_graph = True`` scores node pairs by message passing from
the pair itself (NBFNet's protocol for Cora / CiteSeer / PubMed, DESIGN.md §2):
the graph is one relation (id 0) whose edges are listed in both directions, so
``num_relations = 1`` and each relation is its own inverse. Training visits the
training positives in random order, ``train.batch_size`` per step; the first
half of a batch is asked as ``(u, ?)`` and the second half as ``(v, ?)``; each
query gets ``train.num_negative`` strict negatives (never a training neighbour
of the query node, :func:`~graphlearn.tasks.negatives.strict_negative_tails`).
With ``train.negative_mode: pairs`` (TorchDrug's ``LinkPrediction`` task, which
the NBFNet paper's homogeneous numbers come from) the negatives are instead
``train.num_negative`` strict random node pairs per positive
(:func:`~graphlearn.data.link_split.sample_negative_edges`: uniform over the
non-edges of the training graph, as TorchDrug's degree-weighted head then
uniform non-neighbour tail), and every pair, positive or negative, is its own
query ``(u, ?)`` with the single candidate ``v``: twice the Bellman-Ford passes
of ``corrupt`` for one negative, but training negatives drawn like the
evaluation ones.
The message graph of a batch loses the batch's positive edges (both
directions; ``model.remove_easy_edges``), and the loss is binary cross-entropy
over positives and negatives (each positive's negatives averaged, as
:func:`~graphlearn.models.losses.self_adversarial_bce` with uniform weights).
Evaluation scores each ``edge_label_index`` pair ``(u, v)`` with
``model(graph, u, 0, v)``, ``eval.batch_size`` pairs at a time.

Distributed
-----------
Under ``torchrun`` (:mod:`graphlearn.tasks.base`) every rank draws the whole
batch's negatives from the shared generator, then keeps its contiguous share.
Full-graph models: the share of the positives and the matching block of
``train.num_negative`` negatives per positive, so every rank's BCE is a mean
over ``(1 + k)`` logits per positive and the trainer's size weighting gives the
single-process gradient (each rank encodes the whole graph). Graph models: the
share of the batch's queries with their negatives, the message graph still
losing every positive edge of the whole batch (``LinkBatch.easy``). Evaluation
scores a contiguous slice of ``edge_label_index`` per rank, gathers the scores
in order once and computes AUROC and AP over all of them, on every rank.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data

from graphlearn.config import Config
from graphlearn.data.link_split import random_link_split, sample_negative_edges
from graphlearn.errors import ConfigError, GraphlearnError
from graphlearn.metrics.bootstrap import EvaluationSample
from graphlearn.metrics.classification import auroc_ap
from graphlearn.metrics.ranking import build_filter_index
from graphlearn.models.losses import self_adversarial_bce
from graphlearn.tasks.base import TASKS, Task
from graphlearn.tasks.negatives import strict_negative_tails

__all__ = ["LinkBatch", "LinkTask"]


def link_splits(cfg: Config, data: Any) -> dict[str, Data]:
    """``{"train", "valid", "test"}`` of ``data`` by :func:`random_link_split` with the
    config's ``data.val_ratio`` / ``data.test_ratio`` / ``data.split_seed`` (default 0).

    Raises:
        ConfigError: ``data`` is not a homogeneous graph with features ``x``.
    """
    if getattr(data, "edge_index", None) is None or getattr(data, "x", None) is None:
        raise ConfigError(f"{cfg.data.name}: task 'link' needs a homogeneous graph "
                          f"with node features x and edge_index")
    d = cfg.data
    seed = 0 if d.split_seed is None else d.split_seed
    train, valid, test = random_link_split(data, val_ratio=d.val_ratio,
                                           test_ratio=d.test_ratio, seed=seed)
    return {"train": train, "valid": valid, "test": test}


class LinkBatch(NamedTuple):
    """A training batch: positive ``[2, P]`` and negative ``[2, P * k]`` node pairs.

    For graph models ``pos`` holds the queries ``(head, tail)`` and ``neg`` their
    negative tails ``[P, k]``; ``easy`` (distributed training only) the positive
    pairs ``[2, B]`` of the whole global batch, whose edges leave the message graph
    (``None``: those of ``pos``).
    """

    pos: Tensor
    neg: Tensor
    easy: Tensor | None = None


@TASKS.register("link")
class LinkTask(Task):
    """Link prediction on one homogeneous graph (module docstring).

    Attributes (after setup):
        data: the input graph.
        splits: ``{"train", "valid", "test"}`` :class:`Data` of the edge split.
    """

    name = "link"
    losses = ("bce",)
    supports_distributed = True
    uses_negative_mode = True

    def setup(self, data: Any) -> None:
        d = self.cfg.data
        self.data = data
        self.num_nodes = int(data.num_nodes)
        self.splits = link_splits(self.cfg, data)
        train = self.splits["train"]
        if train.edge_label_index.size(1) == 0:
            raise GraphlearnError(f"{d.name}: the training split has no edges")
        import graphlearn.models  # noqa: F401  (registers the models)
        from graphlearn.models.registry import MODELS

        self.graph_model = bool(getattr(MODELS.get(self.cfg.model.name), "uses_graph", False))
        mode = self.cfg.train.negative_mode
        self.negative_mode = mode or ("corrupt" if self.graph_model else "pairs")
        if self.negative_mode == "corrupt" and not self.graph_model:
            raise ConfigError(f"train.negative_mode 'corrupt' needs a graph model (NBFNet); "
                              f"model {self.cfg.model.name!r} encodes the whole graph once "
                              f"and trains on random pairs: use 'pairs' or null")
        if self.graph_model:
            # known answers of (u, 0, ?): every training neighbour (both directions listed)
            triples = torch.stack([train.edge_index[0], torch.zeros_like(train.edge_index[0]),
                                   train.edge_index[1]], dim=1)
            self.train_index = build_filter_index(triples, 1, self.num_nodes)
            self._graphs = {name: Data(edge_index=split.edge_index, num_nodes=self.num_nodes,
                                       num_relations=1) for name, split in self.splits.items()}

    def to(self, device: torch.device | str) -> LinkTask:
        super().to(device)
        self.splits = {name: split.to(self.device) for name, split in self.splits.items()}
        if self.graph_model:
            self._graphs = {name: graph.to(self.device) for name, graph in self._graphs.items()}
        return self

    # -- model ---------------------------------------------------------------------------

    def model_context(self) -> dict[str, Any]:
        return {"in_channels": int(self.data.x.size(1)), "num_nodes": self.num_nodes,
                "num_relations": 1}

    # -- training ------------------------------------------------------------------------

    def num_batches(self) -> int:
        if self.graph_model:
            return -(-self.splits["train"].edge_label_index.size(1) // self.cfg.train.batch_size)
        return 1

    def num_examples(self, batch: LinkBatch) -> int:
        return int(batch.pos.size(1))

    def train_batches(self, epoch: int, generator: torch.Generator) -> Iterator[LinkBatch]:
        if self.graph_model and self.negative_mode == "corrupt":
            yield from self._query_batches(generator)
            return
        if self.graph_model:
            yield from self._pair_batches(generator)
            return
        train = self.splits["train"]
        pos = train.edge_label_index.cpu()  # (2, P): positives only, each edge once
        k = self.cfg.train.num_negative
        neg = sample_negative_edges(train.edge_index.cpu(), self.num_nodes, pos.size(1) * k,
                                    generator=generator)  # (2, P * k)
        if self.world_size > 1:  # this rank's positives and a block of k negatives for each
            share = self.shard(pos.size(1))
            pos, neg = pos[:, share], neg[:, share.start * k:share.stop * k]
        yield LinkBatch(pos, neg)

    def _query_batches(self, generator: torch.Generator) -> Iterator[LinkBatch]:
        """Batches of positives ``[2, b]`` (as queries ``(u, ?) -> v``) with strict
        negative tails ``[b, k]`` (``LinkBatch.neg``) for graph models."""
        pos = self.splits["train"].edge_label_index.cpu()  # (2, P), each edge once
        size, k = self.cfg.train.batch_size, self.cfg.train.num_negative
        order = torch.randperm(pos.size(1), generator=generator)
        index = self.train_index
        for start in range(0, pos.size(1), size):
            u, v = pos[:, order[start:start + size]]
            flip = torch.arange(u.numel()) >= (u.numel() + 1) // 2  # second half: (v, ?) -> u
            head, tail = torch.where(flip, v, u), torch.where(flip, u, v)
            zeros = torch.zeros_like(head)
            negative = strict_negative_tails(head.to(index.keys.device), zeros.to(
                index.keys.device), tail.to(index.keys.device), index, k, generator)
            pairs, negative = torch.stack([head, tail]), negative.cpu()  # (2, b), (b, k)
            if self.world_size > 1:  # this rank's queries; the whole batch's edges go
                share = self.shard(head.numel())
                yield LinkBatch(pairs[:, share], negative[share], pairs)
            else:
                yield LinkBatch(pairs, negative)

    def _pair_batches(self, generator: torch.Generator) -> Iterator[LinkBatch]:
        """Batches of positives ``[2, b]`` with ``b * k`` strict random negative pairs
        ``[2, b * k]`` (positive ``i``'s block is ``[i * k, (i + 1) * k)``)."""
        train = self.splits["train"]
        pos = train.edge_label_index.cpu()  # (2, P), each edge once
        size, k = self.cfg.train.batch_size, self.cfg.train.num_negative
        order = torch.randperm(pos.size(1), generator=generator)
        for start in range(0, pos.size(1), size):
            pairs = pos[:, order[start:start + size]]  # (2, b)
            neg = sample_negative_edges(train.edge_index.cpu(), self.num_nodes,
                                        pairs.size(1) * k, generator=generator)  # (2, b * k)
            if self.world_size > 1:  # this rank's positives and their blocks of negatives
                share = self.shard(pairs.size(1))
                yield LinkBatch(pairs[:, share], neg[:, share.start * k:share.stop * k], pairs)
            else:
                yield LinkBatch(pairs, neg)

    def training_step(self, model: nn.Module, batch: LinkBatch) -> Tensor:
        if self.graph_model and self.negative_mode == "pairs":
            pos, neg = batch.pos.to(self.device), batch.neg.to(self.device)
            easy = pos if batch.easy is None else batch.easy.to(self.device)
            graph = model.remove_easy_edges(self._graphs["train"], easy[0],
                                            torch.zeros_like(easy[0]), easy[1])
            pairs = torch.cat([pos, neg], dim=1)  # (2, b + b * k): one query per pair
            head, tail = pairs
            scores = model(graph, head, torch.zeros_like(head), tail.unsqueeze(1)).squeeze(1)
            b = pos.size(1)
            return self_adversarial_bce(scores[:b], scores[b:].view(b, -1), None)
        if self.graph_model:
            head, tail = batch.pos.to(self.device)
            relation = torch.zeros_like(head)
            easy_head, easy_tail = (head, tail) if batch.easy is None \
                else batch.easy.to(self.device)
            graph = model.remove_easy_edges(self._graphs["train"], easy_head,
                                            torch.zeros_like(easy_head), easy_tail)
            candidates = torch.cat([tail.unsqueeze(1), batch.neg.to(self.device)], dim=1)
            scores = model(graph, head, relation, candidates)  # (b, 1 + k)
            return self_adversarial_bce(scores[:, 0], scores[:, 1:], None)
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

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        logits, labels = self._split_scores(model, split)
        return auroc_ap(logits, labels)

    def evaluation_sample(self, model: nn.Module, split: str) -> EvaluationSample:
        """The split's scored pairs, positives and negatives resampled apart (the
        protocol fixes their ratio, one negative per positive)."""
        logits, labels = (t.numpy() for t in self._split_scores(model, split))
        return EvaluationSample(lambda idx: auroc_ap(logits[idx], labels[idx]), labels.size,
                                labels.astype(np.int64),
                                "scored node pair, positives and negatives resampled apart")

    @torch.no_grad()
    def _split_scores(self, model: nn.Module, split: str) -> tuple[Tensor, Tensor]:
        """Logits ``[M]`` (float32, CPU) of the split's labelled pairs and their labels."""
        if split not in ("valid", "test"):
            raise ConfigError(f"cannot evaluate on split {split!r} (valid: valid, test)")
        if not self.has_split(split):
            raise GraphlearnError(f"{self.cfg.data.name}: the {split} split is empty "
                                  f"(data.val_ratio / data.test_ratio)")
        part = self.splits[split]
        pairs = part.edge_label_index  # (2, M)
        distributed = self.world_size > 1 and dist.is_initialized()
        if distributed:  # this rank's contiguous slice; all scores gathered in order below
            pairs = pairs[:, self.shard(pairs.size(1))]
        if self.graph_model:
            logits = self._score_pairs(model, self._graphs[split], pairs)
        else:
            z = model.encode(part.x, part.edge_index)
            logits = model.decode(z, pairs)
        logits = logits.float()
        if distributed:
            logits = self.gather(logits)  # (M,)
        return logits.cpu(), part.edge_label.cpu()

    def _score_pairs(self, model: nn.Module, graph: Data, pairs: Tensor) -> Tensor:
        """Scores ``[M]`` of node pairs ``[2, M]`` by a graph model, in chunks."""
        size = self.cfg.eval.batch_size
        out = [pairs.new_zeros(0, dtype=torch.float32)]  # an empty slice scores nothing
        for start in range(0, pairs.size(1), size):
            u, v = pairs[:, start:start + size]
            out.append(model(graph, u, torch.zeros_like(u), v.unsqueeze(1)).squeeze(1))
        return torch.cat(out)

    # -- reporting -------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        sizes = {name: int(split.edge_label.sum()) if name != "train"
                 else int(split.edge_label_index.size(1)) for name, split in self.splits.items()}
        return {"dataset": self.cfg.data.name, "nodes": self.num_nodes,
                "features": int(self.data.x.size(1)), "positive_edges": sizes}
