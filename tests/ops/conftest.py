from __future__ import annotations

import os

import pytest
import torch

from graphlearn.ops import RelGraph


@pytest.fixture(scope="session")
def _extensions_dir(request) -> str:
    """Kernel builds persist in .pytest_cache, so a test session compiles only after a change."""
    return str(request.config.cache.mkdir("graphlearn_torch_extensions"))


@pytest.fixture(autouse=True)
def _persistent_extensions(_extensions_dir, monkeypatch):
    monkeypatch.setenv("GRAPHLEARN_EXTENSIONS_DIR", _extensions_dir)


@pytest.fixture(scope="session")
def cpu_kernel(_extensions_dir):
    """The loaded CPU extension; skips when it cannot be built (fails instead under CI)."""
    from graphlearn.ops.cpu import _build

    old = os.environ.get("GRAPHLEARN_EXTENSIONS_DIR")
    os.environ["GRAPHLEARN_EXTENSIONS_DIR"] = _extensions_dir
    try:
        ext = _build.load_cpu_extension()
    finally:
        if old is None:
            os.environ.pop("GRAPHLEARN_EXTENSIONS_DIR", None)
        else:
            os.environ["GRAPHLEARN_EXTENSIONS_DIR"] = old
    if ext is None:
        reason = f"fused CPU kernel unavailable: {_build.cpu_extension_error()}"
        if os.environ.get("CI") and not os.environ.get(_build.DISABLE_ENV):
            pytest.fail(reason)
        pytest.skip(reason)
    return ext


def tiny_graphs() -> dict[str, RelGraph]:
    """Small graphs covering the edge cases every backend must get right."""
    graphs = {}
    # 7 nodes, 5 relations: node 0 has no in-edges, node 5 is isolated, node 6 (the
    # highest id) receives edges, 2 -> 2 is a self-loop, 3 -> 1 (r1) appears twice,
    # relations 2 and 4 have no edges.
    src = torch.tensor([0, 2, 3, 3, 2, 1, 4, 0, 6, 1, 4])
    dst = torch.tensor([1, 1, 1, 1, 2, 3, 3, 6, 6, 4, 2])
    typ = torch.tensor([0, 1, 1, 1, 0, 3, 0, 1, 3, 0, 3])
    graphs["mixed"] = RelGraph.build(torch.stack([src, dst]), typ, num_nodes=7, num_relations=5)
    graphs["single_edge"] = RelGraph.build(
        torch.tensor([[0], [2]]), torch.tensor([1]), num_nodes=3, num_relations=2
    )
    gen = torch.Generator().manual_seed(7)
    num_edges = 120
    ei = torch.randint(0, 30, (2, num_edges), generator=gen)
    ei[1, :3] = 39  # the highest id receives edges; ids 30..38 are isolated
    et = torch.randint(0, 4, (num_edges,), generator=gen)
    graphs["random"] = RelGraph.build(ei, et, num_nodes=40, num_relations=6)
    # Fewer targets than sources, NBFNet's boundary layout: 9 source rows, 5 targets;
    # sources 5..8 only send (8 sends nothing), target 3 receives nothing, 6 -> 2 twice.
    src = torch.tensor([0, 1, 2, 4, 5, 6, 6, 7, 1, 0])
    dst = torch.tensor([1, 2, 0, 4, 0, 2, 2, 1, 4, 2])
    typ = torch.tensor([0, 1, 0, 2, 2, 1, 1, 0, 2, 1])
    graphs["fewer_targets"] = RelGraph.build(torch.stack([src, dst]), typ, num_nodes=9,
                                             num_relations=3, num_targets=5)
    graphs["no_edges"] = RelGraph.build(
        torch.zeros(2, 0, dtype=torch.long), torch.zeros(0, dtype=torch.long),
        num_nodes=3, num_relations=2,
    )
    return graphs


TINY_GRAPHS = tiny_graphs()


def offset_pna_case(dtype, device="cpu"):
    """PNA inputs whose messages have a large mean against their spread: every
    message is ``1000 + 0.1·noise``, so ``E[m²] − E[m]²`` cancels about 8 digits
    (float32 keeps 7) while the shifted variance does not. Returns
    ``(graph, x, grad_out)``; message ``none``, no weights, batch 1."""
    graph = TINY_GRAPHS["random"].to(device)
    gen = torch.Generator().manual_seed(3)
    x = 1000.0 + 0.1 * torch.randn(graph.num_nodes, 5, generator=gen, dtype=torch.float64)
    grad_out = torch.randn(graph.num_nodes, 20, generator=gen, dtype=torch.float64)
    return graph, x.to(device=device, dtype=dtype), grad_out.to(device=device, dtype=dtype)


def check_offset_pna(backend, dtype, device="cpu"):
    """The ``backend``'s (a name, or a function ``(graph, x) -> out``) PNA std and its gradient in ``dtype`` agree with the float64
    reference where the variance is tiny against the squared mean
    (:func:`offset_pna_case`). The std must keep float32's precision (1e-3
    relative; unshifted sums lose every digit). The gradient carries
    ``m_e − mean`` of float32 values near 1000, whose rounding is ``u·1000/0.1 ≈
    6e-4`` of the deviation, so it is held to 1e-2 of its size."""
    from graphlearn.ops import DEFAULT_PNA_EPS, rspmm

    def by_name(name):
        return lambda g, x: rspmm(g, x, None, None, message="none", reduce="pna", backend=name)

    run = backend if callable(backend) else by_name(backend)
    graph, x, grad_out = offset_pna_case(dtype, device)
    results = []
    for fn, xx, gg in [(run, x, grad_out), (by_name("reference"), x.double(), grad_out.double())]:
        xx = xx.detach().clone().requires_grad_()
        out = fn(graph, xx)
        (grad_x,) = torch.autograd.grad(out, xx, gg)
        results.append((out.detach().double().view(graph.num_nodes, 4, -1), grad_x.double()))
    (out, grad_x), (want, want_grad) = results
    std, want_std = out[:, 3], want[:, 3]
    several = graph.in_degree.to(device) > 1
    var = want_std[several] ** 2 - DEFAULT_PNA_EPS
    assert var.median() > 10 * DEFAULT_PNA_EPS, "the variance should dominate eps"
    std_tol, grad_tol = (1e-3, 1e-2) if dtype == torch.float32 else (1e-10, 1e-9)
    std_err = ((std - want_std).abs() / want_std.clamp(min=1e-12)).max().item()
    assert std_err < std_tol, f"{backend}/{dtype}: std relative error {std_err:.3g}"
    grad_err = ((grad_x - want_grad).abs().max() / want_grad.abs().max()).item()
    assert grad_err < grad_tol, f"{backend}/{dtype}: grad_x relative error {grad_err:.3g}"
