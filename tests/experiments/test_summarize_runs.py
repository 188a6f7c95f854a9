"""experiments/tools/summarize_runs.py on two hand-written run directories."""

from __future__ import annotations

import json

import pytest

from .scripts import load_script

summarize = load_script("tools/summarize_runs.py", "summarize_runs")


def _run(path, seed, mrr, epoch_times):
    path.mkdir()
    final = {"seed": seed, "selected_epoch": 1, "epochs_run": len(epoch_times),
             "seconds_per_epoch": sum(epoch_times) / len(epoch_times), "peak_memory_mb": 10.0,
             "valid": {"mrr": mrr + 0.1}, "test": {"mrr": mrr}, "command": "c", "machine": {}}
    (path / "final.json").write_text(json.dumps(final))
    lines = [{"epoch": i + 1, "train_time_s": t} for i, t in enumerate(epoch_times)]
    lines.append({"epoch": len(epoch_times), "split": "test"})  # a record without a time
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


def _run_with_curve(path):
    """A finished run whose ``metrics.jsonl`` holds validation MRR 0.2, 0.3 at epochs 1, 2."""
    run = _run(path, 0, 0.4, [1.0, 1.0])
    with open(run / "metrics.jsonl", "a") as f:
        f.writelines(json.dumps({"epoch": epoch, "split": "valid", "metrics": {"mrr": value}})
                     + "\n" for epoch, value in [(1, 0.2), (2, 0.3)])
    return run


def test_mean_std_and_epoch_times(tmp_path, capsys):
    a = _run(tmp_path / "a", 0, 0.4, [3.0, 1.0])
    b = _run(tmp_path / "b", 1, 0.6, [2.0])
    out = tmp_path / "summary.json"
    assert summarize.main([str(a), str(b), "--metrics", "mrr", "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["summary"]["mrr"]["mean"] == pytest.approx(0.5)
    assert record["summary"]["mrr"]["std"] == pytest.approx(2 ** 0.5 * 0.1)  # sample std
    assert [r["epoch_train_time_s"] for r in record["runs"]] == [[3.0, 1.0], [2.0]]
    assert "0.500 ± 0.141 (0.4000 / 0.6000)" in capsys.readouterr().out


def test_unfinished_run_is_named(tmp_path):
    (tmp_path / "partial").mkdir()
    with pytest.raises(SystemExit, match="partial.*missing"):
        summarize.main([str(tmp_path / "partial")])


def test_validation_curve_plot(tmp_path):
    pytest.importorskip("matplotlib")
    run = _run_with_curve(tmp_path / "a")
    png = tmp_path / "curve.png"
    assert summarize.main([str(run), "--metrics", "mrr", "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_include_joins_an_earlier_summary(tmp_path, capsys):
    first = tmp_path / "first.json"
    a = _run(tmp_path / "a", 0, 0.4, [3.0])
    assert summarize.main([str(a), "--metrics", "mrr", "--json", str(first)]) == 0
    b = _run(tmp_path / "b", 1, 0.6, [2.0])
    out = tmp_path / "both.json"
    assert summarize.main([str(b), "--include", str(first), "--metrics", "mrr",
                           "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert [r["seed"] for r in record["runs"]] == [0, 1]
    assert record["summary"]["mrr"]["mean"] == pytest.approx(0.5)
    assert record["runs"][0]["epoch_train_time_s"] == [3.0]  # kept from the first summary
    assert "0.500 ± 0.141 (0.4000 / 0.6000)" in capsys.readouterr().out
    # the summary alone, without directories
    assert summarize.main(["--include", str(out), "--metrics", "mrr"]) == 0


def test_include_rejects_a_seed_given_twice_and_missing_metrics(tmp_path):
    first = tmp_path / "first.json"
    a = _run(tmp_path / "a", 0, 0.4, [3.0])
    assert summarize.main([str(a), "--metrics", "mrr", "--json", str(first)]) == 0
    with pytest.raises(SystemExit, match="seed.*0.*also given"):
        summarize.main([str(a), "--include", str(first), "--metrics", "mrr"])
    with pytest.raises(SystemExit, match=r"runs\[0\].*no test hits@10"):
        summarize.main(["--include", str(first), "--metrics", "hits@10"])
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(SystemExit, match="bad.json: not a summary"):
        summarize.main(["--include", str(bad)])


def test_summary_keeps_validation_curves_and_plots_them_when_included(tmp_path, capsys):
    run = _run_with_curve(tmp_path / "a")
    first = tmp_path / "first.json"
    assert summarize.main([str(run), "--metrics", "mrr", "--json", str(first)]) == 0
    assert json.loads(first.read_text())["runs"][0]["valid_curve"] == {
        "mrr": [[1, 0.2], [2, 0.3]]}
    capsys.readouterr()
    old = tmp_path / "old.json"  # a summary from before the curves were recorded
    record = json.loads(first.read_text())
    del record["runs"][0]["valid_curve"]
    old.write_text(json.dumps(record))
    assert summarize.main(["--include", str(old), "--metrics", "mrr",
                           "--plot", str(tmp_path / "none.png")]) == 0
    assert "no plot" in capsys.readouterr().err
    assert not (tmp_path / "none.png").exists()
    pytest.importorskip("matplotlib")
    png = tmp_path / "curve.png"
    # the directory is gone: the curve comes from the summary
    assert summarize.main(["--include", str(first), "--metrics", "mrr",
                           "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sessions_of_a_resumed_run_are_listed_and_kept(tmp_path, capsys):
    run = _run(tmp_path / "a", 0, 0.4, [1.0, 1.0])
    final = json.loads((run / "final.json").read_text())
    final["sessions"] = 2
    final["session_log"] = [
        {"session": 1, "command": "graphlearn train cfg.yaml", "git_commit": "abc",
         "threads": 1, "first_epoch": 1, "last_epoch": 1, "wall_time_s": 10.0,
         "peak_memory_mb": 9.0},
        {"session": 2, "command": "graphlearn train --resume --out a", "git_commit": "def",
         "threads": 2, "first_epoch": 2, "last_epoch": 2, "wall_time_s": 5.0,
         "peak_memory_mb": 10.0}]
    (run / "final.json").write_text(json.dumps(final))
    out = tmp_path / "summary.json"
    assert summarize.main([str(run), "--metrics", "mrr", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "session 1, epochs 1–1 on 1 thread(s): `graphlearn train cfg.yaml` — commit abc" \
        in text
    assert "session 2, epochs 2–2 on 2 thread(s)" in text
    (record,) = json.loads(out.read_text())["runs"]
    assert record["sessions"] == 2 and record["session_log"] == final["session_log"]


def test_a_run_finished_early_says_so_and_keeps_it(tmp_path, capsys):
    run = _run(tmp_path / "a", 0, 0.4, [1.0, 1.0])
    final = json.loads((run / "final.json").read_text())
    final["finished_early"] = {"after_epoch": 2, "epochs_planned": 5, "note": "n"}
    final["session_log"] = [
        {"session": 1, "command": "graphlearn train cfg.yaml", "git_commit": "abc",
         "threads": 1, "first_epoch": 1, "last_epoch": 2, "wall_time_s": 10.0,
         "peak_memory_mb": 9.0},
        {"session": 2, "command": "graphlearn train --resume --out a --finish",
         "git_commit": "abc", "threads": 1, "first_epoch": 3, "last_epoch": 2,
         "wall_time_s": 1.0, "peak_memory_mb": 9.0}]
    (run / "final.json").write_text(json.dumps(final))
    out = tmp_path / "summary.json"
    assert summarize.main([str(run), "--metrics", "mrr", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "finished after 2 of 5 epochs (`graphlearn train --resume --finish`)" in text
    assert "session 2, no epochs on 1 thread(s)" in text
    (record,) = json.loads(out.read_text())["runs"]
    assert record["finished_early"] == final["finished_early"]
