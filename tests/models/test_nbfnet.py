"""NBFNet and remove_query_edges on tiny hand-built knowledge graphs."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data

from graphlearn.errors import ConfigError
from graphlearn.models import NBFNet, build_model
from graphlearn.models.nbfnet import remove_query_edges
from graphlearn.nn import BellmanFordGraph

F64 = torch.float64

# 6 entities, 2 relations + their inverses (r + 2); entity 5 is isolated.
# 0 -r0-> 1 and 0 -r1-> 1: two relations between the same pair.
FORWARD = [(0, 0, 1), (0, 1, 1), (1, 0, 2), (2, 1, 3), (3, 0, 4), (4, 1, 0)]  # (h, r, t)
NUM_ENTITIES, NUM_RELATIONS = 6, 4


def _kg(triples=FORWARD, num_nodes=NUM_ENTITIES, inverses=True, base=2) -> Data:
    """A message graph of ``triples`` plus (when ``inverses``) each ``(t, r + base, h)``."""
    edges = [(h, t, r) for h, r, t in triples]
    if inverses:
        edges += [(t, h, r + base) for h, r, t in triples]
    return Data(edge_index=torch.tensor([[s, t] for s, t, _ in edges]).t().reshape(2, -1),
                edge_type=torch.tensor([r for _, _, r in edges], dtype=torch.long),
                num_nodes=num_nodes)


def _edges(data: Data) -> list[tuple[int, int, int]]:
    """``(source, target, relation)`` of every edge, sorted."""
    return sorted(zip(data.edge_index[0].tolist(), data.edge_index[1].tolist(),
                      data.edge_type.tolist()))


def _t(*values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.long)


# -- remove_query_edges ---------------------------------------------------------------------


def test_removes_the_query_edge_and_its_inverse_only():
    data = _kg()
    before = _edges(data)
    out = remove_query_edges(data, _t(0), _t(0), _t(1), NUM_RELATIONS)
    # (0, r0, 1) and (1, r0 + 2, 0) go; (0, r1, 1) and its inverse (1, r3, 0) stay
    assert sorted(set(before) - set(_edges(out))) == [(0, 1, 0), (1, 0, 2)]
    assert len(_edges(out)) == len(before) - 2
    assert (0, 1, 1) in _edges(out) and (1, 0, 3) in _edges(out)
    assert out.num_nodes == NUM_ENTITIES and out.num_relations == NUM_RELATIONS
    assert _edges(data) == before  # the input is not modified


def test_a_batch_removes_every_query():
    data = _kg()
    out = remove_query_edges(data, _t(0, 2), _t(0, 1), _t(1, 3), NUM_RELATIONS)
    assert sorted(set(_edges(data)) - set(_edges(out))) == [
        (0, 1, 0), (1, 0, 2), (2, 3, 1), (3, 2, 3)]


def test_an_inverse_query_removes_the_same_pair():
    data = _kg()
    forward = remove_query_edges(data, _t(0), _t(0), _t(1), NUM_RELATIONS)
    inverse = remove_query_edges(data, _t(1), _t(2), _t(0), NUM_RELATIONS)  # (1, r0^-1, 0)
    assert _edges(forward) == _edges(inverse)


def test_duplicate_query_edges_all_go():
    data = _kg(FORWARD + [(0, 0, 1)])
    out = remove_query_edges(data, _t(0), _t(0), _t(1), NUM_RELATIONS)
    assert (0, 1, 0) not in _edges(out) and (1, 0, 2) not in _edges(out)
    assert len(_edges(out)) == len(_edges(data)) - 4


def test_one_hop_removes_every_edge_between_the_pair():
    data = _kg()
    out = remove_query_edges(data, _t(0), _t(0), _t(1), NUM_RELATIONS, one_hop=True)
    assert sorted(set(_edges(data)) - set(_edges(out))) == [
        (0, 1, 0), (0, 1, 1), (1, 0, 2), (1, 0, 3)]
    assert len(_edges(out)) == len(_edges(data)) - 4


def test_one_hop_model_setting_is_used_by_remove_easy_edges():
    data = _kg()
    for one_hop, removed in ((False, 2), (True, 4)):
        model = NBFNet(NUM_RELATIONS, 4, [4], remove_one_hop=one_hop, backend="reference")
        out = model.remove_easy_edges(data, _t(0), _t(0), _t(1))
        assert len(_edges(out)) == len(_edges(data)) - removed


@pytest.mark.parametrize("typed", [True, False])
def test_odd_relation_count_is_its_own_inverse(typed):
    # undirected homogeneous graph: 0 - 1 - 2 - 3, each edge both ways, relation 0
    pairs = [(0, 1), (1, 2), (2, 3)]
    edges = pairs + [(t, s) for s, t in pairs]
    data = Data(edge_index=torch.tensor(edges).t(), num_nodes=4)
    if typed:
        data.edge_type = torch.zeros(len(edges), dtype=torch.long)
    index_before = data.edge_index.clone()
    out = remove_query_edges(data, _t(1), _t(0), _t(2), num_relations=1)
    kept = sorted(zip(out.edge_index[0].tolist(), out.edge_index[1].tolist()))
    assert kept == [(0, 1), (1, 0), (2, 3), (3, 2)]
    assert out.edge_type.tolist() == [0] * 4
    assert torch.equal(data.edge_index, index_before)
    assert ("edge_type" in data) == typed


# -- NBFNet --------------------------------------------------------------------------------


def _model(**kwargs) -> NBFNet:
    torch.manual_seed(0)
    args = {"input_dim": 4, "hidden_dims": [4, 4], "backend": "reference", **kwargs}
    return NBFNet(NUM_RELATIONS, **args).double()


HEAD, RELATION = _t(0, 2, 5), _t(0, 3, 1)
CANDIDATES = _t(1, 2, 0, 3, 4, 5).view(3, 2)


@pytest.mark.parametrize("aggregate", ["pna", "sum"])
def test_forward_and_score_all_tails_shapes_agree(aggregate):
    model = _model(aggregate=aggregate)
    data = _kg()
    scores = model(data, HEAD, RELATION, CANDIDATES)
    assert scores.shape == (3, 2)
    everything = model.score_all_tails(data, HEAD, RELATION)
    assert everything.shape == (3, NUM_ENTITIES)
    torch.testing.assert_close(scores, everything.gather(1, CANDIDATES))
    one = model(data, HEAD, RELATION, _t(4, 4, 4))  # 1-D candidates: one per query
    assert one.shape == (3, 1)
    torch.testing.assert_close(one[:, 0], everything[:, 4])
    # the scores depend on the query: not all tails or all queries score the same
    assert everything.std(dim=1).min() > 0 and everything.std(dim=0).max() > 0


def test_every_parameter_gets_a_gradient():
    model = _model()
    model(_kg(), _t(0, 1, 2, 3), _t(0, 1, 2, 3), _t(1, 2, 3, 4, 0, 1, 4, 5).view(4, 2)).sum() \
        .backward()
    names = [name for name, _ in model.named_parameters()]
    assert any(n.startswith("query.") for n in names)
    assert any(n.startswith("layers.1.relation_linear") for n in names)
    assert any(n.startswith("mlp.2.") for n in names)
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert float(param.grad.abs().sum()) > 0, name
    # every relation was queried, so every query-embedding row moves
    assert (model.query.weight.grad.abs().sum(dim=1) > 0).all()


@pytest.mark.parametrize("concat_hidden,width", [(False, 6 + 4), (True, 4 + 6 + 4)])
def test_concat_hidden_widens_the_readout(concat_hidden, width):
    model = _model(hidden_dims=[4, 6], concat_hidden=concat_hidden)
    assert model.mlp[0].in_features == width
    graph = model.message_graph(_kg())
    assert model.bellman_ford(graph, HEAD, RELATION).shape == (NUM_ENTITIES, 3, width)
    assert model(_kg(), HEAD, RELATION, CANDIDATES).shape == (3, 2)


def test_symmetric_scores_are_the_average_of_both_directions():
    model = _model(symmetric=True)
    data = _kg()
    head, relation, tail = _t(0, 2, 4), _t(1, 0, 3), _t(3, 5, 1)
    there = model(data, head, relation, tail.view(-1, 1))
    back = model(data, tail, relation, head.view(-1, 1))
    torch.testing.assert_close(there, back)
    # by hand: MLP of the mean of the h -> t and t -> h features
    graph = model.message_graph(data)
    rows = torch.arange(3)
    forward = model.bellman_ford(graph, head, relation)[tail, rows]
    backward = model.bellman_ford(graph, tail, relation)[head, rows]
    want = model.mlp((forward + backward) / 2).view(3, 1)
    torch.testing.assert_close(there, want)
    # the plain model is not symmetric on the same pairs
    plain = _model()
    assert not torch.allclose(plain(data, head, relation, tail.view(-1, 1)),
                              plain(data, tail, relation, head.view(-1, 1)))
    with pytest.raises(ValueError, match="symmetric=True"):
        model.score_all_tails(data, head, relation)


def test_symmetric_forward_with_several_candidates():
    model = _model(symmetric=True)
    data = _kg()
    many = model(data, HEAD, RELATION, CANDIDATES)
    assert many.shape == (3, 2)
    for j in range(2):
        single = model(data, HEAD, RELATION, CANDIDATES[:, j:j + 1])
        torch.testing.assert_close(many[:, j:j + 1], single)


def test_head_queries_need_the_inverse_edges():
    """(?, r0, 1) is asked as (1, r0 + 2, ?): the pass from 1 reaches 0 only through the
    inverse edge 1 -> 0. Without inverse edges, 0 has no in-edge and scores exactly like
    the isolated entity 3."""
    model = _model()
    triples = [(0, 0, 1), (1, 1, 2)]  # 0 -r0-> 1 -r1-> 2; entity 3 isolated
    full = _kg(triples, num_nodes=4)
    forward_only = _kg(triples, num_nodes=4, inverses=False)
    head, inverse = _t(1), _t(2)
    with torch.no_grad():
        with_inverse = model.score_all_tails(full, head, inverse)[0]
        without = model.score_all_tails(forward_only, head, inverse)[0]
        plain = model.score_all_tails(full, head, _t(0))
    torch.testing.assert_close(without[0], without[3])
    assert abs(float(with_inverse[0] - with_inverse[3])) > 1e-6
    assert abs(float(with_inverse[0] - without[0])) > 1e-6
    # r0 and its inverse are different queries
    assert not torch.allclose(plain, with_inverse[None])


@pytest.mark.parametrize("aggregate", ["pna", "sum"])
def test_relabelled_graph_gives_relabelled_scores(aggregate):
    """No entity embeddings: scores follow the nodes under a permutation."""
    model = _model(aggregate=aggregate)
    perm = _t(3, 0, 5, 1, 4, 2)  # old node v is new node perm[v]
    data = _kg()
    moved = Data(edge_index=perm[data.edge_index], edge_type=data.edge_type,
                 num_nodes=NUM_ENTITIES)
    old = model.score_all_tails(data, HEAD, RELATION)
    new = model.score_all_tails(moved, perm[HEAD], RELATION)
    torch.testing.assert_close(new[:, perm], old)


def test_scores_a_second_graph_with_more_nodes():
    """Inductive: the same model scores a graph with other entities; with degree-free
    aggregation an extra component leaves the scores of the first one unchanged."""
    model = _model(aggregate="sum")
    extra = _kg(FORWARD + [(6, 1, 7), (7, 0, 8)], num_nodes=9)
    old = model.score_all_tails(_kg(), HEAD, RELATION)
    new = model.score_all_tails(extra, HEAD, RELATION)
    assert new.shape == (3, 9)
    torch.testing.assert_close(new[:, :NUM_ENTITIES], old)
    pna = _model()
    scores = pna.score_all_tails(extra, _t(6, 0), _t(1, 2))
    assert scores.shape == (2, 9) and torch.isfinite(scores).all()
    assert pna(extra, _t(6), _t(1), _t(7, 8).view(1, 2)).shape == (1, 2)


def test_edge_weights_reach_every_layer():
    model = _model()
    graph = model.message_graph(_kg())
    weights = [torch.ones(graph.num_edges, dtype=F64, requires_grad=True) for _ in range(2)]
    feature = model.bellman_ford(graph, _t(0), _t(0), edge_weights=weights)
    model.mlp(feature[1]).sum().backward()
    for w in weights:
        assert w.grad is not None and float(w.grad.abs().sum()) > 0


def test_message_graph_is_cached_and_checked():
    model = _model()
    data = _kg()
    assert model.message_graph(data) is model.message_graph(data)
    two = BellmanFordGraph.build(data.edge_index, data.edge_type % 2, NUM_ENTITIES, 2)
    with pytest.raises(ValueError, match="has 2 relation types, the model was built for 4"):
        model.message_graph(two)


@pytest.mark.parametrize("head,relation,match", [
    (_t(6), _t(0), r"query entities must lie in \[0, 6\)"),
    (_t(-1), _t(0), r"query entities must lie in \[0, 6\)"),
    (_t(0), _t(4), r"query relations must lie in \[0, 4\)"),
])
def test_queries_out_of_range(head, relation, match):
    model = _model()
    with pytest.raises(ValueError, match=match):
        model(_kg(), head, relation, _t(1).view(1, 1))
    with pytest.raises(ValueError, match=match):
        model.score_all_tails(_kg(), head, relation)


@pytest.mark.parametrize("head,candidates", [
    (_t(0), _t(-1).view(1, 1)),     # a negative index would wrap to entity 5
    (_t(0), _t(6).view(1, 1)),      # out of range
    (_t(0, 1), _t(1, 2, 3).view(1, 3)),  # one row for two queries
], ids=["negative", "too_large", "rows_mismatch"])
def test_bad_candidates_fail_loudly(head, candidates):
    model = _model()
    with pytest.raises(ValueError, match="candidates"):
        model(_kg(), head, torch.zeros_like(head), candidates)


def test_build_model_from_a_config():
    model = build_model("nbfnet", {"hidden_dims": [8, 8], "input_dim": 8}, num_relations=4,
                        num_entities=17)
    assert isinstance(model, NBFNet)
    assert model.num_relations == 4 and model.hidden_dims == [8, 8]
    assert len(model.layers) == 2 and model.query.weight.shape == (4, 8)
    assert [layer.output_dim for layer in model.layers] == [8, 8]


@pytest.mark.parametrize("hidden_dims", [[], [0], [8, -1], [True]])
def test_build_model_rejects_bad_hidden_dims(hidden_dims):
    with pytest.raises(ConfigError, match="hidden_dims must be a non-empty list"):
        build_model("nbfnet", {"hidden_dims": hidden_dims}, num_relations=4)


def test_build_model_suggests_the_key():
    with pytest.raises(ConfigError, match="did you mean 'hidden_dims'"):
        build_model("nbfnet", {"hidden_dim": [8]}, num_relations=4)


# d = 2, one layer of 3, R = 4, dependent, layer norm, 2-layer MLP over 3 + 2 features:
#   layer linear (k·2 -> 3) + layer norm (3 + 3) + relation_linear (2 -> 4·2)
#   + query (4·2) + mlp (5·5 + 5, 5·1 + 1)
#   pna: k = 13 -> 26·3 + 3 = 81;  sum: k = 2 -> 4·3 + 3 = 15
@pytest.mark.parametrize("aggregate,linear", [("pna", 81), ("sum", 15)])
def test_parameter_count_by_hand(aggregate, linear):
    model = NBFNet(4, input_dim=2, hidden_dims=[3], aggregate=aggregate)
    total = linear + 6 + (2 * 8 + 8) + 8 + (30 + 6)
    assert sum(p.numel() for p in model.parameters()) == total
    if aggregate == "pna":
        assert model.layers[0].linear.in_features == 13 * 2


def test_pna_linear_width_per_layer():
    model = NBFNet(4, input_dim=2, hidden_dims=[3, 5])
    assert [layer.linear.in_features for layer in model.layers] == [13 * 2, 13 * 3]
    assert [layer.linear.out_features for layer in model.layers] == [3, 5]


# -- self-loops (TorchDrug's homogeneous graphs) ----------------------------------------

def _path_graph() -> Data:
    """0 - 1 - 2 - 3, both directions, one relation."""
    src = torch.tensor([0, 1, 1, 2, 2, 3])
    dst = torch.tensor([1, 0, 2, 1, 3, 2])
    return Data(edge_index=torch.stack([src, dst]), num_nodes=4, num_relations=1)


def test_self_loops_append_one_loop_per_node_of_relation_zero():
    model = NBFNet(1, input_dim=4, hidden_dims=[4, 4], dependent=False, self_loops=True,
                   backend="reference")
    data = _path_graph()
    looped = model.graph_data(data)
    assert looped.edge_index[:, :6].tolist() == data.edge_index.tolist()
    assert looped.edge_index[:, 6:].tolist() == [[0, 1, 2, 3], [0, 1, 2, 3]]
    assert model.graph_data(data) is looped  # cached
    graph = model.message_graph(data)
    assert graph.num_edges == 10
    # PNA degree counts the loop: node 0 has one neighbour, its loop and the boundary
    assert graph.degree.tolist() == [3.0, 4.0, 4.0, 3.0]
    plain = NBFNet(1, input_dim=4, hidden_dims=[4, 4], dependent=False, backend="reference")
    assert plain.graph_data(data) is data and plain.message_graph(data).num_edges == 6


def test_self_loops_change_the_scores_like_explicit_loops():
    torch.manual_seed(0)
    model = NBFNet(1, input_dim=4, hidden_dims=[4, 4], dependent=False, self_loops=True,
                   backend="reference")
    plain = NBFNet(1, input_dim=4, hidden_dims=[4, 4], dependent=False, backend="reference")
    plain.load_state_dict(model.state_dict())
    data = _path_graph()
    nodes = torch.arange(4)
    explicit = Data(edge_index=torch.cat([data.edge_index, torch.stack([nodes, nodes])], 1),
                    num_nodes=4, num_relations=1)
    head, rel, cand = torch.tensor([0]), torch.tensor([0]), torch.tensor([[1, 2, 3]])
    looped = model(data, head, rel, cand)
    assert torch.allclose(looped, plain(explicit, head, rel, cand))
    assert not torch.allclose(looped, plain(data, head, rel, cand))


def test_self_loops_only_for_homogeneous_graphs():
    with pytest.raises(ValueError, match="self_loops is for homogeneous graphs"):
        NBFNet(4, self_loops=True)


# -- checkpoint_layers -----------------------------------------------------------------------


@pytest.fixture
def fused_kernel_dir(request, monkeypatch):
    """The fused CPU kernel builds once into .pytest_cache (as in tests/ops)."""
    monkeypatch.setenv("GRAPHLEARN_EXTENSIONS_DIR",
                       str(request.config.cache.mkdir("graphlearn_torch_extensions")))


def _scores_and_grads(model, graph, weights=None):
    feature = model.bellman_ford(graph, _t(0, 2, 5), _t(0, 3, 1), edge_weights=weights)
    loss = (model.mlp(feature).squeeze(-1) * torch.linspace(-1, 1, NUM_ENTITIES,
                                                            dtype=F64).view(-1, 1)).sum()
    loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    if weights is not None:
        grads.update({f"edge_weight{i}": w.grad.clone() for i, w in enumerate(weights)})
    return feature.detach(), grads


def _saved_bytes(model, graph) -> int:
    """Bytes of the tensors autograd keeps for backward from one forward pass (those
    a checkpointed layer saves for itself are recomputed, not kept)."""
    total = 0

    def pack(tensor):
        nonlocal total
        total += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model.bellman_ford(graph, _t(0, 2, 5), _t(0, 3, 1)).sum()
    return total


@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("aggregate", ["pna", "sum", "max"])
def test_checkpoint_layers_gives_the_same_scores_and_gradients(backend, aggregate,
                                                               fused_kernel_dir):
    if backend == "cpu":
        from graphlearn.ops.cpu import cpu_extension_error, load_cpu_extension

        if load_cpu_extension() is None:
            pytest.skip(f"fused CPU kernel unavailable: {cpu_extension_error()}")
    plain = _model(aggregate=aggregate, backend=backend, hidden_dims=[4, 4, 4])
    kept = _model(aggregate=aggregate, backend=backend, hidden_dims=[4, 4, 4],
                  checkpoint_layers=True)
    graph = plain.message_graph(_kg())
    weights = [[torch.rand(graph.num_edges, dtype=F64, generator=torch.Generator()
                           .manual_seed(i)).requires_grad_() for i in range(3)]
               for _ in range(2)]
    feature, grads = _scores_and_grads(plain, graph, weights[0])
    feature_ckpt, grads_ckpt = _scores_and_grads(kept, graph, weights[1])
    torch.testing.assert_close(feature_ckpt, feature, rtol=0, atol=1e-12)
    assert grads_ckpt.keys() == grads.keys()
    for name, grad in grads.items():
        assert float(grad.abs().sum()) > 0, name
        torch.testing.assert_close(grads_ckpt[name], grad, rtol=0, atol=1e-12, msg=name)
    # and the point of it: fewer tensors kept between forward and backward
    assert _saved_bytes(kept, graph) < _saved_bytes(plain, graph) / 2


def test_checkpoint_layers_is_a_training_option_only():
    model = _model(checkpoint_layers=True)
    graph = model.message_graph(_kg())
    with torch.no_grad():  # evaluation: nothing to recompute, the plain pass
        scores = model.score_all_tails(graph, HEAD, RELATION)
    torch.testing.assert_close(scores, _model().score_all_tails(graph, HEAD, RELATION).detach())
    cfg_model = build_model("nbfnet", {"checkpoint_layers": True}, num_relations=4)
    assert cfg_model.checkpoint_layers is True
