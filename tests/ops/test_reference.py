"""Hand-checked examples for the reference (the specification of every backend)."""

from __future__ import annotations

import math

import pytest
import torch

from graphlearn.ops import DEFAULT_PNA_EPS, RelGraph, rspmm

from .conftest import TINY_GRAPHS, check_offset_pna

# 4 nodes, 2 relations. e0: 0->1 r0, e1: 2->1 r1, e2: 3->1 r0, e3: 1->2 r1,
# e4: 2->2 r0 (self-loop), e5: 0->3 r1 (node 3, the highest id, receives an edge).
# Node 0 has no in-edges.
EDGES = torch.tensor([[0, 2, 3, 1, 2, 0], [1, 1, 1, 2, 2, 3]])
TYPES = torch.tensor([0, 1, 0, 1, 0, 1])
X = torch.tensor([[1.0, 2.0], [3.0, -1.0], [0.5, 4.0], [-2.0, 1.0]], dtype=torch.float64)
REL = torch.tensor([[2.0, 1.0], [-1.0, 3.0]], dtype=torch.float64)
# mul messages: e0 [2, 2], e1 [-0.5, 12], e2 [-4, 1], e3 [-3, -3], e4 [1, 4], e5 [-1, 6]

EXPECTED = {
    ("mul", "sum"): [[0, 0], [-2.5, 15], [-2, 1], [-1, 6]],
    ("mul", "mean"): [[0, 0], [-2.5 / 3, 5], [-1, 0.5], [-1, 6]],
    ("mul", "max"): [[0, 0], [2, 12], [1, 4], [-1, 6]],
    ("mul", "min"): [[0, 0], [-4, 1], [-3, -3], [-1, 6]],
    # add: e0 [3, 3], e1 [-0.5, 7], e2 [0, 2], e3 [2, 2], e4 [2.5, 5], e5 [0, 5]
    ("add", "sum"): [[0, 0], [2.5, 12], [4.5, 7], [0, 5]],
    # rotate (re, im): e0 (1+2i)(2+i) = 5i, e1 (0.5+4i)(-1+3i) = -12.5-2.5i,
    # e2 (-2+i)(2+i) = -5, e3 (3-i)(-1+3i) = 10i, e4 (0.5+4i)(2+i) = -3+8.5i,
    # e5 (1+2i)(-1+3i) = -7+i
    ("rotate", "sum"): [[0, 0], [-17.5, 2.5], [-3, 18.5], [-7, 1]],
    ("none", "sum"): [[0, 0], [-0.5, 7], [3.5, 3], [1, 2]],
}


@pytest.fixture
def graph():
    return RelGraph.build(EDGES, TYPES, num_nodes=4)


@pytest.mark.parametrize("message, reduce", sorted(EXPECTED))
def test_hand_checked(graph, message, reduce):
    out = rspmm(graph, X, REL, message=message, reduce=reduce, backend="reference")
    assert torch.allclose(out, torch.tensor(EXPECTED[message, reduce], dtype=torch.float64))


def test_edge_weight_multiplies_message(graph):
    w = torch.tensor([1.0, 2.0, 0.5, 1.0, -1.0, 3.0], dtype=torch.float64)
    out = rspmm(graph, X, REL, w, message="mul", reduce="sum", backend="reference")
    expected = [[0, 0], [-1, 26.5], [-4, -7], [-3, 18]]
    assert torch.allclose(out, torch.tensor(expected, dtype=torch.float64))


def test_pna_statistics_and_layout(graph):
    eps = DEFAULT_PNA_EPS
    out = rspmm(graph, X, REL, message="mul", reduce="pna", backend="reference")
    assert out.shape == (4, 8)  # [mean | max | min | std]
    node1 = [-2.5 / 3, 5, 2, 12, -4, 1,
             math.sqrt(20.25 / 3 - (2.5 / 3) ** 2 + eps), math.sqrt(149 / 3 - 25 + eps)]
    node2 = [-1, 0.5, 1, 4, -3, -3, math.sqrt(4 + eps), math.sqrt(12.25 + eps)]
    node3 = [-1, 6, -1, 6, -1, 6, math.sqrt(eps), math.sqrt(eps)]  # one edge: variance 0
    expected = torch.tensor([[0] * 8, node1, node2, node3], dtype=torch.float64)
    assert torch.allclose(out, expected)


def test_pna_batch_blocks(graph):
    # B = 2 queries with shared rel: each query's block is its own [mean|max|min|std].
    x2 = torch.cat([X, 2 * X], dim=1)
    out = rspmm(graph, x2, REL, message="mul", reduce="pna", backend="reference")
    one = rspmm(graph, X, REL, message="mul", reduce="pna", backend="reference")
    two = rspmm(graph, 2 * X, REL, message="mul", reduce="pna", backend="reference")
    assert out.shape == (4, 16)
    assert torch.allclose(out[:, :8], one) and torch.allclose(out[:, 8:], two)


def test_max_gradient_goes_to_first_tied_edge():
    # Two identical edges 0 -> 1 (same relation): the max ties, the first edge gets it all.
    g = RelGraph.build(torch.tensor([[0, 0], [1, 1]]), torch.tensor([0, 0]), num_nodes=2)
    x = torch.tensor([[1.0, -2.0], [0.0, 0.0]], requires_grad=True)
    rel = torch.tensor([[3.0, 1.0]])
    w = torch.ones(2, requires_grad=True)
    out = rspmm(g, x, rel, w, message="mul", reduce="max", backend="reference")
    out.sum().backward()
    assert w.grad.tolist() == [1.0, 0.0]  # d/dw0 = sum(rel * x0) = 3 - 2
    assert x.grad[0].tolist() == [3.0, 1.0]


def test_no_in_edges_get_zero_and_no_gradient():
    g = TINY_GRAPHS["mixed"]
    x = torch.randn(7, 4, dtype=torch.float64, requires_grad=True)
    rel = torch.randn(5, 4, dtype=torch.float64)
    for reduce in ("sum", "mean", "max", "min", "pna"):
        out = rspmm(g, x, rel, message="mul", reduce=reduce, backend="reference")
        assert out[0].abs().sum() == 0 and out[5].abs().sum() == 0
        (gx,) = torch.autograd.grad(out[[0, 5]].sum(), x)
        assert gx.abs().sum() == 0


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min", "pna"])
@pytest.mark.parametrize("message", ["none", "add", "mul", "rotate"])
def test_reference_gradcheck(message, reduce):
    g = RelGraph.build(
        torch.tensor([[0, 1, 2, 3, 0, 2], [1, 1, 1, 2, 3, 3]]), torch.tensor([0, 1, 0, 1, 1, 0]),
        num_nodes=4,
    )
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    rel = torch.randn(2, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    w = torch.rand(6, dtype=torch.float64, generator=gen).add(0.5).requires_grad_()
    fn = lambda x, rel, w: rspmm(g, x, rel, w, message=message, reduce=reduce,
                                 backend="reference")
    assert torch.autograd.gradcheck(fn, (x, rel, w))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_pna_variance_does_not_cancel(dtype):
    check_offset_pna("reference", dtype)


def test_pna_variance_is_shifted_by_the_first_message():
    # Node 2 receives 1e8 + [0, 8, 16] in float32 (exact: the spacing at 1e8 is 8).
    # Shifted sums see the deviations 0, 8, 16 and give the variance 128/3 to float32
    # precision; E[m²] − E[m]² would round at the scale of E[m²] = 1e16 (about 1e9).
    src, dst = torch.tensor([0, 1, 3]), torch.tensor([2, 2, 2])
    graph = RelGraph.build(torch.stack([src, dst]), num_nodes=4)
    x = torch.tensor([1e8, 1e8 + 8, 0, 1e8 + 16], dtype=torch.float32).view(4, 1)
    assert x[3, 0].item() - x[0, 0].item() == 16
    out = rspmm(graph, x, message="none", reduce="pna", backend="reference")
    assert out[2, 3].item() == pytest.approx(math.sqrt(128 / 3 + DEFAULT_PNA_EPS), rel=1e-6)


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min", "pna"])
@pytest.mark.parametrize("message", ["none", "add", "mul", "rotate"])
def test_fewer_targets_equal_the_square_graph_cut_to_its_targets(message, reduce):
    """``num_targets = T`` computes the first ``T`` rows of the square graph's result
    (the rest receive nothing there), with the same gradients."""
    fewer = TINY_GRAPHS["fewer_targets"]
    edges, types = torch.empty_like(fewer.edge_index()), torch.empty_like(fewer.edge_type)
    edges[:, fewer.perm], types[fewer.perm] = fewer.edge_index(), fewer.edge_type  # input order
    square = RelGraph.build(edges, types, num_nodes=fewer.num_nodes,
                            num_relations=fewer.num_relations)
    assert (fewer.num_targets, square.num_targets) == (5, 9)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(9, 12, dtype=torch.float64, generator=gen, requires_grad=True)
    rel = torch.randn(3, 6, dtype=torch.float64, generator=gen, requires_grad=True)
    w = (torch.rand(fewer.num_edges, dtype=torch.float64, generator=gen) + 0.5).requires_grad_()
    out = rspmm(fewer, x, rel, w, message=message, reduce=reduce, backend="reference")
    full = rspmm(square, x, rel, w, message=message, reduce=reduce, backend="reference")
    assert out.shape[0] == 5 and full.shape[0] == 9
    assert full[5:].abs().sum() == 0  # the sources that only send
    torch.testing.assert_close(out, full[:5], rtol=0, atol=0)
    grad_out = torch.randn(out.shape, dtype=torch.float64, generator=gen)
    padded = torch.cat([grad_out, grad_out.new_zeros(4, out.shape[1])])
    inputs = (x, w) if message == "none" else (x, rel, w)
    got = torch.autograd.grad(out, inputs, grad_out)
    want = torch.autograd.grad(full, inputs, padded)
    for g, h in zip(got, want):
        assert g.abs().sum() > 0
        torch.testing.assert_close(g, h, rtol=0, atol=0)
