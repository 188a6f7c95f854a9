from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data

from graphlearn.data.link_split import LinkSplit, random_link_split, sample_negative_edges


def pairs(edge_index: torch.Tensor, undirected: bool = True) -> set[tuple[int, int]]:
    out = set()
    for u, v in edge_index.t().tolist():
        out.add((min(u, v), max(u, v)) if undirected else (u, v))
    return out


def ring_with_chords(num_nodes: int = 10) -> Data:
    """Ring 0-1-...-9-0 plus chords i -> i+2 (20 undirected edges), both directions."""
    edges = [(i, (i + 1) % num_nodes) for i in range(num_nodes)]
    edges += [(i, (i + 2) % num_nodes) for i in range(num_nodes)]
    one_way = torch.tensor(edges).t()
    edge_index = torch.cat([one_way, one_way.flip(0)], dim=1)
    return Data(
        x=torch.arange(num_nodes, dtype=torch.float).view(-1, 1),
        edge_index=edge_index,
        num_nodes=num_nodes,
    )


def test_sizes_and_message_graphs():
    data = ring_with_chords()
    split = random_link_split(data, val_ratio=0.2, test_ratio=0.2, seed=1)
    assert isinstance(split, LinkSplit)
    train, valid, test = split
    # 20 undirected edges: floor(0.2 * 20) = 4 valid, 4 test, 12 train.
    assert train.edge_label_index.shape == (2, 12)  # positives only by default
    assert valid.edge_label_index.shape == (2, 8)
    assert test.edge_label_index.shape == (2, 8)
    assert valid.edge_label.tolist() == [1.0] * 4 + [0.0] * 4
    assert train.edge_label.dtype == torch.float32

    train_pos = pairs(train.edge_label_index)
    val_pos = pairs(valid.edge_label_index[:, :4])
    test_pos = pairs(test.edge_label_index[:, :4])
    assert train_pos | val_pos | test_pos == pairs(data.edge_index)
    assert not (train_pos & val_pos) and not (train_pos & test_pos) and not (val_pos & test_pos)

    # Message graphs hold both directions: train for train/valid, train + valid for test.
    assert train.edge_index.size(1) == 24 and torch.equal(train.edge_index, valid.edge_index)
    assert pairs(train.edge_index, undirected=False) == (
        {(u, v) for u, v in train_pos} | {(v, u) for u, v in train_pos}
    )
    assert pairs(test.edge_index) == train_pos | val_pos
    assert test.edge_index.size(1) == 32
    # Targets are (min, max); node attributes are carried over.
    assert bool((train.edge_label_index[0] < train.edge_label_index[1]).all())
    assert torch.equal(test.x, data.x) and test.num_nodes == 10


def test_negatives_are_strict_and_disjoint():
    data = ring_with_chords(12)
    _, valid, test = random_link_split(data, 0.25, 0.25, seed=3, num_negatives=3)
    true = pairs(data.edge_index)
    val_neg = valid.edge_label_index[:, valid.edge_label == 0]
    test_neg = test.edge_label_index[:, test.edge_label == 0]
    assert val_neg.size(1) == 3 * 6 and test_neg.size(1) == 3 * 6
    for neg in (val_neg, test_neg):
        as_set = pairs(neg)
        assert len(as_set) == neg.size(1)  # no duplicates, in either orientation
        assert not (as_set & true)
        assert bool((neg[0] != neg[1]).all())
    assert not (pairs(val_neg) & pairs(test_neg))


def test_train_negatives_optional():
    data = ring_with_chords()
    train, valid, test = random_link_split(data, 0.2, 0.2, seed=0, num_train_negatives=1)
    assert train.edge_label.tolist() == [1.0] * 12 + [0.0] * 12
    negs = [pairs(s.edge_label_index[:, s.edge_label == 0]) for s in (train, valid, test)]
    assert not (negs[0] & negs[1]) and not (negs[0] & negs[2])
    assert not (negs[0] & pairs(data.edge_index))


def test_reproducible_and_order_independent():
    data = ring_with_chords()
    a = random_link_split(data, 0.2, 0.2, seed=7)
    b = random_link_split(data, 0.2, 0.2, seed=7)
    c = random_link_split(data, 0.2, 0.2, seed=8)
    for x, y in zip(a, b):
        assert torch.equal(x.edge_label_index, y.edge_label_index)
        assert torch.equal(x.edge_index, y.edge_index)
    assert not torch.equal(a.test.edge_label_index, c.test.edge_label_index)
    shuffled = data.clone()
    shuffled.edge_index = data.edge_index[:, torch.randperm(data.edge_index.size(1))]
    d = random_link_split(shuffled, 0.2, 0.2, seed=7)
    assert torch.equal(a.test.edge_label_index, d.test.edge_label_index)


def test_self_loops_and_duplicates_are_cleaned():
    edge_index = torch.tensor([[0, 1, 1, 2, 2, 3, 0, 4, 4], [1, 0, 2, 1, 2, 4, 1, 0, 5]])
    # unique undirected non-loop edges: {0,1} {1,2} {3,4} {0,4} {4,5} -> 5 units
    data = Data(edge_index=edge_index, num_nodes=6, edge_weight=torch.ones(9))
    train, valid, test = random_link_split(data, 0.2, 0.2, seed=0)
    assert train.edge_label_index.size(1) + 1 + 1 == 5
    everything = (
        pairs(train.edge_label_index)
        | pairs(valid.edge_label_index[:, :1])
        | pairs(test.edge_label_index[:, :1])
    )
    assert everything == {(0, 1), (1, 2), (3, 4), (0, 4), (4, 5)}
    assert "edge_weight" not in train  # edge-level attributes are not carried
    for split in (train, valid, test):
        assert bool((split.edge_index[0] != split.edge_index[1]).all())


def test_directed_split():
    edge_index = torch.tensor([[0, 1, 1, 2, 3, 4, 5, 6, 7, 8], [1, 0, 2, 3, 4, 5, 6, 7, 8, 9]])
    data = Data(edge_index=edge_index, num_nodes=10)
    train, valid, test = random_link_split(data, 0.2, 0.2, seed=0, undirected=False)
    # (0,1) and (1,0) are distinct units: 10 units -> 2 / 2 / 6.
    assert train.edge_index.size(1) == 6
    assert pairs(train.edge_index, False) == pairs(train.edge_label_index, False)
    assert test.edge_index.size(1) == 8
    true = pairs(edge_index, False) | {(v, u) for u, v in pairs(edge_index, False)}
    negs = pairs(test.edge_label_index[:, 2:], False) | pairs(valid.edge_label_index[:, 2:], False)
    assert not (negs & true)


def test_split_sizes_follow_pyg_rounding():
    # n distinct undirected edges -> floor(.05 n) valid, floor(.10 n) test, the rest train.
    gen = torch.Generator().manual_seed(0)
    edge_index = torch.randint(300, (2, 1000), generator=gen)
    no_loops = edge_index[:, edge_index[0] != edge_index[1]]
    n = len(pairs(no_loops))
    train, valid, test = random_link_split(Data(edge_index=edge_index, num_nodes=300))
    assert valid.edge_label_index.size(1) == 2 * int(0.05 * n)
    assert test.edge_label_index.size(1) == 2 * int(0.10 * n)
    assert train.edge_label_index.size(1) == n - int(0.05 * n) - int(0.10 * n)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"val_ratio": -0.1},
        {"test_ratio": 1.0},
        {"val_ratio": 0.6, "test_ratio": 0.4},
        {"num_negatives": -1},
        {"num_train_negatives": 1.5},
    ],
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        random_link_split(ring_with_chords(), **kwargs)


def test_graph_too_dense_for_negatives():
    full = torch.combinations(torch.arange(5)).t()  # complete graph K5: no free pair
    with pytest.raises(ValueError, match="cannot sample"):
        random_link_split(Data(edge_index=full, num_nodes=5), 0.2, 0.2)


def test_sampler_enumeration_path_returns_every_free_pair():
    edge_index = torch.tensor([[0, 1, 2], [1, 2, 3]])
    gen = torch.Generator().manual_seed(0)
    neg = sample_negative_edges(edge_index, 4, 3, generator=gen)
    assert pairs(neg) == {(0, 2), (0, 3), (1, 3)}
    with pytest.raises(ValueError, match="only 3"):
        sample_negative_edges(edge_index, 4, 4, generator=gen)
    directed = sample_negative_edges(edge_index, 4, 6, generator=gen, undirected=False)
    assert pairs(directed, False) == {(0, 2), (2, 0), (0, 3), (3, 0), (1, 3), (3, 1)}


def test_sampler_rejection_path_is_strict_and_seeded():
    num_nodes = 5000  # 12.5M pairs: rejection sampling
    gen = torch.Generator().manual_seed(0)
    edge_index = torch.randint(num_nodes, (2, 20000), generator=gen)
    exclude = torch.randint(num_nodes, (2, 5000), generator=gen)
    a = sample_negative_edges(
        edge_index, num_nodes, 30000, torch.Generator().manual_seed(5), exclude=exclude
    )
    b = sample_negative_edges(
        edge_index, num_nodes, 30000, torch.Generator().manual_seed(5), exclude=exclude
    )
    assert torch.equal(a, b)
    assert a.shape == (2, 30000)
    keys = a[0] * num_nodes + a[1]
    assert torch.unique(keys).numel() == 30000
    assert bool((a[0] < a[1]).all())
    forbidden = torch.cat([edge_index, exclude], dim=1)
    lo, hi = torch.minimum(*forbidden), torch.maximum(*forbidden)
    assert not bool(torch.isin(keys, lo * num_nodes + hi).any())


def test_sampler_validates_input():
    with pytest.raises(ValueError, match="shape"):
        sample_negative_edges(torch.zeros(3, 2, dtype=torch.long), 4, 1)
    with pytest.raises(ValueError, match="outside"):
        sample_negative_edges(torch.tensor([[0], [9]]), 4, 1)
    assert sample_negative_edges(torch.tensor([[0], [1]]), 4, 0).shape == (2, 0)


@pytest.mark.realdata
def test_cora_split(shared_data):
    from graphlearn.data.planetoid import load_planetoid

    data = load_planetoid(shared_data / "planetoid", "cora")
    train, valid, test = random_link_split(data, seed=0)
    assert train.edge_label_index.size(1) == 5278 - 263 - 527
    assert valid.edge_label_index.size(1) == 2 * 263
    assert test.edge_label_index.size(1) == 2 * 527
    true = pairs(data.edge_index)
    for split in (valid, test):
        assert not (pairs(split.edge_label_index[:, split.edge_label == 0]) & true)
