from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from graphlearn.metrics.ranking import build_filter_index, evaluate_kg
from graphlearn.models.kge import ComplEx, DistMult, KGEModel, RotatE

MODELS = [DistMult, ComplEx, RotatE]
N, TWO_R, D = 7, 6, 4


def make(cls: type[KGEModel], seed: int = 0, **kwargs) -> KGEModel:
    torch.manual_seed(seed)
    model = cls(N, TWO_R, D, **kwargs)
    if cls is not RotatE:  # the default 1e-3 init makes every score ~0; spread them out
        with torch.no_grad():
            model.entity.weight.normal_()
            model.relation.weight.normal_()
    return model


# ---------------------------------------------------------------------------
# Hand-computed scores


def test_distmult_score_by_hand():
    model = DistMult(3, 2, 2)
    with torch.no_grad():
        model.entity.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, -1.0], [0.5, 0.0]]))
        model.relation.weight.copy_(torch.tensor([[2.0, 1.0], [-1.0, 3.0]]))
    # (0, 0, 1): 1*2*3 + 2*1*(-1) = 4 ; (1, 1, 0): 3*(-1)*1 + (-1)*3*2 = -9
    out = model(torch.tensor([0, 1]), torch.tensor([0, 1]), torch.tensor([1, 0]))
    assert out.tolist() == [4.0, -9.0]
    # all tails of (0, 0): query (2, 2) against the entity rows
    assert model.score_all_tails(torch.tensor([0]), torch.tensor([0])).tolist() == [[6.0, 4.0, 1.0]]


def test_complex_score_matches_complex_arithmetic():
    model = make(ComplEx)
    e = torch.complex(*model.entity.weight.detach().chunk(2, dim=1))  # (N, d)
    w = torch.complex(*model.relation.weight.detach().chunk(2, dim=1))  # (2R, d)
    h, r, t = torch.tensor([0, 3, 6]), torch.tensor([1, 5, 0]), torch.tensor([2, 2, 4])
    expected = (e[h] * w[r] * e[t].conj()).sum(-1).real
    torch.testing.assert_close(model(h, r, t).detach(), expected)


def test_complex_is_not_symmetric_but_distmult_is():
    h, r, t = torch.tensor([0]), torch.tensor([1]), torch.tensor([2])
    dm, cx = make(DistMult), make(ComplEx)
    torch.testing.assert_close(dm(h, r, t), dm(t, r, h))
    assert not torch.allclose(cx(h, r, t), cx(t, r, h))


def test_rotate_score_matches_complex_arithmetic():
    model = make(RotatE, gamma=6.0)
    e = torch.complex(*model.entity.weight.detach().chunk(2, dim=1))  # (N, d)
    phase = model.relation.weight.detach() / model.embedding_range * math.pi
    w = torch.polar(torch.ones_like(phase), phase)  # |w| = 1
    h, r, t = torch.tensor([0, 3, 6]), torch.tensor([1, 5, 0]), torch.tensor([2, 2, 4])
    expected = 6.0 - (e[h] * w[r] - e[t]).abs().sum(-1)
    torch.testing.assert_close(model(h, r, t).detach(), expected)


def test_rotate_initialisation_follows_the_paper():
    model = RotatE(50, 10, 20, gamma=12.0, epsilon=2.0)
    rho = (12.0 + 2.0) / 20
    assert model.embedding_range == pytest.approx(rho)
    weight = model.entity.weight.detach()
    assert float(weight.abs().max()) <= rho
    assert float(model.relation.weight.detach().abs().max()) <= rho
    # phases span [-pi, pi]
    phase = model.relation.weight.detach() / rho * math.pi
    assert float(phase.abs().max()) <= math.pi + 1e-6
    assert float(phase.abs().max()) > 2.5


def test_rotate_perfect_rotation_scores_gamma_with_finite_gradient():
    model = make(RotatE, gamma=5.0)
    with torch.no_grad():  # make entity 1 exactly entity 0 rotated by relation 2
        re, im = model.entity.weight[0].chunk(2)
        phase = model.relation.weight[2] / model.embedding_range * math.pi
        rotated = torch.cat(
            [re * phase.cos() - im * phase.sin(), re * phase.sin() + im * phase.cos()]
        )
        model.entity.weight[1] = rotated
    score = model(torch.tensor([0]), torch.tensor([2]), torch.tensor([1]))
    assert float(score.detach()) == pytest.approx(5.0, abs=1e-5)
    score.sum().backward()
    assert torch.isfinite(model.entity.weight.grad).all()
    assert torch.isfinite(model.relation.weight.grad).all()


# ---------------------------------------------------------------------------
# Shared API


@pytest.mark.parametrize("cls", MODELS)
def test_score_all_tails_matches_forward(cls):
    model = make(cls)
    head, relation = torch.tensor([0, 1, 5, 6]), torch.tensor([0, 5, 2, 3])
    everything = model.score_all_tails(head, relation)
    assert everything.shape == (4, N)
    tails = torch.arange(N).expand(4, N)
    pairwise = model(head.unsqueeze(1), relation.unsqueeze(1), tails)  # broadcast (4, N)
    torch.testing.assert_close(everything, pairwise, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls", MODELS)
def test_forward_broadcasts_candidates(cls):
    model = make(cls)
    head, relation = torch.tensor([[0], [2]]), torch.tensor([[1], [4]])
    tails = torch.tensor([[1, 2, 3], [4, 5, 6]])
    out = model(head, relation, tails)
    assert out.shape == (2, 3)
    single = model(torch.tensor([2]), torch.tensor([4]), torch.tensor([5]))
    torch.testing.assert_close(out[1, 1:2], single)


@pytest.mark.parametrize("cls", MODELS)
def test_forward_backward_finite(cls):
    model = make(cls)
    scores = model(torch.tensor([0, 1]), torch.tensor([2, 3]), torch.tensor([4, 5]))
    (
        scores.sum() + model.regularization(torch.tensor([0]), torch.tensor([2]), torch.tensor([4]))
    ).backward()
    for p in model.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()


@pytest.mark.parametrize("cls", MODELS)
def test_reset_parameters_is_seeded(cls):
    a, b = cls(N, TWO_R, D), cls(N, TWO_R, D)
    with torch.no_grad():
        for p in a.parameters():
            p.zero_()
    for model in (a, b):
        torch.manual_seed(3)
        model.reset_parameters()
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
        assert pa.abs().sum() > 0


@pytest.mark.parametrize("cls", MODELS)
def test_relation_table_includes_inverses(cls):
    model = cls(N, TWO_R, D)
    assert model.relation.num_embeddings == TWO_R
    with pytest.raises(IndexError):
        model(torch.tensor([0]), torch.tensor([TWO_R]), torch.tensor([1]))


@pytest.mark.parametrize("cls", MODELS)
def test_bad_arguments(cls):
    with pytest.raises(ValueError, match="dim"):
        cls(N, TWO_R, 0)
    with pytest.raises(ValueError, match="num_entities"):
        cls(0, TWO_R, D)
    model = cls(N, TWO_R, D)
    with pytest.raises(ValueError, match=r"head \[b\]"):
        model.score_all_tails(torch.tensor([[0]]), torch.tensor([[0]]))


class _LargestTensor(TorchFunctionMode):
    """Records the largest tensor any torch function returns."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for value in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(value, torch.Tensor):
                self.largest = max(self.largest, value.numel())
        return out


@pytest.mark.parametrize("cls", [DistMult, ComplEx])
def test_bilinear_all_tails_never_builds_batch_by_entities_by_dim(cls):
    model = cls(200, 4, 16)
    head, relation = torch.arange(32), torch.zeros(32, dtype=torch.long)
    with torch.no_grad(), _LargestTensor() as mode:
        model.score_all_tails(head, relation)
    assert mode.largest <= max(32 * 200, 200 * 2 * 16)  # scores or the entity table


@pytest.mark.parametrize("budget", [8, 240, 3 * 50 * 8, 1 << 16])
def test_rotate_all_tails_blocks_and_agrees(budget):
    # b = 10 queries, N = 50 entities, d = 8: budgets give 1 x 1, 1 x 30, 3 x 50, 10 x 50 blocks
    torch.manual_seed(0)
    blocked = RotatE(50, 4, 8, max_chunk_elements=budget)
    whole = RotatE(50, 4, 8, max_chunk_elements=10 * 50 * 8)
    whole.load_state_dict(blocked.state_dict())
    head, relation = torch.arange(10), torch.arange(10) % 4
    with torch.no_grad(), _LargestTensor() as mode:
        out = blocked.score_all_tails(head, relation)
    # no intermediate beyond one (rows, cols, d) block, other than the [b, N] result itself
    assert mode.largest <= max(budget, 8, 10 * 50)
    torch.testing.assert_close(out, whole.score_all_tails(head, relation))


# ---------------------------------------------------------------------------
# N3


def test_n3_by_hand():
    model = ComplEx(2, 2, 1, n3_weight=0.5)
    with torch.no_grad():  # complex entries 3+4i, 0+1i; relation 1+0i
        model.entity.weight.copy_(torch.tensor([[3.0, 4.0], [0.0, 1.0]]))
        model.relation.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
    reg = model.regularization(torch.tensor([0]), torch.tensor([0]), torch.tensor([1]))
    # 0.5 * (|3+4i|^3 + |1|^3 + |i|^3) / 1 = 0.5 * (125 + 1 + 1)
    assert float(reg.detach()) == pytest.approx(63.5)
    reg.backward()  # relation 1 is 0: the gradient there must stay finite
    assert torch.isfinite(model.relation.weight.grad).all()

    dm = DistMult(2, 2, 2, n3_weight=2.0)
    with torch.no_grad():
        dm.entity.weight.copy_(torch.tensor([[1.0, -2.0], [0.0, 1.0]]))
        dm.relation.weight.copy_(torch.tensor([[-1.0, 1.0], [0.0, 0.0]]))
    h, r, t = torch.tensor([0, 1]), torch.tensor([0, 0]), torch.tensor([1, 0])
    # per triple: (1 + 8) + (1 + 1) + (0 + 1) = 12 and (0 + 1) + 2 + 9 = 12; mean 12
    assert float(dm.regularization(h, r, t).detach()) == pytest.approx(2.0 * 12)
    assert float(DistMult(2, 2, 2).regularization(h, r, t)) == 0.0


# ---------------------------------------------------------------------------
# Training and evaluation through evaluate_kg


def _cycle_kg() -> tuple[torch.Tensor, int, int]:
    """Entities 0..5; relation 0: i -> i+1 (mod 6); relation 1: i -> i+2 (mod 6)."""
    rows = [(i, 0, (i + 1) % 6) for i in range(6)] + [(i, 1, (i + 2) % 6) for i in range(6)]
    return torch.tensor(rows), 6, 2


@pytest.mark.parametrize("cls", [ComplEx, RotatE])
def test_learns_a_small_kg_with_reciprocal_queries(cls):
    triples, num_entities, num_base = _cycle_kg()
    torch.manual_seed(0)
    kwargs = {"gamma": 6.0} if cls is RotatE else {"init_std": 0.1}
    model = cls(num_entities, 2 * num_base, 8, **kwargs)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    h, r, t = triples.t()
    queries = torch.cat([h, t]), torch.cat([r, r + num_base])  # tail and head queries
    answers = torch.cat([t, h])
    for _ in range(200):
        optimizer.zero_grad()
        F.cross_entropy(model.score_all_tails(*queries), answers).backward()
        optimizer.step()
    index = build_filter_index(triples, num_base, num_entities)
    model.eval()
    metrics = evaluate_kg(model.score_all_tails, triples, index, num_entities, num_base)
    assert metrics["mrr"] == pytest.approx(1.0)
    assert metrics["head_hits@1"] == 1.0 and metrics["tail_hits@1"] == 1.0
