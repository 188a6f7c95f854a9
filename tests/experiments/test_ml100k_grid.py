"""The MovieLens-100K grid script: summaries by hand, resume, configs that load."""

import importlib.util
import json
import statistics
from pathlib import Path

import pytest

from graphlearn.config import load_config

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "recommendation" / "ml100k_grid.py"


@pytest.fixture(scope="module")
def grid():
    spec = importlib.util.spec_from_file_location("ml100k_grid", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_run(path: Path, seed: int, value: float, curve: list[float]) -> Path:
    path.mkdir(parents=True)
    test = {m: value for m in ("recall@10", "recall@20", "ndcg@10", "ndcg@20", "mrr@10",
                               "hit@10", "precision@10", "f1@10")}
    (path / "final.json").write_text(json.dumps({
        "seed": seed, "test": test, "valid": {"mrr@10": value / 2}, "metric": "mrr@10",
        "selected_epoch": len(curve), "seconds_per_epoch": 0.5}))
    with open(path / "metrics.jsonl", "w") as f:
        for epoch, v in enumerate(curve, 1):
            f.write(json.dumps({"epoch": epoch, "split": "valid",
                                "metrics": {"ndcg@10": v}}) + "\n")
    return path


def test_summary_is_mean_and_sample_std_over_seeds(grid, tmp_path):
    runs = {"bpr_mf": [_fake_run(tmp_path / "a0", 1, 0.2, [0.1, 0.2]),
                       _fake_run(tmp_path / "a1", 2, 0.3, [0.1, 0.3])]}
    table, payload = grid.summarize(runs)
    stats = payload["rows"]["bpr_mf"]["test"]["ndcg@10"]
    assert stats["mean"] == pytest.approx(0.25)
    assert stats["std"] == pytest.approx(statistics.stdev([0.2, 0.3]))
    assert "| bpr_mf | 1, 2 | 0.2500 ± 0.0707 |" in table
    assert "| mrr@10 0.1250 ± 0.0354 | 2 / 2 |" in table
    assert grid._curve(runs["bpr_mf"][1], "ndcg@10") == [(1, 0.1), (2, 0.3)]


def test_finished_runs_are_not_trained_again(grid, tmp_path):
    done = _fake_run(tmp_path / "lightgcn_s7", 7, 0.1, [0.1])
    # a finished run returns at once: no subprocess (its config root would not even exist)
    assert grid._run("lightgcn", 7, "/nonexistent", tmp_path, [], 1) == done


@pytest.mark.parametrize("row", ["bpr_mf", "lightgcn", "ngcf", "sheaf_diagonal",
                                 "sheaf_orthogonal", "sheaf_orthogonal_exp", "sheaf_general",
                                 "sheaf_scalar", "sheaf_identity"])
@pytest.mark.parametrize("protocol", ["recbole", "paper"])
def test_every_row_config_loads_with_its_overrides(grid, row, protocol):
    config, overrides = grid.ROWS[row]
    extra = grid.PAPER_PROTOCOL if protocol == "paper" else []
    cfg = load_config(grid.CONFIGS / config, overrides=[*overrides, *extra])
    assert cfg.task == "recommendation" and cfg.data.name == "ml-100k"
    if protocol == "paper":
        assert cfg.data.rating_threshold == 3 and list(cfg.data.ratios) == [0.7, 0.1, 0.2]
