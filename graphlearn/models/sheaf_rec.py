r"""A sheaf neural network recommender: LightGCN's propagation with a learned sheaf.

Users and items are the nodes of the bipartite training graph (users ``0 .. U-1``,
items ``U .. U+I-1``), each with a ``d``-dimensional stalk of ``f`` channels
(``dim = d·f``). ``num_layers`` sheaf convolutions (:class:`~graphlearn.nn.sheaf.SheafConv`)
propagate the embeddings, the layers are averaged as in LightGCN, and a user–item
score is the dot product of the averaged representations.

Differences from the Sheaf4Rec reference code (see ``docs/_sheaf_draft.md``): the
restriction maps can be any registered family (Sheaf4Rec: one scalar per edge,
``restriction="scalar"`` here); the Laplacian is the :math:`(D+I)^{-1/2}`-normalised
block-sparse one of Neural Sheaf Diffusion; evaluation is the recommendation task's
(seen items masked to :math:`-\infty`, selection on validation).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from graphlearn.models.mf import EmbeddingRecommender
from graphlearn.models.registry import MODELS
from graphlearn.nn.sheaf import (
    MAP_MODES,
    UPDATES,
    SheafConv,
    diagonal_sheaf_laplacian,
    resolve_restriction_maps,
    sheaf_graph,
    sheaf_laplacian,
)
from graphlearn.ops import RelGraph
from graphlearn.registry import normalize_name

__all__ = ["SheafRec", "bipartite_edge_index"]


def bipartite_edge_index(user: Tensor, item: Tensor, num_users: int, num_items: int) -> Tensor:
    """The undirected user–item edges, each once, in the form of
    :func:`~graphlearn.nn.sheaf.undirected_edge_index`: ``[2, E]`` rows ``user``,
    columns ``num_users + item``, sorted, duplicate pairs merged."""
    key = torch.unique(user.long() * num_items + item.long())  # sorted distinct pairs
    u = torch.div(key, num_items, rounding_mode="floor")
    return torch.stack([u, key - u * num_items + num_users])


@MODELS.register("sheaf_rec")
class SheafRec(EmbeddingRecommender):
    r"""A sheaf recommender after Purificato et al. (2023), "Sheaf Neural Networks
    for Graph-based Recommender Systems" (https://arxiv.org/abs/2304.09097), with
    the restriction maps and normalised Laplacian of Bodnar et al. (2022), "Neural
    Sheaf Diffusion" (https://arxiv.org/abs/2202.04579).

    Layer-0 embeddings :math:`X^{(0)} \in \mathbb{R}^{(U+I)d \times f}` are
    propagated by ``num_layers`` sheaf convolutions over the training graph; with
    the default linear update

    .. math::
        X^{(k+1)} = X^{(k)} - \alpha\, \Delta_{F^{(k)}} X^{(k)}, \qquad
        x = \frac{1}{K+1} \sum_{k=0}^{K} x^{(k)}, \qquad
        \hat y_{ui} = x_u^\top x_i,

    where :math:`\Delta_F = (D+I)^{-1/2} L_F (D+I)^{-1/2}` is the normalised sheaf
    Laplacian of restriction maps learned from the endpoint embeddings. With
    identity maps and :math:`\alpha = 1` this is LightGCN with self-loops (GCN's
    normalisation); the maps let each user–item incidence transform the
    signal it passes. Trained with the task's BPR loss plus the L2 penalty on the
    batch's layer-0 embeddings (:class:`~graphlearn.models.mf.EmbeddingRecommender`).
    Registered as ``sheaf_rec``.

    Args:
        num_users: ``U`` (from the data).
        num_items: ``I`` (from the data).
        train_edges: ``[2, E]`` training ``(user, item)`` pairs (from the data).
        dim: embedding size ``d·f`` (default ``64``).
        stalk_dim: ``d``, divides ``dim`` (default ``8``: 8 channels of 8-dim stalks).
        num_layers: sheaf layers ``K`` (default ``2``).
        restriction: restriction-map family (``list_restriction_maps()``; default
            ``"diagonal"``; ``"scalar"`` is Sheaf4Rec's map).
        update: ``"linear"`` (default) or NSD's ``"diffusion"`` (see ``SheafConv``).
        maps: ``"per_layer"`` (default): each layer learns maps from its input;
            ``"shared"``: one set of maps from the layer-0 embeddings, one
            Laplacian for every layer.
        step: :math:`\alpha` of the linear update (default ``1.0``).
        normalize: the :math:`(D+I)^{-1/2}` normalisation (default ``True``).
        map_activation: activation of the map learner (default ``"tanh"``).
        backend: ``rspmm`` backend of the propagation with diagonal maps (default
            ``"auto"``); ``"reference"``: the specification (gather and ``index_add``,
            per-edge normalisation), kept for tests; every other backend builds the
            Laplacian by :func:`~graphlearn.nn.sheaf.diagonal_sheaf_laplacian`. Full
            maps: ``"auto"`` / ``"cpu"`` run the fused kernels of
            :mod:`graphlearn.ops.sheaf`, others the blocks with ``index_add``.
        reg_weight: :math:`\lambda` (default ``1e-4``).
        reg_squared: form of the penalty (see ``EmbeddingRecommender``).

    Shapes:
        - **encode**: ``() -> ([U, dim], [I, dim])`` propagated representations.
        - **score_all**: ``[B, dim], [I, dim] -> [B, I]``.
    """

    def __init__(self, num_users: int, num_items: int, train_edges: Tensor, dim: int = 64,
                 stalk_dim: int = 8, num_layers: int = 2, restriction: str = "diagonal",
                 update: str = "linear", maps: str = "per_layer", step: float = 1.0,
                 normalize: bool = True, map_activation: str = "tanh", backend: str = "auto",
                 reg_weight: float = 1e-4, reg_squared: bool = True) -> None:
        super().__init__(num_users, num_items, dim, reg_weight, reg_squared)
        if int(num_layers) != num_layers or num_layers < 0:
            raise ValueError(f"SheafRec: num_layers must be an integer >= 0, got {num_layers!r}")
        if int(stalk_dim) != stalk_dim or stalk_dim < 1 or self.dim % stalk_dim:
            raise ValueError(f"SheafRec: stalk_dim must be a positive divisor of dim={self.dim}, "
                             f"got {stalk_dim!r}")
        if update not in UPDATES:
            raise ValueError(f"SheafRec: unknown update {update!r} (valid: {', '.join(UPDATES)})")
        if maps not in MAP_MODES:
            raise ValueError(f"SheafRec: unknown maps {maps!r} (valid: {', '.join(MAP_MODES)})")
        train_edges = torch.as_tensor(train_edges)
        if train_edges.dim() != 2 or train_edges.size(0) != 2:
            raise ValueError(f"SheafRec: train_edges must be [2, E], got "
                             f"{list(train_edges.shape)}")
        family = resolve_restriction_maps(restriction)  # ConfigError listing the families
        self.num_layers = int(num_layers)
        self.stalk_dim = int(stalk_dim)
        self.channels = self.dim // self.stalk_dim
        self.restriction = family.name
        self.maps_mode = maps
        self.normalize = bool(normalize)
        self.backend = normalize_name(backend)
        d, f = self.stalk_dim, self.channels
        shared = maps == "shared"
        # maps="shared": one learner on the layer-0 embeddings; else one per layer
        self.restriction_maps = family(d, d * f, map_activation) if shared else None
        self.layers = nn.ModuleList(
            SheafConv(d, f, restriction=None if shared else restriction, update=update,
                      maps=maps, normalize=normalize, step=step, map_activation=map_activation,
                      backend=backend)
            for _ in range(self.num_layers))
        edge_index = bipartite_edge_index(train_edges[0], train_edges[1], self.num_users,
                                          self.num_items)
        # derived from the data: moved by .to(), never saved in a checkpoint
        self.register_buffer("edge_index", edge_index, persistent=False)
        self._graph: RelGraph | None = None  # sheaf_graph(edge_index), built on first use
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform embeddings (as LightGCN); the layers' and map learner's own
        initialisation."""
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_embedding.weight)
        # the base class calls this before the layers exist
        if getattr(self, "restriction_maps", None) is not None:
            self.restriction_maps.reset_parameters()
        for layer in getattr(self, "layers", ()):
            layer.reset_parameters()

    def graph(self) -> RelGraph:
        """The training graph sorted for ``rspmm`` (:func:`~graphlearn.nn.sheaf.sheaf_graph`),
        built once per device."""
        if self._graph is None or self._graph.device != self.edge_index.device:
            self._graph = sheaf_graph(self.edge_index, self.num_users + self.num_items)
        return self._graph

    def encode(self) -> tuple[Tensor, Tensor]:
        """Propagated ``(user_repr [U, dim], item_repr [I, dim])``."""
        num_nodes = self.num_users + self.num_items
        ego = torch.cat([self.user_embedding.weight, self.item_embedding.weight])  # (U+I, d·f)
        h = ego.view(num_nodes, self.stalk_dim, self.channels)  # (U+I, d, f)
        graph = self.graph()
        maps = None
        learner = self.restriction_maps
        if learner is not None and self.layers:
            # one Laplacian for every layer, from the layer-0 embeddings
            if learner.diagonal and self.edge_index.size(1) and self.backend != "reference":
                maps = diagonal_sheaf_laplacian(learner.incidence_maps(ego, graph), graph,
                                                self.normalize)  # the layers' fast path
            else:
                maps = sheaf_laplacian(self.edge_index, learner.compact(ego, self.edge_index),
                                       num_nodes, self.stalk_dim, self.normalize,
                                       learner.diagonal_degree, graph, self.backend,
                                       orthonormal=learner.orthonormal)
        out = h
        for layer in self.layers:
            h = layer(h, self.edge_index, maps, graph)  # (U+I, d, f)
            out = out + h
        out = (out / (self.num_layers + 1)).view(num_nodes, self.dim)  # LightGCN's layer mean
        user_repr, item_repr = torch.split(out, [self.num_users, self.num_items])
        return user_repr, item_repr

    def extra_repr(self) -> str:
        return (super().extra_repr() + f", stalk_dim={self.stalk_dim}, "
                f"num_layers={self.num_layers}, restriction={self.restriction!r}, "
                f"maps={self.maps_mode!r}")
