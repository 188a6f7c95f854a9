from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from graphlearn.metrics.classification import auroc_ap
from graphlearn.models.gae import GAE

# a 6-node graph: triangle 0-1-2, triangle 3-4-5, bridge 2-3 (both directions)
UNDIRECTED = [(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5), (2, 3)]
EDGE_INDEX = torch.tensor(UNDIRECTED + [(v, u) for u, v in UNDIRECTED]).t()


def test_shapes_and_defaults_follow_the_paper():
    model = GAE(5)
    assert model.conv1.out_channels == 32 and model.conv2.out_channels == 16
    x = torch.randn(6, 5)
    z = model.encode(x, EDGE_INDEX)
    assert z.shape == (6, 16)
    pairs = torch.tensor([[0, 1, 5], [2, 4, 0]])
    assert model.decode(z, pairs).shape == (3,)
    assert model(x, EDGE_INDEX, pairs).shape == (3,)
    assert model.decode_all(z).shape == (6, 6)


def test_encoder_is_the_two_layer_gcn_formula():
    torch.manual_seed(0)
    model = GAE(5, 4, 3)
    x = torch.randn(6, 5)
    adj = torch.zeros(6, 6)
    adj[EDGE_INDEX[0], EDGE_INDEX[1]] = 1.0
    adj += torch.eye(6)
    d = adj.sum(1).pow(-0.5)
    norm = d[:, None] * adj * d[None, :]  # D^-1/2 (A + I) D^-1/2

    def layer(conv, h):
        return norm @ conv.lin(h) + conv.bias

    expected = layer(model.conv2, F.relu(layer(model.conv1, x)))
    torch.testing.assert_close(model.encode(x, EDGE_INDEX), expected, rtol=1e-5, atol=1e-5)


def test_decode_is_inner_product_and_matches_decode_all():
    z = torch.tensor([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]])
    pairs = torch.tensor([[0, 1, 2], [1, 2, 0]])
    assert GAE(2).decode(z, pairs).tolist() == [1.0, 1.0, 1.5]
    full = GAE(2).decode_all(z)
    torch.testing.assert_close(full[pairs[0], pairs[1]], GAE(2).decode(z, pairs))
    with pytest.raises(ValueError, match=r"\[2, M\]"):
        GAE(2).decode(z, pairs.t())


def test_reset_parameters_is_seeded():
    a, b = GAE(5), GAE(5)
    with torch.no_grad():
        for p in a.parameters():
            p.add_(1.0)
    for model in (a, b):
        torch.manual_seed(1)
        model.reset_parameters()
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


def test_bad_arguments():
    with pytest.raises(ValueError, match="in_channels"):
        GAE(0)
    with pytest.raises(ValueError, match="dropout"):
        GAE(3, dropout=1.0)


def test_learns_to_separate_edges_from_non_edges():
    torch.manual_seed(0)
    x = torch.eye(6)
    model = GAE(6, 16, 8)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    target = torch.zeros(6, 6)
    target[EDGE_INDEX[0], EDGE_INDEX[1]] = 1.0
    for _ in range(100):
        optimizer.zero_grad()
        logits = model.decode_all(model.encode(x, EDGE_INDEX))
        F.binary_cross_entropy_with_logits(logits, target, pos_weight=torch.tensor(2.0)).backward()
        optimizer.step()
    with torch.no_grad():
        scores = model.decode_all(model.encode(x, EDGE_INDEX))
    off_diagonal = ~torch.eye(6, dtype=torch.bool)
    metrics = auroc_ap(scores[off_diagonal], target[off_diagonal])
    assert metrics["auroc"] > 0.95
