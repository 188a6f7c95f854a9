r"""NGCF: neural graph collaborative filtering (Wang et al., SIGIR 2019).

Written from the paper's equations. The normalised bipartite adjacency
:math:`\mathcal{L} = D^{-1/2} A D^{-1/2}` is LightGCN's
(:func:`~graphlearn.models.lightgcn.bipartite_normalized_adjacency`, sparse CSR,
built once from the training interactions), and every propagation is a product
with it (:class:`~graphlearn.models.lightgcn.SymmetricSpMM`: the backward is
another product with the same symmetric matrix).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphlearn.models.lightgcn import SymmetricSpMM, bipartite_normalized_adjacency
from graphlearn.models.mf import EmbeddingRecommender
from graphlearn.models.registry import MODELS

__all__ = ["NGCF", "NGCFLayer"]


class NGCFLayer(nn.Module):
    r"""One NGCF embedding-propagation layer (Wang et al. 2019, Eqs. 3–4, and Eq. 7 in
    matrix form), followed by the LeakyReLU:

    .. math::
        E' = \mathrm{LeakyReLU}\big( ((\mathcal{L} + I) E) W_1 + b_1
             + ((\mathcal{L} E) \odot E) W_2 + b_2 \big),

    per node :math:`e_u' = \mathrm{LeakyReLU}\big(W_1 (e_u + \sum_{i \in N_u}
    \frac{e_i}{\sqrt{|N_u||N_i|}}) + W_2 \sum_{i \in N_u}
    \frac{e_i \odot e_u}{\sqrt{|N_u||N_i|}}\big)` (+ biases).
    The self-connection is the paper's :math:`\mathcal{L} + I` form (the
    :math:`W_1 e_u` message of Eq. 4). The biases are the authors' code's and
    RecBole's (``nn.Linear``), not in the paper's equations; ``bias=False`` drops them.

    Args:
        in_dim: ``d_in``.
        out_dim: ``d_out``.
        bias: :math:`b_1, b_2` (default ``True``).
        negative_slope: of the LeakyReLU (default ``0.2``, the authors' and RecBole's).

    Shapes:
        - **adjacency**: ``[N, N]`` symmetric sparse :math:`\mathcal{L}`.
        - **x**: ``[N, d_in]``; **node_mask** (optional): ``[N, 1]`` multiplier of each
          node's outgoing messages (node dropout).
        - **output**: ``[N, d_out]``.
    """

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True,
                 negative_slope: float = 0.2) -> None:
        super().__init__()
        self.negative_slope = float(negative_slope)
        self.linear_sum = nn.Linear(in_dim, out_dim, bias=bias)  # W_1, b_1
        self.linear_product = nn.Linear(in_dim, out_dim, bias=bias)  # W_2, b_2
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-normal weights, zero biases (RecBole's ``xavier_normal_initialization``)."""
        for linear in (self.linear_sum, self.linear_product):
            nn.init.xavier_normal_(linear.weight)
            if linear.bias is not None:
                nn.init.zeros_(linear.bias)

    def forward(self, adjacency: Tensor, x: Tensor, node_mask: Tensor | None = None) -> Tensor:
        messages = x if node_mask is None else x * node_mask  # node dropout: (N, d_in)
        side = SymmetricSpMM.apply(adjacency, messages)  # L E: (N, d_in)
        out = self.linear_sum(side + x) + self.linear_product(side * x)  # Eq. 7
        return F.leaky_relu(out, self.negative_slope)  # (N, d_out)

    def extra_repr(self) -> str:
        return (f"in_dim={self.linear_sum.in_features}, out_dim={self.linear_sum.out_features}, "
                f"bias={self.linear_sum.bias is not None}")


@MODELS.register("ngcf")
class NGCF(EmbeddingRecommender):
    r"""NGCF from Wang et al. (2019), "Neural Graph Collaborative Filtering"
    (https://arxiv.org/abs/1905.08108).

    Layer-0 embeddings :math:`E^{(0)}` of users and items pass through
    ``len(hidden_sizes)`` :class:`NGCFLayer` s over the normalised training graph.
    After each layer, message dropout (on the layer's output, as the authors' code
    and RecBole apply it) and L2 normalisation per node; the normalised output is
    the next layer's input (as RecBole). The final representation concatenates
    every layer's output, layer 0 included (Eq. 9), and the score is a dot
    product (Eq. 10):

    .. math::
        E^{(l)} = \mathrm{normalize}\big(\mathrm{dropout}(\mathrm{NGCFLayer}_l(E^{(l-1)}))\big),
        \qquad e_u = e_u^{(0)} \,\|\, \cdots \,\|\, e_u^{(L)},
        \qquad \hat y_{ui} = e_u^\top e_i .

    Node dropout (the paper's Sec. 2.4.2) blocks a random fraction of the nodes'
    outgoing messages in each layer (a kept node's messages are scaled by
    ``1 / (1 - p)``); the node's own self-connection term is kept. Both dropouts
    act in training mode only. Trained with BPR plus the L2 penalty on the batch's
    layer-0 embeddings (:class:`~graphlearn.models.mf.EmbeddingRecommender`).
    Defaults are RecBole 1.2.1's NGCF. Registered as ``ngcf``.

    Args:
        num_users: ``U`` (from the data).
        num_items: ``I`` (from the data).
        train_edges: ``[2, E]`` training ``(user, item)`` pairs (from the data).
        dim: layer-0 embedding size (default ``64``).
        hidden_sizes: output size of each layer (default ``(64, 64, 64)``).
        message_dropout: dropout on each layer's output (default ``0.1``).
        node_dropout: fraction of nodes whose messages are dropped per layer
            (default ``0.0``).
        bias: the layers' biases (default ``True``, see :class:`NGCFLayer`).
        reg_weight: :math:`\lambda` (default ``1e-5``, RecBole's).
        reg_squared: form of the penalty (see ``EmbeddingRecommender``).

    Shapes:
        - **encode**: ``() -> ([U, D], [I, D])`` with ``D = dim + sum(hidden_sizes)``.
        - **score_all**: ``[B, D], [I, D] -> [B, I]``.
    """

    def __init__(self, num_users: int, num_items: int, train_edges: Tensor, dim: int = 64,
                 hidden_sizes: Sequence[int] = (64, 64, 64), message_dropout: float = 0.1,
                 node_dropout: float = 0.0, bias: bool = True, reg_weight: float = 1e-5,
                 reg_squared: bool = True) -> None:
        super().__init__(num_users, num_items, dim, reg_weight, reg_squared)
        if isinstance(hidden_sizes, (str, bytes)) or not isinstance(hidden_sizes, Sequence) \
                or any(isinstance(h, bool) or int(h) != h or h < 1 for h in hidden_sizes):
            raise ValueError(f"NGCF: hidden_sizes must be a list of positive integers, got "
                             f"{hidden_sizes!r}")
        for name, p in (("message_dropout", message_dropout), ("node_dropout", node_dropout)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"NGCF: {name} must be in [0, 1), got {p!r}")
        train_edges = torch.as_tensor(train_edges)
        if train_edges.dim() != 2 or train_edges.size(0) != 2:
            raise ValueError(f"NGCF: train_edges must be [2, E], got {list(train_edges.shape)}")
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        self.message_dropout = float(message_dropout)
        self.node_dropout = float(node_dropout)
        sizes = (self.dim, *self.hidden_sizes)
        self.layers = nn.ModuleList(NGCFLayer(a, b, bias=bias)
                                    for a, b in itertools.pairwise(sizes))
        adjacency = bipartite_normalized_adjacency(train_edges[0], train_edges[1],
                                                   self.num_users, self.num_items)
        # derived from the data: moved by .to(), never saved in a checkpoint
        self.register_buffer("adjacency", adjacency, persistent=False)
        self.reset_parameters()

    @property
    def out_dim(self) -> int:
        """``D``: the size of the concatenated representation."""
        return self.dim + sum(self.hidden_sizes)

    def reset_parameters(self) -> None:
        """Xavier-normal embeddings and layer weights, zero biases (RecBole's NGCF)."""
        nn.init.xavier_normal_(self.user_embedding.weight)
        nn.init.xavier_normal_(self.item_embedding.weight)
        for layer in getattr(self, "layers", ()):  # the base class calls this first
            layer.reset_parameters()

    def _node_mask(self, reference: Tensor) -> Tensor | None:
        """``[N, 1]``: 0 for a dropped node, ``1 / (1 - p)`` for a kept one (training only)."""
        if not self.training or self.node_dropout == 0.0:
            return None
        keep = 1.0 - self.node_dropout
        mask = torch.rand(reference.size(0), 1, device=reference.device) < keep
        return mask.to(reference.dtype) / keep

    def encode(self) -> tuple[Tensor, Tensor]:
        """``(user_repr [U, D], item_repr [I, D])``, the concatenated layers."""
        h = torch.cat([self.user_embedding.weight, self.item_embedding.weight])  # (U+I, d)
        outputs = [h]  # layer 0, as is (Eq. 9)
        for layer in self.layers:
            h = layer(self.adjacency, h, self._node_mask(h))  # (U+I, d_l)
            h = F.dropout(h, self.message_dropout, self.training)
            h = F.normalize(h, p=2, dim=1)
            outputs.append(h)
        out = torch.cat(outputs, dim=1)  # (U+I, D)
        user_repr, item_repr = torch.split(out, [self.num_users, self.num_items])
        return user_repr, item_repr

    def extra_repr(self) -> str:
        return (super().extra_repr() + f", hidden_sizes={list(self.hidden_sizes)}, "
                f"message_dropout={self.message_dropout}, node_dropout={self.node_dropout}")
