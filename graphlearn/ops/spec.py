"""What ``rspmm`` computes: message and reduction names, and the feature layout.

Every backend receives a validated :class:`RSpmmSpec`, so the shape rules live
here once.

**Feature layout.** ``x`` is ``[V, D]`` with ``D = B·d``: a batch of ``B``
queries folded into the feature axis as in NBFNet, query ``b`` occupying
columns ``b·d : (b+1)·d``. ``rel`` is either ``[R, B·d]`` (one relation
vector per query) or ``[R, d]`` (shared by the batch, broadcast over the
``B`` blocks).

* ``rotate`` treats each ``d``-block as a complex vector of ``d/2`` entries,
  **real parts first, imaginary parts second** (``torch.chunk(block, 2)``):
  ``x_b = x_re + i·x_im`` with ``x_re = block[:d/2]``, ``x_im = block[d/2:]``;
  the same for ``rel``. ``d`` must be even.
* ``pna`` returns ``[V, B·4d]``: block ``b`` is ``[mean | max | min | std]``
  of query ``b`` (each of width ``d``), so ``out.view(V, B, 4, d)`` separates
  the statistics and ``out.view(V, B, 4·d)`` feeds a per-query linear layer.

``B`` is inferred from the width of a shared ``rel`` (``B = D / rel.size(1)``)
and is 1 otherwise; pass ``batch_size`` when ``rel`` is per-query
(``[R, B·d]``) or absent and the blocks matter (``rotate``, ``pna``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from graphlearn.ops.graph import RelGraph
from graphlearn.registry import Registry

__all__ = [
    "DEFAULT_PNA_EPS",
    "MESSAGES",
    "REDUCTIONS",
    "Message",
    "RSpmmSpec",
    "Reduction",
    "list_messages",
    "list_reductions",
    "resolve_spec",
]

#: eps inside PNA's ``std = sqrt(relu(E[m²] − E[m]²) + eps)``, as in PyG's ``StdAggregation``.
DEFAULT_PNA_EPS = 1e-5


@dataclass(frozen=True)
class Message:
    """A message function ``φ(rel_r, x_j)``; ``code`` is the id the C++ kernel uses."""

    name: str
    code: int
    uses_rel: bool
    formula: str


@dataclass(frozen=True)
class Reduction:
    """A reduction over the in-edges of a node; ``code`` is the C++ kernel's id."""

    name: str
    code: int
    width_factor: int  # output width = width_factor · D


MESSAGES: Registry[Message] = Registry("message")
REDUCTIONS: Registry[Reduction] = Registry("reduce")

_NONE = Message("none", 0, False, "x[j]  (plain SpMM; rel ignored)")
_ADD = Message("add", 1, True, "rel[r] + x[j]  (TransE)")
_MUL = Message("mul", 2, True, "rel[r] * x[j]  (DistMult)")
_ROTATE = Message("rotate", 3, True, "rel[r] ∘ x[j] as complex numbers  (RotatE)")
for _m in (_NONE, _ADD, _MUL, _ROTATE):
    MESSAGES.register(_m.name)(_m)
MESSAGES.register("transe")(_ADD)
MESSAGES.register("distmult")(_MUL)

for _r in (
    Reduction("sum", 0, 1),
    Reduction("mean", 1, 1),
    Reduction("max", 2, 1),
    Reduction("min", 3, 1),
    Reduction("pna", 4, 4),
):
    REDUCTIONS.register(_r.name)(_r)


def list_messages() -> list[str]:
    return MESSAGES.names()


def list_reductions() -> list[str]:
    return REDUCTIONS.names()


@dataclass(frozen=True)
class RSpmmSpec:
    """A validated ``rspmm`` call: which math, and the feature layout.

    Attributes:
        message, reduce: the resolved :class:`Message` and :class:`Reduction`.
        num_nodes: ``V`` (rows of ``x``). num_targets: ``T`` (rows of the output,
            ``graph.num_targets``). width: ``D = B·d`` (columns of ``x``).
        batch_size: ``B``. block: ``d``.
        rel_shared: ``rel`` is ``[R, d]`` (broadcast over the batch).
        has_weight: an edge weight is given.
        eps: PNA's eps.
    """

    message: Message
    reduce: Reduction
    num_nodes: int
    num_targets: int
    width: int
    batch_size: int
    block: int
    rel_shared: bool
    has_weight: bool
    eps: float

    @property
    def out_width(self) -> int:
        return self.reduce.width_factor * self.width

    @property
    def rel_block_stride(self) -> int:
        """Column offset between the relation vectors of consecutive queries (0 if shared)."""
        return 0 if self.rel_shared else self.block


def resolve_spec(
    graph: RelGraph,
    x: Tensor,
    rel: Tensor | None,
    edge_weight: Tensor | None,
    message: str,
    reduce: str,
    batch_size: int | None = None,
    eps: float = DEFAULT_PNA_EPS,
) -> RSpmmSpec:
    """Check names, shapes, dtypes and devices of one ``rspmm`` call."""
    msg = MESSAGES.get(message)
    red = REDUCTIONS.get(reduce)
    if not isinstance(graph, RelGraph):
        raise TypeError(
            f"rspmm: graph must be a RelGraph (build it once with RelGraph.build or "
            f"graphlearn.ops.prepare(data)), got {type(graph).__name__}"
        )
    if not isinstance(x, Tensor) or x.dim() != 2:
        raise ValueError(f"rspmm: x must have shape [V, B·d], got {_shape(x)}")
    if not x.dtype.is_floating_point:
        raise ValueError(f"rspmm: x must be floating point, got {x.dtype}")
    if x.size(0) != graph.num_nodes:
        raise ValueError(
            f"rspmm: x has {x.size(0)} rows but the graph has {graph.num_nodes} nodes"
        )
    if x.device != graph.device:
        raise ValueError(
            f"rspmm: x is on {x.device} but the graph is on {graph.device} (use graph.to(device))"
        )
    width = x.size(1)
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"rspmm: batch_size must be a positive int, got {batch_size!r}")

    rel_shared = False
    if msg.uses_rel:
        if rel is None:
            raise ValueError(f"rspmm: message={msg.name!r} needs rel [R, d] or [R, B·d], got None")
        if not isinstance(rel, Tensor) or rel.dim() != 2:
            raise ValueError(f"rspmm: rel must have shape [R, d] or [R, B·d], got {_shape(rel)}")
        if rel.dtype != x.dtype or rel.device != x.device:
            raise ValueError(
                f"rspmm: rel ({rel.dtype}, {rel.device}) must match x ({x.dtype}, {x.device})"
            )
        if rel.size(0) < graph.num_relations:
            raise ValueError(
                f"rspmm: rel has {rel.size(0)} rows but the graph has "
                f"{graph.num_relations} relations"
            )
        rw = rel.size(1)
        if rw == width:
            batch = batch_size or 1
            if width % batch:
                raise ValueError(
                    f"rspmm: feature width {width} is not a multiple of batch_size {batch}"
                )
            block = width // batch
        elif rw > 0 and width % rw == 0:
            rel_shared = True
            block = rw
            batch = width // rw
            if batch_size is not None and batch_size != batch:
                raise ValueError(
                    f"rspmm: rel [R, {rw}] shared over x [V, {width}] means batch_size "
                    f"{batch}, but batch_size={batch_size} was given"
                )
        else:
            raise ValueError(
                f"rspmm: rel width {rw} must equal x's width {width} (per-query relations) "
                f"or divide it (relations shared by the batch)"
            )
    else:
        batch = batch_size or 1
        if width % batch:
            raise ValueError(
                f"rspmm: feature width {width} is not a multiple of batch_size {batch}"
            )
        block = width // batch
    if msg.name == "rotate" and block % 2:
        raise ValueError(
            f"rspmm: message='rotate' needs an even block width d (real and imaginary "
            f"halves), got d={block}"
        )

    if edge_weight is not None:
        if not isinstance(edge_weight, Tensor) or edge_weight.shape != (graph.num_edges,):
            raise ValueError(
                f"rspmm: edge_weight must have shape [{graph.num_edges}] (one per edge, "
                f"in edge_index order), got {_shape(edge_weight)}"
            )
        if edge_weight.dtype != x.dtype or edge_weight.device != x.device:
            raise ValueError(
                f"rspmm: edge_weight ({edge_weight.dtype}, {edge_weight.device}) must match "
                f"x ({x.dtype}, {x.device})"
            )
    return RSpmmSpec(
        message=msg,
        reduce=red,
        num_nodes=graph.num_nodes,
        num_targets=graph.num_targets,
        width=width,
        batch_size=batch,
        block=block,
        rel_shared=rel_shared,
        has_weight=edge_weight is not None,
        eps=float(eps),
    )


def _shape(t: object) -> object:
    return tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__


def fused_inputs(
    graph: RelGraph, x: Tensor, rel: Tensor | None, edge_weight: Tensor | None,
    spec: RSpmmSpec,
) -> tuple[Tensor, Tensor | None, Tensor | None, bool]:
    """Arguments of a fused kernel: contiguous ``x`` and ``rel`` (``None`` when the
    message ignores it), the edge weights in CSR order (``index_select``, so their
    gradient scatters back to edge order), and whether a backward can follow (only
    then do max/min/pna keep their arg-extreme bookkeeping)."""
    weight_csr = None
    if edge_weight is not None:
        weight_csr = edge_weight.index_select(0, graph.perm).contiguous()
    rel = rel.contiguous() if rel is not None and spec.message.uses_rel else None
    needs_backward = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (x, rel, weight_csr)
    )
    return x.contiguous(), rel, weight_csr, needs_backward
