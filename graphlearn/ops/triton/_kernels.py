r"""Triton kernels of ``rspmm`` (imported only when the ``triton`` backend runs).

Layout and math are those of :mod:`graphlearn.ops.spec` and
:mod:`graphlearn.ops.reference`; the launch functions at the bottom take the
sorted :class:`~graphlearn.ops.graph.RelGraph` arrays. Every value is read in
its storage dtype and accumulated in float32 (float64 for float64 inputs).

**Forward** (``_fwd_kernel``): one program per (target row ``i``, feature block),
grid ``(V, cdiv(D, BLOCK_F))``. The program walks the CSR row
``rowptr[i]:rowptr[i+1]`` ``BLOCK_E`` edges at a time, builds the
``[BLOCK_E, BLOCK_F]`` message tile ``m = w · φ(rel_r, x_j)`` and folds it into
register accumulators (sum, the shifted sums of PNA's variance, max, min): no atomics. max/min keep
the CSR position of the *first* edge attaining the extreme (smallest position
among equal values inside a tile, strict comparison across tiles), as int32
``[V, D]`` arrays saved for the backward only when one can follow.

**Backward**, given ``g_e = d loss / d m_e`` rebuilt per edge from ``grad_out``
(``_edge_grad``: ``sum`` ``grad_out[i]``; ``mean`` ``/n``; ``max``/``min`` the
gradient where the saved arg is this edge; ``pna``
``g_mean/n + [var>0]·g_std·(m_e − mean)/(n·std)`` plus the routed max/min terms):

* ``_bwd_src_kernel``: one program per (source ``j``, feature block) walking the
  CSC (by-source) slots of ``j``: ``grad_x[j] = Σ_e w_e J_x(φ)ᵀ g_e`` is owned by
  the program (no atomics), and per edge the partial dot product
  ``<g_e, φ_e>`` over this feature block goes to ``dw_part[block, e]``
  (summed over blocks afterwards: ``grad_edge_weight``).
* ``_bwd_rel_kernel``: one program per (segment, feature block), where the edges
  are sorted by relation and cut into segments of at most ``SEGMENT`` edges of
  one relation; each program sums ``w_e J_rel(φ)ᵀ g_e`` over its segment into
  ``rel_part[segment]``, and the segments of a relation are added afterwards
  (``index_add_``): deterministic, and balanced however skewed the relations.
"""

from __future__ import annotations

import weakref

import torch
import triton
import triton.language as tl
from torch import Tensor

from graphlearn.ops.graph import RelGraph
from graphlearn.ops.spec import RSpmmSpec

__all__ = ["backward", "forward", "launch_config", "relation_segments"]

#: Widest feature block of one program; tests lower it to exercise several blocks.
MAX_BLOCK_F = 128
#: Edges per tile (rows of the ``[BLOCK_E, BLOCK_F]`` message tile) in the forward,
#: and in the backward, whose tiles hold more live values (g, φ, their rotate partners).
BLOCK_E = 16
BWD_BLOCK_E = 8
#: Most edges of one relation a ``_bwd_rel_kernel`` program reduces.
SEGMENT = 512


def launch_config(width: int, backward: bool = False) -> tuple[int, int]:
    """``(BLOCK_E, BLOCK_F)`` for ``width`` features."""
    block_f = max(1, min(MAX_BLOCK_F, triton.next_power_of_2(max(width, 1))))
    return (BWD_BLOCK_E if backward else BLOCK_E), block_f


# --------------------------------------------------------------------- helpers
@triton.jit
def _phi(xc, xp, rc, rp, is_real, MSG: tl.constexpr):
    """φ(rel, x) at the columns ``c``; ``xp``/``rp`` are the rotate partners (c ± d/2)."""
    if MSG == 0:
        res = xc
    elif MSG == 1:
        res = rc + xc
    elif MSG == 2:
        res = rc * xc
    else:  # complex product, real halves first: (xr + i xi)(rr + i ri)
        res = tl.where(is_real, xc * rc - xp * rp, xp * rc + xc * rp)
    return res


@triton.jit
def _edge_grad(grad_out, out, arg1, arg2, varpos, i, k, n, cols, mask, msg, D, d,
               RED: tl.constexpr, ACC: tl.constexpr):
    """``g = d loss / d m_e`` on a tile: edges (targets ``i``, CSR positions ``k``,
    in-degrees ``n`` of ``i``) × columns ``cols``; ``msg`` = m_e there (PNA only)."""
    i2 = i[:, None]
    if RED == 4:  # pna: block b of a row is [mean | max | min | std]
        b = cols // d
        base = i2 * (4 * D) + (b * (4 * d) + (cols - b * d))[None, :]
        g_mean = tl.load(grad_out + base, mask=mask, other=0.0).to(ACC)
        g_max = tl.load(grad_out + base + d, mask=mask, other=0.0).to(ACC)
        g_min = tl.load(grad_out + base + 2 * d, mask=mask, other=0.0).to(ACC)
        g_std = tl.load(grad_out + base + 3 * d, mask=mask, other=0.0).to(ACC)
        mean = tl.load(out + base, mask=mask, other=0.0).to(ACC)
        std = tl.load(out + base + 3 * d, mask=mask, other=1.0).to(ACC)
        off = i2 * D + cols[None, :]
        pos = tl.load(varpos + off, mask=mask, other=0)
        a_max = tl.load(arg1 + off, mask=mask, other=-1)
        a_min = tl.load(arg2 + off, mask=mask, other=-1)
        n2 = n[:, None]
        # d std / d m_e = [var > 0] (m_e - mean) / (n std)
        slope = tl.where(pos != 0, g_std / (n2 * std), 0.0)
        g = g_mean / n2 + slope * (msg - mean)
        k2 = k[:, None]
        g += tl.where(a_max == k2, g_max, 0.0) + tl.where(a_min == k2, g_min, 0.0)
    else:
        off = i2 * D + cols[None, :]
        g = tl.load(grad_out + off, mask=mask, other=0.0).to(ACC)
        if RED == 1:
            g = g / n[:, None]
        elif RED == 2 or RED == 3:
            arg = tl.load(arg1 + off, mask=mask, other=-1)
            g = tl.where(arg == k[:, None], g, 0.0)
    return tl.where(mask, g, 0.0)


# --------------------------------------------------------------------- forward
@triton.jit
def _fwd_kernel(rowptr, col, etype, x, rel, weight, out, arg1, arg2, varpos,
                D, d, h, rstride, rwidth, eps,
                MSG: tl.constexpr, RED: tl.constexpr, HAS_W: tl.constexpr,
                TRACK: tl.constexpr, ACC: tl.constexpr,
                BLOCK_E: tl.constexpr, BLOCK_F: tl.constexpr):
    i = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BLOCK_F + tl.arange(0, BLOCK_F)  # columns of x
    cmask = cols < D
    b = cols // d
    f = cols - b * d
    rcols = b * rstride + f  # columns of rel
    is_real = f < h
    pcols = tl.where(is_real, cols + h, cols - h)  # rotate partners
    prcols = tl.where(is_real, rcols + h, rcols - h)
    start = tl.load(rowptr + i)
    end = tl.load(rowptr + i + 1)
    lanes = tl.arange(0, BLOCK_E)

    acc_sum = tl.zeros([BLOCK_F], ACC)
    acc_dev = tl.zeros([BLOCK_F], ACC)  # pna: sums shifted by the row's first message
    acc_sq = tl.zeros([BLOCK_F], ACC)
    shift = tl.zeros([BLOCK_F], ACC)
    hi = tl.full([BLOCK_F], float("-inf"), ACC)
    lo = tl.full([BLOCK_F], float("inf"), ACC)
    arg_hi = tl.full([BLOCK_F], -1, tl.int64)
    arg_lo = tl.full([BLOCK_F], -1, tl.int64)
    for k0 in range(start, end, BLOCK_E):
        k = k0 + lanes
        emask = k < end
        mask = emask[:, None] & cmask[None, :]
        j = tl.load(col + k, mask=emask, other=0)
        xrow = x + j[:, None] * D
        xc = tl.load(xrow + cols[None, :], mask=mask, other=0.0).to(ACC)
        xp = xc
        rc = xc
        rp = xc
        if MSG != 0:
            r = tl.load(etype + k, mask=emask, other=0)
            rrow = rel + r[:, None] * rwidth
            rc = tl.load(rrow + rcols[None, :], mask=mask, other=0.0).to(ACC)
            if MSG == 3:
                xp = tl.load(xrow + pcols[None, :], mask=mask, other=0.0).to(ACC)
                rp = tl.load(rrow + prcols[None, :], mask=mask, other=0.0).to(ACC)
        m = _phi(xc, xp, rc, rp, is_real[None, :], MSG)
        if HAS_W:
            w = tl.load(weight + k, mask=emask, other=0.0).to(ACC)
            m = w[:, None] * m
        if RED == 0 or RED == 1 or RED == 4:
            acc_sum += tl.sum(tl.where(mask, m, 0.0), axis=0)
        k2 = k[:, None]
        first = k0 == start
        if RED == 4:  # var = E[(m - K)²] - E[m - K]², K = the first edge's message
            shift = tl.where(first, tl.sum(tl.where(mask & (k2 == start), m, 0.0), axis=0), shift)
            dev = tl.where(mask, m - shift[None, :], 0.0)
            acc_dev += tl.sum(dev, axis=0)
            acc_sq += tl.sum(dev * dev, axis=0)
        if RED == 2 or RED == 4:  # max: first (smallest k) of the tile's maxima
            t_hi = tl.max(tl.where(mask, m, float("-inf")), axis=0)
            t_arg = tl.min(tl.where(mask & (m == t_hi[None, :]), k2, end), axis=0)
            better = (t_hi > hi) | first  # strict: an earlier tile keeps ties
            hi = tl.where(better, t_hi, hi)
            arg_hi = tl.where(better, t_arg, arg_hi)
        if RED == 3 or RED == 4:
            t_lo = tl.min(tl.where(mask, m, float("inf")), axis=0)
            t_arg = tl.min(tl.where(mask & (m == t_lo[None, :]), k2, end), axis=0)
            better = (t_lo < lo) | first
            lo = tl.where(better, t_lo, lo)
            arg_lo = tl.where(better, t_arg, arg_lo)

    has = end > start
    n = tl.maximum(end - start, 1).to(ACC)
    row = i * D + cols
    if RED == 0:
        tl.store(out + row, acc_sum.to(out.dtype.element_ty), mask=cmask)
    elif RED == 1:
        tl.store(out + row, (acc_sum / n).to(out.dtype.element_ty), mask=cmask)
    elif RED == 2 or RED == 3:
        if RED == 2:
            val = hi
            best = arg_hi
        else:
            val = lo
            best = arg_lo
        tl.store(out + row, tl.where(has, val, 0.0).to(out.dtype.element_ty), mask=cmask)
        if TRACK:
            tl.store(arg1 + row, best.to(tl.int32), mask=cmask)
    else:  # pna: block b = [mean | max | min | std], std = sqrt(relu(var) + eps)
        mean = acc_sum / n
        dev_mean = acc_dev / n
        var = acc_sq / n - dev_mean * dev_mean
        pos = var > 0.0
        std = tl.where(has, tl.sqrt(tl.where(pos, var, 0.0) + eps), 0.0)
        o = out + i * (4 * D) + b * (4 * d) + f
        ty = out.dtype.element_ty
        tl.store(o, mean.to(ty), mask=cmask)
        tl.store(o + d, tl.where(has, hi, 0.0).to(ty), mask=cmask)
        tl.store(o + 2 * d, tl.where(has, lo, 0.0).to(ty), mask=cmask)
        tl.store(o + 3 * d, std.to(ty), mask=cmask)
        if TRACK:
            tl.store(arg1 + row, arg_hi.to(tl.int32), mask=cmask)
            tl.store(arg2 + row, arg_lo.to(tl.int32), mask=cmask)
            tl.store(varpos + row, (pos & has).to(tl.int8), mask=cmask)


# -------------------------------------------------------------------- backward
@triton.jit
def _bwd_src_kernel(colptr, csc_row, csc_pos, rowptr, etype, x, rel, weight, out, grad_out,
                    arg1, arg2, varpos, grad_x, dw_part,
                    D, d, h, rstride, rwidth, num_edges,
                    MSG: tl.constexpr, RED: tl.constexpr, HAS_W: tl.constexpr,
                    NEED_X: tl.constexpr, NEED_W: tl.constexpr, ACC: tl.constexpr,
                    BLOCK_E: tl.constexpr, BLOCK_F: tl.constexpr):
    j = tl.program_id(0).to(tl.int64)
    fb = tl.program_id(1).to(tl.int64)
    cols = fb * BLOCK_F + tl.arange(0, BLOCK_F)
    cmask = cols < D
    b = cols // d
    f = cols - b * d
    rcols = b * rstride + f
    is_real = f < h
    pcols = tl.where(is_real, cols + h, cols - h)
    prcols = tl.where(is_real, rcols + h, rcols - h)
    # The source row is the same for every out-edge of j: load it once.
    xc = tl.load(x + j * D + cols, mask=cmask, other=0.0).to(ACC)[None, :]
    xp = xc
    if MSG == 3:
        xp = tl.load(x + j * D + pcols, mask=cmask, other=0.0).to(ACC)[None, :]
    s_begin = tl.load(colptr + j)
    s_end = tl.load(colptr + j + 1)
    lanes = tl.arange(0, BLOCK_E)
    acc = tl.zeros([BLOCK_F], ACC)
    for s0 in range(s_begin, s_end, BLOCK_E):
        s = s0 + lanes
        emask = s < s_end
        mask = emask[:, None] & cmask[None, :]
        i = tl.load(csc_row + s, mask=emask, other=0)
        k = tl.load(csc_pos + s, mask=emask, other=0)
        n = (tl.load(rowptr + i + 1, mask=emask, other=1)
             - tl.load(rowptr + i, mask=emask, other=0)).to(ACC)
        rc = xc
        rp = xc
        if MSG != 0:
            r = tl.load(etype + k, mask=emask, other=0)
            rrow = rel + r[:, None] * rwidth
            rc = tl.load(rrow + rcols[None, :], mask=mask, other=0.0).to(ACC)
            if MSG == 3:
                rp = tl.load(rrow + prcols[None, :], mask=mask, other=0.0).to(ACC)
        w = tl.full([BLOCK_E], 1.0, ACC)
        if HAS_W:
            w = tl.load(weight + k, mask=emask, other=0.0).to(ACC)
        w2 = w[:, None]
        real2 = is_real[None, :]
        imag2 = f[None, :] >= h
        phi = _phi(xc, xp, rc, rp, real2, MSG)
        g = _edge_grad(grad_out, out, arg1, arg2, varpos, i, k, n, cols, mask, w2 * phi, D, d,
                       RED, ACC)
        if MSG == 0 or MSG == 1:
            gx = g
        elif MSG == 2:
            gx = rc * g
        else:  # rotate: gx_re = g_re rr + g_im ri, gx_im = g_im rr - g_re ri
            phi_p = _phi(xp, xc, rp, rc, imag2, MSG)
            g_p = _edge_grad(grad_out, out, arg1, arg2, varpos, i, k, n, pcols, mask,
                             w2 * phi_p, D, d, RED, ACC)
            gx = tl.where(real2, g * rc + g_p * rp, g * rp - g_p * rc)
        if NEED_X:
            acc += tl.sum(tl.where(mask, w2 * gx, 0.0), axis=0)
        if NEED_W:
            dw = tl.sum(tl.where(mask, g * phi, 0.0), axis=1)
            tl.store(dw_part + fb * num_edges + k, dw, mask=emask)
    if NEED_X:
        tl.store(grad_x + j * D + cols, acc.to(grad_x.dtype.element_ty), mask=cmask)


@triton.jit
def _bwd_rel_kernel(seg_start, seg_end, seg_rel, order, row, col, rowptr, x, rel, weight, out,
                    grad_out, arg1, arg2, varpos, rel_part,
                    D, d, h, rstride, rwidth,
                    MSG: tl.constexpr, RED: tl.constexpr, HAS_W: tl.constexpr,
                    ACC: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_F: tl.constexpr):
    sg = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BLOCK_F + tl.arange(0, BLOCK_F)
    cmask = cols < D
    b = cols // d
    f = cols - b * d
    rcols = b * rstride + f
    is_real = f < h
    pcols = tl.where(is_real, cols + h, cols - h)
    prcols = tl.where(is_real, rcols + h, rcols - h)
    p_begin = tl.load(seg_start + sg)
    p_end = tl.load(seg_end + sg)
    r = tl.load(seg_rel + sg)
    # One relation per segment: its row of rel is loaded once.
    rc = tl.load(rel + r * rwidth + rcols, mask=cmask, other=0.0).to(ACC)[None, :]
    rp = rc
    if MSG == 3:
        rp = tl.load(rel + r * rwidth + prcols, mask=cmask, other=0.0).to(ACC)[None, :]
    lanes = tl.arange(0, BLOCK_E)
    acc = tl.zeros([BLOCK_F], ACC)
    for p0 in range(p_begin, p_end, BLOCK_E):
        p = p0 + lanes
        emask = p < p_end
        mask = emask[:, None] & cmask[None, :]
        k = tl.load(order + p, mask=emask, other=0)
        i = tl.load(row + k, mask=emask, other=0)
        j = tl.load(col + k, mask=emask, other=0)
        n = (tl.load(rowptr + i + 1, mask=emask, other=1)
             - tl.load(rowptr + i, mask=emask, other=0)).to(ACC)
        xrow = x + j[:, None] * D
        xc = tl.load(xrow + cols[None, :], mask=mask, other=0.0).to(ACC)
        xp = xc
        if MSG == 3:
            xp = tl.load(xrow + pcols[None, :], mask=mask, other=0.0).to(ACC)
        w = tl.full([BLOCK_E], 1.0, ACC)
        if HAS_W:
            w = tl.load(weight + k, mask=emask, other=0.0).to(ACC)
        w2 = w[:, None]
        real2 = is_real[None, :]
        imag2 = f[None, :] >= h
        phi = _phi(xc, xp, rc, rp, real2, MSG)
        g = _edge_grad(grad_out, out, arg1, arg2, varpos, i, k, n, cols, mask, w2 * phi, D, d,
                       RED, ACC)
        if MSG == 1:
            gr = g
        elif MSG == 2:
            gr = xc * g
        else:  # rotate: gr_re = g_re xr + g_im xi, gr_im = g_im xr - g_re xi
            phi_p = _phi(xp, xc, rp, rc, imag2, MSG)
            g_p = _edge_grad(grad_out, out, arg1, arg2, varpos, i, k, n, pcols, mask,
                             w2 * phi_p, D, d, RED, ACC)
            gr = tl.where(real2, g * xc + g_p * xp, g * xp - g_p * xc)
        acc += tl.sum(tl.where(mask, w2 * gr, 0.0), axis=0)
    tl.store(rel_part + sg * D + cols, acc, mask=cmask)


# ---------------------------------------------------------------------- launch
def _acc_dtype(dtype: torch.dtype):
    return tl.float64 if dtype == torch.float64 else tl.float32


def _geometry(spec: RSpmmSpec, rel: Tensor | None) -> tuple[int, int, int, int, int]:
    """``(D, d, d/2, rel block stride, rel width)`` as kernel arguments."""
    rwidth = rel.size(1) if rel is not None else 0
    return spec.width, spec.block, spec.block // 2, spec.rel_block_stride, rwidth


def forward(graph: RelGraph, x: Tensor, rel: Tensor | None, weight_csr: Tensor | None,
            spec: RSpmmSpec, track: bool) -> tuple[Tensor, Tensor | None, Tensor | None,
                                                    Tensor | None]:
    """``(out, arg1, arg2, varpos)``; the last three only for max/min/pna with ``track``."""
    num_nodes, width = graph.num_targets, x.size(1)  # one program row per target
    red = spec.reduce.code
    out = torch.empty(num_nodes, spec.out_width, dtype=x.dtype, device=x.device)
    arg1 = arg2 = varpos = None
    if track and spec.reduce.name in ("max", "min", "pna"):
        arg1 = torch.empty(num_nodes, width, dtype=torch.int32, device=x.device)
    if track and spec.reduce.name == "pna":
        arg2 = torch.empty(num_nodes, width, dtype=torch.int32, device=x.device)
        varpos = torch.empty(num_nodes, width, dtype=torch.int8, device=x.device)
    if num_nodes == 0 or width == 0:
        return out, arg1, arg2, varpos
    block_e, block_f = launch_config(width)
    grid = (num_nodes, triton.cdiv(width, block_f))
    _fwd_kernel[grid](
        graph.rowptr, graph.col, graph.edge_type, x,
        rel if rel is not None else x, weight_csr if weight_csr is not None else x, out,
        arg1 if arg1 is not None else out, arg2 if arg2 is not None else out,
        varpos if varpos is not None else out,
        *_geometry(spec, rel), spec.eps,
        MSG=spec.message.code, RED=red, HAS_W=weight_csr is not None, TRACK=arg1 is not None,
        ACC=_acc_dtype(x.dtype), BLOCK_E=block_e, BLOCK_F=block_f,
        enable_fp_fusion=False,  # round messages like the reference: identical max/min ties
    )
    return out, arg1, arg2, varpos


# Per graph, the edges sorted by relation and cut into segments (RelGraph is
# immutable, so the cached arrays stay valid as long as the graph lives).
_relation_segments: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def relation_segments(graph: RelGraph) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """``(order, seg_start, seg_end, seg_rel, row)``: CSR positions sorted by relation
    (stable), the ``[start, end)`` of each segment in that order and its relation, and
    the target of every CSR position."""
    key = (SEGMENT, graph.device)
    cached = _relation_segments.get(graph)
    if cached is not None and cached[0] == key:
        return cached[1]
    device = graph.device
    etype = graph.edge_type
    order = torch.sort(etype, stable=True).indices
    counts = torch.bincount(etype, minlength=graph.num_relations)
    relptr = torch.zeros(counts.numel() + 1, dtype=torch.long, device=device)
    torch.cumsum(counts, 0, out=relptr[1:])
    nseg = (counts + SEGMENT - 1) // SEGMENT
    total = int(nseg.sum())
    seg_rel = torch.repeat_interleave(torch.arange(counts.numel(), device=device), nseg,
                                      output_size=total)
    first = torch.cumsum(nseg, 0) - nseg
    local = torch.arange(total, device=device) - first[seg_rel]
    seg_start = relptr[seg_rel] + local * SEGMENT
    seg_end = torch.minimum(seg_start + SEGMENT, relptr[seg_rel + 1])
    value = (order, seg_start, seg_end, seg_rel, graph.row)
    _relation_segments[graph] = (key, value)
    return value


def backward(graph: RelGraph, x: Tensor, rel: Tensor | None, weight_csr: Tensor | None,
             out: Tensor | None, grad_out: Tensor, arg1: Tensor | None, arg2: Tensor | None,
             varpos: Tensor | None, spec: RSpmmSpec, need_x: bool, need_rel: bool,
             need_w: bool) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """``(grad_x, grad_rel, grad_w)``, ``grad_w`` in CSR order; ``None`` where not needed."""
    num_nodes, width = x.shape
    num_edges = graph.num_edges
    need_rel = need_rel and rel is not None
    need_w = need_w and weight_csr is not None
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    grad_x = grad_rel = grad_w = None
    block_e, block_f = launch_config(width, backward=True)
    blocks = triton.cdiv(width, block_f) if width else 0
    dummy = grad_out
    common = {"MSG": spec.message.code, "RED": spec.reduce.code,
              "HAS_W": weight_csr is not None, "ACC": _acc_dtype(x.dtype),
              "BLOCK_E": block_e, "BLOCK_F": block_f}
    tensors = (
        x, rel if rel is not None else dummy, weight_csr if weight_csr is not None else dummy,
        out if out is not None else dummy, grad_out,
        arg1 if arg1 is not None else dummy, arg2 if arg2 is not None else dummy,
        varpos if varpos is not None else dummy,
    )
    geometry = _geometry(spec, rel)

    if need_x or need_w:
        grad_x = torch.zeros_like(x) if need_x else None
        dw_part = torch.zeros(blocks, num_edges, dtype=acc, device=x.device) if need_w else None
        if num_nodes and width:
            _bwd_src_kernel[(num_nodes, blocks)](
                graph.colptr, graph.csc_row, graph.csc_pos, graph.rowptr, graph.edge_type,
                *tensors,
                grad_x if grad_x is not None else dummy, dw_part if dw_part is not None else dummy,
                *geometry, num_edges,
                NEED_X=need_x, NEED_W=need_w, **common,
            )
        if need_w:
            grad_w = dw_part.sum(0).to(weight_csr.dtype)

    if need_rel:
        grad_rel = torch.zeros(rel.size(0), width, dtype=acc, device=x.device)
        order, seg_start, seg_end, seg_rel, row = relation_segments(graph)
        if seg_rel.numel() and width:
            rel_part = torch.empty(seg_rel.numel(), width, dtype=acc, device=x.device)
            _bwd_rel_kernel[(seg_rel.numel(), blocks)](
                seg_start, seg_end, seg_rel, order, row, graph.col, graph.rowptr, *tensors,
                rel_part, *geometry, **common,
            )
            grad_rel.index_add_(0, seg_rel, rel_part)
        if spec.rel_shared:  # rel [R, d] broadcast over the B query blocks
            grad_rel = grad_rel.view(rel.size(0), spec.batch_size, spec.block).sum(1)
        grad_rel = grad_rel.to(rel.dtype)
    return grad_x, grad_rel, grad_w
