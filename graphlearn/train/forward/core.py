r"""The shared pieces of forward learning: goodness, the local losses, the stacks.

* :class:`LayerLocalStack`: graph convolutions whose layers see a detached,
  length-normalised copy of the layer below (every variant).
* :class:`TopDownStack`: the same, each layer also fed the previous step's
  (detached) output of the layer above (the ``*-topdown`` variants).
* :class:`FeedbackStack`: counter-current learning's target-side network
  (the ``ccl`` variants).
* Losses: :func:`goodness`, :func:`ff_loss`, :func:`in_batch_softmax_loss`,
  :func:`agreement_logits`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphlearn.errors import ConfigError
from graphlearn.registry import Registry

__all__ = [
    "ACTIVATIONS",
    "THETA",
    "FeedbackStack",
    "LayerLocalStack",
    "TopDownStack",
    "agreement_logits",
    "backward_summed",
    "check_in_channels",
    "edge_representation",
    "ff_loss",
    "goodness",
    "in_batch_softmax_loss",
    "input_widths",
    "stream_layers",
    "train_layer_by_layer",
]

#: Hinton's threshold and DESIGN.md §2's: goodness = sum of squares minus 2.
THETA = 2.0

ACTIVATIONS: Registry[Callable[[Tensor], Tensor]] = Registry("activation")
ACTIVATIONS.register("relu")(F.relu)
ACTIVATIONS.register("leaky_relu")(F.leaky_relu)
ACTIVATIONS.register("elu")(F.elu)
ACTIVATIONS.register("identity")(lambda x: x)


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


def agreement_logits(a: Tensor, b: Tensor, temperature: float) -> Tensor:
    r"""CCL's agreement logits: scaled cosine similarity of forward and feedback activations.

    .. math::
        s_{ik} = \frac{\cos(a_i, b_k)}{\tau}
            = \frac{a_i^\top b_k}{\tau\,\max(\lVert a_i\rVert, \epsilon)\,
                \max(\lVert b_k\rVert, \epsilon)}, \qquad \epsilon = 10^{-8}

    (a zero vector has cosine 0 with everything).

    Shapes:
        ``a [M, d]`` (forward activations), ``b [K, d]`` (one feedback activation
        per target value) → ``[M, K]``.
    """
    return F.normalize(a, dim=-1, eps=1e-8) @ F.normalize(b, dim=-1, eps=1e-8).t() / temperature


# --------------------------------------------------------------------------- the stacks


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

    Some objectives add small modules of their own (CCL's feedback stack and
    linear readout, the node-classification backprop readout); they live in
    :attr:`heads` (an ``nn.ModuleDict``, empty otherwise), so they are saved,
    restored and evaluated with the stack.

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
            raise ValueError(f"{type(self).__name__}: layers must hold at least one module")
        for index, layer in enumerate(layers):
            if not isinstance(layer, nn.Module):
                raise TypeError(
                    f"{type(self).__name__}: layers[{index}] must be an nn.Module, "
                    f"got {type(layer).__name__}"
                )
        if eps <= 0:
            raise ValueError(f"{type(self).__name__}: eps must be > 0, got {eps}")
        self.layers = nn.ModuleList(layers)
        self.heads = nn.ModuleDict()
        self.activation_name = activation
        self.activation = ACTIVATIONS.get(activation)
        self.normalize = bool(normalize)
        self.eps = float(eps)
        # No reset_parameters() here: the stack owns no parameters of its own and
        # the layers arrive initialised; resetting would discard the caller's
        # initialisation (and draw from the global RNG).

    def reset_parameters(self) -> None:
        for module in [*self.layers, *self.heads.values()]:
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()

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
        """One Adam per layer over that layer's own parameters, then one per head part.

        The first ``L`` optimizers belong to the layers, in order; the heads'
        follow (a :class:`FeedbackStack` gets one per feedback layer).
        """
        optimizers = []
        for index, layer in enumerate(self.layers):
            params = [p for p in layer.parameters() if p.requires_grad]
            if not params:
                raise ValueError(f"{type(self).__name__}: layers[{index}] has no trainable "
                                 f"parameters")
            optimizers.append(torch.optim.Adam(params, lr=lr, weight_decay=weight_decay))
        for head in self.heads.values():
            parts = list(head.layers) if isinstance(head, FeedbackStack) else [head]
            for part in parts:
                params = [p for p in part.parameters() if p.requires_grad]
                if params:
                    optimizers.append(torch.optim.Adam(params, lr=lr, weight_decay=weight_decay))
        return optimizers

    def extra_repr(self) -> str:
        return f"activation={self.activation_name}, normalize={self.normalize}, eps={self.eps}"


def _output_width(layer: nn.Module, index: int, owner: str) -> int:
    width = getattr(layer, "out_channels", None)
    if not isinstance(width, int) or width <= 0:
        raise ValueError(f"{owner}: cannot read layers[{index}]'s output width (no positive "
                         f"integer `out_channels`); pass out_channels=[...] explicitly")
    if getattr(layer, "concat", False) and isinstance(getattr(layer, "heads", None), int):
        width *= layer.heads  # GATConv / TransformerConv with concatenated heads
    return width


class TopDownStack(LayerLocalStack):
    r"""A layer-local stack whose layers also read the layer above's previous output.

    The top-down reading of ForwardGNN's SF-TopDown: at step :math:`t`,

    .. math::
        h^{(l)}_t = \sigma\Big(\operatorname{conv}_l\big(\big[\,
            \overline{\operatorname{sg}[x^{(l)}_t]} \,\Vert\,
            \overline{\operatorname{sg}[h^{(l+1)}_{t-1}]}\,\big],\ A\big)\Big),
        \qquad \bar x = x / (\lVert x \rVert_2 + \epsilon),

    with :math:`h^{(l+1)}_{0} = 0` (the first step) and no top-down part for the
    top layer (:math:`l = L`; a zero block would add nothing to a linear
    message). The top-down block is always detached, whatever ``local``.
    Layer :math:`l`'s input width is therefore :math:`d_{l-1} + d_{l+1}`
    (:math:`d_{L-1}` for the top layer); see
    :func:`~graphlearn.train.forward.layer_in_channels`.

    At inference there is no previous training step: :meth:`iterate` runs the
    recurrence ``steps`` times from zeros on the graph at hand.

    Args:
        layers: as :class:`LayerLocalStack`.
        out_channels: every layer's output width :math:`d_l` (default: read from
            each layer's ``out_channels``, times ``heads`` when it concatenates
            heads).
        activation, normalize, eps: as :class:`LayerLocalStack`.

    Shapes:
        - **forward**: ``x [N, F]``, ``edge_index [2, E]``, ``top`` ``None`` or a
          list of ``L`` tensors ``[N, d_l]`` (the previous step's outputs) → list
          of ``L`` tensors ``[N, d_l]``.
    """

    def __init__(
        self,
        layers: Sequence[nn.Module],
        out_channels: Sequence[int] | None = None,
        activation: str = "relu",
        normalize: bool = True,
        eps: float = 1e-4,
    ) -> None:
        super().__init__(layers, activation=activation, normalize=normalize, eps=eps)
        name = type(self).__name__
        if out_channels is None:
            widths = [_output_width(layer, i, name) for i, layer in enumerate(self.layers)]
        else:
            widths = [int(w) for w in out_channels]
            if len(widths) != len(self.layers) or min(widths) < 1:
                raise ValueError(f"{name}: out_channels must hold {len(self.layers)} positive "
                                 f"widths, got {list(out_channels)}")
        self.out_channels = widths

    def top_input(self, index: int, num_nodes: int, top: Sequence[Tensor | None] | None,
                  like: Tensor) -> Tensor | None:
        """Layer ``index``'s top-down block: the normalised, detached ``top[index + 1]``,
        zeros when that is missing, ``None`` for the top layer."""
        if index == len(self.layers) - 1:
            return None
        above = None if top is None else top[index + 1]
        if above is None:
            return like.new_zeros(num_nodes, self.out_channels[index + 1])
        if above.shape != (num_nodes, self.out_channels[index + 1]):
            raise ValueError(f"{type(self).__name__}: top[{index + 1}] must be "
                             f"[{num_nodes}, {self.out_channels[index + 1]}], got "
                             f"{list(above.shape)}")
        return self.prepare_input(above, detach=True)

    def layer_forward(self, index: int, x: Tensor, edge_index: Tensor, detach: bool = True,
                      top: Sequence[Tensor | None] | None = None) -> Tensor:
        inputs = self.prepare_input(x, detach)  # (N, d_{l-1})
        block = self.top_input(index, x.size(0), top, inputs)
        if block is not None:
            inputs = torch.cat([inputs, block], dim=-1)  # (N, d_{l-1} + d_{l+1})
        return self.activation(self.layers[index](inputs, edge_index))

    def forward(self, x: Tensor, edge_index: Tensor, local: bool = True,
                top: Sequence[Tensor | None] | None = None) -> list[Tensor]:
        if top is not None and len(top) != len(self.layers):
            raise ValueError(f"{type(self).__name__}: top must hold {len(self.layers)} "
                             f"tensors (or None), got {len(top)}")
        outputs = []
        for index in range(len(self.layers)):
            x = self.layer_forward(index, x, edge_index, detach=local, top=top)  # (N, d_l)
            outputs.append(x)
        return outputs

    def iterate(self, x: Tensor, edge_index: Tensor, steps: int) -> list[Tensor]:
        """Run the recurrence ``steps`` times from zero top-down input; the last outputs."""
        if steps < 1:
            raise ValueError(f"{type(self).__name__}.iterate: steps must be >= 1, got {steps}")
        top: list[Tensor] | None = None
        outputs: list[Tensor] = []
        for _ in range(steps):
            outputs = self.forward(x, edge_index, local=True, top=top)
            top = [h.detach() for h in outputs]
        return outputs

    def extra_repr(self) -> str:
        return f"out_channels={self.out_channels}, " + super().extra_repr()


class FeedbackStack(nn.Module):
    r"""Counter-current learning's feedback network (Kao & Hariharan, NeurIPS 2024).

    Maps a *target* code down through :math:`L` linear layers, top first, so
    that its activation at depth :math:`l` has the width of the forward
    stack's :math:`h^{(l)}`:

    .. math::
        b^{(L+1)} = t, \qquad
        b^{(l)} = \sigma\big(W_l\, \overline{\operatorname{sg}[b^{(l+1)}]} + c_l\big),
        \quad l = L, \dots, 1,

    with the same length normalisation :math:`\bar b = b / (\lVert b\rVert + \epsilon)`
    as the forward stack and activation :math:`\sigma` (default ``"identity"``:
    a ReLU here can send all :math:`C` class codes to one direction on narrow
    layers, after which the agreement loss is constant). Every layer's input is
    detached, so each :math:`W_l` receives gradient only from the loss at depth
    :math:`l`.

    Args:
        num_targets: width of the target code (``C`` one-hot classes; ``2`` for
            edge / non-edge).
        out_channels: the forward stack's widths :math:`d_1, \dots, d_L`.
        activation: name in :data:`ACTIVATIONS` (default ``"identity"``).
        normalize, eps: as :class:`LayerLocalStack`.

    Shapes:
        ``targets [K, num_targets]`` → list of ``L`` tensors ``[K, d_l]``, bottom first.
    """

    def __init__(self, num_targets: int, out_channels: Sequence[int],
                 activation: str = "identity",
                 normalize: bool = True, eps: float = 1e-4) -> None:
        super().__init__()
        widths = [int(w) for w in out_channels]
        if num_targets < 1 or not widths or min(widths) < 1:
            raise ValueError(f"FeedbackStack: need num_targets >= 1 and positive widths, got "
                             f"{num_targets}, {list(out_channels)}")
        inputs = [*widths[1:], int(num_targets)]  # layer l reads depth l + 1
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(inputs, widths))
        self.activation_name = activation
        self.activation = ACTIVATIONS.get(activation)
        self.normalize = bool(normalize)
        self.eps = float(eps)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for layer in self.layers:
            layer.reset_parameters()

    def forward(self, targets: Tensor) -> list[Tensor]:
        outputs: list[Tensor] = [targets] * len(self.layers)
        b = targets
        for index in reversed(range(len(self.layers))):
            b = b.detach()
            if self.normalize:
                b = b / (b.norm(p=2, dim=-1, keepdim=True) + self.eps)
            b = self.activation(self.layers[index](b))  # (K, d_l)
            outputs[index] = b
        return outputs


# --------------------------------------------------------------------------- widths


def input_widths(in_channels: int, out_channels: Sequence[int], *, extra_first: int = 0,
                 topdown: bool = False) -> list[int]:
    """Every layer's input width: ``d_{l-1}`` (``in_channels + extra_first`` for the
    first), plus ``d_{l+1}`` below the top layer when ``topdown``."""
    widths = [int(w) for w in out_channels]
    if not widths:
        raise ValueError("out_channels must hold at least one width")
    inputs = [int(in_channels) + int(extra_first), *widths[:-1]]
    if topdown:
        inputs = [w + (widths[i + 1] if i + 1 < len(widths) else 0)
                  for i, w in enumerate(inputs)]
    return inputs


def check_in_channels(stack: LayerLocalStack, in_channels: int, *, extra_first: int = 0,
                      topdown: bool = False, what: str = "this variant") -> None:
    """Fail with the expected widths when a layer's ``in_channels`` does not fit.

    Layers without positive integer ``in_channels`` / ``out_channels`` (lazy or
    custom modules) are not checked.
    """
    try:
        widths = (stack.out_channels if isinstance(stack, TopDownStack) else
                  [_output_width(layer, i, "") for i, layer in enumerate(stack.layers)])
    except ValueError:
        return
    expected = input_widths(in_channels, widths, extra_first=extra_first, topdown=topdown)
    for index, (layer, want) in enumerate(zip(stack.layers, expected)):
        have = getattr(layer, "in_channels", None)
        if isinstance(have, int) and have > 0 and have != want:
            raise ConfigError(
                f"layers[{index}] reads {have} channels but {what} feeds it {want} "
                f"(every layer: {expected}); build the layers with "
                f"graphlearn.train.forward.layer_in_channels(...) or build_stack(...)"
            )


def make_variant_stack(layers: Sequence[nn.Module], topdown: bool) -> LayerLocalStack:
    """The stack a variant trains: a :class:`TopDownStack` for top-down variants,
    else a :class:`LayerLocalStack`, around bare layers."""
    return TopDownStack(layers) if topdown else LayerLocalStack(layers)


def check_variant_stack(name: str, stack: LayerLocalStack, topdown: bool) -> None:
    """Fail unless a top-down variant ``name`` got a :class:`TopDownStack`."""
    if topdown and not isinstance(stack, TopDownStack):
        raise ConfigError(f"variant {name!r} needs a TopDownStack, got "
                          f"{type(stack).__name__} (build it with "
                          f"graphlearn.train.forward.build_stack)")


def stream_layers(stack: LayerLocalStack, x: Tensor, edge_index: Tensor,
                  layer_loss: Callable[[int, Tensor], Tensor]) -> tuple[dict[str, Tensor], Tensor]:
    """One training step of a local stack, layer by layer: layer ``l``'s forward (on the
    detached output below), ``layer_loss(l, h_l)`` and its backward, then layer
    ``l + 1``; only one layer's autograd graph is alive at a time. Returns the detached
    losses (``"layer<l>"``) and the last layer's detached output. The gradients equal
    one backward of the summed losses when each loss reaches its own layer only."""
    losses = {}
    for index in range(len(stack)):
        h = stack.layer_forward(index, x, edge_index)  # detached input
        loss = layer_loss(index, h)
        loss.backward()
        losses[f"layer{index}"] = loss.detach()
        x = h.detach()
    return losses, x


def backward_summed(losses: dict[str, Tensor]) -> dict[str, Tensor]:
    """One backward of the summed local losses (the detached layer inputs keep each
    term's gradient in its own layer); the losses back, detached."""
    torch.stack(list(losses.values())).sum().backward()
    return {name: loss.detach() for name, loss in losses.items()}


def train_layer_by_layer(
    stack: LayerLocalStack,
    optimizers: Sequence[torch.optim.Optimizer],
    epochs: int,
    eval_every: int,
    layer_loss: Callable[[int], Tensor],
    validate: Callable[[int], float],
    cache: Callable[[int], None],
    metric: str,
    loss_entry: Callable[[int, float], Any] = lambda index, value: value,
) -> tuple[list[dict[str, Any]], list[int]]:
    """The ``layerwise`` schedule's loop, shared by link and node classification.

    Layer ``l`` trains alone for ``epochs`` steps (``layer_loss(l)``: one step's
    loss on the cached input; only ``optimizers[l]`` steps), validated every
    ``eval_every`` steps and at the last (``validate(l)``, under ``eval`` and
    ``no_grad``: the metric of the layers trained so far); it is restored to its
    best epoch (the first on ties), then ``cache(l)`` (``eval``, ``no_grad``) stores
    its outputs as the next layer's input. Returns the history (one entry per
    step: ``layer``, ``epoch``, ``loss`` = ``loss_entry(l, value)``, and
    ``valid_<metric>`` when validated) and the selected epoch of every layer.
    """
    history: list[dict[str, Any]] = []
    selected: list[int] = []
    for index, layer in enumerate(stack.layers):
        best, best_epoch, best_state = -math.inf, 0, None
        for epoch in range(1, epochs + 1):
            stack.train()
            loss = layer_loss(index)
            optimizers[index].zero_grad(set_to_none=True)
            loss.backward()
            optimizers[index].step()
            entry: dict[str, Any] = {"layer": index, "epoch": epoch,
                                     "loss": loss_entry(index, float(loss.detach()))}
            if epoch % eval_every == 0 or epoch == epochs:
                stack.eval()
                with torch.no_grad():
                    value = validate(index)
                entry[f"valid_{metric}"] = value
                if value > best or best_state is None:
                    best, best_epoch = value, epoch
                    best_state = copy.deepcopy(layer.state_dict())
            history.append(entry)
        assert best_state is not None
        layer.load_state_dict(best_state)
        selected.append(best_epoch)
        stack.eval()
        with torch.no_grad():
            cache(index)
    return history, selected
