r"""GNN encoder + MLP link predictor: the OGB link-property reference models (GCN,
GraphSAGE) and the same predictor over a sheaf-diffusion encoder.

OGB's ogbl-ddi examples (Hu et al. 2020, "Open Graph Benchmark: Datasets for
Machine Learning on Graphs", https://arxiv.org/abs/2005.00687) learn a
256-dimensional embedding per node (ddi has no node features), encode it with a
2-layer GCN or GraphSAGE (256 hidden, ReLU and dropout 0.5 between layers) and
score a pair with an MLP on the Hadamard product of its endpoint embeddings.
:class:`GNNLinkPredictor` is that model with the encoder layer chosen by name
(``conv``: ``gcn``, ``sage`` or ``sheaf``, :func:`list_link_encoders`).

Both tasks that train full-graph link models use it through
``encode(x, edge_index)`` / ``decode(z, pairs)``: ``ogbl`` (no features: ``x`` is
``None`` and the model learns node embeddings) and ``link`` (Cora, CiteSeer, ...:
the node features are the input, no embeddings).

The GCN and GraphSAGE layers are PyG's ``GCNConv`` / ``SAGEConv`` modules (their
parameters and initialisation), computed on a sparse CSR propagation matrix built
once per message graph (the edges merged, as OGB's ``ToSparseTensor``), not on
``edge_index``: on ogbl-ddi (2.1M directed edges) a layer's forward and backward
take 0.5 s instead of 10 s on one CPU thread, and no ``[E, 256]`` message tensor is
materialised. The matrix's transpose is cached beside it for the backward
(:class:`_CsrMatmul`).
"""

from __future__ import annotations

import itertools
import warnings
import weakref
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import GCNConv, SAGEConv

from graphlearn.models.registry import MODELS
from graphlearn.nn.functional import relu_dropout
from graphlearn.nn.sheaf import (
    SheafConv,
    resolve_restriction_maps,
    sheaf_graph,
    undirected_edge_index,
)
from graphlearn.registry import Registry

__all__ = ["LINK_ENCODERS", "GNNLinkPredictor", "csr_transpose", "gcn_adjacency",
           "list_link_encoders", "mean_adjacency", "row_normalized"]


# -- adjacency -------------------------------------------------------------------------------


def _merged_pairs(edge_index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor]:
    """``(target, source)`` of the distinct directed non-loop edges, sorted by target."""
    src, dst = edge_index.long()
    keep = src != dst
    keys = torch.unique(dst[keep] * num_nodes + src[keep])  # sorted: CSR order of adj_t
    return torch.div(keys, num_nodes, rounding_mode="floor"), keys % num_nodes


def _csr(row: Tensor, col: Tensor, value: Tensor, num_nodes: int) -> Tensor:
    """A ``[N, N]`` CSR matrix from entries sorted by ``(row, col)``."""
    crow = torch.zeros(num_nodes + 1, dtype=torch.long, device=row.device)
    crow[1:] = torch.cumsum(torch.bincount(row, minlength=num_nodes), 0)
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col, value, (num_nodes, num_nodes))


def gcn_adjacency(edge_index: Tensor, num_nodes: int) -> Tensor:
    r"""GCN's propagation matrix as a CSR ``adj_t [N, N]`` (row = target):
    :math:`\hat A = \tilde D^{-1/2} (A + I) \tilde D^{-1/2}`, with :math:`A` the
    distinct edges of ``edge_index [2, E]`` (``source -> target``; duplicates merged,
    self-loops replaced by one loop per node) and :math:`\tilde D` the in-degree
    plus one. ``GCNConv(normalize=False)(x, adj_t)`` then equals ``GCNConv()(x,
    edge_index)`` on a graph without duplicate edges."""
    target, source = _merged_pairs(edge_index, num_nodes)
    loops = torch.arange(num_nodes, device=target.device)
    keys = torch.cat([target * num_nodes + source, loops * num_nodes + loops]).sort().values
    row, col = torch.div(keys, num_nodes, rounding_mode="floor"), keys % num_nodes
    degree = torch.bincount(row, minlength=num_nodes).float()  # (N,) in-degree + 1
    inv_sqrt = degree.rsqrt()
    return _csr(row, col, inv_sqrt[row] * inv_sqrt[col], num_nodes)


def mean_adjacency(edge_index: Tensor, num_nodes: int) -> Tensor:
    """The 0/1 adjacency ``adj_t [N, N]`` (row = target) of the distinct non-loop edges of
    ``edge_index``, for ``SAGEConv``'s mean aggregation (``spmm(adj_t, x, reduce="mean")``)."""
    target, source = _merged_pairs(edge_index, num_nodes)
    return _csr(target, source, torch.ones(target.numel(), device=target.device), num_nodes)


def _csr_rows(adj: Tensor) -> Tensor:
    """``[nnz]``: the row of each stored entry of a CSR matrix."""
    crow = adj.crow_indices()
    return torch.repeat_interleave(torch.arange(adj.size(0), device=crow.device), crow.diff())


def csr_transpose(adj: Tensor) -> Tensor:
    """The transpose of a square CSR matrix, as CSR (entries sorted by row, then column)."""
    n = adj.size(0)
    col, value, row = adj.col_indices(), adj.values(), _csr_rows(adj)
    order = torch.sort(col * n + row).indices  # (E,) new order: by column, then row
    return _csr(col[order], row[order], value[order], n)


def row_normalized(adj: Tensor) -> Tensor:
    """``D⁻¹ adj`` of a CSR matrix (each row divided by its number of entries; an empty
    row stays empty): ``row_normalized(mean_adjacency(...)) @ x`` is the mean
    aggregation."""
    row = _csr_rows(adj)
    count = adj.crow_indices().diff()
    value = adj.values() / count[row].to(adj.values().dtype)
    return _csr(row, adj.col_indices(), value, adj.size(0))


class _CsrMatmul(torch.autograd.Function):
    """``adj @ x`` for a constant CSR ``adj`` and its cached transpose: the backward is
    ``adjᵀ @ grad``. Autograd through ``torch.sparse.mm`` instead transposes ``adj``
    (a sort of its entries) at every call (``experiments/benchmarks/ogbl_ddi_step.py``
    times a training step both ways)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, adj: Tensor, adj_t: Tensor) -> Tensor:
        ctx.adj_t = adj_t
        return adj @ x

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        return ctx.adj_t @ grad, None, None


def _propagation(build: Callable[[Tensor, int], Tensor]) -> Callable[[Tensor, int], Any]:
    """``build`` followed by the transpose: the ``(adj, adjᵀ)`` pair :class:`_CsrMatmul`
    takes."""
    def pair(edge_index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor]:
        adj = build(edge_index, num_nodes)
        return adj, csr_transpose(adj)
    return pair


class _GraphCache:
    """Structures derived from one message graph, rebuilt only when another
    ``edge_index`` tensor (or another node count) is passed. The graph is recognised by
    identity (a weak reference), so an ``edge_index`` modified in place is not noticed:
    pass a new tensor. Not part of the state dict; cleared by ``reset_parameters``."""

    def __init__(self, build: Callable[[Tensor, int], Any]) -> None:
        self.build = build
        self.clear()

    def clear(self) -> None:
        self._ref: weakref.ref[Tensor] | None = None
        self._key: tuple[int, int] | None = None
        self._value: Any = None

    def __call__(self, edge_index: Tensor, num_nodes: int) -> Any:
        key = (num_nodes, edge_index.data_ptr())
        if self._ref is None or self._ref() is not edge_index or self._key != key:
            self._value = self.build(edge_index, num_nodes)
            self._ref, self._key = weakref.ref(edge_index), key
        return self._value


# -- encoders ----------------------------------------------------------------------------------

#: Encoder stacks of :class:`GNNLinkPredictor` by ``conv`` name.
LINK_ENCODERS: Registry[type[nn.Module]] = Registry("link encoder")


def list_link_encoders() -> list[str]:
    """The ``conv`` names :class:`GNNLinkPredictor` accepts."""
    return LINK_ENCODERS.names()


class _ConvStack(nn.Module):
    """``num_layers`` PyG convolutions ``in -> hidden -> ... -> hidden`` with ReLU and
    dropout between layers (none after the last), on a cached CSR propagation matrix
    and its transpose. The convolutions hold the parameters; :meth:`layer` computes
    each one's forward with :class:`_CsrMatmul` (``tests/models/test_gnn_lp.py``
    checks it against the PyG module's own forward, values and gradients)."""

    def __init__(self, make: Callable[[int, int], nn.Module],
                 adjacency: Callable[[Tensor, int], Tensor], in_channels: int,
                 hidden_channels: int, num_layers: int, dropout: float) -> None:
        super().__init__()
        sizes = [in_channels] + [hidden_channels] * num_layers
        self.convs = nn.ModuleList(make(a, b) for a, b in itertools.pairwise(sizes))
        self.dropout = dropout
        self._adjacency = _GraphCache(_propagation(adjacency))
        self.reset_parameters()

    def layer(self, conv: nn.Module, x: Tensor, adj: tuple[Tensor, Tensor]) -> Tensor:
        """``conv``'s forward on ``x [N, in]`` with ``adj = (matrix, its transpose)``:
        ``[N, out]``. Each encoder defines it."""
        raise NotImplementedError

    def reset_parameters(self) -> None:
        for conv in self.convs:
            conv.reset_parameters()
        self._adjacency.clear()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        adj = self._adjacency(edge_index, x.size(0))  # (N, N) CSR, row = target; transpose
        for i, conv in enumerate(self.convs):
            x = self.layer(conv, x, adj)  # (N, hidden)
            if i < len(self.convs) - 1:
                x = relu_dropout(x, self.dropout, self.training)
        return x


@LINK_ENCODERS.register("gcn")
class GCNEncoder(_ConvStack):
    r"""Kipf & Welling (2017) GCN layers, :math:`X' = \hat A X W + b`
    (:func:`gcn_adjacency`)."""

    def __init__(self, in_channels: int, hidden_channels: int, num_layers: int,
                 dropout: float) -> None:
        super().__init__(lambda a, b: GCNConv(a, b, normalize=False), gcn_adjacency,
                         in_channels, hidden_channels, num_layers, dropout)

    def layer(self, conv: nn.Module, x: Tensor, adj: tuple[Tensor, Tensor]) -> Tensor:
        out = _CsrMatmul.apply(conv.lin(x), *adj)  # Â X W
        return out + conv.bias if conv.bias is not None else out


@LINK_ENCODERS.register("sage")
class SAGEEncoder(_ConvStack):
    r"""GraphSAGE layers (Hamilton et al. 2017) with mean aggregation,
    :math:`x'_v = W_1 x_v + W_2 \operatorname{mean}_{u \in N(v)} x_u`."""

    def __init__(self, in_channels: int, hidden_channels: int, num_layers: int,
                 dropout: float) -> None:
        super().__init__(lambda a, b: SAGEConv(a, b, aggr="mean"),
                         lambda e, n: row_normalized(mean_adjacency(e, n)),
                         in_channels, hidden_channels, num_layers, dropout)

    def layer(self, conv: nn.Module, x: Tensor, adj: tuple[Tensor, Tensor]) -> Tensor:
        # PyG's SAGEConv with its defaults (no projection, root weight, no normalisation)
        return conv.lin_l(_CsrMatmul.apply(x, *adj)) + conv.lin_r(x)


@LINK_ENCODERS.register("sheaf")
class SheafEncoder(nn.Module):
    r"""Neural Sheaf Diffusion layers (:class:`~graphlearn.nn.SheafConv`) on stalks of
    dimension ``d`` with ``hidden / d`` channels; the input (node embeddings of width
    ``hidden``, or features lifted by :math:`\operatorname{ELU}(X W_{in})`) is read as
    ``[N, d, hidden / d]``; dropout between layers.

    Args (beyond the stack's): ``lift`` (features: a linear lift to ``hidden``),
    ``stalk_dim`` ``d`` (must divide ``hidden_channels``), ``restriction`` (map family),
    ``update`` (``diffusion`` or ``linear``), ``backend`` (``rspmm`` backend).
    """

    def __init__(self, in_channels: int, hidden_channels: int, num_layers: int,
                 dropout: float, lift: bool = True, stalk_dim: int = 4,
                 restriction: str = "diagonal", update: str = "diffusion",
                 backend: str = "auto") -> None:
        super().__init__()
        if hidden_channels % stalk_dim:
            raise ValueError(f"conv 'sheaf': stalk_dim {stalk_dim} must divide "
                             f"hidden_channels {hidden_channels}")
        if not lift and in_channels != hidden_channels:
            raise ValueError(f"conv 'sheaf' without a lift needs in_channels == "
                             f"hidden_channels, got {in_channels} and {hidden_channels}")
        self.stalk_dim, self.channels = stalk_dim, hidden_channels // stalk_dim
        self.lift = nn.Linear(in_channels, hidden_channels) if lift else None
        self.layers = nn.ModuleList(
            SheafConv(stalk_dim, self.channels, restriction=restriction, update=update,
                      backend=backend) for _ in range(num_layers))
        self.dropout = dropout
        self._graph = _GraphCache(self._build_graph)
        self.reset_parameters()

    @staticmethod
    def _build_graph(edge_index: Tensor, num_nodes: int) -> tuple[Tensor, Any]:
        edges = undirected_edge_index(edge_index, num_nodes)  # (2, E') each edge once
        return edges, sheaf_graph(edges, num_nodes)

    def reset_parameters(self) -> None:
        if self.lift is not None:
            self.lift.reset_parameters()
        for layer in self.layers:
            layer.reset_parameters()
        self._graph.clear()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        n = x.size(0)
        edges, graph = self._graph(edge_index, n)
        h = F.elu(self.lift(x)) if self.lift is not None else x  # (N, d·f)
        h = h.reshape(n, self.stalk_dim, self.channels)  # (N, d, f) stalks
        for i, layer in enumerate(self.layers):
            h = layer(h, edges, graph=graph)
            if i < len(self.layers) - 1:
                h = F.dropout(h, self.dropout, self.training)
        return h.reshape(n, -1)  # (N, d·f)


# -- the model ---------------------------------------------------------------------------------


def _positive_int(model: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{model}: {name} must be a positive integer, got {value!r}")
    return value


@MODELS.register("gnn_lp")
class GNNLinkPredictor(nn.Module):
    r"""A GNN encoder and an MLP link predictor on the Hadamard product, as OGB's
    ogbl-ddi / ogbl-collab / ogbl-ppa examples (Hu et al. 2020,
    https://arxiv.org/abs/2005.00687):

    .. math::
        H^{(0)} = E \text{ (learned, no features) or } X, \qquad
        Z = \operatorname{Enc}_L\big(H^{(0)}, A\big), \qquad
        \text{logit}(u, v) = \operatorname{MLP}(z_u \odot z_v),

    where :math:`\operatorname{Enc}_L` is ``num_layers`` GCN, GraphSAGE or sheaf
    layers (``conv``) of width ``hidden_channels`` and the MLP has
    ``predictor_layers`` linear layers (``hidden_channels`` wide, ReLU and dropout
    between them, one output). OGB's example applies a sigmoid to the output;
    ``decode`` returns the logit (the same ranking, without float32 saturation ties).

    Node embeddings :math:`E \in \mathbb{R}^{N \times \text{hidden}}` (Xavier-uniform
    initialised, as OGB's examples) are learned when the task passes no
    ``in_channels`` (ogbl-ddi); with node features (``link`` task on Cora, ogbl-collab)
    ``x`` is the input and there are no embeddings.

    Args:
        in_channels: node feature size (set by the task; ``None``: no features).
        num_nodes: number of nodes (set by the task; needed without features).
        conv: encoder layer, ``"gcn"`` (default), ``"sage"`` or ``"sheaf"``.
        hidden_channels: embedding, encoder and predictor width (default ``256``).
        num_layers: encoder layers (default ``2``).
        predictor_layers: linear layers of the MLP predictor (default ``2``, as OGB's
            ogbl-ddi example, which builds it with ``num_layers``).
        dropout: dropout between encoder layers and between predictor layers
            (default ``0.5``).
        stalk_dim: ``conv="sheaf"`` only: stalk dimension ``d`` (default ``4``:
            ``hidden_channels / 4`` channels per stalk coordinate).
        restriction: ``conv="sheaf"`` only: restriction-map family (default
            ``"diagonal"``).
        update: ``conv="sheaf"`` only: ``"diffusion"`` (NSD, default) or ``"linear"``.
        backend: ``conv="sheaf"`` only: ``rspmm`` backend (default ``"auto"``).

    Shapes:
        - **encode**: ``x [N, F]`` (or ``None`` with embeddings), ``edge_index [2, E]``
          → ``z [N, hidden_channels]``.
        - **decode**: ``z``, ``edge_label_index [2, M]`` → logits ``[M]``.
        - **forward**: ``x``, ``edge_index``, ``edge_label_index`` → logits ``[M]``.
    """

    def __init__(self, in_channels: int | None = None, num_nodes: int | None = None,
                 conv: str = "gcn", hidden_channels: int = 256, num_layers: int = 2,
                 predictor_layers: int = 2, dropout: float = 0.5,
                 stalk_dim: int | None = None, restriction: str | None = None,
                 update: str | None = None, backend: str | None = None) -> None:
        super().__init__()
        name = "GNNLinkPredictor"
        encoder_cls = LINK_ENCODERS.get(conv)  # an unknown name fails, listing the encoders
        self.conv_name = next(n for n in LINK_ENCODERS.names()
                              if LINK_ENCODERS.get(n) is encoder_cls)
        hidden = _positive_int(name, "hidden_channels", hidden_channels)
        layers = _positive_int(name, "num_layers", num_layers)
        self.predictor_layers = _positive_int(name, "predictor_layers", predictor_layers)
        if isinstance(dropout, bool) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"{name}: dropout must be in [0, 1), got {dropout!r}")
        self.dropout = float(dropout)
        sheaf_options = {"stalk_dim": stalk_dim, "restriction": restriction,
                         "update": update, "backend": backend}
        if self.conv_name != "sheaf":
            for key, value in sheaf_options.items():
                if value is not None:
                    raise ValueError(f"{name}: {key} applies to conv='sheaf' only (conv is "
                                     f"{self.conv_name!r}); remove it")
        if in_channels is None:
            if num_nodes is None:
                raise ValueError(f"{name}: needs node features (in_channels) or num_nodes "
                                 f"for learnable node embeddings")
            self.embedding: nn.Embedding | None = nn.Embedding(
                _positive_int(name, "num_nodes", num_nodes), hidden)
            encoder_in = hidden
        else:
            self.embedding = None
            encoder_in = _positive_int(name, "in_channels", in_channels)
        if self.conv_name == "sheaf":
            d = 4 if stalk_dim is None else _positive_int(name, "stalk_dim", stalk_dim)
            resolve_restriction_maps(restriction or "diagonal")  # lists the families
            self.encoder: nn.Module = SheafEncoder(
                encoder_in, hidden, layers, self.dropout, lift=self.embedding is None,
                stalk_dim=d, restriction=restriction or "diagonal",
                update=update or "diffusion", backend=backend or "auto")
        else:
            self.encoder = encoder_cls(encoder_in, hidden, layers, self.dropout)
        sizes = [hidden] * self.predictor_layers + [1]
        self.predictor = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.embedding is not None:
            nn.init.xavier_uniform_(self.embedding.weight)  # OGB's examples
        self.encoder.reset_parameters()
        for lin in self.predictor:
            lin.reset_parameters()

    def clip_groups(self) -> list[list[nn.Parameter]]:
        """Parameter groups clipped separately (``train.clip_grad_norm``), as OGB's
        examples clip them: the embeddings (if any), the encoder, the predictor."""
        parts = [self.embedding, self.encoder, self.predictor]
        groups = [list(part.parameters()) for part in parts if part is not None]
        return [group for group in groups if group]

    def encode(self, x: Tensor | None, edge_index: Tensor) -> Tensor:
        """Node embeddings ``[N, hidden_channels]`` from the input and the message graph."""
        if self.embedding is not None:
            if x is not None:
                raise ValueError("GNNLinkPredictor: built without in_channels, the model "
                                 "learns node embeddings; call encode(None, edge_index)")
            x = self.embedding.weight  # (N, hidden)
        elif x is None:
            raise ValueError("GNNLinkPredictor: built with in_channels; encode needs the "
                             "node features x")
        if edge_index.numel() and int(edge_index.max()) >= x.size(0):
            raise ValueError(f"GNNLinkPredictor: edge_index refers to node "
                             f"{int(edge_index.max())}, the input has {x.size(0)} nodes")
        return self.encoder(x, edge_index)

    def decode(self, z: Tensor, edge_label_index: Tensor) -> Tensor:
        """MLP logits ``[M]`` of the node pairs ``edge_label_index [2, M]``."""
        if edge_label_index.dim() != 2 or edge_label_index.size(0) != 2:
            raise ValueError(f"GNNLinkPredictor.decode: edge_label_index must be [2, M], got "
                             f"{list(edge_label_index.shape)}")
        h = z[edge_label_index[0]] * z[edge_label_index[1]]  # (M, hidden) Hadamard product
        for lin in self.predictor[:-1]:
            h = relu_dropout(lin(h), self.dropout, self.training)
        return self.predictor[-1](h).squeeze(-1)  # (M,)

    def forward(self, x: Tensor | None, edge_index: Tensor,
                edge_label_index: Tensor) -> Tensor:
        return self.decode(self.encode(x, edge_index), edge_label_index)

    def extra_repr(self) -> str:
        return (f"conv={self.conv_name!r}, embedding={self.embedding is not None}, "
                f"dropout={self.dropout}")

