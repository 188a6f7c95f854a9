r"""Full-ranking top-K metrics for recommendation (DESIGN.md §2, RecBole's definitions).

For every evaluated user all items are scored; the items the user has already
seen (training items; for test also validation items) are set to ``-inf`` —
never multiplied by 0 — and the top ``K`` of the rest form the list
:math:`\hat R_K(u)`. With ground truth :math:`R(u)` (distinct items) and
:math:`\mathrm{rel}_i = 1` when the item at rank :math:`i` is in :math:`R(u)`:

.. math::
    \mathrm{Recall@K} = \frac{|\hat R_K \cap R|}{|R|}, \quad
    \mathrm{Precision@K} = \frac{|\hat R_K \cap R|}{K}, \quad
    \mathrm{F1@K} = \frac{2 P R}{P + R}\ (0 \text{ when } P = R = 0),

    \mathrm{NDCG@K} = \frac{\sum_{i=1}^{K} \mathrm{rel}_i / \log_2(i + 1)}
                           {\sum_{i=1}^{\min(|R|, K)} 1 / \log_2(i + 1)}, \quad
    \mathrm{MRR@K} = \frac{1}{\text{rank of the first hit}}\ (0 \text{ without a hit}),

    \mathrm{Hit@K} = [\,|\hat R_K \cap R| > 0\,], \quad
    \mathrm{MAP@K} = \frac{1}{\min(|R|, K)} \sum_{i=1}^{K} \mathrm{rel}_i\,\mathrm{Precision@}i.

Each is computed per user and averaged over the users that have at least one
ground-truth item; users without any are left out (they have no defined
recall). F1 is computed per user from that user's precision and recall, then
averaged. ``coverage@K`` is the fraction of all items that appear in at least
one evaluated user's top-K list.

Ties: among equal scores the item with the **lower id ranks first**, whatever
the device, so lists and metrics are deterministic. Items with score ``-inf``
(seen items, or items a model scores ``-inf``) are never recommended: when
fewer than ``K`` items remain, the list is padded with ``-1`` (a miss, still
counted in Precision's denominator ``K``). A score of NaN is an error.

Users are processed in chunks of ``batch_size``, so memory stays bounded by
``batch_size × num_items`` scores.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from graphlearn.data.interactions import UserItemCSR
from graphlearn.errors import GraphlearnError

__all__ = ["METRICS", "TopKPerUser", "TopKSums", "eval_users", "evaluate_topk", "mask_seen_",
           "topk_items", "topk_metrics", "topk_per_user", "topk_sums"]

#: Metric names, in the order of :func:`evaluate_topk`'s keys for each K.
METRICS: tuple[str, ...] = ("recall", "precision", "f1", "ndcg", "mrr", "hit", "map", "coverage")

ScoreFn = Callable[[Tensor], Tensor]


def mask_seen_(scores: Tensor, seen: UserItemCSR | Tensor | None,
               users: Tensor | None = None) -> Tensor:
    """Set the seen items of each row of ``scores`` to ``-inf``, in place.

    Args:
        scores: ``[B, num_items]`` floating scores.
        seen: per-user item sets (rows ``users`` are used), or a ``[B, num_items]``
            boolean mask, or ``None`` (nothing masked).
        users: ``[B]`` user id of each row; default ``0 .. B-1``.

    Returns:
        ``scores``.
    """
    if seen is None:
        return scores
    if isinstance(seen, Tensor):
        if seen.shape != scores.shape or seen.dtype != torch.bool:
            raise ValueError(f"a seen mask must be bool of shape {tuple(scores.shape)}, "
                             f"got {seen.dtype} {tuple(seen.shape)}")
        return scores.masked_fill_(seen.to(scores.device), float("-inf"))
    if users is None:
        users = torch.arange(scores.size(0), device=scores.device)
    position, items = seen.batch(users.to(scores.device))
    scores[position, items] = float("-inf")
    return scores


def _deterministic_topk(scores: Tensor, k: int) -> Tensor:
    """``[B, k]`` item ids by descending score, ties to the lower id, ``-inf`` -> ``-1``."""
    batch, num_items = scores.shape
    width = min(k, num_items)
    if width == 0 or batch == 0:
        return torch.full((batch, k), -1, dtype=torch.long, device=scores.device)
    threshold = torch.topk(scores, width, dim=1).values[:, -1:]  # (B, 1): the K-th score
    chosen = scores >= threshold
    tied_rows = (chosen.sum(dim=1) > width).nonzero().view(-1)
    if tied_rows.numel():
        # Too many items tie with the K-th score: keep the lowest ids among the ties.
        sub = scores[tied_rows]
        above = sub > threshold[tied_rows]
        equal = sub == threshold[tied_rows]
        need = width - above.sum(dim=1, keepdim=True)
        chosen[tied_rows] = above | (equal & (equal.cumsum(dim=1) <= need))
    ids = chosen.nonzero()[:, 1].view(batch, width)  # ascending ids within each row
    order = torch.sort(scores.gather(1, ids), dim=1, descending=True, stable=True).indices
    ids = ids.gather(1, order)
    ids[scores.gather(1, ids) == float("-inf")] = -1
    if width < k:
        pad = torch.full((batch, k - width), -1, dtype=torch.long, device=scores.device)
        ids = torch.cat([ids, pad], dim=1)
    return ids


def _check_scores(scores: Tensor, batch: int, num_items: int) -> None:
    if scores.dim() != 2 or scores.shape != (batch, num_items):
        raise GraphlearnError(f"scores must have shape ({batch}, {num_items}), "
                              f"got {tuple(scores.shape)}")
    if not scores.is_floating_point():
        raise GraphlearnError(f"scores must be floating point, got {scores.dtype}")
    if bool(torch.isnan(scores).any()):
        raise GraphlearnError("scores contain NaN")


def topk_items(scores: Tensor, seen: UserItemCSR | Tensor | None, k: int,
               users: Tensor | None = None) -> Tensor:
    """The top-``k`` unseen items of each row of ``scores`` (``scores`` is not modified).

    Args:
        scores: ``[B, num_items]`` floating scores.
        seen: items to exclude: per-user item sets (rows ``users``), a
            ``[B, num_items]`` boolean mask, or ``None``.
        k: list length.
        users: ``[B]`` user id of each row when ``seen`` is a :class:`UserItemCSR`;
            default ``0 .. B-1``.

    Returns:
        ``[B, k]`` long item ids, best first; ties go to the lower id; ``-1`` pads
        a row with fewer than ``k`` recommendable items.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if scores.dim() != 2:
        raise GraphlearnError(f"scores must be 2-D [B, num_items], got {tuple(scores.shape)}")
    _check_scores(scores, scores.size(0), scores.size(1))
    scores = mask_seen_(scores.clone(), seen, users)
    return _deterministic_topk(scores, k)


def topk_metrics(hits: Tensor, num_relevant: Tensor, k: int) -> dict[str, Tensor]:
    """Per-user metrics at ``k`` from a hit matrix (see module docstring).

    Args:
        hits: ``[B, >= k]`` boolean: whether the item at each rank is relevant.
        num_relevant: ``[B]`` number of ground-truth items of each user (``> 0``).
        k: cut-off.

    Returns:
        ``{"recall", "precision", "f1", "ndcg", "mrr", "hit", "map"}`` -> ``[B]`` float64.
    """
    rel = hits[:, :k].to(torch.float64)
    num_relevant = num_relevant.to(device=rel.device, dtype=torch.float64)
    ranks = torch.arange(1, k + 1, device=rel.device, dtype=torch.float64)
    num_hits = rel.sum(dim=1)
    recall = num_hits / num_relevant
    precision = num_hits / k
    denominator = precision + recall
    f1 = torch.where(denominator > 0, 2 * precision * recall / denominator.clamp_min(1e-300),
                     torch.zeros_like(denominator))
    discount = 1.0 / torch.log2(ranks + 1)
    ideal_len = torch.clamp(num_relevant, max=k).long()  # min(|R|, K)
    idcg = torch.cumsum(discount, 0)[ideal_len - 1]
    ndcg = (rel * discount).sum(dim=1) / idcg
    first = torch.where(num_hits > 0, rel.argmax(dim=1).to(torch.float64) + 1,
                        torch.full_like(num_hits, math.inf))
    mrr = 1.0 / first
    hit = (num_hits > 0).to(torch.float64)
    precision_at = torch.cumsum(rel, dim=1) / ranks
    average_precision = (precision_at * rel).sum(dim=1) / ideal_len.to(torch.float64)
    return {"recall": recall, "precision": precision, "f1": f1, "ndcg": ndcg, "mrr": mrr,
            "hit": hit, "map": average_precision}


class TopKSums(NamedTuple):
    """Unnormalised top-K results of a set of users (:func:`topk_sums`).

    Attributes:
        sums: ``{"recall@10": ..., ...}`` -> 0-d float64 tensor: the sum of the
            per-user values (every metric but coverage).
        num_users: how many users were evaluated.
        covered: ``{k: [num_items] bool}``: items in at least one user's top-``k``.
    """

    sums: dict[str, Tensor]
    num_users: int
    covered: dict[int, Tensor]

    def result(self, num_items: int) -> dict[str, float]:
        """The metrics: sums divided by :attr:`num_users`, coverage over ``num_items``."""
        out: dict[str, float] = {}
        for k in sorted(self.covered):
            for name in METRICS:
                key = f"{name}@{k}"
                out[key] = (float(self.covered[k].sum()) / num_items if name == "coverage"
                            else float(self.sums[key]) / self.num_users)
        return out


def _check_eval_args(eval_items: UserItemCSR, seen_items: UserItemCSR | None,
                     num_items: int | None, ks: Sequence[int],
                     batch_size: int) -> tuple[int, list[int]]:
    num_items = eval_items.num_items if num_items is None else int(num_items)
    if eval_items.num_items != num_items:
        raise ValueError(f"eval_items has {eval_items.num_items} items, num_items={num_items}")
    if seen_items is not None and (seen_items.num_users, seen_items.num_items) != (
        eval_items.num_users, num_items
    ):
        raise ValueError("seen_items and eval_items cover different users or items")
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise ValueError(f"ks must be positive integers, got {ks}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return num_items, ks


def eval_users(eval_items: UserItemCSR) -> Tensor:
    """The users :func:`evaluate_topk` evaluates: those with ground truth, ascending."""
    return (eval_items.counts() > 0).nonzero().view(-1)


class TopKPerUser(NamedTuple):
    """Per-user top-K results (:func:`topk_per_user`).

    Attributes:
        values: ``{"recall@10": [U] float64, ...}``: each evaluated user's value of
            every metric but coverage.
        lists: ``[U, max K]`` int64: each user's top items, best first (``-1`` pads).
        num_items: the number of items (coverage's denominator).
        ks: the cut-offs, ascending.
    """

    values: dict[str, Tensor]
    lists: Tensor
    num_items: int
    ks: list[int]

    def result(self, users: Tensor | None = None) -> dict[str, float]:
        """The metrics of the users at positions ``users`` (repeats allowed; default
        all): means of their values, coverage from their lists."""
        out: dict[str, float] = {}
        index = slice(None) if users is None else users
        lists = self.lists[index]
        for k in self.ks:
            for name in METRICS:
                key = f"{name}@{k}"
                if name == "coverage":
                    items = lists[:, :k].reshape(-1)
                    out[key] = float(items[items >= 0].unique().numel()) / self.num_items
                else:
                    out[key] = float(self.values[key][index].mean())
        return out

    def sums(self) -> TopKSums:
        """The unnormalised :class:`TopKSums` of these users (for all-reduce)."""
        covered = {}
        for k in self.ks:
            mask = torch.zeros(self.num_items, dtype=torch.bool)
            items = self.lists[:, :k].reshape(-1)
            mask[items[items >= 0]] = True
            covered[k] = mask
        return TopKSums({key: values.sum() for key, values in self.values.items()},
                        int(self.lists.size(0)), covered)


def topk_per_user(
    score_fn: ScoreFn | Tensor,
    eval_items: UserItemCSR,
    seen_items: UserItemCSR | None = None,
    num_items: int | None = None,
    ks: Sequence[int] = (10, 20),
    batch_size: int = 1024,
    users: Tensor | None = None,
) -> TopKPerUser:
    """Every metric of every user in ``users`` and their top lists (CPU tensors).

    Arguments as :func:`topk_sums`. The building block of :func:`topk_sums` and of
    bootstrap intervals over users (:mod:`graphlearn.metrics.bootstrap`).
    """
    num_items, ks = _check_eval_args(eval_items, seen_items, num_items, ks, batch_size)
    if users is None:
        users = eval_users(eval_items)
    max_k = ks[-1]
    per_user: dict[str, list[Tensor]] = {f"{name}@{k}": [] for k in ks for name in METRICS
                                         if name != "coverage"}
    lists: list[Tensor] = [torch.empty(0, max_k, dtype=torch.long)]
    with torch.no_grad():
        for start in range(0, users.numel(), batch_size):
            batch = users[start:start + batch_size]
            if isinstance(score_fn, Tensor):
                scores = score_fn[batch.to(score_fn.device)]
            else:
                scores = score_fn(batch)
            _check_scores(scores, batch.numel(), num_items)
            device = scores.device
            scores = mask_seen_(scores.clone(), seen_items, batch.to(device))
            top = _deterministic_topk(scores, max_k)  # (B, max_k)
            truth = eval_items.to_dense(batch.to(device))  # (B, num_items)
            hits = truth.gather(1, top.clamp_min(0)) & (top >= 0)
            num_relevant = eval_items.counts()[batch].to(device)
            for k in ks:
                for name, values in topk_metrics(hits, num_relevant, k).items():
                    per_user[f"{name}@{k}"].append(values.cpu())
            lists.append(top.cpu())
    values = {key: torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64)
              for key, parts in per_user.items()}
    return TopKPerUser(values, torch.cat(lists), num_items, ks)


def topk_sums(
    score_fn: ScoreFn | Tensor,
    eval_items: UserItemCSR,
    seen_items: UserItemCSR | None = None,
    num_items: int | None = None,
    ks: Sequence[int] = (10, 20),
    batch_size: int = 1024,
    users: Tensor | None = None,
) -> TopKSums:
    """Per-user metric sums, user count and covered items of ``users`` (unnormalised).

    The building block of :func:`evaluate_topk`, for evaluations split over
    processes: each evaluates a disjoint share of :func:`eval_users`, the sums,
    counts and coverage masks are added up (``all_reduce``), then
    :meth:`TopKSums.result` divides once. Arguments as :func:`evaluate_topk`;
    ``users`` (default :func:`eval_users`) must all have ground truth and may be
    empty (zero sums).
    """
    # per-user values, summed once at the end: the result does not depend on batch_size
    return topk_per_user(score_fn, eval_items, seen_items, num_items, ks, batch_size,
                         users).sums()


def evaluate_topk(
    score_fn: ScoreFn | Tensor,
    eval_items: UserItemCSR,
    seen_items: UserItemCSR | None = None,
    num_items: int | None = None,
    ks: Sequence[int] = (10, 20),
    batch_size: int = 1024,
) -> dict[str, float]:
    """Full-ranking top-K evaluation over all users with ground truth.

    Args:
        score_fn: ``users [B] -> scores [B, num_items]`` (called under
            ``torch.no_grad()`` on user chunks, on any device), or a full
            ``[num_users, num_items]`` score matrix.
        eval_items: ground-truth items per user (e.g. ``split.items("test")``).
        seen_items: items masked to ``-inf`` (e.g. ``split.seen("test")``).
        num_items: number of items; default ``eval_items.num_items``.
        ks: cut-offs.
        batch_size: users per chunk.

    Returns:
        ``{"recall@10": ..., "precision@10": ..., "f1@10": ..., "ndcg@10": ...,
        "mrr@10": ..., "hit@10": ..., "map@10": ..., "coverage@10": ..., ...}``
        for every K in ``ks``: means over users with at least one ground-truth item
        (``coverage`` over all items).

    Raises:
        GraphlearnError: no user has ground truth, bad score shape, NaN scores.
    """
    num_items, ks = _check_eval_args(eval_items, seen_items, num_items, ks, batch_size)
    users = eval_users(eval_items)
    if users.numel() == 0:
        raise GraphlearnError("no user has ground-truth items to evaluate")
    sums = topk_sums(score_fn, eval_items, seen_items, num_items, ks, batch_size, users)
    return sums.result(num_items)
