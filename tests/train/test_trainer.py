import argparse
import dataclasses
import json

import pytest
import torch
import yaml

from graphlearn.config import load_config
from graphlearn.errors import ConfigError, GraphlearnError
from graphlearn.train import CheckpointError, RunDir, RunDirError, load_run, train
from graphlearn.train.trainer import next_epoch_fits
from tests.train.synthetic import tiny_config, tiny_data

QUIET = {"progress": False, "log": lambda _: None, "command": ["test"]}


def run(cfg, out, **kwargs):
    return train(cfg, out=out, data=tiny_data(), **{**QUIET, **kwargs})


def scores(final):
    return {k: final[k] for k in ("selected_epoch", "valid", "test", "epochs_run")}


def records(path):
    return [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]


def test_run_directory_contents(tmp_path):
    cfg = tiny_config(epochs=3)
    rundir, final = run(cfg, tmp_path / "run")
    path = rundir.path
    assert sorted(p.name for p in path.iterdir()) == ["checkpoints", "config.yaml",
                                                      "final.json", "metrics.jsonl"]
    saved = load_config(path / "config.yaml")
    assert saved == dataclasses.replace(cfg, out=str(tmp_path / "run"))
    lines = records(path)
    assert [(r["epoch"], r["split"]) for r in lines] == [(1, "valid"), (2, "valid"),
                                                         (3, "valid"), (final["selected_epoch"],
                                                                        "valid"),
                                                         (final["selected_epoch"], "test")]
    assert all("wall_time_s" in r and "metrics" in r for r in lines)
    assert not any(r["split"] == "test" for r in lines if not r.get("final"))  # never peeked
    on_disk = json.loads((path / "final.json").read_text())
    assert on_disk == json.loads(json.dumps(final))
    for key in ("selected_epoch", "valid", "test", "wall_time_s", "peak_memory_mb", "seed",
                "command", "git_commit", "torch_version", "machine", "seconds_per_epoch"):
        assert key in final
    best = max((r for r in lines if not r.get("final")), key=lambda r: r["metrics"]["ndcg@5"])
    assert final["selected_epoch"] == best["epoch"]
    assert final["valid"] == best["metrics"]
    for name in ("last", "best"):
        state = torch.load(path / "checkpoints" / f"{name}.pt", weights_only=True)
        assert {"model", "optimizer", "epoch", "trainer", "rng"} <= set(state)
        assert isinstance(state["rng"]["generator"], torch.Tensor)
    assert not list((path / "checkpoints").glob(".*tmp"))  # no temporary files left


def test_same_seed_same_run(tmp_path):
    _, a = run(tiny_config("lightgcn", epochs=3), tmp_path / "a")
    _, b = run(tiny_config("lightgcn", epochs=3), tmp_path / "b")
    assert scores(a) == scores(b)
    _, c = run(tiny_config("lightgcn", epochs=3, seed=8), tmp_path / "c")
    assert scores(c) != scores(a)


@pytest.mark.parametrize("model", ["bpr_mf", "lightgcn"])
def test_resume_ends_like_an_uninterrupted_run(tmp_path, model):
    cfg = tiny_config(model, epochs=4)
    _, whole = run(cfg, tmp_path / "whole")
    _, partial = run(cfg, tmp_path / "split", max_epochs=2)
    assert partial is None
    state = torch.load(tmp_path / "split" / "checkpoints" / "last.pt", weights_only=True)
    assert state["epoch"] == 2
    _, resumed = run(cfg, tmp_path / "split", resume=True)
    assert scores(resumed) == scores(whole)
    assert resumed["sessions"] == 2
    strip = [({k: v for k, v in r.items() if not k.endswith("_s")}) for r in
             records(tmp_path / "whole")]
    assert strip == [({k: v for k, v in r.items() if not k.endswith("_s")}) for r in
                     records(tmp_path / "split")]


def test_finish_ends_a_run_at_its_last_epoch_with_the_selection_so_far(tmp_path):
    cfg = tiny_config(epochs=6)
    run(cfg, tmp_path / "r", max_epochs=3)
    curve = [r for r in records(tmp_path / "r") if r["split"] == "valid"]
    assert [r["epoch"] for r in curve] == [1, 2, 3]
    _, final = run(cfg, tmp_path / "r", resume=True, finish=True)
    best = max(curve, key=lambda r: r["metrics"]["ndcg@5"])
    assert final["selected_epoch"] == best["epoch"] and final["valid"] == best["metrics"]
    assert final["epochs_run"] == 3 and final["sessions"] == 2
    assert final["finished_early"]["after_epoch"] == 3
    assert final["finished_early"]["epochs_planned"] == 6
    # the test split is read once, at the end, from the selected checkpoint
    lines = records(tmp_path / "r")
    assert [(r["epoch"], r["split"]) for r in lines[3:]] == [(best["epoch"], "valid"),
                                                              (best["epoch"], "test")]
    _, task, model = load_run(tmp_path / "r", data=tiny_data())
    assert task.evaluate(model, "test") == final["test"]
    session = final["session_log"][-1]
    assert (session["first_epoch"], session["last_epoch"]) == (4, 3)  # trained none
    # finished: a further resume returns final.json and trains nothing
    _, again = run(cfg, tmp_path / "r", resume=True)
    assert again == json.loads(json.dumps(final))
    # an uninterrupted run records no early finish
    _, whole = run(cfg, tmp_path / "whole")
    assert "finished_early" not in whole


def test_finish_needs_resume_and_a_validated_epoch(tmp_path):
    cfg = tiny_config(epochs=4, eval_every=2)
    with pytest.raises(GraphlearnError, match="needs resume=True"):
        run(cfg, tmp_path / "new", finish=True)
    assert not (tmp_path / "new").exists()
    run(cfg, tmp_path / "r", max_epochs=1)  # epoch 1 is not validated (eval_every 2)
    with pytest.raises(RunDirError, match="no epoch has been trained and validated yet"):
        run(cfg, tmp_path / "r", resume=True, finish=True)
    assert not (tmp_path / "r" / "final.json").exists()
    _, final = run(cfg, tmp_path / "r", resume=True, max_epochs=1)  # epoch 2, validated
    assert final is None
    _, final = run(cfg, tmp_path / "r", resume=True, finish=True)
    assert final["selected_epoch"] == 2 and final["finished_early"]["after_epoch"] == 2


def test_session_log_records_each_session_of_a_resumed_run(tmp_path):
    cfg = tiny_config(epochs=4)
    run(cfg, tmp_path / "r", max_epochs=3, command=["graphlearn", "train", "cfg.yaml"])
    _, final = run(cfg, tmp_path / "r", resume=True,
                   command=["graphlearn", "train", "--resume", "--out", "r"])
    log = final["session_log"]
    assert [(r["session"], r["first_epoch"], r["last_epoch"], r["command"]) for r in log] == [
        (1, 1, 3, "graphlearn train cfg.yaml"), (2, 4, 4, "graphlearn train --resume --out r")]
    assert final["command"] == log[-1]["command"] and final["sessions"] == 2
    for record in log:
        assert record["threads"] >= 1 and record["wall_time_s"] > 0
        assert record["git_commit"] == final["git_commit"]
    assert final["peak_memory_mb"] == max(r["peak_memory_mb"] for r in log)
    assert "highest of the sessions' peaks" in final["note"] and "before the log" not in \
        final["note"]
    _, single = run(cfg, tmp_path / "one")
    assert [(r["first_epoch"], r["last_epoch"]) for r in single["session_log"]] == [(1, 4)]
    assert "note" not in single


def test_checkpoints_from_before_the_session_log_still_resume(tmp_path):
    cfg = tiny_config(epochs=3)
    _, whole = run(cfg, tmp_path / "whole")
    run(cfg, tmp_path / "old", max_epochs=2)
    path = tmp_path / "old" / "checkpoints" / "last.pt"
    state = torch.load(path, weights_only=True)
    del state["trainer"]["session_log"]  # as written by an older graphlearn
    torch.save(state, path)
    _, resumed = run(cfg, tmp_path / "old", resume=True)
    assert scores(resumed) == scores(whole)
    assert [r["session"] for r in resumed["session_log"]] == [2]
    assert "1 earlier session(s) ran before the log was kept" in resumed["note"]


def test_resume_drops_metrics_written_after_the_checkpoint(tmp_path):
    cfg = tiny_config(epochs=3)
    _, whole = run(cfg, tmp_path / "whole")
    run(cfg, tmp_path / "r", max_epochs=2)
    # as if killed after logging epoch 3 but before its checkpoint: a stale line and a torn one
    with open(tmp_path / "r" / "metrics.jsonl", "a") as handle:
        handle.write(json.dumps({"epoch": 3, "split": "valid", "metrics": {}}) + "\n{\"epo")
    _, resumed = run(cfg, tmp_path / "r", resume=True)
    assert scores(resumed) == scores(whole)
    assert len(records(tmp_path / "r")) == len(records(tmp_path / "whole"))


def test_early_stopping_and_eval_every(tmp_path):
    # a learning rate too small to change the ranking: no improvement after epoch 1
    _, final = run(tiny_config(epochs=20, lr=1e-12, patience=3), tmp_path / "a")
    assert final["stopped_early"] and final["epochs_run"] == 4 and final["selected_epoch"] == 1
    rundir, final = run(tiny_config(epochs=7, eval_every=3), tmp_path / "b")
    evaluated = [r["epoch"] for r in records(rundir.path) if not r.get("final")]
    assert evaluated == [3, 6, 7]


def test_without_validation_the_last_epoch_is_selected(tmp_path):
    cfg = tiny_config(epochs=3)
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, ratios=(0.8, 0.2)))
    rundir, final = run(cfg, tmp_path / "run")
    assert final["selected_epoch"] == 3 and final["valid"] is None and final["test"]
    assert [r["split"] for r in records(rundir.path)] == ["test"]


def test_existing_run_directories_are_never_overwritten(tmp_path):
    cfg = tiny_config(epochs=2)
    rundir, _ = run(cfg, tmp_path / "run")
    before = (rundir.path / "final.json").read_bytes()
    with pytest.raises(RunDirError, match="holds this run: add --resume"):
        run(cfg, tmp_path / "run")
    with pytest.raises(RunDirError, match="holds a different run.*'train.lr'"):
        run(tiny_config(epochs=2, lr=0.5), tmp_path / "run")
    with pytest.raises(RunDirError, match="cannot resume.*differs at 'train.lr'"):
        run(tiny_config(epochs=2, lr=0.5), tmp_path / "run", resume=True)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match="not empty and holds no run"):
        run(cfg, tmp_path / "other")
    assert (rundir.path / "final.json").read_bytes() == before
    # resuming a finished run returns its results without training
    _, final = run(cfg, tmp_path / "run", resume=True)
    assert (rundir.path / "final.json").read_bytes() == before
    assert final == json.loads(before)


def test_bad_model_config_leaves_nothing_behind(tmp_path):
    cfg = tiny_config()
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, params={"dimm": 8}))
    with pytest.raises(ConfigError, match="did you mean 'dim'"):
        run(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "pickled object", "foreign"])
def test_corrupt_checkpoint_is_a_clear_error(tmp_path, damage):
    cfg = tiny_config(epochs=3)
    run(cfg, tmp_path / "run", max_epochs=1)
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    if damage == "garbage":
        last.write_bytes(b"not a checkpoint")
    elif damage == "truncated":
        last.write_bytes(last.read_bytes()[:200])
    elif damage == "pickled object":
        torch.save({"format": "graphlearn-checkpoint", "obj": argparse.Namespace(a=1)}, last)
    else:
        torch.save({"weights": torch.zeros(2)}, last)
    with pytest.raises(CheckpointError, match=str(last)):
        run(cfg, tmp_path / "run", resume=True)


def test_checkpoint_of_another_config_is_rejected(tmp_path):
    run(tiny_config(epochs=3), tmp_path / "a", max_epochs=1)
    run(tiny_config(epochs=3, lr=0.02), tmp_path / "b", max_epochs=1)
    (tmp_path / "a" / "checkpoints" / "last.pt").write_bytes(
        (tmp_path / "b" / "checkpoints" / "last.pt").read_bytes())
    with pytest.raises(CheckpointError, match="another config"):
        run(tiny_config(epochs=3), tmp_path / "a", resume=True)


def test_load_run_restores_the_selected_model(tmp_path):
    rundir, final = run(tiny_config("lightgcn", epochs=3), tmp_path / "run")
    _, task, model = load_run(rundir.path, data=tiny_data())
    assert task.evaluate(model, "test") == final["test"]
    with pytest.raises(RunDirError, match="not a run directory"):
        load_run(tmp_path)


def test_config_on_disk_is_yaml_with_every_default(tmp_path):
    rundir, _ = run(tiny_config(epochs=1), tmp_path / "run")
    saved = yaml.safe_load((rundir.path / "config.yaml").read_text())
    assert saved["train"]["loss"] == "bpr" and saved["out"] == str(tmp_path / "run")
    assert RunDir.open(rundir.path).config().train.metric == "ndcg@5"


def test_late_keys_at_their_neutral_value_keep_a_run_resumable(tmp_path):
    """A run whose config was saved before a late key existed resumes unchanged; a
    non-neutral value of that key is still another config."""
    from graphlearn.train.rundir import LATE_KEYS, run_identity
    from graphlearn.train.trainer import config_fingerprint

    assert ("train", "clip_grad_norm") in LATE_KEYS
    cfg = tiny_config(epochs=2)
    identity = run_identity(cfg)
    assert "clip_grad_norm" not in identity["train"] and "forward" not in identity
    clipped = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, clip_grad_norm=1.0))
    assert run_identity(clipped)["train"]["clip_grad_norm"] == 1.0
    assert config_fingerprint(clipped) != config_fingerprint(cfg)


def test_checkpoints_of_earlier_config_versions_still_resume(tmp_path):
    """A checkpoint whose fingerprint recorded a late key at its neutral value (saved
    while the key existed but before run identities left it out) is accepted."""
    from graphlearn.train.rundir import run_identity
    from graphlearn.train.trainer import _sha256, accepted_fingerprints

    cfg = tiny_config(epochs=3)
    legacy = _sha256(run_identity(cfg, keep=[("train", "clip_grad_norm")]))
    assert legacy in accepted_fingerprints(cfg)
    run(cfg, tmp_path / "a", max_epochs=1)
    path = tmp_path / "a" / "checkpoints" / "last.pt"
    state = torch.load(path, weights_only=True)
    state["config_sha256"] = legacy
    torch.save(state, path)
    _, final = run(cfg, tmp_path / "a", resume=True)
    assert final["epochs_run"] == 3


def test_next_epoch_fits():
    # a fresh session without an estimate trains one epoch whatever the limit
    assert next_epoch_fits(0.0, 1e-9, [])
    # the slowest epoch of the session is the estimate
    assert next_epoch_fits(50.0, 100.0, [10.0, 50.0])
    assert not next_epoch_fits(50.1, 100.0, [10.0, 50.0])
    assert next_epoch_fits(89.0, 100.0, [11.0, 2.0])
    # before any epoch of a resumed session: the earlier sessions' mean per epoch
    assert next_epoch_fits(1.0, 100.0, [], previous_mean_s=99.0)
    assert not next_epoch_fits(2.0, 100.0, [], previous_mean_s=99.0)
    assert next_epoch_fits(2.0, 100.0, [1.0], previous_mean_s=99.0)  # this session's wins


def test_time_limit_stops_between_epochs_and_resumes(tmp_path):
    cfg = tiny_config(epochs=4)
    _, whole = run(cfg, tmp_path / "whole")
    lines = []
    # a fresh run trains one epoch (nothing to estimate from), then the limit is passed
    _, partial = run(cfg, tmp_path / "split", time_limit_s=1e-6, log=lines.append)
    assert partial is None and not (tmp_path / "split" / "final.json").exists()
    state = torch.load(tmp_path / "split" / "checkpoints" / "last.pt", weights_only=True)
    assert state["epoch"] == 1
    assert "stopping after epoch 1 of 4" in lines[-1] and "--resume" in lines[-1]
    # resumed: the earlier mean per epoch does not fit either, so no epoch starts
    _, partial = run(cfg, tmp_path / "split", resume=True, time_limit_s=1e-6)
    assert partial is None
    assert [r["epoch"] for r in records(tmp_path / "split")] == [1]
    _, resumed = run(cfg, tmp_path / "split", resume=True, time_limit_s=3600.0)
    # the session that trained nothing left no checkpoint, so it is not counted
    assert scores(resumed) == scores(whole) and resumed["sessions"] == 2
