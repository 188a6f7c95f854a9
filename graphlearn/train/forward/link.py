r"""Forward learning for link prediction: objectives, schedules, :func:`train_forward`.

Variants (:data:`VARIANTS`, pick with ``variant=``); :math:`h^{(l)}` is layer
:math:`l`'s output on the training message graph, :math:`\theta = 2`:

* ``"ff"``: edge representation :math:`z_{uv} = h_u \odot h_v`, goodness
  :math:`g(z) = \sum_k z_k^2 - \theta`; layer loss = BCE of :math:`\sigma(g)`
  against 1 on the training edges and 0 on as many fresh strict negatives.
  Score = mean over layers of :math:`g`.
* ``"sf"``: symmetric in-batch softmax cross-entropy over :math:`h_u^\top h_v`
  (:func:`~graphlearn.train.forward.core.in_batch_softmax_loss`), no negatives.
  Score = mean over layers of :math:`h_u^\top h_v`.
* ``"sf-topdown"``: ``"sf"`` on a :class:`~graphlearn.train.forward.core.TopDownStack`
  (each layer also reads the layer above's output of the previous step);
  even-indexed layers update on even steps, odd-indexed on odd steps. At
  evaluation the recurrence runs ``topdown_iterations`` times from zeros.
* ``"ccl"``: counter-current learning. A feedback stack maps the edge label
  (one-hot over {non-edge, edge}) down to every depth, :math:`b^{(l)}_0, b^{(l)}_1`;
  layer loss = cross-entropy of :math:`\operatorname{softmax}_t(\cos(z^{(l)}_{uv},
  b^{(l)}_t) / \tau)` against the pair's label, on the training edges and as
  many fresh strict negatives; a linear readout on the detached, normalised
  :math:`z^{(L)}` is trained by BCE. Score = the readout's logit.
* ``"backprop"``: the same stack end-to-end, the ``"ff"`` loss of the last
  layer only. Score = the last layer's :math:`g`.

Schedules (:data:`SCHEDULES`): ``"simultaneous"`` (every variant) and
``"layerwise"`` (``"ff"`` and ``"sf"``). See :func:`train_forward`.
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
from graphlearn.train.forward.core import (
    THETA,
    FeedbackStack,
    LayerLocalStack,
    TopDownStack,
    agreement_logits,
    backward_summed,
    check_in_channels,
    check_variant_stack,
    edge_representation,
    ff_loss,
    goodness,
    in_batch_softmax_loss,
    make_variant_stack,
    stream_layers,
    train_layer_by_layer,
)

__all__ = [
    "SCHEDULES",
    "VARIANTS",
    "BackpropObjective",
    "CCLObjective",
    "FFObjective",
    "ForwardConfig",
    "LinkObjective",
    "SFObjective",
    "SFTopDownObjective",
    "evaluate_link",
    "list_schedules",
    "train_forward",
]


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
    ccl_temperature: float = 0.1
    topdown_iterations: int = 3
    eval_every: int = 1
    seed: int = 0
    reset: bool = True

    def __post_init__(self) -> None:
        objective = VARIANTS.get(self.variant)
        SCHEDULES.get(self.schedule)
        for name in ("epochs", "sf_batch_size", "eval_every", "topdown_iterations"):
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
        if not (isinstance(self.ccl_temperature, (int, float)) and self.ccl_temperature > 0):
            raise ConfigError(f"ForwardConfig: ccl_temperature must be > 0, got "
                              f"{self.ccl_temperature!r}")
        schedule = SCHEDULES.get(self.schedule)
        allowed = [name for name in objective.schedules if SCHEDULES.get(name) is schedule]
        if not allowed:
            only = ", ".join(f"schedule={name!r}" for name in objective.schedules)
            reason = "" if objective.local else "trains end-to-end and "
            raise ConfigError(
                f"ForwardConfig: variant {self.variant!r} {reason}supports only {only}, "
                f"got {self.schedule!r}"
            )


class LinkObjective:
    """What one variant optimises and how it scores a node pair.

    ``local``: the stack runs with detached inputs and every layer gets a loss;
    otherwise gradients flow end-to-end and only the last layer has a loss.
    ``needs_negatives``: the loss takes fresh strict negatives every step.
    ``topdown``: the variant needs a :class:`TopDownStack`.
    ``schedules``: the schedules it supports.
    ``streams``: :meth:`train_step` runs layer by layer (one layer's graph alive).
    """

    name: str = ""
    local: bool = True
    needs_negatives: bool = True
    topdown: bool = False
    schedules: tuple[str, ...] = ("layerwise", "simultaneous")
    streams: bool = False

    @classmethod
    def from_config(cls, cfg: ForwardConfig) -> LinkObjective:
        raise NotImplementedError

    # --- building
    def make_stack(self, layers: Sequence[nn.Module]) -> LayerLocalStack:
        """Wrap bare layers in the stack this variant needs."""
        return make_variant_stack(layers, self.topdown)

    def setup(self, stack: LayerLocalStack, train: Data, reset: bool) -> None:
        """Check the stack and build the variant's heads (none by default)."""
        check_variant_stack(self.name, stack, self.topdown)

    # --- one layer
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

    # --- training state carried from step to step (checkpointed by ForwardTrainer)
    def state_dict(self) -> dict[str, Any]:
        """State that the next step reads (tensors or ``None``); none by default."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        if state:
            raise ValueError(f"variant {self.name!r} has no training state, got "
                             f"{sorted(state)}")

    # --- the whole stack
    def outputs(self, stack: LayerLocalStack, data: Data) -> list[Tensor]:
        """Every layer's output at evaluation (no training state)."""
        return stack(data.x, data.edge_index, local=True)

    def forward_losses(self, stack: LayerLocalStack, train: Data, pos: Tensor,
                       neg: Tensor | None, generator: torch.Generator | None,
                       ) -> tuple[dict[str, Tensor], list[Tensor]]:
        """Every local loss (``"layer<l>"``, plus heads') and the layers' outputs."""
        outputs = stack(train.x, train.edge_index, local=self.local)
        losses = {f"layer{i}": self.loss(outputs[i], pos, neg, generator)
                  for i in self.trained_layers(len(outputs))}
        return losses, outputs

    def step_losses(self, stack: LayerLocalStack, train: Data, pos: Tensor,
                    neg: Tensor | None, step: int,
                    generator: torch.Generator | None) -> dict[str, Tensor]:
        """The losses of training step ``step`` (0-based): by default all of them."""
        return self.forward_losses(stack, train, pos, neg, generator)[0]

    def train_step(self, stack: LayerLocalStack, train: Data, pos: Tensor,
                   neg: Tensor | None, step: int,
                   generator: torch.Generator | None) -> dict[str, Tensor]:
        """:meth:`step_losses` with their gradients accumulated; detached losses back.

        A local variant whose every layer has a loss, no heads and no top-down
        input (``ff``, ``sf``) runs layer by layer: layer :math:`l`'s forward, loss
        and backward, then layer :math:`l+1` on the detached output, so only one
        layer's autograd graph is alive at a time and memory stays flat in depth.
        The gradients are those of one backward of the summed losses (each layer's
        parameters get their own loss's gradient only; the negatives and random
        batches are drawn in the same order). ``ccl`` streams too (its own
        ``train_step``); ``sf-topdown`` and ``backprop``: one backward of the sum.
        """
        if not self.streams:
            return backward_summed(self.step_losses(stack, train, pos, neg, step, generator))
        return stream_layers(stack, train.x, train.edge_index,
                             lambda _, h: self.loss(h, pos, neg, generator))[0]

    def layer_logits(self, stack: LayerLocalStack, outputs: Sequence[Tensor],
                     pairs: Tensor) -> list[Tensor]:
        """Every layer's own logits ``[M]`` (diagnostics: ``per_layer``)."""
        return [self.logits(h, pairs) for h in outputs]

    def score(self, stack: LayerLocalStack, outputs: Sequence[Tensor], pairs: Tensor) -> Tensor:
        """Pair scores ``[M]``: mean over the scored layers of their logits."""
        layers = self.trained_layers(len(outputs))
        return torch.stack([self.logits(outputs[i], pairs) for i in layers]).mean(0)


VARIANTS: Registry[type[LinkObjective]] = Registry("link forward-learning variant")


@VARIANTS.register("ff")
class FFObjective(LinkObjective):
    r"""Forward-forward: :math:`\text{BCE}(\sigma(g(h_u \odot h_v)))` on positives vs
    fresh strict negatives; logit = goodness :math:`g`."""

    name = "ff"
    streams = True

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
    schedules = ("simultaneous",)
    streams = False


@VARIANTS.register("sf")
class SFObjective(LinkObjective):
    r"""Single-forward: in-batch softmax cross-entropy over :math:`h_u^\top h_v`,
    no negative data; logit = :math:`h_u^\top h_v`."""

    name = "sf"
    needs_negatives = False
    streams = True

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


def alternating_layers(step: int, num_layers: int) -> list[int]:
    """The layers the top-down variants update at ``step`` (0-based): same parity."""
    return [index for index in range(num_layers) if index % 2 == step % 2]


@VARIANTS.register("sf-topdown")
class SFTopDownObjective(SFObjective):
    r"""SF on a :class:`TopDownStack`: layer :math:`l` reads
    :math:`[\bar x^{(l)} \Vert \overline{\operatorname{sg}[h^{(l+1)}_{t-1}]}]`; layers
    of step parity are updated (even layers on even steps, odd on odd)."""

    name = "sf-topdown"
    topdown = True
    schedules = ("simultaneous",)
    streams = False  # every layer reads the layer above: the whole stack runs first

    def __init__(self, batch_size: int = 1024, iterations: int = 3) -> None:
        super().__init__(batch_size)
        self.iterations = int(iterations)
        self._top: list[Tensor] | None = None

    @classmethod
    def from_config(cls, cfg: ForwardConfig) -> LinkObjective:
        return cls(cfg.sf_batch_size, cfg.topdown_iterations)

    def setup(self, stack: LayerLocalStack, train: Data, reset: bool) -> None:
        super().setup(stack, train, reset)
        self._top = None  # the first step sees zeros from above

    def state_dict(self) -> dict[str, Any]:
        return {"top": self._top}  # the previous step's outputs: the next step's input

    def load_state_dict(self, state: dict[str, Any]) -> None:
        top = state.get("top")
        self._top = None if top is None else list(top)

    def outputs(self, stack: LayerLocalStack, data: Data) -> list[Tensor]:
        assert isinstance(stack, TopDownStack)
        return stack.iterate(data.x, data.edge_index, self.iterations)

    def forward_losses(self, stack: LayerLocalStack, train: Data, pos: Tensor,
                       neg: Tensor | None, generator: torch.Generator | None,
                       ) -> tuple[dict[str, Tensor], list[Tensor]]:
        outputs = stack(train.x, train.edge_index, local=True, top=self._top)
        losses = {f"layer{i}": self.loss(h, pos, neg, generator) for i, h in enumerate(outputs)}
        return losses, outputs

    def step_losses(self, stack: LayerLocalStack, train: Data, pos: Tensor,
                    neg: Tensor | None, step: int,
                    generator: torch.Generator | None) -> dict[str, Tensor]:
        losses, outputs = self.forward_losses(stack, train, pos, neg, generator)
        self._top = [h.detach() for h in outputs]  # the next step's top-down input
        return {f"layer{i}": losses[f"layer{i}"]
                for i in alternating_layers(step, len(outputs))}


@VARIANTS.register("ccl")
class CCLObjective(LinkObjective):
    r"""Counter-current learning for links: the edge label is mapped down by a
    :class:`FeedbackStack` (target code: one-hot over {non-edge, edge}); layer
    :math:`l`'s loss is the cross-entropy of :math:`\cos(h_u \odot h_v, b^{(l)}_t)/\tau`
    over :math:`t \in \{0, 1\}`; a linear readout on the detached, normalised last
    edge representation (BCE) gives the score."""

    name = "ccl"
    schedules = ("simultaneous",)
    streams = True  # its own train_step: layer by layer, then the readout

    def __init__(self, temperature: float = 0.1) -> None:
        self.temperature = float(temperature)

    @classmethod
    def from_config(cls, cfg: ForwardConfig) -> LinkObjective:
        return cls(cfg.ccl_temperature)

    def setup(self, stack: LayerLocalStack, train: Data, reset: bool) -> None:
        super().setup(stack, train, reset)
        if reset or "feedback" not in stack.heads:
            build_ccl_heads(stack, train.x, train.edge_index, num_targets=2, readout_width=1)

    def _feedback(self, stack: LayerLocalStack, device: torch.device) -> list[Tensor]:
        if "feedback" not in stack.heads:
            raise ConfigError("variant 'ccl' needs the stack trained by train_forward(..., "
                              "variant='ccl') (its heads hold the feedback stack and readout)")
        return stack.heads["feedback"](torch.eye(2, device=device))  # L x (2, d_l)

    def _agreement(self, h: Tensor, b: Tensor, pairs: Tensor) -> Tensor:
        return agreement_logits(edge_representation(h, pairs), b, self.temperature)  # (M, 2)

    def forward_losses(self, stack: LayerLocalStack, train: Data, pos: Tensor,
                       neg: Tensor | None, generator: torch.Generator | None,
                       ) -> tuple[dict[str, Tensor], list[Tensor]]:
        if neg is None:
            raise ValueError("variant 'ccl' needs negative edges")
        outputs = stack(train.x, train.edge_index, local=True)
        feedback = self._feedback(stack, train.x.device)
        pairs = torch.cat([pos, neg], dim=1)
        target = torch.cat([torch.ones(pos.size(1)), torch.zeros(neg.size(1))]).to(pos.device)
        losses = {f"layer{i}": F.cross_entropy(self._agreement(h, b, pairs), target.long())
                  for i, (h, b) in enumerate(zip(outputs, feedback))}
        logit = self._readout(stack, outputs[-1], pairs)
        losses["readout"] = F.binary_cross_entropy_with_logits(logit, target)
        return losses, outputs

    def train_step(self, stack: LayerLocalStack, train: Data, pos: Tensor,
                   neg: Tensor | None, step: int,
                   generator: torch.Generator | None) -> dict[str, Tensor]:
        """Layer by layer (the feedback layers' inputs are detached too): depth l's
        forward, agreement loss and backward, then depth l + 1; the readout last."""
        if neg is None:
            raise ValueError("variant 'ccl' needs negative edges")
        feedback = self._feedback(stack, train.x.device)  # L x (2, d_l), small graphs
        pairs = torch.cat([pos, neg], dim=1)
        target = torch.cat([torch.ones(pos.size(1)), torch.zeros(neg.size(1))]).to(pos.device)
        losses, x = stream_layers(
            stack, train.x, train.edge_index,
            lambda i, h: F.cross_entropy(self._agreement(h, feedback[i], pairs), target.long()))
        loss = F.binary_cross_entropy_with_logits(self._readout(stack, x, pairs), target)
        loss.backward()
        losses["readout"] = loss.detach()
        return losses

    def _readout(self, stack: LayerLocalStack, h: Tensor, pairs: Tensor) -> Tensor:
        z = stack.prepare_input(edge_representation(h, pairs), detach=True)  # (M, d_L)
        return stack.heads["readout"](z).squeeze(-1)

    def layer_logits(self, stack: LayerLocalStack, outputs: Sequence[Tensor],
                     pairs: Tensor) -> list[Tensor]:
        feedback = self._feedback(stack, outputs[0].device)
        return [self._agreement(h, b, pairs).diff(dim=-1).squeeze(-1)  # s_edge - s_non-edge
                for h, b in zip(outputs, feedback)]

    def score(self, stack: LayerLocalStack, outputs: Sequence[Tensor], pairs: Tensor) -> Tensor:
        if "readout" not in stack.heads:
            self._feedback(stack, outputs[0].device)  # raises the explanation
        return self._readout(stack, outputs[-1], pairs)


@torch.no_grad()
def build_ccl_heads(stack: LayerLocalStack, x: Tensor, edge_index: Tensor, num_targets: int,
                    readout_width: int) -> None:
    """Add CCL's heads to ``stack``: ``feedback`` (a :class:`FeedbackStack` from
    ``num_targets`` to the stack's widths, read off one dry forward pass) and
    ``readout`` (``Linear(d_L, readout_width)``)."""
    widths = [h.size(-1) for h in stack(x, edge_index)]
    device = x.device
    stack.heads["feedback"] = FeedbackStack(num_targets, widths, normalize=stack.normalize,
                                            eps=stack.eps).to(device)
    stack.heads["readout"] = nn.Linear(widths[-1], readout_width).to(device)


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
        outputs = objective.outputs(stack, data)
        pairs, labels = data.edge_label_index, data.edge_label
        metrics: dict[str, Any] = auroc_ap(objective.score(stack, outputs, pairs), labels)
        metrics["per_layer"] = [auroc_ap(s, labels)
                                for s in objective.layer_logits(stack, outputs, pairs)]
    finally:
        stack.train(was_training)
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
    history: list[dict[str, Any]] = []
    best_auroc, best_epoch, best_state = -math.inf, 0, None
    for epoch in range(1, cfg.epochs + 1):
        stack.train()
        neg = _negatives(objective, train, pos.size(1), generator)
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        # Local variants: the detached inputs keep each term's gradient in its own
        # layer; a layer without a loss this step has no grad and Adam skips it.
        losses = objective.train_step(stack, train, pos, neg, epoch - 1, generator)
        for optimizer in optimizers:
            optimizer.step()
        entry: dict[str, Any] = {"epoch": epoch, "loss": [float(x) for x in losses.values()]}
        if objective.topdown or "readout" in losses:
            entry["loss_terms"] = list(losses)
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
    # The cached (detached) input of the current layer on each split's message graph, and
    # the sum of the logits of the layers already trained on valid's target pairs.
    inputs = {"train": train.x, "valid": valid.x, "test": test.x}
    graphs = {"train": train.edge_index, "valid": valid.edge_index, "test": test.edge_index}
    prefix = {"valid": torch.zeros(valid.edge_label_index.size(1), device=valid.edge_label.device)}

    def layer_loss(index: int) -> Tensor:
        h = stack.layer_forward(index, inputs["train"], graphs["train"])  # (N, d_l)
        neg = _negatives(objective, train, pos.size(1), generator)
        return objective.loss(h, pos, neg, generator)

    def validate(index: int) -> float:
        hv = stack.layer_forward(index, inputs["valid"], graphs["valid"])
        score = (prefix["valid"] + objective.logits(hv, valid.edge_label_index)) / (index + 1)
        return _auroc(score, valid.edge_label)

    def cache(index: int) -> None:
        for name in list(inputs):
            inputs[name] = stack.layer_forward(index, inputs[name], graphs[name])
        prefix["valid"] = prefix["valid"] + objective.logits(inputs["valid"],
                                                             valid.edge_label_index)

    history, selected = train_layer_by_layer(stack, optimizers, cfg.epochs, cfg.eval_every,
                                             layer_loss, validate, cache, metric="auroc")
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
    ccl_temperature: float = 0.1,
    topdown_iterations: int = 3,
    eval_every: int = 1,
    seed: int = 0,
    reset: bool = True,
) -> dict[str, Any]:
    """Train a stack of graph convolutions for link prediction and evaluate it.

    The layers are trained in place (a list is wrapped in a
    :class:`LayerLocalStack` with ReLU and length normalisation, or a
    :class:`TopDownStack` for ``"sf-topdown"``; pass a stack to choose
    otherwise). Full batch: one step per epoch on every training edge.

    Args:
        layers: convolutions called as ``layer(x, edge_index)``, or a stack.
            Their input widths depend on the variant:
            :func:`~graphlearn.train.forward.layer_in_channels`.
        split: ``(train, valid, test)`` of
            :func:`~graphlearn.data.link_split.random_link_split` (train holds the
            positives in ``edge_label_index``; valid/test hold positives and negatives).
        variant: a name in :data:`VARIANTS` (``list_variants("link")``).
        schedule: ``"simultaneous"`` or ``"layerwise"`` (:data:`SCHEDULES`; only
            ``"ff"`` and ``"sf"`` support ``"layerwise"``).
        epochs: steps (simultaneous) or steps per layer (layerwise) (default ``100``).
        lr: Adam learning rate of every layer and head (default ``0.01``).
        weight_decay: Adam weight decay (default ``0.0``).
        theta: goodness threshold of FF and backprop (default ``2.0``).
        sf_batch_size: in-batch candidate set size of SF (default ``1024``).
        ccl_temperature: :math:`\\tau` of CCL's agreement logits (default ``0.1``).
        topdown_iterations: top-down recurrence steps at evaluation (default ``3``).
        eval_every: validate every this many epochs (and at the last) (default ``1``).
        seed: drives the negatives, the SF batches and (with ``reset``) the
            initialisation of layers and heads (default ``0``).
        reset: re-initialise the layers (and rebuild the heads) from ``seed``
            first (default ``True``).

    Returns:
        ``{"metrics": {"valid": {...}, "test": {...}}, "history": [...],
        "selected_epoch": int | list[int], "config": {...}, "wall_time_s": float}``;
        ``valid``/``test`` hold ``auroc``, ``ap`` and ``per_layer`` at the selected
        epoch(s) (selection on validation AUROC).
    """
    cfg = ForwardConfig(variant=variant, schedule=schedule, epochs=epochs, lr=lr,
                        weight_decay=weight_decay, theta=theta, sf_batch_size=sf_batch_size,
                        ccl_temperature=ccl_temperature, topdown_iterations=topdown_iterations,
                        eval_every=eval_every, seed=seed, reset=reset)
    if len(split) != 3:
        raise ValueError(f"split must be (train, valid, test), got {len(split)} parts")
    objective = _objective(cfg)
    stack = layers if isinstance(layers, LayerLocalStack) else objective.make_stack(layers)
    check_in_channels(stack, split[0].x.size(-1), topdown=objective.topdown,
                      what=f"link variant {cfg.variant!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        if cfg.reset:
            stack.heads.clear()
            stack.reset_parameters()
        objective.setup(stack, split[0], reset=cfg.reset)
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
