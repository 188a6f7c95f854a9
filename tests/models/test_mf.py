import math

import pytest
import torch

from graphlearn.errors import ConfigError
from graphlearn.models import BPRMF, MODELS, LightGCN, build_model, list_models

EDGES = torch.tensor([[0, 0, 1, 2, 2], [0, 1, 1, 2, 3]])  # 3 users, 4 items
CONTEXT = {"num_users": 3, "num_items": 4, "train_edges": EDGES}


def test_registered_recommenders():
    assert {"bpr_mf", "lightgcn"} <= set(list_models())
    assert MODELS.get("BPR-MF") is BPRMF and MODELS.get("LightGCN") is LightGCN


@pytest.mark.parametrize("name", ["bpr_mf", "lightgcn"])
def test_every_recommender_runs_forward_and_backward(name):
    torch.manual_seed(0)
    model = build_model(name, {"dim": 4, "reg_weight": 0.1}, **CONTEXT)
    user_repr, item_repr = model.encode()
    assert user_repr.shape == (3, 4) and item_repr.shape == (4, 4)
    user, pos, neg = torch.tensor([0, 2]), torch.tensor([1, 3]), torch.tensor([[2, 3], [0, 1]])
    pos_score = model.score(user_repr[user], item_repr[pos])
    neg_score = model.score(user_repr[user].unsqueeze(1), item_repr[neg])
    assert pos_score.shape == (2,) and neg_score.shape == (2, 2)
    loss = (neg_score.sum() - pos_score.sum()) + model.regularization(user, pos, neg)
    loss.backward()
    assert model.user_embedding.weight.grad is not None
    assert torch.isfinite(model.item_embedding.weight.grad).all()
    all_scores = model.score_all(user_repr, item_repr)
    assert torch.allclose(all_scores[user[:, None], pos[:, None]].view(-1), pos_score)


def test_mf_scores_are_dot_products_of_the_tables():
    model = BPRMF(3, 4, dim=2)
    with torch.no_grad():
        model.user_embedding.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]))
        model.item_embedding.weight.copy_(torch.tensor([[1.0, 1.0], [2.0, 0.0], [0.0, 3.0],
                                                        [-1.0, 0.0]]))
    user_repr, item_repr = model.encode()
    expected = torch.tensor([[1.0, 2.0, 0.0, -1.0], [2.0, 0.0, 6.0, 0.0], [2.0, 2.0, 3.0, -1.0]])
    assert torch.equal(model.score_all(user_repr, item_repr), expected)


def test_mf_init_is_xavier_normal():
    torch.manual_seed(0)
    model = BPRMF(2000, 3000, dim=64)
    std = model.item_embedding.weight.std().item()
    assert math.isclose(std, math.sqrt(2.0 / (3000 + 64)), rel_tol=0.05)


def test_regularization_squared_and_recbole_forms():
    model = BPRMF(3, 4, dim=2, reg_weight=0.5)
    with torch.no_grad():
        model.user_embedding.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]))
        model.item_embedding.weight.copy_(torch.tensor([[1.0, 1.0], [2.0, 0.0], [0.0, 3.0],
                                                        [-1.0, 0.0]]))
    user, pos = torch.tensor([0, 1]), torch.tensor([1, 2])
    neg = torch.tensor([[0, 3], [3, 3]])
    # squared: users 1 + 4, positives 4 + 9, negatives (2 + 1 + 1 + 1) / k=2
    expected = 0.5 * (5 + 13 + 5 / 2) / (2 * 2)
    assert math.isclose(model.regularization(user, pos, neg).item(), expected, rel_tol=1e-6)
    model.reg_squared = False
    expected = 0.5 * (math.sqrt(5) + math.sqrt(13) + math.sqrt(5)) / 2
    assert math.isclose(model.regularization(user, pos, neg).item(), expected, rel_tol=1e-6)
    model.reg_weight = 0.0
    assert model.regularization(user, pos, neg).item() == 0.0


def test_bad_model_params_are_config_errors():
    with pytest.raises(ConfigError, match="unknown model 'bpr_fm'.*did you mean 'bpr_mf'"):
        build_model("bpr_fm", {}, **CONTEXT)
    with pytest.raises(ConfigError, match=r"model.params.dimm.*did you mean 'dim'"):
        build_model("bpr_mf", {"dimm": 8}, **CONTEXT)
    with pytest.raises(ConfigError, match=r"model.params.dim.*expected int.*'8'"):
        build_model("bpr_mf", {"dim": "8"}, **CONTEXT)
    with pytest.raises(ConfigError, match="num_users is set by the task"):
        build_model("bpr_mf", {"num_users": 8}, **CONTEXT)
    with pytest.raises(ConfigError, match="reg_weight must be >= 0"):
        build_model("bpr_mf", {"reg_weight": -1.0}, **CONTEXT)
    with pytest.raises(ConfigError, match="needs 'train_edges'"):
        build_model("lightgcn", {}, num_users=3, num_items=4)
