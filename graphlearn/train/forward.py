r"""Layer-local, backpropagation-free training of GNNs for link prediction (ForwardGNN).

Park et al., "Forward Learning of Graph Neural Networks", ICLR 2024 (OpenReview),
after Hinton, "The Forward-Forward
Algorithm: Some Preliminary Investigations", 2022 (https://arxiv.org/abs/2212.13345).
Re-implemented from the papers' descriptions and DESIGN.md §2.

Every layer :math:`l` of a :class:`LayerLocalStack` is trained by its own local
loss with its own optimizer; its input is detached, so no gradient crosses a
layer boundary:

.. math::
    x^{(0)} = X, \qquad
    h^{(l)} = \operatorname{ReLU}\Big(\operatorname{conv}_l\big(
        \operatorname{sg}[\bar x^{(l)}],\ A_{\text{train}}\big)\Big), \qquad
    x^{(l+1)} = h^{(l)}, \qquad
    \bar x = x / (\lVert x \rVert_2 + \epsilon),

with :math:`\operatorname{sg}` the stop-gradient (``detach``) and the L2 norm
taken per node. The length normalisation is Hinton's (FF, §2): the goodness of
layer :math:`l` is carried by the *length* of :math:`h^{(l)}`, so layer
:math:`l+1` sees only its *direction* and must compute new features instead of
reading the answer off the norm. It is applied to the input of every layer,
the first included (raw features are length-normalised too), and in every
variant, the backprop baseline included, so the variants differ only in their
objective and in where gradients flow.

Variants (:data:`VARIANTS`, pick with ``variant=``):

* ``"ff"`` (forward-forward, Hinton's goodness). Edge representation
  :math:`z_{uv} = h_u \odot h_v`; goodness
  :math:`g(z) = \sum_k z_k^2 - \theta` (:math:`\theta = 2`); layer loss =
  BCE of :math:`\sigma(g)` against 1 on the training edges and 0 on as many
  fresh strict negatives (non-edges of the training graph, resampled every
  step). Pair score = mean over layers of :math:`g`.
* ``"sf"`` (single-forward, no negative data). One forward over the training
  graph; per layer, a symmetric in-batch softmax cross-entropy over dot
  products (see :func:`in_batch_softmax_loss`): each training edge
  :math:`(u, v)` must pick :math:`v` among the batch's endpoints and :math:`u`
  among its start points. Pair score = mean over layers of
  :math:`h_u^\top h_v`.
* ``"backprop"`` (the baseline). The same stack without the detaches, trained
  end-to-end by the FF loss of the *last* layer only (same score function,
  same negatives); pair score = the last layer's :math:`g`.

Schedules (:data:`SCHEDULES`, pick with ``schedule=``):

* ``"simultaneous"``: every step runs the whole stack and updates every layer
  from its own loss (one ``backward`` of the summed local losses: the detaches
  keep the gradients local, and per-layer Adam on the sum equals per-layer
  Adam on each term). ``epochs`` = steps. Selection: the epoch with the best
  validation AUROC of the stack's score.
* ``"layerwise"``: layer 1 is trained for ``epochs`` steps, restored to its
  best epoch, then its outputs on the train/valid/test message graphs are
  computed once without grad and cached; layer 2 trains on the cached input,
  and so on. Only one layer's activations ever hold a graph, so memory stays
  flat in depth; ``epochs`` is per layer (``L * epochs`` steps in all).
  Selection per layer: the epoch whose validation AUROC of the score of the
  layers trained so far (mean over layers ``1..l``) is best.

Model selection never reads the test split. A full-batch step per epoch: every
training edge is a positive every step.

Example::

    from torch_geometric.nn import GCNConv
    split = random_link_split(data, val_ratio=0.16, test_ratio=0.20, seed=0)
    layers = [GCNConv(data.num_features, 128), GCNConv(128, 128)]
    out = train_forward(layers, split, variant="ff", schedule="simultaneous",
                        epochs=200, lr=0.01, seed=0)
    out["metrics"]["test"]["auroc"]
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data

from graphlearn.data.link_split import sample_negative_edges
from graphlearn.errors import ConfigError
from graphlearn.metrics.classification import auroc_ap
from graphlearn.registry import Registry

__all__ = [
    "ACTIVATIONS",
    "SCHEDULES",
    "VARIANTS",
    "BackpropObjective",
    "FFObjective",
    "ForwardConfig",
    "LayerLocalStack",
    "LinkObjective",
    "SFObjective",
    "edge_representation",
    "evaluate_link",
    "ff_loss",
    "goodness",
    "in_batch_softmax_loss",
    "list_schedules",
    "list_variants",
    "train_forward",
]

#: Hinton's threshold and DESIGN.md §2's: goodness = sum of squares minus 2.
THETA = 2.0

ACTIVATIONS: Registry[Callable[[Tensor], Tensor]] = Registry("activation")
ACTIVATIONS.register("relu")(F.relu)
ACTIVATIONS.register("leaky_relu")(F.leaky_relu)
ACTIVATIONS.register("elu")(F.elu)


# --------------------------------------------------------------------------- losses


def goodness(z: Tensor, theta: float = THETA) -> Tensor:
    r"""FF goodness :math:`g(z) = \sum_k z_k^2 - \theta` over the last dimension.

    Shapes:
        ``z [..., d]`` → ``[...]``.
    """
    return z.pow(2).sum(-1) - theta


def edge_representation(h: Tensor, pairs: Tensor) -> Tensor:
    r"""Edge representation :math:`z_{uv} = h_u \odot h_v`.

    Shapes:
        ``h [N, d]``, ``pairs [2, M]`` → ``[M, d]``.
    """
    return h[pairs[0]] * h[pairs[1]]


def ff_loss(pos_goodness: Tensor, neg_goodness: Tensor) -> Tensor:
    r"""FF loss: BCE of :math:`\sigma(g)` against 1 for positives and 0 for negatives.

    .. math::
        \mathcal{L} = \frac{1}{P + Q}\Big(\sum_{i=1}^{P} \log(1 + e^{-g^+_i})
            + \sum_{j=1}^{Q} \log(1 + e^{g^-_j})\Big)

    Shapes:
        ``pos_goodness [P]``, ``neg_goodness [Q]`` → scalar.
    """
    logits = torch.cat([pos_goodness, neg_goodness])
    labels = torch.cat([torch.ones_like(pos_goodness), torch.zeros_like(neg_goodness)])
    return F.binary_cross_entropy_with_logits(logits, labels)


def in_batch_softmax_loss(
    h: Tensor, pos: Tensor, batch_size: int, generator: torch.Generator | None = None
) -> Tensor:
    r"""Symmetric in-batch softmax cross-entropy over dot products (the SF loss).

    The positives are shuffled (``generator``; none: kept in order) and cut into
    batches of ``batch_size``. In a batch :math:`\{(u_i, v_i)\}_{i=1}^B`, with
    :math:`S_{ij} = h_{u_i}^\top h_{v_j}`,

    .. math::
        \mathcal{L}_{\text{batch}} = \frac{1}{2B} \sum_i \Big(
            -\log \operatorname{softmax}_j(S_{ij})_i
            -\log \operatorname{softmax}_j(S_{ji})_i \Big),

    i.e. :math:`u_i` must pick :math:`v_i` among the batch's end points and
    :math:`v_i` must pick :math:`u_i` among its start points. A candidate that
    is the *same node* as the target (another edge of the batch ending in
    :math:`v_i`) is masked out, so a true endpoint is never a negative of
    itself. The result is the mean over all positives.

    Shapes:
        ``h [N, d]``, ``pos [2, E]`` → scalar.
    """
    num = pos.size(1)
    if num == 0:
        raise ValueError("in_batch_softmax_loss needs at least one positive edge")
    if generator is not None:
        order = torch.randperm(num, generator=generator).to(pos.device)
    else:
        order = torch.arange(num, device=pos.device)
    total = h.new_zeros(())
    for chunk in order.split(int(batch_size)):
        src, dst = pos[0, chunk], pos[1, chunk]  # (B,)
        logits = h[src] @ h[dst].t()  # (B, B): row i = u_i against every v_j
        eye = torch.eye(chunk.numel(), dtype=torch.bool, device=h.device)
        same_dst = (dst[:, None] == dst[None, :]) & ~eye
        same_src = (src[:, None] == src[None, :]) & ~eye
        target = torch.arange(chunk.numel(), device=h.device)
        rows = F.cross_entropy(logits.masked_fill(same_dst, -math.inf), target, reduction="sum")
        cols = F.cross_entropy(logits.t().masked_fill(same_src, -math.inf), target,
                               reduction="sum")
        total = total + (rows + cols) / 2
    return total / num


# --------------------------------------------------------------------------- the stack


class LayerLocalStack(nn.Module):
    r"""A stack of graph convolutions whose layers see only a detached, length-
    normalised copy of the layer below (ForwardGNN, Park et al., ICLR 2024).

    .. math::
        h^{(l)} = \sigma\Big(\operatorname{conv}_l\big(\operatorname{sg}[x^{(l)}]
            / (\lVert \operatorname{sg}[x^{(l)}] \rVert_2 + \epsilon),\ A\big)\Big),
        \qquad x^{(0)} = X,\ x^{(l+1)} = h^{(l)}

    (:math:`\operatorname{sg}` = stop-gradient, dropped when ``local=False``;
    the norm is per node). Any module called as ``layer(x, edge_index)`` works:
    PyG's ``GCNConv``, ``SAGEConv``, ``GATConv``, ...

    Args:
        layers: the convolutions, bottom first; ``layer[l]``'s output width must
            be ``layer[l + 1]``'s input width.
        activation: name in :data:`ACTIVATIONS` (default ``"relu"``), applied after
            every layer, the last included (FF goodness is a sum of squares of
            the activations).
        normalize: length-normalise every layer's input (default ``True``).
        eps: added to the norm (default ``1e-4``, Hinton's).

    Shapes:
        - **forward**: ``x [N, F]``, ``edge_index [2, E]`` → list of ``L`` tensors
          ``[N, d_l]`` (the activated output of every layer).
        - **layer_forward**: ``x [N, d_{l-1}]`` → ``[N, d_l]``.
    """

    def __init__(
        self,
        layers: Sequence[nn.Module],
        activation: str = "relu",
        normalize: bool = True,
        eps: float = 1e-4,
    ) -> None:
        super().__init__()
        layers = list(layers)
        if not layers:
            raise ValueError("LayerLocalStack: layers must hold at least one module")
        for index, layer in enumerate(layers):
            if not isinstance(layer, nn.Module):
                raise TypeError(
                    f"LayerLocalStack: layers[{index}] must be an nn.Module, "
                    f"got {type(layer).__name__}"
                )
        if eps <= 0:
            raise ValueError(f"LayerLocalStack: eps must be > 0, got {eps}")
        self.layers = nn.ModuleList(layers)
        self.activation_name = activation
        self.activation = ACTIVATIONS.get(activation)
        self.normalize = bool(normalize)
        self.eps = float(eps)
        # No reset_parameters() here: the stack owns no parameters of its own and
        # the layers arrive initialised; resetting would discard the caller's
        # initialisation (and draw from the global RNG).

    def reset_parameters(self) -> None:
        for layer in self.layers:
            if hasattr(layer, "reset_parameters"):
                layer.reset_parameters()

    def __len__(self) -> int:
        return len(self.layers)

    def prepare_input(self, x: Tensor, detach: bool = True) -> Tensor:
        """A layer's input: detached (when ``detach``) and length-normalised per node."""
        if detach:
            x = x.detach()
        if self.normalize:
            x = x / (x.norm(p=2, dim=-1, keepdim=True) + self.eps)
        return x

    def layer_forward(self, index: int, x: Tensor, edge_index: Tensor,
                      detach: bool = True) -> Tensor:
        """Run layer ``index`` on ``x`` (the raw output of the layer below, or features)."""
        return self.activation(self.layers[index](self.prepare_input(x, detach), edge_index))

    def forward(self, x: Tensor, edge_index: Tensor, local: bool = True) -> list[Tensor]:
        outputs = []
        for index in range(len(self.layers)):
            x = self.layer_forward(index, x, edge_index, detach=local)  # (N, d_l)
            outputs.append(x)
        return outputs

    def make_optimizers(self, lr: float, weight_decay: float = 0.0) -> list[torch.optim.Optimizer]:
        """One Adam per layer over that layer's own parameters."""
        optimizers = []
        for index, layer in enumerate(self.layers):
            params = [p for p in layer.parameters() if p.requires_grad]
            if not params:
                raise ValueError(f"LayerLocalStack: layers[{index}] has no trainable parameters")
            optimizers.append(torch.optim.Adam(params, lr=lr, weight_decay=weight_decay))
        return optimizers

    def extra_repr(self) -> str:
        return f"activation={self.activation_name}, normalize={self.normalize}, eps={self.eps}"


# --------------------------------------------------------------------------- variants


@dataclasses.dataclass(frozen=True)
class ForwardConfig:
    """The options of :func:`train_forward` (validated; see its docstring)."""

    variant: str = "ff"
    schedule: str = "simultaneous"
    epochs: int = 100
    lr: float = 0.01
    weight_decay: float = 0.0
    theta: float = THETA
    sf_batch_size: int = 1024
    eval_every: int = 1
    seed: int = 0
    reset: bool = True

    def __post_init__(self) -> None:
        VARIANTS.get(self.variant)
        SCHEDULES.get(self.schedule)
        for name in ("epochs", "sf_batch_size", "eval_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"ForwardConfig: {name} must be a positive integer, "
                                  f"got {value!r}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ConfigError(f"ForwardConfig: lr must be > 0, got {self.lr!r}")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise ConfigError(f"ForwardConfig: weight_decay must be >= 0, got "
                              f"{self.weight_decay!r}")
        if not isinstance(self.theta, (int, float)) or not math.isfinite(self.theta):
            raise ConfigError(f"ForwardConfig: theta must be a finite number, got {self.theta!r}")
        objective = VARIANTS.get(self.variant)
        if not objective.local and SCHEDULES.get(self.schedule) is not _train_simultaneous:
            raise ConfigError(
                f"ForwardConfig: variant {self.variant!r} trains end-to-end and supports only "
                f"schedule='simultaneous', got {self.schedule!r}"
            )


class LinkObjective:
    """What one variant optimises and how it scores a node pair.

    ``local``: the stack runs with detached inputs and every layer gets a loss;
    otherwise gradients flow end-to-end and only the last layer has a loss.
    ``needs_negatives``: the loss takes fresh strict negatives every step.
    """

    name: str = ""
    local: bool = True
    needs_negatives: bool = True

    @classmethod
    def from_config(cls, cfg: ForwardConfig) -> LinkObjective:
        raise NotImplementedError

    def logits(self, h: Tensor, pairs: Tensor) -> Tensor:
        """One layer's edge logit ``[M]`` from its output ``h [N, d]`` and ``pairs [2, M]``."""
        raise NotImplementedError

    def loss(self, h: Tensor, pos: Tensor, neg: Tensor | None,
             generator: torch.Generator | None) -> Tensor:
        """One layer's loss on positives ``pos [2, P]`` and negatives ``neg [2, Q]``."""
        raise NotImplementedError

    def trained_layers(self, num_layers: int) -> list[int]:
        """Which layers carry a loss."""
        return list(range(num_layers)) if self.local else [num_layers - 1]

    def score(self, outputs: Sequence[Tensor], pairs: Tensor) -> Tensor:
        """Pair scores ``[M]``: mean over the scored layers of their logits."""
        layers = self.trained_layers(len(outputs))
        return torch.stack([self.logits(outputs[i], pairs) for i in layers]).mean(0)


VARIANTS: Registry[type[LinkObjective]] = Registry("forward-learning variant")


def list_variants() -> list[str]:
    """The names accepted by ``variant=``."""
    return VARIANTS.names()


@VARIANTS.register("ff")
class FFObjective(LinkObjective):
    r"""Forward-forward: :math:`\text{BCE}(\sigma(g(h_u \odot h_v)))` on positives vs
    fresh strict negatives; logit = goodness :math:`g`."""

    name = "ff"

    def __init__(self, theta: float = THETA) -> None:
        self.theta = float(theta)

    @classmethod
    def from_config(cls, cfg: ForwardConfig) -> LinkObjective:
        return cls(cfg.theta)

    def logits(self, h: Tensor, pairs: Tensor) -> Tensor:
        return goodness(edge_representation(h, pairs), self.theta)

    def loss(self, h: Tensor, pos: Tensor, neg: Tensor | None,
             generator: torch.Generator | None) -> Tensor:
        if neg is None:
            raise ValueError(f"variant {self.name!r} needs negative edges")
        return ff_loss(self.logits(h, pos), self.logits(h, neg))


@VARIANTS.register("backprop")
class BackpropObjective(FFObjective):
    """The baseline: the FF loss of the last layer, gradients end-to-end."""

    name = "backprop"
    local = False


@VARIANTS.register("sf")
class SFObjective(LinkObjective):
    r"""Single-forward: in-batch softmax cross-entropy over :math:`h_u^\top h_v`,
    no negative data; logit = :math:`h_u^\top h_v`."""

    name = "sf"
    needs_negatives = False

    def __init__(self, batch_size: int = 1024) -> None:
        self.batch_size = int(batch_size)

    @classmethod
    def from_config(cls, cfg: ForwardConfig) -> LinkObjective:
        return cls(cfg.sf_batch_size)

    def logits(self, h: Tensor, pairs: Tensor) -> Tensor:
        return (h[pairs[0]] * h[pairs[1]]).sum(-1)

    def loss(self, h: Tensor, pos: Tensor, neg: Tensor | None,
             generator: torch.Generator | None) -> Tensor:
        return in_batch_softmax_loss(h, pos, self.batch_size, generator)


# --------------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate_link(stack: LayerLocalStack, data: Data, variant: str | LinkObjective = "ff",
                  theta: float = THETA) -> dict[str, Any]:
    """AUROC / AP of ``stack`` on ``data.edge_label_index`` (message graph ``data.edge_index``).

    Returns ``{"auroc", "ap", "per_layer": [{"auroc", "ap"}, ...]}`` (``per_layer``
    scores each layer's logits alone).
    """
    objective = variant if isinstance(variant, LinkObjective) else _objective(
        ForwardConfig(variant=variant, theta=theta))
    was_training = stack.training
    stack.eval()
    try:
        outputs = stack(data.x, data.edge_index, local=True)
    finally:
        stack.train(was_training)
    pairs, labels = data.edge_label_index, data.edge_label
    metrics: dict[str, Any] = auroc_ap(objective.score(outputs, pairs), labels)
    metrics["per_layer"] = [auroc_ap(objective.logits(h, pairs), labels) for h in outputs]
    return metrics


def _objective(cfg: ForwardConfig) -> LinkObjective:
    return VARIANTS.get(cfg.variant).from_config(cfg)


# --------------------------------------------------------------------------- schedules


ScheduleFn = Callable[..., dict[str, Any]]
SCHEDULES: Registry[ScheduleFn] = Registry("forward-learning schedule")


def list_schedules() -> list[str]:
    """The names accepted by ``schedule=``."""
    return SCHEDULES.names()


def _positives(train: Data) -> Tensor:
    if getattr(train, "edge_label_index", None) is None:
        raise ValueError("the train split has no edge_label_index (the training positives); "
                         "build it with graphlearn.data.link_split.random_link_split")
    label = getattr(train, "edge_label", None)
    pos = train.edge_label_index
    return pos if label is None else pos[:, label > 0.5]


def _negatives(objective: LinkObjective, train: Data, num: int,
               generator: torch.Generator) -> Tensor | None:
    if not objective.needs_negatives:
        return None
    # Strict non-edges of the training (message) graph, fresh every step.
    return sample_negative_edges(train.edge_index, int(train.num_nodes), num, generator)


def _auroc(scores: Tensor, labels: Tensor) -> float:
    return auroc_ap(scores, labels)["auroc"]


@SCHEDULES.register("simultaneous")
def _train_simultaneous(stack: LayerLocalStack, objective: LinkObjective, split: Sequence[Data],
                        cfg: ForwardConfig, generator: torch.Generator) -> dict[str, Any]:
    train, valid, _ = split
    pos = _positives(train)
    optimizers = stack.make_optimizers(cfg.lr, cfg.weight_decay)
    trained = objective.trained_layers(len(stack))
    history: list[dict[str, Any]] = []
    best_auroc, best_epoch, best_state = -math.inf, 0, None
    for epoch in range(1, cfg.epochs + 1):
        stack.train()
        outputs = stack(train.x, train.edge_index, local=objective.local)
        neg = _negatives(objective, train, pos.size(1), generator)
        losses = [objective.loss(outputs[i], pos, neg, generator) for i in trained]
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        # Local variants: the detached inputs keep each term's gradient in its own layer.
        torch.stack(losses).sum().backward()
        for optimizer in optimizers:
            optimizer.step()
        entry: dict[str, Any] = {"epoch": epoch, "loss": [float(x.detach()) for x in losses]}
        if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
            val = evaluate_link(stack, valid, objective)["auroc"]
            entry["valid_auroc"] = val
            if val > best_auroc:
                best_auroc, best_epoch = val, epoch
                best_state = copy.deepcopy(stack.state_dict())
        history.append(entry)
    assert best_state is not None
    stack.load_state_dict(best_state)
    return {"history": history, "selected_epoch": best_epoch}


@SCHEDULES.register("layerwise")
def _train_layerwise(stack: LayerLocalStack, objective: LinkObjective, split: Sequence[Data],
                     cfg: ForwardConfig, generator: torch.Generator) -> dict[str, Any]:
    train, valid, test = split
    pos = _positives(train)
    optimizers = stack.make_optimizers(cfg.lr, cfg.weight_decay)
    # The cached (detached) input of the current layer on each split's message graph.
    inputs = {"train": train.x, "valid": valid.x, "test": test.x}
    graphs = {"train": train.edge_index, "valid": valid.edge_index, "test": test.edge_index}
    # Sum of the logits of the layers already trained, on valid's target pairs.
    valid_prefix = torch.zeros(valid.edge_label_index.size(1), device=valid.edge_label.device)
    history: list[dict[str, Any]] = []
    selected: list[int] = []
    for index, layer in enumerate(stack.layers):
        best_auroc, best_epoch, best_state = -math.inf, 0, None
        for epoch in range(1, cfg.epochs + 1):
            stack.train()
            h = stack.layer_forward(index, inputs["train"], graphs["train"])  # (N, d_l)
            neg = _negatives(objective, train, pos.size(1), generator)
            loss = objective.loss(h, pos, neg, generator)
            optimizers[index].zero_grad(set_to_none=True)
            loss.backward()
            optimizers[index].step()
            entry: dict[str, Any] = {"layer": index, "epoch": epoch, "loss": float(loss.detach())}
            if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
                stack.eval()
                with torch.no_grad():
                    hv = stack.layer_forward(index, inputs["valid"], graphs["valid"])
                    score = (valid_prefix + objective.logits(hv, valid.edge_label_index)) / (
                        index + 1)
                val = _auroc(score, valid.edge_label)
                entry["valid_auroc"] = val
                if val > best_auroc:
                    best_auroc, best_epoch = val, epoch
                    best_state = copy.deepcopy(layer.state_dict())
            history.append(entry)
        assert best_state is not None
        layer.load_state_dict(best_state)
        selected.append(best_epoch)
        # Cache this layer's outputs once, without grad: the next layer's input.
        stack.eval()
        with torch.no_grad():
            for name in list(inputs):
                inputs[name] = stack.layer_forward(index, inputs[name], graphs[name])
            valid_prefix = valid_prefix + objective.logits(inputs["valid"],
                                                           valid.edge_label_index)
    return {"history": history, "selected_epoch": selected}


# --------------------------------------------------------------------------- entry point


def train_forward(
    layers: Sequence[nn.Module] | LayerLocalStack,
    split: Sequence[Data],
    *,
    variant: str = "ff",
    schedule: str = "simultaneous",
    epochs: int = 100,
    lr: float = 0.01,
    weight_decay: float = 0.0,
    theta: float = THETA,
    sf_batch_size: int = 1024,
    eval_every: int = 1,
    seed: int = 0,
    reset: bool = True,
) -> dict[str, Any]:
    """Train a stack of graph convolutions for link prediction and evaluate it.

    The layers are trained in place (a list is wrapped in a
    :class:`LayerLocalStack` with ReLU and length normalisation; pass a stack
    to choose otherwise). Full batch: one step per epoch on every training edge.

    Args:
        layers: convolutions called as ``layer(x, edge_index)``, or a stack.
        split: ``(train, valid, test)`` of
            :func:`~graphlearn.data.link_split.random_link_split` (train holds the
            positives in ``edge_label_index``; valid/test hold positives and negatives).
        variant: ``"ff"``, ``"sf"`` or ``"backprop"`` (:data:`VARIANTS`).
        schedule: ``"simultaneous"`` or ``"layerwise"`` (:data:`SCHEDULES`;
            ``"backprop"`` supports only ``"simultaneous"``).
        epochs: steps (simultaneous) or steps per layer (layerwise) (default ``100``).
        lr: Adam learning rate of every layer (default ``0.01``).
        weight_decay: Adam weight decay (default ``0.0``).
        theta: goodness threshold of FF and backprop (default ``2.0``).
        sf_batch_size: in-batch candidate set size of SF (default ``1024``).
        eval_every: validate every this many epochs (and at the last) (default ``1``).
        seed: drives the negatives, the SF batches and (with ``reset``) the
            initialisation (default ``0``).
        reset: re-initialise the layers from ``seed`` first (default ``True``).

    Returns:
        ``{"metrics": {"valid": {...}, "test": {...}}, "history": [...],
        "selected_epoch": int | list[int], "config": {...}, "wall_time_s": float}``;
        ``valid``/``test`` hold ``auroc``, ``ap`` and ``per_layer`` at the selected
        epoch(s) (selection on validation AUROC).
    """
    cfg = ForwardConfig(variant=variant, schedule=schedule, epochs=epochs, lr=lr,
                        weight_decay=weight_decay, theta=theta, sf_batch_size=sf_batch_size,
                        eval_every=eval_every, seed=seed, reset=reset)
    if len(split) != 3:
        raise ValueError(f"split must be (train, valid, test), got {len(split)} parts")
    stack = layers if isinstance(layers, LayerLocalStack) else LayerLocalStack(layers)
    if cfg.reset:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            stack.reset_parameters()
    objective = _objective(cfg)
    generator = torch.Generator().manual_seed(cfg.seed)
    start = time.perf_counter()
    result = SCHEDULES.get(cfg.schedule)(stack, objective, split, cfg, generator)
    _, valid, test = split
    metrics = {"valid": evaluate_link(stack, valid, objective),
               "test": evaluate_link(stack, test, objective)}
    return {
        "metrics": metrics,
        "history": result["history"],
        "selected_epoch": result["selected_epoch"],
        "config": dataclasses.asdict(cfg),
        "wall_time_s": round(time.perf_counter() - start, 3),
    }
