r"""Top-K recommendation from implicit feedback (DESIGN.md §2, RecBole's protocol).

Data
----
The dataset (an interaction graph of :mod:`graphlearn.data.interactions`) is
prepared as the config says, in this order:

1. :func:`~graphlearn.data.interactions.to_implicit` with
   ``data.rating_threshold`` (``null``: every rating is a positive);
2. :func:`~graphlearn.data.interactions.k_core` when ``data.user_k_core`` or
   ``data.item_k_core`` is set;
3. the split: ``data.split: random`` (per user, ``data.ratios``, default
   80/10/10, seed ``data.split_seed``, default RecBole's 2020) or ``temporal``
   (per-user leave-last-out).

Training
--------
Each epoch visits every training interaction once, in a random order, in
batches of ``train.batch_size`` positives; each positive ``(u, i)`` gets
``train.num_negative`` negative items drawn **uniformly from the items u has
not interacted with in training** (as RecBole's sampler; exact, without
rejection loops: see :class:`UnseenSampler`). Loss: BPR,

.. math::
    \mathcal{L} = -\frac{1}{Bk}\sum_{b=1}^{B}\sum_{j=1}^{k}
        \log\sigma\big(\hat y_{u_b i_b} - \hat y_{u_b n_{bj}}\big)
        + \mathcal{L}_{reg},

with the model's own regulariser (``reg_weight``). Every random draw comes
from the trainer's generator, so resumed runs are exact.

Evaluation
----------
Full ranking over all items with :func:`graphlearn.metrics.topk.evaluate_topk`:
ground truth = the split's items, items seen in training (and, for test, in
validation) masked to ``-inf``. The model's representations are computed once
per evaluation (``model.encode()``), then users are scored in chunks of
``eval.batch_size``. Reported: ``recall``, ``precision``, ``f1``, ``ndcg``,
``mrr``, ``hit``, ``map``, ``coverage`` at every K of ``eval.ks``
(``"ndcg@10"``, ...).

Distributed (``torchrun``, :mod:`graphlearn.tasks.base`): every rank draws the
same global permutation and negatives, then keeps its contiguous share
(``tensor_split``) of each batch; evaluation scores a contiguous share of the
users on each rank and all-reduces the per-user metric sums, the user count
and the coverage item masks (SUM, then ``> 0``) once, so each user counts once.

Recommending new items (:meth:`RecommendationTask.recommend`) masks every known
interaction, train, validation and test alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch_geometric.data import Data

from graphlearn.config import Config
from graphlearn.data.interactions import (
    DEFAULT_SEED,
    InteractionSplit,
    UserItemCSR,
    check_interactions,
    interaction_stats,
    k_core,
    split_random,
    split_temporal,
    to_implicit,
)
from graphlearn.errors import ConfigError, GraphlearnError
from graphlearn.metrics.bootstrap import EvaluationSample
from graphlearn.metrics.topk import (
    METRICS,
    TopKSums,
    eval_users,
    evaluate_topk,
    topk_items,
    topk_per_user,
    topk_sums,
)
from graphlearn.models.losses import bpr_loss
from graphlearn.tasks.base import TASKS, Task

__all__ = ["RecBatch", "RecommendationTask", "UnseenSampler", "prepare_interactions"]


class RecBatch(NamedTuple):
    """A training batch: ``user [B]``, ``pos_item [B]``, ``neg_item [B, k]`` (long)."""

    user: Tensor
    pos_item: Tensor
    neg_item: Tensor


class UnseenSampler:
    r"""Uniform sampling of items a user has not seen, exact and without rejection.

    If user :math:`u`'s seen items sorted are :math:`a_0 < \dots < a_{m-1}`
    among :math:`I` items, the :math:`r`-th unseen item (:math:`0 \le r < I - m`)
    is :math:`r + |\{j : a_j - j \le r\}|`, since :math:`a_j - j` counts the
    unseen items below :math:`a_j`. All users' :math:`a_j - j` are laid out in
    one sorted array (offset by user), so one ``searchsorted`` maps a block of
    uniform draws to items.

    A user who has seen every item has no negatives; such a user gets items
    drawn uniformly from all items (documented degenerate case).

    Args:
        seen: per-user item sets (the training interactions).
    """

    def __init__(self, seen: UserItemCSR) -> None:
        self.num_items = seen.num_items
        counts = seen.counts()
        rank = torch.arange(seen.nnz) - torch.repeat_interleave(seen.indptr[:-1], counts)
        users = torch.repeat_interleave(torch.arange(seen.num_users), counts)
        stride = self.num_items + 1
        self.keys = users * stride + (seen.indices - rank)  # sorted: by user, then a_j - j
        self.indptr = seen.indptr
        self.free = self.num_items - counts  # unseen items per user

    def sample(self, users: Tensor, k: int, generator: torch.Generator) -> Tensor:
        """``[B, k]`` items, each uniform over the unseen items of its row's user."""
        free = self.free[users].unsqueeze(1)  # (B, 1)
        draw = torch.rand(users.numel(), k, generator=generator, dtype=torch.float64)
        none_free = free == 0
        span = torch.where(none_free, torch.full_like(free, self.num_items), free)
        r = torch.minimum((draw * span).long(), span - 1)  # (B, k) in [0, span)
        stride = self.num_items + 1
        query = users.unsqueeze(1) * stride + r
        below = torch.searchsorted(self.keys, query, right=True) \
            - self.indptr[users].unsqueeze(1)
        return torch.where(none_free, r, r + below)


def prepare_interactions(data: Data, cfg: Config) -> tuple[Data, InteractionSplit]:
    """Steps 1–3 of the module docstring: implicit feedback, k-core, split."""
    check_interactions(data)
    d = cfg.data
    data = to_implicit(data, d.rating_threshold)
    if d.user_k_core or d.item_k_core:
        data = k_core(data, d.user_k_core, d.item_k_core)
    if data.user.numel() == 0:
        raise GraphlearnError(f"{d.name}: no interactions left after the rating threshold "
                              f"and k-core filters")
    if d.split == "random":
        seed = DEFAULT_SEED if d.split_seed is None else d.split_seed
        split = split_random(data, d.ratios, seed=seed)
    else:
        if d.split_seed is not None:
            raise ConfigError("data.split_seed: the temporal split is not random; remove it")
        split = split_temporal(data)
    return data, split


@TASKS.register("recommendation")
class RecommendationTask(Task):
    """Top-K recommendation with BPR and full-ranking evaluation (module docstring).

    Attributes (after setup):
        data: the prepared interaction graph (implicit, filtered).
        split: its :class:`~graphlearn.data.interactions.InteractionSplit`.
    """

    name = "recommendation"
    losses = ("bpr",)
    supports_distributed = True

    def setup(self, data: Any) -> None:
        self.data, self.split = prepare_interactions(data, self.cfg)
        self.num_users = int(self.data.num_users)
        self.num_items = int(self.data.num_items)
        self.train_pairs = self.split.pairs("train")  # (2, n_train), file order
        self._sampler = UnseenSampler(self.split.items("train"))
        self._truth = {s: self.split.items(s) for s in ("valid", "test")}
        self._seen = {s: self.split.seen(s) for s in ("valid", "test")}
        self._known: UserItemCSR | None = None
        if self.train_pairs.size(1) == 0:
            raise GraphlearnError(f"{self.cfg.data.name}: the training split is empty")

    # -- model ---------------------------------------------------------------------------

    def model_context(self) -> dict[str, Any]:
        return {"num_users": self.num_users, "num_items": self.num_items,
                "train_edges": self.train_pairs.to(self.device)}

    # -- training ------------------------------------------------------------------------

    def num_batches(self) -> int:
        return -(-self.train_pairs.size(1) // self.cfg.train.batch_size)

    def train_batches(self, epoch: int, generator: torch.Generator) -> Iterator[RecBatch]:
        n = self.train_pairs.size(1)
        size = self.cfg.train.batch_size
        k = self.cfg.train.num_negative
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, size):
            index = order[start:start + size]
            user = self.train_pairs[0, index]
            pos_item = self.train_pairs[1, index]
            neg_item = self._sampler.sample(user, k, generator)  # (B, k)
            if self.world_size > 1:  # this rank's contiguous share of the global batch
                share = torch.arange(user.numel()).tensor_split(self.world_size)[self.rank]
                user, pos_item, neg_item = user[share], pos_item[share], neg_item[share]
            yield RecBatch(user, pos_item, neg_item)

    def training_step(self, model: nn.Module, batch: RecBatch) -> Tensor:
        user, pos_item, neg_item = (t.to(self.device) for t in batch)
        user_repr, item_repr = model.encode()  # (U, d), (I, d)
        u = user_repr[user]  # (B, d)
        pos_score = model.score(u, item_repr[pos_item])  # (B,)
        neg_score = model.score(u.unsqueeze(1), item_repr[neg_item])  # (B, k)
        return bpr_loss(pos_score, neg_score) + model.regularization(user, pos_item, neg_item)

    # -- evaluation ----------------------------------------------------------------------

    def metric_names(self) -> list[str]:
        return [f"{m}@{k}" for k in sorted(set(self.cfg.eval.ks)) for m in METRICS]

    def has_split(self, split: str) -> bool:
        return self.split.index(split).numel() > 0

    @torch.no_grad()
    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        self._check_split(split)
        score_fn = self._score_fn(model)
        truth, seen = self._truth[split], self._seen[split]
        if self.world_size == 1 or not dist.is_initialized():
            return evaluate_topk(score_fn, truth, seen, num_items=self.num_items,
                                 ks=self.cfg.eval.ks, batch_size=self.cfg.eval.batch_size)
        # this rank's contiguous share of the users, then one SUM over the ranks
        users = eval_users(truth).tensor_split(self.world_size)[self.rank]
        part = topk_sums(score_fn, truth, seen, num_items=self.num_items, ks=self.cfg.eval.ks,
                         batch_size=self.cfg.eval.batch_size, users=users)
        keys = sorted(part.sums)
        ks = sorted(part.covered)
        device = self.device if self.device.type == "cuda" else torch.device("cpu")
        totals = torch.stack([part.sums[key] for key in keys]
                             + [torch.tensor(float(part.num_users), dtype=torch.float64)])
        totals = totals.to(device)
        covered = torch.stack([part.covered[k] for k in ks]).to(device=device, dtype=torch.int32)
        dist.all_reduce(totals, op=dist.ReduceOp.SUM)
        dist.all_reduce(covered, op=dist.ReduceOp.SUM)  # > 0: in some rank's lists
        totals, covered = totals.cpu(), covered.cpu() > 0
        whole = TopKSums({key: totals[i] for i, key in enumerate(keys)}, int(totals[-1]),
                         {k: covered[i] for i, k in enumerate(ks)})
        if whole.num_users == 0:
            raise GraphlearnError("no user has ground-truth items to evaluate")
        return whole.result(self.num_items)

    def _check_split(self, split: str) -> None:
        if split not in self._truth:
            raise ConfigError(f"cannot evaluate on split {split!r} (valid: valid, test)")
        if not self.has_split(split):
            raise GraphlearnError(f"the {split} split is empty (data.ratios "
                                  f"{list(self.cfg.data.ratios)})")

    @staticmethod
    def _score_fn(model: nn.Module) -> Any:
        """``users -> [B, num_items]`` scores, the representations encoded once."""
        user_repr, item_repr = model.encode()

        def score_fn(users: Tensor) -> Tensor:
            return model.score_all(user_repr[users.to(user_repr.device)], item_repr)

        return score_fn

    @torch.no_grad()
    def evaluation_sample(self, model: nn.Module, split: str) -> EvaluationSample:
        """The split's evaluated users (those with ground truth), each with all its
        metrics; ``coverage@K`` gets no interval (see ``no_interval``)."""
        self._check_split(split)
        part = topk_per_user(self._score_fn(model), self._truth[split], self._seen[split],
                             num_items=self.num_items, ks=self.cfg.eval.ks,
                             batch_size=self.cfg.eval.batch_size)
        reason = ("a union over users, not a mean: draws repeat users and shrink it, so "
                  "its bootstrap would be biased low")
        return EvaluationSample(
            lambda idx: part.result(torch.from_numpy(idx)),
            int(part.lists.size(0)), None, "user with ground truth in the split",
            {f"coverage@{k}": reason for k in part.ks})

    # -- recommending ----------------------------------------------------------------------

    def known_items(self) -> UserItemCSR:
        """Every user's items in train, validation and test (masked when recommending)."""
        if self._known is None:
            self._known = UserItemCSR.from_pairs(self.data.user, self.data.item,
                                                 self.num_users, self.num_items)
        return self._known

    def user_ids(self, names: list[str]) -> Tensor:
        """Internal ids of original user ids; an unknown id is an error naming it."""
        lookup = {name: index for index, name in enumerate(self.data.user_names)}
        missing = [n for n in names if n not in lookup]
        if missing:
            example = ", ".join(self.data.user_names[:3])
            raise GraphlearnError(f"unknown user id {missing[0]!r} (not in the prepared "
                                  f"{self.cfg.data.name} data; ids look like {example})")
        return torch.tensor([lookup[n] for n in names], dtype=torch.long)

    @torch.no_grad()
    def recommend(self, model: nn.Module, users: Tensor, k: int = 10,
                  batch_size: int | None = None) -> tuple[Tensor, Tensor]:
        """Top-``k`` new items for ``users`` (internal ids), every known item masked.

        Returns:
            ``(items [B, k], scores [B, k])``: internal item ids best first, ``-1``
            (score ``-inf``) where a user has fewer than ``k`` unseen items.
        """
        batch_size = batch_size or self.cfg.eval.batch_size
        user_repr, item_repr = model.encode()
        known = self.known_items()
        items, scores = [], []
        for start in range(0, users.numel(), batch_size):
            chunk = users[start:start + batch_size]
            s = model.score_all(user_repr[chunk.to(user_repr.device)], item_repr).float()
            top = topk_items(s, known, k, users=chunk.to(s.device))  # (b, k)
            top_scores = s.gather(1, top.clamp_min(0))
            top_scores[top < 0] = float("-inf")
            items.append(top.cpu())
            scores.append(top_scores.cpu())
        return torch.cat(items), torch.cat(scores)

    # -- reporting -------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        stats = interaction_stats(self.data)
        return {"dataset": self.cfg.data.name, "users": stats["users"],
                "items": stats["items"], "interactions": stats["interactions"],
                "split": self.split.strategy, "split_sizes": self.split.sizes()}
