"""The node-classification task with the backprop trainer (a tiny GCN classifier)."""

from torch import Tensor, nn
from torch_geometric.nn import GCNConv

from graphlearn.config import Config, from_dict
from graphlearn.tasks import NodeTask, build_task
from graphlearn.train import RunDir, Trainer
from tests.train.test_forward_trainer import node_graph

QUIET = {"progress": False, "log": lambda _: None, "command": ["test"]}


class TinyGCN(nn.Module):
    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv = GCNConv(in_channels, num_classes)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return self.conv(x, edge_index)


class TinyNodeTask(NodeTask):
    def build_model(self) -> nn.Module:
        context = self.model_context()
        return TinyGCN(context["in_channels"], context["num_classes"]).to(self.device)


def config(epochs: int = 40) -> Config:
    return from_dict(Config, {
        "task": "node", "model": {"name": "tiny"},
        "data": {"name": "tiny", "val_ratio": 0.25, "test_ratio": 0.25, "split_seed": 0},
        "train": {"epochs": epochs, "lr": 0.1, "patience": None}})


def test_node_task_is_registered_and_splits():
    task = build_task(config(), node_graph())
    assert isinstance(task, NodeTask)
    masks = task.data.train_mask, task.data.val_mask, task.data.test_mask
    assert [int(m.sum()) for m in masks] == [18, 9, 9]
    assert task.model_context() == {"in_channels": 8, "num_classes": 3, "num_nodes": 36}
    assert task.has_split("valid") and task.metric_names() == ["accuracy"]


def test_backprop_trainer_learns_the_communities(tmp_path):
    cfg = config()
    task = TinyNodeTask(cfg, node_graph())
    run = RunDir.create(tmp_path / "run", cfg)
    final = Trainer(task, run, **QUIET).fit()
    assert final["metric"] == "accuracy"
    assert final["valid"]["accuracy"] == 1.0 and final["test"]["accuracy"] >= 0.75
    assert final["data"]["labelled_nodes"] == {"train": 18, "valid": 9, "test": 9}


def test_node_task_has_no_bootstrap_sample():
    import pytest

    from graphlearn.errors import GraphlearnError

    task = TinyNodeTask(config(), node_graph())
    with pytest.raises(GraphlearnError, match="task 'node' does not support bootstrap"):
        task.evaluation_sample(task.build_model(), "test")
