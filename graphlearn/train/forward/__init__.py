r"""Layer-local, backpropagation-free training of GNNs (ForwardGNN).

Park et al., "Forward Learning of Graph Neural Networks", ICLR 2024 (OpenReview),
after Hinton, "The Forward-Forward Algorithm: Some Preliminary Investigations",
2022 (https://arxiv.org/abs/2212.13345); counter-current learning after Kao &
Hariharan, "Counter-Current Learning: A Biologically Plausible Dual Network
Approach for Deep Learning", NeurIPS 2024. Re-implemented from the papers'
descriptions and DESIGN.md §2 (the reference code is CC-BY-NC and was not read).

Every layer :math:`l` of a :class:`LayerLocalStack` is trained by its own local
loss with its own optimizer; its input is detached, so no gradient crosses a
layer boundary:

.. math::
    x^{(0)} = X, \qquad
    h^{(l)} = \operatorname{ReLU}\Big(\operatorname{conv}_l\big(
        \operatorname{sg}[\bar x^{(l)}],\ A\big)\Big), \qquad
    x^{(l+1)} = h^{(l)}, \qquad
    \bar x = x / (\lVert x \rVert_2 + \epsilon),

with :math:`\operatorname{sg}` the stop-gradient (``detach``) and the L2 norm
taken per node. The length normalisation is Hinton's (FF, §2): the goodness of
layer :math:`l` is carried by the *length* of :math:`h^{(l)}`, so layer
:math:`l+1` sees only its *direction*. It is applied to the input of every
layer, the first included, and in every variant, the backprop baselines
included, so the variants differ only in their objective and gradient flow.

Modules:

* :mod:`~graphlearn.train.forward.core`: goodness and the local losses, the
  stacks (:class:`LayerLocalStack`, :class:`TopDownStack`, :class:`FeedbackStack`).
* :mod:`~graphlearn.train.forward.link`: link prediction (``ff``, ``sf``,
  ``sf-topdown``, ``ccl``, ``backprop``; schedules ``simultaneous`` /
  ``layerwise``), :func:`train_forward`.
* :mod:`~graphlearn.train.forward.node`: node classification (``ff-label``,
  ``ff-virtual``, ``sf``, ``sf-topdown``, ``ccl``, ``backprop``; schedules
  ``simultaneous`` / ``layerwise``), :func:`train_forward_node`.
* :mod:`~graphlearn.train.forward.variants`: :func:`list_variants`,
  :func:`layer_in_channels`, :func:`build_stack`.
* :mod:`~graphlearn.train.forward.tasks` and :mod:`~graphlearn.train.forward.trainer`:
  the pipeline (``graphlearn train CONFIG`` with a ``forward:`` section):
  :class:`ForwardTask` (data, split, stack, evaluation of a config) and
  :class:`ForwardTrainer` (run directory, checkpoints, ``--resume``).

Example::

    from torch_geometric.nn import GCNConv
    split = random_link_split(data, val_ratio=0.16, test_ratio=0.20, seed=0)
    layers = [GCNConv(data.num_features, 128), GCNConv(128, 128)]
    out = train_forward(layers, split, variant="ff", schedule="simultaneous",
                        epochs=200, lr=0.01, seed=0)
    out["metrics"]["test"]["auroc"]

    stack = build_stack(GCNConv, data.num_features, [128, 128], variant="ff-label",
                        task="node", num_classes=7)
    out = train_forward_node(stack, data, variant="ff-label", epochs=200)
    out["metrics"]["test"]["accuracy"]
"""

from graphlearn.train.forward.core import (
    ACTIVATIONS,
    THETA,
    FeedbackStack,
    LayerLocalStack,
    TopDownStack,
    agreement_logits,
    check_in_channels,
    edge_representation,
    ff_loss,
    goodness,
    in_batch_softmax_loss,
)
from graphlearn.train.forward.link import (
    SCHEDULES,
    VARIANTS,
    BackpropObjective,
    CCLObjective,
    FFObjective,
    ForwardConfig,
    LinkObjective,
    SFObjective,
    SFTopDownObjective,
    evaluate_link,
    list_schedules,
    train_forward,
)
from graphlearn.train.forward.node import (
    NODE_SCHEDULES,
    NODE_VARIANTS,
    BackpropNodeObjective,
    CCLNodeObjective,
    FFLabelObjective,
    FFVirtualObjective,
    NodeForwardConfig,
    NodeObjective,
    SFNodeObjective,
    SFTopDownNodeObjective,
    class_node_graph,
    evaluate_node,
    label_features,
    train_forward_node,
    wrong_labels,
)
from graphlearn.train.forward.tasks import (
    BACKBONES,
    FORWARD_TASKS,
    ForwardLinkTask,
    ForwardNodeTask,
    ForwardTask,
    build_forward_task,
)
from graphlearn.train.forward.trainer import ForwardTrainer, LayerOptimizers
from graphlearn.train.forward.variants import (
    TASKS,
    build_stack,
    get_variant,
    layer_in_channels,
    list_variants,
)

__all__ = [
    "ACTIVATIONS",
    "BACKBONES",
    "FORWARD_TASKS",
    "NODE_SCHEDULES",
    "NODE_VARIANTS",
    "SCHEDULES",
    "TASKS",
    "THETA",
    "VARIANTS",
    "BackpropNodeObjective",
    "BackpropObjective",
    "CCLNodeObjective",
    "CCLObjective",
    "FFLabelObjective",
    "FFObjective",
    "FFVirtualObjective",
    "FeedbackStack",
    "ForwardConfig",
    "ForwardLinkTask",
    "ForwardNodeTask",
    "ForwardTask",
    "ForwardTrainer",
    "LayerLocalStack",
    "LayerOptimizers",
    "LinkObjective",
    "NodeForwardConfig",
    "NodeObjective",
    "SFNodeObjective",
    "SFObjective",
    "SFTopDownNodeObjective",
    "SFTopDownObjective",
    "TopDownStack",
    "agreement_logits",
    "build_forward_task",
    "build_stack",
    "check_in_channels",
    "class_node_graph",
    "edge_representation",
    "evaluate_link",
    "evaluate_node",
    "ff_loss",
    "get_variant",
    "goodness",
    "in_batch_softmax_loss",
    "label_features",
    "layer_in_channels",
    "list_schedules",
    "list_variants",
    "train_forward",
    "train_forward_node",
    "wrong_labels",
]
