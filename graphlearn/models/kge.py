r"""Knowledge-graph embedding models: DistMult, ComplEx and RotatE.

Every model scores a triple ``(h, r, t)`` from an entity embedding table and a
relation embedding table, and shares one API:

* ``forward(head, relation, tail) -> Tensor``: the score of each triple
  (higher = more plausible); the three index tensors broadcast against each
  other, so ``head [b, 1]``, ``relation [b, 1]``, ``tail [b, k]`` scores ``k``
  candidate tails per query in one call and returns ``[b, k]``.
* ``score_all_tails(head [b], relation [b]) -> [b, num_entities]``: the scores
  of every entity as the tail, the ``score_fn`` of
  :func:`graphlearn.metrics.ranking.evaluate_kg`.
* ``regularization(head, relation, tail) -> Tensor``: a scalar penalty to add
  to the loss (zero unless the model was built with one).

**Reciprocal relations.** The graphs of :mod:`graphlearn.data.kg` append the
inverse of relation ``r`` as ``r + R`` (DESIGN.md §2), so the models are built
with ``num_relations = 2R`` (``data.num_relations``) and keep one independent
embedding for each of the ``2R`` relations. A head query ``(?, r, t)`` is asked
as the tail query ``(t, r + R, ?)`` and answered with :meth:`score_all_tails`;
training on both directions teaches the inverse embeddings. This is the
reciprocal setup of Lacroix et al. (2018) ("Canonical Tensor Decomposition for
Knowledge Base Completion", https://arxiv.org/abs/1806.07297) and of
Dettmers et al. (2018, ConvE); it avoids a second scoring path for heads.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from graphlearn.models.registry import MODELS

__all__ = ["ComplEx", "DistMult", "KGEModel", "RotatE"]


class KGEModel(nn.Module):
    """Shared base of the knowledge-graph embedding models.

    Holds the entity table ``[num_entities, entity_width]`` and the relation
    table ``[num_relations, relation_width]``; subclasses define the score.

    Args:
        num_entities: number of entities ``N``.
        num_relations: number of relations *including inverses*, ``2R``
            (``data.num_relations`` of :func:`graphlearn.data.kg.load_kg`).
        dim: embedding dimension (complex dimension for ComplEx and RotatE).
        entity_width: real columns of an entity embedding.
        relation_width: real columns of a relation embedding.
    """

    def __init__(
        self,
        num_entities: int,
        num_relations: int,
        dim: int,
        entity_width: int,
        relation_width: int,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        for arg, value in (
            ("num_entities", num_entities),
            ("num_relations", num_relations),
            ("dim", dim),
        ):
            if int(value) != value or value < 1:
                raise ValueError(f"{name}: {arg} must be a positive integer, got {value!r}")
        self.num_entities = int(num_entities)
        self.num_relations = int(num_relations)
        self.dim = int(dim)
        self.entity = nn.Embedding(self.num_entities, entity_width)
        self.relation = nn.Embedding(self.num_relations, relation_width)

    def reset_parameters(self) -> None:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def forward(self, head: Tensor, relation: Tensor, tail: Tensor) -> Tensor:
        """Scores of the triples; ``head``, ``relation``, ``tail`` broadcast together."""
        raise NotImplementedError

    def score_all_tails(self, head: Tensor, relation: Tensor) -> Tensor:
        """Scores ``[b, num_entities]`` of every entity as the tail of ``(head, relation)``."""
        raise NotImplementedError

    def regularization(self, head: Tensor, relation: Tensor, tail: Tensor) -> Tensor:
        """Scalar penalty of the embeddings used by a batch (zero by default)."""
        return self.entity.weight.new_zeros(())

    def extra_repr(self) -> str:
        return (
            f"num_entities={self.num_entities}, num_relations={self.num_relations}, dim={self.dim}"
        )


def _check_query(head: Tensor, relation: Tensor) -> None:
    if head.dim() != 1 or relation.shape != head.shape:
        raise ValueError(
            f"score_all_tails expects head [b] and relation [b], got {list(head.shape)} "
            f"and {list(relation.shape)}"
        )


def _n3(cubes: tuple[Tensor, ...], batch: int) -> Tensor:
    r"""N3 penalty :math:`\sum_f \sum_i |f_i|^3 / b` (Lacroix et al. 2018, Eq. 4) from the
    cubed moduli ``|f_i|^3`` of each factor."""
    return sum(c.sum() for c in cubes) / max(batch, 1)


@MODELS.register("distmult")
class DistMult(KGEModel):
    r"""DistMult from Yang et al. (2015), "Embedding Entities and Relations for
    Learning and Inference in Knowledge Bases" (https://arxiv.org/abs/1412.6575).

    A bilinear model with a diagonal relation matrix:

    .. math::
        f(h, r, t) = \langle \mathbf{e}_h, \mathbf{w}_r, \mathbf{e}_t \rangle
        = \sum_{i=1}^{d} e_{h,i}\, w_{r,i}\, e_{t,i}.

    The score is symmetric in ``h`` and ``t``; the reciprocal relations
    (see the module docstring) do not change that. All-tail scoring is one
    matrix product, :math:`(\mathbf{e}_h \odot \mathbf{w}_r) E^\top`.

    Args:
        num_entities: number of entities ``N``.
        num_relations: number of relations including inverses, ``2R``.
        dim: embedding dimension ``d``.
        init_std: standard deviation of the normal initialisation of both
            tables (default ``1e-3``, as Lacroix et al. 2018).
        n3_weight: weight :math:`\lambda` of the N3 penalty
            :math:`\lambda \sum (|e_h|^3 + |w_r|^3 + |e_t|^3) / b` returned by
            :meth:`regularization` (default ``0``: none).

    Shapes:
        - **forward**: ``head``, ``relation``, ``tail`` LongTensors of
          broadcastable shapes :math:`S` → scores :math:`S`.
        - **score_all_tails**: ``head [b]``, ``relation [b]`` → ``[b, N]``.
    """

    def __init__(
        self,
        num_entities: int,
        num_relations: int,
        dim: int = 200,
        init_std: float = 1e-3,
        n3_weight: float = 0.0,
    ) -> None:
        super().__init__(num_entities, num_relations, dim, dim, dim)
        if init_std <= 0:
            raise ValueError(f"DistMult: init_std must be > 0, got {init_std}")
        if n3_weight < 0:
            raise ValueError(f"DistMult: n3_weight must be >= 0, got {n3_weight}")
        self.init_std = float(init_std)
        self.n3_weight = float(n3_weight)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.entity.weight, std=self.init_std)
        nn.init.normal_(self.relation.weight, std=self.init_std)

    def forward(self, head: Tensor, relation: Tensor, tail: Tensor) -> Tensor:
        h, r, t = self.entity(head), self.relation(relation), self.entity(tail)  # (*S, d)
        return (h * r * t).sum(-1)  # (*S,)

    def score_all_tails(self, head: Tensor, relation: Tensor) -> Tensor:
        _check_query(head, relation)
        query = self.entity(head) * self.relation(relation)  # (b, d)
        return query @ self.entity.weight.t()  # (b, N)

    def regularization(self, head: Tensor, relation: Tensor, tail: Tensor) -> Tensor:
        if self.n3_weight == 0:
            return super().regularization(head, relation, tail)
        cubes = (
            self.entity(head).abs().pow(3),
            self.relation(relation).abs().pow(3),
            self.entity(tail).abs().pow(3),
        )
        return self.n3_weight * _n3(cubes, head.numel())


def _complex_halves(x: Tensor) -> tuple[Tensor, Tensor]:
    """Split ``[..., 2d]`` into the real part ``[..., d]`` and imaginary part ``[..., d]``."""
    return x.chunk(2, dim=-1)


@MODELS.register("complex")
class ComplEx(KGEModel):
    r"""ComplEx from Trouillon et al. (2016), "Complex Embeddings for Simple
    Link Prediction" (https://arxiv.org/abs/1606.06357), with the optional N3
    regulariser of Lacroix et al. (2018), "Canonical Tensor Decomposition for
    Knowledge Base Completion" (https://arxiv.org/abs/1806.07297).

    Entities and relations are complex vectors in :math:`\mathbb{C}^d`, stored
    as ``[real | imaginary]`` halves of a ``2d``-wide real table:

    .. math::
        f(h, r, t) = \operatorname{Re}\Big(\sum_{i=1}^{d}
        e_{h,i}\, w_{r,i}\, \overline{e_{t,i}}\Big)
        = \langle \operatorname{Re}(e_h \odot w_r), \operatorname{Re}(e_t) \rangle
        + \langle \operatorname{Im}(e_h \odot w_r), \operatorname{Im}(e_t) \rangle.

    All-tail scoring is one matrix product of the ``2d``-wide query
    :math:`[\operatorname{Re}(e_h \odot w_r) \,|\, \operatorname{Im}(e_h \odot w_r)]`
    with the entity table. The N3 penalty (Lacroix et al., Eq. 4) is

    .. math::
        \Omega = \frac{\lambda}{b} \sum_{(h, r, t)} \sum_{i=1}^{d}
        \big(|e_{h,i}|^3 + |w_{r,i}|^3 + |e_{t,i}|^3\big)

    with :math:`|\cdot|` the complex modulus.

    Args:
        num_entities: number of entities ``N``.
        num_relations: number of relations including inverses, ``2R``.
        dim: complex dimension ``d`` (each table has ``2d`` real columns).
        init_std: standard deviation of the normal initialisation of both
            tables (default ``1e-3``, as Lacroix et al. 2018).
        n3_weight: weight :math:`\lambda` of the N3 penalty returned by
            :meth:`regularization` (default ``0``: none).

    Shapes:
        - **forward**: ``head``, ``relation``, ``tail`` LongTensors of
          broadcastable shapes :math:`S` → scores :math:`S`.
        - **score_all_tails**: ``head [b]``, ``relation [b]`` → ``[b, N]``.
    """

    def __init__(
        self,
        num_entities: int,
        num_relations: int,
        dim: int = 200,
        init_std: float = 1e-3,
        n3_weight: float = 0.0,
    ) -> None:
        super().__init__(num_entities, num_relations, dim, 2 * dim, 2 * dim)
        if init_std <= 0:
            raise ValueError(f"ComplEx: init_std must be > 0, got {init_std}")
        if n3_weight < 0:
            raise ValueError(f"ComplEx: n3_weight must be >= 0, got {n3_weight}")
        self.init_std = float(init_std)
        self.n3_weight = float(n3_weight)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.entity.weight, std=self.init_std)
        nn.init.normal_(self.relation.weight, std=self.init_std)

    def _query(self, head: Tensor, relation: Tensor) -> Tensor:
        """``[Re(e_h * w_r) | Im(e_h * w_r)]``, shape ``(*S, 2d)``."""
        h_re, h_im = _complex_halves(self.entity(head))
        r_re, r_im = _complex_halves(self.relation(relation))
        return torch.cat([h_re * r_re - h_im * r_im, h_re * r_im + h_im * r_re], dim=-1)

    def forward(self, head: Tensor, relation: Tensor, tail: Tensor) -> Tensor:
        return (self._query(head, relation) * self.entity(tail)).sum(-1)  # (*S,)

    def score_all_tails(self, head: Tensor, relation: Tensor) -> Tensor:
        _check_query(head, relation)
        return self._query(head, relation) @ self.entity.weight.t()  # (b, N)

    def regularization(self, head: Tensor, relation: Tensor, tail: Tensor) -> Tensor:
        if self.n3_weight == 0:
            return super().regularization(head, relation, tail)

        def cubed_modulus(x: Tensor) -> Tensor:
            re, im = _complex_halves(x)
            # |z|^3 = (re^2 + im^2)^(3/2): no square root, so the gradient is 0 (not NaN) at 0
            return (re * re + im * im).pow(1.5)

        cubes = (
            cubed_modulus(self.entity(head)),
            cubed_modulus(self.relation(relation)),
            cubed_modulus(self.entity(tail)),
        )
        return self.n3_weight * _n3(cubes, head.numel())


@MODELS.register("rotate")
class RotatE(KGEModel):
    r"""RotatE from Sun et al. (2019), "RotatE: Knowledge Graph Embedding by
    Relational Rotation in Complex Space" (https://arxiv.org/abs/1902.10197).

    Entities are complex vectors :math:`e \in \mathbb{C}^d` and each relation
    is an element-wise rotation :math:`w_r = e^{i\theta_r}`,
    :math:`|w_{r,i}| = 1`. The score is the margin minus the distance between
    the rotated head and the tail (Sun et al., Eq. 3 and 4):

    .. math::
        f(h, r, t) = \gamma - \lVert e_h \circ w_r - e_t \rVert
        = \gamma - \sum_{i=1}^{d} \big|e_{h,i}\, e^{i\theta_{r,i}} - e_{t,i}\big|,

    where, as in the authors' code, the norm is the sum over dimensions of
    the complex modulus. Used with a logistic loss, ``gamma`` is the margin of
    Eq. 5: :math:`-\log\sigma(\gamma - d_r(h, t))`.

    Parameterisation (the authors'): entity coordinates and relation
    parameters are drawn from :math:`U(-\rho, \rho)` with
    :math:`\rho = (\gamma + \epsilon) / d`, :math:`\epsilon = 2`, and the phase
    is :math:`\theta = \pi\, p / \rho` for a relation parameter :math:`p`
    (so initial phases cover :math:`[-\pi, \pi]` and an optimiser step on
    :math:`p` has the scale of the entity coordinates).

    :meth:`score_all_tails` cannot be a matrix product: it walks over blocks
    of queries and entities whose ``[rows, cols, d]`` intermediates hold at
    most ``max_chunk_elements`` values. The default (``2**16``, 256 KiB in
    float32) keeps them cache-resident, several times faster on CPU than
    large blocks.

    Args:
        num_entities: number of entities ``N``.
        num_relations: number of relations including inverses, ``2R``.
        dim: complex dimension ``d`` (the entity table has ``2d`` real
            columns, the relation table ``d`` phases).
        gamma: the margin :math:`\gamma` (default ``9.0``, the authors' value
            for FB15k-237).
        epsilon: :math:`\epsilon` in the initialisation range (default ``2.0``).
        max_chunk_elements: bound on the elements of one ``[rows, cols, d]``
            intermediate in :meth:`score_all_tails` (default ``2**16``).

    Shapes:
        - **forward**: ``head``, ``relation``, ``tail`` LongTensors of
          broadcastable shapes :math:`S` → scores :math:`S`.
        - **score_all_tails**: ``head [b]``, ``relation [b]`` → ``[b, N]``.
    """

    def __init__(
        self,
        num_entities: int,
        num_relations: int,
        dim: int = 200,
        gamma: float = 9.0,
        epsilon: float = 2.0,
        max_chunk_elements: int = 1 << 16,
    ) -> None:
        super().__init__(num_entities, num_relations, dim, 2 * dim, dim)
        if gamma <= 0 or epsilon < 0:
            raise ValueError(f"RotatE: need gamma > 0 and epsilon >= 0, got {gamma}, {epsilon}")
        if max_chunk_elements < 1:
            raise ValueError(f"RotatE: max_chunk_elements must be >= 1, got {max_chunk_elements}")
        self.gamma = float(gamma)
        self.epsilon = float(epsilon)
        self.embedding_range = (self.gamma + self.epsilon) / self.dim
        self.max_chunk_elements = int(max_chunk_elements)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        rho = self.embedding_range
        nn.init.uniform_(self.entity.weight, -rho, rho)
        nn.init.uniform_(self.relation.weight, -rho, rho)

    def _rotated_head(self, head: Tensor, relation: Tensor) -> tuple[Tensor, Tensor]:
        """Real and imaginary parts of :math:`e_h \\circ w_r`, each ``(*S, d)``."""
        h_re, h_im = _complex_halves(self.entity(head))
        phase = self.relation(relation) * (math.pi / self.embedding_range)  # (*S, d)
        r_re, r_im = torch.cos(phase), torch.sin(phase)
        return h_re * r_re - h_im * r_im, h_re * r_im + h_im * r_re

    def _score(self, q_re: Tensor, q_im: Tensor, tail_emb: Tensor) -> Tensor:
        t_re, t_im = _complex_halves(tail_emb)
        d_re, d_im = q_re - t_re, q_im - t_im  # (*S, d)
        # per-dimension complex modulus; the clamp keeps the gradient finite (0) where the
        # modulus is 0 and changes the value by at most sqrt(tiny) ~ 1e-19 (float32)
        square = (d_re * d_re + d_im * d_im).clamp_min(torch.finfo(d_re.dtype).tiny)
        return self.gamma - square.sqrt().sum(-1)

    def forward(self, head: Tensor, relation: Tensor, tail: Tensor) -> Tensor:
        q_re, q_im = self._rotated_head(head, relation)
        return self._score(q_re, q_im, self.entity(tail))

    def score_all_tails(self, head: Tensor, relation: Tensor) -> Tensor:
        _check_query(head, relation)
        q_re, q_im = self._rotated_head(head, relation)  # (b, d)
        b, n, d = head.numel(), self.num_entities, self.dim
        # blocks of `rows` queries x `cols` entities, rows * cols * d <= max_chunk_elements
        rows = max(1, min(b, self.max_chunk_elements // (n * d)))
        cols = max(1, min(n, self.max_chunk_elements // (rows * d)))
        weight = self.entity.weight
        blocks = []
        for i in range(0, b, rows):
            qr, qi = q_re[i : i + rows].unsqueeze(1), q_im[i : i + rows].unsqueeze(1)  # (r, 1, d)
            parts = [
                self._score(qr, qi, weight[j : j + cols].unsqueeze(0))  # (r, c)
                for j in range(0, n, cols)
            ]
            blocks.append(torch.cat(parts, dim=1))  # (r, N)
        return torch.cat(blocks, dim=0)  # (b, N)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, gamma={self.gamma}"
