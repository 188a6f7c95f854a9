"""GNNLinkPredictor (``gnn_lp``): OGB's GCN / GraphSAGE link predictors and the sheaf
variant, on graphs small enough to check by hand."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.nn import GCNConv, SAGEConv

from graphlearn.config import Config, DataConfig, ModelConfig, TrainConfig
from graphlearn.errors import ConfigError
from graphlearn.models import MODELS, GNNLinkPredictor, build_model, list_models
from graphlearn.models.gnn_lp import (
    GCNEncoder,
    SAGEEncoder,
    csr_transpose,
    gcn_adjacency,
    list_link_encoders,
    mean_adjacency,
    row_normalized,
)
from graphlearn.tasks import build_task

N = 6
# a path 0-1-2-3 plus a triangle 3-4-5, both directions, one duplicate and one self-loop
EDGES = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 3, 0, 2],
                      [1, 0, 2, 1, 3, 2, 4, 3, 5, 4, 3, 5, 1, 2]])
CONVS = ["gcn", "sage", "sheaf"]


def params(conv: str, **extra) -> dict:
    out = {"conv": conv, "hidden_channels": 8, "dropout": 0.0, **extra}
    if conv == "sheaf":  # the reference backend: no CPU kernel build in the test's cache
        out |= {"stalk_dim": 2, "backend": "reference"}
    return out


def test_registered_with_its_encoders():
    assert "gnn_lp" in list_models() and MODELS.get("gnn_lp") is GNNLinkPredictor
    assert list_link_encoders() == CONVS


@pytest.mark.parametrize("conv", CONVS)
@pytest.mark.parametrize("features", [False, True])
def test_shapes_and_gradients_reach_every_parameter(conv, features):
    context = {"in_channels": 3, "num_nodes": N} if features else {"num_nodes": N}
    model = build_model("gnn_lp", params(conv), **context)
    assert (model.embedding is None) == features
    x = torch.randn(N, 3) if features else None
    z = model.encode(x, EDGES)
    assert z.shape == (N, 8)
    pairs = torch.tensor([[0, 1, 5], [3, 2, 4]])
    logits = model.decode(z, pairs)
    assert logits.shape == (3,)
    assert torch.equal(model(x, EDGES, pairs), logits)
    logits.sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_ogb_sizes_by_default():
    model = build_model("gnn_lp", {}, num_nodes=N)
    assert model.embedding.weight.shape == (N, 256)
    assert [type(c).__name__ for c in model.encoder.convs] == ["GCNConv", "GCNConv"]
    assert [tuple(lin.weight.shape) for lin in model.predictor] == [(256, 256), (1, 256)]
    assert model.dropout == 0.5
    sheaf = build_model("gnn_lp", {"conv": "sheaf"}, num_nodes=N)
    assert [(layer.stalk_dim, layer.channels, layer.restriction)
            for layer in sheaf.encoder.layers] == [(4, 64, "diagonal")] * 2
    assert sheaf.encoder.lift is None  # the embeddings are the stalks


def test_gcn_adjacency_by_hand():
    # path 0-1-2: degrees with self-loops 2, 3, 2
    adj = gcn_adjacency(torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]), 3).to_dense()
    d = torch.tensor([2.0, 3.0, 2.0]).rsqrt()
    expected = torch.tensor([[1.0, 1, 0], [1, 1, 1], [0, 1, 1]]) * d[:, None] * d[None, :]
    assert torch.allclose(adj, expected)


def test_csr_layers_equal_pyg_on_edge_index():
    """The cached CSR path computes PyG's GCN and mean-SAGE on the merged graph."""
    simple = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 3],
                           [1, 0, 2, 1, 3, 2, 4, 3, 5, 4, 3, 5]])  # EDGES merged
    x = torch.randn(N, 4)
    gcn = GCNConv(4, 5)
    plain = GCNConv(4, 5, normalize=False)
    plain.load_state_dict(gcn.state_dict())
    assert torch.allclose(plain(x, gcn_adjacency(EDGES, N)), gcn(x, simple), atol=1e-6)
    sage = SAGEConv(4, 5, aggr="mean")
    assert torch.allclose(sage(x, mean_adjacency(EDGES, N)), sage(x, simple), atol=1e-6)


def test_csr_transpose_and_row_normalisation_by_hand():
    adj = mean_adjacency(torch.tensor([[0, 2, 2, 1], [1, 1, 0, 2]]), 4)  # row = target
    assert torch.equal(csr_transpose(adj).to_dense(), adj.to_dense().t())
    expected = torch.tensor([[0.0, 0, 1, 0], [0.5, 0, 0.5, 0], [0, 1, 0, 0], [0, 0, 0, 0]])
    assert torch.equal(row_normalized(adj).to_dense(), expected)  # node 3: no in-edges


@pytest.mark.parametrize("encoder", [GCNEncoder, SAGEEncoder])
@pytest.mark.parametrize("directed", [False, True])
def test_encoders_equal_a_stack_of_pyg_convs(encoder, directed):
    """Values and every gradient (input and parameters) of the cached-transpose path
    equal PyG's modules run on the merged ``edge_index``, on a directed graph too
    (where the backward needs the real transpose)."""
    edges = EDGES[:, :9] if directed else EDGES  # 9 edges: not closed under reversal
    merged = torch.unique(edges[:, edges[0] != edges[1]], dim=1)
    torch.manual_seed(0)
    model = encoder(4, 5, num_layers=2, dropout=0.0)
    pyg = [GCNConv(c.in_channels, c.out_channels) if encoder is GCNEncoder
           else SAGEConv(c.in_channels, c.out_channels, aggr="mean") for c in model.convs]
    for conv, ours in zip(pyg, model.convs):
        conv.load_state_dict(ours.state_dict())
    x = torch.randn(N, 4, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    out = model(x, edges)
    ref = pyg[1](torch.relu(pyg[0](x_ref, merged)), merged)
    assert torch.allclose(out, ref, atol=1e-6)
    grad = torch.randn_like(out)
    got = torch.autograd.grad(out, [x, *model.parameters()], grad)
    want = torch.autograd.grad(ref, [x_ref, *(p for c in pyg for p in c.parameters())], grad)
    for a, b in zip(got, want, strict=True):
        assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()


def test_the_adjacency_is_built_once_per_graph():
    model = build_model("gnn_lp", params("gcn"), num_nodes=N)
    cache = model.encoder._adjacency
    model.encode(None, EDGES)
    first = cache._value
    model.encode(None, EDGES)
    assert cache._value is first
    model.encode(None, EDGES.clone())  # another graph tensor: rebuilt
    assert cache._value is not first
    model.reset_parameters()
    assert cache._value is None


def test_clip_groups_are_embeddings_encoder_predictor():
    model = build_model("gnn_lp", params("gcn"), num_nodes=N)
    groups = model.clip_groups()
    assert [len(g) for g in groups] == [1, 4, 4]
    assert sum(len(g) for g in groups) == len(list(model.parameters()))
    featured = build_model("gnn_lp", params("sheaf"), in_channels=3, num_nodes=N)
    assert len(featured.clip_groups()) == 2  # no embeddings


@pytest.mark.parametrize("change, message", [
    ({"conv": "gat"}, "unknown link encoder 'gat'.*valid: gcn, sage, sheaf"),
    ({"conv": "sage", "stalk_dim": 4}, "stalk_dim applies to conv='sheaf' only"),
    ({"conv": "gcn", "restriction": "general"}, "restriction applies to conv='sheaf' only"),
    ({"conv": "sheaf", "hidden_channels": 10, "stalk_dim": 4}, "stalk_dim 4 must divide"),
    ({"conv": "sheaf", "restriction": "diagonl"}, "did you mean 'diagonal'"),
    ({"dropout": 1.0}, "dropout must be in"),
    ({"num_layers": 0}, "num_layers must be a positive integer"),
    ({"hidden": 8}, "unknown key 'model.params.hidden'.*did you mean 'hidden_channels'"),
    ({"num_nodes": 3}, "model.params.num_nodes is set by the task"),
])
def test_bad_hyperparameters_are_config_errors(change, message):
    with pytest.raises(ConfigError, match=message):
        build_model("gnn_lp", change, num_nodes=N)


def test_input_mismatches_fail_clearly():
    with pytest.raises(ConfigError, match="needs node features .in_channels. or num_nodes"):
        build_model("gnn_lp", {})
    embedded = build_model("gnn_lp", params("gcn"), num_nodes=N)
    with pytest.raises(ValueError, match="learns node embeddings"):
        embedded.encode(torch.randn(N, 3), EDGES)
    with pytest.raises(ValueError, match="refers to node 6, the input has 6 nodes"):
        embedded.encode(None, torch.tensor([[0], [6]]))
    featured = build_model("gnn_lp", params("gcn"), in_channels=3, num_nodes=N)
    with pytest.raises(ValueError, match="encode needs the node features"):
        featured.encode(None, EDGES)
    with pytest.raises(ValueError, match=r"must be \[2, M\]"):
        featured.decode(torch.zeros(N, 8), torch.tensor([0, 1]))


@pytest.mark.parametrize("conv", CONVS)
def test_the_same_model_trains_in_the_link_task_on_features(conv):
    """Through the ``link`` task (Cora-like: features, random split), no embeddings."""
    from tests.tasks.test_link import tiny_graph

    cfg = Config(task="link", data=DataConfig(name="tiny-graph", val_ratio=0.1, test_ratio=0.1,
                                              split_seed=3),
                 model=ModelConfig(name="gnn_lp", params=params(conv, hidden_channels=16)),
                 train=TrainConfig(epochs=5, lr=0.01, patience=None))
    task = build_task(cfg, tiny_graph())
    torch.manual_seed(0)
    model = task.build_model()
    assert model.embedding is None
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for epoch in range(1, 41):
        for batch in task.train_batches(epoch, gen):
            optimizer.zero_grad()
            loss = task.training_step(model, batch)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
    assert sum(losses[-5:]) < sum(losses[:5])
    model.eval()
    assert task.evaluate(model, "test")["auroc"] > 0.7
