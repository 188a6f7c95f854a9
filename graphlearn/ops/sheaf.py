r"""Sheaf-Laplacian products for full ``d x d`` restriction maps, fused on CPU.

For restriction maps ``maps [E, 2, d, d]`` on the undirected edges ``(row_e, col_e)``
(``maps[e, 0]`` :math:`= F_{row \trianglelefteq e}`, ``maps[e, 1]``
:math:`= F_{col \trianglelefteq e}`) and node signals ``x [N, d, f]``:

* :func:`block_laplacian` is :math:`L_F x = \delta^\top \delta x`, the coboundary
  :math:`(\delta x)_e = F_{row \trianglelefteq e} x_{row} - F_{col \trianglelefteq e} x_{col}`
  followed by its adjoint: the sheaf Laplacian without forming its blocks
  (:math:`-F_v^\top F_u` per edge, :math:`\sum_e F_v^\top F_v` per node);
* :func:`householder_cpu` is the product :math:`H_1 \cdots H_k` of Householder
  reflections per row of ``[M, k, d]`` vectors, forward and backward in
  :math:`O(k d^2)` per matrix (the reference is
  :func:`graphlearn.nn.sheaf.householder_product`, ``method="sequential"``);
* :func:`block_degree` is :math:`D_v = \sum_{e \ni v} F_{v \trianglelefteq e}^\top F_{v \trianglelefteq e}`,
  ``[N, d, d]`` (the normaliser's input).

Each has a plain-PyTorch reference (``backend="reference"``: gathers, batched
products, ``index_add``; the specification) and a fused CPU kernel
(``backend="cpu"``, ``graphlearn/ops/cpu/sheaf.cpp``, built with the ``rspmm``
kernel): per edge two small products forward, no ``[E, d, d]`` blocks and no
``index_add`` (per-thread partial sums while they fit
:data:`PARTIAL_BUDGET_BYTES`, else node sums over the incidence CSR of
:func:`graphlearn.nn.sheaf.sheaf_graph`), a hand-written backward of the same
cost for ``maps`` and ``x``. ``"auto"`` takes the kernel for CPU float32/float64
tensors when it builds, else the reference (other devices: the reference).

The kernel's backward is ``once_differentiable`` (no double backward).
"""

from __future__ import annotations

import math
import weakref

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from graphlearn.ops.graph import RelGraph
from graphlearn.registry import normalize_name

__all__ = [
    "SHEAF_BACKENDS",
    "block_degree",
    "block_degree_reference",
    "block_laplacian",
    "block_laplacian_reference",
    "householder_cpu",
    "incidence_nodes",
    "matrix_exp_cpu",
]

SHEAF_BACKENDS = ("auto", "reference", "cpu")
#: The fused forward keeps one ``[N, d, f]`` partial sum per thread (one pass over the
#: maps) while ``threads * N * d * f`` values fit in this many bytes; beyond it, the
#: coboundary is stored and node sums run over the incidence CSR (maps read twice).
PARTIAL_BUDGET_BYTES = 256 << 20


def _check(maps: Tensor, graph: RelGraph, x: Tensor | None = None) -> None:
    if maps.dim() != 4 or maps.size(1) != 2 or maps.size(2) != maps.size(3):
        raise ValueError(f"sheaf ops: maps must be [E, 2, d, d], got {list(maps.shape)}")
    if graph.num_edges != 2 * maps.size(0):
        raise ValueError(f"sheaf ops: graph has {graph.num_edges} directed edges; maps are for "
                         f"{maps.size(0)} undirected edges (sheaf_graph has 2 per edge)")
    if x is not None and (x.dim() != 3 or x.size(0) != graph.num_nodes
                          or x.size(1) != maps.size(2)):
        raise ValueError(f"sheaf ops: x must be [N, d, f] = [{graph.num_nodes}, {maps.size(2)}, "
                         f"f], got {list(x.shape)}")


_INCIDENCE_NODES: weakref.WeakKeyDictionary[RelGraph, tuple[Tensor, Tensor]] = \
    weakref.WeakKeyDictionary()


def incidence_nodes(graph: RelGraph) -> tuple[Tensor, Tensor]:
    """``(node, other)``, ``[2E]`` each, of a :func:`~graphlearn.nn.sheaf.sheaf_graph`'s
    directed edges in edge order: the incidence's own node (the edge's target) and the
    other endpoint (its source). Edge ``k < E`` runs ``col_k -> row_k`` and edge
    ``E + k`` back, so ``node = cat([row, col])`` and ``other = cat([col, row])``.
    Computed once per graph and kept while it lives."""
    if graph not in _INCIDENCE_NODES:
        node = torch.empty(graph.num_edges, dtype=torch.long, device=graph.device)
        other = torch.empty_like(node)
        node[graph.perm] = graph.row  # CSR order back to edge order
        other[graph.perm] = graph.col
        _INCIDENCE_NODES[graph] = (node, other)
    return _INCIDENCE_NODES[graph]


def _endpoints(graph: RelGraph) -> tuple[Tensor, Tensor]:
    """``(row, col)`` of the undirected edges of a sheaf graph (views, no copy)."""
    node, other = incidence_nodes(graph)
    num_edges = graph.num_edges // 2
    return node[:num_edges], other[:num_edges]


def _kernel(backend: str, *tensors: Tensor):
    """The C++ extension for this call, or ``None`` for the reference; ``"auto"`` warns
    once when it falls back for CPU tensors (as ``rspmm`` does), ``"cpu"`` raises."""
    name = normalize_name(backend) if isinstance(backend, str) else backend
    if name not in SHEAF_BACKENDS:
        raise ValueError(f"sheaf ops: backend must be one of {', '.join(SHEAF_BACKENDS)}, "
                         f"got {backend!r}")
    if name == "reference":
        return None
    from graphlearn.ops.dispatch import (
        BackendUnavailableError,
        cpu_kernel_unavailable,
        fallback_warning,
    )

    reason = cpu_kernel_unavailable(*tensors)
    if reason is None:
        from graphlearn.ops.cpu import load_cpu_extension

        return load_cpu_extension()
    if name == "cpu":
        raise BackendUnavailableError(f"sheaf ops: backend='cpu' cannot run: {reason}")
    if all(t.device.type == "cpu" for t in tensors):
        fallback_warning("fused CPU kernel", reason, op="sheaf ops")
    return None


# -- references -----------------------------------------------------------------------------


def block_laplacian_reference(maps: Tensor, x: Tensor, row: Tensor, col: Tensor) -> Tensor:
    """:math:`\\delta^\\top \\delta x` with gathers, batched products and ``index_add``."""
    f_row, f_col = maps[:, 0], maps[:, 1]  # (E, d, d)
    r = f_row @ x.index_select(0, row) - f_col @ x.index_select(0, col)  # (E, d, f)
    out = torch.zeros_like(x).index_add(0, row, f_row.transpose(1, 2) @ r)
    return out.index_add(0, col, -(f_col.transpose(1, 2) @ r))


def block_degree_reference(maps: Tensor, row: Tensor, col: Tensor, num_nodes: int) -> Tensor:
    """:math:`\\sum_e F^\\top F` per node with batched products and ``index_add``."""
    f_row, f_col = maps[:, 0], maps[:, 1]
    d = maps.size(-1)
    degree = maps.new_zeros(num_nodes, d, d).index_add(0, row, f_row.transpose(1, 2) @ f_row)
    return degree.index_add(0, col, f_col.transpose(1, 2) @ f_col)


# -- fused CPU --------------------------------------------------------------------------------


class _BlockLaplacianCPU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, maps, x, row, col, rowptr, perm, ext):  # type: ignore[override]
        out, r = ext.sheaf_laplacian_forward(maps, x, row, col, rowptr, perm,
                                             PARTIAL_BUDGET_BYTES)
        ctx.save_for_backward(maps, x, r, row, col, rowptr, perm)
        ctx.ext = ext
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):  # type: ignore[override]
        maps, x, r, row, col, rowptr, perm = ctx.saved_tensors
        need_maps, need_x = ctx.needs_input_grad[:2]
        if not (need_maps or need_x):
            return (None,) * 7
        grad_maps, grad_x = ctx.ext.sheaf_laplacian_backward(
            maps, x, r, grad.contiguous(), row, col, rowptr, perm, need_maps, need_x)
        return (grad_maps if need_maps else None, grad_x if need_x else None,
                None, None, None, None, None)


class _BlockDegreeCPU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, maps, rowptr, perm, ext):  # type: ignore[override]
        ctx.save_for_backward(maps, rowptr, perm)
        ctx.ext = ext
        return ext.sheaf_degree_forward(maps, rowptr, perm)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):  # type: ignore[override]
        maps, rowptr, perm = ctx.saved_tensors
        return ctx.ext.sheaf_degree_backward(maps, grad.contiguous(), rowptr, perm), None, None, None


def block_laplacian(maps: Tensor, x: Tensor, graph: RelGraph, backend: str = "auto") -> Tensor:
    r""":math:`L_F x` for full restriction maps, without forming the Laplacian's blocks.

    Args:
        maps: ``[E, 2, d, d]``, the maps of the ``E`` undirected edges of ``graph``
            (``[:, 0]`` the row endpoint's, ``[:, 1]`` the column endpoint's).
        x: ``[N, d, f]`` node signals.
        graph: :func:`graphlearn.nn.sheaf.sheaf_graph` of the edges (``2E`` directed).
        backend: ``"auto"`` (default), ``"cpu"`` (the fused kernel; an error when it
            cannot run) or ``"reference"``.

    Returns:
        ``[N, d, f]``; differentiable w.r.t. ``maps`` and ``x``. Nodes without edges
        get 0.
    """
    _check(maps, graph, x)
    ext = _kernel(backend, maps, x)
    row, col = _endpoints(graph)
    if ext is None or maps.size(0) == 0:
        return block_laplacian_reference(maps, x, row, col)
    return _BlockLaplacianCPU.apply(maps.contiguous(), x.contiguous(), row, col,
                                    graph.rowptr, graph.perm, ext)


def block_degree(maps: Tensor, graph: RelGraph, backend: str = "auto") -> Tensor:
    r""":math:`D_v = \sum_{e \ni v} F_{v \trianglelefteq e}^\top F_{v \trianglelefteq e}`,
    ``[N, d, d]`` (arguments as :func:`block_laplacian`); differentiable w.r.t. ``maps``."""
    _check(maps, graph)
    ext = _kernel(backend, maps)
    if ext is None or maps.size(0) == 0:
        row, col = _endpoints(graph)
        return block_degree_reference(maps, row, col, graph.num_nodes)
    return _BlockDegreeCPU.apply(maps.contiguous(), graph.rowptr, graph.perm, ext)


class _HouseholderCPU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, vectors, ext):  # type: ignore[override]
        q = ext.householder_forward(vectors)
        ctx.save_for_backward(vectors, q)
        ctx.ext = ext
        return q

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):  # type: ignore[override]
        vectors, q = ctx.saved_tensors
        return ctx.ext.householder_backward(vectors, q, grad.contiguous()), None


def householder_cpu(vectors: Tensor, backend: str = "cpu") -> Tensor | None:
    r"""The fused product :math:`H_1 \cdots H_k`, :math:`H_j = I - 2 v_j v_j^\top / \|v_j\|^2`,
    of ``vectors [..., k, d]`` -> ``[..., d, d]``; differentiable.

    ``backend="cpu"`` raises when the kernel cannot run; ``"auto"`` returns ``None``
    then (the caller uses its own product).
    """
    if vectors.dim() < 2:
        raise ValueError(f"householder_cpu: vectors must be [..., k, d], got "
                         f"{list(vectors.shape)}")
    ext = _kernel(backend, vectors)
    if ext is None:
        return None
    *batch, k, d = vectors.shape
    flat = vectors.reshape(math.prod(batch), k, d).contiguous()
    return _HouseholderCPU.apply(flat, ext).view(*batch, d, d)


class _MatrixExpCPU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, degree, theta, ext):  # type: ignore[override]
        ctx.save_for_backward(a)
        ctx.degree, ctx.theta, ctx.ext = degree, theta, ext
        return ext.matrix_exp_forward(a, degree, theta)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):  # type: ignore[override]
        (a,) = ctx.saved_tensors
        return (ctx.ext.matrix_exp_backward(a, grad.contiguous(), ctx.degree, ctx.theta),
                None, None, None)


def matrix_exp_cpu(a: Tensor, degree: int, backend: str = "cpu",
                   theta: float = 2.0) -> Tensor | None:
    r""":math:`\exp(A)` of ``a [..., d, d]`` by the fused CPU kernel; differentiable.

    Per matrix: scaling and squaring with the degree-``degree`` Taylor polynomial
    (Horner's scheme), ``s`` the smallest power with :math:`\|A\|_F / 2^s \le \theta`;
    the backward is the exact adjoint of those steps, recomputed in a thread-local
    buffer (nothing saved but ``a``). The reference is
    :func:`graphlearn.nn.sheaf.matrix_exp` (``"taylor"``, one ``s`` for the whole
    batch, autograd through batched products; ``"torch"``: torch's own).

    ``backend="cpu"`` raises when the kernel cannot run; ``"auto"`` returns ``None``
    then (the caller uses its own).
    """
    if a.dim() < 2 or a.size(-1) != a.size(-2):
        raise ValueError(f"matrix_exp_cpu: a must be [..., d, d], got {list(a.shape)}")
    ext = _kernel(backend, a)
    if ext is None:
        return None
    *batch, d, _ = a.shape
    flat = a.reshape(math.prod(batch), d, d).contiguous()
    if not theta > 0:
        raise ValueError(f"matrix_exp_cpu: theta must be > 0, got {theta!r}")
    return _MatrixExpCPU.apply(flat, int(degree), float(theta), ext).view(*batch, d, d)

