"""ForwardTrainer: forward learning through `graphlearn train` (run directory, selection,
resume), checked against train_forward / train_forward_node on tiny graphs."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from graphlearn.config import (
    FORWARD_VARIANTS,
    LAYERWISE_VARIANTS,
    Config,
    ConfigKeyError,
    from_dict,
    load_config,
)
from graphlearn.data.link_split import random_link_split
from graphlearn.errors import GraphlearnError
from graphlearn.train import load_run, train
from graphlearn.train.forward import (
    BACKBONES,
    NODE_SCHEDULES,
    build_stack,
    get_variant,
    list_schedules,
    list_variants,
    train_forward,
    train_forward_node,
)
from tests.train.test_forward import communities

QUIET = {"progress": False, "log": lambda _: None, "command": ["test"]}
LINK_DATA = {"name": "tiny", "val_ratio": 0.16, "test_ratio": 0.2, "split_seed": 3}
NODE_DATA = {"name": "tiny", "split": "random", "val_ratio": 0.25, "test_ratio": 0.25,
             "split_seed": 3}


def node_graph(seed: int = 0):
    """Three communities of 12 nodes; the label is the community."""
    data = communities(seed, k=3, size=12)
    data.y = torch.arange(data.num_nodes) // 12
    return data


def config(task: str, variant: str, schedule: str = "simultaneous", epochs: int = 4,
           **train: object) -> Config:
    forward = {"variant": variant, "hidden_channels": 8}
    if schedule != "simultaneous":
        forward["schedule"] = schedule
    return from_dict(Config, {
        "task": task, "data": LINK_DATA if task == "link" else NODE_DATA, "forward": forward,
        "train": {"epochs": epochs, "lr": 0.02, "patience": None, "seed": 5, **train}})


def run(cfg: Config, out, **kwargs):
    data = communities(1) if cfg.task == "link" else node_graph(1)
    return train(cfg, out=out, data=data, **QUIET, **kwargs)


def records(path):
    return [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]


def untimed(rows):
    return [{k: v for k, v in r.items() if not k.endswith("_s")} for r in rows]


# ----------------------------------------------------------------------------------------
# the config knows the forward package's names
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["link", "node"])
def test_config_variants_match_the_registry(task):
    assert sorted(FORWARD_VARIANTS[task]) == list_variants(task)


def test_config_layerwise_variants_match_the_objectives():
    supported = {f"{task}:{v}" for task in ("link", "node") for v in list_variants(task)
                 if "layerwise" in get_variant(v, task).schedules}
    assert supported == set(LAYERWISE_VARIANTS)
    assert set(list_schedules()) == set(NODE_SCHEDULES) == {"simultaneous", "layerwise"}


def test_config_layerwise_ff_needs_the_shared_label_context():
    with pytest.raises(ConfigKeyError, match="'forward.label_context' 'uniform': schedule "
                                             "'layerwise' caches"):
        from_dict(Config, {"task": "node", "data": NODE_DATA,
                           "forward": {"variant": "ff-virtual", "schedule": "layerwise",
                                       "label_context": "uniform"}})


def test_config_class_members_is_an_ff_virtual_option():
    cfg = from_dict(Config, {"task": "node", "data": NODE_DATA,
                             "forward": {"variant": "ff-virtual", "class_members": "none"}})
    assert cfg.forward.class_members == "none"
    with pytest.raises(ConfigKeyError, match="'forward.class_members' applies to "
                                             "node:ff-virtual only"):
        from_dict(Config, {"task": "node", "data": NODE_DATA,
                           "forward": {"variant": "ff-label", "class_members": "none"}})
    with pytest.raises(ConfigKeyError, match="forward.class_members"):
        from_dict(Config, {"task": "node", "data": NODE_DATA,
                           "forward": {"variant": "ff-virtual", "class_members": "all"}})


def test_backbones_match_the_config():
    from graphlearn.config import ForwardSection

    literal = ForwardSection.__dataclass_fields__["backbone"].type
    assert all(name in literal for name in BACKBONES.names())


#: the parameters of one layer of each backbone (PyG's state-dict names)
BACKBONE_PARAMETERS = {
    "gcn": {"bias", "lin.weight"},
    "sage": {"lin_l.weight", "lin_l.bias", "lin_r.weight"},
    "gat": {"att_src", "att_dst", "bias", "lin.weight"},
    "gatv2": {"att", "bias", "lin_l.weight", "lin_l.bias", "lin_r.weight", "lin_r.bias"},
}


@pytest.mark.parametrize("backbone", sorted(BACKBONE_PARAMETERS))
def test_every_backbone_trains_from_the_config(tmp_path, backbone):
    assert sorted(BACKBONE_PARAMETERS) == sorted(BACKBONES.names())
    cfg = from_dict(Config, {
        "task": "node", "data": NODE_DATA,
        "forward": {"variant": "ff-virtual", "hidden_channels": 8, "backbone": backbone},
        "train": {"epochs": 2, "lr": 0.02, "patience": None, "seed": 5}})
    rundir, final = run(cfg, tmp_path / "run")
    saved = torch.load(rundir.path / "checkpoints" / "best.pt", weights_only=True)["model"]
    for index in (0, 1):
        prefix = f"layers.{index}."
        assert {k[len(prefix):] for k in saved if k.startswith(prefix)} == \
            BACKBONE_PARAMETERS[backbone]
    assert 0.0 <= final["test"]["accuracy"] <= 1.0


# ----------------------------------------------------------------------------------------
# the run directory
# ----------------------------------------------------------------------------------------


def test_run_directory_and_selection_on_validation(tmp_path):
    cfg = config("link", "ff", epochs=5, eval_every=2)
    rundir, final = run(cfg, tmp_path / "run")
    path = rundir.path
    assert sorted(p.name for p in path.iterdir()) == ["checkpoints", "config.yaml",
                                                      "final.json", "metrics.jsonl"]
    saved = load_config(path / "config.yaml")
    assert saved.forward == cfg.forward and saved.model is None
    assert sorted(p.name for p in (path / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
    lines = records(path)
    during = [r for r in lines if not r.get("final")]
    assert [r["epoch"] for r in during] == [2, 4, 5]  # every 2 epochs and after the last
    assert all(r["split"] == "valid" for r in during)  # test is never looked at in training
    assert all(set(r["losses"]) == {"layer0", "layer1"} for r in during)
    best = max(during, key=lambda r: r["metrics"]["auroc"])
    assert final["selected_epoch"] == best["epoch"]
    assert [(r["split"], r["epoch"]) for r in lines if r.get("final")] == [
        ("valid", best["epoch"]), ("test", best["epoch"])]
    assert final["valid"]["auroc"] == pytest.approx(best["metrics"]["auroc"])
    for key in ("wall_time_s", "peak_memory_mb", "seed", "command", "git_commit", "test"):
        assert key in final
    assert final["forward"]["variant"] == "ff" and final["forward"]["optimizers"] == 2
    assert json.loads((path / "final.json").read_text()) == json.loads(json.dumps(final))
    state = torch.load(path / "checkpoints" / "last.pt", weights_only=True)
    assert len(state["optimizer"]["optimizers"]) == 2  # one Adam per layer
    assert {"torch", "generator"} <= set(state["rng"])
    # the selected stack reloads and evaluates to the same test metrics
    _, task, model = load_run(path, data=communities(1))
    assert task.evaluate(model, "test") == final["test"]


def test_a_forward_run_is_named_after_its_variant(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rundir, _ = train(config("link", "sf", "layerwise", epochs=1), data=communities(1), **QUIET)
    assert rundir.path.name.startswith("tiny-forward_sf_layerwise-")


def test_no_validation_split_is_an_error(tmp_path):
    cfg = from_dict(Config, {"task": "link", "data": {**LINK_DATA, "val_ratio": 0.0},
                             "forward": {"variant": "ff"}, "train": {"epochs": 1}})
    with pytest.raises(GraphlearnError, match="validation"):
        run(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------------------
# the same numbers as the functional API
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("variant", "schedule"), [
    ("ff", "simultaneous"), ("sf", "layerwise"), ("ff", "layerwise"),
    ("sf-topdown", "simultaneous"), ("ccl", "simultaneous"), ("backprop", "simultaneous")])
def test_link_run_reproduces_train_forward(tmp_path, variant, schedule):
    cfg = config("link", variant, schedule, epochs=4)
    _, final = run(cfg, tmp_path / "run")
    data = communities(1)
    split = random_link_split(data, val_ratio=0.16, test_ratio=0.2, seed=3)
    stack = build_stack(BACKBONES.get("gcn"), data.num_features, [8, 8], variant=variant)
    reference = train_forward(stack, split, variant=variant, schedule=schedule, epochs=4,
                              lr=0.02, seed=5)
    for name in ("valid", "test"):
        assert final[name]["auroc"] == pytest.approx(reference["metrics"][name]["auroc"])
        assert final[name]["ap"] == pytest.approx(reference["metrics"][name]["ap"])
    if schedule == "layerwise":
        assert final["forward"]["selected_layer_epochs"] == reference["selected_epoch"]
        assert final["selected_epoch"] == 4 + reference["selected_epoch"][1]
    else:
        assert final["selected_epoch"] == reference["selected_epoch"]


@pytest.mark.parametrize(("variant", "schedule"), [
    ("ff-label", "simultaneous"), ("sf-topdown", "simultaneous"), ("ccl", "simultaneous"),
    ("backprop", "simultaneous"), ("sf", "layerwise"), ("ff-virtual", "layerwise"),
    ("ff-label", "layerwise")])
def test_node_run_reproduces_train_forward_node(tmp_path, variant, schedule):
    cfg = config("node", variant, schedule, epochs=4)
    _, final = run(cfg, tmp_path / "run")
    from graphlearn.tasks.node import prepare_node_data

    data = prepare_node_data(cfg, node_graph(1))
    stack = build_stack(BACKBONES.get("gcn"), data.num_features, [8, 8], variant=variant,
                        task="node", num_classes=3)
    reference = train_forward_node(stack, data, variant=variant, schedule=schedule, epochs=4,
                                   lr=0.02, seed=5)
    if schedule == "layerwise":
        assert final["forward"]["selected_layer_epochs"] == reference["selected_epoch"]
        assert final["selected_epoch"] == 4 + reference["selected_epoch"][1]
    else:
        assert final["selected_epoch"] == reference["selected_epoch"]
    for name in ("valid", "test"):
        assert final[name]["accuracy"] == pytest.approx(reference["metrics"][name]["accuracy"])


def test_node_public_split_uses_the_data_masks(tmp_path):
    data = node_graph(1)
    data.train_mask = torch.zeros(36, dtype=torch.bool)
    data.train_mask[[0, 12, 24]] = True
    data.val_mask = torch.zeros(36, dtype=torch.bool)
    data.val_mask[1:6] = True
    data.test_mask = ~(data.train_mask | data.val_mask)
    cfg = from_dict(Config, {"task": "node", "data": {"name": "tiny", "split": "public"},
                             "forward": {"variant": "sf", "hidden_channels": 8},
                             "train": {"epochs": 2, "patience": None}})
    _, final = train(cfg, out=tmp_path / "run", data=data, **QUIET)
    assert final["data"]["labelled_nodes"] == {"train": 3, "valid": 5, "test": 28}


# ----------------------------------------------------------------------------------------
# resume
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("task", "variant", "schedule", "stop"), [
    ("link", "sf-topdown", "simultaneous", 3),  # the top-down state crosses the checkpoint
    ("link", "sf", "layerwise", 3),  # stopped inside layer 0
    ("link", "ff", "layerwise", 5),  # stopped inside layer 1
    ("link", "ccl", "simultaneous", 2),  # heads and their optimizers
    ("node", "ff-label", "simultaneous", 2),  # wrong labels from the generator
    ("node", "ff-virtual", "layerwise", 6),  # stopped inside layer 1, cached passes rebuilt
])
def test_resume_ends_like_an_uninterrupted_run(tmp_path, task, variant, schedule, stop):
    cfg = config(task, variant, schedule, epochs=4, eval_every=1)
    _, whole = run(cfg, tmp_path / "whole")
    _, partial = run(cfg, tmp_path / "split", max_epochs=stop)
    assert partial is None and not (tmp_path / "split" / "final.json").exists()
    state = torch.load(tmp_path / "split" / "checkpoints" / "last.pt", weights_only=True)
    assert state["epoch"] == stop
    _, resumed = run(cfg, tmp_path / "split", resume=True)
    for key in ("selected_epoch", "epochs_run", "valid", "test", "forward"):
        assert resumed[key] == whole[key], key
    assert resumed["sessions"] == 2
    assert untimed(records(tmp_path / "split")) == untimed(records(tmp_path / "whole"))


def test_finish_is_refused_for_a_forward_run(tmp_path):
    cfg = config("link", "ff", "layerwise", epochs=4, eval_every=1)
    run(cfg, tmp_path / "r", max_epochs=2)
    with pytest.raises(GraphlearnError, match="not available for forward-learning runs"):
        run(cfg, tmp_path / "r", resume=True, finish=True)
    assert not (tmp_path / "r" / "final.json").exists()


def test_layerwise_patience_ends_the_layer_not_the_run(tmp_path):
    cfg = config("link", "ff", "layerwise", epochs=30, patience=2, eval_every=1)
    _, final = run(cfg, tmp_path / "run")
    lines = [r for r in records(tmp_path / "run") if not r.get("final")]
    assert {r["layer"] for r in lines} == {0, 1}  # both layers trained
    assert final["forward"]["stopped_layers"]  # and at least one stopped early
    epochs = final["forward"]["selected_layer_epochs"]
    assert len(epochs) == 2 and all(1 <= e <= 30 for e in epochs)
    for layer in (0, 1):
        mine = [r for r in lines if r["layer"] == layer]
        best = max(mine, key=lambda r: r["metrics"]["auroc"])
        assert best["layer_epoch"] == epochs[layer]


# ----------------------------------------------------------------------------------------
# shipped configs
# ----------------------------------------------------------------------------------------


def _forward_configs():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "experiments" / "configs"
    return sorted(p for p in root.rglob("forward_*.yaml"))


@pytest.mark.parametrize("path", _forward_configs(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_forward_configs_build_their_stack(path):
    cfg = load_config(path)
    assert cfg.forward is not None and cfg.task == path.parts[-3]
    assert cfg.data.name == path.parent.name
    assert cfg.train.patience is None
    from graphlearn.train.forward import build_forward_task

    data = communities(0) if cfg.task == "link" else node_graph(0)
    if cfg.task == "node":  # the public split needs masks: a random one for the tiny graph
        data.train_mask, data.val_mask, data.test_mask = (torch.arange(36) % 3 == i
                                                          for i in range(3))
    task = build_forward_task(cfg, data)
    stack = task.build_model()
    assert len(stack.layers) == cfg.forward.num_layers == 2
    assert yaml.safe_load(path.read_text())["forward"]["backbone"] == "gcn"


# ----------------------------------------------------------------------------------------
# a real kill
# ----------------------------------------------------------------------------------------

KILLED_RUN = """
import sys
from graphlearn.config import load_config
from graphlearn.train import train
from tests.train.test_forward import communities
train(load_config(sys.argv[1]), out=sys.argv[2], data=communities(1), progress=False,
      log=lambda _: None)
"""


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_gives_the_uninterrupted_results(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from graphlearn.config import save_config

    cfg = config("link", "sf", "layerwise", epochs=150, eval_every=1)
    path = tmp_path / "cfg.yaml"
    save_config(cfg, path)
    killed = tmp_path / "killed"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(path), str(killed)],
                            env=env, cwd=root, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        metrics = killed / "metrics.jsonl"
        while not metrics.is_file() or len(metrics.read_text().splitlines()) < 20:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "training did not start in time"
            time.sleep(0.01)
        assert proc.poll() is None, "the run finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "final.json").exists()
    _, resumed = train(load_config(path), out=killed, resume=True, data=communities(1),
                       progress=False, log=lambda _: None)
    _, whole = run(cfg, tmp_path / "whole")
    for key in ("selected_epoch", "epochs_run", "valid", "test", "forward"):
        assert resumed[key] == whole[key], key
    assert resumed["sessions"] == 2
    assert untimed(records(killed)) == untimed(records(tmp_path / "whole"))
