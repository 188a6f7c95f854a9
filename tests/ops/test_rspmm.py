"""Every backend against the reference, on outputs and on all gradients."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from graphlearn.errors import ConfigError
from graphlearn.ops import (
    BackendUnavailableError,
    RelGraph,
    list_backends,
    list_messages,
    list_reductions,
    rspmm,
)

from .conftest import TINY_GRAPHS, check_offset_pna

MESSAGES = ["none", "add", "mul", "rotate"]
REDUCTIONS = ["sum", "mean", "max", "min", "pna"]
# (B, d, rel shared by the batch?) -- widths 6, 18, 20: not multiples of 8 or 16.
LAYOUTS = [(1, 6, True), (3, 6, True), (2, 10, False)]


def _inputs(graph: RelGraph, batch: int, block: int, shared: bool, dtype, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(graph.num_nodes, batch * block, generator=gen, dtype=dtype)
    rel = torch.randn(graph.num_relations, block if shared else batch * block, generator=gen,
                      dtype=dtype)
    w = torch.rand(graph.num_edges, generator=gen, dtype=dtype) + 0.5
    return x.requires_grad_(), rel.requires_grad_(), w.requires_grad_()


def _run(backend, graph, x, rel, w, message, reduce, batch, grad_seed=1):
    out = rspmm(graph, x, rel, w, message=message, reduce=reduce, backend=backend,
                batch_size=batch)
    gen = torch.Generator().manual_seed(grad_seed)
    grad_out = torch.randn(out.shape, generator=gen, dtype=out.dtype)
    grads = torch.autograd.grad(out, (x, rel, w), grad_out, allow_unused=True)
    grads = [torch.zeros_like(t) if g is None else g for g, t in zip(grads, (x, rel, w))]
    return [out.detach(), *grads]


def _assert_match(got, want, dtype, what):
    tol = 1e-10 if dtype == torch.float64 else 2e-4
    for name, a, b in zip(["out", "grad_x", "grad_rel", "grad_edge_weight"], got, want):
        assert a.shape == b.shape, f"{what}: {name} shape {tuple(a.shape)} != {tuple(b.shape)}"
        assert torch.allclose(a, b, rtol=tol, atol=tol), (
            f"{what}: {name} differs by {(a - b).abs().max().item():.3g}"
        )


@pytest.mark.parametrize("graph_name", sorted(TINY_GRAPHS))
@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda l: f"B{l[0]}d{l[1]}{'s' if l[2] else 'q'}")
@pytest.mark.parametrize("reduce", REDUCTIONS)
@pytest.mark.parametrize("message", MESSAGES)
def test_cpu_matches_reference_float64(cpu_kernel, message, reduce, layout, graph_name):
    graph = TINY_GRAPHS[graph_name]
    batch, block, shared = layout
    x, rel, w = _inputs(graph, batch, block, shared, torch.float64)
    want = _run("reference", graph, x, rel, w, message, reduce, batch)
    got = _run("cpu", graph, x, rel, w, message, reduce, batch)
    _assert_match(got, want, torch.float64, f"{message}/{reduce}/{layout}/{graph_name}")


@pytest.mark.parametrize("reduce", REDUCTIONS)
@pytest.mark.parametrize("message", MESSAGES)
def test_cpu_matches_reference_float32(cpu_kernel, message, reduce):
    graph = TINY_GRAPHS["random"]
    x, rel, w = _inputs(graph, 3, 6, True, torch.float32)
    want = _run("reference", graph, x, rel, w, message, reduce, 3)
    got = _run("cpu", graph, x, rel, w, message, reduce, 3)
    _assert_match(got, want, torch.float32, f"{message}/{reduce}")


@pytest.mark.parametrize("reduce", REDUCTIONS)
def test_cpu_many_threads_and_chunks(cpu_kernel, reduce):
    # Enough rows for every thread to get an edge-balanced chunk; skewed in-degrees.
    gen = torch.Generator().manual_seed(3)
    num_nodes, num_edges = 600, 6000
    dst = torch.cat([torch.zeros(1500, dtype=torch.long),
                     torch.randint(0, num_nodes, (num_edges - 1500,), generator=gen)])
    ei = torch.stack([torch.randint(0, num_nodes, (num_edges,), generator=gen), dst])
    graph = RelGraph.build(ei, torch.randint(0, 7, (num_edges,), generator=gen), num_nodes)
    x, rel, w = _inputs(graph, 4, 10, False, torch.float64)
    want = _run("reference", graph, x, rel, w, "mul", reduce, 4)
    got = _run("cpu", graph, x, rel, w, "mul", reduce, 4)
    _assert_match(got, want, torch.float64, reduce)


def test_cpu_partial_gradients_and_no_weight(cpu_kernel):
    graph = TINY_GRAPHS["mixed"]
    x, rel, _ = _inputs(graph, 1, 6, True, torch.float64)
    rel = rel.detach()
    for backend in ("reference", "cpu"):
        out = rspmm(graph, x, rel, message="rotate", reduce="pna", backend=backend)
        (gx,) = torch.autograd.grad(out.square().sum(), x)
        if backend == "reference":
            want = gx
    assert torch.allclose(gx, want)


def test_cpu_non_contiguous_input(cpu_kernel):
    graph = TINY_GRAPHS["mixed"]
    x = torch.randn(12, 7, dtype=torch.float64).t()[:, :12:2]  # [7, 6], strided
    rel = torch.randn(5, 6, dtype=torch.float64)
    a = rspmm(graph, x, rel, backend="cpu")
    b = rspmm(graph, x, rel, backend="reference")
    assert torch.allclose(a, b)


@pytest.mark.parametrize("reduce", REDUCTIONS)
@pytest.mark.parametrize("message", MESSAGES)
def test_cpu_gradcheck(cpu_kernel, message, reduce):
    # No duplicate edges (a tie makes max/min and std non-differentiable there).
    g = RelGraph.build(
        torch.tensor([[0, 1, 2, 3, 0, 2, 3], [1, 1, 1, 2, 3, 3, 3]]),
        torch.tensor([0, 1, 0, 1, 1, 0, 2]), num_nodes=5,
    )
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    rel = torch.randn(3, 2, dtype=torch.float64, generator=gen, requires_grad=True)
    w = torch.rand(7, dtype=torch.float64, generator=gen).add(0.5).requires_grad_()
    fn = lambda x, rel, w: rspmm(g, x, rel, w, message=message, reduce=reduce,
                                 backend="cpu")
    assert torch.autograd.gradcheck(fn, (x, rel, w))


def test_auto_picks_cpu_kernel(cpu_kernel):
    from graphlearn.ops.dispatch import resolve_backend

    x = torch.randn(7, 6)
    assert resolve_backend("auto", x, None).name == "cpu"
    # float16 is not a kernel dtype: auto quietly uses the reference.
    assert resolve_backend("auto", x.half(), None).name == "reference"
    out = rspmm(TINY_GRAPHS["mixed"], x.half(), message="none", reduce="max", backend="auto")
    assert out.dtype == torch.float16 and out.shape == (7, 6)


def test_auto_falls_back_with_one_warning(monkeypatch):
    from graphlearn.ops import dispatch
    from graphlearn.ops.cpu import _build

    monkeypatch.setattr(_build, "_module", None)
    monkeypatch.setattr(_build, "_error", "RuntimeError: no compiler (simulated)")
    monkeypatch.setattr(dispatch, "_warned_fallback", set())
    graph = TINY_GRAPHS["mixed"]
    x, rel = torch.randn(7, 6), torch.randn(5, 6)
    with pytest.warns(RuntimeWarning, match="no compiler"):
        out = rspmm(graph, x, rel, backend="auto")
    assert torch.allclose(out, rspmm(graph, x, rel, backend="reference"))
    with pytest.raises(BackendUnavailableError, match="no compiler"):
        rspmm(graph, x, rel, backend="cpu")


def test_disable_env(monkeypatch):
    from graphlearn.ops.cpu import _build

    monkeypatch.setattr(_build, "_module", None)
    monkeypatch.setattr(_build, "_error", None)
    monkeypatch.setenv(_build.DISABLE_ENV, "1")
    assert _build.load_cpu_extension() is None
    assert "disabled" in _build.cpu_extension_error()


def test_backend_errors(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    graph = TINY_GRAPHS["mixed"]
    x, rel = torch.randn(7, 6), torch.randn(5, 6)
    with pytest.raises(ConfigError, match="did you mean 'cpu'"):
        rspmm(graph, x, rel, backend="cpuu")
    with pytest.raises(BackendUnavailableError, match="CUDA tensors|triton is not installed"):
        rspmm(graph, x, rel, backend="triton")
    with pytest.raises(BackendUnavailableError, match="float32 and float64"):
        rspmm(graph, x.half(), rel.half(), backend="cpu")
    assert list_backends() == ["auto", "cpu", "reference", "torch_scatter", "triton"]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"message": "mull"}, ConfigError, "did you mean 'mul'"),
        ({"reduce": "avg"}, ConfigError, "valid: max, mean, min, pna, sum"),
        ({"rel": None}, ValueError, "needs rel"),
        ({"rel": torch.randn(5, 4)}, ValueError, "rel width 4"),
        ({"rel": torch.randn(2, 6)}, ValueError, "graph has 5 relations"),
        ({"x": torch.randn(6, 6)}, ValueError, "graph has 7 nodes"),
        ({"edge_weight": torch.ones(3)}, ValueError, r"edge_weight must have shape \[11\]"),
        ({"edge_weight": torch.ones(11, dtype=torch.float64)}, ValueError, "must match x"),
        ({"rel": torch.randn(5, 3), "x": torch.randn(7, 6), "message": "rotate"}, ValueError, "even"),
        ({"rel": torch.randn(5, 3), "batch_size": 3}, ValueError, "batch_size 2"),
        ({"batch_size": 4}, ValueError, "not a multiple of batch_size 4"),
    ],
)
def test_spec_errors(kwargs, error, match):
    args = {"graph": TINY_GRAPHS["mixed"], "x": torch.randn(7, 6), "rel": torch.randn(5, 6)}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        rspmm(**args)


def test_names_are_listed():
    assert list_messages() == ["add", "distmult", "mul", "none", "rotate", "transe"]
    assert list_reductions() == ["max", "mean", "min", "pna", "sum"]


def test_import_compiles_nothing():
    code = (
        "import graphlearn.ops, torch\n"
        "from graphlearn.ops.cpu import _build\n"
        "assert _build._module is None and _build._error is None\n"
        "g = graphlearn.ops.RelGraph.build(torch.tensor([[0], [1]]))\n"
        "graphlearn.ops.rspmm(g, torch.ones(2, 3), message='none', backend='reference')\n"
        "assert _build._module is None and _build._error is None\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("reduce", ["max", "min", "pna"])
def test_cpu_inference_matches_training_forward(cpu_kernel, reduce):
    # Without autograd the kernel skips the arg-max bookkeeping; the values are the same.
    graph = TINY_GRAPHS["random"]
    x, rel, w = _inputs(graph, 2, 6, True, torch.float32)
    with torch.no_grad():
        fast = rspmm(graph, x, rel, w, message="rotate", reduce=reduce, backend="cpu")
    full = rspmm(graph, x, rel, w, message="rotate", reduce=reduce, backend="cpu")
    assert torch.equal(fast, full.detach())


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("reduce", ["max", "pna"])
@pytest.mark.parametrize("message", ["mul", "rotate"])
def test_cpu_feature_tiles(cpu_kernel, message, reduce, shared):
    # Blocks of 300 features: the max/min/pna forward walks them one tile at a time.
    graph = TINY_GRAPHS["random"]
    x, rel, w = _inputs(graph, 3, 300, shared, torch.float64)
    want = _run("reference", graph, x, rel, w, message, reduce, 3)
    got = _run("cpu", graph, x, rel, w, message, reduce, 3)
    _assert_match(got, want, torch.float64, f"{message}/{reduce}/shared={shared}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cpu_pna_variance_does_not_cancel(cpu_kernel, dtype):
    check_offset_pna("cpu", dtype)


@pytest.mark.parametrize("layout", [(4, 4), (8, 2), (2, 8), (16, 1), (3, 4), (5, 6)],
                         ids=lambda l: f"B{l[0]}d{l[1]}")
@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_cpu_shared_relation_mul_backward(cpu_kernel, reduce, layout):
    """The shared-relation ``mul`` backward (the sheaf layer's diagonal blocks): block
    widths that divide 16 with ``D`` a multiple of 16 (lane-folded), and others."""
    batch, block = layout
    graph = TINY_GRAPHS["random"]
    x, rel, w = _inputs(graph, batch, block, True, torch.float64)
    want = _run("reference", graph, x, rel, w, "mul", reduce, batch)
    got = _run("cpu", graph, x, rel, w, "mul", reduce, batch)
    _assert_match(got, want, torch.float64, f"mul/{reduce}/B{batch}d{block}")
