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
