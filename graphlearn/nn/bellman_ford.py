r"""A message graph prepared once for generalized Bellman-Ford layers.

NBFNet (Zhu et al., 2021) re-injects the boundary condition at every layer as
a *self-loop message*: node ``i`` aggregates the messages of its in-edges
**and** its own boundary vector ``b_i`` (with weight 1, unchanged by any
relation). To compute that aggregation in one fused ``rspmm`` pass, the
message graph is extended once:

* node ids ``0 .. V-1`` are the graph's nodes (their rows of ``x``);
  ids ``V .. 2V-1`` stand for the boundary rows (``x_ext = [x ; boundary]``);
* the ``E`` real edges keep their relation ids ``0 .. R-1``; ``V`` self-loop
  edges ``V + i -> i`` get the extra relation id ``R``, whose relation vector
  is the identity of the message (1 for DistMult, 0 for TransE, ``1 + 0i`` for
  RotatE) so that their message is exactly ``b_i``.

Every reduction then sees ``deg(i) + 1`` messages, as in NBFNet, and PNA's
degree scalers use that degree. The boundary rows only send: the extended
graph has ``num_targets = V``, so ``rspmm`` returns the ``V`` node rows
alone (no output rows for the boundary, nothing to slice off). Aggregation goes into targets (row 1 of
``edge_index``).

For ``sum`` and ``mean`` the self-loop term is simply ``+ b_i`` (and the
division by ``deg(i) + 1``), so layers use the graph of the real edges alone
(:attr:`BellmanFordGraph.real`) and skip building ``[x ; boundary]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from graphlearn.ops.graph import RelGraph

__all__ = ["BellmanFordGraph"]

_CACHE_ATTR = "_graphlearn_bellman_ford_graph"


@dataclass(frozen=True, eq=False)
class BellmanFordGraph:
    """A relational message graph with boundary self-loops, sorted once.

    Build with :meth:`build` (edge tensors) or :meth:`from_data` (a PyG
    ``Data``, cached on it).

    Attributes:
        num_nodes: ``V``.
        num_relations: ``R``, the relation ids of the real edges; the
            self-loop relation is ``R``.
        num_edges: ``E``, real edges (self-loops not counted).
        graph: the extended :class:`~graphlearn.ops.RelGraph` over ``2V``
            source nodes, ``V`` targets and ``E + V`` edges (real edges first,
            then the self-loops).
        real: the :class:`~graphlearn.ops.RelGraph` of the ``E`` real edges over ``V`` nodes.
        degree: ``[V]`` float64, in-degree **including** the self-loop (``>= 1``).
        log_degree_ratio: ``[V]`` float64 (layers cast it), ``log(degree) / mean(log(degree))``, PNA's
            amplification scaler (NBFNet's normalisation by the graph's mean;
            all zeros when no node has an in-edge).
    """

    num_nodes: int
    num_relations: int
    num_edges: int
    graph: RelGraph
    real: RelGraph
    degree: Tensor
    log_degree_ratio: Tensor

    @classmethod
    def build(
        cls,
        edge_index: Tensor,
        edge_type: Tensor | None = None,
        num_nodes: int | None = None,
        num_relations: int | None = None,
    ) -> BellmanFordGraph:
        """Extend ``edge_index`` with boundary self-loops and sort it once.

        Args:
            edge_index: ``[2, E]``, row 0 sources, row 1 targets.
            edge_type: ``[E]`` relation ids in ``[0, R)``; ``None``: all 0.
            num_nodes: ``V`` (default: ``edge_index.max() + 1``).
            num_relations: ``R`` (default: ``edge_type.max() + 1``, 1 without types).
        """
        # the real edges, validated and sorted by RelGraph.build
        real = RelGraph.build(edge_index, edge_type, num_nodes=num_nodes,
                              num_relations=num_relations)
        num_nodes, num_relations = real.num_nodes, real.num_relations
        device = real.device
        nodes = torch.arange(num_nodes, device=device)
        loops = torch.stack([nodes + num_nodes, nodes])  # boundary row V+i -> node i
        # real edges in the caller's order (edge weights are given in that order)
        if edge_type is None:
            edge_type = torch.zeros(real.num_edges, dtype=torch.long, device=device)
        full_index = torch.cat([edge_index.long(), loops], dim=1)  # (2, E + V)
        full_type = torch.cat([edge_type.long(),
                               torch.full((num_nodes,), num_relations, device=device)])
        graph = RelGraph.build(full_index, full_type, num_nodes=2 * num_nodes,
                               num_relations=num_relations + 1, num_targets=num_nodes)
        degree = graph.in_degree.double()  # (V,) includes the self-loop
        log_degree = degree.log()
        mean = log_degree.mean() if num_nodes else log_degree.new_zeros(())
        ratio = log_degree / mean if float(mean) > 0 else torch.zeros_like(log_degree)
        return cls(num_nodes=num_nodes, num_relations=num_relations, num_edges=real.num_edges,
                   graph=graph, real=real, degree=degree, log_degree_ratio=ratio)

    @classmethod
    def from_data(cls, data, num_relations: int | None = None) -> BellmanFordGraph:
        """The graph of a PyG ``Data`` (``edge_index``, optional ``edge_type``,
        ``num_nodes``, optional ``num_relations``), built once and cached on it.

        The cache is keyed on the storage, in-place version, shape and device
        of ``edge_index`` / ``edge_type``: changing them rebuilds it.
        """
        edge_index = data.edge_index
        edge_type = getattr(data, "edge_type", None)
        if num_relations is None:
            num_relations = getattr(data, "num_relations", None)
        key = (edge_index.data_ptr(), edge_index._version, tuple(edge_index.shape),
               edge_index.device, data.num_nodes, num_relations)
        if edge_type is not None:
            key += (edge_type.data_ptr(), edge_type._version, tuple(edge_type.shape))
        cached = data.__dict__.get(_CACHE_ATTR)
        if cached is not None and cached[0] == key:
            return cached[1]
        graph = cls.build(edge_index, edge_type, data.num_nodes, num_relations)
        data.__dict__[_CACHE_ATTR] = (key, graph)
        return graph

    @property
    def device(self) -> torch.device:
        return self.degree.device

    def to(self, device: torch.device | str) -> BellmanFordGraph:
        """This graph on ``device`` (self when already there)."""
        device = torch.device(device)
        if self.device == device:
            return self
        return BellmanFordGraph(self.num_nodes, self.num_relations, self.num_edges,
                                self.graph.to(device), self.real.to(device),
                                self.degree.to(device),
                                self.log_degree_ratio.to(device))

    def check_edge_weight(self, edge_weight: Tensor | None) -> None:
        """Fail unless ``edge_weight`` is ``None`` or ``[E]`` (one per real edge)."""
        if edge_weight is not None and edge_weight.shape != (self.num_edges,):
            raise ValueError(f"edge_weight must have shape [{self.num_edges}] (one per real "
                             f"edge), got {tuple(edge_weight.shape)}")

    def full_edge_weight(self, edge_weight: Tensor | None) -> Tensor | None:
        """``[E + V]`` weights of the extended graph: ``edge_weight`` then 1 per self-loop."""
        if edge_weight is None:
            return None
        self.check_edge_weight(edge_weight)
        return torch.cat([edge_weight, edge_weight.new_ones(self.num_nodes)])

    def __repr__(self) -> str:
        return (f"BellmanFordGraph(num_nodes={self.num_nodes}, num_edges={self.num_edges}, "
                f"num_relations={self.num_relations}, device={self.device})")
