"""experiments/tools/grid_runs.py: summaries by hand, resume, curves."""

import json
import statistics
from pathlib import Path

import pytest

from tests.experiments.scripts import load_script


@pytest.fixture(scope="module")
def grid():
    return load_script("tools/grid_runs.py", "experiments_grid")


def fake_run(path: Path, seed: int, value: float, curve: list[float],
             metrics=("ndcg@10", "f1@10")) -> Path:
    path.mkdir(parents=True)
    (path / "final.json").write_text(json.dumps({
        "seed": seed, "test": {m: value for m in metrics}, "valid": {"mrr@10": value / 2},
        "metric": "mrr@10", "selected_epoch": len(curve), "seconds_per_epoch": 0.5}))
    with open(path / "metrics.jsonl", "w") as f:
        f.writelines(json.dumps({"epoch": epoch, "split": "valid",
                                "metrics": {"ndcg@10": v}}) + "\n" for epoch, v in enumerate(curve, 1))
        # the trainer's closing re-evaluation of the selected checkpoint: not a curve point
        f.write(json.dumps({"epoch": 1, "split": "valid", "final": True,
                            "metrics": {"ndcg@10": curve[0]}}) + "\n")
    return path


def test_summary_is_mean_and_sample_std_over_seeds(grid, tmp_path):
    runs = {"bpr_mf": [fake_run(tmp_path / "a0", 1, 0.2, [0.1, 0.2]),
                       fake_run(tmp_path / "a1", 2, 0.3, [0.1, 0.3])]}
    rows = {"bpr_mf": grid.Row(grid.REPO / "x.yaml", ["a=1"])}
    table, payload = grid.summarize(runs, ["ndcg@10", "f1@10"], rows)
    stats = payload["rows"]["bpr_mf"]["test"]["ndcg@10"]
    assert stats["mean"] == pytest.approx(0.25)
    assert stats["std"] == pytest.approx(statistics.stdev([0.2, 0.3]))
    assert "| bpr_mf | 1, 2 | 0.2500 ± 0.0707 | 0.2500 ± 0.0707 |" in table
    assert "| mrr@10 0.1250 ± 0.0354 | 2 / 2 | 0.50 |" in table
    assert payload["rows"]["bpr_mf"]["config"] == "x.yaml"
    assert payload["rows"]["bpr_mf"]["overrides"] == ["a=1"]
    assert grid.curve(runs["bpr_mf"][1], "ndcg@10") == [(1, 0.1), (2, 0.3)]
    # the payload keeps each run's curves, and they read back as the directory's
    recorded = payload["rows"]["bpr_mf"]["runs"][1]
    assert recorded["valid_curve"] == {"ndcg@10": [[1, 0.1], [2, 0.3]]}
    assert grid.curve(json.loads(json.dumps(recorded)), "ndcg@10") == [(1, 0.1), (2, 0.3)]
    assert grid.curve({"seed": 0}, "ndcg@10") == []  # a summary from before the curves


def test_one_seed_is_printed_without_a_spread(grid, tmp_path):
    runs = {"m": [fake_run(tmp_path / "a0", 3, 0.25, [0.1])]}
    table, _ = grid.summarize(runs, ["f1@10"], label="variant")
    assert table.splitlines()[0].startswith("| variant | seeds | f1@10 |")
    assert "| m | 3 | 0.2500 |" in table


def test_finished_runs_are_not_trained_again(grid, tmp_path):
    done = fake_run(tmp_path / "lightgcn_s7", 7, 0.1, [0.1])
    row = grid.Row(Path("/nonexistent.yaml"))
    # a finished run returns at once: no subprocess (its config would not even exist)
    assert grid.run_row("lightgcn", row, 7, tmp_path, root="/nonexistent") == done


def test_a_leftover_directory_without_checkpoints_is_a_clear_error(grid, tmp_path):
    (tmp_path / "m_s0").mkdir()
    with pytest.raises(SystemExit, match="exists without checkpoints"):
        grid.run_row("m", grid.Row(Path("/nonexistent.yaml")), 0, tmp_path)


def test_plot_curves_writes_a_png(grid, tmp_path):
    pytest.importorskip("matplotlib")
    runs = {"a": [fake_run(tmp_path / "a0", 0, 0.2, [0.1, 0.2, 0.3]),
                  fake_run(tmp_path / "a1", 1, 0.2, [0.1, 0.2])]}
    path = grid.plot_curves(runs, tmp_path / "c.png", "ndcg@10", "t")
    assert path.is_file() and path.stat().st_size > 1000


def test_a_run_another_process_trains_is_a_clear_error(grid, tmp_path):
    import fcntl

    with open(tmp_path / "m_s0.log", "a") as held:  # as a running grid holds it
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(SystemExit, match="another process is training this run"):
            grid.run_row("m", grid.Row(Path("/nonexistent.yaml")), 0, tmp_path)
    assert not (tmp_path / "m_s0").exists()  # nothing started


def test_run_rows_runs_every_job_once_and_keeps_the_seed_order(grid, tmp_path, monkeypatch):
    import threading
    import time

    calls, lock = [], threading.Lock()

    def fake(name, row, seed, runs, **kwargs):
        time.sleep(0.02 * (3 - seed))  # later seeds finish first
        with lock:
            calls.append((name, seed, kwargs["threads"]))
        return runs / f"{name}_s{seed}"

    monkeypatch.setattr(grid, "run_row", fake)
    rows = {"a": grid.Row(Path("a.yaml")), "b": grid.Row(Path("b.yaml"))}
    out = grid.run_rows(rows, [0, 1, 2], tmp_path, workers=3, threads=1)
    assert out == {name: [tmp_path / f"{name}_s{s}" for s in (0, 1, 2)] for name in rows}
    assert sorted(calls) == [(n, s, 1) for n in ("a", "b") for s in (0, 1, 2)]
    with pytest.raises(ValueError, match="workers must be >= 1"):
        grid.run_rows(rows, [0], tmp_path, workers=0)


def test_run_rows_stops_at_the_first_failure(grid, tmp_path, monkeypatch):
    started = []

    def fake(name, row, seed, runs, **kwargs):
        started.append((name, seed))
        if (name, seed) == ("a", 0):
            raise SystemExit("a seed 0 failed")
        return runs / f"{name}_s{seed}"

    monkeypatch.setattr(grid, "run_row", fake)
    rows = {"a": grid.Row(Path("a.yaml")), "b": grid.Row(Path("b.yaml"))}
    with pytest.raises(SystemExit, match="a seed 0 failed"):
        grid.run_rows(rows, list(range(50)), tmp_path, workers=1)
    assert len(started) < 100  # the queued runs were cancelled
