"""Every shipped experiment config loads and builds its model."""

import dataclasses
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


ML1M_CONFIGS = sorted((ROOT / "experiments" / "configs" / "recommendation" / "ml-1m").glob("*.yaml"))


def test_ml1m_configs_mirror_the_ml100k_ones():
    names = {p.name for p in ML1M_CONFIGS}
    assert names == {"bpr_mf.yaml", "lightgcn_tuned.yaml", "ngcf.yaml", "sheaf_rec.yaml"}
    for path in ML1M_CONFIGS:
        ml1m = load_config(path)
        ml100k = load_config(path.parent.parent / "ml-100k" / path.name)
        assert ml1m.data.name == "ml-1m"
        assert dataclasses.replace(ml1m, data=dataclasses.replace(ml1m.data, name="ml-100k")) \
            == ml100k


@pytest.mark.parametrize("path", ML1M_CONFIGS, ids=lambda p: p.name)
def test_ml1m_config_trains_on_grouplens_ratings_dat(path, tmp_path):
    """Each ML-1M config runs unchanged but for the data root (and 1 epoch) on a
    GroupLens ``ratings.dat`` in ML-1M's format."""
    from graphlearn.train import train

    folder = tmp_path / "data" / "movielens" / "ml-1m"
    folder.mkdir(parents=True)
    lines = [f"{u}::{i}::{1 + (u * i) % 5}::{978300760 + u * 100 + i}"
             for u in range(1, 9) for i in range(1, 31) if (u + i) % 3]
    (folder / "ratings.dat").write_text("\n".join(lines) + "\n", encoding="latin-1")
    cfg = load_config(path, [f"data.root={tmp_path / 'data'}", "data.download=false",
                             "train.epochs=1"])
    _, final = train(cfg, tmp_path / "run", log=lambda _: None)
    assert final["epochs_run"] == 1 and 0 <= final["test"]["ndcg@10"] <= 1
