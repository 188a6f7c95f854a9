"""Random edge splits for homogeneous link prediction, and a strict negative sampler.

:func:`random_link_split` follows the semantics of PyG's ``RandomLinkSplit``
(NBFNet's homogeneous protocol is ``val_ratio=0.05, test_ratio=0.10``; ForwardGNN
uses ``0.16, 0.20``):

* with ``undirected=True`` an edge ``{u, v}`` is one unit: both directions go to
  the same split, message graphs hold both directions, and targets are listed
  once as ``(min, max)``;
* ``train.edge_index`` = train edges, ``valid.edge_index`` = train edges,
  ``test.edge_index`` = train + valid edges (the model never sees a target in
  its own message graph);
* every split has ``edge_label_index`` ``[2, n_pos + n_neg]`` (positives first)
  and ``edge_label`` ``[n_pos + n_neg]`` (float, 1 then 0).

Where it is stricter than PyG: negatives are never an edge of the whole input
graph (in either direction), never a self-loop, never repeated within a split,
and never shared between splits; the sampling is driven by one seeded
``torch.Generator`` so the same data and seed give the same split, whatever
the order of the input edges.

Input clean-up (documented behaviour): self-loops are dropped (they are neither
targets nor messages), and duplicate edges are merged (with ``undirected=True``
``(u, v)`` and ``(v, u)`` are the same edge). Edge-level attributes
(``edge_attr``, ``edge_weight``, ...) are not carried into the splits; node-level
attributes (``x``, ``y``, masks) are.

Training negatives: NBFNet draws fresh negatives every batch; by default the
train split holds positives only and :func:`sample_negative_edges` is the
sampler to call in the training loop. ``num_train_negatives > 0`` adds a fixed
set instead (disjoint from the valid/test negatives).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor
from torch_geometric.data import Data

#: Below this many candidate pairs (or when fewer than twice the requested
#: pairs are free) the sampler enumerates the free pairs instead of rejection
#: sampling.
_ENUMERATE_BELOW = 1 << 16


class LinkSplit(NamedTuple):
    """The three splits of :func:`random_link_split` (unpacks as ``train, valid, test``)."""

    train: Data
    valid: Data
    test: Data


def _pair_keys(edge_index: Tensor, num_nodes: int, undirected: bool) -> Tensor:
    """Encode node pairs as ``u * num_nodes + v`` (``(min, max)`` when undirected)."""
    src, dst = edge_index[0].long(), edge_index[1].long()
    if undirected:
        src, dst = torch.minimum(src, dst), torch.maximum(src, dst)
    return src * num_nodes + dst


def _decode(keys: Tensor, num_nodes: int) -> Tensor:
    return torch.stack([keys // num_nodes, keys % num_nodes])


def _first_occurrences(keys: Tensor) -> Tensor:
    """Distinct values of ``keys`` in the order they first appear."""
    if keys.numel() == 0:
        return keys
    unique, inverse = torch.unique(keys, return_inverse=True)
    position = torch.arange(keys.numel(), device=keys.device)
    first = torch.full((unique.numel(),), keys.numel(), dtype=torch.long, device=keys.device)
    first.scatter_reduce_(0, inverse, position, reduce="amin")
    return keys[first.sort().values]


def _check_edge_index(edge_index: Tensor, num_nodes: int, what: str) -> None:
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"{what} must have shape [2, E], got {list(edge_index.shape)}")
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
        raise ValueError(
            f"{what} has node ids outside [0, {num_nodes}): "
            f"min {int(edge_index.min())}, max {int(edge_index.max())}"
        )


def sample_negative_edges(
    edge_index: Tensor,
    num_nodes: int,
    num: int,
    generator: torch.Generator | None = None,
    exclude: Tensor | None = None,
    undirected: bool = True,
) -> Tensor:
    """Sample strict negative edges: node pairs that are not edges.

    A returned pair ``(u, v)`` is never a self-loop, never an edge of
    ``edge_index`` or of ``exclude`` in either direction, and never repeated
    (with ``undirected=True``, ``(u, v)`` and ``(v, u)`` count as the same pair
    and pairs are returned as ``(min, max)``). The result depends only on the
    inputs and the generator's state.

    Args:
        edge_index: known edges ``[2, E]`` (the forbidden pairs).
        num_nodes: number of nodes ``N``; pairs are drawn uniformly from ``[0, N)²``.
        num: how many negatives to return.
        generator: source of randomness (CPU); ``None`` uses torch's global RNG.
        exclude: more forbidden pairs ``[2, K]`` (e.g. negatives of another split).
        undirected: treat pairs as unordered.

    Returns:
        ``[2, num]`` long tensor on ``edge_index``'s device, in sampling order.

    Raises:
        ValueError: bad shapes or ids, or fewer than ``num`` free pairs exist.
    """
    num_nodes = int(num_nodes)
    num = int(num)
    if num < 0:
        raise ValueError(f"num must be >= 0, got {num}")
    _check_edge_index(edge_index, num_nodes, "edge_index")
    forbidden_edges = [edge_index.detach().cpu().long()]
    if exclude is not None:
        _check_edge_index(exclude, num_nodes, "exclude")
        forbidden_edges.append(exclude.detach().cpu().long())
    device = edge_index.device
    if num == 0:
        return torch.empty(2, 0, dtype=torch.long, device=device)

    both = torch.cat(forbidden_edges, dim=1)
    both = both[:, both[0] != both[1]]
    if undirected:
        forbidden = torch.unique(_pair_keys(both, num_nodes, undirected=True))
        total = num_nodes * (num_nodes - 1) // 2
    else:
        forbidden = torch.unique(
            torch.cat(
                [_pair_keys(both, num_nodes, False), _pair_keys(both.flip(0), num_nodes, False)]
            )
        )
        total = num_nodes * (num_nodes - 1)
    free = total - forbidden.numel()
    if num > free:
        raise ValueError(
            f"cannot sample {num} negative edges: only {free} of the {total} "
            f"{'unordered' if undirected else 'ordered'} node pairs of a {num_nodes}-node "
            "graph are neither self-loops nor known/excluded edges"
        )

    if total <= _ENUMERATE_BELOW or free < 2 * num:
        keys = _enumerate_free(num_nodes, forbidden, undirected)
        order = torch.randperm(keys.numel(), generator=generator)[:num]
        return _decode(keys[order], num_nodes).to(device)

    accepted = torch.empty(0, dtype=torch.long)
    taken_fraction = forbidden.numel() / total
    while accepted.numel() < num:
        need = num - accepted.numel()
        batch = int(need / max(1.0 - taken_fraction, 0.05) * 1.25) + 64
        src = torch.randint(num_nodes, (batch,), generator=generator)
        dst = torch.randint(num_nodes, (batch,), generator=generator)
        keep = src != dst
        pairs = torch.stack([src[keep], dst[keep]])
        keys = _pair_keys(pairs, num_nodes, undirected)
        keys = keys[~torch.isin(keys, forbidden)]
        keys = _first_occurrences(keys)
        if accepted.numel():
            keys = keys[~torch.isin(keys, accepted)]
        accepted = torch.cat([accepted, keys[:need]])
    return _decode(accepted, num_nodes).to(device)


def _enumerate_free(num_nodes: int, forbidden: Tensor, undirected: bool) -> Tensor:
    """All keys of non-self-loop pairs not in ``forbidden`` (sorted)."""
    if undirected:
        src, dst = torch.triu_indices(num_nodes, num_nodes, offset=1)
        keys = src * num_nodes + dst
    else:
        keys = torch.arange(num_nodes * num_nodes)
        keys = keys[keys // num_nodes != keys % num_nodes]
    return keys[~torch.isin(keys, forbidden)]


def random_link_split(
    data: Data,
    val_ratio: float = 0.05,
    test_ratio: float = 0.10,
    seed: int = 0,
    num_negatives: int = 1,
    undirected: bool = True,
    num_train_negatives: int = 0,
) -> LinkSplit:
    """Split the edges of a homogeneous graph at random into train/valid/test.

    See the module docstring for the exact semantics. Split sizes follow PyG:
    ``n_val = floor(val_ratio * n)``, ``n_test = floor(test_ratio * n)``, the rest
    train, where ``n`` counts distinct non-self-loop edges (unordered pairs when
    ``undirected``).

    Args:
        data: graph with ``edge_index`` ``[2, E]`` and ``num_nodes``.
        val_ratio: fraction of edges held out for validation.
        test_ratio: fraction of edges held out for test.
        seed: seed of the ``torch.Generator`` that drives the split and the negatives.
        num_negatives: negatives per positive in valid and test.
        undirected: keep ``(u, v)`` and ``(v, u)`` together (one unit).
        num_train_negatives: fixed negatives per positive in train (0: positives only,
            draw negatives on the fly with :func:`sample_negative_edges`).

    Returns:
        :class:`LinkSplit` of three ``Data`` objects with the node attributes of
        ``data``, a message graph ``edge_index``, ``edge_label_index`` and
        ``edge_label``.

    Raises:
        ValueError: ratios outside ``[0, 1)`` or summing to >= 1, negative counts,
            a graph without edges, or too few free pairs for the negatives.
    """
    for name, value in (("val_ratio", val_ratio), ("test_ratio", test_ratio)):
        if not 0.0 <= float(value) < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {value}")
    if val_ratio + test_ratio >= 1.0:
        raise ValueError(f"val_ratio + test_ratio must be < 1, got {val_ratio} + {test_ratio}")
    for name, count in (
        ("num_negatives", num_negatives),
        ("num_train_negatives", num_train_negatives),
    ):
        if int(count) != count or count < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {count}")
    if data.edge_index is None:
        raise ValueError("data has no edge_index")
    num_nodes = int(data.num_nodes)
    edge_index = data.edge_index.detach().cpu().long()
    _check_edge_index(edge_index, num_nodes, "data.edge_index")

    # Units: distinct non-self-loop edges, sorted so the input order does not matter.
    no_loops = edge_index[:, edge_index[0] != edge_index[1]]
    units = torch.unique(_pair_keys(no_loops, num_nodes, undirected))
    n = units.numel()
    if n == 0:
        raise ValueError("data.edge_index has no edges besides self-loops; nothing to split")
    n_val, n_test = int(val_ratio * n), int(test_ratio * n)
    n_train = n - n_val - n_test

    generator = torch.Generator().manual_seed(int(seed))
    units = units[torch.randperm(n, generator=generator)]
    val_pos = _decode(units[:n_val], num_nodes)
    test_pos = _decode(units[n_val : n_val + n_test], num_nodes)
    train_pos = _decode(units[n_val + n_test :], num_nodes)

    # One draw for all splits: duplicate-free, hence disjoint across splits.
    counts = [num_negatives * n_val, num_negatives * n_test, num_train_negatives * n_train]
    negatives = sample_negative_edges(
        edge_index, num_nodes, sum(counts), generator=generator, undirected=undirected
    )
    val_neg, test_neg, train_neg = negatives.split(counts, dim=1)

    def message_graph(pos: Tensor) -> Tensor:
        return torch.cat([pos, pos.flip(0)], dim=1) if undirected else pos

    train_graph = message_graph(train_pos)
    test_graph = message_graph(torch.cat([train_pos, val_pos], dim=1))
    base = _node_level_copy(data)
    device = data.edge_index.device
    return LinkSplit(
        train=_make_split(base, train_graph, train_pos, train_neg, device),
        valid=_make_split(base, train_graph, val_pos, val_neg, device),
        test=_make_split(base, test_graph, test_pos, test_neg, device),
    )


def _node_level_copy(data: Data) -> Data:
    """A shallow copy of ``data`` without ``edge_index`` and edge-level attributes.

    Edge-level: a name containing ``edge`` (``edge_attr``, ``edge_weight``, ...), or
    sized like the edges and not like the nodes.
    """
    out = Data()
    for key, value in data.items():
        if key == "num_nodes":
            continue
        if "edge" in key or (data.is_edge_attr(key) and not data.is_node_attr(key)):
            continue
        out[key] = value
    out.num_nodes = int(data.num_nodes)
    return out


def _make_split(base: Data, graph: Tensor, pos: Tensor, neg: Tensor, device: torch.device) -> Data:
    split = base.clone()
    split.edge_index = graph.to(device)
    split.edge_label_index = torch.cat([pos, neg], dim=1).to(device)
    split.edge_label = torch.cat([torch.ones(pos.size(1)), torch.zeros(neg.size(1))]).to(device)
    return split
