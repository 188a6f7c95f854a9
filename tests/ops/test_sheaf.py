"""The fused sheaf-Laplacian kernels (graphlearn.ops.sheaf) against plain PyTorch."""

from __future__ import annotations

import pytest
import torch

from graphlearn.nn.sheaf import sheaf_graph, undirected_edge_index
from graphlearn.ops import BackendUnavailableError
from graphlearn.ops import sheaf as sheaf_ops
from graphlearn.ops.sheaf import block_degree, block_laplacian

F64 = torch.float64


def random_graph(num_nodes: int, num_edges: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return undirected_edge_index(torch.randint(0, num_nodes, (2, num_edges), generator=gen),
                                 num_nodes)


def test_incidence_nodes_follow_the_edge_order():
    # edges (row, col) = (2, 0), (1, 3), (0, 3): incidence k < E is row_k's, E + k col_k's
    edges = torch.tensor([[2, 1, 0], [0, 3, 3]])
    node, other = sheaf_ops.incidence_nodes(sheaf_graph(edges, 4))
    assert node.tolist() == [2, 1, 0, 0, 3, 3]
    assert other.tolist() == [0, 3, 3, 2, 1, 0]


def test_one_edge_by_hand():
    # d = 1, one edge 0 - 1 with maps a, b: the coboundary is r = a x0 - b x1 and
    # L_F x = [a r, -b r]; node 2 has no edge; D = [a², b², 0]
    edges = torch.tensor([[0], [1]])
    graph = sheaf_graph(edges, 3)
    a, b = 2.0, -3.0
    maps = torch.tensor([a, b], dtype=F64).view(1, 2, 1, 1)
    x = torch.tensor([5.0, 7.0, 11.0], dtype=F64).view(3, 1, 1)
    r = a * 5.0 - b * 7.0
    for backend in ("reference", "auto"):
        out = block_laplacian(maps, x, graph, backend)
        assert out.flatten().tolist() == [a * r, -b * r, 0.0]
        assert block_degree(maps, graph, backend).flatten().tolist() == [a * a, b * b, 0.0]


def _outputs_and_grads(fn, inputs, weight):
    inputs = [t.detach().clone().requires_grad_() for t in inputs]
    out = fn(*inputs)
    grads = torch.autograd.grad((out * weight).sum(), inputs)
    return out, *grads


# (8, 8), (4, 8), (4, 64): compile-time shapes of the kernel; (3, 5), (16, 4), (1, 1): generic
@pytest.mark.parametrize("d,f", [(8, 8), (4, 8), (4, 64), (3, 5), (16, 4), (1, 1)])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("partials", [True, False], ids=["partials", "csr"])
def test_laplacian_matches_the_reference_with_gradients(cpu_kernel, monkeypatch, d, f, dtype,
                                                        partials):
    if not partials:  # force the CSR path of large graphs
        monkeypatch.setattr(sheaf_ops, "PARTIAL_BUDGET_BYTES", 0)
    num_nodes = 30  # ids 25..29 have no edge
    edges = random_graph(25, 90, seed=d * 10 + f)
    graph = sheaf_graph(edges, num_nodes)
    gen = torch.Generator().manual_seed(1)
    maps = torch.randn(edges.size(1), 2, d, d, generator=gen, dtype=dtype)
    x = torch.randn(num_nodes, d, f, generator=gen, dtype=dtype)
    weight = torch.randn(num_nodes, d, f, generator=gen, dtype=dtype)
    tol = {"atol": 1e-12, "rtol": 1e-10} if dtype == F64 else {"atol": 1e-4, "rtol": 1e-4}
    results = [_outputs_and_grads(lambda m, v, b=backend: block_laplacian(m, v, graph, b),
                                  (maps, x), weight) for backend in ("reference", "cpu")]
    for ours, reference in zip(results[1], results[0]):
        torch.testing.assert_close(ours, reference, **tol)
    assert results[1][0][25:].abs().max() == 0 and results[1][2][25:].abs().max() == 0


@pytest.mark.parametrize("d", [8, 3, 1])
def test_degree_matches_the_reference_with_gradients(cpu_kernel, d):
    num_nodes = 20
    edges = random_graph(16, 60, seed=d)
    graph = sheaf_graph(edges, num_nodes)
    gen = torch.Generator().manual_seed(2)
    maps = torch.randn(edges.size(1), 2, d, d, generator=gen, dtype=F64)
    weight = torch.randn(num_nodes, d, d, generator=gen, dtype=F64)  # not symmetric
    results = [_outputs_and_grads(lambda m, b=backend: block_degree(m, graph, b), (maps,),
                                  weight) for backend in ("reference", "cpu")]
    for ours, reference in zip(results[1], results[0]):
        torch.testing.assert_close(ours, reference, atol=1e-12, rtol=1e-10)
    # D_v = sum of F^T F over v's incidences, by hand for one node
    v = int(edges[0, 0])
    expected = sum(maps[e, side].T @ maps[e, side] for side in (0, 1)
                   for e in range(edges.size(1)) if int(edges[side, e]) == v)
    torch.testing.assert_close(results[1][0][v], expected)


@pytest.mark.parametrize("partials", [True, False], ids=["partials", "csr"])
def test_gradcheck(cpu_kernel, monkeypatch, partials):
    if not partials:
        monkeypatch.setattr(sheaf_ops, "PARTIAL_BUDGET_BYTES", 0)
    edges = random_graph(6, 10, seed=3)
    graph = sheaf_graph(edges, 7)
    gen = torch.Generator().manual_seed(4)
    maps = torch.randn(edges.size(1), 2, 3, 3, generator=gen, dtype=F64, requires_grad=True)
    x = torch.randn(7, 3, 2, generator=gen, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda m, v: block_laplacian(m, v, graph, "cpu"), (maps, x))
    assert torch.autograd.gradcheck(lambda m: block_degree(m, graph, "cpu"), (maps,))


def test_gradient_to_one_input_only(cpu_kernel):
    edges = random_graph(8, 20, seed=5)
    graph = sheaf_graph(edges, 8)
    maps = torch.randn(edges.size(1), 2, 4, 4, dtype=F64)
    x = torch.randn(8, 4, 3, dtype=F64)
    for grad_of in ("maps", "x"):
        m = maps.clone().requires_grad_(grad_of == "maps")
        v = x.clone().requires_grad_(grad_of == "x")
        ref_m, ref_v = maps.clone().requires_grad_(grad_of == "maps"), \
            x.clone().requires_grad_(grad_of == "x")
        (block_laplacian(m, v, graph, "cpu") ** 2).sum().backward()
        (block_laplacian(ref_m, ref_v, graph, "reference") ** 2).sum().backward()
        ours, reference = (m.grad, ref_m.grad) if grad_of == "maps" else (v.grad, ref_v.grad)
        torch.testing.assert_close(ours, reference)


def test_non_contiguous_maps_and_no_edges(cpu_kernel):
    edges = random_graph(8, 20, seed=6)
    graph = sheaf_graph(edges, 8)
    maps = torch.randn(2, edges.size(1), 3, 3, dtype=F64).transpose(0, 1)  # a view
    x = torch.randn(8, 3, 2, dtype=F64)
    torch.testing.assert_close(block_laplacian(maps, x, graph, "cpu"),
                               block_laplacian(maps, x, graph, "reference"))
    empty = sheaf_graph(torch.zeros(2, 0, dtype=torch.long), 8)
    none = torch.zeros(0, 2, 3, 3, dtype=F64)
    assert block_laplacian(none, x, empty, "cpu").abs().max() == 0
    assert block_degree(none, empty, "cpu").shape == (8, 3, 3)


def test_bad_input_errors():
    edges = random_graph(8, 20, seed=7)
    graph = sheaf_graph(edges, 8)
    maps = torch.randn(edges.size(1), 2, 3, 3)
    with pytest.raises(ValueError, match=r"maps must be \[E, 2, d, d\]"):
        block_laplacian(maps[:, 0], torch.randn(8, 3, 2), graph)
    with pytest.raises(ValueError, match="maps are for"):
        block_laplacian(maps[1:], torch.randn(8, 3, 2), graph)
    with pytest.raises(ValueError, match=r"x must be \[N, d, f\] = \[8, 3, f\]"):
        block_laplacian(maps, torch.randn(8, 2, 2), graph)
    with pytest.raises(ValueError, match="backend must be one of auto, reference, cpu"):
        block_laplacian(maps, torch.randn(8, 3, 2), graph, backend="triton")
    with pytest.raises(BackendUnavailableError, match="float32 and float64"):
        block_laplacian(maps.half(), torch.randn(8, 3, 2).half(), graph, backend="cpu")


# -- Householder products ---------------------------------------------------------------------


@pytest.mark.parametrize("k,d", [(8, 8), (3, 5), (5, 5), (2, 16), (1, 1), (0, 4)])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_householder_matches_the_sequential_reference_with_gradients(cpu_kernel, k, d, dtype):
    from graphlearn.nn.sheaf import householder_product

    gen = torch.Generator().manual_seed(k * 17 + d)
    # batch dims (2, 3); vectors scaled from 0.1 to 10 (the product is scale-free per v)
    scale = torch.logspace(-1, 1, 6, dtype=dtype).view(2, 3, 1, 1)
    vectors = torch.randn(2, 3, k, d, generator=gen, dtype=dtype) * scale
    weight = torch.randn(2, 3, d, d, generator=gen, dtype=dtype)
    tol = {"atol": 1e-12, "rtol": 1e-10} if dtype == F64 else {"atol": 1e-5, "rtol": 1e-4}
    if k == 0:  # no reflection: the identity, no gradient to compare
        torch.testing.assert_close(householder_product(vectors, "cpu"),
                                   torch.eye(d, dtype=dtype).expand(2, 3, d, d))
        return
    results = [_outputs_and_grads(lambda v, m=method: householder_product(v, m), (vectors,),
                                  weight) for method in ("sequential", "cpu")]
    for ours, reference in zip(results[1], results[0]):
        torch.testing.assert_close(ours, reference, **tol)
    q = results[1][0]
    eye = torch.eye(d, dtype=dtype).expand_as(q)
    torch.testing.assert_close(q.transpose(-1, -2) @ q, eye, **tol)


def test_householder_gradcheck_and_auto(cpu_kernel):
    from graphlearn.nn.sheaf import householder_product

    vectors = torch.randn(3, 4, 4, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: householder_product(v, "cpu"), (vectors,))
    torch.testing.assert_close(householder_product(vectors, "auto"),
                               householder_product(vectors, "wy"))
    with pytest.raises(ValueError, match="unknown method 'qr'"):
        householder_product(vectors, "qr")


@pytest.mark.parametrize("d", [8, 4, 3, 16, 1])
@pytest.mark.parametrize("skew", [True, False], ids=["skew", "general"])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_matrix_exp_matches_torch_with_gradients(cpu_kernel, d, skew, dtype):
    from graphlearn.nn.sheaf import matrix_exp

    gen = torch.Generator().manual_seed(d * 2 + skew)
    # batch dims (2, 4); norms from 0 (the identity) to about 40 * d (5+ squarings)
    scale = torch.tensor([0.0, 0.05, 0.5, 1.0, 2.0, 5.0, 10.0, 40.0], dtype=F64).view(2, 4, 1, 1)
    a = torch.randn(2, 4, d, d, generator=gen, dtype=F64) * scale
    if skew:
        a = a - a.transpose(-1, -2)
    else:  # exp grows as e^|A|: smaller norms keep float32 finite
        a = a / 10
    weight = torch.randn(2, 4, d, d, generator=gen, dtype=F64)
    # references in float64 (torch's Pade); our float32 against them, relative to size
    reference = _outputs_and_grads(lambda x: matrix_exp(x, "torch"), (a,), weight)
    ours = _outputs_and_grads(lambda x: matrix_exp(x, "cpu"), (a.to(dtype),), weight.to(dtype))
    for name, got, want in zip(["exp", "grad"], ours, reference):
        assert got.dtype == dtype
        size = want.abs().amax(dim=(-1, -2), keepdim=True).clamp_min(1.0)
        error = ((got.double() - want).abs() / size).max().item()
        assert error < (1e-12 if dtype == F64 else 2e-5), f"{name}: {error:.3g}"
    if skew and dtype == torch.float32:  # rotations, as orthogonal as torch's own in float32
        def off_orthogonal(q):
            return (q.transpose(-1, -2) @ q - torch.eye(d)).abs().max().item()

        torch_error = off_orthogonal(matrix_exp(a.float(), "torch"))
        assert off_orthogonal(ours[0]) <= max(1e-5, 2 * torch_error)


def test_matrix_exp_gradcheck_auto_and_errors(cpu_kernel):
    from graphlearn.nn.sheaf import matrix_exp

    a = (torch.randn(3, 4, 4, dtype=F64) * 3).requires_grad_()  # some squarings
    assert torch.autograd.gradcheck(lambda x: matrix_exp(x, "cpu"), (a,))
    # the Taylor reference differs only in its one power of two for the whole batch
    torch.testing.assert_close(matrix_exp(a, "auto"), matrix_exp(a, "taylor"))
    assert matrix_exp(torch.zeros(0, 3, 3), "cpu").shape == (0, 3, 3)
    with pytest.raises(ValueError, match=r"must be \[\.\.\., d, d\]"):
        sheaf_ops.matrix_exp_cpu(torch.zeros(2, 3, 4), 14)
    with pytest.raises(ValueError, match="theta must be > 0"):
        sheaf_ops.matrix_exp_cpu(torch.zeros(2, 3, 3), 8, theta=0.0)
    with pytest.raises(ValueError, match="unknown method 'pade'"):
        matrix_exp(a, "pade")


@pytest.mark.parametrize("partials", [True, False], ids=["partials", "csr"])
def test_several_threads_sum_the_same(cpu_kernel, monkeypatch, partials):
    # more edges and nodes than one chunk (512 edges, 32 nodes): every thread writes
    # its own partial (or its own nodes), and the result does not depend on how many
    if not partials:
        monkeypatch.setattr(sheaf_ops, "PARTIAL_BUDGET_BYTES", 0)
    edges = random_graph(400, 4000, seed=8)
    graph = sheaf_graph(edges, 400)
    gen = torch.Generator().manual_seed(9)
    maps = torch.randn(edges.size(1), 2, 2, 2, generator=gen, dtype=F64)
    x = torch.randn(400, 2, 3, generator=gen, dtype=F64)
    weight = torch.randn(400, 2, 3, generator=gen, dtype=F64)
    reference = _outputs_and_grads(lambda m, v: block_laplacian(m, v, graph, "reference"),
                                   (maps, x), weight)
    threads = torch.get_num_threads()
    try:
        for count in (1, 2, 4):
            torch.set_num_threads(count)
            ours = _outputs_and_grads(lambda m, v: block_laplacian(m, v, graph, "cpu"),
                                      (maps, x), weight)
            for a, b in zip(ours, reference):
                torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-10)
            torch.testing.assert_close(block_degree(maps, graph, "cpu"),
                                       block_degree(maps, graph, "reference"))
            vectors = maps.reshape(-1, 2, 2)
            from graphlearn.nn.sheaf import householder_product
            torch.testing.assert_close(householder_product(vectors, "cpu"),
                                       householder_product(vectors, "sequential"))
    finally:
        torch.set_num_threads(threads)


def test_auto_warns_once_when_it_falls_back_on_cpu():
    edges = random_graph(8, 20, seed=10)
    graph = sheaf_graph(edges, 8)
    maps = torch.randn(edges.size(1), 2, 3, 3, dtype=F64)
    x = torch.randn(8, 3, 2, dtype=torch.float32)
    with pytest.warns(RuntimeWarning, match="sheaf ops: using the reference backend"):
        out = block_laplacian(maps.bfloat16(), x.bfloat16(), graph, "auto")  # no bf16 kernel
    assert out.dtype == torch.bfloat16
    with pytest.raises(BackendUnavailableError, match="must share a dtype"):
        block_laplacian(maps, x, graph, "cpu")
