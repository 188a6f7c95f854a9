"""Binary link classification metrics: AUROC and average precision.

Computed with scikit-learn (``roc_auc_score``, ``average_precision_score``), the
implementations the NBFNet, GAE and ForwardGNN papers report with. Ties in the
scores are handled as scikit-learn does: AUROC counts a tied positive/negative
pair as half a correct ordering; AP treats tied scores as one threshold (no
interpolation).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

ArrayLike = Tensor | np.ndarray | Sequence[float]


def _as_numpy(values: ArrayLike) -> np.ndarray:
    if isinstance(values, Tensor):
        values = values.detach().to("cpu", torch.float64).numpy()
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        array = array.reshape(-1)
    return array


def auroc_ap(scores: ArrayLike, labels: ArrayLike) -> dict[str, float]:
    """Area under the ROC curve and average precision of scores against 0/1 labels.

    Args:
        scores: ``[n]`` real scores, higher = more likely an edge (any shape, flattened).
        labels: ``[n]`` labels in ``{0, 1}`` (bool, int or float).

    Returns:
        ``{"auroc": float, "ap": float}``.

    Raises:
        ValueError: different lengths, empty input, non-finite scores, labels other
            than 0/1, or only one class present (both metrics are undefined then).
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    y_score = _as_numpy(scores)
    y_true = _as_numpy(labels)
    if y_score.shape != y_true.shape:
        raise ValueError(
            f"scores and labels differ in size: {y_score.size} scores, {y_true.size} labels"
        )
    if y_score.size == 0:
        raise ValueError("auroc_ap needs at least one positive and one negative, got no scores")
    if not np.isfinite(y_score).all():
        bad = int((~np.isfinite(y_score)).sum())
        raise ValueError(f"scores contain {bad} NaN or infinite values")
    if not np.isin(y_true, (0.0, 1.0)).all():
        odd = np.unique(y_true[~np.isin(y_true, (0.0, 1.0))])[:5].tolist()
        raise ValueError(f"labels must be 0 or 1, found {odd}")
    positives = int(y_true.sum())
    if positives == 0 or positives == y_true.size:
        only = "positive" if positives else "negative"
        raise ValueError(
            f"AUROC/AP undefined: all {y_true.size} labels are {only} "
            "(need at least one positive and one negative)"
        )
    y_true = y_true.astype(np.int64)
    return {
        "auroc": float(roc_auc_score(y_true, y_score)),
        "ap": float(average_precision_score(y_true, y_score)),
    }


def auroc_ap_pos_neg(pos_scores: ArrayLike, neg_scores: ArrayLike) -> dict[str, float]:
    """:func:`auroc_ap` from separate positive and negative scores."""
    pos = _as_numpy(pos_scores)
    neg = _as_numpy(neg_scores)
    labels = np.concatenate([np.ones(pos.size), np.zeros(neg.size)])
    return auroc_ap(np.concatenate([pos, neg]), labels)


__all__ = ["auroc_ap", "auroc_ap_pos_neg"]
