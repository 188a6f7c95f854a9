"""The sheaf recommender: construction, propagation by hand, and a tiny training run."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from graphlearn.config import ModelConfig
from graphlearn.errors import ConfigError
from graphlearn.metrics.topk import evaluate_topk
from graphlearn.models import MODELS, build_model, list_models
from graphlearn.models.sheaf_rec import SheafRec
from graphlearn.nn.sheaf import list_restriction_maps
from graphlearn.tasks import build_task
from graphlearn.train import train
from tests.train.synthetic import tiny_config, tiny_data

F64 = torch.float64
# 3 users, 4 items; item 3 has no interaction; (0, 1) is listed twice
EDGES = torch.tensor([[0, 0, 1, 2, 2, 0], [0, 1, 1, 2, 0, 1]])
CONTEXT = {"num_users": 3, "num_items": 4, "train_edges": EDGES}


@pytest.fixture(scope="module")
def _extensions_dir(request) -> str:
    """The fused CPU kernel builds into the same persistent folder as tests/ops uses."""
    return str(request.config.cache.mkdir("graphlearn_torch_extensions"))


@pytest.fixture(autouse=True)
def _persistent_extensions(_extensions_dir, monkeypatch):
    monkeypatch.setenv("GRAPHLEARN_EXTENSIONS_DIR", _extensions_dir)


def test_registered_and_built_from_the_task_context():
    assert "sheaf_rec" in list_models() and MODELS.get("Sheaf-Rec") is SheafRec
    model = build_model("sheaf_rec", {"dim": 8, "stalk_dim": 2}, **CONTEXT)
    assert (model.stalk_dim, model.channels, model.num_layers) == (2, 4, 2)
    # users 0..2, items 3..6; each distinct pair once, sorted
    assert model.edge_index.tolist() == [[0, 0, 1, 2, 2], [3, 4, 4, 3, 5]]
    assert set(model.state_dict()) >= {"user_embedding.weight", "item_embedding.weight"}
    assert "edge_index" not in model.state_dict()  # derived from the data, not checkpointed


@pytest.mark.parametrize("maps", ["per_layer", "shared"])
@pytest.mark.parametrize("restriction", list_restriction_maps())
def test_forward_scores_and_gradients(restriction, maps):
    torch.manual_seed(0)
    model = build_model("sheaf_rec", {"dim": 6, "stalk_dim": 3, "restriction": restriction,
                                      "maps": maps, "reg_weight": 0.1}, **CONTEXT)
    user_repr, item_repr = model.encode()
    assert user_repr.shape == (3, 6) and item_repr.shape == (4, 6)
    user, pos, neg = torch.tensor([0, 2]), torch.tensor([1, 3]), torch.tensor([[2, 3], [0, 1]])
    pos_score = model.score(user_repr[user], item_repr[pos])
    neg_score = model.score(user_repr[user].unsqueeze(1), item_repr[neg])
    assert pos_score.shape == (2,) and neg_score.shape == (2, 2)
    all_scores = model.score_all(user_repr, item_repr)
    assert all_scores.shape == (3, 4)
    assert torch.allclose(all_scores[user, pos], pos_score)
    loss = (neg_score.sum() - pos_score.sum()) + model.regularization(user, pos, neg)
    loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
    if restriction != "identity":
        learner = (model.restriction_maps if maps == "shared"
                   else model.layers[0].restriction_maps)
        assert learner.linear.weight.grad.abs().sum() > 0  # the maps are learned


def test_identity_maps_are_lightgcn_with_self_loops():
    model = build_model("sheaf_rec", {"dim": 4, "stalk_dim": 2, "num_layers": 2,
                                      "restriction": "identity"}, **CONTEXT).double()
    ego = torch.cat([model.user_embedding.weight, model.item_embedding.weight]).detach()
    adjacency = torch.zeros(7, 7, dtype=F64)
    for u, i in zip(*EDGES.tolist()):
        adjacency[u, 3 + i] = adjacency[3 + i, u] = 1.0
    inv = (adjacency.sum(1) + 1).rsqrt()
    gcn = inv[:, None] * (adjacency + torch.eye(7, dtype=F64)) * inv[None, :]
    expected = (ego + gcn @ ego + gcn @ gcn @ ego) / 3
    user_repr, item_repr = model.encode()
    assert torch.allclose(torch.cat([user_repr, item_repr]), expected)


def test_zero_layers_is_matrix_factorisation():
    model = build_model("sheaf_rec", {"dim": 4, "num_layers": 0, "stalk_dim": 2}, **CONTEXT)
    user_repr, item_repr = model.encode()
    assert torch.equal(user_repr, model.user_embedding.weight)
    assert torch.equal(item_repr, model.item_embedding.weight)


def test_rspmm_and_reference_propagation_agree():
    from graphlearn.ops.cpu import cpu_extension_error, load_cpu_extension

    if load_cpu_extension() is None:
        pytest.skip(f"fused CPU kernel unavailable: {cpu_extension_error()}")
    out = []
    for backend in ("cpu", "reference"):
        torch.manual_seed(1)
        model = build_model("sheaf_rec", {"dim": 6, "stalk_dim": 3, "backend": backend},
                            **CONTEXT).double()
        user_repr, item_repr = model.encode()
        (user_repr @ item_repr.T).pow(2).sum().backward()
        out.append([user_repr, item_repr] + [p.grad for p in model.parameters()])
    for ours, theirs in zip(*out):
        assert torch.allclose(ours, theirs)


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("maps", ["per_layer", "shared"])
@pytest.mark.parametrize("restriction", ["identity", "scalar", "diagonal"])
def test_fast_path_equals_the_reference_outputs_and_gradients(restriction, maps, normalize):
    """Diagonal maps: the factored Laplacian (every backend but "reference") computes
    the same representations and the same gradient for every parameter."""
    out = []
    for backend in ("auto", "reference"):
        torch.manual_seed(2)
        model = build_model("sheaf_rec", {"dim": 6, "stalk_dim": 3, "num_layers": 2,
                                          "restriction": restriction, "maps": maps,
                                          "normalize": normalize, "backend": backend},
                            **CONTEXT).double()
        user_repr, item_repr = model.encode()
        (user_repr @ item_repr.T).pow(2).sum().backward()
        out.append([user_repr, item_repr] + [p.grad for p in model.parameters()])
    for ours, theirs in zip(*out):
        assert torch.allclose(ours, theirs, atol=1e-12)


def test_bad_params_are_config_errors():
    with pytest.raises(ConfigError, match="stalk_dim must be a positive divisor of dim=8"):
        build_model("sheaf_rec", {"dim": 8, "stalk_dim": 3}, **CONTEXT)
    with pytest.raises(ConfigError, match="unknown restriction map family 'diag'"):
        build_model("sheaf_rec", {"restriction": "diag"}, **CONTEXT)
    with pytest.raises(ConfigError, match="unknown update 'heat'"):
        build_model("sheaf_rec", {"update": "heat"}, **CONTEXT)
    with pytest.raises(ConfigError, match="num_layers must be an integer >= 0"):
        build_model("sheaf_rec", {"num_layers": -1}, **CONTEXT)


def test_tiny_training_run_beats_random_ranking(tmp_path):
    # 60 users x 16 interactions (two item groups): enough held-out items per user that
    # one lucky validation epoch does not decide the run
    data = tiny_data(num_users=60, per_user=16)
    cfg = tiny_config("sheaf_rec", epochs=4, batch_size=128)
    params = {"dim": 8, "stalk_dim": 2, "num_layers": 2, "reg_weight": 1e-4}
    cfg = dataclasses.replace(cfg, model=ModelConfig(name="sheaf_rec", params=params))
    _, final = train(cfg, out=tmp_path / "run", data=data, progress=False,
                     log=lambda _: None, command=["test"])
    task = build_task(cfg, data)  # the same split (split_seed)
    truth, seen = task.split.items("test"), task.split.seen("test")
    gen = torch.Generator().manual_seed(0)
    random = [evaluate_topk(torch.rand(task.num_users, task.num_items, generator=gen), truth,
                            seen, ks=(5,))["ndcg@5"] for _ in range(20)]  # mean about 0.2
    assert final["test"]["ndcg@5"] > 1.5 * max(random)
