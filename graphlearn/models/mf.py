r"""Matrix factorisation trained with BPR, and the base class of embedding recommenders.

The recommender interface
-------------------------
A recommendation model (:class:`EmbeddingRecommender` and its subclasses) is an
``nn.Module`` with:

* ``encode() -> (user_repr [U, d], item_repr [I, d])``: the final representation
  of every user and item. For matrix factorisation these are the embedding
  tables; LightGCN propagates them over the graph first. The task calls it once
  per training batch (the loss needs the current parameters) and **once per
  evaluation** (all users are then scored from the same representations).
* ``score(user_repr, item_repr) -> Tensor``: the score of aligned pairs (any
  broadcastable shapes ``[..., d]``): the dot product.
* ``score_all(user_repr [B, d], item_repr [I, d]) -> [B, I]``: every item for a
  batch of users (full-ranking evaluation).
* ``regularization(user, pos_item, neg_item) -> Tensor``: a scalar added to the
  loss (zero unless ``reg_weight > 0``).

The task owns the loss (BPR), the sampling and the evaluation
(:mod:`graphlearn.tasks.recommendation`).
"""

from __future__ import annotations

from torch import Tensor, nn

from graphlearn.models.registry import MODELS

__all__ = ["BPRMF", "EmbeddingRecommender"]


class EmbeddingRecommender(nn.Module):
    r"""A user table and an item table of ``dim``-dimensional embeddings, dot-product
    scores and an L2 penalty on the embeddings a batch uses.

    The penalty, with :math:`\lambda` = ``reg_weight``, on the batch's *ego*
    (layer-0) embeddings :math:`e^{(0)}` of ``B`` users, their positives and
    ``k`` negatives each (LightGCN, He et al. 2020, Eq. 15; the official code's
    scaling by ``1 / (2B)``):

    .. math::
        \mathcal{L}_{reg} = \frac{\lambda}{2B} \sum_{b=1}^{B} \Big(
            \|e^{(0)}_{u_b}\|^2 + \|e^{(0)}_{i_b}\|^2
            + \frac{1}{k}\sum_{j=1}^{k} \|e^{(0)}_{n_{bj}}\|^2 \Big)

    With ``reg_squared=False`` it is RecBole 1.2.1's default ``EmbLoss``
    instead: :math:`\frac{\lambda}{B} (\|U_B\|_F + \|P_B\|_F + \|N_B\|_F)`, the
    unsquared Frobenius norms of the three batch matrices.

    Args:
        num_users: ``U``.
        num_items: ``I``.
        dim: embedding size ``d`` (default ``64``).
        reg_weight: :math:`\lambda \ge 0` (default ``0.0``).
        reg_squared: the paper's squared penalty (default) or RecBole's default form.
    """

    def __init__(self, num_users: int, num_items: int, dim: int = 64,
                 reg_weight: float = 0.0, reg_squared: bool = True) -> None:
        super().__init__()
        name = type(self).__name__
        for arg, value in (("num_users", num_users), ("num_items", num_items), ("dim", dim)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name}: {arg} must be a positive integer, got {value!r}")
        if reg_weight < 0:
            raise ValueError(f"{name}: reg_weight must be >= 0, got {reg_weight!r}")
        self.num_users = int(num_users)
        self.num_items = int(num_items)
        self.dim = int(dim)
        self.reg_weight = float(reg_weight)
        self.reg_squared = bool(reg_squared)
        self.user_embedding = nn.Embedding(self.num_users, self.dim)
        self.item_embedding = nn.Embedding(self.num_items, self.dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-normal embeddings (RecBole's initialisation of BPR)."""
        nn.init.xavier_normal_(self.user_embedding.weight)
        nn.init.xavier_normal_(self.item_embedding.weight)

    def encode(self) -> tuple[Tensor, Tensor]:
        """``(user_repr [U, d], item_repr [I, d])``: here the embedding tables."""
        return self.user_embedding.weight, self.item_embedding.weight

    def score(self, user_repr: Tensor, item_repr: Tensor) -> Tensor:
        """Dot product over the last dimension (shapes broadcast): ``[..., d] -> [...]``."""
        return (user_repr * item_repr).sum(dim=-1)

    def score_all(self, user_repr: Tensor, item_repr: Tensor) -> Tensor:
        """``[B, d] x [I, d] -> [B, I]`` scores of every item."""
        return user_repr @ item_repr.t()

    def regularization(self, user: Tensor, pos_item: Tensor, neg_item: Tensor) -> Tensor:
        """The penalty above for ``user [B]``, ``pos_item [B]``, ``neg_item [B, k]`` (or ``[B]``)."""
        weight = self.user_embedding.weight
        if self.reg_weight == 0.0:
            return weight.new_zeros(())
        u = self.user_embedding(user)  # (B, d)
        p = self.item_embedding(pos_item)  # (B, d)
        n = self.item_embedding(neg_item.reshape(user.numel(), -1))  # (B, k, d)
        batch = user.numel()
        if self.reg_squared:
            total = u.pow(2).sum() + p.pow(2).sum() + n.pow(2).sum() / n.size(1)
            return self.reg_weight * total / (2 * batch)
        total = u.norm() + p.norm() + n.reshape(-1, self.dim).norm()
        return self.reg_weight * total / batch

    def extra_repr(self) -> str:
        return (f"num_users={self.num_users}, num_items={self.num_items}, dim={self.dim}, "
                f"reg_weight={self.reg_weight}")


@MODELS.register("bpr_mf")
class BPRMF(EmbeddingRecommender):
    r"""Matrix factorisation for implicit feedback, trained with BPR.

    From Rendle et al. (2009), "BPR: Bayesian Personalized Ranking from Implicit
    Feedback" (https://arxiv.org/abs/1205.2618): the score of user :math:`u`
    and item :math:`i` is the dot product of their embeddings,

    .. math::
        \hat y_{ui} = e_u^\top e_i,

    trained with the BPR loss of the recommendation task. Initialised as
    RecBole's ``BPR`` (Xavier normal). Registered as ``bpr_mf``.

    Args:
        num_users: ``U`` (from the data).
        num_items: ``I`` (from the data).
        dim: embedding size (default ``64``).
        reg_weight: L2 penalty on the batch's embeddings (default ``0.0``,
            RecBole's BPR has none; see :class:`EmbeddingRecommender`).
        reg_squared: form of the penalty (see :class:`EmbeddingRecommender`).

    Shapes:
        - **encode**: ``() -> ([U, d], [I, d])``.
        - **score_all**: ``[B, d], [I, d] -> [B, I]``.
    """

    def __init__(self, num_users: int, num_items: int, dim: int = 64,
                 reg_weight: float = 0.0, reg_squared: bool = True) -> None:
        super().__init__(num_users, num_items, dim, reg_weight, reg_squared)
