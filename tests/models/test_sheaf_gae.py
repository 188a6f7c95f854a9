import pytest
import torch

from graphlearn.config import Config, DataConfig, ModelConfig, TrainConfig
from graphlearn.errors import ConfigError
from graphlearn.models import MODELS, SheafGAE
from graphlearn.tasks import build_task
from tests.tasks.test_link import tiny_graph


@pytest.fixture(scope="module")
def _extensions_dir(request) -> str:
    """The fused CPU kernel builds into the same persistent folder as tests/ops uses."""
    return str(request.config.cache.mkdir("graphlearn_torch_extensions"))


@pytest.fixture(autouse=True)
def _persistent_extensions(_extensions_dir, monkeypatch):
    monkeypatch.setenv("GRAPHLEARN_EXTENSIONS_DIR", _extensions_dir)


def _square() -> tuple[torch.Tensor, torch.Tensor]:
    """A 4-cycle 0-1-2-3-0, both directions, and 3 features per node."""
    edge_index = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 0], [1, 0, 2, 1, 3, 2, 0, 3]])
    return torch.randn(4, 3, generator=torch.Generator().manual_seed(0)), edge_index


def test_registered_and_shapes():
    assert MODELS.get("sheaf_gae") is SheafGAE
    x, edge_index = _square()
    model = SheafGAE(3, stalk_dim=2, channels=3, out_channels=5)
    z = model.encode(x, edge_index)
    assert z.shape == (4, 5)
    assert model.decode(z, torch.tensor([[0, 1], [2, 3]])).shape == (2,)


def test_identity_maps_and_linear_update_are_gcn_propagation():
    # identity maps: Δ = I - D̃^-1/2 (A + I) D̃^-1/2 ⊗ I_d, so X - Δ X = Â X per channel
    torch.manual_seed(0)
    x, edge_index = _square()
    model = SheafGAE(3, stalk_dim=2, channels=3, out_channels=5, num_layers=1,
                     restriction="identity", update="linear")
    h0 = torch.nn.functional.elu(model.lift(x))  # (4, 6)
    a_hat = torch.full((4, 4), 0.0)
    for u, v in edge_index.t().tolist():
        a_hat[u, v] = 1.0
    a_hat += torch.eye(4)
    deg = a_hat.sum(1)  # every node: 2 neighbours + itself = 3
    a_hat = a_hat / (deg.sqrt().unsqueeze(0) * deg.sqrt().unsqueeze(1))
    expected = model.project(a_hat @ h0)
    assert torch.allclose(model.encode(x, edge_index), expected, atol=1e-6)


def test_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    x, edge_index = _square()
    model = SheafGAE(3, stalk_dim=2, channels=3, out_channels=5)
    model(x, edge_index, torch.tensor([[0, 1], [2, 3]])).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_bad_arguments_fail_clearly():
    with pytest.raises(ValueError, match="stalk_dim must be a positive integer"):
        SheafGAE(3, stalk_dim=0)
    with pytest.raises(ConfigError, match="restriction map family"):
        SheafGAE(3, restriction="banana")


def test_trains_through_the_link_task_above_chance():
    cfg = Config(task="link", data=DataConfig(name="tiny-graph", val_ratio=0.1, test_ratio=0.1,
                                              split_seed=3),
                 model=ModelConfig(name="sheaf_gae", params={"stalk_dim": 2, "channels": 4,
                                                             "out_channels": 8}),
                 train=TrainConfig(epochs=1, lr=0.01, patience=None))
    task = build_task(cfg, tiny_graph())
    torch.manual_seed(0)
    model = task.build_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    gen = torch.Generator().manual_seed(0)
    for epoch in range(1, 41):
        for batch in task.train_batches(epoch, gen):
            optimizer.zero_grad()
            task.training_step(model, batch).backward()
            optimizer.step()
    model.eval()
    assert task.evaluate(model, "test")["auroc"] > 0.7


def test_unchanged_by_relabelling_the_nodes():
    torch.manual_seed(0)
    x, edge_index = _square()
    model = SheafGAE(3, stalk_dim=2, channels=3, out_channels=5).eval()
    perm = torch.tensor([2, 0, 3, 1])  # new id of old node i is perm[i]
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(4)
    z = model.encode(x, edge_index)
    z_perm = model.encode(x[inverse], perm[edge_index])
    assert torch.allclose(z_perm[perm], z, atol=1e-5)
