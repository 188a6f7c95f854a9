r"""NBFNet: link prediction by a learned, generalized Bellman-Ford iteration."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint
from torch_geometric.data import Data

from graphlearn.models.registry import MODELS
from graphlearn.nn import BellmanFordGraph, GeneralizedRelationalConv

__all__ = ["NBFNet", "remove_query_edges"]


def _inverse_relation(relation: Tensor, num_relations: int) -> Tensor:
    """``r + R/2 (mod R)`` when relations come in inverse pairs (even ``R``), else ``r``."""
    if num_relations > 1 and num_relations % 2 == 0:
        return (relation + num_relations // 2) % num_relations
    return relation


def remove_query_edges(data: Data, head: Tensor, relation: Tensor, tail: Tensor,
                       num_relations: int, one_hop: bool = False) -> Data:
    """The message graph without the edges that state the batch's answers.

    DESIGN.md §2: at training time the query triples ``(h, r, t)`` are removed
    from the message graph together with their inverse edges ``(t, r⁻¹, h)``;
    otherwise the model reads the answer off the graph. With ``one_hop=True``
    every edge between ``h`` and ``t`` goes, in either direction and with any
    relation (NBFNet's ``remove_one_hop``).

    Relations ``r`` and ``r + R/2`` are inverses when ``num_relations`` is even
    (graphlearn's KGs); with an odd count (e.g. one relation of an undirected
    graph) each relation is its own inverse.

    Args:
        data: ``edge_index [2, E]``, ``edge_type [E]`` (optional: all 0), ``num_nodes``.
        head, relation, tail: ``[b]`` the batch's true triples (query orientation;
            ``relation`` in ``[0, num_relations)``).
        num_relations: relation types of the message graph (inverses included).
        one_hop: remove every edge between a head and its tail.

    Returns:
        A new :class:`Data` with ``edge_index``, ``edge_type``, ``num_nodes`` and
        ``num_relations``; ``data`` is not modified.
    """
    edge_index = data.edge_index
    num_nodes = int(data.num_nodes)
    edge_type = getattr(data, "edge_type", None)
    if edge_type is None:
        edge_type = torch.zeros(edge_index.size(1), dtype=torch.long, device=edge_index.device)
    head, relation, tail = (t.to(edge_index.device).long() for t in (head, relation, tail))
    src, dst = edge_index[0].long(), edge_index[1].long()
    if one_hop:
        edge_key = src * num_nodes + dst
        query_key = torch.cat([head * num_nodes + tail, tail * num_nodes + head])
    else:
        edge_key = (src * num_nodes + dst) * num_relations + edge_type
        inverse = _inverse_relation(relation, num_relations)
        query_key = torch.cat([(head * num_nodes + tail) * num_relations + relation,
                               (tail * num_nodes + head) * num_relations + inverse])
    keep = ~torch.isin(edge_key, query_key)
    return Data(edge_index=edge_index[:, keep], edge_type=edge_type[keep], num_nodes=num_nodes,
                num_relations=num_relations)


@MODELS.register("nbfnet")
class NBFNet(nn.Module):
    r"""Neural Bellman-Ford Networks, from Zhu et al. (2021), "Neural Bellman-Ford
    Networks: A General Graph Neural Network Framework for Link Prediction"
    (https://arxiv.org/abs/2106.06935).

    A query :math:`(h, r, ?)` is answered by one generalized Bellman-Ford pass
    from :math:`h` that represents every node :math:`t` at once:

    .. math::
        \mathbf{h}^{(0)}_v &= \mathbb{1}(v = h)\, \mathbf{q}_r
            \quad \text{(INDICATOR)} \\
        \mathbf{h}^{(\ell)}_v &= \operatorname{layer}_\ell\big(\mathbf{h}^{(\ell-1)},
            \mathbf{h}^{(0)}, \mathbf{q}_r\big)_v\ (+\ \mathbf{h}^{(\ell-1)}_v
            \text{ with the short-cut}) \\
        s(h, r, t) &= \operatorname{MLP}\big([\mathbf{h}^{(T)}_t \,\|\, \mathbf{q}_r]\big)

    with :class:`~graphlearn.nn.GeneralizedRelationalConv` layers. Head queries
    :math:`(?, r, t)` are asked as :math:`(t, r^{-1}, ?)` through the inverse
    relations of the message graph. With ``symmetric=True`` (homogeneous
    graphs) the score of a pair is the average of the :math:`h \to t` and
    :math:`t \to h` passes; with ``concat_hidden=True`` the readout sees every
    layer's output.

    Args:
        num_relations: relation types of the message graph, inverses included
            (``2R`` for a KG; 1 for an undirected homogeneous graph). Set by the task.
        input_dim: size of the query embedding and boundary (default 32).
        hidden_dims: output size of each layer (default six layers of 32).
        message: ``"transe"``, ``"distmult"`` (default) or ``"rotate"``.
        aggregate: ``"sum"``, ``"mean"``, ``"max"``, ``"min"`` or ``"pna"`` (default).
        short_cut: add each layer's input to its output when the sizes match (default ``True``).
        layer_norm: layer normalisation in each layer (default ``True``).
        activation: the layers' activation (default ``"relu"``).
        dependent: relation vectors computed from the query (default ``True``).
        concat_hidden: read out the concatenation of all layers (default ``False``).
        num_mlp_layers: layers of the readout MLP (default 2).
        remove_one_hop: at training time remove every edge between a query's
            head and tail, not only the query edge and its inverse (default ``False``).
        symmetric: average the two directions of a pair (default ``False``).
        self_loops: homogeneous graphs (``num_relations == 1``) only: every message
            graph gets the edge :math:`i \to i` of relation 0 at every node, as
            TorchDrug's NBFNet does for homogeneous graphs (its ``as_relational_graph``);
            the loop carries a message like any edge and counts in the PNA degree
            (default ``False``). Never removed as a query edge.
        backend: the ``rspmm`` backend (default ``"auto"``: the fused kernel of
            the device when available).
        checkpoint_layers: activation checkpointing when gradients are taken: each
            layer's intermediate tensors (PNA statistics, layer norm, activation)
            are freed after its forward pass and recomputed during the backward
            pass, so training keeps only each layer's ``[V, B, d]`` input and
            output: less peak memory (most with PNA) for about one more forward
            pass of compute. Same scores and gradients (default ``False``).

    Shapes:
        - **forward**: ``data`` (message graph), ``head [b]``, ``relation [b]``,
          ``candidates [b, c]`` → scores ``[b, c]``.
        - **score_all_tails**: ``data``, ``head [b]``, ``relation [b]`` → ``[b, V]``.
        - **bellman_ford**: ``graph``, ``head [B]``, ``relation [B]`` →
          node features ``[V, B, F]``.
    """

    #: the task passes the message graph to every call (``data`` first)
    uses_graph = True
    #: scores entities it has never seen (no entity embeddings): inductive splits allowed
    inductive = True

    def __init__(
        self,
        num_relations: int,
        input_dim: int = 32,
        hidden_dims: Sequence[int] | None = None,
        message: str = "distmult",
        aggregate: str = "pna",
        short_cut: bool = True,
        layer_norm: bool = True,
        activation: str = "relu",
        dependent: bool = True,
        concat_hidden: bool = False,
        num_mlp_layers: int = 2,
        remove_one_hop: bool = False,
        symmetric: bool = False,
        self_loops: bool = False,
        backend: str = "auto",
        checkpoint_layers: bool = False,
    ) -> None:
        super().__init__()
        hidden_dims = [32] * 6 if hidden_dims is None else list(hidden_dims)
        if not hidden_dims or any(not isinstance(h, int) or isinstance(h, bool) or h < 1
                                  for h in hidden_dims):
            raise ValueError(f"NBFNet: hidden_dims must be a non-empty list of positive "
                             f"integers, got {hidden_dims!r}")
        if isinstance(num_mlp_layers, bool) or num_mlp_layers < 1:
            raise ValueError(f"NBFNet: num_mlp_layers must be at least 1, got {num_mlp_layers}")
        self.num_relations = int(num_relations)
        if self_loops and self.num_relations != 1:
            raise ValueError(f"NBFNet: self_loops is for homogeneous graphs (num_relations "
                             f"1), the graph has {self.num_relations} relation types")
        self.self_loops = bool(self_loops)
        self.input_dim = int(input_dim)
        self.hidden_dims = hidden_dims
        self.short_cut = bool(short_cut)
        self.concat_hidden = bool(concat_hidden)
        self.remove_one_hop = bool(remove_one_hop)
        self.symmetric = bool(symmetric)
        self.backend = backend
        self.checkpoint_layers = bool(checkpoint_layers)
        dims = [self.input_dim, *hidden_dims]
        self.layers = nn.ModuleList(
            GeneralizedRelationalConv(dims[i], dims[i + 1], self.num_relations, self.input_dim,
                                      message=message, aggregate=aggregate,
                                      layer_norm=layer_norm, activation=activation,
                                      dependent=dependent, backend=backend)
            for i in range(len(hidden_dims)))
        # INDICATOR: one query embedding per relation
        self.query = nn.Embedding(self.num_relations, self.input_dim)
        feature_dim = (sum(hidden_dims) if concat_hidden else hidden_dims[-1]) + self.input_dim
        mlp: list[nn.Module] = []
        for _ in range(num_mlp_layers - 1):
            mlp += [nn.Linear(feature_dim, feature_dim), nn.ReLU()]
        mlp.append(nn.Linear(feature_dim, 1))
        self.mlp = nn.Sequential(*mlp)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for layer in self.layers:
            layer.reset_parameters()
        self.query.reset_parameters()
        for module in self.mlp:
            if isinstance(module, nn.Linear):
                module.reset_parameters()

    # -- graph ---------------------------------------------------------------------------

    def graph_data(self, data: Data) -> Data:
        """``data`` as the layers see it: with ``self_loops``, a copy with the edge
        ``i -> i`` (relation 0) appended for every node (cached on ``data``); else
        ``data`` itself."""
        if not self.self_loops:
            return data
        edge_index = data.edge_index
        key = (edge_index.data_ptr(), edge_index._version, tuple(edge_index.shape),
               edge_index.device, int(data.num_nodes))
        cached = data.__dict__.get("_graphlearn_self_loops")
        if cached is not None and cached[0] == key:
            return cached[1]
        nodes = torch.arange(int(data.num_nodes), device=edge_index.device)
        looped = Data(edge_index=torch.cat([edge_index, torch.stack([nodes, nodes])], dim=1),
                      num_nodes=int(data.num_nodes), num_relations=1)
        edge_type = getattr(data, "edge_type", None)
        if edge_type is not None:
            looped.edge_type = torch.cat([edge_type, torch.zeros_like(nodes)])
        data.__dict__["_graphlearn_self_loops"] = (key, looped)
        return looped

    def message_graph(self, data: Data | BellmanFordGraph) -> BellmanFordGraph:
        """The prepared graph of ``data`` (cached on it), on this model's device."""
        if isinstance(data, BellmanFordGraph):
            graph = data
        else:
            graph = BellmanFordGraph.from_data(self.graph_data(data),
                                               num_relations=self.num_relations)
        if graph.num_relations != self.num_relations:
            raise ValueError(f"NBFNet: the message graph has {graph.num_relations} relation "
                             f"types, the model was built for {self.num_relations}")
        return graph.to(self.query.weight.device)

    def remove_easy_edges(self, data: Data, head: Tensor, relation: Tensor,
                          tail: Tensor) -> Data:
        """:func:`remove_query_edges` with this model's ``remove_one_hop`` setting."""
        return remove_query_edges(data, head, relation, tail, self.num_relations,
                                  one_hop=self.remove_one_hop)

    # -- Bellman-Ford ----------------------------------------------------------------------

    def bellman_ford(self, graph: BellmanFordGraph, head: Tensor, relation: Tensor,
                     edge_weights: Sequence[Tensor] | None = None) -> Tensor:
        """Node features ``[V, B, F]`` of ``B`` queries ``(head, relation, ?)``.

        ``edge_weights``: one ``[E]`` tensor per layer multiplying the messages
        (path explanations differentiate the score with respect to them).
        """
        num_nodes, batch = graph.num_nodes, head.numel()
        query = self.query(relation)  # (B, d)
        # INDICATOR: the query embedding at the source node, zeros elsewhere
        boundary = query.new_zeros(num_nodes, batch, self.input_dim)  # (V, B, d)
        boundary = boundary.index_put((head, torch.arange(batch, device=head.device)), query)
        hiddens = []
        layer_input = boundary
        checkpointed = self.checkpoint_layers and torch.is_grad_enabled()
        for i, layer in enumerate(self.layers):
            weight = edge_weights[i] if edge_weights is not None else None
            if checkpointed:  # keep the layer's input, recompute the rest in backward
                hidden = checkpoint(layer, layer_input, query, boundary, graph, weight,
                                    use_reentrant=False)
            else:
                hidden = layer(layer_input, query, boundary, graph, weight)  # (V, B, d_i)
            if self.short_cut and hidden.shape == layer_input.shape:
                hidden = hidden + layer_input
            hiddens.append(hidden)
            layer_input = hidden
        node_query = query.unsqueeze(0).expand(num_nodes, -1, -1)  # (V, B, d)
        if self.concat_hidden:
            return torch.cat([*hiddens, node_query], dim=-1)
        return torch.cat([hiddens[-1], node_query], dim=-1)

    def _check_queries(self, graph: BellmanFordGraph, head: Tensor, relation: Tensor,
                       candidates: Tensor | None = None) -> None:
        if head.dim() != 1 or relation.shape != head.shape:
            raise ValueError(f"NBFNet: head and relation must be [b] tensors of one length, "
                             f"got {tuple(head.shape)} and {tuple(relation.shape)}")
        if candidates is not None:
            if candidates.dim() != 2 or candidates.size(0) != head.numel():
                raise ValueError(f"NBFNet: candidates must be [b, c] with b = "
                                 f"{head.numel()} queries, got {tuple(candidates.shape)}")
            if candidates.numel() and (int(candidates.min()) < 0
                                       or int(candidates.max()) >= graph.num_nodes):
                raise ValueError(f"NBFNet: candidates must lie in [0, {graph.num_nodes})")
        if head.numel() and (int(head.min()) < 0 or int(head.max()) >= graph.num_nodes):
            raise ValueError(f"NBFNet: query entities must lie in [0, {graph.num_nodes})")
        if relation.numel() and (int(relation.min()) < 0
                                 or int(relation.max()) >= self.num_relations):
            raise ValueError(f"NBFNet: query relations must lie in [0, {self.num_relations})")

    def forward(self, data: Data | BellmanFordGraph, head: Tensor, relation: Tensor,
                candidates: Tensor) -> Tensor:
        """Scores ``[b, c]`` of the candidate tails of queries ``(head, relation, ?)``.

        One Bellman-Ford pass per query scores all of its candidates
        (two passes per candidate pair with ``symmetric=True``).
        """
        graph = self.message_graph(data)
        device = self.query.weight.device
        head, relation, candidates = head.to(device), relation.to(device), candidates.to(device)
        if candidates.dim() == 1:
            candidates = candidates.unsqueeze(1)
        self._check_queries(graph, head, relation, candidates)
        batch, num_candidates = candidates.shape
        rows = torch.arange(batch, device=device).unsqueeze(1)  # (b, 1)
        feature = self.bellman_ford(graph, head, relation)[candidates, rows]  # (b, c, F)
        if self.symmetric:
            # t -> h pass from every candidate, read out at the query's head
            back = self.bellman_ford(graph, candidates.reshape(-1),
                                     relation.repeat_interleave(num_candidates))
            back = back[head.repeat_interleave(num_candidates),
                        torch.arange(batch * num_candidates, device=device)]
            feature = (feature + back.view(batch, num_candidates, -1)) / 2
        return self.mlp(feature).squeeze(-1)

    def score_all_tails(self, data: Data | BellmanFordGraph, head: Tensor,
                        relation: Tensor) -> Tensor:
        """Scores ``[b, V]`` of every node as the tail of ``(head, relation, ?)``."""
        if self.symmetric:
            raise ValueError("NBFNet(symmetric=True) scores given candidate pairs (forward); "
                             "ranking all tails would take one pass per candidate")
        graph = self.message_graph(data)
        device = self.query.weight.device
        head, relation = head.to(device), relation.to(device)
        self._check_queries(graph, head, relation)
        feature = self.bellman_ford(graph, head, relation)  # (V, b, F)
        return self.mlp(feature).squeeze(-1).t()  # (b, V)
