r"""Sheaf graph auto-encoder: Neural Sheaf Diffusion as a link-prediction encoder."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from graphlearn.models.registry import MODELS
from graphlearn.nn.sheaf import (
    SheafConv,
    resolve_restriction_maps,
    sheaf_graph,
    undirected_edge_index,
)

__all__ = ["SheafGAE"]


@MODELS.register("sheaf_gae")
class SheafGAE(nn.Module):
    r"""Link prediction with sheaf diffusion: the encoder of Bodnar et al. (2022),
    "Neural Sheaf Diffusion: A Topological Perspective on Heterophily and
    Oversmoothing in GNNs" (https://arxiv.org/abs/2202.04579), with GAE's
    inner-product decoder (Kipf & Welling 2016).

    Features are lifted into :math:`d`-dimensional stalks with :math:`f` channels,
    diffused by :math:`L` :class:`~graphlearn.nn.SheafConv` layers (restriction maps
    learned per layer from the endpoint stalks; NSD's update by default) and
    projected to the output embedding:

    .. math::
        X^{(0)} &= \operatorname{reshape}_{N \times d \times f}\big(\operatorname{ELU}(X W_{in})\big),
        \qquad X^{(\ell)} = \operatorname{SheafConv}_\ell\big(X^{(\ell-1)}, A\big), \\
        z_v &= \operatorname{vec}\big(X^{(L)}_v\big) W_{out}, \qquad
        \text{logit}(u, v) = z_u^\top z_v .

    With ``restriction="identity"`` and ``update="linear"`` the encoder is a linear
    GCN propagation of the lifted features (the sheaf Laplacian reduces to the
    normalised graph Laplacian :math:`\otimes I_d`): the ablation that isolates
    what the learned maps add.

    Args:
        in_channels: input feature size ``F`` (set by the task).
        stalk_dim: ``d`` (default ``4``).
        channels: ``f``, channels per stalk coordinate (default ``8``: hidden size
            ``d·f = 32``, GAE's).
        out_channels: embedding size (default ``16``, GAE's).
        num_layers: sheaf layers ``L`` (default ``2``).
        restriction: restriction-map family (``list_restriction_maps()``; default
            ``"diagonal"``).
        update: ``"diffusion"`` (NSD, default) or ``"linear"``.
        dropout: dropout on the input features and on every layer's output during
            training (default ``0.0``).
        backend: ``rspmm`` backend of the diagonal-map propagation (default ``"auto"``).

    Shapes:
        - **encode**: ``x [N, F]``, ``edge_index [2, E]`` → ``z [N, out_channels]``.
        - **decode**: ``z``, ``edge_label_index [2, M]`` → logits ``[M]``.
    """

    def __init__(self, in_channels: int, stalk_dim: int = 4, channels: int = 8,
                 out_channels: int = 16, num_layers: int = 2, restriction: str = "diagonal",
                 update: str = "diffusion", dropout: float = 0.0,
                 backend: str = "auto") -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("stalk_dim", stalk_dim),
                            ("channels", channels), ("out_channels", out_channels)):
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"SheafGAE: {name} must be a positive integer, got {value!r}")
        if isinstance(num_layers, bool) or int(num_layers) != num_layers or num_layers < 0:
            raise ValueError(f"SheafGAE: num_layers must be an integer >= 0, got {num_layers!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"SheafGAE: dropout must be in [0, 1), got {dropout}")
        self.restriction = resolve_restriction_maps(restriction).name  # lists the families
        self.stalk_dim, self.channels = int(stalk_dim), int(channels)
        self.dropout = float(dropout)
        hidden = self.stalk_dim * self.channels
        self.lift = nn.Linear(int(in_channels), hidden)
        self.layers = nn.ModuleList(
            SheafConv(self.stalk_dim, self.channels, restriction=restriction, update=update,
                      backend=backend) for _ in range(int(num_layers)))
        self.project = nn.Linear(hidden, int(out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lift.reset_parameters()
        for layer in self.layers:
            layer.reset_parameters()
        self.project.reset_parameters()

    def encode(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """Node embeddings ``[N, out_channels]`` from features and the message graph."""
        edges = undirected_edge_index(edge_index, x.size(0))  # each undirected edge once
        graph = sheaf_graph(edges, x.size(0))  # sorted once per pass, shared by the layers
        h = F.elu(self.lift(F.dropout(x, self.dropout, self.training)))  # (N, d·f)
        h = h.view(x.size(0), self.stalk_dim, self.channels)  # (N, d, f) stalks
        for layer in self.layers:
            h = F.dropout(layer(h, edges, graph=graph), self.dropout, self.training)
        return self.project(h.reshape(x.size(0), -1))  # (N, out)

    def decode(self, z: Tensor, edge_label_index: Tensor) -> Tensor:
        """Inner-product logits ``[M]`` of the node pairs ``edge_label_index [2, M]``."""
        if edge_label_index.dim() != 2 or edge_label_index.size(0) != 2:
            raise ValueError(f"SheafGAE.decode: edge_label_index must be [2, M], got "
                             f"{list(edge_label_index.shape)}")
        return (z[edge_label_index[0]] * z[edge_label_index[1]]).sum(-1)

    def forward(self, x: Tensor, edge_index: Tensor, edge_label_index: Tensor) -> Tensor:
        return self.decode(self.encode(x, edge_index), edge_label_index)
