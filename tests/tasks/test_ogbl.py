"""The ``ogbl`` task on tiny OGB-like splits built here (the dict layout of ``load_ogbl``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from graphlearn.config import Config, DataConfig, EvalConfig, ModelConfig, TrainConfig
from graphlearn.errors import ConfigError
from graphlearn.tasks import TASKS, OgblTask, build_task
from graphlearn.tasks.ogbl import OgblBatch, ogbl_loss

N = 16


def tiny_ogbl(name: str = "ogbl-ddi", features: bool = False) -> Data:
    """Two communities of 8 nodes (even / odd ids), dense inside; some inside edges held
    out for valid/test, cross-community pairs as their negatives. No node features
    unless ``features`` (like ogbl-ddi)."""
    gen = torch.Generator().manual_seed(0)
    u, v = torch.triu_indices(N, N, 1)
    inside = (u % 2) == (v % 2)
    pairs = torch.stack([u[inside], v[inside]], dim=1)  # (56, 2)
    pairs = pairs[torch.randperm(pairs.size(0), generator=gen)]
    cross = torch.stack([u[~inside], v[~inside]], dim=1)  # (64, 2)
    cross = cross[torch.randperm(cross.size(0), generator=gen)]
    train, valid, test = pairs[:40], pairs[40:48], pairs[48:]
    split_edge = {"train": {"edge": train},
                  "valid": {"edge": valid, "edge_neg": cross[:25]},
                  "test": {"edge": test, "edge_neg": cross[25:50]}}
    data = Data(num_nodes=N, edge_index=torch.cat([train, train.flip(1)]).t(),
                split_edge=split_edge, name=name)
    if features:
        data.x = torch.nn.functional.one_hot(torch.arange(N) % 2, 2).float()
    return data


def ogbl_config(model: str = "gnn_lp", params: dict | None = None, name: str = "ogbl-ddi",
                ks: tuple[int, ...] = (10, 20, 30), **train) -> Config:
    params = {"hidden_channels": 16, "dropout": 0.0} if params is None else params
    train_cfg = {"epochs": 5, "batch_size": 16, "lr": 0.01, "patience": None, **train}
    return Config(task="ogbl", data=DataConfig(name=name),
                  model=ModelConfig(name=model, params=params),
                  train=TrainConfig(**train_cfg), eval=EvalConfig(ks=ks, batch_size=7))


def edge_set(edge_index: Tensor) -> set[tuple[int, int]]:
    return {tuple(e) for e in edge_index.t().tolist()}


def test_registered_with_model_context_and_official_metric():
    assert TASKS.get("ogbl") is OgblTask
    task = build_task(ogbl_config(), tiny_ogbl())
    assert task.model_context() == {"in_channels": None, "num_nodes": N}
    assert task.cfg.train.metric == "hits@20"  # ogbl-ddi's official metric by default
    assert task.metric_names() == ["hits@10", "hits@20", "hits@30"]
    assert build_task(ogbl_config(ks=(5,)), tiny_ogbl()).metric_names() == ["hits@5", "hits@20"]
    featured = build_task(ogbl_config(), tiny_ogbl(features=True))
    assert featured.model_context() == {"in_channels": 2, "num_nodes": N}


def test_message_graph_is_the_training_edges_in_both_directions():
    data = tiny_ogbl()
    task = build_task(ogbl_config(), data)
    train = data.split_edge["train"]["edge"].tolist()
    assert edge_set(task.edge_index) == {(a, b) for a, b in train} | {(b, a) for a, b in train}
    held_out = torch.cat([data.split_edge[s]["edge"] for s in ("valid", "test")]).tolist()
    assert not edge_set(task.edge_index) & {tuple(e) for e in held_out}


def test_batches_cover_the_training_edges_with_strict_fresh_negatives():
    task = build_task(ogbl_config(batch_size=16, num_negative=2), tiny_ogbl())
    gen = torch.Generator().manual_seed(0)
    batches = list(task.train_batches(1, gen))
    assert task.num_batches() == len(batches) == 3  # 40 positives, 16 per batch
    assert [b.pos.size(1) for b in batches] == [16, 16, 8]
    seen = sorted(tuple(e) for b in batches for e in b.pos.t().tolist())
    assert seen == sorted(tuple(e) for e in task.train_pos.t().tolist())  # each edge once
    graph = edge_set(task.edge_index)
    for batch in batches:
        assert isinstance(batch, OgblBatch) and task.num_examples(batch) == batch.pos.size(1)
        assert batch.neg.shape == (2, 2 * batch.pos.size(1))
        negatives = batch.neg.t().tolist()
        assert len(set(map(tuple, negatives))) == len(negatives)  # distinct within a batch
        for a, b in negatives:
            assert a != b and (a, b) not in graph
    again = list(task.train_batches(2, gen))
    assert not torch.equal(again[0].neg, batches[0].neg)  # fresh every epoch
    replay = list(task.train_batches(1, torch.Generator().manual_seed(0)))
    assert all(torch.equal(a.neg, b.neg) and torch.equal(a.pos, b.pos)
               for a, b in zip(replay, batches))  # all randomness from the generator


def test_loss_is_ogbs():
    pos, neg = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0, 1.0])
    expected = -torch.log(torch.sigmoid(pos)).mean() - torch.log(1 - torch.sigmoid(neg)).mean()
    assert torch.allclose(ogbl_loss(pos, neg), expected)


class PairTable(nn.Module):
    """A stub full-graph model: fixed scores per pair (any order), 0 elsewhere."""

    def __init__(self, scores: dict[tuple[int, int], float]) -> None:
        super().__init__()
        self.scores = scores
        self.weight = nn.Parameter(torch.zeros(1))

    def encode(self, x: Tensor | None, edge_index: Tensor) -> Tensor:
        return torch.zeros(N, 1)

    def decode(self, z: Tensor, pairs: Tensor) -> Tensor:
        return torch.tensor([self.scores.get((min(a, b), max(a, b)), 0.0)
                             for a, b in pairs.t().tolist()])


def three_pair_task() -> tuple[OgblTask, PairTable]:
    """Validation cut to 3 positives scored 5, 3, 1 and 3 negatives scored 4, 2, 2."""
    data = tiny_ogbl()
    valid = data.split_edge["valid"]
    valid["edge"], valid["edge_neg"] = valid["edge"][:3], valid["edge_neg"][:3]
    pos_scores, neg_scores = [5.0, 3.0, 1.0], [4.0, 2.0, 2.0]
    table = {tuple(sorted(p)): s for p, s in zip(valid["edge"].tolist(), pos_scores)}
    table |= {tuple(sorted(p)): s for p, s in zip(valid["edge_neg"].tolist(), neg_scores)}
    return build_task(ogbl_config(ks=(1, 2, 3)), data), PairTable(table)


def test_hits_through_ogbs_evaluator_equal_a_hand_computation():
    task, table = three_pair_task()
    # by hand: K-th highest negative 4, 2, 2; positives strictly above it: 1, 2, 2 of 3;
    # Hits@20 with 3 < 20 negatives is 1 (OGB's rule)
    assert task.evaluate(table, "valid") == pytest.approx(
        {"hits@1": 1 / 3, "hits@2": 2 / 3, "hits@3": 2 / 3, "hits@20": 1.0})


def test_evaluation_sample_resamples_positives_against_the_fixed_negatives():
    import numpy as np

    task, table = three_pair_task()
    sample = task.evaluation_sample(table, "valid")
    assert sample.num_units == 3 and sample.strata is None
    assert sample.statistic(np.arange(3)) == task.evaluate(table, "valid")
    # positives 5, 1, 1 against the fixed negatives (K-th best 4, 2, 2): by hand
    # Hits@1 = 1/3 (5 > 4), Hits@2 = Hits@3 = 1/3 (5 > 2; 1 is not)
    drawn = sample.statistic(np.array([0, 2, 2]))
    assert drawn == pytest.approx({"hits@1": 1 / 3, "hits@2": 1 / 3, "hits@3": 1 / 3,
                                   "hits@20": 1.0})


def test_evaluation_scores_every_pair_in_batches_from_one_encoding():
    task = build_task(ogbl_config(), tiny_ogbl())
    torch.manual_seed(0)
    model = task.build_model().eval()
    with torch.no_grad():
        z = model.encode(None, task.edge_index)
        pos, neg = (model.decode(z, pairs) for pairs in task.eval_pairs["test"])
    from graphlearn.metrics.ogb import ogb_evaluate

    assert task.evaluate(model, "test") == ogb_evaluate("ogbl-ddi", pos, neg, ks=[10, 20, 30])


@pytest.mark.parametrize("conv", ["gcn", "sage", "sheaf"])
def test_training_reduces_the_loss(conv):
    params = {"conv": conv, "hidden_channels": 16, "dropout": 0.0}
    if conv == "sheaf":  # the reference backend: no CPU kernel build in the test's cache
        params |= {"stalk_dim": 2, "backend": "reference"}
    task = build_task(ogbl_config(params=params, batch_size=40), tiny_ogbl())
    torch.manual_seed(0)
    model = task.build_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for epoch in range(1, 41):
        for batch in task.train_batches(epoch, gen):
            optimizer.zero_grad()
            loss = task.training_step(model, batch)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
    assert sum(losses[-5:]) < 0.7 * sum(losses[:5])
    model.eval()
    metrics = task.evaluate(model, "test")
    assert list(metrics) == task.metric_names()
    assert all(0.0 <= value <= 1.0 for value in metrics.values())


def test_trainer_runs_the_task_end_to_end_clipping_each_part(tmp_path, monkeypatch):
    from graphlearn.train import train

    clipped = []
    clip = torch.nn.utils.clip_grad_norm_

    def spy(parameters, max_norm, *args, **kwargs):
        parameters = list(parameters)
        clipped.append((len(parameters), max_norm))
        return clip(parameters, max_norm, *args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    cfg = ogbl_config(epochs=3, eval_every=2, clip_grad_norm=0.5)
    run, final = train(cfg, out=tmp_path / "run", data=tiny_ogbl(), progress=False,
                       log=lambda _: None)
    assert set(final["test"]) == {"hits@10", "hits@20", "hits@30"}
    assert final["data"]["train"] == 40 and final["data"]["valid_neg"] == 25
    lines = (run.path / "metrics.jsonl").read_text().splitlines()
    records = [r for r in map(json.loads, lines) if not r.get("final")]
    assert [r["epoch"] for r in records] == [2, 3]
    # 3 batches x 3 epochs, each clipping embeddings (1), encoder (2 GCN x 2), predictor (2 x 2)
    assert clipped == [(1, 0.5), (4, 0.5), (4, 0.5)] * 9


def test_distributed_shares_are_the_global_batch():
    task = build_task(ogbl_config(batch_size=16, num_negative=2), tiny_ogbl())
    whole = list(task.train_batches(1, torch.Generator().manual_seed(0)))
    task.world_size = 2
    shares = []
    for rank in (0, 1):
        task.rank = rank
        shares.append(list(task.train_batches(1, torch.Generator().manual_seed(0))))
    for b, (first, second) in enumerate(zip(*shares)):
        assert torch.equal(torch.cat([first.pos, second.pos], 1), whole[b].pos)
        assert torch.equal(torch.cat([first.neg, second.neg], 1), whole[b].neg)
        assert first.neg.size(1) == 2 * first.pos.size(1)


# -- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("change, message", [
    ({"num_negative": 0}, "num_negative 0 .1-vs-all. is not implemented by task 'ogbl'"),
    ({"adversarial_temperature": 1.0}, "adversarial_temperature is not used"),
    ({"negative_mode": "pairs"}, "negative_mode is not used by task 'ogbl'"),
    ({"loss": "bpr"}, "train.loss 'bpr' is not implemented by task 'ogbl'"),
])
def test_options_the_task_would_ignore_are_errors(change, message):
    with pytest.raises(ConfigError, match=message):
        build_task(ogbl_config(**change), tiny_ogbl())


def test_config_errors():
    with pytest.raises(ConfigError, match="'data.val_ratio' applies to task 'link' and 'node'"):
        Config(task="ogbl", data=DataConfig(name="ogbl-ddi", val_ratio=0.2),
               model=ModelConfig(name="gnn_lp"))
    with pytest.raises(ConfigError, match="no default for dataset 'my-graph' under task 'ogbl'"):
        Config(task="ogbl", data=DataConfig(name="my-graph"), model=ModelConfig(name="gnn_lp"))
    cfg = Config(task="ogbl", data=DataConfig(name="ogbl-collab"), model=ModelConfig(name="gnn_lp"))
    assert cfg.train.metric == "hits@50"
    with pytest.raises(ConfigError, match="ranking_mode is not used by task 'ogbl'"):
        build_task(Config(task="ogbl", data=DataConfig(name="ogbl-ddi"),
                          model=ModelConfig(name="gnn_lp"),
                          eval=EvalConfig(ranking_mode="average")), tiny_ogbl())
    task = build_task(ogbl_config(), tiny_ogbl())
    with pytest.raises(ConfigError, match="train.metric 'hits@50' is not reported by task 'ogbl'"):
        task.check_metric("hits@50")


def test_models_the_task_cannot_run_are_config_errors():
    with pytest.raises(ConfigError, match="has no node features and model 'gae' needs them"):
        build_task(ogbl_config(model="gae", params={}), tiny_ogbl())
    with pytest.raises(ConfigError, match="'nbfnet' is not a full-graph link model"):
        build_task(ogbl_config(model="nbfnet", params={"input_dim": 8, "hidden_dims": [8]}),
                   tiny_ogbl())
    with pytest.raises(ConfigError, match="stalk_dim applies to conv='sheaf' only"):
        build_task(ogbl_config(params={"conv": "gcn", "stalk_dim": 4}), tiny_ogbl()).build_model()


def test_datasets_the_task_does_not_cover_are_config_errors():
    with pytest.raises(ConfigError, match="needs an OGB link dataset"):
        build_task(ogbl_config(), Data(edge_index=torch.tensor([[0], [1]]), num_nodes=2))
    kg = tiny_ogbl()
    kg.edge_type = torch.zeros(kg.edge_index.size(1), dtype=torch.long)
    with pytest.raises(ConfigError, match="use task 'kg'"):
        build_task(ogbl_config(), kg)
    with pytest.raises(ConfigError, match="this one's metric is mrr"):
        build_task(ogbl_config(name="ogbl-collab"), tiny_ogbl(name="ogbl-citation2"))
    broken = tiny_ogbl()
    del broken.split_edge["valid"]["edge_neg"]
    with pytest.raises(ConfigError, match="split_edge\\['valid'\\] lacks 'edge_neg'"):
        build_task(ogbl_config(), broken)
    outside = tiny_ogbl()
    outside.split_edge["test"]["edge"][0, 0] = N
    with pytest.raises(ConfigError, match="node ids outside"):
        build_task(ogbl_config(), outside)


def test_missing_ogb_names_the_extra(monkeypatch):
    monkeypatch.setattr("graphlearn.tasks.ogbl.with_ogb", lambda: False)
    with pytest.raises(ConfigError, match=r"pip install 'graphlearn\[ogb\]'"):
        build_task(ogbl_config(), tiny_ogbl())


@pytest.mark.realdata
def test_real_ogbl_ddi_official_split(shared_data):
    from graphlearn.config import load_config

    root = Path(__file__).resolve().parents[2]
    cfg = load_config(root / "experiments/configs/ogbl/ogbl-ddi/gcn.yaml",
                      [f"data.root={shared_data}", "data.download=false"])
    task = build_task(cfg)
    assert task.summary() == {"dataset": "ogbl-ddi", "nodes": 4267, "features": 0,
                              "message_edges": 2135822, "train": 1067911,
                              "valid": 133489, "valid_neg": 101882,
                              "test": 133489, "test_neg": 95599}
    assert task.num_batches() == 17 and task.metric_names() == ["hits@10", "hits@20", "hits@30"]
