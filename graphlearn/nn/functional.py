r"""Fused element-wise functions for CPU training.

:func:`relu_dropout` is ``F.dropout(F.relu(x), p, training)`` in one autograd node.
PyTorch's CPU dropout draws its mask with ``bernoulli_``, which is slow per element;
on ogbl-ddi's link predictor (two ``[65536, 256]`` activations per step) it was a
large share of a training step (``experiments/benchmarks/ogbl_ddi_step.py`` times
the step with either). Here the mask comes from 16-bit integers cut out of
``torch.randint`` words, and the ReLU and the dropout share one boolean mask, the
only tensor saved for the backward (PyTorch keeps the ReLU output and the dropout
mask).

The keep test is ``u ≥ round(p · 2¹⁶)`` for ``u`` uniform on ``{0, …, 2¹⁶ − 1}``: the
drop probability is ``p`` rounded to a multiple of ``2⁻¹⁶`` (exact for 0.5, 0.25,
…; off by at most ``7.7e-6`` otherwise), and kept values are scaled by the inverse
of that exact keep probability, so the expectation is preserved exactly. The
random numbers come from torch's default generator, so ``torch.manual_seed``
makes a run reproducible. On other devices (CUDA's dropout is already fused), and
for ``p`` so close to 1 that it rounds to ``2¹⁶`` levels, the function is
``F.dropout(F.relu(x))``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["relu_dropout"]

_LEVELS = 1 << 16


def _keep_mask(shape: torch.Size, drop_levels: int, device: torch.device) -> Tensor:
    """Bool ``shape``: each entry True with probability ``1 − drop_levels / 2¹⁶``."""
    n = shape.numel()
    words = torch.randint(-(1 << 63), (1 << 63) - 1, ((n + 3) // 4,), dtype=torch.int64,
                          device=device)
    # int16 lanes are uniform on [-2¹⁵, 2¹⁵): u = lane + 2¹⁵ ≥ drop_levels
    lanes = words.view(torch.int16)[:n].view(shape)
    return lanes >= drop_levels - (1 << 15)


class _ReluDropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, drop_levels: int) -> Tensor:
        mask = _keep_mask(x.shape, drop_levels, x.device) & (x > 0)
        scale = _LEVELS / (_LEVELS - drop_levels)
        ctx.save_for_backward(mask)
        ctx.scale = scale
        return x.mul(mask).mul_(scale)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        (mask,) = ctx.saved_tensors
        return grad.mul(mask).mul_(ctx.scale), None


def relu_dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """``dropout(relu(x), p)`` (see the module docstring for the mask's resolution).

    Args:
        x: any shape, floating point.
        p: drop probability in ``[0, 1)``.
        training: ``False`` returns ``relu(x)``.
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"relu_dropout: p must be in [0, 1), got {p!r}")
    drop_levels = round(p * _LEVELS)
    if not training or drop_levels == 0:
        return F.relu(x)
    if x.device.type != "cpu" or drop_levels == _LEVELS:  # p within 2⁻¹⁷ of 1: no 16-bit level
        return F.dropout(F.relu(x), p, True)
    return _ReluDropout.apply(x.contiguous(), drop_levels)
