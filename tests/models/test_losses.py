from __future__ import annotations

import math

import pytest
import torch

from graphlearn.models.losses import bpr_loss, margin_loss, self_adversarial_bce

LN2 = math.log(2.0)


def test_self_adversarial_bce_by_hand():
    pos = torch.tensor([0.0])
    neg = torch.tensor([[0.0, math.log(3.0)]])
    # weights softmax([0, ln 3]) = [1/4, 3/4]; -log sigma(0) = ln 2; -log sigma(-ln 3) = ln 4
    # loss = (ln 2 + 1/4 ln 2 + 3/4 ln 4) / 2 = 1.375 ln 2
    assert float(self_adversarial_bce(pos, neg, temperature=1.0)) == pytest.approx(1.375 * LN2)
    # T = 0.5: weights softmax([0, 2 ln 3]) = [1/10, 9/10]
    expected = (LN2 + 0.1 * LN2 + 0.9 * math.log(4.0)) / 2
    assert float(self_adversarial_bce(pos, neg, temperature=0.5)) == pytest.approx(expected)


def test_self_adversarial_bce_uniform_without_temperature():
    pos = torch.tensor([1.0, -2.0])
    neg = torch.tensor([[0.5, -1.0, 2.0], [0.0, 0.0, 3.0]])
    plain = (
        -torch.nn.functional.logsigmoid(pos) - torch.nn.functional.logsigmoid(-neg).mean(1)
    ) / 2
    for t in (None, 0, 0.0):
        torch.testing.assert_close(self_adversarial_bce(pos, neg, t), plain.mean())
    # a very high temperature tends to uniform weights
    torch.testing.assert_close(self_adversarial_bce(pos, neg, 1e9), plain.mean())


def test_self_adversarial_weights_carry_no_gradient():
    pos = torch.tensor([0.3, -0.2], requires_grad=True)
    neg = torch.tensor([[0.0, 1.0], [2.0, -1.0]], requires_grad=True)
    self_adversarial_bce(pos, neg, temperature=2.0).backward()
    weight = torch.softmax(neg.detach() / 2.0, dim=1)
    # d/ds of -w log sigma(-s) with w constant is w * sigma(s); halved and averaged over b = 2
    torch.testing.assert_close(neg.grad, weight * torch.sigmoid(neg.detach()) / 4)
    torch.testing.assert_close(pos.grad, -torch.sigmoid(-pos.detach()) / 4)


def test_one_negative_per_positive_as_vector():
    pos, neg = torch.tensor([0.0, 1.0]), torch.tensor([0.0, -1.0])
    torch.testing.assert_close(
        self_adversarial_bce(pos, neg, 1.0), self_adversarial_bce(pos, neg.unsqueeze(1), 1.0)
    )


def test_bpr_by_hand():
    pos = torch.tensor([1.0])
    neg = torch.tensor([[0.0, 1.0]])
    expected = -(math.log(1 / (1 + math.exp(-1.0))) + math.log(0.5)) / 2
    assert float(bpr_loss(pos, neg)) == pytest.approx(expected)
    # vector negatives: -log sigma(2 - 0) and -log sigma(0 - 0)
    got = bpr_loss(torch.tensor([2.0, 0.0]), torch.tensor([0.0, 0.0]))
    assert float(got) == pytest.approx((math.log(1 + math.exp(-2.0)) + LN2) / 2)


def test_margin_by_hand():
    pos = torch.tensor([1.0, 3.0])
    neg = torch.tensor([[0.5, 2.0], [0.0, 1.0]])
    # margin 1: max(0, 1 - 1 + 0.5), max(0, 1 - 1 + 2), max(0, 1 - 3 + 0), max(0, 1 - 3 + 1)
    assert float(margin_loss(pos, neg, margin=1.0)) == pytest.approx((0.5 + 2.0) / 4)


@pytest.mark.parametrize("loss", [self_adversarial_bce, bpr_loss, margin_loss])
def test_shape_errors(loss):
    with pytest.raises(ValueError, match="pos_score"):
        loss(torch.zeros(2, 1), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="neg_score"):
        loss(torch.zeros(2), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="no negatives"):
        loss(torch.zeros(2), torch.zeros(2, 0))


def test_negative_temperature_rejected():
    with pytest.raises(ValueError, match="temperature"):
        self_adversarial_bce(torch.zeros(1), torch.zeros(1, 2), temperature=-1.0)
