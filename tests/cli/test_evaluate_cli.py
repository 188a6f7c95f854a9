"""``graphlearn evaluate --bootstrap`` on the tiny KG run of the predict tests and a tiny
recommendation run."""

import json

import pytest

from graphlearn.cli import main
from tests.cli.test_predict_cli import kg_run, run_dir  # noqa: F401 (fixtures)
from tests.cli.test_train_cli import train_tiny_rec_run


def test_bootstrap_json_holds_the_metrics_and_their_intervals(run_dir, capsys):  # noqa: F811
    final = json.loads((run_dir / "final.json").read_text())
    assert main(["evaluate", str(run_dir), "--bootstrap", "50", "--seed", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["metrics"] == final["test"]
    boot = report["bootstrap"]
    assert (boot["resamples"], boot["confidence"], boot["seed"], boot["units"]) == (50, 0.95, 2, 2)
    assert boot["unit"] == "test triple, its tail and head query together"
    assert set(boot["intervals"]) == set(report["metrics"])
    for low, high in boot["intervals"].values():
        assert low <= high
    assert main(["evaluate", str(run_dir), "--bootstrap", "50", "--seed", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == report  # the seed fixes the draws


def test_bootstrap_table_names_the_coverage_and_the_unit(run_dir, capsys):  # noqa: F811
    assert main(["evaluate", str(run_dir), "--split", "valid", "--bootstrap", "20",
                 "--confidence", "0.9"]) == 0
    out = capsys.readouterr().out
    assert "90% low" in out and "90% high" in out and "mrr" in out
    assert "from 20 bootstrap resamples of the 2 units" in out
    assert "not the spread over training seeds or splits" in out


@pytest.mark.parametrize("argv, message", [
    (["--bootstrap", "1"], "--bootstrap takes a number of resamples >= 2"),
    (["--bootstrap", "many"], "--bootstrap takes a number of resamples >= 2"),
    (["--bootstrap", "10", "--confidence", "95"], "--confidence takes a number in (0, 1)"),
])
def test_bad_bootstrap_arguments_are_refused(run_dir, capsys, argv, message):  # noqa: F811
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", str(run_dir), *argv])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_recommendation_runs_resample_users(tmp_path, monkeypatch, capsys):
    out = train_tiny_rec_run(tmp_path, monkeypatch, capsys)
    final = json.loads((out / "final.json").read_text())
    assert main(["evaluate", str(out), "--bootstrap", "30", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["metrics"] == pytest.approx(final["test"], rel=1e-12, abs=1e-12)
    assert report["bootstrap"]["unit"] == "user with ground truth in the split"
    assert report["bootstrap"]["units"] == 40  # every tiny user has test items
    intervals = report["bootstrap"]["intervals"]
    assert set(intervals) == set(final["test"])
    coverage = {name for name in intervals if name.startswith("coverage@")}
    assert coverage == {"coverage@5", "coverage@10"}
    assert all(intervals[name] is None for name in coverage)
    assert all(intervals[name] is not None for name in set(intervals) - coverage)
    assert set(report["bootstrap"]["no_interval"]) == coverage
    assert main(["evaluate", str(out), "--bootstrap", "30"]) == 0
    text = capsys.readouterr().out
    assert "n/a" in text and "no interval for coverage@5, coverage@10: a union over users" in text
