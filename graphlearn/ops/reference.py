r"""The plain-PyTorch generalized relational SpMM: the specification.

.. math::
    \mathbf{out}_i = \bigoplus_{(j \to i,\, r) \in \mathcal{E}}
        w_e \cdot \phi(\mathbf{rel}_r, \mathbf{x}_j)

gathered edge by edge (``index_select`` → message → ``index_add_`` /
``scatter_reduce``); it materialises ``[E, D]`` message tensors and lets
PyTorch's autograd differentiate it. Every fused backend is tested against it.

Definitions (shared by every backend):

* messages ``φ``: ``none`` = ``x_j``; ``add`` = ``rel_r + x_j``; ``mul`` =
  ``rel_r * x_j``; ``rotate`` = complex product (layout in
  :mod:`graphlearn.ops.spec`). The edge weight multiplies the message:
  ``m_e = w_e · φ``.
* ``sum``; ``mean`` = sum / in-degree (number of in-edges, not the sum of the
  weights); ``max`` / ``min`` per feature.
* ``pna``: mean, max, min and ``std = sqrt(relu(var) + eps)`` of the weighted
  messages ``m_e`` (note: NBFNet-PyG weights ``x²`` instead of squaring the
  weighted message; here every statistic sees the same ``m_e``). The variance
  is computed from sums **shifted by the node's first message** ``K`` (CSR
  order): ``var = E[(m − K)²] − E[m − K]²``. It equals ``E[m²] − E[m]²`` in
  exact arithmetic, but does not cancel catastrophically when the messages'
  mean is large against their spread (unshifted, the rounding of the
  difference is ``≈ u·E[m²]`` and the std's gradient amplifies it by up to
  ``E[m²]/eps``). Every backend uses the same shift, so their rounding agrees.
* A node with no in-edges gets 0 from every reduction (all four PNA
  statistics included, std too) and passes no gradient.
* ``max``/``min`` gradients go to one edge per (node, feature): the **first
  edge in CSR order** attaining the extreme, CSR order being the original edge
  order among the node's in-edges (:class:`~graphlearn.ops.graph.RelGraph`
  sorts stably). This differs from ``scatter_reduce``'s backward, which splits
  the gradient among ties; the fused kernels route it the same way as here.
"""

from __future__ import annotations

import torch
from torch import Tensor

from graphlearn.ops.graph import RelGraph
from graphlearn.ops.spec import RSpmmSpec

__all__ = ["first_message", "messages_reference", "rspmm_reference"]


def messages_reference(
    graph: RelGraph, x: Tensor, rel: Tensor | None, weight_csr: Tensor | None, spec: RSpmmSpec
) -> Tensor:
    """``[E, D]`` messages ``m_e = w_e · φ(rel_r, x_j)`` in CSR order."""
    num_edges = graph.num_edges
    batch, block = spec.batch_size, spec.block
    xj = x.index_select(0, graph.col).view(num_edges, batch, block)  # (E, B, d)
    name = spec.message.name
    if name == "none":
        msg = xj
    else:
        rr = rel.index_select(0, graph.edge_type)  # (E, d) or (E, B·d)
        rr = rr.view(num_edges, 1 if spec.rel_shared else batch, block)
        if name == "add":
            msg = rr + xj
        elif name == "mul":
            msg = rr * xj
        else:  # rotate: complex product, real halves first
            x_re, x_im = xj.chunk(2, dim=-1)
            r_re, r_im = rr.chunk(2, dim=-1)
            msg = torch.cat([x_re * r_re - x_im * r_im, x_re * r_im + x_im * r_re], dim=-1)
    if weight_csr is not None:
        msg = weight_csr.view(num_edges, 1, 1) * msg
    return msg.reshape(num_edges, spec.width)


def _extreme(msg: Tensor, row: Tensor, num_nodes: int, largest: bool) -> Tensor:
    """Per-feature max/min over in-edges; gradient to the first extreme edge in CSR order."""
    num_edges, width = msg.shape
    index = row.view(-1, 1).expand(num_edges, width)
    value = msg.new_zeros(num_nodes, width).scatter_reduce(
        0, index, msg.detach(), "amax" if largest else "amin", include_self=False
    )
    hit = msg.detach() == value.index_select(0, row)
    position = torch.arange(num_edges, device=msg.device).view(-1, 1)
    position = torch.where(hit, position, num_edges)
    first = torch.full((num_nodes, width), num_edges, dtype=torch.long, device=msg.device)
    first = first.scatter_reduce(0, index, position, "amin", include_self=True)
    # Nodes without in-edges point at an appended zero row.
    padded = torch.cat([msg, msg.new_zeros(1, width)])
    return padded.gather(0, first)


def first_message(graph: RelGraph, msg: Tensor) -> Tensor:
    """``[T, D]``: each target's first in-edge message in CSR order (0 without
    in-edges), detached — PNA's variance shift ``K``. The variance does not
    depend on ``K``, so its exact gradient flows through the deviations alone."""
    if msg.shape[0] == 0:
        return msg.new_zeros(graph.num_targets, msg.shape[1])
    first = graph.rowptr[:-1].clamp(max=msg.shape[0] - 1)
    shift = msg.detach().index_select(0, first)
    return torch.where((graph.in_degree > 0).view(-1, 1), shift, torch.zeros_like(shift))


def rspmm_reference(
    graph: RelGraph,
    x: Tensor,
    rel: Tensor | None,
    edge_weight: Tensor | None,
    spec: RSpmmSpec,
) -> Tensor:
    """Generalized relational SpMM in plain PyTorch (see the module docstring).

    Args:
        graph: the sorted graph.
        x: ``[V, B·d]`` node features.
        rel: ``[R, d]`` or ``[R, B·d]`` relation features (ignored for ``none``).
        edge_weight: ``[E]`` in ``edge_index`` order, or ``None``.
        spec: the validated call (:func:`graphlearn.ops.spec.resolve_spec`).

    Returns:
        ``[T, B·d]``, or ``[T, B·4d]`` for ``pna`` (``T = graph.num_targets``).
    """
    num_nodes = graph.num_targets  # output rows
    weight_csr = edge_weight.index_select(0, graph.perm) if edge_weight is not None else None
    msg = messages_reference(graph, x, rel, weight_csr, spec)  # (E, D)
    row = graph.row
    reduce = spec.reduce.name
    deg = graph.in_degree.clamp(min=1).to(x.dtype).view(-1, 1)
    if reduce in ("sum", "mean", "pna"):
        total = x.new_zeros(num_nodes, spec.width).index_add_(0, row, msg)
        if reduce == "sum":
            return total
        mean = total / deg
        if reduce == "mean":
            return mean
    if reduce == "max":
        return _extreme(msg, row, num_nodes, largest=True)
    if reduce == "min":
        return _extreme(msg, row, num_nodes, largest=False)
    # PNA: the four statistics, block by block.
    dev = msg - first_message(graph, msg).index_select(0, row)
    dev_mean = x.new_zeros(num_nodes, spec.width).index_add_(0, row, dev) / deg
    dev_sq_mean = x.new_zeros(num_nodes, spec.width).index_add_(0, row, dev * dev) / deg
    std = torch.sqrt(torch.relu(dev_sq_mean - dev_mean * dev_mean) + spec.eps)
    has_edges = (graph.in_degree > 0).view(-1, 1)
    std = torch.where(has_edges, std, torch.zeros_like(std))
    maximum = _extreme(msg, row, num_nodes, largest=True)
    minimum = _extreme(msg, row, num_nodes, largest=False)
    stats = torch.stack([mean, maximum, minimum, std], dim=1)  # (V, 4, B·d)
    stats = stats.view(num_nodes, 4, spec.batch_size, spec.block).transpose(1, 2)
    return stats.reshape(num_nodes, spec.out_width)  # (V, B·4d)
