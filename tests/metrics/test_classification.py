from __future__ import annotations

import numpy as np
import pytest
import torch

from graphlearn.metrics.classification import auroc_ap, auroc_ap_pos_neg


def auroc_by_pairs(scores: list[float], labels: list[int]) -> float:
    """P(score_pos > score_neg), ties counted as one half."""
    pos = [s for s, y in zip(scores, labels) if y == 1]
    neg = [s for s, y in zip(scores, labels) if y == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def ap_by_thresholds(scores: list[float], labels: list[int]) -> float:
    """sum_n (R_n - R_{n-1}) P_n over distinct thresholds, highest first."""
    total_pos = sum(labels)
    ap, last_recall = 0.0, 0.0
    for threshold in sorted(set(scores), reverse=True):
        chosen = [y for s, y in zip(scores, labels) if s >= threshold]
        recall = sum(chosen) / total_pos
        ap += (recall - last_recall) * sum(chosen) / len(chosen)
        last_recall = recall
    return ap


def test_hand_computed_without_ties():
    result = auroc_ap([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    assert result["auroc"] == pytest.approx(0.75)  # 3 of 4 pos/neg pairs ordered
    assert result["ap"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def test_hand_computed_with_ties():
    # pos 0.5 ties both negatives (1/2 each), pos 0.9 beats both: (0.5+0.5+1+1)/4.
    result = auroc_ap(torch.tensor([0.5, 0.5, 0.5, 0.9]), torch.tensor([0, 1, 0, 1]))
    assert result["auroc"] == pytest.approx(0.75)
    # threshold 0.9: P=1, R=1/2; threshold 0.5: P=2/4, R=1 -> 0.5*1 + 0.5*0.5.
    assert result["ap"] == pytest.approx(0.75)


def test_all_tied_scores():
    result = auroc_ap([1.0, 1.0, 1.0, 1.0], [1, 0, 0, 1])
    assert result["auroc"] == pytest.approx(0.5)
    assert result["ap"] == pytest.approx(0.5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_definitions_on_random_ties(seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 4, size=25).astype(float).tolist()
    labels = rng.integers(0, 2, size=25).tolist()
    labels[0], labels[1] = 0, 1
    result = auroc_ap(scores, labels)
    assert result["auroc"] == pytest.approx(auroc_by_pairs(scores, labels))
    assert result["ap"] == pytest.approx(ap_by_thresholds(scores, labels))


def test_pos_neg_form_and_input_types():
    a = auroc_ap_pos_neg(torch.tensor([0.35, 0.8]), np.array([0.1, 0.4]))
    b = auroc_ap(np.array([0.35, 0.8, 0.1, 0.4]), torch.tensor([True, True, False, False]))
    assert a == pytest.approx(b)


def test_errors():
    with pytest.raises(ValueError, match="all 3 labels are positive"):
        auroc_ap([0.1, 0.2, 0.3], [1, 1, 1])
    with pytest.raises(ValueError, match="negative"):
        auroc_ap([0.1, 0.2], [0, 0])
    with pytest.raises(ValueError, match="differ in size"):
        auroc_ap([0.1, 0.2], [0, 1, 1])
    with pytest.raises(ValueError, match="0 or 1"):
        auroc_ap([0.1, 0.2], [0, 2])
    with pytest.raises(ValueError, match="NaN"):
        auroc_ap([float("nan"), 0.2], [0, 1])
    with pytest.raises(ValueError, match="no scores"):
        auroc_ap([], [])
