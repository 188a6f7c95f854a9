import pytest
import torch
from torch_geometric.data import Data

from graphlearn.config import Config, DataConfig, ModelConfig, TrainConfig
from graphlearn.errors import ConfigError
from graphlearn.tasks import TASKS, LinkTask, build_task
from graphlearn.tasks.link import LinkBatch


def tiny_graph(n: int = 40, seed: int = 0) -> Data:
    """Two communities, dense inside, with features saying the community (plus noise)."""
    gen = torch.Generator().manual_seed(seed)
    group = torch.arange(n) % 2
    u, v = torch.triu_indices(n, n, 1)
    same = group[u] == group[v]
    keep = torch.rand(u.numel(), generator=gen) < torch.where(same, 0.35, 0.02)
    x = torch.cat([torch.nn.functional.one_hot(group, 2).float(),
                   0.1 * torch.randn(n, 6, generator=gen)], dim=1)
    return Data(x=x, edge_index=torch.stack([u[keep], v[keep]]), num_nodes=n)


def link_config(**train) -> Config:
    train_cfg = {"epochs": 5, "lr": 0.01, "patience": None, **train}
    return Config(task="link", data=DataConfig(name="tiny-graph", val_ratio=0.1, test_ratio=0.1,
                                               split_seed=3),
                  model=ModelConfig(name="gae", params={"hidden_channels": 16,
                                                        "out_channels": 8}),
                  train=TrainConfig(**train_cfg))


def test_registered_with_model_context():
    assert TASKS.get("link") is LinkTask
    task = build_task(link_config(), tiny_graph())
    assert task.model_context() == {"in_channels": 8, "num_nodes": 40, "num_relations": 1}
    assert task.cfg.train.metric == "auroc"


def test_one_batch_per_epoch_with_strict_fresh_negatives():
    task = build_task(link_config(num_negative=2), tiny_graph())
    gen = torch.Generator().manual_seed(0)
    (batch,) = list(task.train_batches(1, gen))
    assert task.num_batches() == 1 and isinstance(batch, LinkBatch)
    pos = task.splits["train"].edge_label_index
    assert torch.equal(batch.pos, pos)
    assert batch.neg.shape == (2, 2 * pos.size(1)) and task.num_examples(batch) == pos.size(1)
    train_edges = {tuple(e) for e in task.splits["train"].edge_index.t().tolist()}
    for a, b in batch.neg.t().tolist():
        assert a != b and (a, b) not in train_edges and (b, a) not in train_edges
    (again,) = list(task.train_batches(2, gen))
    assert not torch.equal(again.neg, batch.neg)  # fresh negatives every epoch


def test_training_reduces_the_loss_and_evaluate_reports_auroc_ap():
    task = build_task(link_config(), tiny_graph())
    torch.manual_seed(0)
    model = task.build_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for epoch in range(1, 61):
        for batch in task.train_batches(epoch, gen):
            optimizer.zero_grad()
            loss = task.training_step(model, batch)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
    assert sum(losses[-5:]) < sum(losses[:5])
    model.eval()
    for split in ("valid", "test"):
        metrics = task.evaluate(model, split)
        assert list(metrics) == task.metric_names() == ["auroc", "ap"]
        assert 0.0 <= metrics["auroc"] <= 1.0 and 0.0 <= metrics["ap"] <= 1.0
    assert task.evaluate(model, "test")["auroc"] > 0.7


def test_evaluation_uses_the_split_message_graph():
    task = build_task(link_config(), tiny_graph())
    model = task.build_model().eval()
    test = task.splits["test"]
    z = model.encode(test.x, test.edge_index)
    logits = model.decode(z, test.edge_label_index)
    from graphlearn.metrics.classification import auroc_ap
    assert task.evaluate(model, "test") == auroc_ap(logits.detach(), test.edge_label)


@pytest.mark.parametrize("change, message", [
    ({"num_negative": 0}, "num_negative 0 .1-vs-all. is not implemented by task 'link'"),
    ({"adversarial_temperature": 1.0}, "adversarial_temperature is not used"),
    ({"loss": "bpr"}, "train.loss 'bpr' is not implemented by task 'link'"),
])
def test_options_the_task_would_ignore_are_errors(change, message):
    with pytest.raises(ConfigError, match=message):
        build_task(link_config(**change), tiny_graph())


def test_graph_without_features_is_a_config_error():
    with pytest.raises(ConfigError, match="needs a homogeneous graph"):
        build_task(link_config(), Data(edge_index=torch.tensor([[0], [1]]), num_nodes=2))


# -- graph models (NBFNet): how training negatives are formed ---------------------------

TINY_NBFNET = {"input_dim": 8, "hidden_dims": [8, 8], "aggregate": "sum", "dependent": False,
               "symmetric": True, "backend": "reference"}


def nbfnet_config(**train) -> Config:
    train_cfg = {"epochs": 1, "batch_size": 6, "patience": None, **train}
    return Config(task="link", data=DataConfig(name="tiny-graph", val_ratio=0.1, test_ratio=0.1,
                                               split_seed=3),
                  model=ModelConfig(name="nbfnet", params=TINY_NBFNET),
                  train=TrainConfig(**train_cfg))


def test_graph_models_default_to_corrupted_tails():
    task = build_task(nbfnet_config(num_negative=2), tiny_graph())
    assert task.negative_mode == "corrupt"
    batch = next(iter(task.train_batches(1, torch.Generator().manual_seed(0))))
    assert batch.pos.shape == (2, 6) and batch.neg.shape == (6, 2)  # tails of each query


def test_pairs_mode_draws_strict_random_pairs_in_blocks():
    task = build_task(nbfnet_config(num_negative=2, negative_mode="pairs"), tiny_graph())
    batches = list(task.train_batches(1, torch.Generator().manual_seed(0)))
    pos = task.splits["train"].edge_label_index
    assert len(batches) == task.num_batches() == -(-pos.size(1) // 6)
    seen = torch.cat([b.pos for b in batches], dim=1)
    assert sorted(map(tuple, seen.t().tolist())) == sorted(map(tuple, pos.t().tolist()))
    train_edges = {tuple(e) for e in task.splits["train"].edge_index.t().tolist()}
    for batch in batches:
        assert batch.neg.shape == (2, 2 * batch.pos.size(1)) and batch.easy is None
        for a, b in batch.neg.t().tolist():
            assert a != b and (a, b) not in train_edges and (b, a) not in train_edges


def test_pairs_mode_scores_every_pair_as_its_own_query():
    task = build_task(nbfnet_config(num_negative=2, negative_mode="pairs"), tiny_graph())
    torch.manual_seed(0)
    model = task.build_model()
    batch = next(iter(task.train_batches(1, torch.Generator().manual_seed(0))))
    loss = task.training_step(model, batch)
    # by hand: the positives' edges leave the graph; each pair (u, v) scored as (u, 0, [v])
    graph = model.remove_easy_edges(task._graphs["train"], batch.pos[0],
                                    torch.zeros_like(batch.pos[0]), batch.pos[1])
    score = [model(graph, torch.tensor([u]), torch.tensor([0]), torch.tensor([[v]])).item()
             for u, v in torch.cat([batch.pos, batch.neg], dim=1).t().tolist()]
    b = batch.pos.size(1)
    pos, neg = torch.tensor(score[:b]), torch.tensor(score[b:]).view(b, 2)
    expected = (-torch.nn.functional.logsigmoid(pos)
                - torch.nn.functional.logsigmoid(-neg).mean(1)) / 2
    assert loss.item() == pytest.approx(float(expected.mean()), rel=1e-5, abs=1e-6)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_pairs_mode_trains_nbfnet_above_chance():
    task = build_task(nbfnet_config(num_negative=1, negative_mode="pairs"), tiny_graph())
    torch.manual_seed(0)
    model = task.build_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    gen = torch.Generator().manual_seed(0)
    for epoch in range(1, 4):
        for batch in task.train_batches(epoch, gen):
            optimizer.zero_grad()
            task.training_step(model, batch).backward()
            optimizer.step()
    model.eval()
    assert task.evaluate(model, "valid")["auroc"] > 0.7


def test_corrupt_mode_needs_a_graph_model():
    with pytest.raises(ConfigError, match="negative_mode 'corrupt' needs a graph model"):
        build_task(link_config(negative_mode="corrupt"), tiny_graph())
    assert build_task(link_config(negative_mode="pairs"), tiny_graph()).negative_mode == "pairs"


def test_evaluation_sample_gives_evaluate_and_keeps_the_class_sizes():
    import numpy as np

    task = build_task(link_config(), tiny_graph())
    model = task.build_model().eval()
    sample = task.evaluation_sample(model, "test")
    labels = task.splits["test"].edge_label
    assert sample.num_units == labels.numel() and sample.strata.tolist() == labels.long().tolist()
    assert sample.statistic(np.arange(sample.num_units)) == task.evaluate(model, "test")
    positives = np.flatnonzero(sample.strata == 1)
    negatives = np.flatnonzero(sample.strata == 0)
    # one positive against one negative: the AUROC of a single ordered pair
    only_two = np.array([positives[0], negatives[0]])
    assert sample.statistic(only_two)["auroc"] in (0.0, 0.5, 1.0)
