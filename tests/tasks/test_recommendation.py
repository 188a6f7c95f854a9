import dataclasses
from collections import Counter

import pytest
import torch

from graphlearn.config import DataConfig
from graphlearn.data.interactions import UserItemCSR, make_interactions
from graphlearn.errors import ConfigError, GraphlearnError
from graphlearn.metrics.topk import evaluate_topk
from graphlearn.tasks import TASKS, RecommendationTask, build_task
from graphlearn.tasks.recommendation import UnseenSampler
from tests.train.synthetic import tiny_config, tiny_data


def task_for(model="bpr_mf", data=None, **train):
    return build_task(tiny_config(model, **train), tiny_data() if data is None else data)


def test_registered_and_unknown_tasks():
    assert {"kg", "link", "recommendation"} <= set(TASKS.names())
    with pytest.raises(ConfigError, match="unknown task 'nope'.*valid: kg, link, node, ogbl, "
                                          "recommendation"):
        TASKS.get("nope")
    cfg = dataclasses.replace(tiny_config(loss="bce", metric="mrr"), task="kg",
                              data=DataConfig(name="nations"))
    with pytest.raises(ConfigError, match="task 'kg' needs a knowledge graph"):
        build_task(cfg, tiny_data())


def test_unseen_sampler_maps_draws_to_the_complement_exactly():
    seen = UserItemCSR.from_pairs(torch.tensor([0, 0, 0, 1]), torch.tensor([1, 2, 5, 0]), 3, 7)
    sampler = UnseenSampler(seen)
    complements = {0: [0, 3, 4, 6], 1: [1, 2, 3, 4, 5, 6], 2: list(range(7))}
    gen = torch.Generator().manual_seed(0)
    for user, allowed in complements.items():
        draws = sampler.sample(torch.full((6000,), user), 1, gen).view(-1)
        counts = Counter(draws.tolist())
        assert set(counts) == set(allowed)  # every unseen item, nothing else
        expected = 6000 / len(allowed)
        assert all(abs(c - expected) < 0.15 * expected for c in counts.values())  # uniform


def test_user_who_saw_every_item_still_gets_items():
    seen = UserItemCSR.from_pairs(torch.tensor([0, 0, 0]), torch.tensor([0, 1, 2]), 1, 3)
    draws = UnseenSampler(seen).sample(torch.zeros(50, dtype=torch.long), 2,
                                       torch.Generator().manual_seed(0))
    assert draws.shape == (50, 2) and set(draws.view(-1).tolist()) <= {0, 1, 2}


def test_epoch_visits_each_training_pair_once_with_strict_negatives():
    task = task_for(num_negative=3)
    batches = list(task.train_batches(1, torch.Generator().manual_seed(0)))
    assert len(batches) == task.num_batches()
    assert all(b.user.numel() <= 32 for b in batches)
    users = torch.cat([b.user for b in batches])
    pos = torch.cat([b.pos_item for b in batches])
    neg = torch.cat([b.neg_item for b in batches])
    assert neg.shape == (users.numel(), 3)
    got = sorted(zip(users.tolist(), pos.tolist()))
    assert got == sorted(zip(*task.train_pairs.tolist()))
    train_items = task.split.items("train")
    for u, row in zip(users.tolist(), neg.tolist()):
        assert not set(row) & set(train_items.row(u).tolist())


def test_batches_depend_only_on_the_generator():
    task = task_for()
    a = list(task.train_batches(1, torch.Generator().manual_seed(3)))
    b = list(task.train_batches(5, torch.Generator().manual_seed(3)))
    assert all(torch.equal(x, y) for p, q in zip(a, b) for x, y in zip(p, q))


def test_evaluate_is_evaluate_topk_with_seen_items_masked():
    task = task_for()
    torch.manual_seed(0)
    model = task.build_model()
    metrics = task.evaluate(model, "test")
    assert list(metrics) == task.metric_names()
    u, i = model.encode()
    scores = (u @ i.t()).detach()
    expected = evaluate_topk(scores, task.split.items("test"), task.split.seen("test"),
                             ks=(5, 10))
    assert metrics == expected


def test_evaluation_sample_is_one_unit_per_user_with_coverage_from_their_lists():
    import numpy as np

    task = task_for()
    torch.manual_seed(0)
    model = task.build_model()
    sample = task.evaluation_sample(model, "test")
    users = int((task.split.items("test").counts() > 0).sum())
    assert sample.num_units == users and sample.strata is None
    whole = sample.statistic(np.arange(users))
    assert whole == pytest.approx(task.evaluate(model, "test"), rel=1e-12, abs=1e-12)
    one, twice = sample.statistic(np.array([3])), sample.statistic(np.array([3, 3]))
    assert one == twice  # a repeated user adds nothing new, not even to coverage
    assert one["coverage@5"] == pytest.approx(5 / task.num_items)  # one list of 5 items
    pair = sample.statistic(np.array([3, 4]))
    assert pair["ndcg@10"] == pytest.approx((one["ndcg@10"] +
                                             sample.statistic(np.array([4]))["ndcg@10"]) / 2)


def test_training_step_is_bpr_plus_regularisation():
    task = task_for("lightgcn")
    torch.manual_seed(0)
    model = task.build_model()
    batch = next(task.train_batches(1, torch.Generator().manual_seed(0)))
    loss = task.training_step(model, batch)
    u, i = model.encode()
    pos = (u[batch.user] * i[batch.pos_item]).sum(-1)
    neg = (u[batch.user][:, None] * i[batch.neg_item]).sum(-1)
    expected = -torch.nn.functional.logsigmoid(pos[:, None] - neg).mean() \
        + model.regularization(batch.user, batch.pos_item, batch.neg_item)
    assert torch.allclose(loss, expected)


def test_recommend_excludes_every_known_item():
    task = task_for()
    model = task.build_model()
    users = torch.arange(task.num_users)
    items, scores = task.recommend(model, users, k=25)
    known = task.known_items()
    for u in range(task.num_users):
        row = [x for x in items[u].tolist() if x >= 0]
        assert not set(row) & set(known.row(u).tolist())
        assert len(row) == min(25, task.num_items - known.row(u).numel())
        assert scores[u, : len(row)].tolist() == sorted(scores[u, : len(row)].tolist(),
                                                        reverse=True)
    assert task.user_ids(["u3"]).tolist() == [task.data.user_names.index("u3")]
    with pytest.raises(GraphlearnError, match="unknown user id 'x9'"):
        task.user_ids(["x9"])


def test_preparation_follows_the_config():
    # ratings >= 4 only, then 3-cores
    cfg = tiny_config()
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(
        cfg.data, rating_threshold=4.0, user_k_core=3, item_k_core=3))
    task = RecommendationTask(cfg, tiny_data())
    assert task.data.user.numel() < tiny_data().user.numel()
    assert int(torch.bincount(task.data.user).min()) >= 3
    assert int(torch.bincount(task.data.item).min()) >= 3
    temporal = dataclasses.replace(tiny_config().data, split="temporal")
    task = RecommendationTask(dataclasses.replace(cfg, data=temporal), tiny_data())
    assert task.split.strategy.startswith("temporal")


def test_no_validation_split_is_reported():
    cfg = tiny_config()
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, ratios=(0.8, 0.2)))
    task = RecommendationTask(cfg, tiny_data())
    assert not task.has_split("valid") and task.has_split("test")
    with pytest.raises(GraphlearnError, match="valid split is empty"):
        task.evaluate(task.build_model(), "valid")


@pytest.mark.parametrize("change, message", [
    ({"loss": "bce"}, "train.loss 'bce' is not implemented by task 'recommendation'"),
    ({"adversarial_temperature": 1.0}, "adversarial_temperature is not used"),
    ({"num_workers": 2}, "num_workers"),
    ({"negative_mode": "pairs"}, "negative_mode is not used by task 'recommendation'"),
    ({"num_negative": 0}, "num_negative 0 .1-vs-all. is not implemented by task 'recommendation'"),
])
def test_options_the_task_would_ignore_are_errors(change, message):
    with pytest.raises(ConfigError, match=message):
        task_for(**change)


def test_unknown_metric_fails_before_training():
    task = task_for()
    with pytest.raises(ConfigError, match="'ndcg@50' is not reported.*did you mean"):
        task.check_metric("ndcg@50")
    assert task.higher_is_better("mrr@10") and not task.higher_is_better("mr")


def test_empty_data_after_filters_is_an_error():
    data = make_interactions(["a", "b"], ["x", "y"], [1.0, 1.0])
    cfg = tiny_config()
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, rating_threshold=5.0))
    with pytest.raises(GraphlearnError, match="no interactions left"):
        RecommendationTask(cfg, data)
