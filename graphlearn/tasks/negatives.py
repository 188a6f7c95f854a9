r"""Negative sampling for knowledge-graph training (NBFNet protocol, DESIGN.md §2).

A training batch of true triples ``(h, r, t)`` becomes a batch of tail queries
with candidate answers: the first half of the batch corrupts tails, asking
``(h, r, ?)`` with answer ``t``; the second half corrupts heads, asked through
the inverse relation as ``(t, r + R, ?)`` with answer ``h``. Every query gets
``k`` negative answers.

*Strict* negatives are never a known true answer of their query (nor the
positive itself). They are drawn uniformly from the complement of the known
answers, exactly and without rejection: if a query's known answers sorted are
:math:`a_0 < a_1 < \dots < a_{m-1}` among :math:`N` entities, the
:math:`u`-th non-answer (:math:`0 \le u < N - m`) is

.. math::
    e(u) = u + |\{i : a_i - i \le u\}|,

because :math:`a_i - i` counts the non-answers below :math:`a_i`. With all
queries' :math:`a_i - i` laid out in one sorted array, a single
``searchsorted`` maps a ``[b, k]`` block of uniform draws to entities. Negatives
are drawn with replacement (as in NBFNet and RotatE), so a query with few
free candidates still gets ``k`` of them.

Which answers are "known" is the caller's choice, through the
:class:`~graphlearn.metrics.ranking.FilterIndex` it passes. For training use
:func:`training_filter_index` (the training triples only, as NBFNet-PyG's
``strict_negative_mask`` does); passing the evaluation filter (train + valid +
test) would tell the model which held-out triples are true.

For homogeneous full-graph link models (the ``ogbl`` task, OGB's examples),
:class:`StrictPairSampler` draws random node pairs that are not edges of a fixed
graph, as ``torch_geometric.utils.negative_sampling`` does, from a generator.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor
from torch_geometric.data import Data

from graphlearn.metrics.ranking import FilterIndex, build_filter_index

__all__ = [
    "KGNegativeBatch",
    "StrictPairSampler",
    "sample_kg_negatives",
    "strict_negative_tails",
    "training_filter_index",
    "uniform_negative_tails",
]


class KGNegativeBatch(NamedTuple):
    """A batch of tail queries with one positive and ``k`` negative answers each.

    Args:
        head: ``[b]`` query entities (``h`` for a tail corruption, ``t`` for a
            head corruption).
        relation: ``[b]`` query relations in ``[0, 2R)`` (``r`` or ``r + R``).
        tail: ``[b]`` the true answers.
        negative: ``[b, k]`` negative answers.
        corrupt_head: ``[b]`` true where the original triple's head was
            corrupted (the query uses the inverse relation).
    """

    head: Tensor
    relation: Tensor
    tail: Tensor
    negative: Tensor
    corrupt_head: Tensor


def training_filter_index(data: Data) -> FilterIndex:
    """The known answers of the training triples of a KG from :mod:`graphlearn.data.kg`.

    Both directions are indexed (``(h, r) -> t`` and ``(t, r + R) -> h``). Only
    ``data.train_triples`` are used, so strict training negatives never depend
    on validation or test triples.
    """
    return build_filter_index(data.train_triples, int(data.num_relations) // 2, int(data.num_nodes))


def _uniform(
    shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device
) -> Tensor:
    """Float64 draws in ``[0, 1)`` from ``generator`` (on its device), moved to ``device``."""
    source = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, dtype=torch.float64, device=source).to(device)


def _check_num_negative(num_negative: int) -> int:
    if int(num_negative) != num_negative or num_negative < 1:
        raise ValueError(f"num_negative must be a positive integer, got {num_negative!r}")
    return int(num_negative)


def uniform_negative_tails(
    num_queries: int,
    num_entities: int,
    num_negative: int,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Non-strict negatives: ``[num_queries, k]`` entities uniform over ``[0, N)``.

    Kept for comparison with strict sampling; these may hit true answers.
    """
    k = _check_num_negative(num_negative)
    draws = _uniform((num_queries, k), generator, torch.device(device))
    return (draws * num_entities).long().clamp_(max=num_entities - 1)


def strict_negative_tails(
    heads: Tensor,
    relations: Tensor,
    positives: Tensor,
    filter_index: FilterIndex,
    num_negative: int,
    generator: torch.Generator | None = None,
    ranges: Tensor | None = None,
) -> Tensor:
    """Strict negative tails of the queries ``(heads, relations, ?)``.

    Each negative is uniform over the entities that are neither a known answer
    of its query in ``filter_index`` nor its positive (see the module
    docstring for the method), within the query's entity range when ``ranges``
    is given. Draws come from ``generator`` only.

    Args:
        heads: ``[b]`` query entities.
        relations: ``[b]`` query relations in ``[0, 2R)``.
        positives: ``[b]`` the true answers (always excluded, even when absent
            from ``filter_index``).
        filter_index: the known answers, e.g. :func:`training_filter_index`.
        num_negative: ``k``, negatives per query.
        generator: the source of randomness; ``None`` uses torch's global RNG.
        ranges: ``[b, 2]`` ``[lo, hi)`` entity range of each query (typed negatives:
            the ids of the positive's entity type, e.g. ogbl-biokg's), or ``None``
            for all entities. The positive must lie in its range.

    Returns:
        ``[b, k]`` LongTensor of entity ids on the filter index's device.

    Raises:
        ValueError: bad shapes, ``k < 1``, a positive outside its range, or a
            query whose every candidate is a known answer (no negative exists; the
            query is named).
    """
    k = _check_num_negative(num_negative)
    if heads.dim() != 1 or relations.shape != heads.shape or positives.shape != heads.shape:
        raise ValueError(
            "heads, relations and positives must all be [b], got "
            f"{list(heads.shape)}, {list(relations.shape)}, {list(positives.shape)}"
        )
    device = filter_index.keys.device
    num = filter_index.num_entities
    b = heads.numel()
    heads, relations = heads.to(device).long(), relations.to(device).long()
    positives = positives.to(device).long()
    if b == 0:
        return torch.empty(0, k, dtype=torch.long, device=device)
    if int(positives.min()) < 0 or int(positives.max()) >= num:
        raise ValueError(f"positives must be entity ids in [0, {num})")
    if ranges is None:
        lo = torch.zeros(b, dtype=torch.long, device=device)
        size = torch.full((b,), num, dtype=torch.long, device=device)
    else:
        ranges = ranges.to(device).long()
        if ranges.shape != (b, 2):
            raise ValueError(f"ranges must be [b, 2] = [{b}, 2], got {list(ranges.shape)}")
        lo, size = ranges[:, 0], ranges[:, 1] - ranges[:, 0]
        if bool(((positives < lo) | (positives >= ranges[:, 1])).any()):
            q = int(((positives < lo) | (positives >= ranges[:, 1])).nonzero()[0])
            raise ValueError(f"positive {int(positives[q])} of query {q} lies outside its "
                             f"range [{int(lo[q])}, {int(ranges[q, 1])})")

    # known answers in range plus the positive, as sorted unique (query, offset) pairs;
    # offset = entity - lo of the query
    rows, cols = filter_index.answer_pairs(heads, relations)  # (A,), (A,)
    cols = cols - lo[rows]
    keep = (cols >= 0) & (cols < size[rows])
    rows, cols = rows[keep], cols[keep]
    own = torch.arange(b, device=device)
    pairs = torch.unique(torch.cat([rows * num + cols, own * num + (positives - lo)]))  # sorted
    rows, cols = pairs // num, pairs % num
    counts = torch.bincount(rows, minlength=b)  # (b,) excluded answers per query
    free = size - counts  # (b,)
    if bool((free <= 0).any()):
        q = int((free <= 0).nonzero()[0])
        raise ValueError(
            f"query (head={int(heads[q])}, relation={int(relations[q])}) has no strict "
            f"negative: all {int(size[q])} candidate entities are known answers"
        )
    start = torch.cumsum(counts, 0) - counts  # (b,) first pair of each query
    # a_i - i: non-answers below the i-th answer of its query, in [0, size - m]
    below = cols - (torch.arange(pairs.numel(), device=device) - start[rows])  # (A,)
    stride = num + 1
    sorted_keys = rows * stride + below  # (A,) globally sorted

    u = (_uniform((b, k), generator, device) * free.unsqueeze(1)).long()  # (b, k)
    u = torch.minimum(u, (free - 1).unsqueeze(1))
    query_keys = own.unsqueeze(1) * stride + u  # (b, k)
    at_or_below = torch.searchsorted(sorted_keys, query_keys, right=True) - start.unsqueeze(1)
    return lo.unsqueeze(1) + u + at_or_below  # (b, k): e(u) = lo + u + #{i : a_i - i <= u}


def sample_kg_negatives(
    triples: Tensor,
    filter_index: FilterIndex,
    num_negative: int,
    generator: torch.Generator | None = None,
    strict: bool = True,
    entity_ranges: Tensor | None = None,
) -> KGNegativeBatch:
    """Turn true triples into tail queries with ``k`` negatives, half of them head corruptions.

    The first ``ceil(b / 2)`` triples corrupt the tail: query ``(h, r, ?)``,
    answer ``t``. The others corrupt the head through the inverse relation:
    query ``(t, r + R, ?)``, answer ``h``. Shuffle the triples before batching
    so that each triple lands in either half.

    Args:
        triples: ``[b, 3]`` true ``(head, relation, tail)`` triples, relation
            in ``[0, R)``.
        filter_index: known answers of both directions
            (:func:`training_filter_index` for training).
        num_negative: ``k``, negatives per query.
        generator: the source of randomness (``None``: torch's global RNG).
        strict: draw strict negatives (default); ``False`` draws uniformly
            over all entities, true answers included.
        entity_ranges: ``[N, 2]``, the ``[lo, hi)`` id range of each entity's type
            (typed KGs such as ogbl-biokg, whose types are contiguous id blocks):
            each query's negatives are drawn from its answer's type only, as
            TorchDrug's ``heterogeneous_negative`` and OGB's biokg example do.
            Strict sampling only.

    Returns:
        :class:`KGNegativeBatch` on the filter index's device.
    """
    if triples.dim() != 2 or triples.size(1) != 3:
        raise ValueError(f"triples must have shape [b, 3], got {list(triples.shape)}")
    device = filter_index.keys.device
    num_relations = filter_index.num_relations
    head, relation, tail = triples.to(device).long().t()
    if triples.numel() and (int(relation.min()) < 0 or int(relation.max()) >= num_relations):
        raise ValueError(
            f"triple relations must lie in [0, {num_relations}) (original relations; "
            "the inverse r + R is added here)"
        )
    b = head.numel()
    corrupt_head = torch.arange(b, device=device) >= (b + 1) // 2  # (b,)
    query_head = torch.where(corrupt_head, tail, head)
    query_relation = torch.where(corrupt_head, relation + num_relations, relation)
    answer = torch.where(corrupt_head, head, tail)
    if strict:
        ranges = None if entity_ranges is None else entity_ranges.to(device)[answer]
        negative = strict_negative_tails(
            query_head, query_relation, answer, filter_index, num_negative, generator, ranges
        )
    elif entity_ranges is not None:
        raise ValueError("entity_ranges needs strict=True")
    else:
        negative = uniform_negative_tails(
            b, filter_index.num_entities, num_negative, generator, device
        )
    return KGNegativeBatch(query_head, query_relation, answer, negative, corrupt_head)


class StrictPairSampler:
    """Random strict negative pairs of one fixed graph.

    A draw is ``num`` ordered node pairs ``(u, v)`` with ``u != v``, never an edge
    listed in ``edge_index`` (list both directions of an undirected graph) and
    distinct within the draw: what ``torch_geometric.utils.negative_sampling``
    returns to OGB's link examples, but every random number comes from the
    ``generator`` passed in, and the graph's sorted pair keys are built once here
    instead of on every call (on ogbl-ddi a 64k-pair draw then takes milliseconds,
    against about a second for a sampler that re-sorts the 2.1M edges).

    Pairs are drawn uniformly from ``[0, N)^2`` and rejected when forbidden or
    repeated; when fewer than twice ``num`` pairs are free (tiny graphs), the free
    pairs are enumerated and a random subset taken.

    Args:
        edge_index: the forbidden directed pairs ``[2, E]``.
        num_nodes: ``N``.

    Raises:
        ValueError: ``edge_index`` is not ``[2, E]`` or refers to a node outside
            ``[0, N)``; from :meth:`sample`, fewer than ``num`` free pairs.
    """

    def __init__(self, edge_index: Tensor, num_nodes: int) -> None:
        n = int(num_nodes)
        if edge_index.dim() != 2 or edge_index.size(0) != 2:
            raise ValueError(f"StrictPairSampler: edge_index must be [2, E], got "
                             f"{list(edge_index.shape)}")
        src, dst = edge_index.detach().cpu().long()
        if src.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= n):
            raise ValueError(f"StrictPairSampler: node ids must be in [0, {n}), got "
                             f"[{int(edge_index.min())}, {int(edge_index.max())}]")
        keep = src != dst
        self.num_nodes = n
        self.forbidden = torch.unique(src[keep] * n + dst[keep])  # sorted pair keys
        self.num_free = n * (n - 1) - self.forbidden.numel()

    def _is_forbidden(self, keys: Tensor) -> Tensor:
        if self.forbidden.numel() == 0:
            return torch.zeros_like(keys, dtype=torch.bool)
        pos = torch.searchsorted(self.forbidden, keys).clamp_(max=self.forbidden.numel() - 1)
        return self.forbidden[pos] == keys

    def sample(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        """``[2, num]`` strict negative pairs (CPU), in sampling order."""
        n, num = self.num_nodes, int(num)
        if num < 0:
            raise ValueError(f"StrictPairSampler: num must be >= 0, got {num}")
        if num > self.num_free:
            raise ValueError(f"StrictPairSampler: cannot draw {num} distinct negative pairs: "
                             f"only {self.num_free} ordered pairs of the {n}-node graph are "
                             f"neither self-loops nor edges")
        if self.num_free < 2 * num:  # few free pairs: enumerate them
            keys = torch.arange(n * n)
            keys = keys[(keys // n != keys % n) & ~self._is_forbidden(keys)]
            keys = keys[torch.randperm(keys.numel(), generator=generator)[:num]]
            return torch.stack([keys // n, keys % n])
        accepted = torch.empty(0, dtype=torch.long)
        free_share = self.num_free / (n * n)
        while accepted.numel() < num:
            draw = int((num - accepted.numel()) / free_share * 1.1) + 16
            keys = torch.randint(n * n, (draw,), generator=generator)
            keys = keys[(keys // n != keys % n) & ~self._is_forbidden(keys)]
            accepted = _first_occurrences(torch.cat([accepted, keys]))[:num]
        return torch.stack([accepted // n, accepted % n])


def _first_occurrences(keys: Tensor) -> Tensor:
    """The distinct values of ``keys`` in the order they first appear."""
    if keys.numel() == 0:
        return keys
    unique, inverse = torch.unique(keys, return_inverse=True)
    first = torch.full((unique.numel(),), keys.numel(), dtype=torch.long)
    first.scatter_reduce_(0, inverse, torch.arange(keys.numel()), reduce="amin")
    return keys[first.sort().values]
