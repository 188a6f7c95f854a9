"""experiments/tools/plot_runs.py on hand-written run directories."""

from __future__ import annotations

import json

import pytest

from .scripts import load_script

plot_runs = load_script("tools/plot_runs.py", "plot_runs")
grid_runs = load_script("tools/grid_runs.py", "grid_runs")


def _run(path, values):
    path.mkdir()
    (path / "metrics.jsonl").write_text("".join(
        json.dumps({"epoch": epoch, "split": "valid", "metrics": {"hits@20": v}}) + "\n"
        for epoch, v in enumerate(values, 1)))
    return path


def test_two_models_in_one_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    a0, a1 = _run(tmp_path / "a0", [0.1, 0.2]), _run(tmp_path / "a1", [0.3, 0.4])
    b = _run(tmp_path / "b", [0.2, 0.1, 0.5])
    png = tmp_path / "out" / "curves.png"
    assert plot_runs.main([f"GCN={a0},{a1}", f"SAGE={b}", "--metric", "hits@20",
                           "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(png) in capsys.readouterr().out


@pytest.mark.parametrize(("argument", "message"), [
    ("GCN", "expected LABEL=RUN"),
    ("=x", "expected LABEL=RUN"),
    ("GCN=/nonexistent/run", "metrics.jsonl: missing"),
])
def test_bad_curves_are_named(argument, message, capsys):
    with pytest.raises(SystemExit):
        plot_runs.main([argument, "--metric", "m", "--out", "x.png"])
    assert message in capsys.readouterr().err


def test_labels_must_differ(tmp_path, capsys):
    run = _run(tmp_path / "a", [0.1])
    with pytest.raises(SystemExit):
        plot_runs.main([f"A={run}", f"A={run}", "--metric", "hits@20", "--out", "x.png"])
    assert "labels must differ" in capsys.readouterr().err


def test_a_summary_json_stands_in_for_gone_run_directories(tmp_path, capsys):
    summary = tmp_path / "gcn.json"
    summary.write_text(json.dumps({"runs": [
        {"seed": 0, "valid_curve": {"hits@20": [[5, 0.2], [10, 0.4]]}},
        {"seed": 1, "valid_curve": {"hits@20": [[5, 0.4], [10, 0.6]]}}]}))
    label, runs = plot_runs.parse_curve(f"GCN={summary}")
    assert label == "GCN" and len(runs) == 2
    curves = [dict(grid_runs.curve(r, "hits@20")) for r in runs]
    assert curves == [{5: 0.2, 10: 0.4}, {5: 0.4, 10: 0.6}]
    pytest.importorskip("matplotlib")
    b = _run(tmp_path / "b", [0.2, 0.1, 0.5])
    png = tmp_path / "curves.png"
    assert plot_runs.main([f"GCN={summary}", f"SAGE={b}", "--metric", "hits@20",
                           "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_summary_without_curves_is_named(tmp_path, capsys):
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"runs": [{"seed": 0, "test": {"hits@20": 0.3}}]}))
    with pytest.raises(SystemExit):
        plot_runs.main([f"GCN={old}", "--metric", "hits@20", "--out", "x.png"])
    assert "runs[0] has no valid_curve" in capsys.readouterr().err
