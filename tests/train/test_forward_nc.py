"""Forward learning for node classification (graphlearn.train.forward.node): hand-checked
losses, locality of every variant, no label leak, training, errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn import GCNConv

import graphlearn.train.forward.node as node_module
from graphlearn.errors import ConfigError
from graphlearn.train.forward import (
    FeedbackStack,
    LayerLocalStack,
    TopDownStack,
    agreement_logits,
    build_stack,
    class_node_graph,
    evaluate_node,
    get_variant,
    label_features,
    layer_in_channels,
    list_variants,
    train_forward_node,
    wrong_labels,
)

NEW_VARIANTS = ["ccl", "ff-label", "ff-virtual", "sf", "sf-topdown"]


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def communities(seed: int = 0, k: int = 3, size: int = 20, p_in: float = 0.3,
                p_out: float = 0.02, dim: int = 8, noise: float = 1.0) -> Data:
    """``k`` communities of ``size`` nodes; label = community; features = one-hot
    community + N(0, noise²); 15 train / 15 valid / the rest test nodes."""
    g = torch.Generator().manual_seed(seed)
    n = k * size
    comm = torch.arange(n) // size
    p = torch.where(comm[:, None] == comm[None, :], p_in, p_out)
    ei = torch.triu(torch.rand(n, n, generator=g) < p, diagonal=1).nonzero().t()
    x = noise * torch.randn(n, dim, generator=g)
    x[torch.arange(n), comm] += 1.0
    perm = torch.randperm(n, generator=g)
    masks = [torch.zeros(n, dtype=torch.bool) for _ in range(3)]
    masks[0][perm[:15]] = True
    masks[1][perm[15:30]] = True
    masks[2][perm[30:]] = True
    return Data(x=x, edge_index=torch.cat([ei, ei.flip(0)], 1), y=comm, train_mask=masks[0],
                val_mask=masks[1], test_mask=masks[2], num_nodes=n)


def tiny_data() -> Data:
    """8 nodes on a path, 2 classes, 3 features; train 0, 1, 4, 5."""
    x = torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0], [2.0, 0.0, 1.0],
                      [0.0, 3.0, 1.0], [1.0, 2.0, 0.5], [0.5, 0.5, 2.0], [1.0, 0.0, 0.0]])
    src = torch.arange(7)
    ei = torch.cat([torch.stack([src, src + 1]), torch.stack([src + 1, src])], 1)
    y = torch.tensor([0, 1, 0, 1, 1, 0, 0, 1])
    train = torch.zeros(8, dtype=torch.bool)
    train[[0, 1, 4, 5]] = True
    val = torch.zeros(8, dtype=torch.bool)
    val[[2, 3]] = True
    return Data(x=x, edge_index=ei, y=y, train_mask=train, val_mask=val,
                test_mask=~(train | val), num_nodes=8)


def objective_for(variant: str, **options) -> node_module.NodeObjective:
    cfg = node_module.NodeForwardConfig(variant=variant, **options)
    return get_variant(variant, "node").from_config(cfg)


def gcn(i: int, o: int) -> nn.Module:
    return GCNConv(i, o)


# --------------------------------------------------------------------------- hand-checked math


class Mix(nn.Module):
    """Ignores the edges: ``x @ weight.T`` (a fixed linear map for hand computations)."""

    def __init__(self, weight: list[list[float]]) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.tensor(weight, dtype=torch.float))

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return x @ self.weight.t()


class SumConv(Mix):
    """``out_v = W x_v + Σ_{(u→v)} W x_u`` (self plus in-neighbours, no normalisation)."""

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        z = x @ self.weight.t()
        return z.index_add(0, edge_index[1], z[edge_index[0]])


def test_label_features_by_hand():
    x = torch.tensor([[3.0, 4.0], [0.0, 2.0], [0.0, 0.0]])
    out = label_features(x, 3, torch.tensor([2, -1, 0]), eps=0.0)
    expected = torch.tensor([[0.6, 0.8, 0.0, 0.0, 1.0],
                             [0.0, 1.0, 1 / 3, 1 / 3, 1 / 3],
                             [math.nan, math.nan, 1.0, 0.0, 0.0]])
    assert torch.allclose(out[:2], expected[:2])
    assert torch.equal(out[2, 2:], expected[2, 2:])
    assert torch.equal(label_features(x, 3, torch.tensor([2, -1, 0]))[2, :2], torch.zeros(2))


def test_class_node_graph_by_hand():
    x = torch.tensor([[3.0, 4.0], [0.0, 2.0], [1.0, 0.0]])
    ei = torch.tensor([[0, 1], [1, 0]])
    xa, ea = class_node_graph(x, ei, 2, members=torch.tensor([0, 2]),
                              member_labels=torch.tensor([1, 0]),
                              queries=torch.tensor([1]), query_labels=torch.tensor([1]), eps=0.0)
    assert torch.allclose(xa, torch.tensor([[0.6, 0.8, 0, 0], [0, 1, 0, 0], [1, 0, 0, 0],
                                            [0, 0, 1, 0], [0, 0, 0, 1.0]]))
    # real edges, then membership 0 -> class 1 (node 4) and 2 -> class 0 (node 3),
    # then the query class 1 (node 4) -> 1
    assert ea.tolist() == [[0, 1, 0, 2, 4], [1, 0, 4, 3, 1]]


def test_wrong_labels_are_wrong_and_cover_the_others():
    y = torch.tensor([0, 1, 2, 2, 1, 0] * 20)
    g = torch.Generator().manual_seed(0)
    shared = [wrong_labels(y, 3, g) for _ in range(20)]
    assert all(bool((w != y).all()) for w in shared)
    # one shift per draw: nodes with the same label get the same wrong label
    assert all(torch.equal(w[y == 0], w[y == 0][:1].expand(40)) for w in shared)
    assert {int(w[0]) for w in shared} == {1, 2}
    per_node = wrong_labels(y, 3, g, per_node=True)
    assert bool((per_node != y).all()) and per_node[y == 0].unique().numel() == 2


@pytest.mark.parametrize("context", ["shared", "uniform"])
def test_ff_label_loss_by_hand(context):
    # One layer h = ReLU(W [x̄ ‖ ℓ] / ‖·‖), W sums feature k with label k.
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    data = Data(x=x, edge_index=torch.empty(2, 0, dtype=torch.long), y=torch.tensor([0, 1, 1]),
                train_mask=torch.tensor([True, True, False]),
                val_mask=torch.tensor([False, False, True]),
                test_mask=torch.tensor([False, False, True]))
    stack = LayerLocalStack([Mix([[1, 0, 1, 0], [0, 1, 0, 1]])])
    objective = objective_for("ff-label", label_context=context)
    losses, _ = objective.forward_losses(stack, data, torch.Generator().manual_seed(0))
    s = math.sqrt(2.0) + 1e-4  # the stack's input norm: ‖[x̄ ‖ e]‖ = √2, plus eps
    g_pos = 4 / s**2 - 2  # h = (2/s, 0): true label adds to the matching feature
    g_neg = 2 / s**2 - 2  # h = (1/s, 1/s): with C = 2 the wrong label is the other one
    expected = (2 * math.log1p(math.exp(-g_pos)) + 2 * math.log1p(math.exp(g_neg))) / 4
    assert losses["layer0"].item() == pytest.approx(expected, rel=1e-5)
    # Prediction for node 2 (x = (0.6, 0.8)): goodness 3.2/s² - 2 for class 0, 3.6/s² - 2 for 1.
    scores, per_layer = objective.class_scores(stack, data)
    assert torch.allclose(scores[2], torch.tensor([3.2 / s**2 - 2, 3.6 / s**2 - 2]))
    assert len(per_layer) == 1 and torch.equal(per_layer[0], scores)


def test_sf_loss_by_hand():
    # No real edges; class nodes aggregate their members (membership edges only).
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    data = Data(x=x, edge_index=torch.empty(2, 0, dtype=torch.long), y=torch.tensor([0, 1, 1]),
                train_mask=torch.tensor([True, True, False]),
                val_mask=torch.tensor([False, False, True]),
                test_mask=torch.tensor([False, False, True]))
    stack = LayerLocalStack([SumConv([[1, 0, 1, 0], [0, 1, 0, 1]])])
    objective = objective_for("sf")
    losses, _ = objective.forward_losses(stack, data, None)
    a = 1 / (1 + 1e-4)  # every input row has length 1 before the stack's normalisation
    # h_0 = (a, 0), h_1 = (0, a); class node c = own code a e_c + its member's a e_c = 2a e_c.
    # Logits of node 0: (2a², 0); node 1: (0, 2a²). Real nodes never hear the class nodes.
    expected = math.log1p(math.exp(-2 * a * a))
    assert losses["layer0"].item() == pytest.approx(expected, rel=1e-6)
    scores, _ = objective.class_scores(stack, data)
    assert torch.allclose(scores[2], torch.tensor([0.6 * 2 * a * a, 0.8 * 2 * a * a]))


def test_ccl_agreement_and_loss_by_hand():
    a = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    b = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert torch.allclose(agreement_logits(a, b, 0.5), torch.tensor([[1.2, 1.6], [0.0, 0.0]]))
    # One forward layer h = ReLU(x̄), one (linear) feedback layer b_c = e_c / (1 + eps).
    data = Data(x=torch.tensor([[0.6, 0.8], [1.0, 0.0]]), edge_index=torch.empty(2, 0,
                dtype=torch.long), y=torch.tensor([0, 1]),
                train_mask=torch.tensor([True, True]), val_mask=torch.tensor([True, True]),
                test_mask=torch.tensor([True, True]))
    stack = LayerLocalStack([Mix([[1, 0], [0, 1]])])
    objective = objective_for("ccl", ccl_temperature=0.1)
    objective.setup(stack, data, reset=True)
    feedback = stack.heads["feedback"]
    with torch.no_grad():
        feedback.layers[0].weight.copy_(torch.eye(2))
        feedback.layers[0].bias.zero_()
    losses, _ = objective.forward_losses(stack, data, None)
    # cosines: node 0 (0.6, 0.8) -> logits (6, 8), label 0; node 1 (1, 0) -> (10, 0), label 1.
    expected = (math.log1p(math.exp(2.0)) + math.log1p(math.exp(10.0))) / 2
    assert losses["layer0"].item() == pytest.approx(expected, rel=1e-5)
    assert set(losses) == {"layer0", "readout"}


def test_feedback_stack_shapes_and_detach():
    fb = FeedbackStack(3, [4, 5, 6])
    outs = fb(torch.eye(3))
    assert [tuple(o.shape) for o in outs] == [(3, 4), (3, 5), (3, 6)]
    # Depth-0's loss reaches only layer 0 (its input b^(1) is detached).
    outs[0].sum().backward()
    assert fb.layers[0].weight.grad is not None
    assert fb.layers[1].weight.grad is None and fb.layers[2].weight.grad is None


def test_topdown_stack_inputs_by_hand():
    seen = []
    layers = [Mix([[1.0] * 5] * 3), Mix([[1.0] * 5] * 2), Mix([[1.0] * 2] * 2)]
    for layer in layers:
        layer.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    stack = TopDownStack(layers, out_channels=[3, 2, 2], normalize=False)
    x = torch.tensor([[1.0, 2.0, 3.0]])
    stack(x, torch.empty(2, 0, dtype=torch.long))
    # first step: zeros from above; top layer: no top-down block
    assert seen[0].tolist() == [[1, 2, 3, 0, 0]] and seen[1].shape == (1, 5)
    assert seen[2].shape == (1, 2)
    seen.clear()
    top = [torch.zeros(1, 3), torch.tensor([[7.0, 8.0]]), torch.tensor([[9.0, 9.0]])]
    stack(x, torch.empty(2, 0, dtype=torch.long), top=top)
    assert seen[0].tolist() == [[1, 2, 3, 7, 8]]
    assert seen[1][0, 3:].tolist() == [9, 9]
    # iterate(1) is a plain first step; iterate(2) feeds step 1's outputs back
    one = stack.iterate(x, torch.empty(2, 0, dtype=torch.long), 1)
    first = stack(x, torch.empty(2, 0, dtype=torch.long))
    assert all(torch.equal(a, b) for a, b in zip(one, first))
    two = stack.iterate(x, torch.empty(2, 0, dtype=torch.long), 2)
    again = stack(x, torch.empty(2, 0, dtype=torch.long), top=first)
    assert all(torch.equal(a, b) for a, b in zip(two, again))


def test_layer_in_channels():
    assert layer_in_channels("ff-label", 8, [16, 16], task="node", num_classes=3) == [11, 16]
    assert layer_in_channels("ccl", 8, [16, 16], task="node", num_classes=3) == [8, 16]
    assert layer_in_channels("sf-topdown", 8, [16, 12, 10], task="node",
                             num_classes=3) == [8 + 3 + 12, 16 + 10, 12]
    assert layer_in_channels("sf-topdown", 8, [16, 12], task="link") == [20, 16]


# --------------------------------------------------------------------------- locality


def _group(stack: LayerLocalStack, k: int) -> list[nn.Parameter]:
    params = list(stack.layers[k].parameters())
    if "feedback" in stack.heads:
        params += list(stack.heads["feedback"].layers[k].parameters())
    return params


def _grads(stack, objective, data, k, change):
    """Gradients of layer groups k and k+1 from the summed local losses; ``change``
    replaces layer k+1's loss ℓ by 7ℓ + ℓ²."""
    stack.zero_grad(set_to_none=True)
    losses, _ = objective.forward_losses(stack, data, torch.Generator().manual_seed(0))
    above = losses.pop(f"layer{k + 1}")
    total = sum(losses.values()) + (7 * above + above.pow(2) if change else above)
    total.backward()

    def read(params):
        return [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in params]

    return read(_group(stack, k)), read(_group(stack, k + 1))


def _local_setup(variant):
    data = tiny_data()
    torch.manual_seed(0)
    stack = build_stack(gcn, 3, [4, 4, 4], variant=variant, task="node", num_classes=2)
    objective = objective_for(variant)
    objective.setup(stack, data, reset=True)
    if objective.topdown:  # one step first, so the top-down input is not zero
        objective.step_losses(stack, data, 0, torch.Generator().manual_seed(1))
        assert all(h.abs().sum() > 0 for h in objective._top[1:])
    return data, stack, objective


@pytest.mark.parametrize("variant", NEW_VARIANTS)
@pytest.mark.parametrize("k", [0, 1])
def test_layer_k_ignores_layer_k_plus_1_loss(variant, k):
    data, stack, objective = _local_setup(variant)
    base_k, base_above = _grads(stack, objective, data, k, change=False)
    other_k, other_above = _grads(stack, objective, data, k, change=True)
    assert any(g.abs().sum() > 0 for g in base_k)  # layer k does learn
    assert all(torch.equal(a, b) for a, b in zip(base_k, other_k))
    # and the change is real: layer k+1's own gradients move
    assert not all(torch.equal(a, b) for a, b in zip(base_above, other_above))


@pytest.mark.parametrize("variant", NEW_VARIANTS)
def test_locality_check_fails_without_detach(variant, monkeypatch):
    """The same check catches a stack whose inputs are not detached."""
    original = LayerLocalStack.prepare_input
    monkeypatch.setattr(LayerLocalStack, "prepare_input",
                        lambda self, x, detach=True: original(self, x, detach=False))
    data, stack, objective = _local_setup(variant)
    base, _ = _grads(stack, objective, data, 0, change=False)
    other, _ = _grads(stack, objective, data, 0, change=True)
    assert not all(torch.equal(a, b) for a, b in zip(base, other))


def test_topdown_updates_alternate():
    data = tiny_data()
    torch.manual_seed(0)
    stack = build_stack(gcn, 3, [4, 4, 4], variant="sf-topdown", task="node", num_classes=2)
    before = [[p.detach().clone() for p in layer.parameters()] for layer in stack.layers]

    def changed():
        return [not all(torch.equal(a, p) for a, p in zip(old, layer.parameters()))
                for old, layer in zip(before, stack.layers)]

    train_forward_node(stack, data, variant="sf-topdown", epochs=1, reset=False)
    assert changed() == [True, False, True]  # step 0: even layers
    # eval_every=2: only the last epoch is a candidate, so no earlier state is restored
    train_forward_node(stack, data, variant="sf-topdown", epochs=2, eval_every=2, reset=False)
    assert changed() == [True, True, True]


# --------------------------------------------------------------------------- no label leak


def _class_links(edge_index: Tensor, num_nodes: int) -> dict[int, set[int]]:
    """Real node -> the class nodes (ids >= num_nodes) it shares an edge with."""
    links: dict[int, set[int]] = {}
    for a, b in edge_index.t().tolist():
        for real, other in ((a, b), (b, a)):
            if real < num_nodes <= other:
                links.setdefault(real, set()).add(other - num_nodes)
    return links


def _leaks(edge_index: Tensor, data: Data) -> bool:
    """True when the class nodes linked to a non-training node depend on its label:
    the non-training nodes are not all linked to one and the same set."""
    links = _class_links(edge_index, data.num_nodes)
    others = (~data.train_mask).nonzero().view(-1).tolist()
    return len({frozenset(links.get(v, set())) for v in others}) > 1


def test_leak_check_catches_a_leaky_graph():
    data = communities()
    everyone = torch.arange(data.num_nodes)
    _, leaky = class_node_graph(data.x, data.edge_index, 3, everyone, data.y)
    assert _leaks(leaky, data)
    train = data.train_mask.nonzero().view(-1)
    _, clean = class_node_graph(data.x, data.edge_index, 3, train, data.y[train])
    assert not _leaks(clean, data)


@pytest.mark.parametrize(("variant", "context"), [
    ("sf", "shared"), ("sf-topdown", "shared"), ("ff-virtual", "shared"),
    ("ff-virtual", "uniform"),
])
def test_training_graphs_never_link_a_non_training_node_to_its_class(variant, context):
    data = communities()
    graphs = []
    stack = build_stack(gcn, 8, [8, 8], variant=variant, task="node", num_classes=3)
    stack.layers[0].register_forward_pre_hook(
        lambda m, args: graphs.append(args[1]) if m.training else None)
    train_forward_node(stack, data, variant=variant, epochs=3, label_context=context)
    assert graphs and not any(_leaks(g, data) for g in graphs)
    if variant.startswith("sf"):  # no query edges at all: only training nodes touch classes
        train = set(data.train_mask.nonzero().view(-1).tolist())
        assert all(set(_class_links(g, data.num_nodes)) <= train for g in graphs)


@pytest.mark.parametrize("context", ["shared", "uniform"])
def test_ff_virtual_without_members_only_has_query_edges(context):
    data = communities()
    n = data.num_nodes
    graphs = []
    stack = build_stack(gcn, 8, [8, 8], variant="ff-virtual", task="node", num_classes=3)
    stack.layers[0].register_forward_pre_hook(lambda m, args: graphs.append(args[1]))
    train_forward_node(stack, data, variant="ff-virtual", epochs=2, label_context=context,
                       class_members="none")
    queries = set()
    for g in graphs:
        assert torch.equal(g[:, :data.edge_index.size(1)], data.edge_index)
        extra = g[:, data.edge_index.size(1):]
        assert (extra[0] >= n).all() and (extra[1] < n).all()  # class -> real only
        queries.add(extra.size(1))
    # candidate-class passes query every node; "uniform" training graphs the training nodes
    assert queries == ({n} if context == "shared" else {n, int(data.train_mask.sum())})
    # the default links every training node (and only those) to its class node
    train = data.train_mask.nonzero().view(-1)
    objective = objective_for("ff-virtual")
    _, g = objective.class_graph(stack, data, 0)
    into_class = g[:, g[1] >= n]
    assert torch.equal(into_class[0], train) and torch.equal(into_class[1] - n, data.y[train])
    _, g = objective_for("ff-virtual", class_members="none").class_graph(stack, data, 0)
    assert not (g[1] >= n).any() and int((g[0] >= n).sum()) == n


def test_ff_label_shows_no_label_of_a_non_training_node():
    data = communities()
    inputs = []
    stack = build_stack(gcn, 8, [8, 8], variant="ff-label", task="node", num_classes=3)
    stack.layers[0].register_forward_pre_hook(
        lambda m, args: inputs.append(args[0]) if m.training else None)
    train_forward_node(stack, data, variant="ff-label", epochs=2, label_context="uniform")
    uniform = torch.full((int((~data.train_mask).sum()), 3), 1 / 3)
    for x in inputs:  # the label block is the last 3 columns, after length normalisation
        block = x[~data.train_mask, 8:] / x[~data.train_mask, 8:].sum(-1, keepdim=True)
        assert torch.allclose(block, uniform)


def _scores_after_training(variant: str, data: Data) -> Tensor:
    stack = build_stack(gcn, 8, [8, 8], variant=variant, task="node", num_classes=3)
    # eval_every = epochs: selection never reads a validation label either
    train_forward_node(stack, data, variant=variant, epochs=6, eval_every=6, seed=0)
    return get_variant(variant, "node")().class_scores(stack.eval(), data)[0]


@pytest.mark.parametrize("variant", list_variants("node"))
def test_non_training_labels_change_nothing(variant):
    data = communities()
    relabelled = data.clone()
    relabelled.y = torch.where(data.train_mask, data.y, (data.y + 1) % 3)
    assert torch.equal(_scores_after_training(variant, data),
                       _scores_after_training(variant, relabelled))


def test_label_change_check_catches_a_leak(monkeypatch):
    """If training read every label, the same comparison would fail."""
    monkeypatch.setattr(node_module, "_train_index",
                        lambda data: torch.arange(data.y.size(0)))
    data = communities()
    relabelled = data.clone()
    relabelled.y = torch.where(data.train_mask, data.y, (data.y + 1) % 3)
    assert not torch.equal(_scores_after_training("sf", data),
                           _scores_after_training("sf", relabelled))


# --------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def data():
    return communities()


@pytest.mark.parametrize(("variant", "options"), [
    *[(v, {}) for v in list_variants("node")], ("ff-virtual", {"class_members": "none"})])
def test_variants_beat_chance(data, variant, options):
    stack = build_stack(gcn, 8, [16, 16], variant=variant, task="node", num_classes=3)
    out = train_forward_node(stack, data, variant=variant, epochs=40, lr=0.03, seed=0,
                             **options)
    metrics = out["metrics"]
    assert metrics["test"]["accuracy"] > 0.6  # chance: 1/3
    assert metrics["train"]["accuracy"] > 0.6
    assert len(out["history"]) == 40
    assert len(metrics["test"]["per_layer"]) == (0 if variant == "backprop" else 2)
    best = max((h for h in out["history"] if "valid_accuracy" in h),
               key=lambda h: h["valid_accuracy"])
    assert out["selected_epoch"] == best["epoch"]
    assert metrics["valid"]["accuracy"] == pytest.approx(best["valid_accuracy"])
    # the trained stack evaluates the same afterwards (heads live in the stack)
    objective = objective_for(variant, **options)
    assert evaluate_node(stack, data, objective)["test"]["accuracy"] == pytest.approx(
        metrics["test"]["accuracy"])


def test_same_seed_same_run(data):
    runs = []
    for _ in range(2):
        stack = build_stack(gcn, 8, [8, 8], variant="ff-virtual", task="node", num_classes=3)
        runs.append(train_forward_node(stack, data, variant="ff-virtual", epochs=4,
                                       seed=2)["metrics"]["test"]["accuracy"])
    assert runs[0] == runs[1]


# --------------------------------------------------------------------------- errors


def test_registry_and_errors(data):
    assert list_variants("node") == ["backprop", "ccl", "ff-label", "ff-virtual", "sf",
                                     "sf-topdown"]
    assert get_variant("SF_TopDown", "node") is node_module.SFTopDownNodeObjective
    layers = [GCNConv(11, 8)]
    with pytest.raises(ConfigError, match=r"did you mean 'ff-label'.*valid: backprop, ccl, "
                                          r"ff-label, ff-virtual, sf, sf-topdown"):
        train_forward_node(layers, data, variant="ff-lable")
    with pytest.raises(ConfigError, match="valid: link, node"):
        list_variants("edge")
    with pytest.raises(ConfigError, match=r"layers\[0\] reads 8 channels but node variant "
                                          r"'ff-label' feeds it 11"):
        train_forward_node([GCNConv(8, 8)], data, variant="ff-label")
    with pytest.raises(ConfigError, match="needs a TopDownStack"):
        train_forward_node(LayerLocalStack([GCNConv(11, 8)]), data, variant="sf-topdown")
    with pytest.raises(ConfigError, match="label_context must be one of shared, uniform"):
        train_forward_node(layers, data, label_context="global")
    with pytest.raises(ConfigError, match="class_members must be one of train, none"):
        train_forward_node(layers, data, variant="ff-virtual", class_members="all")
    with pytest.raises(ConfigError, match="FFVirtualObjective: class_members must be one of"):
        node_module.FFVirtualObjective(class_members="None")
    with pytest.raises(ConfigError, match="class_members applies to variant 'ff-virtual' "
                                          "only, not 'sf'"):
        train_forward_node(layers, data, variant="sf", class_members="none")
    with pytest.raises(ConfigError, match="its heads lack"):
        evaluate_node(LayerLocalStack([GCNConv(8, 8)]), data, "ccl")
    with pytest.raises(ValueError, match="lacks"):
        train_forward_node(layers, Data(x=data.x, edge_index=data.edge_index))


@pytest.mark.parametrize("variant", ["sf", "sf-topdown", "ff-label", "ccl", "backprop"])
def test_train_step_gradients_equal_one_backward_of_the_summed_losses(variant):
    """``sf`` and ``ccl`` stream layer by layer; the others run the stack first. Either way the
    gradients are those of one backward of the summed step losses, bit for bit."""
    data = communities()
    objective = objective_for(variant)
    stack = build_stack(gcn, data.x.size(1), [8, 8, 8], variant=variant, task="node",
                        num_classes=3)
    torch.manual_seed(0)
    stack.reset_parameters()
    objective.setup(stack, data, reset=True)

    def grads(streamed: bool):
        stack.zero_grad(set_to_none=True)
        if objective.topdown:
            objective.load_state_dict({"top": None})
        generator = torch.Generator().manual_seed(2)
        if streamed:
            losses = objective.train_step(stack, data, 0, generator)
        else:
            terms = objective.step_losses(stack, data, 0, generator)
            torch.stack(list(terms.values())).sum().backward()
            losses = {k: v.detach() for k, v in terms.items()}
        return ([None if p.grad is None else p.grad.clone() for p in stack.parameters()],
                {k: float(v) for k, v in losses.items()})

    (a, la), (b, lb) = grads(False), grads(True)
    assert la == lb
    assert all((x is None and y is None) or torch.equal(x, y) for x, y in zip(a, b))


# --------------------------------------------------------------------------- layerwise

LAYERWISE = ["ff-label", "ff-virtual", "sf"]


def _layerwise_setup(variant: str, data: Data, widths=(8, 8)):
    objective = objective_for(variant)
    stack = build_stack(gcn, data.x.size(1), list(widths), variant=variant, task="node",
                        num_classes=3)
    torch.manual_seed(0)
    stack.reset_parameters()
    objective.setup(stack, data, reset=True)
    return objective, stack


@pytest.mark.parametrize("variant", LAYERWISE)
def test_layer_pieces_are_the_stacks_scores_and_losses(data, variant):
    """``passes`` run layer by layer with ``layer_scores`` summed give ``class_scores``,
    and ``layer_loss`` of a layer is that layer's term of the simultaneous step."""
    objective, stack = _layerwise_setup(variant, data)
    stack.eval()
    with torch.no_grad():
        scores, per_layer = objective.class_scores(stack, data)
        passes = objective.passes(stack, data)
        assert len(passes) == (1 if variant == "sf" else 3)
        mine = []
        for index in range(len(stack)):
            passes = [(stack.layer_forward(index, x, ei), ei) for x, ei in passes]
            mine.append(objective.layer_scores([h for h, _ in passes], data))
            torch.testing.assert_close(mine[-1], per_layer[index])
        torch.testing.assert_close(torch.stack(mine).sum(0), scores)
        # layer 0's loss with the generator of a simultaneous step (one draw per step)
        first = [stack.layer_forward(0, x, ei) for x, ei in objective.passes(stack, data)]
        loss = objective.layer_loss(first, data, torch.Generator().manual_seed(4))
        step = objective.step_losses(stack, data, 0, torch.Generator().manual_seed(4))
        torch.testing.assert_close(loss, step["layer0"])


@pytest.mark.parametrize("variant", LAYERWISE)
def test_layerwise_variants_beat_chance(data, variant):
    stack = build_stack(gcn, 8, [16, 16], variant=variant, task="node", num_classes=3)
    epochs = 40
    out = train_forward_node(stack, data, variant=variant, schedule="layerwise",
                             epochs=epochs, lr=0.03, seed=0)
    metrics = out["metrics"]
    assert metrics["test"]["accuracy"] > 0.6 and metrics["train"]["accuracy"] > 0.6  # 1/3
    assert [h["layer"] for h in out["history"]] == [0] * epochs + [1] * epochs
    assert len(out["selected_epoch"]) == 2
    for layer, selected in enumerate(out["selected_epoch"]):
        mine = [h for h in out["history"] if h["layer"] == layer]
        best = max(mine, key=lambda h: h["valid_accuracy"])  # first of the ties
        assert best["epoch"] == selected
    # the final stack scores as the last stage selected it
    assert metrics["valid"]["accuracy"] == pytest.approx(best["valid_accuracy"])


@pytest.mark.parametrize("variant", ["sf", "ff-virtual"])
def test_layerwise_caches_the_layer_below(data, variant):
    """While layer 1 trains, layer 0 never runs: its outputs were cached once per pass,
    without grad, and layer 1's inputs carry no graph."""
    stack = build_stack(gcn, 8, [8, 8], variant=variant, task="node", num_classes=3)
    calls = {"layer0": 0, "with_grad": 0}
    seen_by_layer1, inputs_of_layer1 = [], []

    def on_layer0(module, args, output):
        calls["layer0"] += 1
        calls["with_grad"] += int(torch.is_grad_enabled())

    def on_layer1(module, args):
        seen_by_layer1.append(calls["layer0"])
        inputs_of_layer1.append(args[0])

    stack.layers[0].register_forward_hook(on_layer0)
    stack.layers[1].register_forward_pre_hook(on_layer1)
    epochs, num_passes = 5, (1 if variant == "sf" else 3)
    train_forward_node(stack, data, variant=variant, schedule="layerwise", epochs=epochs,
                       seed=0)
    # layer 0's stage: `epochs` steps + `epochs` validations + one cached pass, per pass
    phase1 = (2 * epochs + 1) * num_passes
    during_stage1 = seen_by_layer1[: 2 * epochs * num_passes]
    assert during_stage1 == [phase1] * len(during_stage1)
    assert calls["with_grad"] == epochs * num_passes
    assert not any(x.requires_grad for x in inputs_of_layer1)


@pytest.mark.parametrize(("variant", "options", "match"), [
    ("ccl", {}, "'layerwise' is implemented for the node variants ff-label, ff-virtual, sf"),
    ("sf-topdown", {}, "not 'sf-topdown'"),
    ("backprop", {}, "not 'backprop'"),
    ("ff-label", {"label_context": "uniform"}, "needs label_context 'shared'"),
    ("sf", {"schedule": "greedy"}, "schedule must be one of layerwise, simultaneous"),
])
def test_layerwise_errors(data, variant, options, match):
    options = {"schedule": "layerwise", **options}
    with pytest.raises(ConfigError, match=match):
        train_forward_node([GCNConv(11, 8)], data, variant=variant, **options)
