"""The ``torch_scatter`` backend against the reference, on outputs and all gradients.

``torch_scatter`` is optional: the tests of the real package are skipped when it is
absent. The backend's own logic (first-edge max/min, PNA layout, empty rows) is
also checked with a small pure-PyTorch stand-in for the two functions it calls,
``segment_csr`` and ``gather_csr``, following torch_scatter's documented
semantics (a segment without elements reduces to 0).
"""

from __future__ import annotations

import sys
import types

import pytest
import torch

from graphlearn.ops import BackendUnavailableError, RelGraph, rspmm
from graphlearn.ops.dispatch import resolve_backend
from graphlearn.ops.scatter import rspmm_torch_scatter
from graphlearn.ops.spec import resolve_spec
from graphlearn.typing import with_torch_scatter

from .conftest import TINY_GRAPHS, check_offset_pna

MESSAGES = ["none", "add", "mul", "rotate"]
REDUCTIONS = ["sum", "mean", "max", "min", "pna"]
needs_torch_scatter = pytest.mark.skipif(not with_torch_scatter(),
                                         reason="torch_scatter is not installed")


def _segment_csr(src, indptr, reduce="sum"):
    counts = indptr.diff()
    rows = torch.repeat_interleave(torch.arange(counts.numel(), device=src.device), counts)
    out = src.new_zeros(counts.numel(), *src.shape[1:])
    if reduce in ("sum", "mean"):
        out = out.index_add(0, rows, src)
        return out / counts.clamp(min=1).view(-1, 1) if reduce == "mean" else out
    index = rows.view(-1, 1).expand_as(src)
    return out.scatter_reduce(0, index, src, "amax" if reduce == "max" else "amin",
                              include_self=False)


def _gather_csr(src, indptr):
    return src.repeat_interleave(indptr.diff(), dim=0)


STAND_IN = types.SimpleNamespace(segment_csr=_segment_csr, gather_csr=_gather_csr)


def _run(fn, graph, message, reduce, batch=2, block=6, shared=False, device="cpu"):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(graph.num_nodes, batch * block, generator=gen, dtype=torch.float64)
    rel = torch.randn(graph.num_relations, block if shared else batch * block, generator=gen,
                      dtype=torch.float64)
    w = torch.rand(graph.num_edges, generator=gen, dtype=torch.float64) + 0.5
    x, rel, w = (t.to(device).requires_grad_() for t in (x, rel, w))
    graph = graph.to(device)
    out = fn(graph, x, rel, w, message, reduce, batch)
    grad_out = torch.randn(out.shape, generator=gen, dtype=out.dtype).to(device)
    grads = torch.autograd.grad(out, (x, rel, w), grad_out, allow_unused=True)
    return [out.detach()] + [torch.zeros_like(t) if g is None else g
                             for g, t in zip(grads, (x, rel, w))]


def _by_name(backend):
    def fn(graph, x, rel, w, message, reduce, batch):
        return rspmm(graph, x, rel, w, message=message, reduce=reduce, backend=backend,
                     batch_size=batch)
    return fn


def _direct(graph, x, rel, w, message, reduce, batch):
    spec = resolve_spec(graph, x, rel, w, message, reduce, batch)
    return rspmm_torch_scatter(graph, x, rel if spec.message.uses_rel else None, w, spec)


def _assert_match(got, want, what):
    for name, a, b in zip(["out", "grad_x", "grad_rel", "grad_edge_weight"], got, want):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-10), (
            f"{what}: {name} differs by {(a - b).abs().max().item():.3g}"
        )


@pytest.mark.parametrize("graph_name", ["mixed", "no_edges"])
@pytest.mark.parametrize("reduce", REDUCTIONS)
@pytest.mark.parametrize("message", MESSAGES)
def test_backend_logic_with_stand_in(monkeypatch, message, reduce, graph_name):
    monkeypatch.setitem(sys.modules, "torch_scatter", STAND_IN)
    graph = TINY_GRAPHS[graph_name]
    want = _run(_by_name("reference"), graph, message, reduce)
    got = _run(_direct, graph, message, reduce)
    _assert_match(got, want, f"{message}/{reduce}/{graph_name}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_pna_variance_does_not_cancel_with_stand_in(monkeypatch, dtype):
    monkeypatch.setitem(sys.modules, "torch_scatter", STAND_IN)
    check_offset_pna(lambda graph, x: _direct(graph, x, None, None, "none", "pna", 1), dtype)


@needs_torch_scatter
@pytest.mark.parametrize("device", ["cpu", "cuda"])
@pytest.mark.parametrize("reduce", REDUCTIONS)
@pytest.mark.parametrize("message", MESSAGES)
def test_matches_reference(message, reduce, device):
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    for name in sorted(TINY_GRAPHS):
        want = _run(_by_name("reference"), TINY_GRAPHS[name], message, reduce, device=device)
        got = _run(_by_name("torch_scatter"), TINY_GRAPHS[name], message, reduce, device=device)
        _assert_match(got, want, f"{message}/{reduce}/{name}")


@pytest.mark.skipif(with_torch_scatter(), reason="torch_scatter is installed")
def test_unavailable_says_why():
    with pytest.raises(BackendUnavailableError, match="torch_scatter is not installed"):
        rspmm(TINY_GRAPHS["mixed"], torch.randn(7, 6), message="none", backend="torch_scatter")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_auto_never_picks_it():
    x = torch.randn(3, 4)
    graph = RelGraph.build(torch.tensor([[0], [1]]), num_nodes=3)
    spec = resolve_spec(graph, x, None, None, "none", "sum")
    assert resolve_backend("auto", x, spec).name in ("cpu", "reference")
