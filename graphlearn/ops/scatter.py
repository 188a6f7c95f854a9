"""The ``torch_scatter`` backend of ``rspmm``: gather, message, segment reductions.

Optional: used only when the ``torch_scatter`` package is importable (it has
no wheels for every torch; a source build takes about 20 minutes). It
materialises the ``[E, D]`` messages like the reference (the same
``messages_reference`` gather) and reduces them over the CSR rows with
``torch_scatter.segment_csr``, so its memory is O(E·D) and autograd
differentiates it. ``backend="auto"`` never picks it: on CPU the fused kernel
is faster and uses O(V·D) memory; on CUDA the Triton kernels are the fused path.

max/min keep the package-wide tie rule (the gradient goes to the first edge in
CSR order attaining the extreme): the values come from ``segment_csr``, the
first position attaining them from a second ``segment_csr(min)`` over edge
positions, whatever ``torch_scatter``'s own arg-max does with ties.
"""

from __future__ import annotations

import torch
from torch import Tensor

from graphlearn.ops.graph import RelGraph
from graphlearn.ops.reference import first_message, messages_reference
from graphlearn.ops.spec import RSpmmSpec
from graphlearn.typing import with_torch_scatter

__all__ = ["rspmm_torch_scatter", "torch_scatter_unavailable"]


def torch_scatter_unavailable(x: Tensor, spec: RSpmmSpec | None = None) -> str | None:
    """Why the backend cannot run (``None`` when ``torch_scatter`` is importable)."""
    if not with_torch_scatter():
        return ("torch_scatter is not installed (optional: pip install torch-scatter, "
                "built from source for this torch)")
    return None


def _first_extreme(ts, msg: Tensor, graph: RelGraph, largest: bool) -> Tensor:
    """Per-feature max/min over each row's edges; the gradient goes to the first extreme edge."""
    num_edges, width = msg.shape
    with torch.no_grad():
        value = ts.segment_csr(msg.detach(), graph.rowptr, reduce="max" if largest else "min")
        hit = msg.detach() == ts.gather_csr(value, graph.rowptr)  # (E, D)
        position = torch.arange(num_edges, device=msg.device).view(-1, 1).expand(-1, width)
        position = torch.where(hit, position, num_edges)
        first = ts.segment_csr(position, graph.rowptr, reduce="min")  # (V, D)
        # Nodes without in-edges point at an appended zero row.
        first = torch.where((graph.in_degree > 0).view(-1, 1), first, num_edges)
    padded = torch.cat([msg, msg.new_zeros(1, width)])
    return padded.gather(0, first)


def rspmm_torch_scatter(
    graph: RelGraph,
    x: Tensor,
    rel: Tensor | None,
    edge_weight: Tensor | None,
    spec: RSpmmSpec,
) -> Tensor:
    """``rspmm`` through ``torch_scatter.segment_csr`` (same arguments and result as
    ``rspmm_reference``)."""
    import torch_scatter as ts

    weight_csr = edge_weight.index_select(0, graph.perm) if edge_weight is not None else None
    msg = messages_reference(graph, x, rel, weight_csr, spec)  # (E, D), CSR order
    reduce = spec.reduce.name
    if reduce in ("sum", "mean"):
        return ts.segment_csr(msg, graph.rowptr, reduce=reduce)
    if reduce in ("max", "min"):
        return _first_extreme(ts, msg, graph, largest=reduce == "max")
    # PNA: [mean | max | min | std] per query block.
    num_nodes = graph.num_targets  # output rows
    deg = graph.in_degree.clamp(min=1).to(msg.dtype).view(-1, 1)
    mean = ts.segment_csr(msg, graph.rowptr, reduce="sum") / deg
    dev = msg - first_message(graph, msg).index_select(0, graph.row)  # shifted: see reference
    dev_mean = ts.segment_csr(dev, graph.rowptr, reduce="sum") / deg
    dev_sq_mean = ts.segment_csr(dev * dev, graph.rowptr, reduce="sum") / deg
    std = torch.sqrt(torch.relu(dev_sq_mean - dev_mean * dev_mean) + spec.eps)
    std = torch.where((graph.in_degree > 0).view(-1, 1), std, torch.zeros_like(std))
    maximum = _first_extreme(ts, msg, graph, largest=True)
    minimum = _first_extreme(ts, msg, graph, largest=False)
    stats = torch.stack([mean, maximum, minimum, std], dim=1)  # (V, 4, B·d)
    stats = stats.view(num_nodes, 4, spec.batch_size, spec.block).transpose(1, 2)
    return stats.reshape(num_nodes, spec.out_width)  # (V, B·4d)
