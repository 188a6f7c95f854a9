"""The fused CPU backend of ``rspmm`` (C++ in ``rspmm.cpp``, built lazily, see ``_build``).

Forward and backward run in O(V·D) memory (no ``[E, D]`` messages); gradients
for ``x``, ``rel`` and the edge weight come from the fused backward. Double
backward is not supported (the backward is ``once_differentiable``).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from graphlearn.ops.cpu._build import cpu_extension_error, extension_dir, load_cpu_extension
from graphlearn.ops.graph import RelGraph
from graphlearn.ops.spec import RSpmmSpec, fused_inputs

__all__ = [
    "SUPPORTED_DTYPES",
    "cpu_extension_error",
    "extension_dir",
    "load_cpu_extension",
    "rspmm_cpu",
]

SUPPORTED_DTYPES = (torch.float32, torch.float64)


class _RSpmmCPU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, rel, weight_csr, graph, spec, ext, for_backward):  # type: ignore[override]
        code_m, code_r = spec.message.code, spec.reduce.code
        out, arg, varpos = ext.forward(
            graph.rowptr, graph.col, graph.edge_type, x, rel, weight_csr,
            code_m, code_r, spec.batch_size, spec.block, spec.rel_block_stride, spec.eps,
            for_backward,
        )
        # pna: the backward finds the max/min edges again from the saved statistics.
        saved_out = out if spec.reduce.name == "pna" else None
        ctx.save_for_backward(x, rel, weight_csr, saved_out, arg, varpos)
        ctx.graph, ctx.spec, ctx.ext = graph, spec, ext
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):  # type: ignore[override]
        x, rel, weight_csr, out, arg, varpos = ctx.saved_tensors
        graph, spec = ctx.graph, ctx.spec
        need_x, need_rel, need_w = ctx.needs_input_grad[:3]
        if not (need_x or need_rel or need_w):
            return None, None, None, None, None, None, None
        grad_x, grad_rel, grad_w = ctx.ext.backward(
            graph.rowptr, graph.colptr, graph.csc_row, graph.csc_pos, graph.col, graph.edge_type,
            x, rel, weight_csr, out, grad_out.contiguous(), arg, varpos,
            spec.message.code, spec.reduce.code, spec.batch_size, spec.block,
            spec.rel_block_stride, bool(need_x), bool(need_rel), bool(need_w),
        )
        return (
            grad_x if need_x else None,
            grad_rel if need_rel else None,
            grad_w if need_w else None,
            None, None, None, None,
        )


def rspmm_cpu(
    graph: RelGraph,
    x: Tensor,
    rel: Tensor | None,
    edge_weight: Tensor | None,
    spec: RSpmmSpec,
) -> Tensor:
    """Fused CPU ``rspmm`` (same arguments and result as ``rspmm_reference``).

    Raises:
        RuntimeError: the kernel could not be built (the reason is in the message).
    """
    ext = load_cpu_extension()
    if ext is None:
        raise RuntimeError(f"the fused CPU kernel is unavailable: {cpu_extension_error()}")
    x, rel, weight_csr, for_backward = fused_inputs(graph, x, rel, edge_weight, spec)
    return _RSpmmCPU.apply(x, rel, weight_csr, graph, spec, ext, for_backward)
