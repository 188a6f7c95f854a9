"""One place that knows every variant of both tasks: names, input widths, stacks."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn

from graphlearn.errors import ConfigError
from graphlearn.registry import Registry, did_you_mean
from graphlearn.train.forward.core import LayerLocalStack, TopDownStack, input_widths
from graphlearn.train.forward.link import VARIANTS, LinkObjective
from graphlearn.train.forward.node import NODE_VARIANTS, NodeObjective

__all__ = ["TASKS", "build_stack", "get_variant", "layer_in_channels", "list_variants"]

#: task name -> its variant registry.
TASKS: dict[str, Registry] = {"link": VARIANTS, "node": NODE_VARIANTS}


def _registry(task: str) -> Registry:
    if task not in TASKS:
        raise ConfigError(f"unknown forward-learning task {task!r}"
                          f"{did_you_mean(str(task), list(TASKS))} (valid: {', '.join(TASKS)})")
    return TASKS[task]


def list_variants(task: str = "link") -> list[str]:
    """The names accepted by ``variant=`` for ``task`` (``"link"`` or ``"node"``)."""
    return _registry(task).names()


def get_variant(variant: str, task: str = "link") -> type[LinkObjective | NodeObjective]:
    """The objective class of ``variant``; an unknown name lists the valid ones."""
    return _registry(task).get(variant)


def layer_in_channels(variant: str, in_channels: int, out_channels: Sequence[int], *,
                      task: str = "link", num_classes: int | None = None) -> list[int]:
    """The input width every layer must have for ``variant``.

    Layer ``l`` reads the previous width ``d_{l-1}`` (``in_channels`` for the
    first), plus ``num_classes`` on the first layer for the label-appending /
    class-node variants, plus ``d_{l+1}`` (all but the top layer) for the
    top-down variants.

    Example::

        ins = layer_in_channels("sf-topdown", 8, [16, 16, 16], task="node", num_classes=3)
        # [8 + 3 + 16, 16 + 16, 16]
    """
    objective = get_variant(variant, task)
    extra = 0
    if getattr(objective, "label_channels", False):
        if num_classes is None:
            raise ValueError(f"layer_in_channels: variant {variant!r} appends labels; pass "
                             f"num_classes")
        extra = int(num_classes)
    return input_widths(in_channels, out_channels, extra_first=extra, topdown=objective.topdown)


def build_stack(conv: Callable[[int, int], nn.Module], in_channels: int,
                out_channels: Sequence[int], *, variant: str, task: str = "link",
                num_classes: int | None = None, activation: str = "relu",
                normalize: bool = True) -> LayerLocalStack:
    """Layers ``conv(in, out)`` with the widths ``variant`` needs, in the right stack.

    Example::

        stack = build_stack(lambda i, o: GCNConv(i, o), data.num_features, [128, 128],
                            variant="sf-topdown", task="node", num_classes=7)
    """
    inputs = layer_in_channels(variant, in_channels, out_channels, task=task,
                               num_classes=num_classes)
    layers = [conv(i, o) for i, o in zip(inputs, out_channels)]
    if get_variant(variant, task).topdown:
        return TopDownStack(layers, out_channels=out_channels, activation=activation,
                            normalize=normalize)
    return LayerLocalStack(layers, activation=activation, normalize=normalize)
