r"""Forward learning for node classification: objectives and :func:`train_forward_node`.

Transductive, full batch: the message graph is the whole graph
(``data.edge_index``); only the labels of ``data.train_mask`` nodes are ever
read during training (tested: changing every other label leaves the trained
model and its predictions unchanged). :math:`C` classes, :math:`\theta = 2`,
:math:`\bar x = x / (\lVert x \rVert + \epsilon)` per node.

Variants (:data:`NODE_VARIANTS`, pick with ``variant=``):

* ``"ff-label"`` (FF with label appending; Hinton §3.3, ForwardGNN). Input
  :math:`[\bar x_v \Vert \ell_v]`, :math:`\ell_v` the one-hot of a candidate
  label. Layer loss = ``ff_loss`` of the goodness
  :math:`g(h_v) = \lVert h_v \rVert^2 - \theta` of the training nodes under
  their true label (positive) vs a wrong one (negative). Prediction: for every
  class :math:`c`, one pass with :math:`\ell_v = e_c` for *every* node;
  :math:`\arg\max_c \sum_l g(h^{(l)}_v \mid c)`. What the *other* nodes show
  during training is ``label_context``: ``"shared"`` (default) trains on the
  prediction passes themselves (candidate :math:`c` shown to every node;
  positive = the pass :math:`c = y_v`, negative = the pass of a wrong label
  drawn per node); ``"uniform"`` shows the true (positive graph) or a wrong
  (negative graph, one cyclic shift of the classes per step) label on the
  training nodes and the uniform block :math:`\mathbf{1}/C` on every other node.
* ``"ff-virtual"`` (FF with class virtual nodes). The graph gains :math:`C`
  class nodes with input :math:`[0 \Vert e_c]` (real nodes: :math:`[\bar x_v
  \Vert 0]`), see :func:`class_node_graph`: *membership* edges
  :math:`v \to c(y_v)` from every training node to its true class node (so a
  class node aggregates its labelled members), in every graph, and *query*
  edges :math:`c \to v` that show a candidate class. Loss, prediction and
  ``label_context`` as ``"ff-label"`` (``"shared"``: query edges from
  :math:`c` to every real node; ``"uniform"``: query edges to the training
  nodes only, from their true / a wrong class). ``class_members="none"``
  drops the membership edges: a class node then only shows its class. With
  GCN's symmetric normalisation a query edge weighs
  :math:`1 / \sqrt{\deg c \cdot \deg v}`, so many members (a 64 % training
  split) dilute it; see ``docs/forward.md``.
* ``"sf"`` (single forward, class virtual nodes, no negatives). One graph: the
  real graph plus the membership edges only (no query edges, so a training
  node is not handed its own class and train and test nodes see the same
  kind of graph). Layer loss = cross-entropy of
  :math:`\operatorname{softmax}_c(h_v^\top h_{c})` against :math:`y_v` over the
  training nodes (:math:`h_c` = class node :math:`c`'s output at the same
  layer). Prediction: :math:`\arg\max_c \sum_l h^{(l)\top}_v h^{(l)}_c`.
* ``"sf-topdown"``: ``"sf"`` on a :class:`TopDownStack` (layer :math:`l` also
  reads the detached previous-step output of layer :math:`l+1`), even-indexed
  layers updated on even steps, odd on odd; at evaluation the recurrence runs
  ``topdown_iterations`` times from zeros.
* ``"ccl"`` (counter-current learning, Kao & Hariharan, NeurIPS 2024). A
  :class:`FeedbackStack` maps the one-hot label :math:`e_c` down to every depth,
  :math:`b^{(l)}_c` (one vector per class and depth). Layer loss = cross-entropy
  of :math:`\operatorname{softmax}_c(\cos(h^{(l)}_v, b^{(l)}_c) / \tau)` against
  :math:`y_v` over the training nodes; its gradient reaches forward layer
  :math:`l` and feedback layer :math:`l` only. A linear readout
  :math:`W \overline{\operatorname{sg}[h^{(L)}]}` is trained by cross-entropy;
  prediction = its argmax.
* ``"backprop"``: the same stack end-to-end (no detaches) with the same linear
  readout on the last layer, cross-entropy on the training nodes.

Schedules (``schedule=``): ``"simultaneous"`` (every variant: every layer
updated every step) and ``"layerwise"`` (``"sf"``, and ``"ff-label"`` /
``"ff-virtual"`` with ``label_context="shared"``): layer 1 trains alone for
``epochs`` steps and is restored to its best validation epoch, its outputs on
every pass of the variant (the one augmented graph of ``"sf"``; the ``C``
candidate-class passes of FF) are computed once without grad and cached, and
layer 2 trains on them; and so on. Selection for layer :math:`l`: validation
accuracy of the layers ``1..l``'s summed scores (the prediction rule of the
whole stack, cut at depth :math:`l`). Only one layer holds an autograd graph.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data

from graphlearn.errors import ConfigError
from graphlearn.registry import Registry
from graphlearn.tasks.node import accuracy
from graphlearn.train.forward.core import (
    THETA,
    LayerLocalStack,
    TopDownStack,
    agreement_logits,
    backward_summed,
    check_in_channels,
    check_variant_stack,
    ff_loss,
    goodness,
    make_variant_stack,
    stream_layers,
    train_layer_by_layer,
)
from graphlearn.train.forward.link import alternating_layers, build_ccl_heads

__all__ = [
    "CLASS_MEMBERS",
    "LABEL_CONTEXTS",
    "NODE_SCHEDULES",
    "NODE_VARIANTS",
    "BackpropNodeObjective",
    "CCLNodeObjective",
    "FFLabelObjective",
    "FFVirtualObjective",
    "NodeForwardConfig",
    "NodeObjective",
    "SFNodeObjective",
    "SFTopDownNodeObjective",
    "class_node_graph",
    "evaluate_node",
    "label_features",
    "train_forward_node",
    "wrong_labels",
]


#: What the other nodes show while the FF variants train (see :class:`NodeForwardConfig`).
LABEL_CONTEXTS: tuple[str, ...] = ("shared", "uniform")

#: Which nodes ``"ff-virtual"`` links to their class node (see :class:`NodeForwardConfig`).
CLASS_MEMBERS: tuple[str, ...] = ("train", "none")

#: The schedules of :func:`train_forward_node` (module docstring).
NODE_SCHEDULES: tuple[str, ...] = ("layerwise", "simultaneous")


@dataclasses.dataclass(frozen=True)
class NodeForwardConfig:
    """The options of :func:`train_forward_node` (validated; see its docstring)."""

    variant: str = "ff-label"
    schedule: str = "simultaneous"
    epochs: int = 100
    lr: float = 0.01
    weight_decay: float = 0.0
    theta: float = THETA
    ccl_temperature: float = 0.1
    topdown_iterations: int = 3
    label_context: str = "shared"
    class_members: str = "train"
    eval_every: int = 1
    seed: int = 0
    reset: bool = True

    def __post_init__(self) -> None:
        objective = NODE_VARIANTS.get(self.variant)
        if self.label_context not in LABEL_CONTEXTS:
            raise ConfigError(f"NodeForwardConfig: label_context must be one of "
                              f"{', '.join(LABEL_CONTEXTS)}, got {self.label_context!r}")
        if self.class_members not in CLASS_MEMBERS:
            raise ConfigError(f"NodeForwardConfig: class_members must be one of "
                              f"{', '.join(CLASS_MEMBERS)}, got {self.class_members!r}")
        if self.class_members != "train" and self.variant != "ff-virtual":
            raise ConfigError(f"NodeForwardConfig: class_members applies to variant "
                              f"'ff-virtual' only, not {self.variant!r}")
        if self.schedule not in NODE_SCHEDULES:
            raise ConfigError(f"NodeForwardConfig: schedule must be one of "
                              f"{', '.join(NODE_SCHEDULES)}, got {self.schedule!r}")
        if self.schedule == "layerwise":
            if "layerwise" not in objective.schedules:
                layerwise = [n for n in NODE_VARIANTS.names()
                             if "layerwise" in NODE_VARIANTS.get(n).schedules]
                raise ConfigError(f"NodeForwardConfig: schedule 'layerwise' is implemented "
                                  f"for the node variants {', '.join(layerwise)}, not "
                                  f"{self.variant!r}")
            if issubclass(objective, _FFNodeObjective) and self.label_context != "shared":
                raise ConfigError("NodeForwardConfig: schedule 'layerwise' needs "
                                  "label_context 'shared' (the cached candidate-class "
                                  "passes); 'uniform' draws a new negative graph every step")
        for name in ("epochs", "eval_every", "topdown_iterations"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"NodeForwardConfig: {name} must be a positive integer, "
                                  f"got {value!r}")
        for name, low in (("lr", 0.0), ("ccl_temperature", 0.0)):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value > low):
                raise ConfigError(f"NodeForwardConfig: {name} must be > 0, got {value!r}")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise ConfigError(f"NodeForwardConfig: weight_decay must be >= 0, got "
                              f"{self.weight_decay!r}")
        if not isinstance(self.theta, (int, float)) or not math.isfinite(self.theta):
            raise ConfigError(f"NodeForwardConfig: theta must be a finite number, "
                              f"got {self.theta!r}")


# --------------------------------------------------------------------------- graph inputs


def _unit_rows(x: Tensor, eps: float) -> Tensor:
    return x / (x.norm(p=2, dim=-1, keepdim=True) + eps)


def label_features(x: Tensor, num_classes: int, labels: Tensor, eps: float = 1e-4) -> Tensor:
    r"""Label-appended input :math:`[\bar x_v \Vert \ell_v]` (``"ff-label"``).

    :math:`\ell_v` = one-hot of ``labels[v]`` where ``labels[v] >= 0``, the
    uniform :math:`\mathbf{1}/C` where ``labels[v] < 0`` (no label given).
    Features are length-normalised first, so the label block and the feature
    block have the same length (one) for a labelled node.

    Shapes:
        ``x [N, F]``, ``labels [N]`` → ``[N, F + C]``.
    """
    if labels.shape != (x.size(0),):
        raise ValueError(f"label_features: labels must be [{x.size(0)}], got "
                         f"{list(labels.shape)}")
    part = x.new_full((x.size(0), num_classes), 1.0 / num_classes)  # (N, C)
    known = labels >= 0
    part[known] = F.one_hot(labels[known], num_classes).to(x.dtype)
    return torch.cat([_unit_rows(x, eps), part], dim=-1)


def class_node_graph(
    x: Tensor,
    edge_index: Tensor,
    num_classes: int,
    members: Tensor,
    member_labels: Tensor,
    queries: Tensor | None = None,
    query_labels: Tensor | None = None,
    eps: float = 1e-4,
) -> tuple[Tensor, Tensor]:
    r"""The graph with :math:`C` class (virtual) nodes ``N .. N + C - 1``.

    Inputs: real node :math:`v` gets :math:`[\bar x_v \Vert 0]`, class node
    :math:`c` gets :math:`[0 \Vert e_c]`. Edges: ``edge_index``, then one
    *membership* edge ``members[i] → N + member_labels[i]`` per labelled
    member, then one *query* edge ``N + query_labels[j] → queries[j]`` per
    query. Pass only training nodes as members: the class nodes must never
    be told a validation or test label.

    Shapes:
        ``x [N, F]``, ``edge_index [2, E]``, ``members``/``member_labels [M]``,
        ``queries``/``query_labels [Q]`` → ``x [N + C, F + C]``,
        ``edge_index [2, E + M + Q]``.
    """
    num_nodes, num_features = x.shape
    x_aug = x.new_zeros(num_nodes + num_classes, num_features + num_classes)
    x_aug[:num_nodes, :num_features] = _unit_rows(x, eps)
    x_aug[num_nodes:, num_features:] = torch.eye(num_classes, dtype=x.dtype, device=x.device)
    parts = [edge_index, torch.stack([members, num_nodes + member_labels])]
    if queries is not None:
        if query_labels is None or query_labels.shape != queries.shape:
            raise ValueError("class_node_graph: query_labels must match queries")
        parts.append(torch.stack([num_nodes + query_labels, queries]))
    return x_aug, torch.cat(parts, dim=1)


def wrong_labels(labels: Tensor, num_classes: int, generator: torch.Generator | None,
                 per_node: bool = False) -> Tensor:
    r"""A label :math:`\ne` ``labels[i]`` for every ``i``: :math:`(y + s) \bmod C`.

    By default one shift :math:`s \sim U\{1, \dots, C-1\}` is drawn for all
    nodes (a random cyclic relabelling of the classes): neighbours that share
    a true label share the wrong one, so the negative graph keeps the
    positive graph's label *consistency* and only the label-feature match
    differs. ``per_node=True`` draws an independent shift per node.

    Shapes:
        ``labels [M]`` → ``[M]``.
    """
    if num_classes < 2:
        raise ValueError("wrong_labels: need at least two classes")
    size = labels.shape if per_node else (1,)
    shift = torch.randint(1, num_classes, size, generator=generator)
    return (labels + shift.to(labels.device)) % num_classes


# --------------------------------------------------------------------------- objectives


class NodeObjective:
    """What one node-classification variant optimises and how it predicts.

    ``local``: detached layer inputs and a loss per layer (else end-to-end).
    ``label_channels``: the first layer reads ``F + C`` channels (labels or
    class-node codes appended). ``topdown``: needs a :class:`TopDownStack`.
    """

    name: str = ""
    local: bool = True
    label_channels: bool = False
    topdown: bool = False
    #: the schedules it supports; ``"layerwise"`` needs :meth:`passes`,
    #: :meth:`layer_loss` and :meth:`layer_scores`
    schedules: tuple[str, ...] = ("simultaneous",)

    def __init__(self, theta: float = THETA, temperature: float = 0.1, iterations: int = 3,
                 label_context: str = "shared", class_members: str = "train") -> None:
        self.theta = float(theta)
        self.temperature = float(temperature)
        self.iterations = int(iterations)
        self.label_context = label_context
        if class_members not in CLASS_MEMBERS:
            raise ConfigError(f"{type(self).__name__}: class_members must be one of "
                              f"{', '.join(CLASS_MEMBERS)}, got {class_members!r}")
        self.class_members = class_members

    @classmethod
    def from_config(cls, cfg: NodeForwardConfig) -> NodeObjective:
        return cls(cfg.theta, cfg.ccl_temperature, cfg.topdown_iterations, cfg.label_context,
                   cfg.class_members)

    def make_stack(self, layers: Sequence[nn.Module]) -> LayerLocalStack:
        return make_variant_stack(layers, self.topdown)

    def setup(self, stack: LayerLocalStack, data: Data, reset: bool) -> None:
        """Check the stack, build heads (none by default), clear training state."""
        check_variant_stack(self.name, stack, self.topdown)

    def forward_losses(self, stack: LayerLocalStack, data: Data,
                       generator: torch.Generator | None,
                       ) -> tuple[dict[str, Tensor], list[Tensor]]:
        """Every local loss (``"layer<l>"``, plus heads') and the layers' outputs."""
        raise NotImplementedError

    def step_losses(self, stack: LayerLocalStack, data: Data, step: int,
                    generator: torch.Generator | None) -> dict[str, Tensor]:
        """The losses of training step ``step`` (0-based): by default all of them."""
        return self.forward_losses(stack, data, generator)[0]

    def train_step(self, stack: LayerLocalStack, data: Data, step: int,
                   generator: torch.Generator | None) -> dict[str, Tensor]:
        """:meth:`step_losses` with their gradients accumulated (one backward of their
        sum); detached losses back. ``sf`` and ``ccl`` stream layer by layer instead
        (as the link variants' ``train_step``: the same gradients, one layer's graph
        alive)."""
        return backward_summed(self.step_losses(stack, data, step, generator))

    def class_scores(self, stack: LayerLocalStack, data: Data) -> tuple[Tensor, list[Tensor]]:
        """``(scores [N, C], per-layer scores: list of [N, C])``; prediction = argmax."""
        raise NotImplementedError

    # -- layerwise: one layer on the cached outputs of the layers below -------------------

    def passes(self, stack: LayerLocalStack, data: Data) -> list[tuple[Tensor, Tensor]]:
        """The graphs ``(x, edge_index)`` every layer runs on, the same at training and
        prediction (layerwise); layer ``l`` reads each pass's output of layer ``l - 1``."""
        raise NotImplementedError

    def layer_loss(self, outputs: Sequence[Tensor], data: Data,
                   generator: torch.Generator | None) -> Tensor:
        """One layer's loss from its outputs on every pass (layerwise)."""
        raise NotImplementedError

    def layer_scores(self, outputs: Sequence[Tensor], data: Data) -> Tensor:
        """``[N, C]``: one layer's class scores from its outputs on every pass; the
        stack's :meth:`class_scores` is their sum over the layers."""
        raise NotImplementedError

    def next_passes(self, stack: LayerLocalStack, index: int, passes: Sequence[tuple[Tensor, Tensor]],
                    data: Data) -> tuple[list[tuple[Tensor, Tensor]], Tensor]:
        """Layer ``index`` run on every pass: the next layer's passes and this layer's
        ``[N, C]`` scores (layerwise caches; call without grad)."""
        passes = [(stack.layer_forward(index, x, ei), ei) for x, ei in passes]
        return passes, self.layer_scores([h for h, _ in passes], data)

    def state_dict(self) -> dict[str, Any]:
        """State that the next step reads (tensors or ``None``; checkpointed by
        ForwardTrainer); none by default."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        if state:
            raise ValueError(f"variant {self.name!r} has no training state, got "
                             f"{sorted(state)}")


NODE_VARIANTS: Registry[type[NodeObjective]] = Registry("node forward-learning variant")


def _num_classes(data: Data) -> int:
    return int(data.y.max()) + 1


def _train_index(data: Data) -> Tensor:
    return data.train_mask.nonzero().view(-1)


class _FFNodeObjective(NodeObjective):
    """FF on candidate labels: goodness of a training node high under its true label,
    low under a wrong one; prediction = argmax over the candidate classes of the
    goodness summed over layers. Subclasses say how a label is shown."""

    label_channels = True
    schedules = ("layerwise", "simultaneous")  # layerwise: label_context "shared" only

    def class_graph(self, stack: LayerLocalStack, data: Data, c: int) -> tuple[Tensor, Tensor]:
        """The input ``(x, edge_index)`` with candidate label ``c`` shown to *every* node."""
        raise NotImplementedError

    def run_class(self, stack: LayerLocalStack, data: Data, c: int) -> list[Tensor]:
        """One pass with candidate label ``c`` shown to every node."""
        return stack(*self.class_graph(stack, data, c), local=self.local)

    def run_training_labels(self, stack: LayerLocalStack, data: Data,
                            labels: Tensor) -> list[Tensor]:
        """One pass with ``labels [T]`` shown to the training nodes only (``uniform``)."""
        raise NotImplementedError

    def _class_goodness(self, stack: LayerLocalStack, data: Data) -> Tensor:
        passes = [self.run_class(stack, data, c) for c in range(_num_classes(data))]
        return torch.stack([self.layer_scores(outputs, data)
                            for outputs in zip(*passes)])  # (L, N, C)

    @staticmethod
    def _shared_loss(scores: Tensor, y: Tensor, wrong: Tensor) -> Tensor:
        """FF loss of one layer's ``[T, C]`` goodness of the training nodes: the true
        class's pass positive, the ``wrong`` class's negative."""
        rows = torch.arange(y.numel(), device=y.device)
        return ff_loss(scores[rows, y], scores[rows, wrong])

    def forward_losses(self, stack: LayerLocalStack, data: Data,
                       generator: torch.Generator | None,
                       ) -> tuple[dict[str, Tensor], list[Tensor]]:
        train, num_classes = _train_index(data), _num_classes(data)
        y = data.y[train]
        if self.label_context == "shared":
            # One pass per candidate class c, c shown to every node (as at prediction);
            # positive = the pass of the true class, negative = the pass of a wrong one.
            wrong = wrong_labels(y, num_classes, generator, per_node=True)
            per_layer = self._class_goodness(stack, data)[:, train]  # (L, T, C)
            return {f"layer{i}": self._shared_loss(g, y, wrong)
                    for i, g in enumerate(per_layer)}, []
        # "uniform": the training nodes show their true (positive graph) or a wrong
        # (negative graph) label, every other node shows none.
        hp = self.run_training_labels(stack, data, y)
        hn = self.run_training_labels(stack, data, wrong_labels(y, num_classes, generator))
        losses = {f"layer{i}": ff_loss(goodness(a[train], self.theta),
                                       goodness(b[train], self.theta))
                  for i, (a, b) in enumerate(zip(hp, hn))}
        return losses, hp

    def class_scores(self, stack: LayerLocalStack, data: Data) -> tuple[Tensor, list[Tensor]]:
        per_layer = self._class_goodness(stack, data)  # (L, N, C)
        return per_layer.sum(0), list(per_layer)

    def passes(self, stack: LayerLocalStack, data: Data) -> list[tuple[Tensor, Tensor]]:
        return [self.class_graph(stack, data, c) for c in range(_num_classes(data))]

    def layer_scores(self, outputs: Sequence[Tensor], data: Data) -> Tensor:
        num_nodes = data.y.size(0)
        return torch.stack([goodness(h[:num_nodes], self.theta) for h in outputs], dim=-1)

    def layer_loss(self, outputs: Sequence[Tensor], data: Data,
                   generator: torch.Generator | None) -> Tensor:
        # "shared": positive = the pass of the true class, negative = a wrong class's
        train = _train_index(data)
        y = data.y[train]
        wrong = wrong_labels(y, _num_classes(data), generator, per_node=True)
        return self._shared_loss(self.layer_scores(outputs, data)[train], y, wrong)


@NODE_VARIANTS.register("ff-label")
class FFLabelObjective(_FFNodeObjective):
    r"""FF with label appending: input :math:`[\bar x_v \Vert \ell_v]`; goodness of the
    training nodes under their true vs a wrong one-hot label."""

    name = "ff-label"

    def _inputs(self, stack: LayerLocalStack, data: Data, labels: Tensor) -> tuple[Tensor, Tensor]:
        return label_features(data.x, _num_classes(data), labels, stack.eps), data.edge_index

    def _run(self, stack: LayerLocalStack, data: Data, labels: Tensor) -> list[Tensor]:
        return stack(*self._inputs(stack, data, labels), local=self.local)

    def class_graph(self, stack: LayerLocalStack, data: Data, c: int) -> tuple[Tensor, Tensor]:
        return self._inputs(stack, data, torch.full_like(data.y, c))

    def run_training_labels(self, stack: LayerLocalStack, data: Data,
                            labels: Tensor) -> list[Tensor]:
        shown = torch.full_like(data.y, -1)  # -1: the uniform label block
        shown[_train_index(data)] = labels
        return self._run(stack, data, shown)


@NODE_VARIANTS.register("ff-virtual")
class FFVirtualObjective(_FFNodeObjective):
    r"""FF with class virtual nodes: a candidate class is shown by a query edge from
    its class node; goodness of the training nodes under their true vs a wrong class."""

    name = "ff-virtual"

    def _inputs(self, stack: LayerLocalStack, data: Data, queries: Tensor,
                query_labels: Tensor) -> tuple[Tensor, Tensor]:
        members = _train_index(data) if self.class_members == "train" else queries[:0]
        return class_node_graph(data.x, data.edge_index, _num_classes(data), members,
                                data.y[members], queries, query_labels, stack.eps)

    def _run(self, stack: LayerLocalStack, data: Data, queries: Tensor,
             query_labels: Tensor) -> list[Tensor]:
        return stack(*self._inputs(stack, data, queries, query_labels), local=self.local)

    def class_graph(self, stack: LayerLocalStack, data: Data, c: int) -> tuple[Tensor, Tensor]:
        everyone = torch.arange(data.y.size(0), device=data.y.device)
        return self._inputs(stack, data, everyone, torch.full_like(everyone, c))

    def run_training_labels(self, stack: LayerLocalStack, data: Data,
                            labels: Tensor) -> list[Tensor]:
        return self._run(stack, data, _train_index(data), labels)


@NODE_VARIANTS.register("sf")
class SFNodeObjective(NodeObjective):
    r"""Single forward with class virtual nodes: per layer, softmax cross-entropy over
    :math:`h_v^\top h_c` (training nodes linked to their class node, no negatives)."""

    name = "sf"
    label_channels = True
    schedules = ("layerwise", "simultaneous")

    def graph(self, data: Data, eps: float = 1e-4) -> tuple[Tensor, Tensor]:
        """The one augmented graph: real edges + membership edges of the training nodes."""
        train = _train_index(data)
        return class_node_graph(data.x, data.edge_index, _num_classes(data), train,
                                data.y[train], eps=eps)

    def _outputs(self, stack: LayerLocalStack, data: Data, training: bool) -> list[Tensor]:
        x, edge_index = self.graph(data, stack.eps)
        return stack(x, edge_index, local=self.local)

    @staticmethod
    def similarities(h: Tensor, num_nodes: int) -> Tensor:
        """``[N, C]`` dot products of the real nodes with the class nodes."""
        return h[:num_nodes] @ h[num_nodes:].t()

    def forward_losses(self, stack: LayerLocalStack, data: Data,
                       generator: torch.Generator | None,
                       ) -> tuple[dict[str, Tensor], list[Tensor]]:
        train, num_nodes = _train_index(data), data.y.size(0)
        outputs = self._outputs(stack, data, training=True)
        losses = {f"layer{i}": F.cross_entropy(self.similarities(h, num_nodes)[train],
                                               data.y[train])
                  for i, h in enumerate(outputs)}
        return losses, outputs

    def train_step(self, stack: LayerLocalStack, data: Data, step: int,
                   generator: torch.Generator | None) -> dict[str, Tensor]:
        if self.topdown:  # every layer reads the layer above: the whole stack runs first
            return super().train_step(stack, data, step, generator)
        train, num_nodes = _train_index(data), data.y.size(0)
        x, edge_index = self.graph(data, stack.eps)
        return stream_layers(stack, x, edge_index, lambda _, h: F.cross_entropy(
            self.similarities(h, num_nodes)[train], data.y[train]))[0]

    def class_scores(self, stack: LayerLocalStack, data: Data) -> tuple[Tensor, list[Tensor]]:
        outputs = self._outputs(stack, data, training=False)
        per_layer = [self.similarities(h, data.y.size(0)) for h in outputs]
        return torch.stack(per_layer).sum(0), per_layer

    def passes(self, stack: LayerLocalStack, data: Data) -> list[tuple[Tensor, Tensor]]:
        return [self.graph(data, stack.eps)]

    def layer_scores(self, outputs: Sequence[Tensor], data: Data) -> Tensor:
        return self.similarities(outputs[0], data.y.size(0))

    def layer_loss(self, outputs: Sequence[Tensor], data: Data,
                   generator: torch.Generator | None) -> Tensor:
        train = _train_index(data)
        return F.cross_entropy(self.layer_scores(outputs, data)[train], data.y[train])


@NODE_VARIANTS.register("sf-topdown")
class SFTopDownNodeObjective(SFNodeObjective):
    """``"sf"`` on a :class:`TopDownStack` with alternating (even/odd) layer updates."""

    name = "sf-topdown"
    topdown = True
    schedules = ("simultaneous",)

    def __init__(self, theta: float = THETA, temperature: float = 0.1, iterations: int = 3,
                 label_context: str = "shared", class_members: str = "train") -> None:
        super().__init__(theta, temperature, iterations, label_context, class_members)
        self._top: list[Tensor] | None = None

    def setup(self, stack: LayerLocalStack, data: Data, reset: bool) -> None:
        super().setup(stack, data, reset)
        self._top = None

    def state_dict(self) -> dict[str, Any]:
        return {"top": self._top}  # the previous step's outputs: the next step's input

    def load_state_dict(self, state: dict[str, Any]) -> None:
        top = state.get("top")
        self._top = None if top is None else list(top)

    def _outputs(self, stack: LayerLocalStack, data: Data, training: bool) -> list[Tensor]:
        assert isinstance(stack, TopDownStack)
        x, edge_index = self.graph(data, stack.eps)
        if training:  # the previous training step's outputs come from above
            return stack(x, edge_index, local=True, top=self._top)
        return stack.iterate(x, edge_index, self.iterations)

    def step_losses(self, stack: LayerLocalStack, data: Data, step: int,
                    generator: torch.Generator | None) -> dict[str, Tensor]:
        losses, outputs = self.forward_losses(stack, data, generator)
        self._top = [h.detach() for h in outputs]
        return {f"layer{i}": losses[f"layer{i}"]
                for i in alternating_layers(step, len(outputs))}


def _readout_logits(stack: LayerLocalStack, h: Tensor, detach: bool) -> Tensor:
    return stack.heads["readout"](stack.prepare_input(h, detach=detach))  # (N, C)


def _require_heads(stack: LayerLocalStack, names: Sequence[str], variant: str) -> None:
    missing = [name for name in names if name not in stack.heads]
    if missing:
        raise ConfigError(f"variant {variant!r} needs the stack trained by "
                          f"train_forward_node(..., variant={variant!r}); its heads lack "
                          f"{missing}")


@NODE_VARIANTS.register("ccl")
class CCLNodeObjective(NodeObjective):
    r"""Counter-current learning: per layer, cross-entropy of
    :math:`\cos(h^{(l)}_v, b^{(l)}_c)/\tau` over classes (:math:`b` = the feedback
    stack applied to one-hot labels); a linear readout on the detached last layer."""

    name = "ccl"

    def setup(self, stack: LayerLocalStack, data: Data, reset: bool) -> None:
        super().setup(stack, data, reset)
        if reset or "feedback" not in stack.heads:
            num_classes = _num_classes(data)
            build_ccl_heads(stack, data.x, data.edge_index, num_targets=num_classes,
                            readout_width=num_classes)

    def forward_losses(self, stack: LayerLocalStack, data: Data,
                       generator: torch.Generator | None,
                       ) -> tuple[dict[str, Tensor], list[Tensor]]:
        _require_heads(stack, ("feedback", "readout"), self.name)
        train = _train_index(data)
        y = data.y[train]
        outputs = stack(data.x, data.edge_index, local=True)
        eye = torch.eye(_num_classes(data), device=data.x.device)
        feedback = stack.heads["feedback"](eye)  # L x (C, d_l): target side, per depth
        losses = {f"layer{i}": F.cross_entropy(
                      agreement_logits(h[train], b, self.temperature), y)
                  for i, (h, b) in enumerate(zip(outputs, feedback))}
        losses["readout"] = F.cross_entropy(
            _readout_logits(stack, outputs[-1], detach=True)[train], y)
        return losses, outputs

    def train_step(self, stack: LayerLocalStack, data: Data, step: int,
                   generator: torch.Generator | None) -> dict[str, Tensor]:
        """Layer by layer (the feedback layers' inputs are detached too): depth l's
        forward, agreement loss and backward, then depth l + 1; the readout last."""
        _require_heads(stack, ("feedback", "readout"), self.name)
        train = _train_index(data)
        y = data.y[train]
        eye = torch.eye(_num_classes(data), device=data.x.device)
        feedback = stack.heads["feedback"](eye)  # L x (C, d_l), separate small graphs
        losses, x = stream_layers(stack, data.x, data.edge_index, lambda i, h: F.cross_entropy(
            agreement_logits(h[train], feedback[i], self.temperature), y))
        loss = F.cross_entropy(_readout_logits(stack, x, detach=True)[train], y)
        loss.backward()
        losses["readout"] = loss.detach()
        return losses

    def class_scores(self, stack: LayerLocalStack, data: Data) -> tuple[Tensor, list[Tensor]]:
        _require_heads(stack, ("feedback", "readout"), self.name)
        outputs = stack(data.x, data.edge_index, local=True)
        eye = torch.eye(_num_classes(data), device=data.x.device)
        feedback = stack.heads["feedback"](eye)
        per_layer = [agreement_logits(h, b, self.temperature) for h, b in zip(outputs, feedback)]
        return _readout_logits(stack, outputs[-1], detach=True), per_layer


@NODE_VARIANTS.register("backprop")
class BackpropNodeObjective(NodeObjective):
    """The baseline: the same stack end-to-end, a linear readout on the last layer,
    cross-entropy on the training nodes."""

    name = "backprop"
    local = False

    def setup(self, stack: LayerLocalStack, data: Data, reset: bool) -> None:
        super().setup(stack, data, reset)
        if reset or "readout" not in stack.heads:
            with torch.no_grad():
                width = stack(data.x, data.edge_index)[-1].size(-1)
            stack.heads["readout"] = nn.Linear(width, _num_classes(data)).to(data.x.device)

    def forward_losses(self, stack: LayerLocalStack, data: Data,
                       generator: torch.Generator | None,
                       ) -> tuple[dict[str, Tensor], list[Tensor]]:
        _require_heads(stack, ("readout",), self.name)
        train = _train_index(data)
        outputs = stack(data.x, data.edge_index, local=False)
        logits = _readout_logits(stack, outputs[-1], detach=False)
        return {"readout": F.cross_entropy(logits[train], data.y[train])}, outputs

    def class_scores(self, stack: LayerLocalStack, data: Data) -> tuple[Tensor, list[Tensor]]:
        _require_heads(stack, ("readout",), self.name)
        outputs = stack(data.x, data.edge_index, local=False)
        return _readout_logits(stack, outputs[-1], detach=False), []


# --------------------------------------------------------------------------- evaluation


_SPLITS = (("train", "train_mask"), ("valid", "val_mask"), ("test", "test_mask"))


def _check_node_data(data: Data) -> None:
    missing = [name for name in ("x", "edge_index", "y", "train_mask", "val_mask", "test_mask")
               if getattr(data, name, None) is None]
    if missing:
        raise ValueError(f"node classification data lacks {missing} (need x, edge_index, y "
                         f"and train/val/test masks, as Planetoid's public split)")
    if not bool(data.train_mask.any()):
        raise ValueError("node classification data: train_mask selects no node")
    if _num_classes(data) < 2:
        raise ValueError("node classification data: need at least two classes in y")


def _objective(variant: str | NodeObjective) -> NodeObjective:
    if isinstance(variant, NodeObjective):
        return variant
    return NODE_VARIANTS.get(variant).from_config(NodeForwardConfig(variant=variant))


@torch.no_grad()
def evaluate_node(stack: LayerLocalStack, data: Data,
                  variant: str | NodeObjective = "ff-label") -> dict[str, Any]:
    """Accuracy of ``stack`` on the train / valid / test masks of ``data``.

    Returns ``{split: {"accuracy", "per_layer": [accuracy of layer l's scores alone]}}``
    for ``split`` in ``train``, ``valid``, ``test`` (``per_layer`` is empty for
    ``"backprop"``).
    """
    objective = _objective(variant)
    was_training = stack.training
    stack.eval()
    try:
        scores, per_layer = objective.class_scores(stack, data)
    finally:
        stack.train(was_training)
    predictions = [scores.argmax(-1)] + [s.argmax(-1) for s in per_layer]
    metrics: dict[str, Any] = {}
    for split, mask_name in _SPLITS:
        mask = getattr(data, mask_name)
        accuracies = [float((p[mask] == data.y[mask]).float().mean()) if bool(mask.any())
                      else math.nan for p in predictions]
        metrics[split] = {"accuracy": accuracies[0], "per_layer": accuracies[1:]}
    return metrics


# --------------------------------------------------------------------------- training


def train_forward_node(
    layers: Sequence[nn.Module] | LayerLocalStack,
    data: Data,
    *,
    variant: str = "ff-label",
    schedule: str = "simultaneous",
    epochs: int = 100,
    lr: float = 0.01,
    weight_decay: float = 0.0,
    theta: float = THETA,
    ccl_temperature: float = 0.1,
    topdown_iterations: int = 3,
    label_context: str = "shared",
    class_members: str = "train",
    eval_every: int = 1,
    seed: int = 0,
    reset: bool = True,
) -> dict[str, Any]:
    """Train a stack of graph convolutions for node classification and evaluate it.

    Full batch, transductive, every layer (and head) stepped by its own Adam
    every step from its own loss (top-down variants: the layers of the step's
    parity only). Selection: the evaluated epoch with the best validation
    accuracy (first on ties); its weights are restored. Test is read once, at
    the end.

    Args:
        layers: convolutions called as ``layer(x, edge_index)``, or a stack; the
            first layer reads ``F + C`` channels for ``"ff-label"``,
            ``"ff-virtual"``, ``"sf"`` and ``"sf-topdown"`` and top-down layers
            read the layer above too:
            :func:`~graphlearn.train.forward.layer_in_channels`.
        data: ``x``, ``edge_index``, ``y`` and ``train_mask``/``val_mask``/``test_mask``.
        variant: a name in :data:`NODE_VARIANTS` (``list_variants("node")``).
        schedule: ``"simultaneous"`` or ``"layerwise"`` (``"sf"``, and ``"ff-label"``
            / ``"ff-virtual"`` with ``label_context="shared"``; module docstring).
        epochs: training steps (per layer under ``"layerwise"``) (default ``100``).
        lr: Adam learning rate (default ``0.01``).
        weight_decay: Adam weight decay (default ``0.0``).
        theta: goodness threshold of the FF variants (default ``2.0``).
        ccl_temperature: :math:`\\tau` of CCL's agreement logits (default ``0.1``).
        topdown_iterations: top-down recurrence steps at evaluation (default ``3``).
        label_context: what the FF variants show the *other* nodes while training:
            ``"shared"`` (default; one pass per candidate class ``c`` shown to every
            node, as at prediction) or ``"uniform"`` (the training nodes show a
            true / wrong label, every other node none).
        class_members: ``"ff-virtual"`` only: ``"train"`` (default; a membership
            edge from every training node to its class node) or ``"none"`` (no
            membership edges: a class node only shows its class).
        eval_every: validate every this many epochs (and at the last) (default ``1``).
        seed: drives the wrong labels and (with ``reset``) the initialisation.
        reset: re-initialise the layers and rebuild the heads from ``seed`` first.

    Returns:
        ``{"metrics": {"train", "valid", "test"}, "history", "selected_epoch",
        "config", "wall_time_s"}``; each split holds ``accuracy`` and ``per_layer``;
        ``selected_epoch`` is one per layer under ``"layerwise"``.
    """
    cfg = NodeForwardConfig(variant=variant, schedule=schedule, epochs=epochs, lr=lr,
                            weight_decay=weight_decay,
                            theta=theta, ccl_temperature=ccl_temperature,
                            topdown_iterations=topdown_iterations,
                            label_context=label_context, class_members=class_members,
                            eval_every=eval_every,
                            seed=seed, reset=reset)
    _check_node_data(data)
    objective = NODE_VARIANTS.get(cfg.variant).from_config(cfg)
    stack = layers if isinstance(layers, LayerLocalStack) else objective.make_stack(layers)
    check_in_channels(stack, data.x.size(-1), topdown=objective.topdown,
                      extra_first=_num_classes(data) if objective.label_channels else 0,
                      what=f"node variant {cfg.variant!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        if cfg.reset:
            stack.heads.clear()
            stack.reset_parameters()
        objective.setup(stack, data, reset=cfg.reset)
    generator = torch.Generator().manual_seed(cfg.seed)
    optimizers = stack.make_optimizers(cfg.lr, cfg.weight_decay)
    start = time.perf_counter()
    if cfg.schedule == "layerwise":
        history, selected = _train_layerwise(stack, objective, data, cfg, optimizers, generator)
    else:
        history, selected = _train_simultaneous(stack, objective, data, cfg, optimizers,
                                                generator)
    metrics = evaluate_node(stack, data, objective)
    return {
        "metrics": metrics,
        "history": history,
        "selected_epoch": selected,
        "config": dataclasses.asdict(cfg),
        "wall_time_s": round(time.perf_counter() - start, 3),
    }


def _train_simultaneous(stack: LayerLocalStack, objective: NodeObjective, data: Data,
                        cfg: NodeForwardConfig, optimizers: Sequence[torch.optim.Optimizer],
                        generator: torch.Generator) -> tuple[list[dict[str, Any]], int]:
    history: list[dict[str, Any]] = []
    best_acc, best_epoch, best_state = -math.inf, 0, None
    for epoch in range(1, cfg.epochs + 1):
        stack.train()
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        # Detached inputs keep each term's gradient inside its own layer (and head);
        # a layer without a loss this step has no grad, and Adam skips it.
        losses = objective.train_step(stack, data, epoch - 1, generator)
        for optimizer in optimizers:
            optimizer.step()
        entry: dict[str, Any] = {"epoch": epoch, "loss": {k: float(v) for k, v in losses.items()}}
        if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
            val = evaluate_node(stack, data, objective)["valid"]["accuracy"]
            entry["valid_accuracy"] = val
            if val > best_acc or best_state is None:
                best_acc, best_epoch = val, epoch
                best_state = copy.deepcopy(stack.state_dict())
        history.append(entry)
    assert best_state is not None
    stack.load_state_dict(best_state)
    return history, best_epoch


def _train_layerwise(stack: LayerLocalStack, objective: NodeObjective, data: Data,
                     cfg: NodeForwardConfig, optimizers: Sequence[torch.optim.Optimizer],
                     generator: torch.Generator) -> tuple[list[dict[str, Any]], list[int]]:
    """Layer by layer on cached inputs (module docstring); selection per layer on the
    validation accuracy of the summed scores of the layers trained so far."""
    # The passes' inputs of the current layer (layer 0: the variant's graphs) and the
    # summed class scores of the layers already trained.
    state = {"passes": objective.passes(stack, data),
             "prefix": torch.zeros(data.y.size(0), _num_classes(data), device=data.x.device)}

    def outputs(index: int) -> list[Tensor]:
        return [stack.layer_forward(index, x, ei) for x, ei in state["passes"]]

    def validate(index: int) -> float:
        scores = state["prefix"] + objective.layer_scores(outputs(index), data)
        return accuracy(scores, data.y, data.val_mask)

    def cache(index: int) -> None:
        state["passes"], scores = objective.next_passes(stack, index, state["passes"], data)
        state["prefix"] = state["prefix"] + scores

    return train_layer_by_layer(
        stack, optimizers, cfg.epochs, cfg.eval_every,
        lambda index: objective.layer_loss(outputs(index), data, generator), validate, cache,
        metric="accuracy", loss_entry=lambda index, value: {f"layer{index}": value})
