from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import graphlearn.metrics.ogb as ogb_metrics
from graphlearn.errors import ConfigError
from graphlearn.metrics.ogb import ogb_evaluate, ogb_name
from graphlearn.typing import with_ogb

needs_ogb = pytest.mark.skipif(not with_ogb(), reason="ogb not installed")


def hits_by_hand(pos: list[float], neg: list[float], k: int) -> float:
    """OGB: fraction of positives strictly above the K-th highest negative."""
    if len(neg) < k:
        return 1.0
    kth = sorted(neg, reverse=True)[k - 1]
    return sum(p > kth for p in pos) / len(pos)


def mrr_by_hand(pos: list[float], neg: list[list[float]]) -> dict[str, float]:
    """OGB: rank = 1 + (#{neg > pos} + #{neg >= pos}) / 2, averaged per positive."""
    ranks = [
        1 + (sum(n > p for n in row) + sum(n >= p for n in row)) / 2 for p, row in zip(pos, neg)
    ]
    out = {"mrr": sum(1 / r for r in ranks) / len(ranks)}
    for k in (1, 3, 10):
        out[f"hits@{k}"] = sum(r <= k for r in ranks) / len(ranks)
    return out


def test_names():
    assert ogb_name("ddi") == "ogbl-ddi"
    assert ogb_name("OGBL_Citation2") == "ogbl-citation2"
    with pytest.raises(ConfigError, match="valid: ogbl-ddi"):
        ogb_name("ogbl-dd")


@needs_ogb
def test_hits_matches_hand_computation():
    pos = [0.9, 0.5, 0.3, 0.7]
    neg = [0.8, 0.5, 0.1, 0.6, 0.2]
    # K=2: 2nd highest negative 0.6 -> 0.9, 0.7 above -> 1/2; K=3: 0.5, tie not counted.
    result = ogb_evaluate("ogbl-ddi", torch.tensor(pos), torch.tensor(neg), ks=[1, 2, 3, 20])
    assert result == pytest.approx({f"hits@{k}": hits_by_hand(pos, neg, k) for k in (1, 2, 3, 20)})
    assert result["hits@2"] == pytest.approx(0.5) and result["hits@3"] == pytest.approx(0.5)
    assert result["hits@20"] == 1.0  # fewer negatives than K, as OGB defines it


@needs_ogb
@pytest.mark.parametrize(("name", "k"), [("ogbl-ddi", 20), ("ogbl-collab", 50), ("ogbl-ppa", 100)])
def test_official_cutoff_by_default(name, k):
    gen = torch.Generator().manual_seed(0)
    pos, neg = torch.rand(40, generator=gen), torch.rand(300, generator=gen)
    result = ogb_evaluate(name, pos, neg.numpy())
    assert list(result) == [f"hits@{k}"]
    assert result[f"hits@{k}"] == pytest.approx(hits_by_hand(pos.tolist(), neg.tolist(), k))


@needs_ogb
@pytest.mark.parametrize("name", ["ogbl-citation2", "ogbl-biokg", "ogbl-wikikg2"])
def test_mrr_matches_hand_computation(name):
    pos = [0.5, 0.9, 0.2]
    neg = [[0.1, 0.5, 0.7], [0.1, 0.2, 0.3], [0.3, 0.4, 0.5]]
    # ranks: 1 + (1 + 2)/2 = 2.5; 1; 4.
    result = ogb_evaluate(name, np.array(pos), np.array(neg))
    assert result == pytest.approx(mrr_by_hand(pos, neg))
    assert result["mrr"] == pytest.approx((1 / 2.5 + 1 + 1 / 4) / 3)


@needs_ogb
def test_shape_errors():
    with pytest.raises(ValueError, match=r"\[n, k\]"):
        ogb_evaluate("citation2", torch.rand(3), torch.rand(5))
    with pytest.raises(ValueError, match=r"\[n, k\] with n = 3"):
        ogb_evaluate("citation2", torch.rand(3), torch.rand(4, 5))
    with pytest.raises(ValueError, match="1-D"):
        ogb_evaluate("ddi", torch.rand(3), torch.rand(3, 2))
    with pytest.raises(ValueError, match="1-D"):
        ogb_evaluate("ddi", torch.rand(3, 1), torch.rand(3))
    with pytest.raises(ConfigError, match="ks only applies"):
        ogb_evaluate("wikikg2", torch.rand(2), torch.rand(2, 4), ks=[10])


def test_missing_ogb_names_the_extra(monkeypatch):
    monkeypatch.setattr(ogb_metrics, "with_ogb", lambda: False)
    monkeypatch.delitem(sys.modules, "ogb.linkproppred", raising=False)
    with pytest.raises(ImportError, match=r"graphlearn\[ogb\]"):
        ogb_evaluate("ddi", torch.rand(3), torch.rand(30))


def run_python(script: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OUTDATED_IGNORE"}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@needs_ogb
def test_import_starts_no_thread():
    out = run_python(
        """
        import os, sys, threading
        import torch
        from graphlearn.metrics.ogb import ogb_evaluate
        assert "ogb" not in sys.modules            # lazy: nothing imported yet
        ogb_evaluate("ddi", torch.rand(5), torch.rand(50))
        assert "ogb.linkproppred" in sys.modules
        assert "outdated" not in sys.modules       # the PyPI checker was never imported
        assert "OUTDATED_IGNORE" not in os.environ  # ogb's env change undone
        print(threading.active_count())
        """
    )
    assert out.strip().splitlines()[-1] == "1"


@needs_ogb
def test_import_restores_a_loaded_outdated_module():
    run_python(
        """
        import sys, types
        sentinel = types.ModuleType("outdated")
        sys.modules["outdated"] = sentinel
        from graphlearn.metrics.ogb import import_ogb_evaluator
        assert import_ogb_evaluator().__name__ == "Evaluator"
        assert sys.modules["outdated"] is sentinel
        """
    )
