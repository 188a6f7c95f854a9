"""NGCF: one layer against the paper's formula by hand, shapes, gradients, training."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from graphlearn.config import ModelConfig
from graphlearn.errors import ConfigError
from graphlearn.models import MODELS, NGCF, build_model, list_models
from graphlearn.models.ngcf import NGCFLayer
from graphlearn.tasks import build_task
from tests.train.synthetic import tiny_config, tiny_data

F64 = torch.float64
# 2 users, 3 items: u0-{i0, i1}, u1-{i1, i2}; nodes u0, u1, i0, i1, i2 = 0..4
EDGES = torch.tensor([[0, 0, 1, 1], [0, 1, 1, 2]])
CONTEXT = {"num_users": 2, "num_items": 3, "train_edges": EDGES}
# degrees: u0 2, u1 2, i0 1, i1 2, i2 1
S2, S4 = 1 / math.sqrt(2 * 1), 1 / math.sqrt(2 * 2)
LAPLACIAN = torch.tensor([  # D^{-1/2} A D^{-1/2}, entry by entry
    [0, 0, S2, S4, 0],
    [0, 0, 0, S4, S2],
    [S2, 0, 0, 0, 0],
    [S4, S4, 0, 0, 0],
    [0, S2, 0, 0, 0],
], dtype=F64)


def leaky(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > 0, t, 0.2 * t)


def layer_by_hand(layer: NGCFLayer, x: torch.Tensor) -> torch.Tensor:
    """Eq. 7 with dense matrices: LeakyReLU(((L + I) E) W1 + b1 + ((L E) ⊙ E) W2 + b2)."""
    w1, b1 = layer.linear_sum.weight.detach(), layer.linear_sum.bias.detach()
    w2, b2 = layer.linear_product.weight.detach(), layer.linear_product.bias.detach()
    eye = torch.eye(5, dtype=F64)
    return leaky((LAPLACIAN + eye) @ x @ w1.T + b1 + ((LAPLACIAN @ x) * x) @ w2.T + b2)


def test_registered_and_built_from_the_task_context():
    assert "ngcf" in list_models() and MODELS.get("NGCF") is NGCF
    model = build_model("ngcf", {"dim": 4, "hidden_sizes": [3, 2]}, **CONTEXT)
    assert isinstance(model, NGCF) and model.out_dim == 4 + 3 + 2
    assert set(model.state_dict()) == {
        "user_embedding.weight", "item_embedding.weight",
        *(f"layers.{k}.{lin}.{p}" for k in range(2) for lin in ("linear_sum", "linear_product")
          for p in ("weight", "bias"))}  # the adjacency is derived from the data, not saved
    assert torch.allclose(model.adjacency.to_dense().double(), LAPLACIAN, atol=1e-7)


def test_one_layer_equals_the_formula_by_hand():
    torch.manual_seed(0)
    layer = NGCFLayer(4, 3).double()
    with torch.no_grad():  # non-zero biases, so that they are checked too
        layer.linear_sum.bias.uniform_(-1, 1)
        layer.linear_product.bias.uniform_(-1, 1)
    model = NGCF(2, 3, EDGES, dim=4, hidden_sizes=[3]).double()
    x = torch.randn(5, 4, dtype=F64)
    out = layer(model.adjacency, x)
    assert out.shape == (5, 3)
    assert torch.allclose(out, layer_by_hand(layer, x))
    # user 0, written out per node: W1 (e_u + Σ e_i / √(|N_u||N_i|)) + W2 Σ e_i ⊙ e_u / √(...)
    w1, b1 = layer.linear_sum.weight.detach(), layer.linear_sum.bias.detach()
    w2, b2 = layer.linear_product.weight.detach(), layer.linear_product.bias.detach()
    e_u, e_i0, e_i1 = x[0], x[2], x[3]
    summed = e_u + e_i0 / math.sqrt(2 * 1) + e_i1 / math.sqrt(2 * 2)
    product = e_i0 * e_u / math.sqrt(2 * 1) + e_i1 * e_u / math.sqrt(2 * 2)
    assert torch.allclose(out[0], leaky(w1 @ summed + b1 + w2 @ product + b2))


def test_encode_concatenates_the_normalised_layers_without_dropout_in_eval():
    torch.manual_seed(1)
    model = NGCF(2, 3, EDGES, dim=4, hidden_sizes=[3, 2]).double().eval()
    ego = torch.cat([model.user_embedding.weight, model.item_embedding.weight]).detach()
    h1 = F.normalize(layer_by_hand(model.layers[0], ego), dim=1)
    h2 = F.normalize(layer_by_hand(model.layers[1], h1), dim=1)
    user_repr, item_repr = model.encode()
    assert user_repr.shape == (2, 9) and item_repr.shape == (3, 9)
    assert torch.allclose(torch.cat([user_repr, item_repr]), torch.cat([ego, h1, h2], 1))
    norms = torch.cat([user_repr, item_repr])[:, 4:7].norm(dim=1)
    assert torch.allclose(norms, torch.ones(5, dtype=F64))
    scores = model.score_all(user_repr, item_repr)
    assert scores.shape == (2, 3)
    assert torch.allclose(scores[1, 2], model.score(user_repr[1], item_repr[2]))


def test_dropouts_act_in_training_mode_only():
    torch.manual_seed(2)
    model = NGCF(2, 3, EDGES, dim=4, hidden_sizes=[4], message_dropout=0.5,
                 node_dropout=0.5).double()
    model.eval()
    first = torch.cat(model.encode())
    assert torch.equal(first, torch.cat(model.encode()))
    model.train()
    torch.manual_seed(3)
    assert not torch.allclose(torch.cat(model.encode()), first)


def test_node_dropout_drops_whole_nodes_messages():
    torch.manual_seed(4)
    layer = NGCFLayer(4, 3).double()
    model = NGCF(2, 3, EDGES, dim=4, hidden_sizes=[3]).double()
    x = torch.randn(5, 4, dtype=F64)
    mask = torch.tensor([[2.0], [0.0], [2.0], [0.0], [2.0]], dtype=F64)  # p = 0.5
    out = layer(model.adjacency, x, mask)
    w1, b1 = layer.linear_sum.weight.detach(), layer.linear_sum.bias.detach()
    w2, b2 = layer.linear_product.weight.detach(), layer.linear_product.bias.detach()
    side = LAPLACIAN @ (mask * x)  # messages of nodes 1 and 3 dropped, the rest scaled
    expected = leaky((side + x) @ w1.T + b1 + (side * x) @ w2.T + b2)
    assert torch.allclose(out, expected)


def test_gradients_reach_every_parameter():
    torch.manual_seed(5)
    model = build_model("ngcf", {"dim": 4, "hidden_sizes": [4, 4], "reg_weight": 0.1,
                                 "node_dropout": 0.2}, **CONTEXT)
    user_repr, item_repr = model.encode()
    user, pos, neg = torch.tensor([0, 1]), torch.tensor([0, 2]), torch.tensor([[2], [0]])
    pos_score = model.score(user_repr[user], item_repr[pos])
    neg_score = model.score(user_repr[user].unsqueeze(1), item_repr[neg])
    assert pos_score.shape == (2,) and neg_score.shape == (2, 1)
    loss = -F.logsigmoid(pos_score[:, None] - neg_score).mean() \
        + model.regularization(user, pos, neg)
    loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


def test_tiny_training_run_lowers_the_bpr_loss():
    data = tiny_data(num_users=40, per_user=10)
    cfg = tiny_config("ngcf", batch_size=64)
    cfg = dataclasses.replace(cfg, model=ModelConfig(
        name="ngcf", params={"dim": 8, "hidden_sizes": [8, 8], "reg_weight": 1e-5}))
    task = build_task(cfg, data)
    torch.manual_seed(0)
    model = task.build_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    generator = torch.Generator().manual_seed(0)
    epoch_loss = []
    for epoch in range(8):
        total = []
        for batch in task.train_batches(epoch, generator):
            optimizer.zero_grad()
            loss = task.training_step(model, batch)
            loss.backward()
            optimizer.step()
            total.append(loss.item())
        epoch_loss.append(sum(total) / len(total))
    assert epoch_loss[-1] < 0.8 * epoch_loss[0], epoch_loss


def test_bad_params_are_config_errors():
    with pytest.raises(ConfigError, match="hidden_sizes must be a list of positive integers"):
        build_model("ngcf", {"hidden_sizes": [64, 0]}, **CONTEXT)
    with pytest.raises(ConfigError, match="message_dropout must be in"):
        build_model("ngcf", {"message_dropout": 1.0}, **CONTEXT)
    with pytest.raises(ConfigError, match="unknown key 'model.params.num_layers'"):
        build_model("ngcf", {"num_layers": 2}, **CONTEXT)
    with pytest.raises(ConfigError, match="train_edges must be"):
        build_model("ngcf", {}, num_users=2, num_items=3, train_edges=EDGES[0])
