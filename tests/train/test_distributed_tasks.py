"""The KG and link tasks under ``torchrun --nproc_per_node=2`` (CPU, gloo) give the
single-process run's losses, metrics and parameters.

The two-process runs happen in one ``torchrun`` launch of this module
(``python -m torch.distributed.run ... -m tests.train.test_distributed_tasks OUT``),
all cases in one process group; the single-process runs in the test process.
Batches (7 triples or pairs) and the evaluation splits are odd-sized, so every
batch and evaluation splits unevenly over the two ranks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch_geometric.data import Data

from graphlearn.config import Config, DataConfig, EvalConfig, ModelConfig, TrainConfig
from graphlearn.errors import ConfigError
from graphlearn.tasks import KGTask, LinkTask
from graphlearn.tasks.base import Task
from graphlearn.tasks.kg import KGShard
from graphlearn.tasks.link import LinkBatch
from graphlearn.tasks.negatives import KGNegativeBatch

ROOT = Path(__file__).resolve().parents[2]
N, R = 12, 3
TINY_NBFNET = {"input_dim": 8, "hidden_dims": [8, 8], "backend": "reference"}


def tiny_kg() -> Data:
    """Relations ``i -> i + 1``, ``i -> i + 4`` and ``i -> i + 6`` (mod 12); 5 valid and
    5 test triples held out (odd, so the evaluation splits unevenly)."""
    triples = torch.tensor([[i, r, (i + step) % N] for r, step in enumerate((1, 4, 6))
                            for i in range(N)])
    valid, test = [2, 13, 27, 30, 35], [5, 9, 18, 24, 33]
    keep = torch.ones(len(triples), dtype=torch.bool)
    keep[valid + test] = False
    train = triples[keep]
    head, rel, tail = train.t()
    return Data(edge_index=torch.stack([torch.cat([head, tail]), torch.cat([tail, head])]),
                edge_type=torch.cat([rel, rel + R]), num_nodes=N, num_relations=2 * R,
                train_triples=train, valid_triples=triples[valid],
                test_triples=triples[test], filter_triples=triples, name="tiny-kg")


def tiny_graph(n: int = 24) -> Data:
    """Two communities, dense inside, with features saying the community (plus noise)."""
    gen = torch.Generator().manual_seed(0)
    group = torch.arange(n) % 2
    u, v = torch.triu_indices(n, n, 1)
    keep = torch.rand(u.numel(), generator=gen) < torch.where(group[u] == group[v], 0.4, 0.03)
    x = torch.cat([torch.nn.functional.one_hot(group, 2).float(),
                   0.1 * torch.randn(n, 4, generator=gen)], dim=1)
    return Data(x=x, edge_index=torch.stack([u[keep], v[keep]]), num_nodes=n)


def _config(task: str, model: str, params: dict[str, Any], **train: Any) -> Config:
    train_cfg = {"epochs": 2, "batch_size": 7, "lr": 0.01, "optimizer": "adam",
                 "patience": None, "seed": 3, "device": "cpu", **train}
    data = (DataConfig(name="tiny-kg") if task == "kg" else
            DataConfig(name="tiny-graph", val_ratio=0.1, test_ratio=0.1, split_seed=1))
    return Config(task=task, data=data, model=ModelConfig(name=model, params=params),
                  train=TrainConfig(**train_cfg), eval=EvalConfig(batch_size=3))


#: name -> (config, data factory)
CASES: dict[str, tuple[Config, Any]] = {
    "kg-distmult-1-vs-all": (_config("kg", "distmult", {"dim": 8, "n3_weight": 0.01},
                                     num_negative=0, lr=0.05), tiny_kg),
    "kg-distmult-negatives": (_config("kg", "distmult", {"dim": 8}, num_negative=4,
                                      adversarial_temperature=0.5, lr=0.05), tiny_kg),
    "kg-nbfnet-negatives": (_config("kg", "nbfnet", TINY_NBFNET, num_negative=4,
                                    adversarial_temperature=0.5), tiny_kg),
    "kg-nbfnet-1-vs-all": (_config("kg", "nbfnet", {**TINY_NBFNET, "remove_one_hop": True},
                                   num_negative=0), tiny_kg),
    "link-gae": (_config("link", "gae", {"hidden_channels": 8, "out_channels": 4},
                         num_negative=2), tiny_graph),
    "link-nbfnet": (_config("link", "nbfnet", {**TINY_NBFNET, "symmetric": True,
                                               "remove_one_hop": True, "aggregate": "sum",
                                               "dependent": False}, batch_size=9), tiny_graph),
    "link-nbfnet-pairs": (_config("link", "nbfnet", {**TINY_NBFNET, "symmetric": True,
                                                     "aggregate": "sum", "dependent": False},
                                  batch_size=9, num_negative=2, negative_mode="pairs"),
                          tiny_graph),
}


def _train_all(out: Path) -> None:
    """Every case into ``out/<case>``: one process group for all under ``torchrun``."""
    import torch.distributed as dist

    from graphlearn.train import train
    from graphlearn.train.utils import DistInfo, init_distributed

    owns = init_distributed(DistInfo.from_env(), torch.device("cpu"))
    try:
        for name, (cfg, make_data) in CASES.items():
            train(cfg, out / name, data=make_data(), progress=False, log=lambda _: None)
    finally:
        if owns:
            dist.destroy_process_group()


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("distributed-tasks")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                           "--standalone", "-m", "tests.train.test_distributed_tasks",
                           str(base / "ddp")], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the ranks: same kernels, same summation order
    try:
        _train_all(base / "single")
    finally:
        torch.set_num_threads(threads)
    return base


def _records(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_two_processes_give_the_single_process_run(runs, case):
    ddp, single = runs / "ddp" / case, runs / "single" / case
    got, want = _records(ddp), _records(single)
    assert len(got) == len(want) == 4  # 2 epochs + final valid and test, written once
    for a, b in zip(got, want):
        assert (a["epoch"], a["split"]) == (b["epoch"], b["split"])
        if "loss" in b:  # float32 losses summed per shard: equal up to rounding
            assert a["loss"] == pytest.approx(b["loss"], rel=1e-5), (case, a["epoch"])
        assert a["metrics"].keys() == b["metrics"].keys()
        for key, value in b["metrics"].items():
            assert a["metrics"][key] == pytest.approx(value, rel=1e-5, abs=1e-6), \
                (case, a["epoch"], a["split"], key)
    final_got, final_want = (json.loads((d / "final.json").read_text()) for d in (ddp, single))
    assert final_got["world_size"] == 2 and final_got["selected_epoch"] == \
        final_want["selected_epoch"]
    params_got, params_want = (torch.load(d / "checkpoints" / "last.pt", weights_only=False)
                               ["model"] for d in (ddp, single))
    assert params_got.keys() == params_want.keys()
    for key, value in params_want.items():
        torch.testing.assert_close(params_got[key], value, rtol=1e-5, atol=1e-6, msg=key)


# -- the sharding itself, in one process ------------------------------------------------


def _as_rank(task: Task, rank: int, world_size: int) -> Task:
    task.rank, task.world_size = rank, world_size
    return task


def test_shard_is_tensor_split():
    task = KGTask(CASES["kg-distmult-negatives"][0], tiny_kg())
    for n in (0, 1, 5, 7, 12):
        for world_size in (1, 2, 3, 5):
            parts = torch.arange(n).tensor_split(world_size)
            for rank in range(world_size):
                share = _as_rank(task, rank, world_size).shard(n)
                assert torch.equal(torch.arange(n)[share], parts[rank])
    assert _as_rank(task, 0, 1).gather(torch.arange(3)).tolist() == [0, 1, 2]  # no group


@pytest.mark.parametrize("case", ["kg-distmult-1-vs-all", "kg-nbfnet-negatives"])
def test_kg_shares_are_the_global_batch_with_its_answer_edges(case):
    cfg, make_data = CASES[case]
    whole = list(KGTask(cfg, make_data()).train_batches(1, torch.Generator().manual_seed(0)))
    shares = [list(_as_rank(KGTask(cfg, make_data()), rank, 3)
                   .train_batches(1, torch.Generator().manual_seed(0))) for rank in range(3)]
    graph_model = case.startswith("kg-nbfnet")
    for index, batch in enumerate(whole):
        parts = [s[index] for s in shares]
        assert all(isinstance(p, KGShard) for p in parts)
        assert all((p.easy is not None) == graph_model for p in parts)
        if isinstance(batch, KGNegativeBatch):
            for field, value in enumerate(batch):
                assert torch.equal(torch.cat([p.batch[field] for p in parts]), value)
            easy = torch.stack([batch.head, batch.relation, batch.tail], dim=1)
        else:
            assert torch.equal(torch.cat([p.batch for p in parts]), batch)
            h, r, t = batch.t()
            easy = torch.stack([torch.cat([h, t]), torch.cat([r, r + R]),
                                torch.cat([t, h])], dim=1)
        if graph_model:
            assert all(torch.equal(p.easy, easy) for p in parts)


@pytest.mark.parametrize("case", ["link-gae", "link-nbfnet", "link-nbfnet-pairs"])
def test_link_shares_are_the_global_batch(case):
    cfg, make_data = CASES[case]
    k = cfg.train.num_negative
    whole = list(LinkTask(cfg, make_data()).train_batches(1, torch.Generator().manual_seed(0)))
    shares = [list(_as_rank(LinkTask(cfg, make_data()), rank, 2)
                   .train_batches(1, torch.Generator().manual_seed(0))) for rank in range(2)]
    for index, batch in enumerate(whole):
        parts: list[LinkBatch] = [s[index] for s in shares]
        assert torch.equal(torch.cat([p.pos for p in parts], dim=1), batch.pos)
        if case != "link-nbfnet":  # k negative pairs per positive, in blocks
            assert torch.equal(torch.cat([p.neg for p in parts], dim=1), batch.neg)
            assert all(p.neg.size(1) == k * p.pos.size(1) for p in parts)
            assert all((p.easy is None) == (case == "link-gae") for p in parts)
        else:
            assert torch.equal(torch.cat([p.neg for p in parts]), batch.neg)
            assert all(torch.equal(p.easy, batch.pos) for p in parts)


def test_a_task_without_distributed_support_fails_clearly(monkeypatch):
    class Solo(LinkTask):
        supports_distributed = False

    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="does not implement distributed.*kg, link, ogbl, "
                                          "recommendation"):
        Solo(CASES["link-gae"][0], tiny_graph())


if __name__ == "__main__":  # a rank of the torchrun launch of the `runs` fixture
    _train_all(Path(sys.argv[1]))
