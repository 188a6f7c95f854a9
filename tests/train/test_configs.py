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


# forward_*.yaml: forward-learning configs, no `model` (tests/train/test_forward_trainer.py)
KG_LINK_CONFIGS = sorted(p for p in [*(ROOT / "experiments" / "configs" / "kg").rglob("*.yaml"),
                                     *(ROOT / "experiments" / "configs" / "link").rglob("*.yaml")]
                         if not p.name.startswith("forward_"))


@pytest.mark.parametrize("path", KG_LINK_CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_kg_and_link_configs_build(path):
    """Every KG / link config parses, names a metric of its task and builds its model."""
    cfg = load_config(path)
    assert cfg.task == path.relative_to(ROOT / "experiments" / "configs").parts[0]
    assert cfg.data.name in path.parts  # the folder names the dataset
    context = {"num_entities": 14, "num_relations": 4, "in_channels": 8, "num_nodes": 14}
    if cfg.task == "link":
        context["num_relations"] = 1
        assert cfg.train.metric in ("auroc", "ap")
    else:
        assert cfg.train.metric in ("mrr", "hits@10", "hits@10_50")
    model = build_model(cfg.model.name, cfg.model.params, **context)
    assert sum(p.numel() for p in model.parameters()) > 0


OGBL_CONFIGS = sorted((ROOT / "experiments" / "configs" / "ogbl").rglob("*.yaml"))


def test_ogbl_configs_exist():
    assert {p.name for p in OGBL_CONFIGS if p.parent.name == "ogbl-ddi"} >= {
        "gcn.yaml", "sage.yaml", "sheaf.yaml"}


@pytest.mark.parametrize("path", OGBL_CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_ogbl_configs_build(path):
    """Every OGB link config parses, selects on the official metric and builds its model
    (without features: learned node embeddings); its comment names the exact command."""
    from graphlearn.config import OGBL_METRICS

    cfg = load_config(path)
    assert cfg.task == "ogbl" and cfg.data.name == path.parent.name
    assert cfg.train.metric == OGBL_METRICS[cfg.data.name]
    assert f"graphlearn train {path.relative_to(ROOT)}" in path.read_text()
    model = build_model(cfg.model.name, cfg.model.params, in_channels=None, num_nodes=14)
    assert model.embedding.weight.shape == (14, cfg.model.params["hidden_channels"])
