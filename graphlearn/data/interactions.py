r"""User–item interaction data: the graph object, filters, per-user splits, tables.

The interaction graph
---------------------
One PyG :class:`~torch_geometric.data.Data` per dataset, one row per interaction
(in the order of the source file):

========================  ==================  ===============================================
field                     type                meaning
========================  ==================  ===============================================
``user``                  ``[N]`` long        user id in ``[0, num_users)``
``item``                  ``[N]`` long        item id in ``[0, num_items)``
``rating``                ``[N]`` float32     the rating; ``1.0`` for implicit data (a table
                                              without a rating column, or after
                                              :func:`to_implicit`)
``timestamp``             ``[N]`` long or     optional: present only when the source has
                          float64             times. ``long`` when every value is integral
                                              (all MovieLens files), ``float64`` when any is
                                              fractional.
``num_users``             ``int``             number of users
``num_items``             ``int``             number of items
``user_names``            ``list[str]``       original user id of each user id
``item_names``            ``list[str]``       original item id of each item id
``num_nodes``             ``int``             ``num_users + num_items``: the bipartite node
                                              space (item ``i`` is node ``num_users + i``)
========================  ==================  ===============================================

Ids are contiguous and given **in order of first appearance** in the file (as
RecBole remaps tokens), so ``user_names[data.user[j]]`` is the original user id of
row ``j`` and names round-trip exactly (they are the file's strings, stripped of
surrounding white space). Filters that drop users or items (:func:`k_core`,
:func:`to_implicit`, :func:`compact`) re-index ids keeping their relative order
and keep the names.

Duplicate ``(user, item)`` pairs
--------------------------------
Loaders keep every row as the file has it (MovieLens has no duplicates).
:func:`to_implicit` drops duplicates (keeping the earliest row by timestamp, then
file order), since repeated implicit feedback carries nothing new. Splits of data
that still has duplicates treat each row as one interaction (RecBole's default),
so a pair may land in two splits; a test item that is also a training item is
then masked in evaluation and counts as a miss. Per-user item sets
(:class:`UserItemCSR`) hold distinct items, so ground truth never counts a pair
twice.

Splits (DESIGN.md §2, RecBole-compatible)
-----------------------------------------
* :func:`split_random`: per user, shuffle that user's interactions with a seeded
  generator (one random permutation of all rows, then a stable grouping by user:
  RecBole's "RO" order + "RS" split grouped by user), then cut by ratio with
  RecBole 1.2.1's rounding rule (:func:`ratio_split_counts`).
* :func:`split_temporal`: per user leave-last-out by timestamp (RecBole's "TO"
  order + "LS" ``valid_and_test``).

Both return an :class:`InteractionSplit` holding row indices per split and the
per-user item sets used for ground truth and for masking seen items.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from graphlearn.data._io import open_text, parse_float, read_rows
from graphlearn.errors import ConfigError, DataFormatError, GraphlearnError
from graphlearn.registry import Registry, did_you_mean

__all__ = [
    "SPLITS",
    "InteractionSplit",
    "UserItemCSR",
    "check_interactions",
    "compact",
    "drop_duplicates",
    "interaction_stats",
    "k_core",
    "load_atomic_inter",
    "load_interaction_table",
    "make_interactions",
    "ratio_split_counts",
    "select_interactions",
    "split_interactions",
    "split_random",
    "split_temporal",
    "to_implicit",
]

#: Split names in the order of :class:`InteractionSplit`'s fields.
SPLIT_NAMES: tuple[str, ...] = ("train", "valid", "test")

#: RecBole's default random seed; the default of :func:`split_random`.
DEFAULT_SEED = 2020


# ----------------------------------------------------------------------------------------
# Building and checking the graph object
# ----------------------------------------------------------------------------------------


class _Vocabulary:
    """Names to consecutive ids, in order of first appearance."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.names: list[str] = []

    def add(self, name: str) -> int:
        index = self.ids.get(name)
        if index is None:
            index = self.ids[name] = len(self.names)
            self.names.append(name)
        return index


def _timestamp_tensor(values: Sequence[int | float]) -> Tensor:
    """``long`` when every value is integral, else ``float64`` (see module docstring)."""
    if all(isinstance(v, int) or float(v).is_integer() for v in values):
        return torch.tensor([int(v) for v in values], dtype=torch.long)
    return torch.tensor([float(v) for v in values], dtype=torch.float64)


def make_interactions(
    users: Sequence[str | int],
    items: Sequence[str | int],
    ratings: Sequence[float] | None = None,
    timestamps: Sequence[int | float] | None = None,
) -> Data:
    """Build the interaction graph from parallel lists of original ids.

    Args:
        users: original user id of each interaction (converted with ``str``).
        items: original item id of each interaction.
        ratings: rating of each interaction; ``None`` gives ``1.0`` everywhere.
        timestamps: time of each interaction; ``None`` leaves ``timestamp`` out.

    Returns:
        The interaction ``Data`` described in the module docstring, ids in order
        of first appearance.
    """
    n = len(users)
    for name, values in (("items", items), ("ratings", ratings), ("timestamps", timestamps)):
        if values is not None and len(values) != n:
            raise ValueError(f"{name} has {len(values)} entries, users has {n}")
    user_vocab, item_vocab = _Vocabulary(), _Vocabulary()
    user = torch.tensor([user_vocab.add(str(u)) for u in users], dtype=torch.long)
    item = torch.tensor([item_vocab.add(str(i)) for i in items], dtype=torch.long)
    rating = (
        torch.ones(n, dtype=torch.float32)
        if ratings is None
        else torch.tensor([float(r) for r in ratings], dtype=torch.float32)
    )
    data = Data(
        user=user,
        item=item,
        rating=rating,
        num_users=len(user_vocab.names),
        num_items=len(item_vocab.names),
        user_names=user_vocab.names,
        item_names=item_vocab.names,
        num_nodes=len(user_vocab.names) + len(item_vocab.names),
    )
    if timestamps is not None:
        data.timestamp = _timestamp_tensor(timestamps)
    return data


def check_interactions(data: Data) -> None:
    """Raise :class:`GraphlearnError` when ``data`` does not follow the interaction spec."""
    missing = [
        key
        for key in ("user", "item", "rating", "num_users", "num_items", "user_names", "item_names")
        if key not in data
    ]
    if missing:
        raise GraphlearnError(
            f"not an interaction graph: missing {', '.join(missing)} (has {', '.join(data.keys())})"
        )
    n = data.user.numel()
    for key in ("item", "rating", "timestamp"):
        if key in data and data[key].shape != (n,):
            raise GraphlearnError(f"{key} has shape {tuple(data[key].shape)}, expected ({n},)")
    if data.user.dtype != torch.long or data.item.dtype != torch.long:
        raise GraphlearnError("user and item must be long tensors")
    for key, count, names in (
        ("user", data.num_users, data.user_names),
        ("item", data.num_items, data.item_names),
    ):
        ids = data[key]
        if n and (int(ids.min()) < 0 or int(ids.max()) >= count):
            raise GraphlearnError(f"{key} ids must lie in [0, {count}), got [{int(ids.min())}, "
                                  f"{int(ids.max())}]")
        if len(names) != count:
            raise GraphlearnError(f"{key}_names has {len(names)} names for {count} {key}s")


def _with_rows(data: Data, index: Tensor, user: Tensor | None = None,
               item: Tensor | None = None, user_names: list[str] | None = None,
               item_names: list[str] | None = None) -> Data:
    """A copy of ``data`` holding rows ``index``, optionally with new ids and names."""
    user_names = list(data.user_names) if user_names is None else user_names
    item_names = list(data.item_names) if item_names is None else item_names
    out = Data(
        user=data.user[index] if user is None else user,
        item=data.item[index] if item is None else item,
        rating=data.rating[index],
        num_users=len(user_names),
        num_items=len(item_names),
        user_names=user_names,
        item_names=item_names,
        num_nodes=len(user_names) + len(item_names),
    )
    if "timestamp" in data:
        out.timestamp = data.timestamp[index]
    return out


def select_interactions(data: Data, index: Tensor) -> Data:
    """The interactions at rows ``index`` (long indices or a boolean mask).

    Users, items and their names are kept as they are (ids do not change), so the
    result can be evaluated against the full data; see :func:`compact` to drop
    users and items left without interactions.
    """
    index = torch.as_tensor(index)
    if index.dtype == torch.bool:
        index = index.nonzero().view(-1)
    return _with_rows(data, index.long())


def compact(data: Data) -> Data:
    """Drop users and items without interactions; ids keep their relative order."""
    used_users = torch.unique(data.user)  # sorted
    used_items = torch.unique(data.item)
    if used_users.numel() == data.num_users and used_items.numel() == data.num_items:
        return _with_rows(data, torch.arange(data.user.numel()))
    user_map = torch.full((data.num_users,), -1, dtype=torch.long)
    user_map[used_users] = torch.arange(used_users.numel())
    item_map = torch.full((data.num_items,), -1, dtype=torch.long)
    item_map[used_items] = torch.arange(used_items.numel())
    return _with_rows(
        data,
        torch.arange(data.user.numel()),
        user=user_map[data.user],
        item=item_map[data.item],
        user_names=[data.user_names[u] for u in used_users.tolist()],
        item_names=[data.item_names[i] for i in used_items.tolist()],
    )


def _stable_order(*keys: Tensor) -> Tensor:
    """Row order sorted by ``keys[0]``, then ``keys[1]``, ..., then row number."""
    order = torch.arange(keys[0].numel())
    for key in reversed(keys):
        order = order[torch.sort(key[order], stable=True).indices]
    return order


def drop_duplicates(data: Data) -> Data:
    """Keep one row per ``(user, item)`` pair: the earliest by timestamp, then file order.

    Kept rows stay in file order; ids and names do not change.
    """
    pair = data.user * data.num_items + data.item
    keys = (pair, data.timestamp) if "timestamp" in data else (pair,)
    order = _stable_order(*keys)
    sorted_pair = pair[order]
    first = torch.ones_like(sorted_pair, dtype=torch.bool)
    first[1:] = sorted_pair[1:] != sorted_pair[:-1]
    keep = order[first].sort().values
    return _with_rows(data, keep)


def to_implicit(data: Data, threshold: float | None = None) -> Data:
    """Turn ratings into implicit feedback.

    Keeps the interactions with ``rating >= threshold`` (all of them when
    ``threshold`` is ``None``), sets every kept rating to ``1.0`` (ratings stop
    carrying meaning: a kept interaction is a positive, an absent pair is
    unobserved), drops duplicate ``(user, item)`` pairs (:func:`drop_duplicates`)
    and drops users and items left without interactions (:func:`compact`).
    """
    keep = torch.ones(data.user.numel(), dtype=torch.bool)
    if threshold is not None:
        keep = data.rating >= threshold
    out = drop_duplicates(select_interactions(data, keep))
    out.rating = torch.ones_like(out.rating)
    return compact(out)


def k_core(data: Data, user_k: int = 0, item_k: int = 0) -> Data:
    """Keep the largest sub-graph where every user has ``>= user_k`` and every item
    ``>= item_k`` interactions (iterated to a fixed point; the result does not
    depend on the removal order).

    Degrees count rows, so apply :func:`to_implicit` first to count distinct
    pairs. Users and items that lose all interactions are dropped and ids are
    re-indexed, keeping their order and names.
    """
    if user_k < 0 or item_k < 0:
        raise ConfigError(f"k_core thresholds must be >= 0, got user_k={user_k}, item_k={item_k}")
    keep = torch.ones(data.user.numel(), dtype=torch.bool)
    while True:
        user_deg = torch.bincount(data.user[keep], minlength=data.num_users)
        item_deg = torch.bincount(data.item[keep], minlength=data.num_items)
        bad = keep & ((user_deg[data.user] < user_k) | (item_deg[data.item] < item_k))
        if not bool(bad.any()):
            break
        keep &= ~bad
    return compact(select_interactions(data, keep))


def interaction_stats(data: Data) -> dict:
    """Summary statistics for ``graphlearn data info`` and dataset cards.

    Keys: ``users``, ``items``, ``interactions``, ``density`` (interactions over
    users × items), ``distinct_pairs``, ``rating_min``, ``rating_max``,
    ``interactions_per_user_{min,mean,max}``, ``interactions_per_item_{min,mean,max}``
    and, when present, ``timestamp_min`` / ``timestamp_max``.
    """
    n = int(data.user.numel())
    users, items = int(data.num_users), int(data.num_items)
    stats: dict = {
        "users": users,
        "items": items,
        "interactions": n,
        "density": n / (users * items) if users and items else 0.0,
        "distinct_pairs": int(torch.unique(data.user * items + data.item).numel()),
    }
    if n:
        stats["rating_min"] = float(data.rating.min())
        stats["rating_max"] = float(data.rating.max())
    for key, count in (("user", users), ("item", items)):
        if count:
            deg = torch.bincount(data[key], minlength=count)
            stats[f"interactions_per_{key}_min"] = int(deg.min())
            stats[f"interactions_per_{key}_mean"] = n / count
            stats[f"interactions_per_{key}_max"] = int(deg.max())
    if "timestamp" in data and n:
        stats["timestamp_min"] = data.timestamp.min().item()
        stats["timestamp_max"] = data.timestamp.max().item()
    return stats


# ----------------------------------------------------------------------------------------
# Per-user item sets
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class UserItemCSR:
    """Distinct items per user in compressed sparse row form.

    Items of user ``u`` are ``indices[indptr[u]:indptr[u + 1]]``, sorted and
    distinct. Used for evaluation ground truth and for the seen items that are
    masked to ``-inf`` (:mod:`graphlearn.metrics.topk`).

    Attributes:
        indptr: ``[num_users + 1]`` long row offsets.
        indices: ``[nnz]`` long item ids.
        num_items: number of items (columns).
    """

    indptr: Tensor
    indices: Tensor
    num_items: int

    @classmethod
    def from_pairs(cls, user: Tensor, item: Tensor, num_users: int,
                   num_items: int) -> UserItemCSR:
        """Build from parallel ``user`` / ``item`` id tensors (duplicates are merged)."""
        key = torch.unique(user.long() * num_items + item.long())  # sorted, distinct
        rows = torch.div(key, num_items, rounding_mode="floor") if num_items else key
        counts = torch.bincount(rows, minlength=num_users)
        indptr = torch.zeros(num_users + 1, dtype=torch.long)
        indptr[1:] = torch.cumsum(counts, 0)
        return cls(indptr, key - rows * num_items, num_items)

    @classmethod
    def empty(cls, num_users: int, num_items: int) -> UserItemCSR:
        """No items for any user."""
        return cls(torch.zeros(num_users + 1, dtype=torch.long),
                   torch.zeros(0, dtype=torch.long), num_items)

    @property
    def num_users(self) -> int:
        return self.indptr.numel() - 1

    @property
    def nnz(self) -> int:
        return self.indices.numel()

    def counts(self) -> Tensor:
        """``[num_users]`` number of items of each user."""
        return self.indptr[1:] - self.indptr[:-1]

    def row(self, user: int) -> Tensor:
        """The items of one user."""
        return self.indices[self.indptr[user]:self.indptr[user + 1]]

    def pairs(self) -> Tensor:
        """``[2, nnz]`` (user, item) pairs, sorted by user then item."""
        rows = torch.repeat_interleave(torch.arange(self.num_users), self.counts())
        return torch.stack([rows, self.indices])

    def union(self, other: UserItemCSR) -> UserItemCSR:
        """Per-user union with another item set of the same shape."""
        if (self.num_users, self.num_items) != (other.num_users, other.num_items):
            raise ValueError(
                f"shapes differ: {(self.num_users, self.num_items)} vs "
                f"{(other.num_users, other.num_items)}"
            )
        a, b = self.pairs(), other.pairs()
        return UserItemCSR.from_pairs(torch.cat([a[0], b[0]]), torch.cat([a[1], b[1]]),
                                      self.num_users, self.num_items)

    def batch(self, users: Tensor) -> tuple[Tensor, Tensor]:
        """Items of a batch of users as ``(position_in_batch, item)`` tensors.

        Args:
            users: ``[B]`` user ids (any device).

        Returns:
            Two ``[M]`` long tensors on ``users.device``: row ``b`` of the batch
            has the items ``item[position == b]``.
        """
        device = users.device
        users = users.long().cpu()
        starts = self.indptr[users]
        counts = self.indptr[users + 1] - starts
        position = torch.repeat_interleave(torch.arange(users.numel()), counts)
        offsets = torch.cumsum(counts, 0) - counts
        within = torch.arange(int(counts.sum())) - torch.repeat_interleave(offsets, counts)
        items = self.indices[torch.repeat_interleave(starts, counts) + within]
        return position.to(device), items.to(device)

    def to_dense(self, users: Tensor | None = None) -> Tensor:
        """``[B, num_items]`` boolean membership matrix for ``users`` (default all)."""
        users = torch.arange(self.num_users) if users is None else users
        position, items = self.batch(users)
        out = torch.zeros(users.numel(), self.num_items, dtype=torch.bool, device=users.device)
        out[position, items] = True
        return out


# ----------------------------------------------------------------------------------------
# Splits
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class InteractionSplit:
    """Row indices of ``data`` per split, with the per-user item sets for evaluation.

    Attributes:
        data: the interaction graph that was split (all rows).
        train_index, valid_index, test_index: ``[n_split]`` long row indices into
            ``data``, ascending (file order); together they partition the rows.
            ``valid_index`` is empty for a 2-way split.
        strategy: how it was made, e.g. ``"random(0.8, 0.1, 0.1; seed=2020)"``.

    Evaluation on split ``s`` ranks all items for each user with
    ``items(s)`` as ground truth, masking ``seen(s)``: the training items for
    ``"valid"``, the training and validation items for ``"test"``::

        metrics = evaluate_topk(score_fn, split.items("test"), split.seen("test"))
    """

    data: Data
    train_index: Tensor
    valid_index: Tensor
    test_index: Tensor
    strategy: str = ""

    @property
    def num_users(self) -> int:
        return int(self.data.num_users)

    @property
    def num_items(self) -> int:
        return int(self.data.num_items)

    def index(self, split: str) -> Tensor:
        """Row indices of ``"train"``, ``"valid"`` or ``"test"``."""
        if split not in SPLIT_NAMES:
            raise ConfigError(
                f"unknown split {split!r}{did_you_mean(split, list(SPLIT_NAMES))} "
                f"(valid: {', '.join(SPLIT_NAMES)})"
            )
        return getattr(self, f"{split}_index")

    def subset(self, split: str) -> Data:
        """The interactions of one split; users, items and ids as in ``data``."""
        return select_interactions(self.data, self.index(split))

    def pairs(self, split: str) -> Tensor:
        """``[2, n_split]`` (user, item) ids of one split, in file order."""
        index = self.index(split)
        return torch.stack([self.data.user[index], self.data.item[index]])

    def items(self, split: str) -> UserItemCSR:
        """Distinct items of each user in one split (the ground truth of ``split``)."""
        user, item = self.pairs(split)
        return UserItemCSR.from_pairs(user, item, self.num_users, self.num_items)

    def seen(self, split: str) -> UserItemCSR:
        """Items to mask when evaluating on ``split``.

        ``"valid"``: training items; ``"test"``: training and validation items;
        ``"train"``: nothing.
        """
        self.index(split)
        if split == "train":
            return UserItemCSR.empty(self.num_users, self.num_items)
        parts = ["train"] if split == "valid" else ["train", "valid"]
        index = torch.cat([self.index(p) for p in parts])
        return UserItemCSR.from_pairs(self.data.user[index], self.data.item[index],
                                      self.num_users, self.num_items)

    def sizes(self) -> dict[str, int]:
        """Number of interactions per split."""
        return {name: int(self.index(name).numel()) for name in SPLIT_NAMES}


def _normalise_ratios(ratios: Sequence[float]) -> list[float]:
    ratios = [float(r) for r in ratios]
    if len(ratios) not in (2, 3) or any(not math.isfinite(r) or r < 0 for r in ratios) \
            or ratios[0] <= 0:
        raise ConfigError(
            f"ratios must be (train, valid, test) or (train, test), non-negative with "
            f"train > 0, got {tuple(ratios)}"
        )
    total = sum(ratios)
    return [r / total for r in ratios]


def ratio_split_counts(total: int, ratios: Sequence[float]) -> list[int]:
    """How many of a user's ``total`` interactions go to each part (RecBole 1.2.1's rule).

    Ratios are normalised to sum to 1. Every part but the first gets
    ``floor(ratio * total)``; the first (train) gets the rest. Then, from the
    last part backwards, a part whose exact share ``ratio * total`` lies strictly
    between 0 and 1 gets one interaction taken from train, as long as train
    still holds more than one. With ``(0.8, 0.1, 0.1)``: 1 → ``[1, 0, 0]``,
    2 → ``[1, 0, 1]``, 3 → ``[1, 1, 1]``, 9 → ``[7, 1, 1]``, 10 → ``[8, 1, 1]``,
    19 → ``[17, 1, 1]``, 20 → ``[16, 2, 2]``.
    """
    shares = _normalise_ratios(ratios)
    counts = _ratio_counts(np.array([total], dtype=np.int64), shares)
    return [int(c[0]) for c in counts]


def _ratio_counts(totals: np.ndarray, shares: list[float]) -> list[np.ndarray]:
    """Vectorised :func:`ratio_split_counts` over many users (``shares`` normalised)."""
    totals = totals.astype(np.int64)
    exact = [share * totals.astype(np.float64) for share in shares]
    counts = [np.floor(e).astype(np.int64) for e in exact]
    counts[0] = totals - sum(counts[1:], np.zeros_like(totals))
    active = np.ones_like(totals, dtype=bool)
    for part in range(len(shares) - 1, 0, -1):
        active &= counts[0] > 1
        bump = active & (exact[part] > 0) & (exact[part] < 1)
        counts[part] += bump
        counts[0] -= bump
    return counts


def _assign_parts(user: Tensor, order: Tensor, num_users: int,
                  part_of: Callable[[Tensor, Tensor], Tensor]) -> tuple[Tensor, ...]:
    """Split rows grouped by user: ``order`` lists rows grouped by user (ascending id),
    ``part_of(position_in_group, group_size)`` gives 0/1/2 for train/valid/test."""
    grouped_user = user[order]
    sizes = torch.bincount(user, minlength=num_users)
    starts = torch.cumsum(sizes, 0) - sizes
    position = torch.arange(order.numel()) - starts[grouped_user]
    part = part_of(position, sizes[grouped_user])
    return tuple(order[part == p].sort().values for p in range(3))


def split_random(data: Data, ratios: Sequence[float] = (0.8, 0.1, 0.1),
                 seed: int = DEFAULT_SEED) -> InteractionSplit:
    """Per-user random split by ratio (DESIGN.md §2; RecBole ``RO`` + ``RS`` by user).

    All rows are permuted with ``torch.randperm`` under a ``torch.Generator``
    seeded with ``seed``; a stable grouping by user then gives each user's
    interactions in random order, and the first ``train`` of them go to train,
    the next ``valid`` to validation and the rest to test, with the counts of
    :func:`ratio_split_counts`. The same data and seed give the same split.

    Args:
        data: the interaction graph.
        ratios: ``(train, valid, test)``, or ``(train, test)`` for a 2-way split
            with an empty validation set (the Sheaf4Rec setting). Normalised.
        seed: seed of the permutation.
    """
    shares = _normalise_ratios(ratios)
    if len(shares) == 2:
        shares = [shares[0], 0.0, shares[1]]
    generator = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(data.user.numel(), generator=generator)
    order = perm[torch.sort(data.user[perm], stable=True).indices]

    sizes = torch.bincount(data.user, minlength=data.num_users).numpy()
    counts = _ratio_counts(sizes, shares)
    train_count = torch.from_numpy(counts[0])
    valid_end = train_count + torch.from_numpy(counts[1])
    grouped_user = data.user[order]

    def part_of(position: Tensor, size: Tensor) -> Tensor:
        return (position >= train_count[grouped_user]).long() + (
            position >= valid_end[grouped_user]
        ).long()

    train, valid, test = _assign_parts(data.user, order, data.num_users, part_of)
    label = ", ".join(f"{r:g}" for r in ratios)
    return InteractionSplit(data, train, valid, test, f"random({label}; seed={seed})")


def split_temporal(data: Data, valid: bool = True) -> InteractionSplit:
    """Per-user leave-last-out by time (RecBole ``TO`` + ``LS`` ``valid_and_test``).

    Each user's interactions are ordered by timestamp, ties by file order (a
    stable sort). The last goes to test, the second-to-last to validation, the
    rest to train. Users with fewer interactions follow RecBole: with 2, one
    train and one test (no validation item); with 1, train only.

    Args:
        data: the interaction graph; must have ``timestamp``.
        valid: ``False`` holds out only the last interaction (test), no validation.
    """
    if "timestamp" not in data:
        raise GraphlearnError("split_temporal needs a timestamp column; this data has none")
    order = _stable_order(data.user, data.timestamp)
    held_out = 2 if valid else 1

    def part_of(position: Tensor, size: Tensor) -> Tensor:
        from_end = size - 1 - position
        legal = torch.clamp(size - 1, max=held_out)  # RecBole: min(leave_one_num, n - 1)
        part = torch.zeros_like(position)
        part[(from_end == 0) & (legal >= 1)] = 2
        part[(from_end == 1) & (legal >= 2)] = 1
        return part

    train, valid_rows, test = _assign_parts(data.user, order, data.num_users, part_of)
    label = "leave-last-out" if valid else "leave-last-out(test only)"
    return InteractionSplit(data, train, valid_rows, test, f"temporal({label})")


#: Split strategies by name, for configs (``split: random``).
SPLITS: Registry[Callable[..., InteractionSplit]] = Registry("split")
SPLITS.register("random")(split_random)
SPLITS.register("temporal")(split_temporal)


def split_interactions(data: Data, strategy: str = "random", **options) -> InteractionSplit:
    """Split with a strategy named in :data:`SPLITS` (``"random"`` or ``"temporal"``)."""
    return SPLITS.get(strategy)(data, **options)


# ----------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------


class _Columns:
    """Accumulates parsed interaction columns, validating each field."""

    def __init__(self, path: str | os.PathLike, has_rating: bool, has_timestamp: bool) -> None:
        self.path = path
        self.users: list[str] = []
        self.items: list[str] = []
        self.ratings: list[float] | None = [] if has_rating else None
        self.timestamps: list[int | float] | None = [] if has_timestamp else None

    def add(self, line: int, user: str, item: str, rating: str | None = None,
            timestamp: str | None = None) -> None:
        self.users.append(user)
        self.items.append(item)
        if self.ratings is not None:
            self.ratings.append(parse_float(rating, self.path, line, "rating"))
        if self.timestamps is not None:
            self.timestamps.append(_parse_timestamp(timestamp, self.path, line))

    def build(self) -> Data:
        if not self.users:
            raise DataFormatError(self.path, None, "no interactions in file")
        return make_interactions(self.users, self.items, self.ratings, self.timestamps)


def _parse_timestamp(value: str, path: str | os.PathLike, line: int) -> int | float:
    try:
        return int(value)
    except ValueError:
        number = parse_float(value, path, line, "timestamp")
        return int(number) if number.is_integer() else number


def _decode_errors(path: str | os.PathLike, rows: Iterator) -> Iterator:
    """Re-raise a decoding error inside ``rows`` as a :class:`DataFormatError`."""
    try:
        yield from rows
    except UnicodeDecodeError as err:
        raise DataFormatError(path, None, f"not UTF-8 text ({err.reason} at byte {err.start} "
                                          "of a read block)") from None


#: RecBole atomic-file column names of the interaction fields.
ATOMIC_COLUMNS = {"user": "user_id", "item": "item_id", "rating": "rating",
                  "timestamp": "timestamp"}


def load_atomic_inter(path: str | os.PathLike) -> Data:
    """Read a RecBole atomic ``.inter`` file (tab-separated, header ``name:type``).

    Columns are located by name: ``user_id`` and ``item_id`` are required,
    ``rating`` and ``timestamp`` optional (ratings default to ``1.0``); other
    columns are ignored.

    Raises:
        DataFormatError: a header without a required column (naming the columns
            found), a wrong column count, an empty or non-numeric field; each
            naming file and line.
    """
    path = Path(path)
    with open_text(path) as handle:
        header_line = handle.readline().rstrip("\r\n").lstrip("\ufeff")
    header = header_line.split("\t")
    names = [field.split(":", 1)[0].strip() for field in header]
    position: dict[str, int] = {}
    for role, name in ATOMIC_COLUMNS.items():
        if name in names:
            position[role] = names.index(name)
    missing = [ATOMIC_COLUMNS[r] for r in ("user", "item") if r not in position]
    if missing:
        raise DataFormatError(
            path, 1,
            f"header lacks required column(s) {', '.join(missing)}; columns found: "
            f"{', '.join(header) if header_line.strip() else '(none)'}",
        )
    columns = _Columns(path, "rating" in position, "timestamp" in position)
    rows = read_rows(path, len(header), delimiter="\t", skip_header=True)
    for line, fields in _decode_errors(path, rows):
        columns.add(line, *(fields[position[role]].strip() if role in position else None
                            for role in ("user", "item", "rating", "timestamp")))
    return columns.build()


_DELIMITERS = {".csv": ",", ".tsv": "\t", ".txt": "\t", ".tab": "\t", ".inter": "\t",
               ".data": "\t", ".dat": "::"}


def _infer_delimiter(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    suffix = suffixes[-1] if suffixes else ""
    if suffix not in _DELIMITERS:
        raise ConfigError(
            f"{path}: cannot infer the delimiter from extension {suffix or '(none)'!r} "
            f"(known: {', '.join(_DELIMITERS)}); pass delimiter="
        )
    return _DELIMITERS[suffix]


def _split_lines(path: Path, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """``(line, fields)`` of every non-blank record; ``csv`` quoting for commas."""
    with open_text(path) as handle:
        if delimiter == ",":
            reader = csv.reader(handle, delimiter=",")
            previous = 0
            for fields in reader:
                line, previous = previous + 1, reader.line_num
                if fields and any(f.strip() for f in fields):
                    yield line, fields
        else:
            for line, raw in enumerate(handle, start=1):
                text = raw.rstrip("\r\n")
                if text.strip():
                    yield line, text.split(delimiter)


def load_interaction_table(
    path: str | os.PathLike,
    user: str | int = "user_id",
    item: str | int = "item_id",
    rating: str | int | None = None,
    timestamp: str | int | None = None,
    delimiter: str | None = None,
    header: bool = True,
) -> Data:
    """Read a user's own interaction table (CSV/TSV, optionally ``.gz``).

    Args:
        path: the file.
        user, item: the user and item id columns: a header name (matched exactly,
            else case-insensitively, else by the part before ``:`` as in RecBole
            headers) or a 0-based column index.
        rating: the rating column; ``None`` gives implicit data (``1.0``).
        timestamp: the time column (numeric); ``None`` leaves ``timestamp`` out.
        delimiter: the field separator; ``None`` infers it from the extension:
            ``.csv`` comma (with CSV quoting), ``.tsv``/``.txt``/``.tab``/``.inter``
            tab, ``.dat`` ``::``. Other separators split lines without quoting.
        header: the first line names the columns; with ``False`` columns must be
            given as indices.

    Every record must have as many fields as the header (or, without a header,
    as the first record). Blank lines are skipped.

    Raises:
        DataFormatError: unknown column (naming the columns found), wrong field
            count, empty or non-numeric field; each naming file and line.
    """
    path = Path(path)
    delimiter = _infer_delimiter(path) if delimiter is None else delimiter
    rows = _decode_errors(path, _split_lines(path, delimiter))
    wanted = {"user": user, "item": item, "rating": rating, "timestamp": timestamp}
    width: int | None = None
    position: dict[str, int] = {}
    if header:
        first = next(rows, None)
        if first is None:
            raise DataFormatError(path, None, "empty file (expected a header line)")
        header_line, names = first
        names = [n.strip().lstrip("\ufeff") for n in names]
        width = len(names)
        for role, column in wanted.items():
            if column is not None:
                position[role] = _locate(path, header_line, names, role, column)
    else:
        for role, column in wanted.items():
            if column is None:
                continue
            if not isinstance(column, int) or isinstance(column, bool) or column < 0:
                raise ConfigError(f"without a header, {role} must be a column index, "
                                  f"got {column!r}")
            position[role] = column
    columns = _Columns(path, rating is not None, timestamp is not None)
    for line, fields in rows:
        if width is None:
            width = len(fields)
            if max(position.values()) >= width:
                raise DataFormatError(path, line, f"{width} fields, but column index "
                                      f"{max(position.values())} was asked for")
        if len(fields) != width:
            raise DataFormatError(path, line,
                                  f"expected {width} fields, found {len(fields)}")
        values = {}
        for role, index in position.items():
            value = fields[index].strip()
            if not value:
                raise DataFormatError(path, line, f"{role} field (column {index + 1}) is empty")
            values[role] = value
        columns.add(line, values["user"], values["item"], values.get("rating"),
                    values.get("timestamp"))
    return columns.build()


def _locate(path: Path, line: int, names: list[str], role: str, column: str | int) -> int:
    if isinstance(column, int) and not isinstance(column, bool):
        if not 0 <= column < len(names):
            raise DataFormatError(path, line, f"{role} column index {column} out of range: "
                                  f"{len(names)} columns")
        return column
    for candidates in (names, [n.lower() for n in names],
                       [n.split(":", 1)[0].lower() for n in names]):
        key = column if candidates is names else column.lower()
        if key in candidates:
            return candidates.index(key)
    raise DataFormatError(
        path, line,
        f"no {role} column {column!r}{did_you_mean(column, names)}; columns found: "
        f"{', '.join(names)}",
    )
