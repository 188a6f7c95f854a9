"""relu_dropout: ``dropout(relu(x))`` with a 16-bit-resolution mask, one autograd node."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from graphlearn.nn.functional import relu_dropout


def test_eval_and_zero_p_are_relu():
    x = torch.randn(50, 7)
    assert torch.equal(relu_dropout(x, 0.5, training=False), F.relu(x))
    assert torch.equal(relu_dropout(x, 0.0), F.relu(x))


@pytest.mark.parametrize("p", [0.5, 0.3])
def test_keeps_each_positive_entry_with_the_stated_probability(p):
    torch.manual_seed(0)
    x = torch.rand(400, 500) + 0.1  # all positive: every entry is a Bernoulli draw
    out = relu_dropout(x, p)
    drop_levels = round(p * 2**16)
    keep = 1 - drop_levels / 2**16  # exactly 0.5; 45875 / 65536 for p = 0.3
    kept = out != 0
    # the kept values are scaled by the exact inverse keep probability
    assert torch.allclose(out[kept], x[kept] / keep, rtol=1e-6)
    n = x.numel()
    sigma = math.sqrt(keep * (1 - keep) / n)
    assert abs(kept.float().mean().item() - keep) < 5 * sigma
    # no structure across the 16-bit lanes of one random word: every lane position
    # (column mod 4 of the flat order) keeps at the same rate
    lanes = kept.reshape(-1, 4).float().mean(0)
    assert (lanes - keep).abs().max().item() < 5 * math.sqrt(keep * (1 - keep) / (n / 4))


def test_negative_entries_are_zero_and_get_no_gradient():
    torch.manual_seed(1)
    x = torch.randn(300, 40, requires_grad=True)
    out = relu_dropout(x, 0.5)
    assert (out[x.detach() <= 0] == 0).all()
    grad = torch.randn_like(out)
    (gx,) = torch.autograd.grad(out, x, grad)
    assert torch.equal(gx, grad * (out != 0) * 2.0)  # the mask of the forward, scale 2


def test_seeded_and_fresh_per_call():
    x = torch.randn(64, 64).abs() + 0.1
    torch.manual_seed(3)
    a = relu_dropout(x, 0.5)
    torch.manual_seed(3)
    assert torch.equal(relu_dropout(x, 0.5), a)
    assert not torch.equal(relu_dropout(x, 0.5), a)  # the generator advanced


def test_odd_sizes_and_non_contiguous_input():
    x = torch.randn(9, 7).t()  # 63 entries, not a multiple of 4, transposed
    out = relu_dropout(x, 0.5)
    assert out.shape == (7, 9)
    kept = out != 0
    assert torch.equal(out[kept], 2 * x[kept])


def test_p_next_to_one_falls_back_to_torch_dropout():
    torch.manual_seed(4)
    out = relu_dropout(torch.ones(1000), 1 - 2**-18)  # rounds to 2¹⁶ drop levels
    assert torch.isfinite(out).all() and (out == 0).sum() > 990


def test_bad_p_is_a_clear_error():
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\)"):
        relu_dropout(torch.ones(2), 1.0)
