"""The kg task on OGB knowledge graphs (ogbl-biokg's layout): OGB's given candidates
through OGB's Evaluator, typed training negatives, the validation subset,
batches_per_epoch."""

import dataclasses

import pytest
import torch
from torch import nn

from graphlearn.config import Config, DataConfig, EvalConfig, ModelConfig, TrainConfig
from graphlearn.data.ogb import load_ogbl
from graphlearn.tasks import build_task
from graphlearn.tasks.negatives import KGNegativeBatch
from tests.data.test_ogb import make_biokg

pytest.importorskip("ogb")


@pytest.fixture
def biokg(tmp_path):
    make_biokg(tmp_path)
    return load_ogbl(tmp_path, "ogbl-biokg")


def config(model="nbfnet", params=None, **train) -> Config:
    params = params if params is not None else {"input_dim": 8, "hidden_dims": [8, 8],
                                                "backend": "reference"}
    return Config(task="kg", data=DataConfig(name="ogbl-biokg"),
                  model=ModelConfig(name=model, params=params),
                  train=TrainConfig(**{"epochs": 1, "batch_size": 2, "num_negative": 1,
                                       "adversarial_temperature": 0.5, "lr": 0.01, **train}))


class EntityIdScore(nn.Module):
    """score(h, r, ?) = the candidate's id, whatever the query: hand-checkable ranks."""

    uses_graph = False

    def score_all_tails(self, head, relation):
        return torch.arange(7, dtype=torch.float32).expand(head.numel(), 7).clone()


def test_evaluation_ranks_against_the_given_candidates_with_ogb(biokg):
    task = build_task(config(), biokg)
    assert task.ogb_name == "ogbl-biokg"
    assert task.metric_names()[:4] == ["mrr", "hits@1", "hits@3", "hits@10"]
    out = task.evaluate(EntityIdScore(), "test")
    # test triples (global ids) (3, r1, 1) and (0, r0, 5); OGB's rank is the mean of the
    # optimistic and the pessimistic rank:
    #   tail 1 vs tail_neg [0, 0]: rank 1;  tail 5 vs [6, 5]: (2 + 3) / 2 = 2.5
    #   head 3 vs head_neg [2, 4]: rank 2;  head 0 vs [1, 1]: rank 3
    assert out["tail_mrr"] == pytest.approx((1 + 1 / 2.5) / 2)
    assert out["head_mrr"] == pytest.approx((1 / 2 + 1 / 3) / 2)
    assert out["mrr"] == pytest.approx((1 + 1 / 2.5 + 1 / 2 + 1 / 3) / 4)
    assert out["hits@1"] == pytest.approx(0.25) and out["hits@3"] == pytest.approx(1.0)
    assert out["tail_hits@1"] == pytest.approx(0.5) and out["head_hits@1"] == 0.0


def test_training_negatives_come_from_the_answer_type(biokg):
    task = build_task(config(num_negative=8), biokg)
    ranges = task.entity_ranges
    assert ranges.tolist() == [[0, 2]] * 2 + [[2, 5]] * 3 + [[5, 7]] * 2
    for batch in task.train_batches(1, torch.Generator().manual_seed(0)):
        assert isinstance(batch, KGNegativeBatch)
        lo, hi = ranges[batch.tail].t()
        assert bool(((batch.negative >= lo[:, None]) & (batch.negative < hi[:, None])).all())


def test_nbfnet_trains_and_evaluates_end_to_end(biokg, tmp_path):
    from graphlearn.train import train

    cfg = dataclasses.replace(config(), eval=EvalConfig(max_valid_triples=1))
    assert build_task(cfg, biokg)._triples["valid"].size(0) == 1
    _, final = train(cfg, tmp_path / "run", data=biokg, log=lambda _: None)
    for split in ("valid", "test"):
        assert 0 < final[split]["mrr"] <= 1 and 0 <= final[split]["head_hits@1"] <= 1


@pytest.mark.parametrize(("limit", "steps"), [(None, 2 * 2), (1, 2 * 1), (5, 2 * 2)])
def test_batches_per_epoch_ends_the_epoch_early(biokg, monkeypatch, tmp_path, limit, steps):
    from graphlearn.tasks.kg import KGTask
    from graphlearn.train import train

    calls = []
    real = KGTask.training_step
    monkeypatch.setattr(KGTask, "training_step",
                        lambda self, model, batch: calls.append(1) or real(self, model, batch))
    cfg = config(epochs=2, batches_per_epoch=limit)  # 4 triples, batch 2: 2 batches an epoch
    _, final = train(cfg, tmp_path / "run", data=biokg, log=lambda _: None)
    assert final["epochs_run"] == 2 and len(calls) == steps


def test_max_valid_triples_is_for_task_kg_only():
    from graphlearn.errors import ConfigError

    with pytest.raises(ConfigError, match="eval.max_valid_triples"):
        Config(task="link", data=DataConfig(name="cora"),
               model=ModelConfig(name="gae", params={}), eval=EvalConfig(max_valid_triples=5))


def test_the_shipped_biokg_config_trains_on_biokg_layout_data(biokg, tmp_path):
    """experiments/configs/kg/ogbl-biokg/nbfnet.yaml, only shrunk (width, steps)."""
    from pathlib import Path

    from graphlearn.config import load_config
    from graphlearn.train import train

    path = Path(__file__).resolve().parents[2] / "experiments/configs/kg/ogbl-biokg/nbfnet.yaml"
    cfg = load_config(path, ["model.params.input_dim=4", "model.params.hidden_dims=[4]",
                             "model.params.backend=reference", "train.epochs=1",
                             "train.batches_per_epoch=1"])
    assert cfg.eval.max_valid_triples == 1000 and cfg.train.batch_size == 32
    _, final = train(cfg, tmp_path / "run", data=biokg, log=lambda _: None)
    assert set(final["test"]) >= {"mrr", "hits@10", "tail_mrr", "head_mrr"}
