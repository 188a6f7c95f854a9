r"""NBFNet's generalized Bellman-Ford layer over graphlearn's ``rspmm``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphlearn.nn.bellman_ford import BellmanFordGraph
from graphlearn.ops import MESSAGES, rspmm
from graphlearn.registry import Registry

__all__ = ["ACTIVATIONS", "AGGREGATIONS", "GeneralizedRelationalConv", "list_aggregations"]


@dataclass(frozen=True)
class Aggregation:
    """An AGGREGATE operator: the ``rspmm`` reduction and the width of its features."""

    name: str
    reduce: str
    width: int  # features per input feature fed to the update (pna: 4 stats x 3 scalers)


#: AGGREGATE operators by name (``list_aggregations()``).
AGGREGATIONS: Registry[Aggregation] = Registry("aggregate")
for _agg in (Aggregation("sum", "sum", 1), Aggregation("mean", "mean", 1),
             Aggregation("max", "max", 1), Aggregation("min", "min", 1),
             Aggregation("pna", "pna", 12)):
    AGGREGATIONS.register(_agg.name)(_agg)
AGGREGATIONS.register("add")(AGGREGATIONS.get("sum"))

#: Activations by name; ``"none"`` is the identity.
ACTIVATIONS: Registry[Callable[[Tensor], Tensor]] = Registry("activation")
for _name, _fn in (("relu", F.relu), ("tanh", torch.tanh), ("sigmoid", torch.sigmoid),
                   ("gelu", F.gelu), ("none", lambda t: t)):
    ACTIVATIONS.register(_name)(_fn)

_NBF_MESSAGES = ("transe", "distmult", "rotate")


def list_aggregations() -> list[str]:
    """Names accepted by ``aggregate=``."""
    return AGGREGATIONS.names()


def _identity_relation(message: str, dim: int, like: Tensor) -> Tensor:
    """``[dim]``: the relation vector whose message is the input itself."""
    if message == "add":
        return like.new_zeros(dim)
    if message == "mul":
        return like.new_ones(dim)
    # rotate: 1 + 0i in every complex entry (real halves first)
    return torch.cat([like.new_ones(dim // 2), like.new_zeros(dim - dim // 2)])


class GeneralizedRelationalConv(nn.Module):
    r"""The generalized Bellman-Ford iteration of NBFNet, from Zhu et al. (2021),
    "Neural Bellman-Ford Networks: A General Graph Neural Network Framework for
    Link Prediction" (https://arxiv.org/abs/2106.06935), Eq. 3–4 and §3.3.

    For a batch of queries with boundary condition :math:`\mathbf{h}^{(0)}`
    (INDICATOR), one layer computes

    .. math::
        \mathbf{a}_v &= \operatorname{AGGREGATE}\Big(
            \big\{\operatorname{MESSAGE}(\mathbf{h}_x, \mathbf{w}_q(x, r, v))
            : (x, r, v) \in \mathcal{E}(v)\big\} \cup \{\mathbf{h}^{(0)}_v\}\Big) \\
        \mathbf{h}'_v &= \sigma\Big(\operatorname{LN}\big(\mathbf{W}
            [\mathbf{h}_v \,\|\, \mathbf{a}_v] + \mathbf{b}\big)\Big)

    where the boundary :math:`\mathbf{h}^{(0)}_v` is re-injected as a self-loop
    message with weight 1, MESSAGE is ``transe`` (:math:`\mathbf{h} + \mathbf{w}`),
    ``distmult`` (:math:`\mathbf{h} \odot \mathbf{w}`) or ``rotate`` (complex
    product), and AGGREGATE is ``sum``, ``mean``, ``max``, ``min`` or ``pna``: the
    mean, max, min and standard deviation of the messages, each scaled by 1,
    :math:`s_v = \log d_v / \overline{\log d}` and :math:`1 / \max(s_v, 0.01)`,
    with :math:`d_v` the in-degree counting the self-loop (12 features per input
    feature). Relation vectors :math:`\mathbf{w}_q(r)` are a per-layer table, or
    with ``dependent=True`` a per-layer linear function of the query embedding.

    The aggregation runs as one fused ``rspmm`` call over the graph extended
    with boundary self-loops (:class:`~graphlearn.nn.BellmanFordGraph`), so the
    fused backends never materialise per-edge messages; ``sum`` and ``mean``
    add the boundary after aggregating the real edges (the same function).
    The update ``W [x ‖ a]`` is computed as ``W_x x + W_a a`` (no concatenation).

    Args:
        input_dim: feature size ``d`` of the layer input (and the relation vectors).
        output_dim: feature size of the output.
        num_relations: ``R``, relation types of the message graph (inverses included).
        query_input_dim: size of the query embedding (``dependent=True``); default ``input_dim``.
        message: ``"transe"``, ``"distmult"`` or ``"rotate"`` (default ``"distmult"``).
        aggregate: ``"sum"``, ``"mean"``, ``"max"``, ``"min"`` or ``"pna"`` (default ``"pna"``).
        layer_norm: layer normalisation of the update (default ``True``).
        activation: ``"relu"`` (default), ``"tanh"``, ``"sigmoid"``, ``"gelu"`` or ``"none"``.
        dependent: relation vectors from the query (default ``True``).
        backend: the ``rspmm`` backend (``"auto"``, ``"reference"``, ``"cpu"``, ``"triton"``).

    Shapes:
        - **x**: ``[V, B, input_dim]`` node states of ``B`` queries.
        - **query**: ``[B, query_input_dim]`` query embeddings.
        - **boundary**: ``[V, B, input_dim]`` boundary condition.
        - **edge_weight** (optional): ``[E]`` per-edge weights (explanations).
        - **output**: ``[V, B, output_dim]``.
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        num_relations: int,
        query_input_dim: int | None = None,
        message: str = "distmult",
        aggregate: str = "pna",
        layer_norm: bool = True,
        activation: str = "relu",
        dependent: bool = True,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        for key, value in (("input_dim", input_dim), ("output_dim", output_dim),
                           ("num_relations", num_relations)):
            if int(value) != value or value < 1:
                raise ValueError(f"GeneralizedRelationalConv: {key} must be a positive "
                                 f"integer, got {value!r}")
        resolved = MESSAGES.get(message)
        if resolved.name not in ("add", "mul", "rotate"):
            raise ValueError(f"GeneralizedRelationalConv: message {message!r} is not a "
                             f"relational message (valid: {', '.join(_NBF_MESSAGES)})")
        if resolved.name == "rotate" and input_dim % 2:
            raise ValueError(f"GeneralizedRelationalConv: message 'rotate' needs an even "
                             f"input_dim, got {input_dim}")
        self.input_dim = int(input_dim)
        self.output_dim = int(output_dim)
        self.num_relations = int(num_relations)
        self.query_input_dim = int(query_input_dim or input_dim)
        self.message = resolved.name
        self.aggregation = AGGREGATIONS.get(aggregate)
        self.activation_name = activation
        self.activation = ACTIVATIONS.get(activation)
        self.dependent = bool(dependent)
        self.backend = backend

        self.linear = nn.Linear((1 + self.aggregation.width) * self.input_dim, self.output_dim)
        self.layer_norm = nn.LayerNorm(self.output_dim) if layer_norm else None
        if self.dependent:
            # per-layer map from the query embedding to the relation table
            self.relation_linear = nn.Linear(self.query_input_dim,
                                             self.num_relations * self.input_dim)
            self.relation = None
        else:
            self.relation_linear = None
            self.relation = nn.Embedding(self.num_relations, self.input_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.linear.reset_parameters()
        if self.layer_norm is not None:
            self.layer_norm.reset_parameters()
        if self.relation_linear is not None:
            self.relation_linear.reset_parameters()
        if self.relation is not None:
            self.relation.reset_parameters()

    def relation_table(self, query: Tensor) -> Tensor:
        """Relation vectors plus the self-loop identity: ``[R + 1, B·d]`` when
        dependent, else ``[R + 1, d]`` shared by the batch."""
        d = self.input_dim
        if self.relation_linear is not None:
            batch = query.size(0)
            rel = self.relation_linear(query).view(batch, self.num_relations, d)  # (B, R, d)
            loop = _identity_relation(self.message, d, rel).expand(batch, 1, d)
            rel = torch.cat([rel, loop], dim=1)  # (B, R + 1, d)
            return rel.transpose(0, 1).reshape(self.num_relations + 1, batch * d)
        weight = self.relation.weight  # (R, d)
        return torch.cat([weight, _identity_relation(self.message, d, weight).view(1, d)])

    def forward(self, x: Tensor, query: Tensor, boundary: Tensor, graph: BellmanFordGraph,
                edge_weight: Tensor | None = None) -> Tensor:
        num_nodes, batch, d = x.shape
        if d != self.input_dim or boundary.shape != x.shape:
            raise ValueError(f"GeneralizedRelationalConv: x and boundary must be "
                             f"[V, B, {self.input_dim}], got {tuple(x.shape)} and "
                             f"{tuple(boundary.shape)}")
        if graph.num_nodes != num_nodes:
            raise ValueError(f"GeneralizedRelationalConv: the graph has {graph.num_nodes} "
                             f"nodes, x has {num_nodes}")
        if graph.num_relations != self.num_relations:
            raise ValueError(f"GeneralizedRelationalConv: the graph has {graph.num_relations} "
                             f"relations, the layer {self.num_relations}")
        rel = self.relation_table(query)
        weight, bias = self.linear.weight, self.linear.bias  # (out, (1 + k)·d): [x | aggregate]
        if self.aggregation.name in ("sum", "mean"):
            # the self-loop term is + boundary: aggregate over the real edges only
            graph.check_edge_weight(edge_weight)
            agg = rspmm(graph.real, x.reshape(num_nodes, batch * d), rel[:self.num_relations],
                        edge_weight, message=self.message, reduce="sum",
                        backend=self.backend, batch_size=batch)
            agg = agg.view(num_nodes, batch, d) + boundary  # (V, B, d)
            if self.aggregation.name == "mean":
                agg = agg / graph.degree.to(x.dtype).view(-1, 1, 1)
            out = F.linear(x, weight[:, :d], bias) + F.linear(agg, weight[:, d:])
        else:
            # Eq. 3: boundary rows appended; self-loop edges V+i -> i carry them as
            # messages; the graph's V targets are the node rows (boundary rows only send)
            x_ext = torch.cat([x, boundary]).view(2 * num_nodes, batch * d)  # (2V, B·d)
            agg = rspmm(graph.graph, x_ext, rel, graph.full_edge_weight(edge_weight),
                        message=self.message, reduce=self.aggregation.reduce,
                        backend=self.backend, batch_size=batch)  # (V, B·k·d)
            if self.aggregation.name == "pna":
                out = self._pna_update(x, agg.view(num_nodes, batch, 4 * d), graph)
            else:
                out = F.linear(x, weight[:, :d], bias) + F.linear(
                    agg.view(num_nodes, batch, d), weight[:, d:])
        if self.layer_norm is not None:
            out = self.layer_norm(out)
        return self.activation(out)

    def _pna_update(self, x: Tensor, stats: Tensor, graph: BellmanFordGraph) -> Tensor:
        """``W [x ‖ f ‖ s·f ‖ f/s] + b`` without building the ``[V, B, 12d]`` tensor:
        ``W_x x + W_1 f + s·(W_s f) + (1/s)·(W_i f) + b`` (same function, same weights)."""
        d, out_dim = self.input_dim, self.output_dim
        weight = self.linear.weight  # (out, 13d): [x | f | s·f | f/s], f = [mean|max|min|std]
        w_stats = torch.cat([weight[:, d:5 * d], weight[:, 5 * d:9 * d], weight[:, 9 * d:]])
        mixed = F.linear(stats, w_stats)  # (V, B, 3·out)
        plain, amplified, attenuated = mixed.split(out_dim, dim=-1)
        scale = graph.log_degree_ratio.to(x.dtype).view(-1, 1, 1)  # (V, 1, 1)
        inverse = 1.0 / scale.clamp(min=1e-2)
        out = F.linear(x, weight[:, :d], self.linear.bias)
        return out + plain + scale * amplified + inverse * attenuated

    def extra_repr(self) -> str:
        return (f"{self.input_dim}, {self.output_dim}, num_relations={self.num_relations}, "
                f"message={self.message!r}, aggregate={self.aggregation.name!r}, "
                f"dependent={self.dependent}, backend={self.backend!r}")
