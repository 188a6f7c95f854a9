r"""Losses for link prediction: self-adversarial BCE, BPR and a margin loss.

All take raw scores (logits; higher = more plausible) of positives ``[b]`` and
of their negatives ``[b, k]`` (or ``[b]``, one negative each) and return a
scalar mean over the batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["bpr_loss", "margin_loss", "self_adversarial_bce"]


def _as_matrix(pos_score: Tensor, neg_score: Tensor, name: str) -> Tensor:
    """Check ``pos [b]`` against ``neg [b]`` or ``[b, k]``; return ``neg`` as ``[b, k]``."""
    if pos_score.dim() != 1:
        raise ValueError(f"{name}: pos_score must be [b], got {list(pos_score.shape)}")
    if neg_score.dim() == 1:
        neg_score = neg_score.unsqueeze(1)
    if neg_score.dim() != 2 or neg_score.size(0) != pos_score.size(0):
        raise ValueError(
            f"{name}: neg_score must be [b] or [b, k] with b = {pos_score.size(0)}, "
            f"got {list(neg_score.shape)}"
        )
    if neg_score.size(1) == 0:
        raise ValueError(f"{name}: neg_score has no negatives (k = 0)")
    return neg_score


def self_adversarial_bce(
    pos_score: Tensor, neg_score: Tensor, temperature: float | None = 1.0
) -> Tensor:
    r"""Binary cross-entropy with self-adversarial negative weights.

    From Sun et al. (2019), "RotatE: Knowledge Graph Embedding by Relational
    Rotation in Complex Space" (https://arxiv.org/abs/1902.10197), Eq. 6, as
    used by NBFNet (Zhu et al. 2021). Each negative is weighted by its
    softmax-normalised score, treated as a constant (no gradient flows
    through the weights):

    .. math::
        w_{j} = \operatorname{softmax}_j\big(s^-_{j} / T\big), \qquad
        \mathcal{L} = \frac{1}{b} \sum_{q=1}^{b} \frac{1}{2}\Big(
        -\log \sigma(s^+_q) - \sum_{j=1}^{k} w_{qj} \log \sigma(-s^-_{qj})\Big).

    The halving matches both reference implementations (RotatE averages its
    positive and negative terms; NBFNet divides by the total weight
    :math:`1 + \sum_j w_{qj} = 2`).

    Args:
        pos_score: ``[b]`` logits of the true triples.
        neg_score: ``[b, k]`` (or ``[b]``) logits of their negatives.
        temperature: :math:`T > 0`. ``None`` or ``0`` gives uniform weights
            :math:`w_{qj} = 1 / k` (plain BCE averaged over the negatives).

    Returns:
        The scalar loss.
    """
    neg_score = _as_matrix(pos_score, neg_score, "self_adversarial_bce")
    if temperature is not None and temperature < 0:
        raise ValueError(f"self_adversarial_bce: temperature must be >= 0, got {temperature}")
    if temperature:
        weight = torch.softmax(neg_score.detach() / temperature, dim=1)  # (b, k)
    else:
        weight = torch.full_like(neg_score, 1.0 / neg_score.size(1))
    pos_term = -F.logsigmoid(pos_score)  # (b,)
    neg_term = -(weight * F.logsigmoid(-neg_score)).sum(1)  # (b,)
    return ((pos_term + neg_term) / 2).mean()


def bpr_loss(pos_score: Tensor, neg_score: Tensor) -> Tensor:
    r"""Bayesian personalised ranking loss.

    From Rendle et al. (2009), "BPR: Bayesian Personalized Ranking from
    Implicit Feedback" (https://arxiv.org/abs/1205.2618):

    .. math::
        \mathcal{L} = -\frac{1}{bk} \sum_{q=1}^{b} \sum_{j=1}^{k}
        \log \sigma\big(s^+_q - s^-_{qj}\big).

    Args:
        pos_score: ``[b]`` scores of the observed pairs.
        neg_score: ``[b]`` or ``[b, k]`` scores of their negatives.

    Returns:
        The scalar loss (mean over all positive–negative pairs).
    """
    neg_score = _as_matrix(pos_score, neg_score, "bpr_loss")
    return -F.logsigmoid(pos_score.unsqueeze(1) - neg_score).mean()


def margin_loss(pos_score: Tensor, neg_score: Tensor, margin: float = 1.0) -> Tensor:
    r"""Pairwise hinge loss of translational models (Bordes et al. 2013, TransE):

    .. math::
        \mathcal{L} = \frac{1}{bk} \sum_{q, j} \max\big(0,\; m - s^+_q + s^-_{qj}\big).

    Args:
        pos_score: ``[b]`` scores of the true triples.
        neg_score: ``[b]`` or ``[b, k]`` scores of their negatives.
        margin: :math:`m \ge 0`.

    Returns:
        The scalar loss (mean over all positive–negative pairs).
    """
    if margin < 0:
        raise ValueError(f"margin_loss: margin must be >= 0, got {margin}")
    neg_score = _as_matrix(pos_score, neg_score, "margin_loss")
    return F.relu(margin - pos_score.unsqueeze(1) + neg_score).mean()
