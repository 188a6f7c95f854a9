"""Compile the rspmm Triton kernels for a CUDA target without a GPU.

Runs Triton's whole compiler (front end, TTIR → TTGIR → LLVM → PTX, and the
``ptxas`` bundled with the triton wheel) for one (message, reduction, dtype)
variant, so a machine without a GPU can check that every kernel compiles in
non-interpreter mode. Must run in a process where triton was imported
*without* ``TRITON_INTERPRET=1``. Used by ``tests/ops/test_triton.py``.
"""

from __future__ import annotations

import triton
import triton.language as tl
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from graphlearn.ops.spec import MESSAGES, REDUCTIONS
from graphlearn.ops.triton import _kernels

__all__ = ["compile_variant"]

_INDEX = "*i64"


def _compile(fn, types: dict[str, str], constexprs: dict, arch: int, num_warps: int):
    signature = {name: ("constexpr" if name in constexprs else types[name])
                 for name in fn.arg_names}
    source = ASTSource(fn=fn, signature=signature, constexprs=constexprs)
    return triton.compile(source, target=GPUTarget("cuda", arch, 32),
                          options={"num_warps": num_warps, "enable_fp_fusion": False})


def compile_variant(message: str, reduce: str, dtype: str = "fp32", arch: int = 90,
                    num_warps: int = 4) -> list[str]:
    """Compile the forward and backward kernels of one variant for ``sm_<arch>``;
    returns the names of the kernels compiled. ``dtype``: fp32, bf16, fp16 or fp64."""
    msg, red = MESSAGES.get(message).code, REDUCTIONS.get(reduce).code
    acc = tl.float64 if dtype == "fp64" else tl.float32
    acc_ptr = "*fp64" if dtype == "fp64" else "*fp32"
    value = f"*{dtype}"
    geometry = {"D": "i32", "d": "i32", "h": "i32", "rstride": "i32", "rwidth": "i32"}
    values = {"x": value, "rel": value, "weight": value, "out": value}
    saved = {"arg1": "*i32", "arg2": "*i32", "varpos": "*i8"}
    block_e, block_f = _kernels.launch_config(1 << 16)
    bwd_block_e, _ = _kernels.launch_config(1 << 16, backward=True)
    compiled = []

    _compile(_kernels._fwd_kernel,
             {"rowptr": _INDEX, "col": _INDEX, "etype": _INDEX, **values, **saved, **geometry,
              "eps": "fp32"},
             {"MSG": msg, "RED": red, "HAS_W": True, "TRACK": True, "ACC": acc,
              "BLOCK_E": block_e, "BLOCK_F": block_f}, arch, num_warps)
    compiled.append("_fwd_kernel")
    backward = {"MSG": msg, "RED": red, "HAS_W": True, "ACC": acc, "BLOCK_E": bwd_block_e,
                "BLOCK_F": block_f}
    _compile(_kernels._bwd_src_kernel,
             {"colptr": _INDEX, "csc_row": _INDEX, "csc_pos": _INDEX, "rowptr": _INDEX,
              "etype": _INDEX, **values, "grad_out": value, **saved, "grad_x": value,
              "dw_part": acc_ptr, **geometry, "num_edges": "i32"},
             {**backward, "NEED_X": True, "NEED_W": True}, arch, num_warps)
    compiled.append("_bwd_src_kernel")
    if MESSAGES.get(message).uses_rel:
        _compile(_kernels._bwd_rel_kernel,
                 {"seg_start": _INDEX, "seg_end": _INDEX, "seg_rel": _INDEX, "order": _INDEX,
                  "row": _INDEX, "col": _INDEX, "rowptr": _INDEX, **values, "grad_out": value,
                  **saved, "rel_part": acc_ptr, **geometry},
                 backward, arch, num_warps)
        compiled.append("_bwd_rel_kernel")
    return compiled
