r"""Cellular sheaves on graphs: restriction maps, the block-sparse sheaf Laplacian and
the sheaf convolution of Neural Sheaf Diffusion.

A cellular sheaf on an undirected graph gives every node :math:`v` and every edge
:math:`e` a ``d``-dimensional stalk and every incidence :math:`v \trianglelefteq e`
a restriction map :math:`F_{v \trianglelefteq e} \in \mathbb{R}^{d \times d}`. Its
Laplacian :math:`L_F \in \mathbb{R}^{Nd \times Nd}` has the blocks

.. math::
    (L_F)_{vv} = \sum_{e \ni v} F_{v \trianglelefteq e}^\top F_{v \trianglelefteq e},
    \qquad
    (L_F)_{vu} = -F_{v \trianglelefteq e}^\top F_{u \trianglelefteq e}
    \quad (e = \{v, u\}),

and the normalised Laplacian of Bodnar et al. (2022) is
:math:`\Delta_F = (D + I)^{-1/2} L_F (D + I)^{-1/2}` with :math:`D` the
block diagonal of :math:`L_F` (the ``+ I`` keeps an isolated node finite and the
spectrum of :math:`\Delta_F` in :math:`[0, 2)`).

Conventions used throughout:

* **Edges** are undirected and listed once, ``edge_index [2, E]`` with
  ``row < col`` and no self-loops, sorted (:func:`undirected_edge_index` turns a
  PyG-style index, both directions listed, into this form; it is idempotent).
* **Maps** are ``[E, 2, d, d]``: ``maps[e, 0]`` is :math:`F_{row \trianglelefteq e}`,
  ``maps[e, 1]`` is :math:`F_{col \trianglelefteq e}`; diagonal maps may be given
  as their diagonals, ``[E, 2, d]`` (:meth:`RestrictionMaps.compact`).
* **Node signals** are ``[N, d, f]`` (``d``-dim stalks, ``f`` channels); the flat
  form ``[N, d·f]`` is the same memory, stalk-major.
* The Laplacian is **block-sparse** (:class:`SheafLaplacian`): ``N`` diagonal blocks
  and one off-diagonal block per edge; the dense ``Nd x Nd`` matrix is only built
  by :meth:`SheafLaplacian.to_dense`, for tests. Its product with a signal is a
  gather / block product / ``index_add`` (the reference), or for diagonal blocks one
  ``rspmm`` call with a relation per edge (:mod:`graphlearn.ops`, fused kernels).

Restriction-map families register themselves in :data:`RESTRICTION_MAPS`
(``list_restriction_maps()``): ``identity``, ``scalar`` (the map of Sheaf4Rec),
``diagonal``, ``orthogonal`` (Householder products), ``orthogonal_exp`` (matrix
exponential of a skew-symmetric matrix) and ``general``.
"""

from __future__ import annotations

import math
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphlearn.ops import BACKENDS, RelGraph, rspmm
from graphlearn.ops.sheaf import (
    block_degree,
    block_degree_reference,
    block_laplacian,
    householder_cpu,
    incidence_nodes,
    matrix_exp_cpu,
)
from graphlearn.registry import Registry, normalize_name

__all__ = [
    "RESTRICTION_MAPS",
    "DiagonalMaps",
    "GeneralMaps",
    "HouseholderMaps",
    "IdentityMaps",
    "MatrixExpMaps",
    "RestrictionMaps",
    "ScalarMaps",
    "SheafConv",
    "SheafLaplacian",
    "diagonal_sheaf_laplacian",
    "householder_product",
    "list_restriction_maps",
    "matrix_exp",
    "resolve_restriction_maps",
    "sheaf_graph",
    "sheaf_laplacian",
    "sym_matrix_power",
    "undirected_edge_index",
]

#: Activations by name, for the map learner (``map_activation``) and the diffusion
#: update (``activation``); ``"none"`` is the identity.
SHEAF_ACTIVATIONS: Registry[Callable[[Tensor], Tensor]] = Registry("activation")
for _name, _fn in (("tanh", torch.tanh), ("elu", F.elu), ("relu", F.relu),
                   ("sigmoid", torch.sigmoid), ("none", lambda t: t)):
    SHEAF_ACTIVATIONS.register(_name)(_fn)

UPDATES = ("diffusion", "linear")
MAP_MODES = ("per_layer", "shared")


# -- edges ----------------------------------------------------------------------------------


def undirected_edge_index(edge_index: Tensor, num_nodes: int) -> Tensor:
    """The undirected edges of ``edge_index``, each once: ``[2, E']`` with ``row < col``,
    no self-loops, sorted by ``(row, col)``, duplicates and reversed copies merged.

    Already-canonical input is returned as is after an ``O(E)`` check, so calling this
    on every forward pass costs a sort only the first time.
    """
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"undirected_edge_index: edge_index must be [2, E], got "
                         f"{list(edge_index.shape)}")
    edge_index = edge_index.long()
    row, col = edge_index
    key = row * num_nodes + col
    if bool((row < col).all()) and bool((key[1:] > key[:-1]).all()) \
            and (not key.numel() or (int(row[0]) >= 0 and int(col.max()) < num_nodes)):
        return edge_index
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
        raise ValueError(f"undirected_edge_index: node ids must be in [0, {num_nodes}), got "
                         f"[{int(edge_index.min())}, {int(edge_index.max())}]")
    low, high = torch.minimum(row, col), torch.maximum(row, col)
    keep = low != high  # self-loops carry no sheaf edge
    key = torch.unique(low[keep] * num_nodes + high[keep])  # sorted
    return torch.stack([torch.div(key, num_nodes, rounding_mode="floor"), key % num_nodes])


def sheaf_graph(edge_index: Tensor, num_nodes: int) -> RelGraph:
    """The :class:`~graphlearn.ops.RelGraph` that :meth:`SheafLaplacian.apply` runs
    ``rspmm`` over for diagonal blocks: both directions of every undirected edge
    ``e`` of ``edge_index`` (canonical form), each with relation ``e``. Build it once
    per graph and pass it to :func:`sheaf_laplacian` (else it is built on first use)."""
    row, col = edge_index.long()
    directed = torch.stack([torch.cat([col, row]), torch.cat([row, col])])  # source, target
    ids = torch.arange(row.numel(), device=row.device)
    return RelGraph.build(directed, ids.repeat(2), num_nodes, num_relations=max(row.numel(), 1))


# -- incidences: gathers and scatters with sparse-matrix backward ------------------------------


@dataclass(frozen=True, eq=False)
class _Incidence:
    """The ``2E`` incidences of a :func:`sheaf_graph`, in its directed-edge order:
    incidence ``k < E`` is ``row_k ◁ e_k`` (other endpoint ``col_k``), ``k >= E`` is
    ``col ◁ e`` (other endpoint ``row``).

    ``to_node`` / ``to_other`` are ``[N, 2E]`` CSR 0/1 matrices: ``to_node @ v`` sums
    per-incidence values ``v [2E, C]`` into the incidence's own node, ``to_other @ v``
    into its other endpoint. They are the transposes of the gathers ``x[node]``,
    ``x[other]``: one sparse product instead of ``index_add`` (4x faster on CPU).
    """

    node: Tensor  # (2E,) the node of each incidence: cat([row, col])
    other: Tensor  # (2E,) the other endpoint: cat([col, row])
    to_node: Tensor  # (N, 2E) sparse CSR
    to_other: Tensor  # (N, 2E) sparse CSR


_INCIDENCES: weakref.WeakKeyDictionary[RelGraph, dict[torch.dtype, _Incidence]] = \
    weakref.WeakKeyDictionary()


def _incidence(graph: RelGraph, dtype: torch.dtype) -> _Incidence:
    """The :class:`_Incidence` of ``graph`` (:func:`sheaf_graph`), built once per graph
    and dtype from its CSR (by target = the incidence's node) and CSC (by source = the
    other endpoint) views; kept as long as the graph lives."""
    per_dtype = _INCIDENCES.setdefault(graph, {})
    if dtype not in per_dtype:
        n, m = graph.num_nodes, graph.num_edges
        index_dtype = torch.int32 if m < 2**31 else torch.int64
        ones = torch.ones(m, dtype=dtype, device=graph.device)
        with warnings.catch_warnings():  # "sparse CSR support is in beta"
            warnings.simplefilter("ignore", UserWarning)
            to_node = torch.sparse_csr_tensor(graph.rowptr.to(index_dtype),
                                              graph.perm.to(index_dtype), ones, (n, m))
            to_other = torch.sparse_csr_tensor(graph.colptr.to(index_dtype),
                                               graph.perm[graph.csc_pos].to(index_dtype),
                                               ones, (n, m))
        node, other = incidence_nodes(graph)
        per_dtype[dtype] = _Incidence(node, other, to_node, to_other)
    return per_dtype[dtype]


class _IncidenceAffine(torch.autograd.Function):
    """``own[node] + other[other_node] + bias`` per incidence (the map learner's
    :math:`W [x_v \\| x_u] + b`, see :meth:`RestrictionMaps._project`), accumulated in
    place; the gathers' backward is the sparse products ``to_node @ grad`` and
    ``to_other @ grad`` (one pass each instead of ``index_add``)."""

    @staticmethod
    def forward(ctx, own: Tensor, other: Tensor, bias: Tensor,  # type: ignore[override]
                inc: _Incidence) -> Tensor:
        ctx.inc = inc
        out = own.index_select(0, inc.node)  # (2E, P)
        return out.add_(other.index_select(0, inc.other)).add_(bias)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor, Tensor, None]:  # type: ignore[override]
        inc = ctx.inc
        grad = grad.contiguous()
        return (torch.sparse.mm(inc.to_node, grad), torch.sparse.mm(inc.to_other, grad),
                grad.sum(0), None)


class _DiagonalBlocks(torch.autograd.Function):
    r"""The blocks of :math:`L_F` from diagonal maps per incidence ``maps [2E, d]``
    (rows ``e``, ``E + e``: :math:`F_{row \trianglelefteq e}`, :math:`F_{col \trianglelefteq e}`):
    ``off [E, d]`` :math:`= -F_{row} F_{col}` and ``degree [N, d]``
    :math:`= \sum_{e \ni v} F_{v \trianglelefteq e}^2` (``to_node @ maps²``).

    One function with a hand-written backward, because autograd's would allocate and
    zero a ``[2E, d]`` gradient per half of ``maps`` and add them:

    .. math::
        \bar F_{v \trianglelefteq e} = 2 F_{v \trianglelefteq e}\, \bar D_v
        - F_{u \trianglelefteq e}\, \overline{\mathrm{off}}_e .
    """

    @staticmethod
    def forward(ctx, maps: Tensor, node: Tensor,  # type: ignore[override]
                to_node: Tensor) -> tuple[Tensor, Tensor]:
        num_edges = maps.size(0) // 2
        off = torch.mul(maps[:num_edges], maps[num_edges:]).neg_()  # (E, d)
        degree = torch.sparse.mm(to_node, maps * maps)  # (N, d)
        ctx.save_for_backward(maps, node)
        return off, degree

    @staticmethod
    def backward(ctx, grad_off: Tensor | None,  # type: ignore[override]
                 grad_degree: Tensor | None) -> tuple[Tensor, None, None]:
        maps, node = ctx.saved_tensors
        num_edges = maps.size(0) // 2
        if grad_degree is None:
            grad = torch.zeros_like(maps)
        else:
            grad = grad_degree.index_select(0, node).mul_(maps).mul_(2.0)  # (2E, d)
        if grad_off is not None:
            grad[:num_edges].addcmul_(grad_off, maps[num_edges:], value=-1.0)
            grad[num_edges:].addcmul_(grad_off, maps[:num_edges], value=-1.0)
        return grad, None, None


# -- matrix functions -----------------------------------------------------------------------


class _SymMatrixPower(torch.autograd.Function):
    """``A^p`` for symmetric positive-definite ``A [..., d, d]`` via ``eigh``, with the
    Daleckii–Krein backward: divided differences ``(λ_i^p − λ_j^p) / (λ_i − λ_j)``,
    replaced by the derivative ``p λ^{p−1}`` where eigenvalues (nearly) coincide.
    ``torch.linalg.eigh``'s own backward divides by ``λ_i − λ_j`` and returns NaN for
    repeated eigenvalues (``D + I`` of an isolated node is ``I``)."""

    @staticmethod
    def forward(ctx, a: Tensor, p: float) -> Tensor:  # type: ignore[override]
        lam, vec = torch.linalg.eigh(a)
        lam_p = lam.pow(p)
        ctx.save_for_backward(lam, lam_p, vec)
        ctx.p = p
        return (vec * lam_p.unsqueeze(-2)) @ vec.transpose(-1, -2)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        lam, lam_p, vec = ctx.saved_tensors
        p = ctx.p
        diff = lam.unsqueeze(-1) - lam.unsqueeze(-2)  # (..., d, d): λ_i − λ_j
        close = diff.abs() <= 1e-6 * lam.abs().amax(-1, keepdim=True).unsqueeze(-1).clamp_min(1)
        mean = (lam.unsqueeze(-1) + lam.unsqueeze(-2)) / 2
        derivative = p * mean.pow(p - 1)
        divided = (lam_p.unsqueeze(-1) - lam_p.unsqueeze(-2)) / torch.where(close, 1.0, diff)
        kernel = torch.where(close, derivative, divided)
        vt = vec.transpose(-1, -2)
        sym = (grad + grad.transpose(-1, -2)) / 2
        return vec @ (kernel * (vt @ sym @ vec)) @ vt, None


def sym_matrix_power(a: Tensor, p: float) -> Tensor:
    r""":math:`A^p` of symmetric positive-definite matrices ``a [..., d, d]``, with a
    gradient that stays finite when eigenvalues repeat (see :class:`_SymMatrixPower`)."""
    return _SymMatrixPower.apply(a, float(p))


def householder_product(vectors: Tensor, method: str = "auto") -> Tensor:
    r"""The product :math:`H_1 H_2 \cdots H_k` of Householder reflections
    :math:`H_j = I - 2 v_j v_j^\top / \|v_j\|^2`.

    ``method="wy"`` (default) uses the compact WY form (Schreiber & Van Loan
    1989; the triangular factor as in Joffrain et al. 2006, "Accumulating
    Householder transformations, revisited"):

    .. math::
        H_1 \cdots H_k = I - V S^{-1} V^\top, \qquad
        S = \tfrac12 \operatorname{diag}(V^\top V) + \operatorname{triu}_{1}(V^\top V),

    with :math:`V = [v_1, \dots, v_k]`: three batched products and one triangular
    solve. ``method="sequential"`` is the reference: ``k`` rank-one updates, one
    reflection at a time. ``method="cpu"`` is the fused CPU kernel
    (:func:`graphlearn.ops.sheaf.householder_cpu`: each matrix built in a
    thread-local buffer, forward and backward in :math:`O(k d^2)`), and
    ``"auto"`` (default) takes it for CPU float32/float64 tensors when it builds,
    else ``"wy"``. The tests compare all of them; for the speed of each, run
    ``experiments/benchmarks/sheaf_maps.py``.

    Args:
        vectors: ``[..., k, d]``, the reflection vectors :math:`v_j` (non-zero).
        method: ``"auto"``, ``"cpu"``, ``"wy"`` or ``"sequential"``.

    Returns:
        ``[..., d, d]`` orthogonal matrices of determinant :math:`(-1)^k`.
    """
    k, d = vectors.shape[-2:]
    if method in ("auto", "cpu"):
        fused = householder_cpu(vectors, method)
        if fused is not None:
            return fused
        method = "wy"
    eye = torch.eye(d, dtype=vectors.dtype, device=vectors.device)
    if method == "sequential":
        out = eye.expand(*vectors.shape[:-2], d, d)
        for j in range(k):
            v = vectors[..., j, :]  # (..., d)
            scale = 2.0 / (v * v).sum(-1, keepdim=True)  # (..., 1)
            # M H = M - (M v) (2 v / |v|^2)^T
            out = out - (out @ v.unsqueeze(-1)) @ (scale * v).unsqueeze(-2)
        return out
    if method != "wy":
        raise ValueError(f"householder_product: unknown method {method!r} "
                         f"(valid: auto, cpu, wy, sequential)")
    gram = vectors @ vectors.transpose(-1, -2)  # (..., k, k): V^T V
    # S = gram * (1 above the diagonal, 1/2 on it, 0 below): one product (triu is slower)
    weight = torch.ones(k, k, dtype=vectors.dtype, device=vectors.device).triu(1) \
        + torch.eye(k, dtype=vectors.dtype, device=vectors.device) / 2
    solved = torch.linalg.solve_triangular(gram * weight, vectors, upper=True)  # S^{-1} V^T
    return eye - vectors.transpose(-1, -2) @ solved


def matrix_exp(a: Tensor, method: str = "auto") -> Tensor:
    r""":math:`\exp(A)` of square matrices ``a [..., d, d]``.

    ``method="taylor"``: scaling and squaring,
    :math:`\exp(A) = \big(T_m(A / 2^s)\big)^{2^s}`, with :math:`T_m` the degree-``m``
    Taylor polynomial (Horner's scheme) and ``s`` the smallest power with
    :math:`\|A\|_F / 2^s \le \theta` over the batch, which bounds the truncation
    error of the scaled exponential by :math:`\theta^{m+1}/(m+1)!`: ``m = 10``,
    :math:`\theta = 1` in single precision (``3e-8``; one more squaring than
    :math:`\theta = 2` but four fewer Horner steps, so fewer products; a smaller
    :math:`\theta` would add squarings, whose rounding then dominates) and
    ``m = 24``, :math:`\theta = 2` in double (``2e-18``), below the precision.
    In single precision the result is then as orthogonal as torch's for
    skew-symmetric input (the tests check). Every step is a batched product, so
    autograd's backward is products too. ``method="cpu"``: the same polynomial
    by the fused CPU kernel (:func:`graphlearn.ops.sheaf.matrix_exp_cpu`: ``s``
    per matrix, forward and exact adjoint in thread-local buffers, nothing stored
    for the backward but ``a``); ``"auto"`` (default) takes it for CPU
    float32/float64 tensors when it builds, else ``"taylor"``. ``method="torch"``:
    :func:`torch.linalg.matrix_exp` (the reference), whose backward
    exponentiates a ``2d x 2d`` block matrix and is the slower part. The tests
    compare them on values and gradients; ``experiments/benchmarks/sheaf_maps.py``
    times the family that uses it (``orthogonal_exp``, ``orthogonal_exp@taylor``
    and ``orthogonal_exp@torch``).
    """
    if method == "torch" or a.numel() == 0:
        return torch.linalg.matrix_exp(a)
    if method not in ("taylor", "cpu", "auto"):
        raise ValueError(f"matrix_exp: unknown method {method!r} (valid: auto, cpu, taylor, "
                         f"torch)")
    degree, theta = (24, 2.0) if a.dtype == torch.float64 else (10, 1.0)
    if method != "taylor":
        out = matrix_exp_cpu(a, degree, "cpu" if method == "cpu" else "auto", theta)
        if out is not None:
            return out
    norm = float(torch.linalg.matrix_norm(a.detach()).amax())
    squarings = max(0, math.ceil(math.log2(norm / theta))) if norm > 0 else 0
    x = a / (2.0 ** squarings)
    eye = torch.eye(a.size(-1), dtype=a.dtype, device=a.device)
    out = eye + x / degree  # Horner: I + X (I + X/2 (I + ... (I + X/m)))
    for k in range(degree - 1, 0, -1):
        out = eye + (x @ out) / k
    for _ in range(squarings):
        out = out @ out
    return out


# -- restriction maps -----------------------------------------------------------------------


class RestrictionMaps(nn.Module):
    r"""A family of restriction maps, learned from the features of an edge's endpoints
    as in Neural Sheaf Diffusion (Bodnar et al. 2022, Eq. 11):

    .. math::
        F_{v \trianglelefteq e} = \Phi\big(\sigma(W [x_v \,\|\, x_u] + b)\big),
        \qquad e = \{v, u\},

    with :math:`\sigma` = ``map_activation`` and :math:`\Phi` the family's map from
    ``num_params(d)`` numbers to a ``d x d`` matrix. Each edge has two incidences,
    one per endpoint, each with its own map (the learner sees ``[x_v ‖ x_u]`` for
    :math:`v` and ``[x_u ‖ x_v]`` for :math:`u`).

    Subclasses set ``name``, ``diagonal_degree`` (whether every
    :math:`F^\top F` is diagonal, so that the degree normaliser is elementwise),
    ``orthonormal`` (whether :math:`F^\top F = I` by construction, so that the
    degree is a count) and ``diagonal`` (whether the maps are diagonal), and implement
    :meth:`num_params` and :meth:`params_to_maps` (diagonal families:
    :meth:`params_to_diagonal`). :meth:`compact` gives diagonal maps as their
    diagonals, ``[E, 2, d]``, which :func:`sheaf_laplacian` turns into a Laplacian
    of diagonal blocks (elementwise products instead of ``d x d`` ones).

    Args:
        stalk_dim: ``d``.
        in_channels: node feature size ``C`` the maps are computed from (``d·f``
            for the node stalks of :class:`SheafConv`).
        map_activation: :math:`\sigma` (default ``"tanh"``, as NSD).

    Shapes:
        - **x**: ``[N, C]`` node features.
        - **edge_index**: ``[2, E]`` undirected edges, each once.
        - **output**: ``[E, 2, d, d]`` (:meth:`compact`: ``[E, 2, d]`` for a diagonal family).
    """

    name: str = ""
    diagonal_degree: bool = False
    diagonal: bool = False
    #: every map is orthogonal by construction (F^T F = I): degree deg(v) I
    orthonormal: bool = False

    def __init__(self, stalk_dim: int, in_channels: int, map_activation: str = "tanh") -> None:
        super().__init__()
        for key, value in (("stalk_dim", stalk_dim), ("in_channels", in_channels)):
            if int(value) != value or value < 1:
                raise ValueError(f"{type(self).__name__}: {key} must be a positive integer, "
                                 f"got {value!r}")
        self.stalk_dim = int(stalk_dim)
        self.in_channels = int(in_channels)
        self.map_activation_name = map_activation
        self.map_activation = SHEAF_ACTIVATIONS.get(map_activation)
        size = self.num_params(self.stalk_dim)
        self.linear = nn.Linear(2 * self.in_channels, size) if size else None
        self.reset_parameters()

    @classmethod
    def num_params(cls, d: int) -> int:
        """Numbers per incidence the learner outputs for stalk dimension ``d``."""
        raise NotImplementedError

    def params_to_maps(self, params: Tensor) -> Tensor:
        """``[M, num_params(d)] -> [M, d, d]``."""
        if self.diagonal:
            return torch.diag_embed(self.params_to_diagonal(params))
        raise NotImplementedError

    def params_to_diagonal(self, params: Tensor) -> Tensor:
        """``[M, num_params(d)] -> [M, d]``, the diagonals (diagonal families only)."""
        raise NotImplementedError(f"{type(self).__name__}: the maps are not diagonal")

    def reset_parameters(self) -> None:
        if self.linear is not None:
            self.linear.reset_parameters()

    def params(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """``[2E, num_params(d)]``: rows ``2e`` and ``2e + 1`` are the incidences
        ``row ◁ e`` and ``col ◁ e``."""
        x = x.reshape(x.size(0), -1)
        if x.size(1) != self.in_channels:
            raise ValueError(f"{type(self).__name__}: x must have {self.in_channels} features "
                             f"per node, got {x.size(1)}")
        num_edges = edge_index.size(1)
        if self.linear is None:
            return x.new_zeros(2 * num_edges, 0)
        size = self.linear.out_features
        own, other = self._project(x)
        row, col = edge_index
        params = torch.stack([own.index_select(0, row) + other.index_select(0, col),  # row ◁ e
                              own.index_select(0, col) + other.index_select(0, row)],  # col ◁ e
                             1)  # (E, 2, P)
        return self.map_activation(params.view(2 * num_edges, size) + self.linear.bias)

    def _project(self, x: Tensor) -> tuple[Tensor, Tensor]:
        r"""``(W_self x, W_other x)``, ``[N, P]`` each, for ``x [N, C]``.

        :math:`W [x_v \| x_u] + b = (W_{self} x)_v + (W_{other} x)_u + b`: the ``N``
        nodes are projected once, then each incidence gathers ``P`` numbers instead
        of ``2C`` features."""
        size = self.linear.out_features
        proj = x @ self.linear.weight.view(size, 2, self.in_channels).transpose(0, 1) \
            .transpose(1, 2)  # (2, N, P): [W_self x, W_other x]
        return proj[0], proj[1]

    def incidence_maps(self, x: Tensor, graph: RelGraph) -> Tensor:
        r"""Diagonal maps (diagonal families only) of every incidence of ``graph``
        (:func:`sheaf_graph`), in its edge order: ``[2E, d]``, rows ``e`` and
        ``E + e`` are :math:`F_{row \trianglelefteq e}` and
        :math:`F_{col \trianglelefteq e}` (:meth:`compact` holds the same numbers as
        ``[E, 2, d]``). The gathers' backward is a sparse product, not ``index_add``;
        this is the input of :func:`diagonal_sheaf_laplacian`."""
        if not self.diagonal:
            raise NotImplementedError(f"{type(self).__name__}: the maps are not diagonal")
        x = x.reshape(x.size(0), -1)
        if x.size(1) != self.in_channels:
            raise ValueError(f"{type(self).__name__}: x must have {self.in_channels} features "
                             f"per node, got {x.size(1)}")
        inc = _incidence(graph, x.dtype)
        if self.linear is None:
            return self.params_to_diagonal(x.new_zeros(inc.node.numel(), 0))
        own, other = self._project(x)  # (N, P) each
        params = _IncidenceAffine.apply(own, other, self.linear.bias, inc)  # (2E, P)
        return self.params_to_diagonal(self.map_activation(params))

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        d = self.stalk_dim
        maps = self.params_to_maps(self.params(x, edge_index))
        return maps.reshape(edge_index.size(1), 2, d, d)

    def compact(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """The maps as :meth:`forward`, diagonal ones as their diagonals ``[E, 2, d]``."""
        if not self.diagonal:
            return self.forward(x, edge_index)
        diagonal = self.params_to_diagonal(self.params(x, edge_index))
        return diagonal.reshape(edge_index.size(1), 2, self.stalk_dim)

    def extra_repr(self) -> str:
        return (f"stalk_dim={self.stalk_dim}, in_channels={self.in_channels}, "
                f"map_activation={self.map_activation_name!r}")


#: Restriction-map families by name (``list_restriction_maps()``).
RESTRICTION_MAPS: Registry[type[RestrictionMaps]] = Registry("restriction map family")


def list_restriction_maps() -> list[str]:
    """Names accepted by ``restriction=``."""
    return RESTRICTION_MAPS.names()


def resolve_restriction_maps(name: str) -> type[RestrictionMaps]:
    """The :class:`RestrictionMaps` class registered as ``name`` (case, ``-``, ``_``
    ignored); an unknown name fails with the valid ones."""
    return RESTRICTION_MAPS.get(name)


@RESTRICTION_MAPS.register("identity")
class IdentityMaps(RestrictionMaps):
    r""":math:`F = I`: no parameters; the sheaf Laplacian is the graph Laplacian
    :math:`\otimes I_d` (the baseline of every sheaf ablation)."""

    name = "identity"
    diagonal_degree = True
    diagonal = True

    @classmethod
    def num_params(cls, d: int) -> int:
        return 0

    def params_to_diagonal(self, params: Tensor) -> Tensor:
        return params.new_ones(params.size(0), self.stalk_dim)


@RESTRICTION_MAPS.register("scalar")
class ScalarMaps(RestrictionMaps):
    r""":math:`F = s I` with one learned scalar per incidence: the restriction map
    of Sheaf4Rec (Purificato et al. 2023)."""

    name = "scalar"
    diagonal_degree = True
    diagonal = True

    @classmethod
    def num_params(cls, d: int) -> int:
        return 1

    def params_to_diagonal(self, params: Tensor) -> Tensor:
        return params.expand(params.size(0), self.stalk_dim)  # (M, d)


@RESTRICTION_MAPS.register("diagonal")
class DiagonalMaps(RestrictionMaps):
    r""":math:`F = \operatorname{diag}(s_1, \dots, s_d)`: ``d`` parameters per incidence
    (NSD's diagonal sheaf)."""

    name = "diagonal"
    diagonal_degree = True
    diagonal = True

    @classmethod
    def num_params(cls, d: int) -> int:
        return d

    def params_to_diagonal(self, params: Tensor) -> Tensor:
        return params  # (M, d)


@RESTRICTION_MAPS.register("orthogonal")
class HouseholderMaps(RestrictionMaps):
    r"""Orthogonal maps as a product of ``d`` Householder reflections (NSD's
    orthogonal sheaf, "O(d)-bundle"):

    .. math::
        F = H_1 \cdots H_d, \qquad H_j = I - 2\frac{v_j v_j^\top}{\|v_j\|^2},
        \qquad v_j = e_j + \textstyle\sum_{i > j} p_{ij} e_i,

    the LAPACK ``orgqr`` layout torch-householder (NSD's dependency) uses: the
    unit entry keeps :math:`\|v_j\| \ge 1` (no division by a vanishing norm),
    and the :math:`d(d-1)/2` free entries :math:`p_{ij}` match the dimension of
    :math:`O(d)`. Every map has determinant :math:`(-1)^d`, so every transport
    :math:`F_v^\top F_u` is a rotation. Since :math:`F^\top F = I`, the degree
    block of node :math:`v` is :math:`\deg(v) I`.
    """

    name = "orthogonal"
    diagonal_degree = True
    orthonormal = True
    #: :func:`householder_product`'s ``method`` (``"sequential"``: the reference)
    method = "auto"

    @classmethod
    def num_params(cls, d: int) -> int:
        return d * (d - 1) // 2

    def params_to_maps(self, params: Tensor) -> Tensor:
        d = self.stalk_dim
        row, col = torch.tril_indices(d, d, offset=-1, device=params.device)
        # vectors[:, j] = v_j: p_ij at (j, i) for i > j, placed by one dense product
        # with a 0/1 matrix (faster than index_put, forward and backward), plus I
        place = params.new_zeros(params.size(1), d, d)
        place[torch.arange(params.size(1), device=params.device), col, row] = 1.0
        eye = torch.eye(d, dtype=params.dtype, device=params.device)
        vectors = (params @ place.view(-1, d * d)).view(-1, d, d) + eye  # (M, d, d)
        return householder_product(vectors, self.method)


@RESTRICTION_MAPS.register("orthogonal_exp")
class MatrixExpMaps(RestrictionMaps):
    r"""Orthogonal maps as the matrix exponential of a skew-symmetric matrix,

    .. math::
        F = \exp(A - A^\top), \qquad A \text{ strictly upper triangular},

    :math:`d(d-1)/2` parameters; :math:`\exp` maps onto :math:`SO(d)` (rotations).
    A second parameterisation of the orthogonal family, with a smooth, unbounded
    chart instead of a product of reflections."""

    name = "orthogonal_exp"
    diagonal_degree = True
    orthonormal = True
    #: :func:`matrix_exp`'s ``method`` (``"taylor"``, ``"torch"``: the references)
    method = "auto"

    @classmethod
    def num_params(cls, d: int) -> int:
        return d * (d - 1) // 2

    def params_to_maps(self, params: Tensor) -> Tensor:
        d = self.stalk_dim
        row, col = torch.triu_indices(d, d, offset=1, device=params.device)
        upper = params.new_zeros(params.size(0), d, d)
        upper[:, row, col] = params
        return matrix_exp(upper - upper.transpose(1, 2), self.method)


@RESTRICTION_MAPS.register("general")
class GeneralMaps(RestrictionMaps):
    r"""An unconstrained ``d x d`` map per incidence (NSD's general sheaf); the degree
    blocks are full, so the normaliser :math:`(D_v + I)^{-1/2}` is a matrix function
    (:func:`sym_matrix_power`)."""

    name = "general"
    diagonal_degree = False

    @classmethod
    def num_params(cls, d: int) -> int:
        return d * d

    def params_to_maps(self, params: Tensor) -> Tensor:
        d = self.stalk_dim
        return params.view(-1, d, d)


# -- the Laplacian --------------------------------------------------------------------------


class SheafLaplacian:
    r"""A (normalised) sheaf Laplacian in block-sparse form.

    Attributes:
        diag: ``[N, d, d]`` the diagonal blocks :math:`\Delta_{vv}`.
        off: ``[E, d, d]`` the block :math:`\Delta_{row, col}` of each undirected
            edge; the block :math:`\Delta_{col, row}` is its transpose (the Laplacian
            is symmetric), so each edge is stored once. With ``maps`` given and
            ``off=None``, computed from them on first access
            (:math:`-F_{row}^\top F_{col}`).
        row, col: ``[E]`` the edge's endpoints.
        graph: :func:`sheaf_graph` of the edges, for the fused products (built on
            first use when ``None``).
        scale: ``None``, or a block-diagonal normaliser :math:`S`: ``[N, d]``,
            the diagonals of its blocks, or (full blocks only) ``[N, d, d]``,
            symmetric blocks. The Laplacian is then :math:`S\,B\,S` with
            :math:`B` the blocks above. :func:`diagonal_sheaf_laplacian` and
            :func:`sheaf_laplacian` (normalised) return this form, :math:`B = L_F`
            and :math:`S = (D+I)^{-1/2}`, so that no per-edge normalisation is
            computed: :meth:`apply` scales the ``N`` node signals instead.
        maps: ``None``, or the full restriction maps ``[E, 2, d, d]`` whose
            :math:`L_F` the blocks are (:func:`sheaf_laplacian` sets them): then
            :meth:`apply` computes :math:`L_F x = \delta^\top \delta x` from the
            maps (:func:`graphlearn.ops.sheaf.block_laplacian`, fused on CPU) and
            never forms ``off``.

    When every block is diagonal (diagonal maps given in compact form), ``diag``
    is ``[N, d]`` and ``off`` is ``[E, d]``: the blocks' diagonals, and
    :meth:`apply` can run on ``rspmm`` (``graph``: :func:`sheaf_graph`, built on
    first use when not given).
    """

    def __init__(self, diag: Tensor, off: Tensor | None, row: Tensor, col: Tensor,
                 graph: RelGraph | None = None, scale: Tensor | None = None,
                 maps: Tensor | None = None) -> None:
        if off is None and maps is None:
            raise ValueError("SheafLaplacian: give the off-diagonal blocks or the maps")
        if maps is not None and (maps.dim() != 4 or maps.shape[1:] != (2, *diag.shape[1:])
                                 or diag.dim() != 3):
            raise ValueError(f"SheafLaplacian: maps must be [E, 2, d, d] with full blocks "
                             f"diag [N, d, d], got maps {list(maps.shape)} and diag "
                             f"{list(diag.shape)}")
        self.diag, self._off, self.row, self.col = diag, off, row, col
        self.graph, self.scale, self.maps = graph, scale, maps
        n, d = self.diag.shape[:2]
        if self.scale is not None and not (
                self.scale.shape == (n, d)
                or (not self.diagonal_blocks and self.scale.shape == (n, d, d))):
            raise ValueError(f"SheafLaplacian: scale must be [N, d] = [{n}, {d}] (or "
                             f"[N, d, d] with full blocks), got {list(self.scale.shape)}")

    @property
    def off(self) -> Tensor:
        if self._off is None:
            self._off = -(self.maps[:, 0].transpose(1, 2) @ self.maps[:, 1])  # -F_v^T F_u
        return self._off

    @property
    def num_nodes(self) -> int:
        return self.diag.size(0)

    @property
    def stalk_dim(self) -> int:
        return self.diag.size(-1)

    @property
    def diagonal_blocks(self) -> bool:
        """Whether the blocks are stored as their diagonals (``diag [N, d]``, ``off [E, d]``)."""
        return self.diag.dim() == 2

    def apply(self, x: Tensor, backend: str = "auto") -> Tensor:
        r""":math:`\Delta x` for ``x [N, d, f]``.

        ``backend="reference"``: gather, per-edge block products, ``index_add``
        (the specification, any blocks). Other values (``"auto"``, ``"cpu"``,
        ``"triton"``, see :func:`graphlearn.ops.rspmm`) run diagonal blocks as one
        ``rspmm`` with one relation per edge, ``message="mul"``. Full ``d x d``
        blocks with ``maps`` run :func:`graphlearn.ops.sheaf.block_laplacian` for
        ``"auto"`` and ``"cpu"`` (the fused CPU kernel); otherwise the reference.
        """
        if x.dim() != 3 or x.shape[:2] != (self.num_nodes, self.stalk_dim):
            raise ValueError(f"SheafLaplacian.apply: x must be [{self.num_nodes}, "
                             f"{self.stalk_dim}, f], got {list(x.shape)}")
        if self.scale is None:
            return self._apply_blocks(x, backend)
        if self.scale.dim() == 3:  # S B S x, S symmetric blocks
            return self.scale @ self._apply_blocks(self.scale @ x, backend)
        scale = self.scale.unsqueeze(2)  # (N, d, 1): S B S x, S diagonal
        return scale * self._apply_blocks(scale * x, backend)

    def _apply_blocks(self, x: Tensor, backend: str) -> Tensor:
        name = normalize_name(backend)
        if name != "reference" and self.diagonal_blocks and self.off.numel():
            return self._apply_rspmm(x, backend)
        if name in ("auto", "cpu") and self.maps is not None and self.row.numel():
            return block_laplacian(self.maps, x, self._sheaf_graph(x.device), name)
        x_row = x.index_select(0, self.row)  # (E, d, f)
        x_col = x.index_select(0, self.col)
        if self.diagonal_blocks:
            off = self.off.unsqueeze(2)  # (E, d, 1)
            out = self.diag.unsqueeze(2) * x  # (N, d, f)
            out = out.index_add(0, self.row, off * x_col)  # Δ_{vu} x_u
            return out.index_add(0, self.col, off * x_row)  # Δ_{uv} x_v
        out = self.diag @ x  # (N, d, f)
        out = out.index_add(0, self.row, self.off @ x_col)  # Δ_{vu} x_u
        return out.index_add(0, self.col, self.off.transpose(1, 2) @ x_row)  # Δ_{uv} = Δ_{vu}^T

    def _sheaf_graph(self, device: torch.device) -> RelGraph:
        if self.graph is None or self.graph.device != device:
            self.graph = sheaf_graph(torch.stack([self.row, self.col]).to(device),
                                     self.num_nodes)
        return self.graph

    def _apply_rspmm(self, x: Tensor, backend: str) -> Tensor:
        self._sheaf_graph(x.device)
        n, d, f = x.shape
        # rspmm's layout: f "queries" of d features each, the edge's diagonal shared by all
        flat = x.transpose(1, 2).reshape(n, f * d)  # (N, f·d)
        agg = rspmm(self.graph, flat, self.off, message="mul", reduce="sum", backend=backend)
        return self.diag.unsqueeze(2) * x + agg.view(n, f, d).transpose(1, 2)

    def to_dense(self) -> Tensor:
        """The ``[N·d, N·d]`` matrix; for tests and small graphs only."""
        n, d = self.num_nodes, self.stalk_dim
        diag, off = self.diag, self.off
        if self.diagonal_blocks:
            diag, off = torch.diag_embed(diag), torch.diag_embed(off)
        if self.scale is not None and self.scale.dim() == 3:  # S B S, S symmetric blocks
            scale = self.scale
            diag = scale @ diag @ scale
            off = scale.index_select(0, self.row) @ off @ scale.index_select(0, self.col)
        elif self.scale is not None:  # S B S, S diagonal: rows and columns of each block
            scale = self.scale
            diag = scale.unsqueeze(2) * diag * scale.unsqueeze(1)
            off = scale.index_select(0, self.row).unsqueeze(2) * off \
                * scale.index_select(0, self.col).unsqueeze(1)
        blocks = diag.new_zeros(n, n, d, d)
        nodes = torch.arange(n, device=diag.device)
        blocks = blocks.index_put((nodes, nodes), diag, accumulate=True)
        blocks = blocks.index_put((self.row, self.col), off, accumulate=True)
        blocks = blocks.index_put((self.col, self.row), off.transpose(1, 2), accumulate=True)
        return blocks.permute(0, 2, 1, 3).reshape(n * d, n * d)


def sheaf_laplacian(edge_index: Tensor, maps: Tensor, num_nodes: int,
                    stalk_dim: int | None = None, normalize: bool = True,
                    diagonal_degree: bool | None = None,
                    graph: RelGraph | None = None, backend: str = "auto",
                    orthonormal: bool = False) -> SheafLaplacian:
    r"""The sheaf Laplacian :math:`L_F`, or :math:`\Delta_F = (D+I)^{-1/2} L_F (D+I)^{-1/2}`
    with ``normalize=True``, of restriction maps on undirected edges, block-sparse.

    Args:
        edge_index: ``[2, E]`` undirected edges, each once (:func:`undirected_edge_index`).
        maps: ``[E, 2, d, d]``: :math:`F_{row \trianglelefteq e}`, :math:`F_{col \trianglelefteq e}`;
            or ``[E, 2, d]``, diagonal maps as their diagonals
            (:meth:`RestrictionMaps.compact`), for a Laplacian of diagonal blocks.
        num_nodes: ``N``.
        stalk_dim: ``d``, checked against ``maps`` when given.
        normalize: the :math:`(D+I)^{-1/2}` normalisation of Bodnar et al. (default ``True``).
        diagonal_degree: whether every :math:`F^\top F` is diagonal, so that the
            normaliser is elementwise (use the diagonal of :math:`D`); ``None``
            checks that the maps themselves are diagonal. Orthogonal families pass
            ``True`` (:math:`F^\top F = I` up to rounding).
        graph: :func:`sheaf_graph` of ``edge_index``, for :meth:`SheafLaplacian.apply`
            and the fused degree (built on first use when ``None``).
        backend: with full maps, ``"auto"`` / ``"cpu"`` sum the degree blocks
            :math:`\sum_e F^\top F` with :func:`graphlearn.ops.sheaf.block_degree`'s
            fused kernel; other values use batched products and ``index_add``.
        orthonormal: the maps are orthogonal by construction (:math:`F^\top F = I`:
            the orthogonal families): the degree block of node :math:`v` is
            :math:`\deg(v) I`, counted from ``edge_index`` (no products, no
            gradient) instead of summed from the maps, where it equals that count
            up to rounding and has a zero gradient up to rounding.

    Returns:
        :class:`SheafLaplacian`; differentiable w.r.t. ``maps``. With full blocks and
        ``normalize``, in factored form: blocks of :math:`L_F` and ``scale``
        :math:`= (D+I)^{-1/2}` (``[N, d]`` with ``diagonal_degree``, else
        ``[N, d, d]``), applied to the node signals rather than to every edge block.
        Full maps are kept (``maps``): :meth:`SheafLaplacian.apply` computes
        :math:`L_F x` from them and the blocks ``off`` are formed only on access.
    """
    compact = maps.dim() == 3
    if maps.size(1) != 2 or not (compact or (maps.dim() == 4 and maps.size(2) == maps.size(3))):
        raise ValueError(f"sheaf_laplacian: maps must be [E, 2, d, d] (or [E, 2, d] for "
                         f"diagonal maps), got {list(maps.shape)}")
    if edge_index.dim() != 2 or edge_index.size(0) != 2 or edge_index.size(1) != maps.size(0):
        raise ValueError(f"sheaf_laplacian: edge_index must be [2, {maps.size(0)}] (one column "
                         f"per map pair), got {list(edge_index.shape)}")
    d = maps.size(-1)
    if stalk_dim is not None and stalk_dim != d:
        raise ValueError(f"sheaf_laplacian: stalk_dim is {stalk_dim}, the maps are {d} x {d}")
    row, col = edge_index.long()
    if compact:  # diagonal maps: every block is diagonal, elementwise products
        f_row, f_col = maps[:, 0], maps[:, 1]  # (E, d) each
        off = -(f_row * f_col)  # (E, d)
        degree = maps.new_zeros(num_nodes, d).index_add(0, row, f_row * f_row)
        degree = degree.index_add(0, col, f_col * f_col)  # (N, d)
        if not normalize:
            return SheafLaplacian(degree, off, row, col, graph)
        scale = (degree + 1.0).rsqrt()  # (N, d): (D + I)^{-1/2}
        return SheafLaplacian(scale * degree * scale,
                              scale.index_select(0, row) * off * scale.index_select(0, col),
                              row, col, graph)
    if orthonormal:  # D_v = deg(v) I
        count = torch.bincount(torch.cat([row, col]), minlength=num_nodes).to(maps.dtype)
        degree = count.view(-1, 1).expand(num_nodes, d)  # (N, d)
        if not normalize:
            return SheafLaplacian(torch.diag_embed(degree), None, row, col, graph, maps=maps)
        return SheafLaplacian(torch.diag_embed(degree), None, row, col, graph,
                              scale=(degree + 1.0).rsqrt(), maps=maps)
    f_row, f_col = maps[:, 0], maps[:, 1]  # (E, d, d) each
    if normalize:
        if diagonal_degree is None:
            eye = torch.eye(d, dtype=torch.bool, device=maps.device)
            diagonal_degree = not bool(maps.masked_select(~eye).any())
        if diagonal_degree:
            # every F^T F is diagonal: its diagonal is the maps' squared column norms,
            # and (D + I)^{-1/2} is elementwise, kept factored (applied to the N node
            # signals in apply, not to every edge block)
            degree = maps.new_zeros(num_nodes, d).index_add(0, row, (f_row * f_row).sum(1))
            degree = degree.index_add(0, col, (f_col * f_col).sum(1))  # (N, d)
            return SheafLaplacian(torch.diag_embed(degree), None, row, col, graph,
                                  scale=(degree + 1.0).rsqrt(), maps=maps)
    name = normalize_name(backend) if isinstance(backend, str) else backend
    if name in ("auto", "cpu") and row.numel():  # D_v = sum_e F_v^T F_v, (N, d, d)
        if graph is None or graph.device != maps.device:
            graph = sheaf_graph(edge_index, num_nodes)
        degree = block_degree(maps, graph, name)
    else:
        degree = block_degree_reference(maps, row, col, num_nodes)
    if not normalize:
        return SheafLaplacian(degree, None, row, col, graph, maps=maps)
    eye = torch.eye(d, dtype=maps.dtype, device=maps.device)
    scale = sym_matrix_power(degree + eye, -0.5)  # (N, d, d): (D_v + I)^{-1/2}
    return SheafLaplacian(degree, None, row, col, graph, scale=scale,
                          maps=maps)  # factored: S L_F S


def diagonal_sheaf_laplacian(maps: Tensor, graph: RelGraph,
                             normalize: bool = True) -> SheafLaplacian:
    r"""The Laplacian of :func:`sheaf_laplacian` for diagonal maps given per incidence,
    in factored form: blocks of :math:`L_F` and ``scale`` :math:`= (D+I)^{-1/2}`
    (see :class:`SheafLaplacian`), the same operator up to rounding.

    The fast path of :class:`SheafConv` (every backend but ``"reference"``): the
    degree is one sparse product over the incidences instead of two ``index_add``,
    and the normaliser is applied to the ``N`` node signals in
    :meth:`SheafLaplacian.apply` instead of to every edge block, which saves two
    gathers and two products per edge, forward and backward.

    Args:
        maps: ``[2E, d]`` :meth:`RestrictionMaps.incidence_maps`: row ``e`` is
            :math:`F_{row \trianglelefteq e}`, row ``E + e`` is :math:`F_{col \trianglelefteq e}`.
        graph: the :func:`sheaf_graph` of the ``E`` undirected edges.
        normalize: the :math:`(D+I)^{-1/2}` normalisation (default ``True``).

    Returns:
        :class:`SheafLaplacian` with diagonal blocks; differentiable w.r.t. ``maps``.
    """
    num_edges = graph.num_edges // 2
    if maps.dim() != 2 or maps.size(0) != 2 * num_edges:
        raise ValueError(f"diagonal_sheaf_laplacian: maps must be [2E, d] = [{2 * num_edges}, d] "
                         f"(one row per incidence of the graph), got {list(maps.shape)}")
    inc = _incidence(graph, maps.dtype)
    # off (E, d): -F_row F_col; degree (N, d): D_v = Σ_e F_v²
    off, degree = _DiagonalBlocks.apply(maps.contiguous(), inc.node, inc.to_node)
    row, col = inc.node[:num_edges], inc.other[:num_edges]
    if not normalize:
        return SheafLaplacian(degree, off, row, col, graph)
    return SheafLaplacian(degree, off, row, col, graph, scale=(degree + 1.0).rsqrt())


# -- the layer ------------------------------------------------------------------------------


class SheafConv(nn.Module):
    r"""A sheaf convolution layer, from Bodnar et al. (2022), "Neural Sheaf Diffusion:
    A Topological Perspective on Heterophily and Oversmoothing in GNNs"
    (https://arxiv.org/abs/2202.04579), with the linear update of sheaf recommenders
    (Purificato et al. 2023, "Sheaf Neural Networks for Graph-based Recommender
    Systems", https://arxiv.org/abs/2304.09097).

    For node stalks :math:`X \in \mathbb{R}^{Nd \times f}`, restriction maps learned
    from :math:`X` (:class:`RestrictionMaps`) and the normalised sheaf Laplacian
    :math:`\Delta_F` (:func:`sheaf_laplacian`), the update is either NSD's
    diffusion (Eq. 13, ``update="diffusion"``):

    .. math::
        X' = \big(1 + \tanh(\varepsilon)\big) \odot X
             - \sigma\big(\Delta_F (I_N \otimes W_1) X W_2\big),

    with a learned :math:`\varepsilon \in \mathbb{R}^d` per stalk coordinate
    (bounded by :math:`\tanh` as in NSD's code), :math:`W_1 \in \mathbb{R}^{d \times d}`,
    :math:`W_2 \in \mathbb{R}^{f \times f}` and :math:`\sigma` = ELU; or the
    parameter-free step of heat diffusion (``update="linear"``):

    .. math::
        X' = X - \alpha \Delta_F X .

    With :math:`\alpha = 1` and identity maps, :math:`I - \Delta_F` is GCN's
    :math:`\tilde D^{-1/2}(A + I)\tilde D^{-1/2}` (:math:`\otimes I_d`); the spectrum
    of :math:`\Delta_F` lies in :math:`[0, 2)`, so for :math:`0 < \alpha \le 1` the
    step never amplifies a signal.

    Args:
        stalk_dim: ``d``.
        channels: ``f``, channels per stalk coordinate.
        restriction: map family of ``maps="per_layer"`` (``list_restriction_maps()``;
            default ``"diagonal"``); must be left ``None`` with ``maps="shared"``.
        update: ``"diffusion"`` (default) or ``"linear"``.
        maps: ``"per_layer"`` (default): the layer learns maps from its input;
            ``"shared"``: the caller passes maps (or a built Laplacian) to
            :meth:`forward`, e.g. one set for a stack of layers.
        normalize: the :math:`(D+I)^{-1/2}` normalisation (default ``True``).
        step: :math:`\alpha` of the linear update (default ``1.0``).
        activation: :math:`\sigma` of the diffusion update (default ``"elu"``, NSD's;
            the linear update has none).
        map_activation: activation of the map learner (default ``"tanh"``).
        backend: for diagonal maps, the ``rspmm`` backend of :meth:`SheafLaplacian.apply`,
            with the Laplacian built by :func:`diagonal_sheaf_laplacian` (default
            ``"auto"``); ``"reference"``: the specification, :func:`sheaf_laplacian`
            and gather / ``index_add`` (the tests compare the two, outputs and gradients).

    Shapes:
        - **x**: ``[N, d·f]`` (stalk-major) or ``[N, d, f]``.
        - **edge_index**: ``[2, E]``, any direction, duplicates allowed
          (made undirected by :func:`undirected_edge_index`).
        - **maps** (``maps="shared"``): ``[E', 2, d, d]`` (or ``[E', 2, d]`` diagonal
          maps) on the undirected edges of ``edge_index``, or a :class:`SheafLaplacian`.
        - **graph** (optional): :func:`sheaf_graph` of those undirected edges,
          prepared once for a fixed graph (else built per call for diagonal maps).
        - **output**: the shape of ``x``.
    """

    def __init__(self, stalk_dim: int, channels: int, restriction: str | None = None,
                 update: str = "diffusion", maps: str = "per_layer", normalize: bool = True,
                 step: float = 1.0, activation: str = "elu",
                 map_activation: str = "tanh", backend: str = "auto") -> None:
        super().__init__()
        for key, value in (("stalk_dim", stalk_dim), ("channels", channels)):
            if int(value) != value or value < 1:
                raise ValueError(f"SheafConv: {key} must be a positive integer, got {value!r}")
        if update not in UPDATES:
            raise ValueError(f"SheafConv: unknown update {update!r} (valid: {', '.join(UPDATES)})")
        if maps not in MAP_MODES:
            raise ValueError(f"SheafConv: unknown maps {maps!r} (valid: {', '.join(MAP_MODES)})")
        if not math.isfinite(step) or step <= 0:
            raise ValueError(f"SheafConv: step must be > 0, got {step!r}")
        self.stalk_dim = int(stalk_dim)
        self.channels = int(channels)
        self.update = update
        self.maps_mode = maps
        self.normalize = bool(normalize)
        self.step = float(step)
        self.activation_name = activation
        self.activation = SHEAF_ACTIVATIONS.get(activation)
        if normalize_name(backend) != "auto":
            BACKENDS.get(backend)  # an unknown name fails now, listing the backends
        self.backend = backend
        d, f = self.stalk_dim, self.channels
        if maps == "per_layer":
            family = resolve_restriction_maps("diagonal" if restriction is None else restriction)
            self.restriction: str | None = family.name
            self.restriction_maps: RestrictionMaps | None = family(d, d * f, map_activation)
        elif restriction is not None:
            raise ValueError(f"SheafConv: restriction={restriction!r} is for maps='per_layer'; "
                             f"with maps='shared' the maps come from forward's third argument")
        else:
            self.restriction, self.restriction_maps = None, None
        if update == "diffusion":
            self.weight_left = nn.Parameter(torch.empty(d, d))  # W_1, on the stalk
            self.weight_right = nn.Parameter(torch.empty(f, f))  # W_2, on the channels
            self.epsilon = nn.Parameter(torch.empty(d))
        else:
            self.register_parameter("weight_left", None)
            self.register_parameter("weight_right", None)
            self.register_parameter("epsilon", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """NSD's initialisation: :math:`W_1 = I`, :math:`W_2` orthogonal, :math:`\\varepsilon = 0`."""
        if self.restriction_maps is not None:
            self.restriction_maps.reset_parameters()
        if self.weight_left is not None:
            nn.init.eye_(self.weight_left)
            nn.init.orthogonal_(self.weight_right)
            nn.init.zeros_(self.epsilon)

    def laplacian(self, x: Tensor, edge_index: Tensor,
                  maps: Tensor | SheafLaplacian | None = None,
                  graph: RelGraph | None = None) -> SheafLaplacian:
        """The normalised Laplacian this layer applies to ``x`` (see :meth:`forward`)."""
        num_nodes = x.size(0)
        if self.restriction_maps is not None:
            if maps is not None:
                raise ValueError("SheafConv: maps='per_layer' learns its own maps; pass maps "
                                 "only with maps='shared'")
        elif maps is None:
            raise ValueError("SheafConv: maps='shared' needs the maps (or a SheafLaplacian) "
                             "as forward's third argument")
        elif isinstance(maps, SheafLaplacian):
            if maps.num_nodes != num_nodes or maps.stalk_dim != self.stalk_dim:
                raise ValueError(f"SheafConv: the Laplacian has {maps.num_nodes} nodes and "
                                 f"stalk dim {maps.stalk_dim}, x is {list(x.shape)}")
            return maps
        edges = undirected_edge_index(edge_index.to(x.device), num_nodes)
        learner = self.restriction_maps
        diagonal = learner.diagonal if learner is not None else maps.dim() == 3
        if diagonal and edges.size(1) and normalize_name(self.backend) != "reference":
            # fast path: incidence gathers with sparse-product backward, factored normaliser
            if graph is None or graph.device != x.device:
                graph = sheaf_graph(edges, num_nodes)
            elif graph.num_nodes != num_nodes or graph.num_edges != 2 * edges.size(1):
                raise ValueError(f"SheafConv: graph has {graph.num_nodes} nodes and "
                                 f"{graph.num_edges} directed edges; sheaf_graph of these "
                                 f"{edges.size(1)} edges on {num_nodes} nodes has "
                                 f"{2 * edges.size(1)}")
            if learner is not None:
                incidence = learner.incidence_maps(x.reshape(num_nodes, -1), graph)
            else:  # compact shared maps [E, 2, d] -> [2E, d]: all row ◁ e, then all col ◁ e
                incidence = maps.transpose(0, 1).reshape(2 * edges.size(1), -1)
            return diagonal_sheaf_laplacian(incidence, graph, self.normalize)
        if learner is not None:
            maps = learner.compact(x.reshape(num_nodes, -1), edges)
            return sheaf_laplacian(edges, maps, num_nodes, self.stalk_dim, self.normalize,
                                   learner.diagonal_degree, graph, self.backend,
                                   orthonormal=learner.orthonormal)
        # shared raw maps: the family is unknown here, so the normaliser checks for diagonal maps
        return sheaf_laplacian(edges, maps, num_nodes, self.stalk_dim, self.normalize,
                               graph=graph, backend=self.backend)

    def forward(self, x: Tensor, edge_index: Tensor,
                maps: Tensor | SheafLaplacian | None = None,
                graph: RelGraph | None = None) -> Tensor:
        d, f = self.stalk_dim, self.channels
        shape = x.shape
        if x.numel() != x.size(0) * d * f or x.dim() not in (2, 3):
            raise ValueError(f"SheafConv: x must be [N, {d * f}] or [N, {d}, {f}], "
                             f"got {list(shape)}")
        h = x.reshape(x.size(0), d, f)  # (N, d, f)
        lap = self.laplacian(h, edge_index, maps, graph)
        if self.update == "linear":
            return (h - self.step * lap.apply(h, self.backend)).reshape(shape)  # X - α Δ X
        z = (self.weight_left @ h) @ self.weight_right  # (I_N ⊗ W_1) X W_2: (N, d, f)
        z = self.activation(lap.apply(z, self.backend))
        out = (1.0 + torch.tanh(self.epsilon)).view(1, d, 1) * h - z  # NSD Eq. 13
        return out.reshape(shape)

    def extra_repr(self) -> str:
        return (f"stalk_dim={self.stalk_dim}, channels={self.channels}, "
                f"restriction={self.restriction!r}, update={self.update!r}, "
                f"maps={self.maps_mode!r}, normalize={self.normalize}")
