"""The ogbl-ddi step benchmark's PyG variant (experiments/benchmarks/ogbl_ddi_step.py)
computes the same model as graphlearn's path, and the switch is undone afterwards.
The timing itself needs ogbl-ddi and is run by hand (docs/ogb.md)."""

from __future__ import annotations

import pytest
import torch

from graphlearn.models import build_model, gnn_lp

from .scripts import load_script

EDGES = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 4, 0, 4],
                      [1, 0, 2, 1, 3, 2, 4, 3, 4, 0]])


@pytest.mark.parametrize("conv", ["gcn", "sage"])
def test_pyg_variant_is_the_same_model(conv):
    bench = load_script("benchmarks/ogbl_ddi_step.py", "ogbl_ddi_step_benchmark")
    torch.manual_seed(0)
    model = build_model("gnn_lp", {"conv": conv, "hidden_channels": 8, "dropout": 0.0},
                        num_nodes=5)
    pairs = torch.tensor([[0, 2], [3, 4]])
    outputs = []
    for name in bench.VARIANTS:
        with bench.variant(model, name):
            if name == "pyg":
                assert gnn_lp.relu_dropout is not bench.SHIPPED_RELU_DROPOUT
            out = model(None, EDGES, pairs)
            grads = torch.autograd.grad(out.sum(), list(model.parameters()))
            outputs.append((out.detach(), grads))
    assert gnn_lp.relu_dropout is bench.SHIPPED_RELU_DROPOUT  # restored
    assert "layer" not in vars(model.encoder)
    (a, ga), (b, gb) = outputs
    assert torch.allclose(a, b, atol=1e-6)
    for x, y in zip(ga, gb, strict=True):
        assert torch.allclose(x, y, atol=1e-5)
