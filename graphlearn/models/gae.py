r"""Graph auto-encoder (GAE) for homogeneous link prediction."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import GCNConv

from graphlearn.models.registry import MODELS

__all__ = ["GAE"]


@MODELS.register("gae")
class GAE(nn.Module):
    r"""The graph auto-encoder of Kipf & Welling (2016), "Variational Graph
    Auto-Encoders" (https://arxiv.org/abs/1611.07308), non-variational form.

    A two-layer GCN encoder (Kipf & Welling 2017) and an inner-product decoder:

    .. math::
        Z = \hat{A}\, \operatorname{ReLU}\big(\hat{A} X W_0\big) W_1, \qquad
        \hat{A} = D^{-1/2} (A + I) D^{-1/2}, \qquad
        \text{logit}(u, v) = z_u^\top z_v,

    so that :math:`P(A_{uv} = 1) = \sigma(z_u^\top z_v)`. The paper's sizes
    are the defaults (32 hidden, 16 output units); it uses no dropout.

    Args:
        in_channels: input feature size ``F``.
        hidden_channels: width of the first GCN layer (default ``32``).
        out_channels: embedding size of the second layer (default ``16``).
        dropout: dropout on the input of each GCN layer during training
            (default ``0.0``, as in the paper).

    Shapes:
        - **encode**: ``x [N, F]``, ``edge_index [2, E]`` → ``z [N, out_channels]``.
        - **decode**: ``z [N, out_channels]``, ``edge_label_index [2, M]`` → logits ``[M]``.
        - **decode_all**: ``z [N, out_channels]`` → logits ``[N, N]``.
        - **forward**: ``x``, ``edge_index``, ``edge_label_index`` → logits ``[M]``.
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int = 32,
        out_channels: int = 16,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_channels", in_channels),
            ("hidden_channels", hidden_channels),
            ("out_channels", out_channels),
        ):
            if int(value) != value or value < 1:
                raise ValueError(f"GAE: {name} must be a positive integer, got {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"GAE: dropout must be in [0, 1), got {dropout}")
        self.dropout = float(dropout)
        self.conv1 = GCNConv(in_channels, hidden_channels)
        self.conv2 = GCNConv(hidden_channels, out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.conv1.reset_parameters()
        self.conv2.reset_parameters()

    def encode(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """Node embeddings ``[N, out_channels]`` from features and the message graph."""
        x = F.dropout(x, self.dropout, self.training)
        h = F.relu(self.conv1(x, edge_index))  # (N, hidden)
        h = F.dropout(h, self.dropout, self.training)
        return self.conv2(h, edge_index)  # (N, out)

    def decode(self, z: Tensor, edge_label_index: Tensor) -> Tensor:
        """Inner-product logits ``[M]`` of the node pairs ``edge_label_index [2, M]``."""
        if edge_label_index.dim() != 2 or edge_label_index.size(0) != 2:
            raise ValueError(
                f"GAE.decode: edge_label_index must be [2, M], got {list(edge_label_index.shape)}"
            )
        return (z[edge_label_index[0]] * z[edge_label_index[1]]).sum(-1)

    def decode_all(self, z: Tensor) -> Tensor:
        """Logits ``[N, N]`` of every node pair, :math:`Z Z^\\top` (the paper's dense decoder)."""
        return z @ z.t()

    def forward(self, x: Tensor, edge_index: Tensor, edge_label_index: Tensor) -> Tensor:
        return self.decode(self.encode(x, edge_index), edge_label_index)

    def extra_repr(self) -> str:
        return f"dropout={self.dropout}"
