import pytest
import torch
from torch_geometric.data import Data

from graphlearn.data.node_split import node_split, random_node_masks
from graphlearn.errors import ConfigError


def graph(num_nodes: int = 10) -> Data:
    ring = torch.arange(num_nodes)
    edge_index = torch.stack([ring, (ring + 1) % num_nodes])
    return Data(x=torch.eye(num_nodes), edge_index=edge_index, y=ring % 2, num_nodes=num_nodes)


def test_random_masks_are_disjoint_sized_and_seeded():
    train, valid, test = random_node_masks(100, 0.16, 0.2, seed=3)
    assert (int(train.sum()), int(valid.sum()), int(test.sum())) == (64, 16, 20)
    assert not (train & valid).any() and not (train & test).any() and not (valid & test).any()
    assert bool((train | valid | test).all())
    again = random_node_masks(100, 0.16, 0.2, seed=3)
    assert all(torch.equal(a, b) for a, b in zip((train, valid, test), again))
    assert not torch.equal(random_node_masks(100, 0.16, 0.2, seed=4)[1], valid)


def test_random_masks_need_a_training_set():
    with pytest.raises(ValueError, match="none for training"):
        random_node_masks(3, 0.5, 0.4)


def test_node_split_public_keeps_the_masks_and_never_mutates():
    data = graph()
    data.train_mask = torch.arange(10) < 2
    data.val_mask = (torch.arange(10) >= 2) & (torch.arange(10) < 5)
    data.test_mask = torch.arange(10) >= 5
    public = node_split(data, "public")
    assert torch.equal(public.train_mask, data.train_mask)
    shuffled = node_split(data, "random", val_ratio=0.2, test_ratio=0.2, seed=0)
    assert int(shuffled.train_mask.sum()) == 6
    assert torch.equal(data.train_mask, torch.arange(10) < 2)  # the input is untouched


def test_node_split_errors():
    with pytest.raises(ConfigError, match="has no train_mask"):
        node_split(graph(), "public")
    with pytest.raises(ConfigError, match="unknown node split 'temporal'"):
        node_split(graph(), "temporal")
