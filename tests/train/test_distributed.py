"""``torchrun --nproc_per_node=2`` on CPU (gloo) gives the single-process run's results."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from graphlearn.config import Config, DataConfig, ModelConfig
from graphlearn.errors import ConfigError
from graphlearn.metrics.topk import eval_users, evaluate_topk, topk_sums
from graphlearn.train.utils import DistInfo
from tests.train.synthetic import write_tiny_config, write_tiny_dataset

ROOT = Path(__file__).resolve().parents[2]
SIZE = {"num_users": 60, "num_items": 40, "per_user": 12}


def _train(args: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=180,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.slow
def test_two_cpu_processes_give_the_single_process_metrics(tmp_path):
    cards, root = write_tiny_dataset(tmp_path, **SIZE)
    # batch 33: odd, so every batch splits unevenly over 2 ranks (the loss rescaling
    # keeps the gradient the global batch's); lightgcn: a model with a sparse buffer
    config = write_tiny_config(tmp_path / "cfg.yaml", root, model="lightgcn", epochs=3,
                               batch_size=33)
    env = {**os.environ, "GRAPHLEARN_DATASETS": str(cards), "PYTHONPATH": str(ROOT),
           "OMP_NUM_THREADS": "1"}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    runs = tmp_path / "runs"
    cli = ["-m", "graphlearn", "train", str(config), "--quiet", "--no-progress", "--out"]
    _train([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
            "--standalone", *cli, str(runs / "ddp")], env)
    _train([sys.executable, *cli, str(runs / "single")], env)

    assert sorted(p.name for p in runs.iterdir()) == ["ddp", "single"]  # one run directory
    ddp, single = runs / "ddp", runs / "single"
    files = sorted(str(p.relative_to(ddp)) for p in ddp.rglob("*"))
    assert files == sorted(str(p.relative_to(single)) for p in single.rglob("*"))
    assert files == ["checkpoints", "checkpoints/best.pt", "checkpoints/last.pt",
                     "config.yaml", "final.json", "metrics.jsonl"]

    lines = (ddp / "metrics.jsonl").read_text().splitlines()
    single_lines = (single / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == len(set(lines)) == len(single_lines)  # written once, by rank 0
    for a, b in zip(map(json.loads, lines), map(json.loads, single_lines)):
        assert (a["epoch"], a["split"]) == (b["epoch"], b["split"])
        if "loss" in a:  # float32 losses summed per shard: equal up to rounding
            assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        for key, value in b["metrics"].items():
            assert a["metrics"][key] == pytest.approx(value, abs=1e-4), (a["epoch"], key)

    got, want = (json.loads((d / "final.json").read_text()) for d in (ddp, single))
    assert got["world_size"] == 2 and "world_size" not in want
    for key in ("selected_epoch", "epochs_run", "stopped_early"):
        assert got[key] == want[key], key
    for split in ("valid", "test"):
        assert got[split].keys() == want[split].keys()
        for key, value in want[split].items():
            assert got[split][key] == pytest.approx(value, abs=1e-4), (split, key)


@pytest.mark.slow
def test_time_limit_stops_every_rank_after_the_same_epoch(tmp_path):
    cards, root = write_tiny_dataset(tmp_path, **SIZE)
    config = write_tiny_config(tmp_path / "cfg.yaml", root, epochs=3, batch_size=33)
    env = {**os.environ, "GRAPHLEARN_DATASETS": str(cards), "PYTHONPATH": str(ROOT),
           "OMP_NUM_THREADS": "1"}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    out = tmp_path / "ddp"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                "--standalone", "-m", "graphlearn", "train", "--no-progress"]
    # rank 0's decision is broadcast: both ranks stop after epoch 1 (a split decision
    # would leave one rank waiting in a collective until the timeout)
    proc = subprocess.run([*torchrun, str(config), "--out", str(out), "--time-limit", "0.001"],
                          env=env, capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode != 0  # each rank exits 75; torchrun reports the failure
    assert "stopping after epoch 1 of 3" in proc.stderr
    assert not (out / "final.json").exists()
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert state["epoch"] == 1
    _train([*torchrun, "--resume", "--out", str(out)], env)
    final = json.loads((out / "final.json").read_text())
    assert final["epochs_run"] == 3 and final["sessions"] == 2 and final["world_size"] == 2


def test_sharded_topk_sums_add_up_to_the_whole_evaluation():
    from graphlearn.data.interactions import UserItemCSR

    gen = torch.Generator().manual_seed(0)
    users = torch.randint(0, 9, (60,), generator=gen)
    items = torch.randint(0, 15, (60,), generator=gen)
    truth = UserItemCSR.from_pairs(users, items, 10, 15)
    scores = torch.randn(10, 15, generator=gen)
    whole = evaluate_topk(scores, truth, ks=(3, 5), batch_size=4)
    shards = [topk_sums(scores, truth, ks=(3, 5), batch_size=4, users=part)
              for part in eval_users(truth).tensor_split(4)]
    total = shards[0]._replace(
        sums={k: sum(s.sums[k] for s in shards) for k in shards[0].sums},
        num_users=sum(s.num_users for s in shards),
        covered={k: torch.stack([s.covered[k] for s in shards]).any(0)
                 for k in shards[0].covered})
    assert total.num_users == eval_users(truth).numel()
    assert total.result(15) == pytest.approx(whole, abs=1e-12)


def test_tasks_without_distributed_support_fail_clearly(monkeypatch):
    from graphlearn.tasks.kg import KGTask

    class SoloKG(KGTask):  # every built-in task supports it; a new one may not
        supports_distributed = False

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert DistInfo.from_env() == DistInfo(1, 2, 0)
    cfg = Config(task="kg", data=DataConfig(name="nations"), model=ModelConfig(name="distmult"))
    with pytest.raises(ConfigError, match="task 'kg' does not implement distributed training"):
        SoloKG(cfg)
