r"""Knowledge-graph completion (DESIGN.md §2): embedding models and graph models.

Data
----
A ``kg_triples`` dataset (:func:`graphlearn.data.kg.load_kg`): ``R`` original
relations, their inverses ``r + R`` (so models are built with
``num_relations = 2R``), train/valid/test triples and the filter set of every
known true triple.

An inductive GraIL benchmark (:class:`~graphlearn.data.kg.InductiveKG`) is
accepted for models that score unseen entities (class attribute
``inductive = True``, e.g. NBFNet) and rejected for embedding models. Training
and validation use the training graph (its ``train.txt`` is both the message
graph and the training queries; ``valid.txt`` the validation queries, filtered
by the training graph's triples); the test queries are the inference graph's
``test.txt``, answered over its message graph (``name_ind/train.txt``) and
filtered by its facts only, as in NBFNet-PyG.

Graph models
------------
A model with the class attribute ``uses_graph = True`` (NBFNet) receives the
split's message graph (a PyG ``Data``) as first argument of every call:
``model(graph, head, relation, candidates)`` and
``model.score_all_tails(graph, head, relation)``. At training time the graph
of each batch first loses the edges that state the batch's answers:
``model.remove_easy_edges(graph, head, relation, tail)`` (the query triple and
its inverse, or with ``remove_one_hop`` every edge between head and tail).

Training
--------
Each epoch visits every training triple once, in a random order drawn from the
trainer's generator, in batches of ``train.batch_size`` triples. Two regimes,
chosen by ``train.num_negative``:

* ``0``, **1-vs-all**: every triple gives the tail query ``(h, r, ?)`` and the
  head query ``(t, r + R, ?)``; each query is scored against all entities
  (``model.score_all_tails``) and trained with binary cross-entropy against the
  multi-hot vector of its known training answers
  (:func:`~graphlearn.tasks.negatives.training_filter_index`), averaged over
  queries and entities; or, with ``train.loss: ce``, with softmax cross-entropy
  of the query's answer against all entities (Lacroix et al., 2018).
* ``k >= 1``, **negative sampling**: :func:`~graphlearn.tasks.negatives.sample_kg_negatives`
  turns the batch into tail queries (half of them head corruptions through the
  inverse relation) with ``k`` strict negatives each (never a known training
  answer), trained with :func:`~graphlearn.models.losses.self_adversarial_bce`
  at temperature ``train.adversarial_temperature`` (``null``: uniform weights).

The model's own regulariser (e.g. N3, ``model.params.n3_weight``) is added to
the loss of both regimes.

Evaluation
----------
Filtered ranking (:func:`graphlearn.metrics.ranking.evaluate_kg`) of the tail
and head query of every validation or test triple against all entities, with
the known true triples of all splits filtered, ties handled as
``eval.ranking_mode`` says, ``eval.batch_size`` queries at a time. Reported:
``mr``, ``mrr``, ``hits@1``, ``hits@3``, ``hits@10``, ``hits@10_50`` over both
directions, plus ``tail_<metric>`` and ``head_<metric>``.

Distributed
-----------
Under ``torchrun`` (:mod:`graphlearn.tasks.base`) every rank draws the same
global permutation and, with ``k >= 1``, the negatives of the *whole* batch,
then keeps its contiguous share of the batch's triples (1-vs-all) or queries
(negative sampling), as a :class:`KGShard`. A graph model's message graph still
loses the answer edges of the whole global batch (``KGShard.easy``), so each
share's loss and gradient are the single-process batch's restricted to the
share; both losses are means over the share's examples, which the trainer
weights by size. Evaluation ranks a contiguous slice of the triples per rank
(:func:`~graphlearn.metrics.ranking.kg_ranks`), gathers the ranks in order once
and computes the metrics from all of them
(:func:`~graphlearn.metrics.ranking.kg_metrics`): the single-process values.

Prediction
----------
:func:`predict` (and :meth:`KGTask.predict`) answers one query by name: the
tail query ``(h, r, ?)`` or the head query ``(?, r, t)``, asked as
``(t, r + R, ?)``. Every entity is scored with ``model.score_all_tails``; by
default the answers already known anywhere in the dataset (train, validation
**and** test triples, ``data.filter_triples``) are left out, so only new
answers are listed (``exclude_known=False`` keeps them). Entity names with
scores come back best first, ties broken by the lower entity id.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from graphlearn.config import Config
from graphlearn.errors import ConfigError, GraphlearnError
from graphlearn.metrics.bootstrap import EvaluationSample
from graphlearn.metrics.ranking import (
    DEFAULT_METRICS,
    FilterIndex,
    KGRanks,
    kg_metrics,
    kg_ranks,
)
from graphlearn.models.losses import self_adversarial_bce
from graphlearn.tasks.base import TASKS, Task
from graphlearn.tasks.negatives import KGNegativeBatch, sample_kg_negatives, training_filter_index

__all__ = ["KGShard", "KGTask", "predict", "score_all_tails"]

_SPLITS = ("valid", "test")
#: metrics of OGB's knowledge graphs (ogbl-biokg, ogbl-wikikg2), from OGB's Evaluator
OGB_KG_METRICS = ("mrr", "hits@1", "hits@3", "hits@10")


@torch.no_grad()
def predict(model: nn.Module, data: Any, *, relation: str, head: str | None = None,
            tail: str | None = None, k: int = 10, exclude_known: bool = True,
            filter_index: FilterIndex | None = None) -> list[tuple[str, float]]:
    """The top-``k`` answers of one KG query, by entity name, best first.

    Give exactly one of ``head`` (tail query ``(head, relation, ?)``) or ``tail``
    (head query ``(?, relation, tail)``, scored as ``(tail, relation^-1, ?)``).
    ``relation`` may itself be an inverse, ``name^-1``.

    Args:
        model: a KG model with ``score_all_tails`` (evaluation mode).
        data: the KG (:func:`graphlearn.data.kg.load_kg`); for a graph model also the
            message graph the query is answered on.
        relation: the query relation's name.
        head: the known head's name (predict tails).
        tail: the known tail's name (predict heads).
        k: at most this many answers; fewer when known answers leave fewer entities.
        exclude_known: leave out every answer known in the dataset (the triples of
            all splits, ``data.filter_triples``); ``False`` ranks every entity.
        filter_index: the known answers (default: built from ``data``).

    Returns:
        ``[(entity_name, score), ...]``, highest score first, ties by lower entity id.

    Raises:
        KeyError: an unknown entity or relation name (the message suggests the nearest).
        ValueError: not exactly one of ``head`` / ``tail``, or ``k < 1``.
    """
    from graphlearn.data.kg import entity_id, relation_id

    if (head is None) == (tail is None):
        raise ValueError("give exactly one of head (predict tails) or tail (predict heads)")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    num_relations = int(data.num_relations)  # 2R
    rel = relation_id(data, relation)
    if head is not None:
        query_entity = entity_id(data, head)
    else:
        query_entity = entity_id(data, tail)  # type: ignore[arg-type]
        rel = (rel + num_relations // 2) % num_relations  # (?, r, t) == (t, r^-1, ?)
    device = next(model.parameters()).device
    query = torch.tensor([query_entity], dtype=torch.long)
    query_rel = torch.tensor([rel], dtype=torch.long)
    scores = score_all_tails(model, data)(query.to(device), query_rel.to(device))[0]
    scores = scores.detach().float().cpu()
    candidates = torch.arange(scores.numel())
    if exclude_known:
        index = filter_index if filter_index is not None else FilterIndex.from_data(data)
        known = index.mask(query, query_rel)[0].cpu()
        candidates = candidates[~known]
    candidate_scores = scores[candidates]
    # stable sort of the candidates (in id order): equal scores keep the lower id first
    order = torch.sort(candidate_scores, descending=True, stable=True).indices[:k]
    names = data.entity_names
    return [(names[int(candidates[i])], float(candidate_scores[i])) for i in order]


class KGShard(NamedTuple):
    """One rank's share of a global training batch (distributed training).

    Args:
        batch: the share: ``[b_r, 3]`` triples (1-vs-all) or a
            :class:`~graphlearn.tasks.negatives.KGNegativeBatch` of ``b_r`` queries.
        easy: ``[B, 3]`` the ``(head, relation, answer)`` queries of the *whole*
            global batch, whose answer edges a graph model's message graph loses
            (``None`` for embedding models).
    """

    batch: Tensor | KGNegativeBatch
    easy: Tensor | None


def _one_vs_all_queries(triples: Tensor, num_relations: int) -> tuple[Tensor, Tensor, Tensor]:
    """Both directions of ``triples [b, 3]``: ``(h, r, ?) -> t`` then ``(t, r + R, ?) -> h``;
    ``num_relations`` is ``2R``. Returns ``head, relation, answer``, each ``[2b]``."""
    h, r, t = triples.long().t()
    return torch.cat([h, t]), torch.cat([r, r + num_relations // 2]), torch.cat([t, h])


def score_all_tails(model: nn.Module, graph: Any = None):
    """``score(head [b], relation [b]) -> [b, N]`` of ``model``; a graph model
    (``uses_graph``) is given ``graph``, the message graph the queries are asked on."""
    if getattr(model, "uses_graph", False):
        return functools.partial(model.score_all_tails, graph)
    return model.score_all_tails


def _regularization(model: nn.Module, head: Tensor, relation: Tensor, tail: Tensor) -> Tensor:
    regularize = getattr(model, "regularization", None)
    if regularize is None:
        return head.new_zeros((), dtype=torch.float32)
    return regularize(head, relation, tail)


@TASKS.register("kg")
class KGTask(Task):
    """Transductive KG completion: 1-vs-all or negative-sampling BCE, filtered ranking.

    Attributes (after setup):
        data: the KG (:func:`graphlearn.data.kg.load_kg`).
        num_entities: ``N``.
        num_relations: ``2R`` (relations and their inverses).
        train_index: known answers of the training triples (targets, strict negatives).
        filter_index: known answers of all triples (evaluation filter).
    """

    name = "kg"
    losses = ("bce", "ce")
    uses_adversarial_temperature = True
    allows_one_vs_all = True
    supports_distributed = True

    def check_config(self, cfg: Config) -> None:
        super().check_config(cfg)
        if cfg.train.num_negative == 0 and cfg.train.adversarial_temperature is not None:
            raise ConfigError("train.adversarial_temperature weights sampled negatives; it is "
                              "not used with train.num_negative 0 (1-vs-all); remove it")
        if cfg.train.loss == "ce" and cfg.train.num_negative != 0:
            raise ConfigError("train.loss 'ce' (softmax over all entities) needs "
                              "train.num_negative 0 (1-vs-all)")

    def setup(self, data: Any) -> None:
        import graphlearn.models  # noqa: F401  (registers the models)
        from graphlearn.data.kg import InductiveKG
        from graphlearn.data.ogb import is_ogbl_kg, ogbl_kg
        from graphlearn.models.registry import MODELS

        model_cls = MODELS.get(self.cfg.model.name)
        self.graph_model = bool(getattr(model_cls, "uses_graph", False))
        # OGB's knowledge graphs: ranked against their given candidates by OGB's Evaluator
        self.ogb_name: str | None = None
        if is_ogbl_kg(data):
            self.ogb_name = str(data.name)
            data = ogbl_kg(data)
        # typed KGs (ogbl-biokg): training negatives from the answer's type only
        self.entity_ranges: Tensor | None = getattr(data, "entity_ranges", None)
        self.inductive = isinstance(data, InductiveKG)
        if self.inductive and not getattr(model_cls, "inductive", False):
            raise ConfigError(f"{self.cfg.data.name}: an inductive benchmark (test entities "
                              f"unseen in training); model {self.cfg.model.name!r} cannot score "
                              f"unseen entities (use an inductive model such as NBFNet)")
        if self.inductive:
            train, test = data.train, data.test
        else:
            train = test = data
        for key in ("train_triples", "valid_triples", "test_triples", "filter_triples"):
            if getattr(train, key, None) is None:
                raise ConfigError(f"{self.cfg.data.name}: task 'kg' needs a knowledge graph "
                                  f"with {key} (a kg_triples dataset)")
        self.data = train
        self.test_data = test
        self.num_entities = int(train.num_nodes)
        self.num_relations = int(train.num_relations)
        self.train_triples = train.train_triples.long()
        if self.train_triples.size(0) == 0:
            raise GraphlearnError(f"{self.cfg.data.name}: the training split is empty")
        self.train_index = training_filter_index(train)
        self.filter_index = FilterIndex.from_data(train)
        self._filters = {"valid": self.filter_index,
                         "test": FilterIndex.from_data(test) if self.inductive
                         else self.filter_index}
        self._triples = {"valid": train.valid_triples.long(), "test": test.test_triples.long()}
        self._candidates = getattr(train, "ogb_negatives", None)
        limit = self.cfg.eval.max_valid_triples
        if limit is not None and self._triples["valid"].size(0) > limit:
            # a fixed random subset, the same every evaluation and every run of this split
            pick = torch.randperm(self._triples["valid"].size(0),
                                  generator=torch.Generator().manual_seed(0))[:limit]
            pick = pick.sort().values
            self._triples["valid"] = self._triples["valid"][pick]
            if self._candidates is not None:
                self._candidates = {**self._candidates, "valid": {
                    key: value[pick] for key, value in self._candidates["valid"].items()}}
        self._graphs = {"train": self._message_graph(train), "valid": self._message_graph(train),
                        "test": self._message_graph(test)}
        if not self.inductive:
            self._graphs["valid"] = self._graphs["test"] = self._graphs["train"]

    @staticmethod
    def _message_graph(kg: Any) -> Any:
        from torch_geometric.data import Data

        return Data(edge_index=kg.edge_index, edge_type=kg.edge_type,
                    num_nodes=int(kg.num_nodes), num_relations=int(kg.num_relations))

    def to(self, device: torch.device | str) -> KGTask:
        super().to(device)
        if self.graph_model:
            moved = {id(g): g.to(self.device) for g in self._graphs.values()}
            self._graphs = {split: moved[id(g)] for split, g in self._graphs.items()}
        return self

    def message_graph(self, split: str) -> Any:
        """The message graph (PyG ``Data``) the queries of ``split`` are answered on."""
        return self._graphs[split]

    # -- model ---------------------------------------------------------------------------

    def model_context(self) -> dict[str, Any]:
        return {"num_entities": self.num_entities, "num_relations": self.num_relations}

    # -- training ------------------------------------------------------------------------

    def num_batches(self) -> int:
        return -(-self.train_triples.size(0) // self.cfg.train.batch_size)

    def num_examples(self, batch: Tensor | KGNegativeBatch | KGShard) -> int:
        if isinstance(batch, KGShard):
            batch = batch.batch
        return int(batch.head.numel() if isinstance(batch, KGNegativeBatch) else batch.size(0))

    def train_batches(self, epoch: int, generator: torch.Generator
                      ) -> Iterator[Tensor | KGNegativeBatch | KGShard]:
        n = self.train_triples.size(0)
        size = self.cfg.train.batch_size
        k = self.cfg.train.num_negative
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, size):
            batch = self.train_triples[order[start:start + size]]  # (b, 3)
            if k > 0:  # the whole batch's negatives, so the generator stays in step
                batch = sample_kg_negatives(batch, self.train_index, k, generator,
                                            entity_ranges=self.entity_ranges)
            yield self._share(batch) if self.world_size > 1 else batch

    def _share(self, batch: Tensor | KGNegativeBatch) -> KGShard:
        """This rank's contiguous share of a global batch, with the batch's answer edges."""
        if isinstance(batch, KGNegativeBatch):
            share = self.shard(batch.head.numel())
            easy = torch.stack([batch.head, batch.relation, batch.tail], dim=1)
            part: Tensor | KGNegativeBatch = KGNegativeBatch(*(t[share] for t in batch))
        else:
            share = self.shard(batch.size(0))
            easy = torch.stack(_one_vs_all_queries(batch, self.num_relations), dim=1)
            part = batch[share]
        return KGShard(part, easy if self.graph_model else None)

    def training_step(self, model: nn.Module,
                      batch: Tensor | KGNegativeBatch | KGShard) -> Tensor:
        easy = None
        if isinstance(batch, KGShard):
            batch, easy = batch.batch, batch.easy
        if isinstance(batch, KGNegativeBatch):
            head, relation, tail, negative = (
                t.to(self.device) for t in (batch.head, batch.relation, batch.tail,
                                            batch.negative))
            if self.graph_model:
                graph = self._training_graph(model, head, relation, tail, easy)
                candidates = torch.cat([tail.unsqueeze(1), negative], dim=1)  # (b, 1 + k)
                scores = model(graph, head, relation, candidates)
                pos_score, neg_score = scores[:, 0], scores[:, 1:]
            else:
                pos_score = model(head, relation, tail)  # (b,)
                neg_score = model(head.unsqueeze(1), relation.unsqueeze(1), negative)  # (b, k)
            loss = self_adversarial_bce(pos_score, neg_score,
                                        self.cfg.train.adversarial_temperature)
            return loss + _regularization(model, head, relation, tail)
        # both directions: (h, r, ?) -> t and (t, r + R, ?) -> h
        head, relation, answer = _one_vs_all_queries(batch, self.num_relations)
        target = self.train_index.mask(head, relation).to(self.device, torch.float32)  # (2b, N)
        head, relation, answer = head.to(self.device), relation.to(self.device), \
            answer.to(self.device)
        if self.graph_model:
            graph = self._training_graph(model, head, relation, answer, easy)
            scores = model.score_all_tails(graph, head, relation)  # (2b, N)
        else:
            scores = model.score_all_tails(head, relation)  # (2b, N)
        if self.cfg.train.loss == "ce":
            loss = F.cross_entropy(scores, answer)
        else:
            loss = F.binary_cross_entropy_with_logits(scores, target)
        return loss + _regularization(model, head, relation, answer)

    def _training_graph(self, model: nn.Module, head: Tensor, relation: Tensor,
                        tail: Tensor, easy: Tensor | None = None) -> Any:
        """The training message graph without the batch's answer edges (those of
        ``easy [B, 3]``, the global batch's queries, when given)."""
        graph = self._graphs["train"]
        remove = getattr(model, "remove_easy_edges", None)
        if remove is None:
            return graph
        if easy is not None:
            head, relation, tail = easy.to(self.device).t()
        return remove(graph, head, relation, tail)

    # -- evaluation ----------------------------------------------------------------------

    def metric_names(self) -> list[str]:
        names = OGB_KG_METRICS if self.ogb_name else DEFAULT_METRICS
        return [*names, *(f"{side}_{m}" for side in ("tail", "head") for m in names)]

    def has_split(self, split: str) -> bool:
        return split in self._triples and self._triples[split].size(0) > 0

    @torch.no_grad()
    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        if split not in self._triples:
            raise ConfigError(f"cannot evaluate on split {split!r} (valid: valid, test)")
        if not self.has_split(split):
            raise GraphlearnError(f"{self.cfg.data.name}: the {split} split is empty")
        if self.ogb_name is not None:
            return self._evaluate_ogb(score_all_tails(model, self._graphs[split]), split)
        metrics = kg_metrics(self._split_ranks(model, split))
        return {name: float(metrics[name]) for name in self.metric_names()}

    def evaluation_sample(self, model: nn.Module, split: str) -> EvaluationSample:
        """The split's triples, each with its tail and its head query (OGB's sampled
        protocol is not supported: its candidates are fixed per triple by OGB)."""
        if self.ogb_name is not None:
            raise GraphlearnError(f"bootstrap intervals are not supported for {self.ogb_name} "
                                  "(OGB's candidate protocol); they are for filtered ranking")
        ranks = self._split_ranks(model, split)
        names = self.metric_names()

        def statistic(idx: np.ndarray) -> dict[str, float]:
            rows = torch.from_numpy(idx)
            metrics = kg_metrics(KGRanks(ranks.tail[rows], ranks.head[rows],
                                         ranks.tail_num_negatives[rows],
                                         ranks.head_num_negatives[rows]))
            return {name: float(metrics[name]) for name in names}

        return EvaluationSample(statistic, int(ranks.tail.numel()), None,
                                "test triple, its tail and head query together")

    @torch.no_grad()
    def _split_ranks(self, model: nn.Module, split: str) -> KGRanks:
        """Filtered ranks of the split's tail and head queries (every rank's, in order)."""
        score_fn = score_all_tails(model, self._graphs[split])
        triples, filters = self._triples[split], self._filters[split]
        batch_size, mode = self.cfg.eval.batch_size, self.cfg.eval.ranking_mode
        if self.world_size == 1 or not dist.is_initialized():
            return kg_ranks(score_fn, triples, filters, batch_size, mode, self.device)
        # this rank's slice of the triples, then every rank's ranks in order, once
        part = kg_ranks(score_fn, triples[self.shard(triples.size(0))], filters,
                        batch_size, mode, self.device)
        columns = (part.tail, part.head, part.tail_num_negatives, part.head_num_negatives)
        # float64 holds the integer ranks and counts exactly ("average" ranks are float64)
        whole = self.gather(torch.stack([c.double() for c in columns], dim=1))  # (n, 4)
        return KGRanks(*(whole[:, i].to(c.dtype) for i, c in enumerate(columns)))

    def _evaluate_ogb(self, score_fn: Any, split: str) -> dict[str, float]:
        """OGB's protocol: every triple's tail against its ``tail_neg`` candidates and its
        head (asked as ``(t, r + R, ?)``) against its ``head_neg``, through OGB's
        Evaluator; the overall metrics average both directions, as OGB's examples do."""
        from graphlearn.metrics.ogb import ogb_evaluate

        triples = self._triples[split]
        candidates = self._candidates[split]
        part = self.shard(triples.size(0)) if self.world_size > 1 else slice(None)
        triples = triples[part]
        tail_neg, head_neg = candidates["tail_neg"][part], candidates["head_neg"][part]
        num_base = self.num_relations // 2
        columns: list[list[Tensor]] = [[], []]  # tail, head: (b, 1 + k) scores, positive first
        size = self.cfg.eval.batch_size
        for start in range(0, triples.size(0), size):
            head, relation, tail = triples[start:start + size].to(self.device).t()
            for side, (query, rel, answer, negatives) in enumerate((
                    (head, relation, tail, tail_neg), (tail, relation + num_base, head, head_neg))):
                scores = score_fn(query, rel)  # (b, N)
                pick = torch.cat([answer.unsqueeze(1),
                                  negatives[start:start + size].to(self.device)], dim=1)
                columns[side].append(scores.gather(1, pick).float().cpu())
        width = 1 + tail_neg.size(1)
        tail_scores, head_scores = (
            self.gather(torch.cat(c) if c else torch.empty(0, width)) for c in columns)
        out: dict[str, float] = {}
        for side, scores in (("tail", tail_scores), ("head", head_scores)):
            for name, value in ogb_evaluate(self.ogb_name, scores[:, 0], scores[:, 1:]).items():
                out[f"{side}_{name}"] = value
        both = torch.cat([tail_scores, head_scores])  # equal counts: the mean of both sides
        out.update(ogb_evaluate(self.ogb_name, both[:, 0], both[:, 1:]))
        return {name: float(out[name]) for name in self.metric_names()}

    # -- prediction ----------------------------------------------------------------------

    def predict(self, model: nn.Module, *, relation: str, head: str | None = None,
                tail: str | None = None, k: int = 10, exclude_known: bool = True,
                graph: str = "test") -> list[tuple[str, float]]:
        """:func:`predict` on this task's data, reusing its filter of known triples.

        ``graph``: for an inductive benchmark, ask on the inference graph
        (``"test"``, default: its entities) or the training graph (``"train"``);
        a transductive KG has one graph.
        """
        if graph not in ("train", "test"):
            raise ConfigError(f"graph must be 'train' or 'test', got {graph!r}")
        data = self.test_data if graph == "test" else self.data
        split = "test" if graph == "test" else "valid"
        return predict(model, data, relation=relation, head=head, tail=tail, k=k,
                       exclude_known=exclude_known, filter_index=self._filters[split])

    # -- reporting -------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        return {"dataset": self.cfg.data.name, "entities": self.num_entities,
                "relations": self.num_relations // 2,
                "triples": {split: int(getattr(self.data, f"{split}_triples").size(0))
                            for split in ("train", "valid", "test")}}
