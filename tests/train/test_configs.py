"""Every shipped experiment config loads and builds its model."""

from pathlib import Path

import pytest
import torch

from graphlearn.cli.train import MAIN_CONFIG
from graphlearn.config import load_config
from graphlearn.models import build_model

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "experiments" / "configs" / "recommendation").rglob("*.yaml"))


def test_the_main_job_config_exists():
    assert (ROOT / MAIN_CONFIG) in CONFIGS


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_recommendation_config_builds(path):
    cfg = load_config(path)
    assert cfg.task == "recommendation" and cfg.train.metric in {
        f"{m}@{k}" for m in ("mrr", "ndcg", "recall", "hit", "precision") for k in cfg.eval.ks}
    edges = torch.tensor([[0, 1], [1, 0]])
    model = build_model(cfg.model.name, cfg.model.params, num_users=2, num_items=2,
                        train_edges=edges)
    assert model.dim == cfg.model.params["dim"]
