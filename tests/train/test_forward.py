"""Layer-local forward learning (graphlearn.train.forward): losses, locality, training."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.nn import GATConv, GCNConv, SAGEConv

from graphlearn.data.link_split import random_link_split, sample_negative_edges
from graphlearn.errors import ConfigError
from graphlearn.train.forward import (
    VARIANTS,
    ForwardConfig,
    LayerLocalStack,
    build_stack,
    edge_representation,
    evaluate_link,
    ff_loss,
    goodness,
    in_batch_softmax_loss,
    list_schedules,
    list_variants,
    train_forward,
)

CONVS = {
    "gcn": lambda i, o: GCNConv(i, o),
    "sage": lambda i, o: SAGEConv(i, o),
    "gat": lambda i, o: GATConv(i, o, heads=1),
}


def communities(seed: int = 0, k: int = 4, size: int = 15, p_in: float = 0.5,
                p_out: float = 0.01, dim: int = 8) -> Data:
    """``k`` dense communities of ``size`` nodes, sparse in between; features =
    one-hot community + Gaussian noise (60 nodes by default)."""
    g = torch.Generator().manual_seed(seed)
    n = k * size
    comm = torch.arange(n) // size
    p = torch.where(comm[:, None] == comm[None, :], p_in, p_out)
    adj = torch.triu(torch.rand(n, n, generator=g) < p, diagonal=1)
    ei = adj.nonzero().t()
    x = 0.5 * torch.randn(n, dim, generator=g)
    x[torch.arange(n), comm] += 1.0
    return Data(x=x, edge_index=torch.cat([ei, ei.flip(0)], 1), num_nodes=n)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny graphs: one thread is faster and immune to a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def split():
    return random_link_split(communities(), val_ratio=0.16, test_ratio=0.20, seed=0)


def tiny_graph() -> tuple[Tensor, Tensor]:
    x = torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0], [2.0, 0.0, 1.0],
                      [0.0, 3.0, 1.0]])
    ei = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 4], [1, 0, 2, 1, 3, 2, 4, 3]])
    return x, ei


# --------------------------------------------------------------------------- hand-checked math


def test_goodness_and_edge_representation_by_hand():
    h = torch.tensor([[1.0, 2.0], [3.0, 0.5], [0.0, 1.0]])
    z = edge_representation(h, torch.tensor([[0, 1], [1, 2]]))
    assert torch.equal(z, torch.tensor([[3.0, 1.0], [0.0, 0.5]]))
    # (9 + 1) - 2 = 8 ; (0 + 0.25) - 2 = -1.75
    assert torch.allclose(goodness(z), torch.tensor([8.0, -1.75]))
    assert torch.allclose(goodness(z, theta=0.0), torch.tensor([10.0, 0.25]))


def test_ff_loss_by_hand():
    pos, neg = torch.tensor([3.0, -1.0]), torch.tensor([0.5])
    # BCE with logits: -log sigmoid(g) for positives, -log(1 - sigmoid(g)) for negatives.
    expected = (math.log1p(math.exp(-3.0)) + math.log1p(math.exp(1.0))
                + math.log1p(math.exp(0.5))) / 3
    assert ff_loss(pos, neg).item() == pytest.approx(expected, rel=1e-6)


def test_in_batch_softmax_loss_by_hand():
    h = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 0.0]])
    pos = torch.tensor([[0, 1], [2, 3]])  # edges (0, 2) and (1, 3)
    s = h[pos[0]] @ h[pos[1]].t()  # [[1, 2], [1, 0]]
    t = torch.arange(2)
    expected = (F.cross_entropy(s, t) + F.cross_entropy(s.t(), t)) / 2
    assert in_batch_softmax_loss(h, pos, batch_size=8).item() == pytest.approx(expected.item())
    # Batches of one: a lone candidate is always right, loss 0.
    assert in_batch_softmax_loss(h, pos, batch_size=1).item() == pytest.approx(0.0)


def test_in_batch_softmax_masks_the_same_node():
    # Edges (0, 2) and (1, 2) share the end point 2: 2 is not a negative of itself.
    h = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    pos = torch.tensor([[0, 1], [2, 2]])
    s = h[pos[0]] @ h[pos[1]].t()
    cols = F.cross_entropy(s.t(), torch.arange(2))  # v_i choosing among u's: no mask
    expected = (0.0 + cols.item()) / 2  # rows: the only other candidate is masked
    assert in_batch_softmax_loss(h, pos, batch_size=8).item() == pytest.approx(expected)


# --------------------------------------------------------------------------- locality


@pytest.mark.parametrize("conv", sorted(CONVS))
def test_layer_gradients_stay_local(conv):
    torch.manual_seed(0)
    x, ei = tiny_graph()
    stack = LayerLocalStack([CONVS[conv](3, 4), CONVS[conv](4, 4)])
    seen = []
    handle = stack.layers[1].register_forward_pre_hook(lambda m, args: seen.append(args[0]))

    def layer0_grads(layer1_loss):
        stack.zero_grad(set_to_none=True)
        h0, h1 = stack(x, ei)
        (h0.pow(2).sum() + layer1_loss(h1)).backward()
        return [p.grad.clone() for p in stack.layers[0].parameters()]

    base = layer0_grads(lambda h: h.sum())
    assert seen and not seen[-1].requires_grad  # layer 1's input is detached
    assert all(p.grad is not None for p in stack.layers[1].parameters() if p.requires_grad)
    other = layer0_grads(lambda h: (h - 3).pow(3).mean() * 100)
    # Sanity: without detaching, layer 1's loss does reach layer 0.
    stack.zero_grad(set_to_none=True)
    _, h1 = stack(x, ei, local=False)
    h1.sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in stack.layers[0].parameters())
    with torch.no_grad():
        for p in stack.layers[1].parameters():
            p.add_(torch.randn_like(p))
    perturbed = layer0_grads(lambda h: h.sum())
    for a, b, c in zip(base, other, perturbed):
        assert torch.equal(a, b) and torch.equal(a, c)
    handle.remove()


def test_layer_input_is_length_normalised():
    x, ei = tiny_graph()
    stack = LayerLocalStack([GCNConv(3, 4), GCNConv(4, 4)])
    seen = []
    stack.layers[0].register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    stack(x * 10.0, ei)
    assert torch.allclose(seen[0].norm(dim=-1), torch.ones(5), atol=1e-3)


@pytest.mark.parametrize(("variant", "same"), [("ff", True), ("backprop", False)])
def test_training_layer0_ignores_the_layers_above(split, variant, same):
    """Layer 0 trained alone or under a second layer ends identical (FF), not so end-to-end."""
    def layer0_after(depth):
        layers = [GCNConv(8, 8)] + [GCNConv(8, 8) for _ in range(depth - 1)]
        torch.manual_seed(1)
        for layer in layers:
            layer.reset_parameters()
        train_forward(layers, split, variant=variant, epochs=5, eval_every=5, reset=False)
        return [p.detach().clone() for p in layers[0].parameters()]

    one, two = layer0_after(1), layer0_after(2)
    assert all(torch.equal(a, b) for a, b in zip(one, two)) is same


# --------------------------------------------------------------------------- training


@pytest.mark.parametrize(("variant", "schedule"), [
    ("ff", "simultaneous"), ("ff", "layerwise"), ("sf", "simultaneous"),
    ("sf", "layerwise"), ("backprop", "simultaneous"), ("sf-topdown", "simultaneous"),
    ("ccl", "simultaneous"),
])
def test_variants_beat_chance(split, variant, schedule):
    stack = build_stack(lambda i, o: GCNConv(i, o), 8, [16, 16], variant=variant)
    out = train_forward(stack, split, variant=variant, schedule=schedule, epochs=40, lr=0.03,
                        seed=0)
    metrics = out["metrics"]
    assert metrics["test"]["auroc"] > 0.7
    assert metrics["valid"]["auroc"] > 0.7
    assert len(metrics["test"]["per_layer"]) == 2
    assert len(out["history"]) == 40 * (2 if schedule == "layerwise" else 1)
    # the trained stack evaluates the same afterwards (CCL's heads live in the stack)
    assert evaluate_link(stack, split.test, variant)["auroc"] == pytest.approx(
        metrics["test"]["auroc"])


def test_selection_uses_validation_and_final_metrics_match(split):
    layers = [GCNConv(8, 16), GCNConv(16, 16)]
    out = train_forward(layers, split, variant="ff", epochs=20, seed=3)
    best = max((h for h in out["history"] if "valid_auroc" in h), key=lambda h: h["valid_auroc"])
    assert out["selected_epoch"] == best["epoch"]
    stack = LayerLocalStack(layers)  # same modules, trained in place
    assert out["metrics"]["valid"]["auroc"] == pytest.approx(best["valid_auroc"])
    assert evaluate_link(stack, split.test, "ff")["auroc"] == pytest.approx(
        out["metrics"]["test"]["auroc"])


def test_same_seed_same_run(split):
    runs = [train_forward([GCNConv(8, 8), GCNConv(8, 8)], split, variant="sf", epochs=5,
                          seed=4)["metrics"]["test"]["auroc"] for _ in range(2)]
    assert runs[0] == runs[1]


def test_layerwise_caches_the_layer_below(split):
    """While layer 1 trains, layer 0 never runs: its outputs were cached once, without grad."""
    layers = [GCNConv(8, 8), GCNConv(8, 8)]
    calls = {"layer0": 0, "layer0_with_grad": 0}
    layer0_count_when_layer1_runs = []
    inputs_of_layer1 = []

    def on_layer0(module, args, output):
        calls["layer0"] += 1
        calls["layer0_with_grad"] += int(torch.is_grad_enabled())

    def on_layer1(module, args):
        layer0_count_when_layer1_runs.append(calls["layer0"])
        inputs_of_layer1.append(args[0])

    layers[0].register_forward_hook(on_layer0)
    layers[1].register_forward_pre_hook(on_layer1)
    epochs = 6
    out = train_forward(layers, split, variant="ff", schedule="layerwise", epochs=epochs,
                        seed=0)
    # Layer 0's phase: `epochs` training steps (with grad) + `epochs` validations +
    # one cached pass per split (3) = 2 * epochs + 3 calls, all before layer 1 runs.
    phase1 = 2 * epochs + 3
    during_layer1 = layer0_count_when_layer1_runs[: 2 * epochs + 3]
    assert during_layer1 == [phase1] * len(during_layer1)
    assert calls["layer0_with_grad"] == epochs
    assert not any(x.requires_grad for x in inputs_of_layer1)
    assert [h["layer"] for h in out["history"]] == [0] * epochs + [1] * epochs
    assert len(out["selected_epoch"]) == 2


# --------------------------------------------------------------------------- new variants


def _link_grads(stack, objective, train, pos, neg, k, change):
    """Gradients of layer groups k and k+1 (conv, plus CCL's feedback layer) from the
    summed local losses; ``change`` replaces layer k+1's loss ℓ by 7ℓ + ℓ²."""
    stack.zero_grad(set_to_none=True)
    losses, _ = objective.forward_losses(stack, train, pos, neg,
                                         torch.Generator().manual_seed(0))
    above = losses.pop(f"layer{k + 1}")
    total = sum(losses.values()) + (7 * above + above.pow(2) if change else above)
    total.backward()

    def group(j):
        params = list(stack.layers[j].parameters())
        if "feedback" in stack.heads:
            params += list(stack.heads["feedback"].layers[j].parameters())
        return [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in params]

    return group(k), group(k + 1)


@pytest.mark.parametrize("detach", [True, False])
@pytest.mark.parametrize("variant", ["sf-topdown", "ccl"])
def test_new_link_variants_stay_local(split, variant, detach, monkeypatch):
    if not detach:  # the same check must catch a stack whose inputs are not detached
        original = LayerLocalStack.prepare_input
        monkeypatch.setattr(LayerLocalStack, "prepare_input",
                            lambda self, x, detach=True: original(self, x, detach=False))
    torch.manual_seed(0)
    stack = build_stack(lambda i, o: GCNConv(i, o), 8, [8, 8, 8], variant=variant)
    objective = VARIANTS.get(variant).from_config(ForwardConfig(variant=variant,
                                                                sf_batch_size=16))
    train = split.train
    objective.setup(stack, train, reset=True)
    pos = train.edge_label_index
    neg = sample_negative_edges(train.edge_index, train.num_nodes, pos.size(1),
                                torch.Generator().manual_seed(0))
    if objective.topdown:  # one step first, so the top-down input is not zero
        objective.step_losses(stack, train, pos, neg, 0, torch.Generator().manual_seed(1))
    for k in (0, 1):
        base, base_above = _link_grads(stack, objective, train, pos, neg, k, change=False)
        other, other_above = _link_grads(stack, objective, train, pos, neg, k, change=True)
        assert any(g.abs().sum() > 0 for g in base)
        assert not all(torch.equal(a, b) for a, b in zip(base_above, other_above))
        assert all(torch.equal(a, b) for a, b in zip(base, other)) is detach


def test_link_topdown_updates_alternate(split):
    torch.manual_seed(0)
    stack = build_stack(lambda i, o: GCNConv(i, o), 8, [8, 8, 8], variant="sf-topdown")
    before = [[p.detach().clone() for p in layer.parameters()] for layer in stack.layers]
    train_forward(stack, split, variant="sf-topdown", epochs=1, reset=False)
    changed = [not all(torch.equal(a, p) for a, p in zip(old, layer.parameters()))
               for old, layer in zip(before, stack.layers)]
    assert changed == [True, False, True]  # step 0 updates the even layers only


def test_ccl_link_score_is_the_readout(split):
    stack = build_stack(lambda i, o: GCNConv(i, o), 8, [8, 8], variant="ccl")
    out = train_forward(stack, split, variant="ccl", epochs=3, seed=0)
    assert set(stack.heads) == {"feedback", "readout"}
    assert out["history"][0]["loss_terms"] == ["layer0", "layer1", "readout"]
    with torch.no_grad():
        stack.heads["readout"].weight.neg_()
        stack.heads["readout"].bias.neg_()
    flipped = evaluate_link(stack, split.test, "ccl")["auroc"]
    assert flipped == pytest.approx(1 - out["metrics"]["test"]["auroc"])


# --------------------------------------------------------------------------- errors


def test_registries_and_errors(split):
    assert list_variants() == ["backprop", "ccl", "ff", "sf", "sf-topdown"]
    assert list_variants("link") == list_variants()
    assert list_schedules() == ["layerwise", "simultaneous"]
    with pytest.raises(ConfigError, match="did you mean 'ff'"):
        train_forward([GCNConv(8, 8)], split, variant="fff")
    with pytest.raises(ConfigError, match="only schedule='simultaneous'"):
        train_forward([GCNConv(8, 8)], split, variant="backprop", schedule="layerwise")
    with pytest.raises(ConfigError, match="epochs must be a positive integer"):
        train_forward([GCNConv(8, 8)], split, epochs=0)
    with pytest.raises(ConfigError, match="only schedule='simultaneous'"):
        train_forward([GCNConv(8, 8)], split, variant="ccl", schedule="layerwise")
    with pytest.raises(ConfigError, match="needs a TopDownStack"):
        train_forward(LayerLocalStack([GCNConv(8, 8)]), split, variant="sf-topdown")
    with pytest.raises(ConfigError, match=r"layers\[0\] reads 8 channels but link variant "
                                          r"'sf-topdown' feeds it 16"):
        train_forward([GCNConv(8, 8), GCNConv(8, 8)], split, variant="sf-topdown")
    with pytest.raises(ConfigError, match="trained by train_forward"):
        evaluate_link(LayerLocalStack([GCNConv(8, 8)]), split.test, "ccl")
    with pytest.raises(ValueError, match="at least one module"):
        LayerLocalStack([])


# --------------------------------------------------------------------------- streamed steps


@pytest.mark.parametrize("variant", ["ff", "sf", "sf-topdown", "ccl", "backprop"])
def test_train_step_gradients_equal_one_backward_of_the_summed_losses(split, variant):
    """ff, sf and ccl stream layer by layer (forward, loss, backward, next layer); the
    others run the stack first. Either way the gradients are those of the summed step losses,
    bit for bit, with the random draws (negatives, SF batches) in the same order."""
    from graphlearn.train.forward.link import _objective

    train = split[0]
    cfg = ForwardConfig(variant=variant, epochs=1, sf_batch_size=16)
    objective = _objective(cfg)
    assert objective.streams == (variant in ("ff", "sf", "ccl"))
    stack = build_stack(lambda i, o: GCNConv(i, o), train.x.size(1), [8, 8, 8],
                        variant=variant)
    torch.manual_seed(0)
    stack.reset_parameters()
    objective.setup(stack, train, reset=True)
    pos = train.edge_label_index
    neg = sample_negative_edges(train.edge_index, train.num_nodes, pos.size(1),
                                torch.Generator().manual_seed(1))

    def grads(streamed: bool) -> tuple[list[Tensor], list[float]]:
        stack.zero_grad(set_to_none=True)
        generator = torch.Generator().manual_seed(2)
        if streamed:
            losses = objective.train_step(stack, train, pos, neg, 0, generator)
        else:
            terms = objective.step_losses(stack, train, pos, neg, 0, generator)
            torch.stack(list(terms.values())).sum().backward()
            losses = {k: v.detach() for k, v in terms.items()}
        return ([p.grad.clone() if p.grad is not None else None for p in stack.parameters()],
                [float(v) for v in losses.values()])

    if objective.topdown:
        objective.load_state_dict({"top": None})
    summed, summed_losses = grads(False)
    if objective.topdown:
        objective.load_state_dict({"top": None})
    streamed, streamed_losses = grads(True)
    assert streamed_losses == summed_losses
    for a, b in zip(summed, streamed):
        assert (a is None and b is None) or torch.equal(a, b)
