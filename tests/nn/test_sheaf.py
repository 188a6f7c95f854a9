"""Sheaf Laplacians, restriction maps and SheafConv against dense matrices built by hand."""

from __future__ import annotations

import os

import pytest
import torch

from graphlearn.errors import ConfigError
from graphlearn.nn.sheaf import (
    RESTRICTION_MAPS,
    HouseholderMaps,
    MatrixExpMaps,
    SheafConv,
    SheafLaplacian,
    diagonal_sheaf_laplacian,
    householder_product,
    list_restriction_maps,
    matrix_exp,
    resolve_restriction_maps,
    sheaf_graph,
    sheaf_laplacian,
    sym_matrix_power,
    undirected_edge_index,
)

F64 = torch.float64
D = 3  # stalk dimension
# 4 nodes: a triangle 0-1-2 and a pendant 2-3 (degrees 2, 2, 3, 1)
N = 4
EDGES = [(0, 1), (0, 2), (1, 2), (2, 3)]
EDGE_INDEX = torch.tensor(EDGES).t()
FAMILIES = list_restriction_maps()


@pytest.fixture(scope="module")
def _extensions_dir(request) -> str:
    """The fused CPU kernel builds into the same persistent folder as tests/ops uses."""
    return str(request.config.cache.mkdir("graphlearn_torch_extensions"))


@pytest.fixture(autouse=True)
def _persistent_extensions(_extensions_dir, monkeypatch):
    monkeypatch.setenv("GRAPHLEARN_EXTENSIONS_DIR", _extensions_dir)


def family_maps(name: str, seed: int = 0, d: int = D, compact: bool = False):
    """The family's module (float64) and its maps on EDGES from random features."""
    torch.manual_seed(seed)
    module = resolve_restriction_maps(name)(d, 2 * d).to(F64)
    x = torch.randn(N, 2 * d, dtype=F64)
    maps = module.compact(x, EDGE_INDEX) if compact else module(x, EDGE_INDEX)
    return module, maps


def block(v: int, d: int = D) -> slice:
    return slice(v * d, (v + 1) * d)


def laplacian_by_hand(maps: torch.Tensor, normalize: bool, num_nodes: int = N,
                      edges=EDGES) -> torch.Tensor:
    """L_F block by block, then (D+I)^{-1/2} L_F (D+I)^{-1/2} with an eigh per node."""
    d = maps.size(-1)
    lap = torch.zeros(num_nodes * d, num_nodes * d, dtype=maps.dtype)
    for e, (v, u) in enumerate(edges):
        f_v, f_u = maps[e, 0], maps[e, 1]
        lap[block(v, d), block(v, d)] += f_v.T @ f_v
        lap[block(u, d), block(u, d)] += f_u.T @ f_u
        lap[block(v, d), block(u, d)] -= f_v.T @ f_u
        lap[block(u, d), block(v, d)] -= f_u.T @ f_v
    if not normalize:
        return lap
    scale = torch.zeros_like(lap)
    for v in range(num_nodes):
        lam, vec = torch.linalg.eigh(lap[block(v, d), block(v, d)] + torch.eye(d, dtype=lap.dtype))
        scale[block(v, d), block(v, d)] = vec @ torch.diag(lam.rsqrt()) @ vec.T
    return scale @ lap @ scale


# -- the builder against the hand-built Laplacian --------------------------------------------


def test_registry_lists_every_family_and_rejects_unknown_names():
    assert FAMILIES == sorted(["diagonal", "general", "identity", "orthogonal",
                               "orthogonal_exp", "scalar"])
    assert resolve_restriction_maps("Orthogonal-Exp") is MatrixExpMaps
    assert RESTRICTION_MAPS.get("orthogonal") is HouseholderMaps
    with pytest.raises(ConfigError, match="unknown restriction map family 'diagonl'.*did you "
                                          "mean 'diagonal'.*valid: diagonal, general"):
        resolve_restriction_maps("diagonl")


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("name", FAMILIES)
def test_sparse_laplacian_equals_the_one_built_by_hand(name, normalize):
    module, maps = family_maps(name)
    assert maps.shape == (len(EDGES), 2, D, D)
    expected = laplacian_by_hand(maps, normalize)
    # the family's own flag, and the automatic check
    for flag in (module.diagonal_degree, None):
        lap = sheaf_laplacian(EDGE_INDEX, maps, N, D, normalize, flag)
        assert lap.diag.shape == (N, D, D) and lap.off.shape == (len(EDGES), D, D)
        assert torch.allclose(lap.to_dense(), expected, atol=1e-10)
    if module.diagonal:  # the compact form: blocks stored as their diagonals
        _, compact = family_maps(name, compact=True)
        assert torch.equal(torch.diag_embed(compact), maps)
        lap = sheaf_laplacian(EDGE_INDEX, compact, N, D, normalize)
        assert lap.diagonal_blocks and lap.off.shape == (len(EDGES), D)
        assert torch.allclose(lap.to_dense(), expected, atol=1e-12)


@pytest.mark.parametrize("name", FAMILIES)
def test_laplacian_is_symmetric_psd_with_normalised_spectrum_below_two(name):
    module, maps = family_maps(name, seed=1)
    for normalize in (True, False):
        dense = sheaf_laplacian(EDGE_INDEX, maps, N, D, normalize,
                                module.diagonal_degree).to_dense()
        assert torch.allclose(dense, dense.T, atol=1e-12)
        eigenvalues = torch.linalg.eigvalsh(dense)
        assert eigenvalues.min() >= -1e-6
        if normalize:
            assert eigenvalues.max() < 2.0


def test_general_maps_give_full_degree_blocks():
    _, maps = family_maps("general", seed=2)
    lap = sheaf_laplacian(EDGE_INDEX, maps, N, D)
    off_diagonal = lap.diag - torch.diag_embed(torch.diagonal(lap.diag, dim1=1, dim2=2))
    assert off_diagonal.abs().max() > 1e-3
    # the matrix normaliser is exercised, kept factored: (D_v + I)^{-1/2} per node
    assert lap.scale.shape == (N, D, D)
    expected = sym_matrix_power(lap.diag + torch.eye(D, dtype=F64), -0.5)
    assert torch.allclose(lap.scale, expected)
    assert (lap.scale - torch.diag_embed(torch.diagonal(lap.scale, dim1=1, dim2=2))
            ).abs().max() > 1e-3


def test_orthogonal_normaliser_is_elementwise_and_factored():
    _, maps = family_maps("orthogonal", seed=2)
    lap = sheaf_laplacian(EDGE_INDEX, maps, N, D, diagonal_degree=True)
    degree = torch.tensor([2.0, 2.0, 3.0, 1.0], dtype=F64)
    assert torch.allclose(lap.scale, (degree + 1).rsqrt().view(N, 1).expand(N, D))


@pytest.mark.parametrize("name", ["orthogonal", "orthogonal_exp"])
def test_factored_elementwise_normaliser_matches_the_matrix_one_with_gradients(name):
    # reference: the matrix normaliser (D_v + I)^{-1/2} by eigh, applied to every edge
    # block; on orthogonal maps D_v = deg(v) I, so both give the same operator, and
    # the same gradients w.r.t. the map learner (its perturbations stay orthogonal)
    module, _ = family_maps(name, seed=11)
    x = torch.randn(N, 2 * D, dtype=F64)
    signal = torch.randn(N, D, 4, dtype=F64)
    outputs, grads = [], []
    for flag in (True, False):
        module.zero_grad()
        lap = sheaf_laplacian(EDGE_INDEX, module(x, EDGE_INDEX), N, D, diagonal_degree=flag)
        assert (lap.scale.dim() == 2) == flag  # [N, d] factored, or [N, d, d]
        out = lap.apply(signal, backend="reference")
        (out * torch.linspace(-1, 1, out.numel(), dtype=F64).view_as(out)).sum().backward()
        outputs.append(out.detach())
        grads.append([p.grad.clone() for p in module.parameters()])
    assert torch.allclose(outputs[0], outputs[1], atol=1e-10)
    for fast, ref in zip(*grads):
        assert torch.allclose(fast, ref, atol=1e-8)


def test_laplacian_rejects_a_scale_of_the_wrong_shape():
    diag, off = torch.zeros(N, D), torch.zeros(len(EDGES), D)
    row, col = EDGE_INDEX
    with pytest.raises(ValueError, match=r"scale must be \[N, d\] = \[4, 3\]"):
        SheafLaplacian(diag, off, row, col, scale=torch.ones(N, D, D))  # diagonal blocks
    with pytest.raises(ValueError, match=r"scale must be"):
        SheafLaplacian(torch.zeros(N, D, D), torch.zeros(len(EDGES), D, D), row, col,
                       scale=torch.ones(N, 2))


def test_laplacian_needs_blocks_or_maps_of_matching_shape():
    row, col = EDGE_INDEX
    with pytest.raises(ValueError, match="give the off-diagonal blocks or the maps"):
        SheafLaplacian(torch.zeros(N, D, D), None, row, col)
    with pytest.raises(ValueError, match=r"maps must be \[E, 2, d, d\] with full blocks"):
        SheafLaplacian(torch.zeros(N, D, D), None, row, col,
                       maps=torch.zeros(len(EDGES), 2, D + 1, D + 1))
    with pytest.raises(ValueError, match=r"maps must be \[E, 2, d, d\] with full blocks"):
        SheafLaplacian(torch.zeros(N, D), None, row, col, maps=torch.zeros(len(EDGES), 2, D, D))


def test_isolated_node_has_zero_rows_and_finite_gradients():
    torch.manual_seed(3)
    maps = torch.randn(len(EDGES), 2, D, D, dtype=F64, requires_grad=True)
    lap = sheaf_laplacian(EDGE_INDEX, maps, N + 1, D)  # node 4 has no edge: D + I = I
    dense = lap.to_dense()
    assert dense[block(4)].abs().max() == 0 and dense[:, block(4)].abs().max() == 0
    assert torch.allclose(dense, laplacian_by_hand(maps.detach(), True, N + 1), atol=1e-10)
    (lap.apply(torch.randn(N + 1, D, 2, dtype=F64)) ** 2).sum().backward()
    assert torch.isfinite(maps.grad).all() and maps.grad.abs().sum() > 0


# -- identity maps: the graph Laplacian -------------------------------------------------------


def test_identity_maps_reduce_to_the_normalised_graph_laplacian_kron_identity():
    _, maps = family_maps("identity")
    adjacency = torch.zeros(N, N, dtype=F64)
    for v, u in EDGES:
        adjacency[v, u] = adjacency[u, v] = 1.0
    degree = adjacency.sum(1)  # [2, 2, 3, 1]
    scale = torch.diag((degree + 1).rsqrt())
    graph_laplacian = scale @ (torch.diag(degree) - adjacency) @ scale
    eye = torch.eye(D, dtype=F64)
    lap = sheaf_laplacian(EDGE_INDEX, maps, N, D)
    assert torch.allclose(lap.to_dense(), torch.kron(graph_laplacian, eye), atol=1e-12)
    # I - Δ is GCN's renormalised adjacency D~^{-1/2} (A + I) D~^{-1/2}, ⊗ I_d
    gcn = scale @ (adjacency + torch.eye(N, dtype=F64)) @ scale
    assert torch.allclose(torch.eye(N * D, dtype=F64) - lap.to_dense(), torch.kron(gcn, eye))
    assert torch.isclose(graph_laplacian[0, 2], torch.tensor(-1 / (3 ** 0.5 * 4 ** 0.5),
                                                            dtype=F64))


# -- orthogonal maps ------------------------------------------------------------------------


@pytest.mark.parametrize("name, d, determinant", [("orthogonal", 3, -1), ("orthogonal", 4, 1),
                                                  ("orthogonal_exp", 3, 1)])
def test_orthogonal_maps_are_orthogonal(name, d, determinant):
    torch.manual_seed(4)
    module = resolve_restriction_maps(name)(d, 8, map_activation="none")  # float32, unbounded
    maps = module(torch.randn(N, 8) * 3, EDGE_INDEX).reshape(-1, d, d)  # (2E, d, d)
    eye = torch.eye(d)
    assert (maps.transpose(1, 2) @ maps - eye).abs().max() < 1e-5
    assert (maps @ maps.transpose(1, 2) - eye).abs().max() < 1e-5
    assert torch.allclose(torch.linalg.det(maps), torch.full((maps.size(0),),
                                                             float(determinant)), atol=1e-4)
    assert not torch.allclose(maps, eye.expand_as(maps), atol=1e-2)  # not trivial


def test_householder_product_is_the_product_of_reflections():
    torch.manual_seed(5)
    vectors = torch.randn(2, 3, 4, dtype=F64)  # 2 products of 3 reflections in R^4
    expected = []
    for batch in vectors:
        out = torch.eye(4, dtype=F64)
        for v in batch:
            out = out @ (torch.eye(4, dtype=F64) - 2 * torch.outer(v, v) / (v @ v))
        expected.append(out)
    assert torch.allclose(householder_product(vectors), torch.stack(expected))
    assert torch.allclose(householder_product(vectors, method="sequential"),
                          torch.stack(expected))


@pytest.mark.parametrize("k, d", [(1, 3), (3, 4), (4, 4), (8, 8)])
def test_householder_wy_matches_sequential_values_and_gradients(k, d):
    torch.manual_seed(k * 10 + d)
    # mixed scales: unit-triangular vectors as the orthogonal family builds them, and
    # large free entries (tanh-free learners) that make V^T V ill-conditioned
    vectors = torch.randn(5, k, d, dtype=F64) * torch.tensor([0.1, 1.0, 10.0, 1.0, 3.0],
                                                            dtype=F64).view(5, 1, 1)
    vectors[:, :, :k] += torch.eye(k, dtype=F64)
    fast = vectors.clone().requires_grad_()
    slow = vectors.clone().requires_grad_()
    out_fast = householder_product(fast)
    out_slow = householder_product(slow, method="sequential")
    assert torch.allclose(out_fast, out_slow, atol=1e-10)
    weight = torch.randn_like(out_fast)
    (out_fast * weight).sum().backward()
    (out_slow * weight).sum().backward()
    assert torch.allclose(fast.grad, slow.grad, atol=1e-8)


@pytest.mark.parametrize("scale", [0.0, 0.1, 1.0, 20.0])
@pytest.mark.parametrize("skew", [True, False])
def test_taylor_matrix_exp_matches_torch_values_and_gradients(scale, skew):
    torch.manual_seed(int(scale * 10) + skew)
    a = torch.randn(6, 4, 4, dtype=F64) * scale
    if skew:
        a = a - a.mT
    fast, ref = a.clone().requires_grad_(), a.clone().requires_grad_()
    # the batched-product Taylor path by name: "auto" now takes the CPU kernel,
    # which tests/ops/test_sheaf.py compares with torch on its own
    out_fast, out_ref = matrix_exp(fast, method="taylor"), matrix_exp(ref, method="torch")
    assert torch.allclose(out_fast, out_ref, rtol=1e-10, atol=1e-10)
    weight = torch.randn_like(out_fast)
    (out_fast * weight).sum().backward()
    (out_ref * weight).sum().backward()
    assert torch.allclose(fast.grad, ref.grad, rtol=1e-8, atol=1e-8)
    if skew:  # a rotation, in single precision as orthogonal as torch's own
        rot, ref_rot = (matrix_exp(a.float(), method="taylor"),
                        matrix_exp(a.float(), method="torch"))
        error = (rot.mT @ rot - torch.eye(4)).abs().max()
        assert error <= max(1e-5, 2 * (ref_rot.mT @ ref_rot - torch.eye(4)).abs().max())


def test_matrix_exp_of_nothing_and_an_unknown_method():
    assert matrix_exp(torch.zeros(0, 3, 3)).shape == (0, 3, 3)
    assert torch.equal(matrix_exp(torch.zeros(2, 3, 3)), torch.eye(3).expand(2, 3, 3))
    with pytest.raises(ValueError, match="unknown method 'pade'.*taylor, torch"):
        matrix_exp(torch.ones(1, 2, 2), method="pade")


def test_householder_product_rejects_an_unknown_method():
    with pytest.raises(ValueError, match="unknown method 'qr'.*wy, sequential"):
        householder_product(torch.ones(1, 2), method="qr")


def test_orthogonal_degree_blocks_are_degree_times_identity():
    _, maps = family_maps("orthogonal", seed=6)
    lap = sheaf_laplacian(EDGE_INDEX, maps, N, D, normalize=False)
    degree = torch.tensor([2.0, 2.0, 3.0, 1.0], dtype=F64)
    assert torch.allclose(lap.diag, degree.view(N, 1, 1) * torch.eye(D, dtype=F64), atol=1e-12)


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("name", [n for n in FAMILIES
                                  if resolve_restriction_maps(n).orthonormal])
def test_orthonormal_degree_is_the_count_with_the_same_values_and_gradients(name, normalize):
    """``orthonormal=True`` counts the degree instead of summing ``FᵀF`` from the maps:
    the same Laplacian, and the same gradient (the summed degree's is zero up to
    rounding, since ``FᵀF = I`` for every parameter value)."""
    module, _ = family_maps(name, seed=8)
    x = torch.randn(N, 2 * D, dtype=F64)
    signal = torch.randn(N, D, 2, dtype=F64)
    results = []
    for orthonormal in (True, False):
        module.zero_grad()
        lap = sheaf_laplacian(EDGE_INDEX, module.compact(x, EDGE_INDEX), N, D, normalize,
                              module.diagonal_degree, backend="reference",
                              orthonormal=orthonormal)
        (lap.apply(signal, backend="reference") ** 2).sum().backward()
        results.append((lap.to_dense().detach(), module.linear.weight.grad.clone()))
    (dense, grad), (want, want_grad) = results
    torch.testing.assert_close(dense, want, atol=1e-12, rtol=0)
    torch.testing.assert_close(grad, want_grad, atol=1e-10, rtol=1e-9)
    assert grad.abs().sum() > 0


def test_only_orthogonal_families_claim_orthonormal_maps():
    for name in FAMILIES:
        module, maps = family_maps(name, seed=9)
        gram = maps.transpose(-1, -2) @ maps  # (E, 2, d, d)
        is_orthonormal = torch.allclose(gram, torch.eye(D, dtype=F64).expand_as(gram),
                                        atol=1e-12)
        assert module.orthonormal == (is_orthonormal and name != "identity"), name


# -- gradients and the block-sparse product ----------------------------------------------------


@pytest.mark.parametrize("name", [n for n in FAMILIES if n != "identity"])
def test_gradients_reach_the_map_parameters(name):
    module, _ = family_maps(name)
    x = torch.randn(N, 2 * D, dtype=F64)
    signal = torch.randn(N, D, 2, dtype=F64)
    lap = sheaf_laplacian(EDGE_INDEX, module.compact(x, EDGE_INDEX), N, D,
                          diagonal_degree=module.diagonal_degree)
    (lap.apply(signal, backend="reference") ** 2).sum().backward()
    for param in (module.linear.weight, module.linear.bias):
        assert param.grad is not None and torch.isfinite(param.grad).all()
        assert param.grad.abs().sum() > 0


def test_general_laplacian_passes_gradcheck():
    torch.manual_seed(7)
    maps = torch.randn(len(EDGES), 2, 2, 2, dtype=F64, requires_grad=True)
    signal = torch.randn(N, 2, 3, dtype=F64)

    def fn(m):
        return sheaf_laplacian(EDGE_INDEX, m, N, diagonal_degree=False).apply(signal)

    assert torch.autograd.gradcheck(fn, (maps,))


def test_matrix_power_gradient_is_finite_at_repeated_eigenvalues():
    eye = torch.eye(3, dtype=F64).repeat(2, 1, 1)
    spd = torch.randn(2, 3, 3, dtype=F64)
    for a in (eye, spd @ spd.transpose(1, 2) + eye):
        a = a.clone().requires_grad_()
        assert torch.autograd.gradcheck(lambda t: sym_matrix_power((t + t.mT) / 2, -0.5), (a,))
    assert torch.allclose(sym_matrix_power(4 * eye, -0.5), eye / 2)


@pytest.mark.parametrize("name", FAMILIES)
def test_apply_equals_the_dense_product(name):
    module, maps = family_maps(name, seed=8)
    signal = torch.randn(N, D, 5, dtype=F64)
    lap = sheaf_laplacian(EDGE_INDEX, maps, N, D, diagonal_degree=module.diagonal_degree)
    expected = (lap.to_dense() @ signal.reshape(N * D, 5)).view(N, D, 5)
    assert torch.allclose(lap.apply(signal, backend="reference"), expected)
    if module.diagonal:
        _, compact = family_maps(name, seed=8, compact=True)
        lap = sheaf_laplacian(EDGE_INDEX, compact, N, D)
        assert torch.allclose(lap.apply(signal, backend="reference"), expected)


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_rspmm_apply_matches_the_reference_with_gradients(backend):
    if backend == "cpu":
        from graphlearn.ops.cpu import cpu_extension_error, load_cpu_extension

        if load_cpu_extension() is None:
            pytest.skip(f"fused CPU kernel unavailable: {cpu_extension_error()}")
    torch.manual_seed(9)
    compact = torch.randn(len(EDGES), 2, D, dtype=F64, requires_grad=True)
    signal = torch.randn(N, D, 4, dtype=F64, requires_grad=True)
    weight = torch.randn(N, D, 4, dtype=F64)
    results = []
    for path in ("index_add", backend):
        lap = sheaf_laplacian(EDGE_INDEX, compact, N, D)
        out = lap.apply(signal, backend="reference" if path == "index_add" else backend)
        grads = torch.autograd.grad((out * weight).sum(), (compact, signal))
        results.append((out, *grads))
    for ours, theirs in zip(*results):
        assert torch.allclose(ours, theirs)


# -- edges -------------------------------------------------------------------------------------


def test_undirected_edge_index_merges_directions_duplicates_and_self_loops():
    both = torch.tensor([[1, 0, 2, 2, 0, 3, 2, 1], [0, 1, 0, 1, 2, 2, 2, 2]])
    edges = undirected_edge_index(both, N)
    assert edges.tolist() == [[0, 0, 1, 2], [1, 2, 2, 3]]
    assert torch.equal(undirected_edge_index(edges, N), edges)  # idempotent
    with pytest.raises(ValueError, match=r"node ids must be in \[0, 4\)"):
        undirected_edge_index(torch.tensor([[0], [4]]), N)


# -- SheafConv --------------------------------------------------------------------------------


@pytest.mark.parametrize("update", ["diffusion", "linear"])
@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_runs_forward_and_backward_in_sheaf_conv(name, update):
    torch.manual_seed(10)
    conv = SheafConv(D, 2, restriction=name, update=update)
    both = torch.cat([EDGE_INDEX, EDGE_INDEX.flip(0)], 1)  # PyG style: both directions
    x = torch.randn(N, D * 2, requires_grad=True)
    out = conv(x, both)
    assert out.shape == (N, D * 2)
    assert torch.allclose(conv(x.view(N, D, 2), both), out.view(N, D, 2))
    out.pow(2).sum().backward()
    assert torch.isfinite(x.grad).all()
    for param in conv.parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all()


def test_linear_update_is_x_minus_step_laplacian_x():
    torch.manual_seed(11)
    conv = SheafConv(D, 2, restriction="general", update="linear", step=0.5).double()
    x = torch.randn(N, D, 2, dtype=F64)
    lap = conv.laplacian(x, EDGE_INDEX).to_dense()
    assert torch.allclose(conv(x, EDGE_INDEX).view(N * D, 2),
                          x.view(N * D, 2) - 0.5 * lap @ x.view(N * D, 2))


def test_diffusion_update_by_hand():
    torch.manual_seed(12)
    conv = SheafConv(D, 2, restriction="diagonal").double()
    with torch.no_grad():
        conv.epsilon.copy_(torch.tensor([0.3, -0.2, 0.0]))
        conv.weight_left.copy_(torch.randn(D, D))
    x = torch.randn(N, D, 2, dtype=F64)
    lap = conv.laplacian(x, EDGE_INDEX).to_dense()
    w1 = torch.kron(torch.eye(N, dtype=F64), conv.weight_left)  # I_N ⊗ W_1
    z = torch.nn.functional.elu(lap @ w1 @ x.view(N * D, 2) @ conv.weight_right)
    eps = (1 + torch.tanh(conv.epsilon)).repeat(N).view(N * D, 1)
    assert torch.allclose(conv(x, EDGE_INDEX).view(N * D, 2), eps * x.view(N * D, 2) - z)


def test_identity_linear_layer_is_gcn_propagation():
    conv = SheafConv(2, 3, restriction="identity", update="linear").double()
    x = torch.randn(N, 2, 3, dtype=F64)
    # GCN: 1 / sqrt((deg_v + 1)(deg_u + 1)) per edge and self-loop; degrees [2, 2, 3, 1]
    deg = torch.tensor([2.0, 2.0, 3.0, 1.0], dtype=F64) + 1
    gcn = torch.diag(1 / deg)
    for v, u in EDGES:
        gcn[v, u] = gcn[u, v] = 1 / (deg[v] * deg[u]).sqrt()
    expected = torch.einsum("vu,udf->vdf", gcn, x)
    assert torch.allclose(conv(x, torch.cat([EDGE_INDEX, EDGE_INDEX.flip(0)], 1)), expected)


def test_shared_maps_come_from_the_caller():
    torch.manual_seed(13)
    conv = SheafConv(D, 2, update="linear", maps="shared").double()
    assert conv.restriction_maps is None and not list(conv.parameters())
    _, maps = family_maps("orthogonal", seed=13)
    x = torch.randn(N, D, 2, dtype=F64)
    lap = sheaf_laplacian(EDGE_INDEX, maps, N, D, diagonal_degree=True)
    expected = x - lap.apply(x)
    assert torch.allclose(conv(x, EDGE_INDEX, maps), expected)  # raw maps
    assert torch.allclose(conv(x, EDGE_INDEX, lap), expected)  # a built Laplacian
    with pytest.raises(ValueError, match="maps='shared' needs the maps"):
        conv(x, EDGE_INDEX)
    with pytest.raises(ValueError, match="maps='per_layer' learns its own maps"):
        SheafConv(D, 2)(x, EDGE_INDEX, maps)
    with pytest.raises(ValueError, match="restriction='general' is for maps='per_layer'"):
        SheafConv(D, 2, restriction="general", maps="shared")


def test_reset_parameters_and_bad_arguments():
    conv = SheafConv(D, 2, restriction="general")
    with torch.no_grad():
        conv.weight_left.zero_()
        conv.epsilon.fill_(1.0)
    conv.reset_parameters()
    assert torch.equal(conv.weight_left, torch.eye(D)) and conv.epsilon.abs().sum() == 0
    assert torch.allclose(conv.weight_right @ conv.weight_right.T, torch.eye(2), atol=1e-6)
    with pytest.raises(ValueError, match="unknown update 'heat'.*diffusion, linear"):
        SheafConv(D, 2, update="heat")
    with pytest.raises(ValueError, match="unknown maps 'global'"):
        SheafConv(D, 2, maps="global")
    with pytest.raises(ConfigError, match="unknown rspmm backend 'gpu'"):
        SheafConv(D, 2, backend="gpu")
    with pytest.raises(ValueError, match=r"x must be \[N, 6\] or \[N, 3, 2\]"):
        SheafConv(D, 2)(torch.randn(N, 5), EDGE_INDEX)


# -- the fast path of diagonal maps against the reference ------------------------------------

DIAGONAL_FAMILIES = [name for name in FAMILIES if resolve_restriction_maps(name).diagonal]


def test_incidence_maps_are_the_compact_maps_reordered():
    for name in DIAGONAL_FAMILIES:
        torch.manual_seed(20)
        module = resolve_restriction_maps(name)(D, 2 * D).to(F64)
        x = torch.randn(N, 2 * D, dtype=F64)
        graph = sheaf_graph(EDGE_INDEX, N)
        compact = module.compact(x, EDGE_INDEX)  # (E, 2, d)
        incidence = module.incidence_maps(x, graph)  # (2E, d): all row ◁ e, then all col ◁ e
        assert torch.equal(incidence, compact.transpose(0, 1).reshape(2 * len(EDGES), D))


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("backend", ["reference", "auto"])
def test_factored_diagonal_laplacian_equals_the_reference_with_gradients(normalize, backend):
    torch.manual_seed(21)
    compact = torch.randn(len(EDGES), 2, D, dtype=F64, requires_grad=True)
    signal = torch.randn(N + 1, D, 3, dtype=F64, requires_grad=True)  # node 4: isolated
    weight = torch.randn(N + 1, D, 3, dtype=F64)
    reference = sheaf_laplacian(EDGE_INDEX, compact, N + 1, D, normalize)
    graph = sheaf_graph(EDGE_INDEX, N + 1)
    factored = diagonal_sheaf_laplacian(compact.transpose(0, 1).reshape(-1, D), graph, normalize)
    assert (factored.scale is not None) == normalize
    assert torch.equal(factored.row, EDGE_INDEX[0]) and torch.equal(factored.col, EDGE_INDEX[1])
    assert torch.allclose(factored.to_dense(), reference.to_dense(), atol=1e-12)
    results = []
    for lap, path in ((reference, "reference"), (factored, backend)):
        out = lap.apply(signal, backend=path)
        results.append((out, *torch.autograd.grad((out * weight).sum(), (compact, signal))))
    for ours, theirs in zip(*results):
        assert torch.allclose(ours, theirs, atol=1e-12)


def test_fast_path_functions_pass_gradcheck():
    torch.manual_seed(22)
    graph = sheaf_graph(EDGE_INDEX, N + 1)
    maps = torch.randn(2 * len(EDGES), D, dtype=F64, requires_grad=True)
    signal = torch.randn(N + 1, D, 2, dtype=F64, requires_grad=True)
    module = resolve_restriction_maps("diagonal")(D, 2).to(F64)
    features = torch.randn(N + 1, 2, dtype=F64, requires_grad=True)

    def laplacian(maps, signal):
        return diagonal_sheaf_laplacian(maps, graph).apply(signal, backend="reference")

    def learned(features):
        return module.incidence_maps(features, graph)

    assert torch.autograd.gradcheck(laplacian, (maps, signal))
    assert torch.autograd.gradcheck(learned, (features,))


def _layer_outputs_and_grads(name: str, update: str, normalize: bool,
                             backend: str) -> tuple[torch.Tensor, ...]:
    """One SheafConv of family ``name`` on the test graph: output and the gradients of
    a fixed weighted sum w.r.t. the input and every parameter (same init per backend)."""
    both = torch.cat([EDGE_INDEX, EDGE_INDEX.flip(0)], 1)
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(N + 1, D * 2, generator=gen, dtype=F64)
    weight = torch.randn(N + 1, D * 2, generator=gen, dtype=F64)
    torch.manual_seed(23)
    conv = SheafConv(D, 2, restriction=name, update=update, normalize=normalize,
                     backend=backend).double()
    inputs = x.clone().requires_grad_()
    out = conv(inputs, both)
    grads = torch.autograd.grad((out * weight).sum(), [inputs, *conv.parameters()])
    return (out, *grads)


FULL_FAMILIES = [name for name in FAMILIES if not resolve_restriction_maps(name).diagonal]


def _require_cpu_kernel():
    from graphlearn.ops.cpu import _build

    if _build.load_cpu_extension() is None:
        reason = f"fused CPU kernel unavailable: {_build.cpu_extension_error()}"
        if os.environ.get("CI") and not os.environ.get(_build.DISABLE_ENV):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("update", ["diffusion", "linear"])
@pytest.mark.parametrize("name", FAMILIES)
def test_sheaf_conv_fast_paths_equal_the_reference_with_gradients(name, update, normalize):
    # diagonal families: the factored Laplacian on rspmm ("auto"); full families: the
    # fused L_F x = δᵀδx and degree ("cpu") against the blocks -F_vᵀF_u, Σ F_vᵀF_v with
    # gathers and index_add ("reference")
    fast = "auto" if name in DIAGONAL_FAMILIES else "cpu"
    if fast == "cpu":
        _require_cpu_kernel()
    reference = _layer_outputs_and_grads(name, update, normalize, "reference")
    for ours, theirs in zip(_layer_outputs_and_grads(name, update, normalize, fast),
                            reference):
        torch.testing.assert_close(ours, theirs, atol=1e-12, rtol=1e-10)


def test_full_laplacian_forms_its_blocks_only_on_access():
    maps = torch.randn(len(EDGES), 2, D, D, dtype=F64)
    lap = sheaf_laplacian(EDGE_INDEX, maps, N, D)
    assert lap._off is None and lap.maps is maps
    torch.testing.assert_close(lap.off, -(maps[:, 0].transpose(1, 2) @ maps[:, 1]))
    signal = torch.randn(N, D, 2, dtype=F64)
    torch.testing.assert_close(lap.apply(signal, backend="auto"),
                               lap.apply(signal, backend="reference"))


def test_fast_path_rejects_a_graph_of_other_edges():
    conv = SheafConv(D, 2, update="linear")
    x = torch.randn(N, D, 2)
    with pytest.raises(ValueError, match="SheafConv: graph has 4 nodes and 6 directed edges"):
        conv(x, EDGE_INDEX, graph=sheaf_graph(EDGE_INDEX[:, :3], N))
