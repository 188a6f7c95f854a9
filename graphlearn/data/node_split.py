"""Node splits for transductive node classification: the public masks or a seeded random split.

Example::

    data = load_dataset("cora", root="/work/shared/data")
    public = node_split(data, "public")                       # Planetoid's 140 / 500 / 1000
    random = node_split(data, "random", val_ratio=0.16, test_ratio=0.20, seed=0)  # 64/16/20
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.data import Data

from graphlearn.errors import ConfigError

__all__ = ["NODE_SPLITS", "node_split", "random_node_masks"]

#: The accepted ``split`` names.
NODE_SPLITS: tuple[str, ...] = ("public", "random")

_MASKS = ("train_mask", "val_mask", "test_mask")


def random_node_masks(num_nodes: int, val_ratio: float, test_ratio: float,
                      seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """Disjoint ``(train, valid, test)`` boolean masks ``[N]`` of a seeded random permutation.

    ``round(val_ratio * N)`` nodes go to validation, ``round(test_ratio * N)`` to test,
    the rest to training (a CPU generator seeded with ``seed``: the same masks on
    every machine).

    Raises:
        ValueError: ratios outside ``[0, 1)``, summing to 1 or more, or an empty training set.
    """
    if not (0 <= val_ratio < 1 and 0 <= test_ratio < 1 and val_ratio + test_ratio < 1):
        raise ValueError(f"random_node_masks: need 0 <= val_ratio, test_ratio and "
                         f"val_ratio + test_ratio < 1, got {val_ratio}, {test_ratio}")
    num_val, num_test = round(val_ratio * num_nodes), round(test_ratio * num_nodes)
    if num_val + num_test >= num_nodes:
        raise ValueError(f"random_node_masks: {num_nodes} nodes leave none for training "
                         f"({num_val} valid, {num_test} test)")
    order = torch.randperm(num_nodes, generator=torch.Generator().manual_seed(seed))
    masks = []
    for part in (order[num_val + num_test:], order[:num_val], order[num_val:num_val + num_test]):
        mask = torch.zeros(num_nodes, dtype=torch.bool)
        mask[part] = True
        masks.append(mask)
    return masks[0], masks[1], masks[2]


def node_split(data: Data, split: str, val_ratio: float = 0.16, test_ratio: float = 0.20,
               seed: int = 0) -> Data:
    """A copy of ``data`` whose ``train_mask`` / ``val_mask`` / ``test_mask`` are ``split``'s.

    Args:
        data: a graph with ``x``, ``edge_index`` and labels ``y [N]``.
        split: ``"public"`` (the masks ``data`` already holds, e.g. Planetoid's
            public split) or ``"random"`` (:func:`random_node_masks`).
        val_ratio, test_ratio, seed: of the random split.

    Raises:
        ConfigError: an unknown split, no labels, or ``"public"`` on data without masks.
    """
    if split not in NODE_SPLITS:
        raise ConfigError(f"unknown node split {split!r} (valid: {', '.join(NODE_SPLITS)})")
    if getattr(data, "y", None) is None or getattr(data, "x", None) is None \
            or getattr(data, "edge_index", None) is None:
        raise ConfigError("node classification needs a graph with features x, edge_index "
                          "and labels y")
    out = data.clone()
    if split == "public":
        missing = [m for m in _MASKS if getattr(data, m, None) is None]
        if missing:
            raise ConfigError(f"data.split 'public': the dataset has no {', '.join(missing)} "
                              f"(use data.split: random)")
        return out
    num_nodes = int(data.num_nodes)
    out.train_mask, out.val_mask, out.test_mask = random_node_masks(
        num_nodes, val_ratio, test_ratio, seed)
    return out
