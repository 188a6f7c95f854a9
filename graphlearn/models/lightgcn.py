r"""LightGCN: linear propagation of embeddings over the user–item graph.

The normalised bipartite adjacency is built **once**, from the training
interactions, as a sparse CSR matrix; every propagation is then
``num_layers`` sparse–dense products (``torch.sparse.mm``). Because the
matrix is symmetric, the backward pass of a product is another product with
the same matrix (:class:`SymmetricSpMM`), not a product with its transpose,
which ``torch.sparse.mm``'s own backward builds on every call.

Compared with ``torch_geometric.nn.models.LightGCN`` (same function, checked in
``tests/models/test_lightgcn.py`` and ``experiments/benchmarks/lightgcn_vs_pyg.py``),
nothing is re-normalised or re-gathered per batch; PyG's model recomputes the
degree normalisation and propagates through generic scatter code on every call.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

from graphlearn.models.mf import EmbeddingRecommender
from graphlearn.models.registry import MODELS

__all__ = ["LightGCN", "SymmetricSpMM", "bipartite_normalized_adjacency", "propagate"]


def bipartite_normalized_adjacency(user: Tensor, item: Tensor, num_users: int,
                                   num_items: int) -> Tensor:
    r"""The symmetric-normalised adjacency of the user–item graph, as sparse CSR.

    Nodes are users ``0 .. U-1`` then items ``U .. U+I-1``; every distinct
    ``(user, item)`` pair gives the edges ``u -> U+i`` and ``U+i -> u``, and

    .. math::
        \tilde A = D^{-1/2} A D^{-1/2}, \qquad
        \tilde A_{ui} = \frac{1}{\sqrt{|N_u|}\sqrt{|N_i|}}

    (LightGCN, Eq. 7 in matrix form, Eq. 3 per edge). A node without edges has
    an empty row (no ``inf``; RecBole adds ``1e-7`` to the degree instead, PyG's
    ``gcn_norm`` zeroes it, as here).

    Args:
        user: ``[E]`` user ids.
        item: ``[E]`` item ids (duplicate pairs are merged).
        num_users: ``U``.
        num_items: ``I``.

    Returns:
        ``[U + I, U + I]`` float32 sparse CSR tensor on ``user``'s device, with int32
        indices when they fit (int64 ones are converted by every CPU product).
    """
    num_nodes = num_users + num_items
    key = torch.unique(user.long() * num_items + item.long())  # distinct pairs
    u = torch.div(key, num_items, rounding_mode="floor")
    i = key - u * num_items + num_users
    row = torch.cat([u, i])
    col = torch.cat([i, u])
    degree = torch.bincount(row, minlength=num_nodes).to(torch.float32)
    inv_sqrt = degree.pow(-0.5)
    inv_sqrt[degree == 0] = 0.0
    value = inv_sqrt[row] * inv_sqrt[col]
    order = torch.argsort(row * num_nodes + col)  # CSR: rows, then columns, ascending
    row, col, value = row[order], col[order], value[order]
    crow = torch.zeros(num_nodes + 1, dtype=torch.long, device=row.device)
    crow[1:] = torch.cumsum(torch.bincount(row, minlength=num_nodes), 0)
    if row.numel() < 2**31:  # int32 indices: the CPU (MKL) kernel would convert on every call
        crow, col = crow.int(), col.int()
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col, value, (num_nodes, num_nodes))


class SymmetricSpMM(torch.autograd.Function):
    """``A @ X`` for a *symmetric* sparse ``A``; the gradient w.r.t. ``X`` is ``A @ G``.

    No gradient flows to ``A`` (a constant of the data). The caller guarantees
    symmetry (:func:`bipartite_normalized_adjacency` builds it so).
    """

    @staticmethod
    def forward(ctx, adjacency: Tensor, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.adjacency = adjacency
        return torch.sparse.mm(adjacency, x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, Tensor]:  # type: ignore[override]
        return None, torch.sparse.mm(ctx.adjacency, grad)


def propagate(adjacency: Tensor, x: Tensor, num_layers: int) -> Tensor:
    r"""LightGCN propagation: the mean of ``x`` and its ``num_layers`` propagations.

    .. math::
        E^{(k+1)} = \tilde A E^{(k)}, \qquad
        E = \frac{1}{K + 1} \sum_{k=0}^{K} E^{(k)}

    Args:
        adjacency: ``[N, N]`` symmetric sparse matrix (:func:`bipartite_normalized_adjacency`).
        x: ``[N, d]`` layer-0 embeddings.
        num_layers: ``K >= 0``.

    Returns:
        ``[N, d]``.
    """
    out = x
    h = x
    for _ in range(num_layers):
        h = SymmetricSpMM.apply(adjacency, h)  # Eq. 7: (N, d)
        out = out + h
    return out / (num_layers + 1)  # Eq. 8 with alpha_k = 1 / (K + 1)


@MODELS.register("lightgcn")
class LightGCN(EmbeddingRecommender):
    r"""LightGCN from He et al. (2020), "LightGCN: Simplifying and Powering Graph
    Convolution Network for Recommendation" (https://arxiv.org/abs/2002.02126).

    Layer-0 embeddings :math:`E^{(0)}` of users and items are propagated over the
    normalised training graph without transforms or non-linearities, and the
    layers are averaged (Eqs. 7–8); the score is a dot product (Eq. 5):

    .. math::
        E^{(k+1)} = D^{-1/2} A D^{-1/2} E^{(k)}, \qquad
        e = \frac{1}{K+1}\sum_{k=0}^{K} e^{(k)}, \qquad
        \hat y_{ui} = e_u^\top e_i.

    Trained with BPR plus the L2 penalty on the batch's layer-0 embeddings
    (:class:`~graphlearn.models.mf.EmbeddingRecommender`, ``reg_weight``).
    Initialised Xavier-uniform, as RecBole's LightGCN and PyG's. Registered as
    ``lightgcn``.

    Args:
        num_users: ``U`` (from the data).
        num_items: ``I`` (from the data).
        train_edges: ``[2, E]`` training ``(user, item)`` pairs (from the data);
            the graph is built from these only, never from held-out pairs.
        dim: embedding size (default ``64``).
        num_layers: propagation layers ``K`` (default ``3``, the paper's; RecBole
            uses ``2``).
        reg_weight: :math:`\lambda` (default ``1e-4``, the paper's).
        reg_squared: form of the penalty (see ``EmbeddingRecommender``).

    Shapes:
        - **encode**: ``() -> ([U, d], [I, d])`` propagated representations.
        - **score_all**: ``[B, d], [I, d] -> [B, I]``.
    """

    def __init__(self, num_users: int, num_items: int, train_edges: Tensor, dim: int = 64,
                 num_layers: int = 3, reg_weight: float = 1e-4,
                 reg_squared: bool = True) -> None:
        super().__init__(num_users, num_items, dim, reg_weight, reg_squared)
        if int(num_layers) != num_layers or num_layers < 0:
            raise ValueError(f"LightGCN: num_layers must be an integer >= 0, got {num_layers!r}")
        train_edges = torch.as_tensor(train_edges)
        if train_edges.dim() != 2 or train_edges.size(0) != 2:
            raise ValueError(f"LightGCN: train_edges must be [2, E], got "
                             f"{list(train_edges.shape)}")
        self.num_layers = int(num_layers)
        adjacency = bipartite_normalized_adjacency(train_edges[0], train_edges[1],
                                                   self.num_users, self.num_items)
        # derived from the data: moved by .to(), never saved in a checkpoint
        self.register_buffer("adjacency", adjacency, persistent=False)

    def reset_parameters(self) -> None:
        """Xavier-uniform embeddings (RecBole's LightGCN, PyG's LightGCN)."""
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_embedding.weight)

    def encode(self) -> tuple[Tensor, Tensor]:
        """Propagated ``(user_repr [U, d], item_repr [I, d])``."""
        ego = torch.cat([self.user_embedding.weight, self.item_embedding.weight])  # (U+I, d)
        out = propagate(self.adjacency, ego, self.num_layers)
        user_repr, item_repr = torch.split(out, [self.num_users, self.num_items])
        return user_repr, item_repr

    def extra_repr(self) -> str:
        return super().extra_repr() + f", num_layers={self.num_layers}"
