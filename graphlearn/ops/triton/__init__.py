"""The Triton backend of ``rspmm`` (kernels in ``_kernels``, imported on first use).

Importing this package imports neither ``triton`` nor the kernels: the first
call does, and Triton compiles each (message, reduction, dtype, block size)
variant on its first launch into its own cache (``~/.triton/cache``, or
``$TRITON_CACHE_DIR``).

Where it runs:

* CUDA tensors (float32, bfloat16, float16, float64; accumulation in float32,
  float64 for float64): the GPU path; ``backend="auto"`` picks it there.
* CPU tensors only in Triton's interpreter (``TRITON_INTERPRET=1`` set before
  the first call): every program runs in Python through numpy — slow, meant
  for the correctness tests on machines without a GPU.

Forward and backward are fused (no ``[E, D]`` message tensor; O(V·D) memory
plus the ``[V, D]`` int32 arg-max/arg-min arrays of max/min/pna): see
:mod:`graphlearn.ops.triton._kernels` for the kernel design. Double backward
is not supported (the backward is ``once_differentiable``).
"""

from __future__ import annotations

import os
import sys

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from graphlearn.ops.graph import RelGraph
from graphlearn.ops.spec import RSpmmSpec, fused_inputs
from graphlearn.typing import has_module, with_triton

__all__ = ["SUPPORTED_DTYPES", "interpreter_requested", "rspmm_triton", "triton_unavailable"]

SUPPORTED_DTYPES = (torch.float32, torch.bfloat16, torch.float16, torch.float64)
INTERPRET_ENV = "TRITON_INTERPRET"


def interpreter_requested() -> bool:
    """``TRITON_INTERPRET`` is set to a true value (Triton's own reading of it)."""
    return os.environ.get(INTERPRET_ENV, "0").lower() in ("1", "true", "on", "yes")


def _loaded_mode() -> bool | None:
    """Whether the imported ``triton.language`` runs in the interpreter (Triton fixes
    this when it is first imported); ``None`` while it is not imported."""
    lang = sys.modules.get("triton.language")
    if lang is None:
        return None
    return type(getattr(lang, "zeros", None)).__name__ == "InterpretedFunction"


def triton_unavailable(x: Tensor, spec: RSpmmSpec | None = None) -> str | None:
    """Why the Triton backend cannot run on ``x`` (``None`` when it can)."""
    if not with_triton():
        return "triton is not installed (pip install triton)"
    if x.dtype not in SUPPORTED_DTYPES:
        return f"it supports float32, bfloat16, float16 and float64, got {x.dtype}"
    interpreted = _loaded_mode()
    if interpreted is None:
        interpreted = interpreter_requested()
    if x.device.type == "cuda":
        if interpreted:
            return (f"Triton runs in interpreter mode in this process ({INTERPRET_ENV}=1), "
                    f"which runs CPU tensors only")
        return None
    if x.device.type == "cpu":
        if not interpreter_requested():
            return (f"it runs on CUDA tensors (CPU tensors only in Triton's interpreter, "
                    f"{INTERPRET_ENV}=1), got a CPU tensor")
        if not interpreted:
            return (f"triton was imported before {INTERPRET_ENV}=1 was set; set it before "
                    f"anything imports triton (torch_geometric does) to run CPU tensors")
        if not has_module("numpy"):
            return "Triton's interpreter needs numpy"
        return None
    return f"it runs on CUDA tensors, got {x.device}"


class _RSpmmTriton(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, rel, weight_csr, graph, spec, track):  # type: ignore[override]
        from graphlearn.ops.triton import _kernels

        out, arg1, arg2, varpos = _kernels.forward(graph, x, rel, weight_csr, spec, track)
        saved_out = out if spec.reduce.name == "pna" else None
        ctx.save_for_backward(x, rel, weight_csr, saved_out, arg1, arg2, varpos)
        ctx.graph, ctx.spec = graph, spec
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):  # type: ignore[override]
        from graphlearn.ops.triton import _kernels

        x, rel, weight_csr, out, arg1, arg2, varpos = ctx.saved_tensors
        need_x, need_rel, need_w = ctx.needs_input_grad[:3]
        grad_x, grad_rel, grad_w = _kernels.backward(
            ctx.graph, x, rel, weight_csr, out, grad_out.contiguous(), arg1, arg2, varpos,
            ctx.spec, bool(need_x), bool(need_rel), bool(need_w),
        )
        return grad_x, grad_rel, grad_w, None, None, None


def rspmm_triton(
    graph: RelGraph,
    x: Tensor,
    rel: Tensor | None,
    edge_weight: Tensor | None,
    spec: RSpmmSpec,
) -> Tensor:
    """Fused Triton ``rspmm`` (same arguments and result as ``rspmm_reference``)."""
    if graph.num_edges >= 2**31:
        raise ValueError(f"rspmm (triton): more than 2^31 - 1 edges ({graph.num_edges})")
    x, rel, weight_csr, track = fused_inputs(graph, x, rel, edge_weight, spec)
    return _RSpmmTriton.apply(x, rel, weight_csr, graph, spec, track)
