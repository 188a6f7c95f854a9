"""A relational graph sorted once for message passing.

:class:`RelGraph` holds the two sorted views every ``rspmm`` backend reads:

* **CSR by target** (``rowptr``, ``col``, ``edge_type``): the in-edges of node
  ``i`` are the CSR positions ``rowptr[i]:rowptr[i + 1]``; ``col[k]`` is the
  source of position ``k``. Edges are sorted with a *stable* sort, so the
  in-edges of a node keep their original relative order ("CSR order"). The
  forward pass and the max/min tie-breaking (first edge in CSR order) use it.
* **CSC by source** (``colptr``, ``csc_row``, ``csc_pos``): the out-edges of
  node ``j`` are the CSC slots ``colptr[j]:colptr[j + 1]``; ``csc_row[s]`` is
  their target and ``csc_pos[s]`` their CSR position. The backward pass walks
  it so that every thread writes only the gradient rows of its own sources.

``perm[k]`` is the original edge id at CSR position ``k``: edge weights given
in the caller's edge order are read as ``edge_weight[perm]``.

Aggregation always goes into **targets** (row 1 of ``edge_index``), PyG's
``source_to_target`` flow.

**Fewer targets than sources.** A graph built with ``num_targets=T < V``
sends every edge into one of the first ``T`` nodes: the CSR views
(``rowptr``, ``in_degree``) cover those ``T`` rows, the CSC views
(``colptr``, ``out_degree``) all ``V`` sources, and ``rspmm`` reads ``[V, D]``
and returns ``[T, D]``. NBFNet's boundary rows use it (sources only: they
never receive a message), so no output rows are computed for them and no
slice of the output has to be padded back in the backward.

Build it once per graph; :func:`prepare` caches it on a PyG ``Data`` so that
repeated calls do not sort again.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor

__all__ = ["RelGraph", "prepare"]

_CACHE_ATTR = "_graphlearn_rel_graph"


@dataclass(frozen=True, eq=False)
class RelGraph:
    """Edges of a (relational) graph sorted by target (CSR) and by source (CSC).

    Build with :meth:`RelGraph.build` (or :func:`prepare` for a PyG ``Data``),
    not with the constructor.

    Attributes:
        num_nodes: ``V``, the rows of ``x`` (every node may send).
        num_targets: ``T <= V``, the rows of the output: every edge's target
            lies in ``[0, T)`` (``T = V`` unless built with ``num_targets``).
        num_relations: ``R`` (1 when the graph has no edge types).
        rowptr: ``[T + 1]`` int64, CSR row pointer by target.
        col: ``[E]`` int64, source node of each CSR position.
        edge_type: ``[E]`` int64, relation of each CSR position (zeros when
            the graph was built without edge types).
        perm: ``[E]`` int64, original edge id of each CSR position.
        colptr: ``[V + 1]`` int64, CSC pointer by source.
        csc_row: ``[E]`` int64, target node of each CSC slot.
        csc_pos: ``[E]`` int64, CSR position of each CSC slot.
        in_degree: ``[T]`` int64, number of in-edges (edges whose target is the node).
        out_degree: ``[V]`` int64, number of out-edges.
        has_edge_type: whether ``edge_type`` was given at build time.
    """

    num_nodes: int
    num_targets: int
    num_relations: int
    rowptr: Tensor
    col: Tensor
    edge_type: Tensor
    perm: Tensor
    colptr: Tensor
    csc_row: Tensor
    csc_pos: Tensor
    in_degree: Tensor
    out_degree: Tensor
    has_edge_type: bool

    @property
    def num_edges(self) -> int:
        return int(self.col.numel())

    @property
    def device(self) -> torch.device:
        return self.col.device

    @property
    def row(self) -> Tensor:
        """``[E]`` target node of each CSR position (computed, not stored)."""
        return torch.repeat_interleave(
            torch.arange(self.num_targets, device=self.device), self.in_degree,
            output_size=self.num_edges,
        )

    @classmethod
    def build(
        cls,
        edge_index: Tensor,
        edge_type: Tensor | None = None,
        num_nodes: int | None = None,
        num_relations: int | None = None,
        num_targets: int | None = None,
    ) -> RelGraph:
        """Sort ``edge_index`` once into CSR (by target) and CSC (by source).

        Args:
            edge_index: ``[2, E]`` integer tensor; row 0 sources, row 1 targets.
            edge_type: ``[E]`` integer relation ids, or ``None`` (every edge is
                relation 0).
            num_nodes: ``V``; default ``edge_index.max() + 1`` (0 for no edges).
            num_relations: ``R``; default ``edge_type.max() + 1`` (1 without types).
            num_targets: ``T``, the output rows of ``rspmm`` (default ``V``); every
                target must lie in ``[0, T)`` and ``T <= V``.
        """
        if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2:
            shape = tuple(edge_index.shape) if isinstance(edge_index, Tensor) else type(edge_index)
            raise ValueError(f"RelGraph.build: edge_index must have shape [2, E], got {shape}")
        if edge_index.dtype.is_floating_point or edge_index.dtype == torch.bool:
            raise ValueError(
                f"RelGraph.build: edge_index must be an integer tensor, got {edge_index.dtype}"
            )
        device = edge_index.device
        src = edge_index[0].long()
        dst = edge_index[1].long()
        num_edges = src.numel()
        max_id = int(edge_index.max()) if num_edges else -1
        if num_nodes is None:
            num_nodes = max_id + 1
        num_nodes = int(num_nodes)
        if num_edges and (int(edge_index.min()) < 0 or max_id >= num_nodes):
            raise ValueError(
                f"RelGraph.build: node ids must lie in [0, {num_nodes}), "
                f"got range [{int(edge_index.min())}, {max_id}]"
            )
        if num_targets is None:
            num_targets = num_nodes
        num_targets = int(num_targets)
        if not 0 <= num_targets <= num_nodes:
            raise ValueError(
                f"RelGraph.build: num_targets must lie in [0, num_nodes={num_nodes}], "
                f"got {num_targets}"
            )
        if num_edges and num_targets < num_nodes and int(dst.max()) >= num_targets:
            raise ValueError(
                f"RelGraph.build: every target must lie in [0, num_targets={num_targets}), "
                f"got target {int(dst.max())}"
            )
        if edge_type is None:
            etype = torch.zeros(num_edges, dtype=torch.long, device=device)
            n_rel = 1 if num_relations is None else int(num_relations)
        else:
            if edge_type.shape != (num_edges,):
                raise ValueError(
                    f"RelGraph.build: edge_type must have shape [{num_edges}] (one per edge), "
                    f"got {tuple(edge_type.shape)}"
                )
            etype = edge_type.to(device=device, dtype=torch.long)
            max_r = int(etype.max()) if num_edges else -1
            n_rel = max_r + 1 if num_relations is None else int(num_relations)
            if num_edges and (int(etype.min()) < 0 or max_r >= n_rel):
                raise ValueError(
                    f"RelGraph.build: edge types must lie in [0, {n_rel}), "
                    f"got range [{int(etype.min())}, {max_r}]"
                )

        # CSR by target; a stable sort keeps each node's in-edges in input order.
        perm = torch.sort(dst, stable=True).indices
        col = src[perm]
        in_degree = torch.bincount(dst, minlength=num_targets)
        rowptr = _ptr(in_degree)
        # CSC by source, over CSR positions; stable again (out-edges in CSR order).
        csc_pos = torch.sort(col, stable=True).indices
        csc_row = dst[perm][csc_pos]
        out_degree = torch.bincount(src, minlength=num_nodes)
        colptr = _ptr(out_degree)
        return cls(
            num_nodes=num_nodes,
            num_targets=num_targets,
            num_relations=n_rel,
            rowptr=rowptr,
            col=col.contiguous(),
            edge_type=etype[perm].contiguous(),
            perm=perm.contiguous(),
            colptr=colptr,
            csc_row=csc_row.contiguous(),
            csc_pos=csc_pos.contiguous(),
            in_degree=in_degree,
            out_degree=out_degree,
            has_edge_type=edge_type is not None,
        )

    def to(self, device: torch.device | str) -> RelGraph:
        """This graph with every index tensor on ``device`` (self if already there)."""
        device = torch.device(device)
        if self.device == device:
            return self
        values = {
            f.name: (getattr(self, f.name).to(device) if isinstance(getattr(self, f.name), Tensor)
                     else getattr(self, f.name))
            for f in fields(self)
        }
        return RelGraph(**values)

    def edge_index(self) -> Tensor:
        """``[2, E]`` edges in CSR order (sources, targets)."""
        return torch.stack([self.col, self.row])

    def __repr__(self) -> str:
        targets = f"num_targets={self.num_targets}, " if self.num_targets != self.num_nodes else ""
        return (
            f"RelGraph(num_nodes={self.num_nodes}, {targets}num_edges={self.num_edges}, "
            f"num_relations={self.num_relations}, device={self.device})"
        )


def _ptr(counts: Tensor) -> Tensor:
    ptr = torch.zeros(counts.numel() + 1, dtype=torch.long, device=counts.device)
    torch.cumsum(counts, 0, out=ptr[1:])
    return ptr


def _fingerprint(data) -> tuple:
    ei = data.edge_index
    et = getattr(data, "edge_type", None)
    key = (ei.data_ptr(), ei._version, tuple(ei.shape), ei.device, data.num_nodes)
    if et is not None:
        key += (et.data_ptr(), et._version, tuple(et.shape))
    key += (getattr(data, "num_relations", None),)
    return key


def prepare(data, num_relations: int | None = None) -> RelGraph:
    """Return the :class:`RelGraph` of a PyG ``Data``, building and caching it once.

    Reads ``data.edge_index``, ``data.edge_type`` (optional), ``data.num_nodes``
    and ``data.num_relations`` (optional, else the argument, else inferred). The
    graph is stored in the private attribute ``data._graphlearn_rel_graph``
    (not a PyG attribute: it is not collated, saved or moved by ``data.to``),
    together with a fingerprint of ``edge_index``/``edge_type`` (storage,
    in-place version, shape, device): changing or moving them rebuilds it.
    """
    key = _fingerprint(data)
    cached = data.__dict__.get(_CACHE_ATTR)
    if cached is not None and cached[0] == key:
        return cached[1]
    if num_relations is None:
        num_relations = getattr(data, "num_relations", None)
    graph = RelGraph.build(
        data.edge_index,
        getattr(data, "edge_type", None),
        num_nodes=data.num_nodes,
        num_relations=num_relations,
    )
    data.__dict__[_CACHE_ATTR] = (key, graph)
    return graph
