import dataclasses

import pytest
import torch
from torch_geometric.data import Data

from graphlearn.config import Config, DataConfig, ModelConfig, TrainConfig
from graphlearn.data.kg import InductiveKG
from graphlearn.errors import ConfigError
from graphlearn.tasks import TASKS, KGTask, build_task
from graphlearn.tasks.negatives import KGNegativeBatch

N, R = 12, 2


def tiny_kg() -> Data:
    """Relation 0: i -> i + 1, relation 1: i -> i + 6 (mod 12); a few held out."""
    triples = torch.tensor([[i, 0, (i + 1) % N] for i in range(N)]
                           + [[i, 1, (i + 6) % N] for i in range(N)])
    valid, test = triples[[3, 15]], triples[[7, 20]]
    keep = torch.ones(len(triples), dtype=torch.bool)
    keep[[3, 15, 7, 20]] = False
    train = triples[keep]
    head, rel, tail = train.t()
    return Data(edge_index=torch.stack([torch.cat([head, tail]), torch.cat([tail, head])]),
                edge_type=torch.cat([rel, rel + R]), num_nodes=N, num_relations=2 * R,
                train_triples=train, valid_triples=valid, test_triples=test,
                filter_triples=triples, name="tiny-kg")


def kg_config(model="distmult", params=None, **train) -> Config:
    train_cfg = {"epochs": 3, "batch_size": 8, "lr": 0.1, "optimizer": "adagrad",
                 "num_negative": 0, "patience": None, **train}
    return Config(task="kg", data=DataConfig(name="tiny-kg"),
                  model=ModelConfig(name=model, params=params or {"dim": 16}),
                  train=TrainConfig(**train_cfg))


def losses_over_steps(task: KGTask, steps: int = 30) -> list[float]:
    torch.manual_seed(0)
    model = task.build_model()
    optimizer = torch.optim.Adagrad(model.parameters(), lr=0.1) \
        if task.cfg.train.optimizer == "adagrad" else torch.optim.Adam(model.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(0)
    out = []
    for step in range(steps):
        epoch_loss = 0.0
        for batch in task.train_batches(step + 1, gen):
            optimizer.zero_grad()
            loss = task.training_step(model, batch)
            loss.backward()
            optimizer.step()
            epoch_loss += float(loss.detach())
        out.append(epoch_loss)
    return out


def test_registered_with_model_context():
    assert TASKS.get("kg") is KGTask
    task = build_task(kg_config(), tiny_kg())
    assert task.model_context() == {"num_entities": N, "num_relations": 2 * R}
    model = task.build_model()
    assert model.entity.num_embeddings == N and model.relation.num_embeddings == 2 * R


def test_one_vs_all_batches_cover_the_epoch_and_training_reduces_the_loss():
    task = build_task(kg_config(params={"dim": 16, "init_std": 0.1}), tiny_kg())
    batches = list(task.train_batches(1, torch.Generator().manual_seed(0)))
    assert len(batches) == task.num_batches() == 3
    seen = torch.cat(batches)
    assert sorted(map(tuple, seen.tolist())) == sorted(map(tuple, task.train_triples.tolist()))
    losses = losses_over_steps(task)
    assert losses[-1] < 0.5 * losses[0]


def test_one_vs_all_loss_is_bce_against_training_answers_plus_regularisation():
    task = build_task(kg_config(params={"dim": 8, "n3_weight": 0.01}), tiny_kg())
    model = task.build_model()
    batch = task.train_triples[:4]
    h, r, t = batch.t()
    head, rel = torch.cat([h, t]), torch.cat([r, r + R])
    target = torch.zeros(8, N)
    for q, (a, b) in enumerate(zip(head.tolist(), rel.tolist())):
        for x, y, z in task.train_triples.tolist():
            if b < R and x == a and y == b:
                target[q, z] = 1
            if b >= R and z == a and y == b - R:
                target[q, x] = 1
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        model.score_all_tails(head, rel), target) \
        + model.regularization(head, rel, torch.cat([t, h]))
    assert torch.allclose(task.training_step(model, batch), expected)


@pytest.mark.parametrize("model, params", [("rotate", {"dim": 8, "gamma": 2.0}),
                                           ("complex", {"dim": 8, "init_std": 0.1})])
def test_negative_sampling_is_strict_and_training_reduces_the_loss(model, params):
    task = build_task(kg_config(model, params, num_negative=4, optimizer="adam",
                                adversarial_temperature=1.0), tiny_kg())
    known = {tuple(x) for x in task.train_triples.tolist()}
    for batch in task.train_batches(1, torch.Generator().manual_seed(1)):
        assert isinstance(batch, KGNegativeBatch) and batch.negative.shape[1] == 4
        for h, r, row in zip(batch.head.tolist(), batch.relation.tolist(),
                             batch.negative.tolist()):
            for e in row:
                fact = (h, r, e) if r < R else (e, r - R, h)
                assert fact not in known
    losses = losses_over_steps(task, 40)
    assert losses[-1] < losses[0]


def test_evaluate_reports_the_metric_names_both_directions():
    task = build_task(kg_config(), tiny_kg())
    model = task.build_model()
    for split in ("valid", "test"):
        metrics = task.evaluate(model, split)
        assert list(metrics) == task.metric_names()
        assert {"mrr", "tail_mrr", "head_hits@10", "mr"} <= set(metrics)
        assert 0 < metrics["mrr"] <= 1
    task.check_metric("mrr")
    assert task.higher_is_better("mrr") and not task.higher_is_better("mr")


def test_inductive_data_is_a_config_error():
    kg = InductiveKG("tiny_v1", tiny_kg(), tiny_kg())
    with pytest.raises(ConfigError, match="cannot score unseen entities"):
        build_task(kg_config(), kg)


@pytest.mark.parametrize("change, message", [
    ({"adversarial_temperature": 1.0}, "not used with train.num_negative 0"),
    ({"loss": "bpr"}, "train.loss 'bpr' is not implemented by task 'kg'"),
])
def test_options_the_task_would_ignore_are_errors(change, message):
    with pytest.raises(ConfigError, match=message):
        build_task(kg_config(**change), tiny_kg())


def test_other_tasks_reject_one_vs_all():
    cfg = kg_config()
    assert cfg.train.num_negative == 0
    bad = dataclasses.replace(cfg, task="link", data=DataConfig(name="x"),
                              train=dataclasses.replace(cfg.train, metric="auroc"))
    with pytest.raises(ConfigError, match="num_negative 0"):
        build_task(bad, Data(x=torch.ones(3, 1), edge_index=torch.tensor([[0], [1]])))



def test_one_vs_all_softmax_cross_entropy_and_its_constraint():
    from graphlearn.errors import ConfigError

    task = build_task(kg_config(params={"dim": 8}, loss="ce"), tiny_kg())
    model = task.build_model()
    batch = task.train_triples[:4]
    h, r, t = batch.t()
    head, rel, answer = torch.cat([h, t]), torch.cat([r, r + R]), torch.cat([t, h])
    expected = torch.nn.functional.cross_entropy(model.score_all_tails(head, rel), answer)
    assert torch.allclose(task.training_step(model, batch), expected)
    with pytest.raises(ConfigError, match="num_negative 0"):
        build_task(kg_config(loss="ce", num_negative=4, optimizer="adam"), tiny_kg())


def test_evaluation_sample_resamples_triples_with_both_directions():
    import numpy as np

    task = build_task(kg_config(), tiny_kg())
    model = task.build_model().eval()
    sample = task.evaluation_sample(model, "test")
    assert sample.num_units == 2 and sample.strata is None  # the two test triples
    assert sample.statistic(np.arange(2)) == task.evaluate(model, "test")
    twice_first = sample.statistic(np.array([0, 0]))
    first = sample.statistic(np.array([0]))
    assert twice_first == pytest.approx(first)  # a repeated triple weighs like itself
    whole = sample.statistic(np.arange(2))
    second = sample.statistic(np.array([1]))
    assert whole["mrr"] == pytest.approx((first["mrr"] + second["mrr"]) / 2)
