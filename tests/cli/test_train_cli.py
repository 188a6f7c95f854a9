import csv
import io
import json

import pytest

from graphlearn.cli import main
from tests.train.synthetic import write_tiny_config, write_tiny_dataset


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    cards, root = write_tiny_dataset(tmp_path)
    monkeypatch.setenv("GRAPHLEARN_DATASETS", str(cards))
    return write_tiny_config(tmp_path / "cfg.yaml", root, epochs=3)


def train_tiny_rec_run(tmp_path, monkeypatch, capsys):
    """A one-epoch recommendation run of the on-disk tiny dataset, in ``tmp_path/rec-run``."""
    cards, root = write_tiny_dataset(tmp_path)
    monkeypatch.setenv("GRAPHLEARN_DATASETS", str(cards))
    config = write_tiny_config(tmp_path / "cfg.yaml", root, epochs=1)
    out = tmp_path / "rec-run"
    assert main(["train", str(config), "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    return out


def one_line_error(capsys, argv, *fragments):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("graphlearn: error:"), err
    for fragment in fragments:
        assert fragment in err, err
    return err


def test_train_evaluate_recommend(tiny, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", str(tiny), "train.lr=0.02", "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert f"run directory: {out}" in text and "ndcg@5" in text and "test" in text
    final = json.loads((out / "final.json").read_text())
    assert final["command"] == f"graphlearn train {tiny} train.lr=0.02 --out {out}"

    assert main(["evaluate", str(out), "--split", "test", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"] == final["test"]
    assert main(["evaluate", str(out), "--split", "valid"]) == 0
    assert "recall@10" in capsys.readouterr().out

    assert main(["recommend", str(out), "--users", "u0,u1", "--k", "3"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["user"], r["rank"]) for r in rows] == [("u0", "1"), ("u0", "2"), ("u0", "3"),
                                                      ("u1", "1"), ("u1", "2"), ("u1", "3")]
    assert all(r["item"].startswith("i") for r in rows)
    assert main(["recommend", str(out), "--all", "--k", "2", "--format", "json"]) == 0
    lists = json.loads(capsys.readouterr().out)
    assert len(lists) == 40 and all(len(x["items"]) == 2 for x in lists)


def test_recommendations_exclude_train_valid_and_test_items(tiny, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", str(tiny), "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["recommend", str(out), "--all", "--k", "30", "--format", "json"]) == 0
    lists = {x["user"]: set(x["items"]) for x in json.loads(capsys.readouterr().out)}
    rows = (tiny.parent / "data" / "tiny-rec" / "tiny-rec.inter").read_text().splitlines()[1:]
    for line in rows:
        user, item = line.split("\t")[:2]
        assert item not in lists[user]
    assert all(len(items) == 30 - 10 for items in lists.values())  # 30 items, 10 known each


def test_resume_from_the_run_directory_alone(tiny, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", str(tiny), "--out", str(out), "--quiet", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    (out / "final.json").unlink()  # as if killed before the end: redo the final evaluation
    assert main(["train", "--resume", "--out", str(out), "--quiet", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["test"] == first["test"] and again["selected_epoch"] == first["selected_epoch"]


def test_errors_exit_2_with_one_line(tiny, tmp_path, capsys):
    out = tmp_path / "run"
    one_line_error(capsys, ["train", str(tiny), "train.lrr=1", "--out", str(out)],
                   "did you mean 'lr'")
    assert not out.exists()
    one_line_error(capsys, ["train", str(tiny), "model.params.dimm=4", "--out", str(out)],
                   "did you mean 'dim'")
    assert not out.exists()
    one_line_error(capsys, ["train", str(tiny), "data.name=nope", "--out", str(out)],
                   "unknown dataset 'nope'")
    one_line_error(capsys, ["train", "--resume"], "--resume needs --out")
    one_line_error(capsys, ["train", "--resume", "--out", str(tmp_path / "none")],
                   "not a run directory")
    assert main(["train", str(tiny), "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    one_line_error(capsys, ["train", str(tiny), "--out", str(out)], "add --resume")
    one_line_error(capsys, ["train", str(tiny), "train.seed=1", "--out", str(out)],
                   "different run", "train.seed")
    one_line_error(capsys, ["recommend", str(out), "--users", "u0,zz"], "unknown user id 'zz'")
    one_line_error(capsys, ["evaluate", str(tmp_path)], "not a run directory")
    (out / "checkpoints" / "best.pt").write_bytes(b"\x00" * 64)
    one_line_error(capsys, ["evaluate", str(out)], "best.pt", "corrupt")


@pytest.mark.realdata
@pytest.mark.slow
def test_main_job_on_movielens(shared_data, tmp_path, monkeypatch, capsys):
    """`graphlearn train` without CONFIG (shortened to 2 epochs): metrics and recommendations."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "main"
    assert main(["train", f"data.root={shared_data}", "train.epochs=2", "--out", str(out),
                 "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "ndcg@10" in text and "top-10 new items for the first 5 users" in text
    rows = list(csv.DictReader(io.StringIO((out / "recommendations.csv").read_text())))
    assert len(rows) == 50 and rows[0]["user"] == "196"


def test_time_limit_exits_75_and_resume_completes(tiny, tmp_path, capsys):
    out = tmp_path / "run"
    # a fresh run trains one epoch (nothing to estimate from) and stops: 1 ms is passed
    assert main(["train", str(tiny), "--out", str(out), "--time-limit", "0.001"]) == 75
    captured = capsys.readouterr()
    assert "stopping after epoch 1 of 3" in captured.err
    assert f"graphlearn train --resume --out {out}" in captured.out
    assert not (out / "final.json").exists()
    assert main(["train", "--resume", "--out", str(out), "--time-limit", "1h", "--quiet"]) == 0
    final = json.loads((out / "final.json").read_text())
    assert final["epochs_run"] == 3 and final["sessions"] == 2
    assert final["command"].endswith("--resume --time-limit 3600.0")


def test_finish_ends_a_stopped_run_and_says_so(tiny, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", str(tiny), "--out", str(out), "--time-limit", "0.001"]) == 75
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(out), "--finish"]) == 0
    text = capsys.readouterr()
    assert "finished early (--finish) after epoch 1 of the 3 planned" in text.out
    assert f"finishing {out} after epoch 1 of 3" in text.err
    final = json.loads((out / "final.json").read_text())
    assert final["epochs_run"] == 1 and final["selected_epoch"] == 1 and final["test"]
    assert final["finished_early"] == {
        "after_epoch": 1, "epochs_planned": 3, "note": final["finished_early"]["note"]}
    assert final["command"].endswith("--resume --finish")


def test_finish_errors_name_the_missing_flag(tiny, tmp_path, capsys):
    one_line_error(capsys, ["train", str(tiny), "--out", str(tmp_path / "a"), "--finish"],
                   "--finish ends an interrupted run: use it with --resume")
    assert not (tmp_path / "a").exists()
    one_line_error(capsys, ["train", "--resume", "--out", str(tmp_path / "a"), "--finish",
                            "--time-limit", "1h"], "drop --time-limit")


@pytest.mark.parametrize("text,seconds", [("5400", 5400), ("90m", 5400), ("1h30m", 5400),
                                          ("1H30M", 5400), ("2h", 7200), ("45s", 45),
                                          ("1m30s", 90), ("1:30:00", 5400), ("30:00", 1800),
                                          ("0.5", 0.5)])
def test_time_limit_durations(text, seconds):
    from graphlearn.cli.train import _duration

    assert _duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "-5", "1h1h", "h", "1x", "5m3", "1:2:3:4", "1:-2",
                                  "inf", "nan", "m30"])
def test_time_limit_rejects_bad_durations(text, tiny, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", str(tiny), "--out", str(tmp_path / "run"), "--time-limit", text])
    assert exit_info.value.code == 2
    assert "expected a duration such as 5400 (seconds), 90m" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
