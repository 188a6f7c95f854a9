r"""Filtered ranking for knowledge-graph completion (NBFNet protocol, DESIGN.md §2).

Every query is a tail query ``(h, r, ?)`` ranked against all entities; a head
query ``(?, r, t)`` is asked as ``(t, r + R, ?)`` through the inverse relation.
*Filtered* ranking removes every known true answer of the query from the
candidates, except the positive itself. With :math:`s` the scores of the
filtered negative candidates and :math:`s^+` the positive's score:

.. math::
    \text{rank}_{\text{pessimistic}} = 1 + |\{c : s_c \ge s^+\}|, \qquad
    \text{rank}_{\text{optimistic}} = 1 + |\{c : s_c > s^+\}|,

and ``"average"`` is their mean. Pessimistic is the default and the protocol:
ties count against the model, so a constant scorer ranks last, not first.

Metrics: ``mr`` (mean rank), ``mrr`` (mean reciprocal rank), ``hits@K``
(fraction with rank :math:`\le K`) and ``hits@K_N``, NBFNet's unbiased estimate
of Hits@K among the positive and :math:`N - 1` negatives sampled from the
:math:`n` filtered ones, computed from the full rank with
:math:`p = (\text{rank} - 1) / n`:

.. math::
    \text{hits@}K\_N = \sum_{i=0}^{K-1} \binom{N-1}{i} p^i (1-p)^{N-1-i},

the probability that fewer than :math:`K` of the sampled negatives outscore
(or tie, in pessimistic mode) the positive.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch_geometric.data import Data

#: Tie-breaking modes of :func:`filtered_ranks`.
RANK_MODES: tuple[str, ...] = ("pessimistic", "optimistic", "average")

#: Metrics reported when none are asked for.
DEFAULT_METRICS: tuple[str, ...] = ("mr", "mrr", "hits@1", "hits@3", "hits@10", "hits@10_50")

_HITS = re.compile(r"^hits@(\d+)(?:_(\d+))?$")


@dataclass(frozen=True)
class MetricSpec:
    """A parsed metric name: ``kind`` is ``"mr"``, ``"mrr"`` or ``"hits"``.

    ``k`` is the cut-off of ``hits@K``; ``num_samples`` the ``N`` of ``hits@K_N``.
    """

    kind: str
    k: int | None = None
    num_samples: int | None = None


def parse_metric(name: str) -> MetricSpec:
    """Parse ``"mr"``, ``"mrr"``, ``"hits@K"`` or ``"hits@K_N"`` (case-insensitive).

    Raises:
        ValueError: an unknown name, or ``K < 1`` / ``N < 2`` / ``K > N``.
    """
    key = name.strip().lower()
    if key in ("mr", "mrr"):
        return MetricSpec(key)
    match = _HITS.match(key)
    if match is None:
        raise ValueError(f"unknown ranking metric {name!r} (valid: mr, mrr, hits@K, hits@K_N)")
    k = int(match.group(1))
    num_samples = int(match.group(2)) if match.group(2) else None
    if k < 1 or (num_samples is not None and not 1 <= k <= num_samples):
        raise ValueError(f"ranking metric {name!r} needs 1 <= K (<= N for hits@K_N)")
    return MetricSpec("hits", k, num_samples)


# ---------------------------------------------------------------------------
# Filter index


@dataclass(frozen=True)
class FilterIndex:
    """All known true answers of every tail query ``(h, r')``, ``r'`` in ``[0, 2R)``.

    A CSR over the queries that have answers: ``keys`` are the sorted query keys
    ``h * 2R + r'``, and ``answers[ptr[i]:ptr[i + 1]]`` the sorted true tails of
    query ``keys[i]``. A triple ``(h, r, t)`` contributes ``t`` to ``(h, r)`` and
    ``h`` to ``(t, r + R)``. Memory is :math:`O(M)` for ``M`` triples
    (FB15k-237, 310k triples: about 15 MB). Build with :func:`build_filter_index`.

    Args:
        num_entities: the number of candidate entities.
        num_relations: the number of original relations ``R``.
        keys: ``[Q]`` sorted query keys.
        ptr: ``[Q + 1]`` offsets into ``answers``.
        answers: ``[A]`` entity ids.
    """

    num_entities: int
    num_relations: int
    keys: Tensor
    ptr: Tensor
    answers: Tensor

    @classmethod
    def from_data(cls, data: Data) -> FilterIndex:
        """Index ``data.filter_triples`` of a graph from :mod:`graphlearn.data.kg`."""
        return build_filter_index(
            data.filter_triples, int(data.num_relations) // 2, int(data.num_nodes)
        )

    def answer_pairs(self, heads: Tensor, relations: Tensor) -> tuple[Tensor, Tensor]:
        """Known true answers of the queries as ``(query_position, entity)`` pairs.

        Args:
            heads: ``[b]`` query entities.
            relations: ``[b]`` query relations in ``[0, 2R)``.

        Returns:
            ``rows [A_b]`` (positions in the batch) and ``cols [A_b]`` (entities).
        """
        heads, relations = heads.to(self.keys.device), relations.to(self.keys.device)
        if self.keys.numel() == 0:
            empty = torch.empty(0, dtype=torch.long, device=self.keys.device)
            return empty, empty
        query = heads.long() * (2 * self.num_relations) + relations.long()  # (b,)
        slot = torch.searchsorted(self.keys, query)  # (b,)
        found = slot < self.keys.numel()
        slot = slot.clamp(max=self.keys.numel() - 1)
        found &= self.keys[slot] == query
        start = self.ptr[slot]
        counts = torch.where(found, self.ptr[slot + 1] - start, torch.zeros_like(start))
        rows = torch.repeat_interleave(torch.arange(query.numel(), device=query.device), counts)
        # position of each answer within its query's run: global index minus run start
        run_start = torch.cumsum(counts, 0) - counts  # (b,)
        offset = torch.arange(rows.numel(), device=query.device) - run_start[rows]
        return rows, self.answers[start[rows] + offset]

    def mask(self, heads: Tensor, relations: Tensor) -> Tensor:
        """BoolTensor ``[b, num_entities]``, true at the known true answers of each query."""
        rows, cols = self.answer_pairs(heads, relations)
        out = torch.zeros(heads.numel(), self.num_entities, dtype=torch.bool, device=rows.device)
        out[rows, cols] = True
        return out


def build_filter_index(
    filter_triples: Tensor, num_relations: int, num_entities: int
) -> FilterIndex:
    """Build the :class:`FilterIndex` of both query directions.

    Args:
        filter_triples: ``[M, 3]`` known true ``(head, relation, tail)`` triples,
            relation in ``[0, R)`` (e.g. ``data.filter_triples``).
        num_relations: the number of original relations ``R``
            (``data.num_relations // 2``).
        num_entities: the number of entities (``data.num_nodes``).
    """
    if filter_triples.dim() != 2 or filter_triples.size(1) != 3:
        raise ValueError(f"filter_triples must have shape [M, 3], got {list(filter_triples.shape)}")
    triples = filter_triples.long()
    _check_ids(triples, num_entities, num_relations, "filter_triples")
    head, relation, tail = triples.t()
    two_r = 2 * num_relations
    query = torch.cat([head * two_r + relation, tail * two_r + relation + num_relations])
    answer = torch.cat([tail, head])
    # sort by (query, answer) and drop duplicates; the key fits in int64 for any real KG
    pair = torch.unique(query * num_entities + answer)
    query, answer = pair // num_entities, pair % num_entities
    keys, counts = torch.unique_consecutive(query, return_counts=True)
    ptr = torch.zeros(keys.numel() + 1, dtype=torch.long, device=keys.device)
    ptr[1:] = torch.cumsum(counts, 0)
    return FilterIndex(num_entities, num_relations, keys, ptr, answer)


def _check_ids(triples: Tensor, num_entities: int, num_relations: int, what: str) -> None:
    if triples.numel() == 0:
        return
    entities = triples[:, [0, 2]]
    if int(entities.min()) < 0 or int(entities.max()) >= num_entities:
        raise ValueError(f"{what}: entity ids must lie in [0, {num_entities})")
    relations = triples[:, 1]
    if int(relations.min()) < 0 or int(relations.max()) >= num_relations:
        raise ValueError(
            f"{what}: relation ids must lie in [0, {num_relations}) (original relations; "
            "inverse relations r + R are added by the ranking itself)"
        )


# ---------------------------------------------------------------------------
# Ranks and metrics


def filtered_ranks(
    scores: Tensor,
    targets: Tensor,
    filter_mask: Tensor | None = None,
    mode: str = "pessimistic",
) -> tuple[Tensor, Tensor]:
    """Filtered rank of each query's positive among all candidates.

    Args:
        scores: ``[b, N]`` scores of every candidate (higher is better).
        targets: ``[b]`` the positive's column in ``scores``.
        filter_mask: ``[b, N]`` true at known true answers to remove; the
            positive is never removed, whether marked or not. ``None``: raw ranks.
        mode: ``"pessimistic"`` (ties count against the model, default),
            ``"optimistic"`` or ``"average"`` (see the module docstring).

    Returns:
        ``ranks [b]`` (LongTensor; float64 for ``"average"``) and
        ``num_negatives [b]``, the number of filtered negative candidates.
    """
    if mode not in RANK_MODES:
        raise ValueError(f"unknown rank mode {mode!r} (valid: {', '.join(RANK_MODES)})")
    if scores.dim() != 2 or targets.shape != scores.shape[:1]:
        raise ValueError(
            f"scores must be [b, N] and targets [b], got {list(scores.shape)} "
            f"and {list(targets.shape)}"
        )
    if torch.isnan(scores).any():
        raise ValueError("scores contain NaN; ranks would be meaningless")
    targets = targets.to(scores.device).long()
    rows = torch.arange(scores.size(0), device=scores.device)
    if filter_mask is None:
        candidate = torch.ones_like(scores, dtype=torch.bool)
    else:
        candidate = ~filter_mask.to(scores.device)
    candidate[rows, targets] = False  # the positive is not its own negative
    positive = scores[rows, targets].unsqueeze(1)  # (b, 1)
    better = ((scores > positive) & candidate).sum(1)
    num_negatives = candidate.sum(1)
    if mode == "optimistic":
        return better + 1, num_negatives
    ties = ((scores == positive) & candidate).sum(1)
    if mode == "pessimistic":
        return better + ties + 1, num_negatives
    return better.double() + ties.double() / 2 + 1, num_negatives


def sampled_hits(ranks: Tensor, num_negatives: Tensor, k: int, num_samples: int) -> Tensor:
    """Per-query ``hits@K_N``: P(fewer than ``k`` of ``N - 1`` sampled negatives outscore).

    Args:
        ranks: ``[n]`` filtered full ranks.
        num_negatives: ``[n]`` filtered negatives per query (rank - 1 of them
            outscore the positive).
        k: the cut-off ``K``.
        num_samples: ``N``, the positive plus ``N - 1`` negatives.

    Returns:
        ``[n]`` float64 probabilities; their mean is the metric.
    """
    ranks = torch.as_tensor(ranks, dtype=torch.float64)
    negatives = torch.as_tensor(num_negatives, dtype=torch.float64, device=ranks.device)
    fp = ((ranks - 1) / negatives.clamp(min=1)).clamp(0, 1)  # false-positive rate
    trials = num_samples - 1
    total = torch.zeros_like(fp)
    for i in range(min(k, trials + 1)):
        total += math.comb(trials, i) * fp.pow(i) * (1 - fp).pow(trials - i)
    return total


def ranking_metrics(
    ranks: Tensor | Sequence[float],
    num_negatives: Tensor | Sequence[int] | None = None,
    metrics: Sequence[str] | None = None,
) -> dict[str, float]:
    """Aggregate filtered ranks into ``mr``, ``mrr``, ``hits@K`` and ``hits@K_N``.

    Args:
        ranks: ``[n]`` ranks (1 = best).
        num_negatives: ``[n]`` filtered negatives per query, needed for ``hits@K_N``.
        metrics: names to compute (see :func:`parse_metric`). Default:
            :data:`DEFAULT_METRICS`, without ``hits@10_50`` when
            ``num_negatives`` is ``None``.

    Returns:
        ``{name: value}`` in the order asked.
    """
    ranks = torch.as_tensor(ranks).double().flatten()
    if ranks.numel() == 0:
        raise ValueError("no ranks to aggregate")
    if bool((ranks < 1).any()):
        raise ValueError("ranks must be >= 1")
    if metrics is None:
        metrics = [m for m in DEFAULT_METRICS if num_negatives is not None or "_" not in m]
    negatives = None
    if num_negatives is not None:
        negatives = torch.as_tensor(num_negatives).flatten()
        if negatives.numel() != ranks.numel():
            raise ValueError(
                f"num_negatives has {negatives.numel()} entries for {ranks.numel()} ranks"
            )
    out: dict[str, float] = {}
    for name in metrics:
        spec = parse_metric(name)
        if spec.kind == "mr":
            value = ranks.mean()
        elif spec.kind == "mrr":
            value = ranks.reciprocal().mean()
        elif spec.num_samples is None:
            value = (ranks <= spec.k).double().mean()
        elif negatives is None:
            raise ValueError(f"metric {name!r} needs num_negatives")
        else:
            value = sampled_hits(ranks, negatives, spec.k, spec.num_samples).mean()
        out[name] = float(value)
    return out


# ---------------------------------------------------------------------------
# Evaluation loop


@dataclass
class KGRanks:
    """Raw filtered ranks of :func:`kg_ranks`, one entry per test triple.

    Args:
        tail: ``[n]`` ranks of ``t`` for ``(h, r, ?)``.
        head: ``[n]`` ranks of ``h`` for ``(t, r + R, ?)``.
        tail_num_negatives: ``[n]`` filtered negatives of each tail query.
        head_num_negatives: ``[n]`` filtered negatives of each head query.
    """

    tail: Tensor
    head: Tensor
    tail_num_negatives: Tensor
    head_num_negatives: Tensor


ScoreFn = Callable[[Tensor, Tensor], Tensor]


@torch.no_grad()
def kg_ranks(
    score_fn: ScoreFn,
    triples: Tensor,
    filter_index: FilterIndex,
    batch_size: int = 128,
    mode: str = "pessimistic",
    device: torch.device | str | None = None,
) -> KGRanks:
    """Filtered ranks of both directions of every triple (see :func:`evaluate_kg`)."""
    if triples.dim() != 2 or triples.size(1) != 3:
        raise ValueError(f"triples must have shape [n, 3], got {list(triples.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    num_relations, num_entities = filter_index.num_relations, filter_index.num_entities
    triples = triples.long().cpu()
    _check_ids(triples, num_entities, num_relations, "triples")
    head, relation, tail = triples.t()
    # tail queries (h, r, ?) then head queries as (t, r + R, ?)
    query_head = torch.cat([head, tail])
    query_relation = torch.cat([relation, relation + num_relations])
    target = torch.cat([tail, head])
    device = torch.device(device) if device is not None else None

    ranks, negatives = [], []
    for start in range(0, target.numel(), batch_size):
        part = slice(start, start + batch_size)
        h, r = query_head[part], query_relation[part]
        if device is not None:
            h, r = h.to(device), r.to(device)
        scores = score_fn(h, r)
        if scores.shape != (h.numel(), num_entities):
            raise ValueError(
                f"score_fn must return [batch, num_entities] = [{h.numel()}, {num_entities}], "
                f"got {list(scores.shape)}"
            )
        mask = filter_index.mask(query_head[part], query_relation[part])  # (b, N)
        rank, num_negative = filtered_ranks(scores, target[part], mask, mode)
        ranks.append(rank.cpu())
        negatives.append(num_negative.cpu())
    if not ranks:
        empty = torch.empty(0, dtype=torch.long)
        return KGRanks(empty, empty, empty, empty)
    rank, num_negative = torch.cat(ranks), torch.cat(negatives)
    n = triples.size(0)
    return KGRanks(rank[:n], rank[n:], num_negative[:n], num_negative[n:])


def evaluate_kg(
    score_fn: ScoreFn,
    triples: Tensor,
    filter_index: FilterIndex,
    num_entities: int | None = None,
    num_relations: int | None = None,
    batch_size: int = 128,
    mode: str = "pessimistic",
    metrics: Sequence[str] = DEFAULT_METRICS,
    device: torch.device | str | None = None,
    return_ranks: bool = False,
) -> dict[str, float] | tuple[dict[str, float], KGRanks]:
    """Filtered ranking evaluation of tail and head queries, averaged over both.

    Each triple ``(h, r, t)`` gives the tail query ``(h, r, ?)`` with answer
    ``t`` and the head query ``(t, r + R, ?)`` with answer ``h``; each is ranked
    against all entities with the known true answers of ``filter_index``
    removed (see :func:`filtered_ranks`). Queries are scored ``batch_size`` at
    a time, so memory is ``O(batch_size * num_entities)``.

    Args:
        score_fn: ``score_fn(heads [b], relations [b]) -> [b, num_entities]``,
            the scores of every candidate tail (higher is better); relations
            lie in ``[0, 2R)``. Called under :func:`torch.no_grad`.
        triples: ``[n, 3]`` test triples, relation in ``[0, R)``.
        filter_index: from :func:`build_filter_index` or
            :meth:`FilterIndex.from_data`.
        num_entities: checked against ``filter_index`` when given.
        num_relations: the number of *original* relations ``R``
            (``data.num_relations // 2``); checked when given.
        batch_size: queries per ``score_fn`` call.
        mode: tie handling, ``"pessimistic"`` (default), ``"optimistic"``, ``"average"``.
        metrics: metric names (:func:`parse_metric`).
        device: where query tensors are sent before ``score_fn`` (default: CPU).
        return_ranks: also return the :class:`KGRanks`.

    Returns:
        ``{metric: value}`` over both directions, plus ``tail_<metric>`` and
        ``head_<metric>`` per direction; with ``return_ranks``, a tuple
        ``(metrics, ranks)``.
    """
    if num_entities is not None and num_entities != filter_index.num_entities:
        raise ValueError(
            f"num_entities={num_entities} but the filter index has {filter_index.num_entities}"
        )
    if num_relations is not None and num_relations != filter_index.num_relations:
        hint = (
            " (pass R = data.num_relations // 2)"
            if (num_relations == 2 * filter_index.num_relations)
            else ""
        )
        raise ValueError(
            f"num_relations={num_relations} but the filter index has R="
            f"{filter_index.num_relations} original relations{hint}"
        )
    if triples.size(0) == 0:
        raise ValueError("no triples to evaluate")
    result = kg_ranks(score_fn, triples, filter_index, batch_size, mode, device)
    out = kg_metrics(result, metrics)
    return (out, result) if return_ranks else out


def kg_metrics(ranks: KGRanks, metrics: Sequence[str] = DEFAULT_METRICS) -> dict[str, float]:
    """The metrics of :func:`evaluate_kg` from its ranks (:func:`kg_ranks`).

    Lets the ranks of several slices of the triples (e.g. one per process in
    distributed evaluation, concatenated in order) give the metrics of the whole.

    Returns:
        ``{metric: value}`` over both directions, plus ``tail_<metric>`` and
        ``head_<metric>`` per direction.
    """
    out = ranking_metrics(
        torch.cat([ranks.tail, ranks.head]),
        torch.cat([ranks.tail_num_negatives, ranks.head_num_negatives]),
        metrics,
    )
    for side, rank, negatives in (
        ("tail", ranks.tail, ranks.tail_num_negatives),
        ("head", ranks.head, ranks.head_num_negatives),
    ):
        for name, value in ranking_metrics(rank, negatives, metrics).items():
            out[f"{side}_{name}"] = value
    return out
