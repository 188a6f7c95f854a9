"""BellmanFordGraph and GeneralizedRelationalConv on hand-checkable graphs."""

from __future__ import annotations

import copy
import math

import networkx as nx
import pytest
import torch
from torch_geometric.data import Data

from graphlearn.errors import ConfigError
from graphlearn.nn import BellmanFordGraph, GeneralizedRelationalConv, list_aggregations

F64 = torch.float64

# 5 nodes, 2 relations, edges (source, target, relation): node 0 has no in-edge,
# node 4 is isolated, 1 -> 2 appears twice (relations 0 and 1).
# in-degrees: [0, 1, 4, 1, 0]  ->  degree with the boundary self-loop: [1, 2, 5, 2, 1]
NUM_NODES, NUM_RELATIONS = 5, 2
EDGES = [(0, 1, 0), (0, 2, 1), (1, 2, 0), (3, 2, 1), (2, 3, 0), (1, 2, 1)]
EDGE_INDEX = torch.tensor([[s, t] for s, t, _ in EDGES]).t()
EDGE_TYPE = torch.tensor([r for _, _, r in EDGES])

MESSAGE_NAMES = ["transe", "distmult", "rotate"]
AGGREGATE_NAMES = ["sum", "mean", "max", "min", "pna"]


@pytest.fixture(scope="module")
def _extensions_dir(request) -> str:
    """The fused CPU kernel builds into the same persistent folder as tests/ops uses."""
    return str(request.config.cache.mkdir("graphlearn_torch_extensions"))


@pytest.fixture(autouse=True)
def _persistent_extensions(_extensions_dir, monkeypatch):
    monkeypatch.setenv("GRAPHLEARN_EXTENSIONS_DIR", _extensions_dir)


def _need(backend: str) -> None:
    if backend == "cpu":
        from graphlearn.ops.cpu import cpu_extension_error, load_cpu_extension

        if load_cpu_extension() is None:
            pytest.skip(f"fused CPU kernel unavailable: {cpu_extension_error()}")


def _graph() -> BellmanFordGraph:
    return BellmanFordGraph.build(EDGE_INDEX, EDGE_TYPE, NUM_NODES, NUM_RELATIONS)


# -- BellmanFordGraph ---------------------------------------------------------------------


def test_degree_counts_in_edges_plus_the_self_loop():
    graph = _graph()
    assert graph.degree.tolist() == [1.0, 2.0, 5.0, 2.0, 1.0]
    assert (graph.num_nodes, graph.num_relations, graph.num_edges) == (5, 2, 6)
    ext = graph.graph
    assert (ext.num_nodes, ext.num_relations, ext.num_edges) == (10, 3, 11)
    # the boundary rows V..2V-1 only send: the V node rows are the only targets
    assert ext.num_targets == NUM_NODES
    assert ext.in_degree.tolist() == [1, 2, 5, 2, 1]
    assert ext.out_degree[NUM_NODES:].tolist() == [1] * NUM_NODES


def test_self_loops_carry_relation_r_and_real_edges_keep_theirs():
    ext = _graph().graph
    src, dst = ext.edge_index()
    triples = sorted(zip(src.tolist(), dst.tolist(), ext.edge_type.tolist()))
    loops = [(v + NUM_NODES, v, NUM_RELATIONS) for v in range(NUM_NODES)]
    assert triples == sorted(EDGES + loops)


def test_log_degree_ratio_by_hand():
    graph = _graph()
    mean = (0 + math.log(2) + math.log(5) + math.log(2) + 0) / 5
    expected = [0.0, math.log(2) / mean, math.log(5) / mean, math.log(2) / mean, 0.0]
    torch.testing.assert_close(graph.log_degree_ratio.double(),
                               torch.tensor(expected, dtype=F64), rtol=1e-6, atol=1e-7)


def test_log_degree_ratio_is_zero_without_edges():
    graph = BellmanFordGraph.build(torch.zeros(2, 0, dtype=torch.long), None, num_nodes=4)
    assert graph.degree.tolist() == [1.0] * 4
    assert graph.log_degree_ratio.tolist() == [0.0] * 4
    assert graph.num_relations == 1


@pytest.mark.parametrize("weight", [None, torch.tensor([1.0, 0.5, 2.0, 1.0, 3.0, 0.0])])
def test_full_edge_weight_appends_one_per_self_loop(weight):
    full = _graph().full_edge_weight(weight)
    if weight is None:
        assert full is None
    else:
        assert full.shape == (6 + 5,)
        assert full.tolist() == weight.tolist() + [1.0] * 5


@pytest.mark.parametrize("shape", [(11,), (5,), (6, 1)])
def test_full_edge_weight_rejects_wrong_shapes(shape):
    with pytest.raises(ValueError, match=r"edge_weight must have shape \[6\]"):
        _graph().full_edge_weight(torch.ones(shape))


def test_build_rejects_edge_types_out_of_range():
    with pytest.raises(ValueError, match=r"edge types must lie in \[0, 1\)"):
        BellmanFordGraph.build(EDGE_INDEX, EDGE_TYPE, NUM_NODES, num_relations=1)
    with pytest.raises(ValueError, match=r"\[2, E\]"):
        BellmanFordGraph.build(EDGE_INDEX.t(), EDGE_TYPE, NUM_NODES)


def test_from_data_caches_and_rebuilds_on_change():
    data = Data(edge_index=EDGE_INDEX.clone(), edge_type=EDGE_TYPE.clone(), num_nodes=NUM_NODES)
    first = BellmanFordGraph.from_data(data, num_relations=NUM_RELATIONS)
    assert BellmanFordGraph.from_data(data, num_relations=NUM_RELATIONS) is first
    # a new edge_index tensor (one edge fewer: drop 0 -> 1)
    data.edge_index = EDGE_INDEX[:, 1:].clone()
    data.edge_type = EDGE_TYPE[1:].clone()
    second = BellmanFordGraph.from_data(data, num_relations=NUM_RELATIONS)
    assert second is not first and second.num_edges == 5
    assert second.degree.tolist() == [1.0, 1.0, 5.0, 2.0, 1.0]
    # an in-place change of edge_index: 2 -> 3 becomes 2 -> 4
    data.edge_index[1, 3] = 4
    third = BellmanFordGraph.from_data(data, num_relations=NUM_RELATIONS)
    assert third is not second
    assert third.degree.tolist() == [1.0, 1.0, 5.0, 1.0, 2.0]
    # another relation count is another graph
    fourth = BellmanFordGraph.from_data(data, num_relations=4)
    assert fourth is not third and fourth.num_relations == 4
    assert BellmanFordGraph.from_data(data, num_relations=4) is fourth


# -- the layer as a hand-set Bellman-Ford iteration -----------------------------------------


def _hand_layer(message: str, aggregate: str, rel, backend: str,
                dim: int = 1) -> GeneralizedRelationalConv:
    """A layer whose output is its aggregate: linear = [0 | I], relation table ``rel``."""
    rel = torch.as_tensor(rel, dtype=F64).view(-1, dim)
    layer = GeneralizedRelationalConv(dim, dim, rel.size(0), message=message,
                                      aggregate=aggregate, layer_norm=False,
                                      activation="none", dependent=False,
                                      backend=backend).double()
    with torch.no_grad():
        layer.linear.weight.copy_(torch.cat([torch.zeros(dim, dim), torch.eye(dim)], dim=1))
        layer.linear.bias.zero_()
        layer.relation.weight.copy_(rel)
    return layer


# one layer, d = 1, B = 1: x = [1..5], boundary = [0.5, -1, 0, 3, -2], r0 = 2, r1 = -1.
# distmult messages (x_j * w_r), self-loop message = boundary:
#   node 0 {0.5}  node 1 {2, -1}  node 2 {-1, 4, -4, -2, 0}  node 3 {6, 3}  node 4 {-2}
# transe messages (x_j + w_r):
#   node 0 {0.5}  node 1 {3, -1}  node 2 {0, 4, 3, 1, 0}     node 3 {5, 3}  node 4 {-2}
ONE_LAYER = {
    ("distmult", "sum"): [0.5, 1.0, -3.0, 9.0, -2.0],
    ("distmult", "mean"): [0.5, 0.5, -0.6, 4.5, -2.0],
    ("distmult", "max"): [0.5, 2.0, 4.0, 6.0, -2.0],
    ("distmult", "min"): [0.5, -1.0, -4.0, 3.0, -2.0],
    ("transe", "sum"): [0.5, 2.0, 8.0, 8.0, -2.0],
    ("transe", "mean"): [0.5, 1.0, 1.6, 4.0, -2.0],
    ("transe", "max"): [0.5, 3.0, 4.0, 5.0, -2.0],
    ("transe", "min"): [0.5, -1.0, 0.0, 3.0, -2.0],
}


@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("case", sorted(ONE_LAYER), ids="-".join)
def test_one_layer_by_hand(case, backend):
    _need(backend)
    message, aggregate = case
    layer = _hand_layer(message, aggregate, [2.0, -1.0], backend)
    x = torch.arange(1.0, 6.0, dtype=F64).view(5, 1, 1)
    boundary = torch.tensor([0.5, -1.0, 0.0, 3.0, -2.0], dtype=F64).view(5, 1, 1)
    out = layer(x, torch.zeros(1, 1, dtype=F64), boundary, _graph())
    assert out.shape == (5, 1, 1)
    assert out.view(-1).tolist() == pytest.approx(ONE_LAYER[case])


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_edge_weight_scales_messages_not_the_boundary(backend):
    _need(backend)
    layer = _hand_layer("distmult", "sum", [2.0, -1.0], backend)
    x = torch.arange(1.0, 6.0, dtype=F64).view(5, 1, 1)
    boundary = torch.tensor([0.5, -1.0, 0.0, 3.0, -2.0], dtype=F64).view(5, 1, 1)
    weight = torch.tensor([1.0, 0.5, 2.0, 1.0, 3.0, 0.0], dtype=F64)
    out = layer(x, torch.zeros(1, 1, dtype=F64), boundary, _graph(), weight)
    # node 1: 1*2 - 1;  node 2: 0.5*(-1) + 2*4 + 1*(-4) + 0*(-2) + 0;  node 3: 3*6 + 3
    assert out.view(-1).tolist() == pytest.approx([0.5, 1.0, 3.5, 21.0, -2.0])


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_rotate_message_is_a_complex_product(backend):
    _need(backend)
    # r0 = i, r1 = -1 (real halves first: [re, im])
    layer = _hand_layer("rotate", "sum", [[0.0, 1.0], [-1.0, 0.0]], backend, dim=2)
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [5.0, 5.0], [1.0, 1.0], [7.0, 7.0]],
                     dtype=F64).view(5, 1, 2)  # 1, 2i, ., 1+i, .
    boundary = torch.zeros(5, 1, 2, dtype=F64)
    boundary[2, 0] = torch.tensor([0.25, 0.5], dtype=F64)
    out = layer(x, torch.zeros(1, 2, dtype=F64), boundary, _graph()).view(5, 2)
    # node 1: i * 1 = i;  node 2: -1 + i*2i + -(1+i) + -(2i) + (0.25 + 0.5i) = -3.75 - 2.5i
    assert out[1].tolist() == pytest.approx([0.0, 1.0])
    assert out[2].tolist() == pytest.approx([-3.75, -2.5])
    assert out[0].tolist() == [0.0, 0.0]  # only its (zero) boundary


# adjacency by hand (row = source): 1 -> 2 twice, once per relation
ADJACENCY = torch.tensor([[0, 1, 1, 0, 0],
                          [0, 0, 2, 0, 0],
                          [0, 0, 0, 1, 0],
                          [0, 0, 1, 0, 0],
                          [0, 0, 0, 0, 0]], dtype=F64)


@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("rel", [[1.0, 1.0], [1.0, 3.0]], ids=["counts", "weighted"])
@pytest.mark.parametrize("steps", [1, 2, 3, 4])
def test_sum_distmult_iteration_counts_walks(steps, rel, backend):
    """x^(t+1) = A^T x^(t) + b from x^(0) = b = e_h: walks of length <= t from h."""
    _need(backend)
    layer = _hand_layer("distmult", "sum", rel, backend)
    # one query per source node: boundary[v, h] = 1 if v == h
    boundary = torch.eye(NUM_NODES, dtype=F64).view(NUM_NODES, NUM_NODES, 1)
    query = torch.zeros(NUM_NODES, 1, dtype=F64)
    graph = _graph()
    x = boundary
    for _ in range(steps):
        x = layer(x, query, boundary, graph)
    walks = x.view(NUM_NODES, NUM_NODES).t()  # [source, target]
    # relation-weighted adjacency: W[j, i] = sum of w_r over edges j -> i
    weighted = torch.zeros(NUM_NODES, NUM_NODES, dtype=F64)
    for s, t, r in EDGES:
        weighted[s, t] += rel[r]
    if rel == [1.0, 1.0]:
        assert torch.equal(weighted, ADJACENCY)
    expected = sum(torch.linalg.matrix_power(weighted, k) for k in range(steps + 1))
    torch.testing.assert_close(walks, expected)
    if steps == 3 and rel == [1.0, 1.0]:
        # by hand: from 0, to 2: 0-2, 0-1-2 (x2), 0-2-3-2; to 3: 0-2-3, 0-1-2-3 (x2)
        assert walks[0].tolist() == [1.0, 1.0, 4.0, 3.0, 0.0]
        # from 2: to 2: (empty), 2-3-2; to 3: 2-3, 2-3-2-3
        assert walks[2].tolist() == [0.0, 0.0, 2.0, 2.0, 0.0]


# 6 nodes, relation lengths r0 = 1, r1 = 4, r2 = 2.5; node 5 only has an out-edge.
LENGTHS = [1.0, 4.0, 2.5]
WEIGHTED_EDGES = [(0, 1, 0), (1, 2, 0), (0, 2, 1), (2, 3, 2), (1, 3, 1), (3, 4, 0),
                  (5, 0, 0), (4, 1, 1)]
FAR = 1e4


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_transe_min_iteration_is_shortest_paths(backend):
    _need(backend)
    num_nodes = 6
    edge_index = torch.tensor([[s, t] for s, t, _ in WEIGHTED_EDGES]).t()
    edge_type = torch.tensor([r for _, _, r in WEIGHTED_EDGES])
    graph = BellmanFordGraph.build(edge_index, edge_type, num_nodes, len(LENGTHS))
    layer = _hand_layer("transe", "min", LENGTHS, backend)
    # one query per source: 0 at the source, "infinity" elsewhere (re-injected every layer)
    boundary = torch.full((num_nodes, num_nodes), FAR, dtype=F64).fill_diagonal_(0.0)
    boundary = boundary.view(num_nodes, num_nodes, 1)
    query = torch.zeros(num_nodes, 1, dtype=F64)
    x = boundary
    for _ in range(num_nodes - 1):
        x = layer(x, query, boundary, graph)
    dist = x.view(num_nodes, num_nodes).t()  # [source, target]
    # by hand from 0: 0 -> 1 (1), 0 -> 1 -> 2 (2, not 4 direct), 0 -> 1 -> 2 -> 3 (4.5, not 5),
    # then 3 -> 4 (5.5); 5 is unreachable
    assert dist[0].tolist() == [0.0, 1.0, 2.0, 4.5, 5.5, FAR]
    nx_graph = nx.MultiDiGraph()
    nx_graph.add_nodes_from(range(num_nodes))
    nx_graph.add_weighted_edges_from((s, t, LENGTHS[r]) for s, t, r in WEIGHTED_EDGES)
    for source, lengths in nx.all_pairs_dijkstra_path_length(nx_graph):
        expected = [lengths.get(t, FAR) for t in range(num_nodes)]
        assert dist[source].tolist() == pytest.approx(expected), source


# -- PNA against a straightforward re-implementation ----------------------------------------


def _message(name: str, x: torch.Tensor, rel: torch.Tensor) -> torch.Tensor:
    if name == "add":
        return x + rel
    if name == "mul":
        return x * rel
    x_re, x_im = x.chunk(2, dim=-1)
    r_re, r_im = rel.chunk(2, dim=-1)
    return torch.cat([x_re * r_re - x_im * r_im, x_re * r_im + x_im * r_re], dim=-1)


def _pna_reference(layer, x, query, boundary, edge_weight=None):
    """NBFNet's PNA update written out edge by edge: [x | f | f·s | f/s] with f = the
    [mean | max | min | std] of the messages plus the boundary self-loop."""
    num_nodes, batch, dim = x.shape
    if layer.dependent:
        rel = layer.relation_linear(query).view(batch, NUM_RELATIONS, dim)
    else:
        rel = layer.relation.weight.unsqueeze(0).expand(batch, NUM_RELATIONS, dim)
    messages = [[boundary[i]] for i in range(num_nodes)]  # each [B, d]
    for e, (j, i, r) in enumerate(EDGES):
        m = _message(layer.message, x[j], rel[:, r])
        messages[i].append(m if edge_weight is None else edge_weight[e] * m)
    degree = torch.tensor([len(m) for m in messages], dtype=x.dtype)
    scale = degree.log() / degree.log().mean()
    rows = []
    for i in range(num_nodes):
        m = torch.stack(messages[i])  # (n, B, d)
        mean = m.mean(0)
        std = torch.sqrt(torch.relu((m * m).mean(0) - mean * mean) + 1e-5)
        f = torch.cat([mean, m.amax(0), m.amin(0), std], dim=-1)  # (B, 4d)
        rows.append(torch.cat([x[i], f, f * scale[i], f / scale[i].clamp(min=1e-2)], dim=-1))
    out = layer.linear(torch.stack(rows))  # (V, B, 13d) -> (V, B, out)
    if layer.layer_norm is not None:
        out = layer.layer_norm(out)
    return layer.activation(out)


@pytest.mark.parametrize("post", ["plain", "norm_tanh"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dependent", [False, True])
@pytest.mark.parametrize("message", MESSAGE_NAMES)
def test_pna_matches_the_concatenated_update(message, dependent, weighted, post):
    torch.manual_seed(0)
    dim, out_dim, batch = 2, 3, 2
    layer = GeneralizedRelationalConv(
        dim, out_dim, NUM_RELATIONS, message=message, aggregate="pna",
        layer_norm=post == "norm_tanh", activation="tanh" if post == "norm_tanh" else "none",
        dependent=dependent, backend="reference").double()
    assert layer.linear.in_features == 13 * dim
    with torch.no_grad():  # a non-trivial layer norm too
        if layer.layer_norm is not None:
            layer.layer_norm.weight.uniform_(0.5, 1.5)
            layer.layer_norm.bias.uniform_(-0.5, 0.5)
    x = torch.randn(NUM_NODES, batch, dim, dtype=F64)
    boundary = torch.randn(NUM_NODES, batch, dim, dtype=F64)
    query = torch.randn(batch, dim, dtype=F64)
    weight = torch.rand(len(EDGES), dtype=F64) + 0.5 if weighted else None
    got = layer(x, query, boundary, _graph(), weight)
    want = _pna_reference(layer, x, query, boundary, weight)
    assert got.shape == (NUM_NODES, batch, out_dim)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_pna_degree_scalers_matter():
    """Nodes 0 and 4 (degree 1: s = 0, 1/s clamped to 100) are fed by their boundary
    only, so with equal x and boundary they agree; node 1 (degree 2) differs."""
    torch.manual_seed(0)
    layer = GeneralizedRelationalConv(2, 3, NUM_RELATIONS, aggregate="pna", layer_norm=False,
                                      activation="none", dependent=False,
                                      backend="reference").double()
    x = torch.ones(NUM_NODES, 1, 2, dtype=F64)
    boundary = torch.ones(NUM_NODES, 1, 2, dtype=F64)
    with torch.no_grad():
        layer.relation.weight.fill_(1.0)  # every message is 1: equal stats everywhere
    out = layer(x, torch.zeros(1, 2, dtype=F64), boundary, _graph())
    torch.testing.assert_close(out[0], out[4])
    assert not torch.allclose(out[0], out[1], atol=1e-3)


# -- every backend computes the same function and gradients ------------------------------------


def _run_layer(layer, x, query, boundary, weight, seed=1):
    out = layer(x, query, boundary, _graph(), weight)
    grad_out = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed),
                           dtype=out.dtype)
    names = [n for n, _ in layer.named_parameters()]
    inputs = [x, query, boundary, weight, *layer.parameters()]
    grads = torch.autograd.grad(out, inputs, grad_out, allow_unused=True)
    return out.detach(), dict(zip(["x", "query", "boundary", "edge_weight", *names], grads))


@pytest.mark.parametrize("dependent", [False, True])
@pytest.mark.parametrize("aggregate", AGGREGATE_NAMES)
@pytest.mark.parametrize("message", MESSAGE_NAMES)
def test_cpu_backend_matches_reference(message, aggregate, dependent):
    _need("cpu")
    torch.manual_seed(0)
    dim, batch = 4, 3
    reference = GeneralizedRelationalConv(dim, 5, NUM_RELATIONS, message=message,
                                          aggregate=aggregate, dependent=dependent,
                                          backend="reference").double()
    fused = copy.deepcopy(reference)
    fused.backend = "cpu"
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(NUM_NODES, batch, dim, generator=gen, dtype=F64, requires_grad=True)
    boundary = torch.randn(NUM_NODES, batch, dim, generator=gen, dtype=F64, requires_grad=True)
    query = torch.randn(batch, dim, generator=gen, dtype=F64, requires_grad=True)
    weight = (torch.rand(len(EDGES), generator=gen, dtype=F64) + 0.5).requires_grad_()
    want_out, want = _run_layer(reference, x, query, boundary, weight)
    got_out, got = _run_layer(fused, x, query, boundary, weight)
    torch.testing.assert_close(got_out, want_out, rtol=1e-10, atol=1e-10)
    assert got.keys() == want.keys()
    for name in want:
        if want[name] is None:  # the query feeds nothing when not dependent
            assert got[name] is None and name == "query" and not dependent, name
            continue
        assert float(want[name].abs().sum()) > 0, f"{name}: zero gradient"
        torch.testing.assert_close(got[name], want[name], rtol=1e-10, atol=1e-10,
                                   msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize("aggregate", AGGREGATE_NAMES)
def test_cpu_backend_matches_reference_float32(aggregate):
    _need("cpu")
    torch.manual_seed(0)
    reference = GeneralizedRelationalConv(4, 4, NUM_RELATIONS, aggregate=aggregate,
                                          backend="reference")
    fused = copy.deepcopy(reference)
    fused.backend = "cpu"
    x = torch.randn(NUM_NODES, 2, 4, requires_grad=True)
    boundary = torch.randn(NUM_NODES, 2, 4, requires_grad=True)
    query = torch.randn(2, 4, requires_grad=True)
    weight = (torch.rand(len(EDGES)) + 0.5).requires_grad_()
    want_out, want = _run_layer(reference, x, query, boundary, weight)
    got_out, got = _run_layer(fused, x, query, boundary, weight)
    torch.testing.assert_close(got_out, want_out, rtol=1e-4, atol=1e-5)
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-4, atol=1e-5,
                                   msg=lambda m, name=name: f"{name}: {m}")


# -- configuration and errors -------------------------------------------------------------------


def test_registries_list_their_names():
    assert list_aggregations() == ["add", "max", "mean", "min", "pna", "sum"]


@pytest.mark.parametrize("aggregate,width", [("sum", 1), ("add", 1), ("mean", 1), ("max", 1),
                                             ("min", 1), ("PNA", 12)])
def test_linear_width_follows_the_aggregate(aggregate, width):
    layer = GeneralizedRelationalConv(3, 7, 4, aggregate=aggregate)
    assert layer.linear.in_features == (1 + width) * 3 and layer.linear.out_features == 7


def test_dependent_relations_come_from_the_query():
    layer = GeneralizedRelationalConv(4, 4, 3, dependent=True)
    assert layer.relation is None and layer.relation_linear.out_features == 3 * 4
    table = layer.relation_table(torch.randn(2, 4))
    assert table.shape == (3 + 1, 2 * 4)
    assert table[3].tolist() == [1.0] * 8  # distmult's identity for the self-loop
    layer = GeneralizedRelationalConv(4, 4, 3, message="rotate", dependent=False)
    assert layer.relation_linear is None
    assert layer.relation_table(torch.randn(2, 4))[3].tolist() == [1.0, 1.0, 0.0, 0.0]
    layer = GeneralizedRelationalConv(4, 4, 3, message="transe", dependent=False)
    assert layer.relation_table(torch.randn(2, 4))[3].tolist() == [0.0] * 4


def _layer_inputs(num_nodes=NUM_NODES, batch=2, dim=4):
    return (torch.randn(num_nodes, batch, dim), torch.randn(batch, dim),
            torch.randn(num_nodes, batch, dim))


def test_wrong_x_or_boundary_shape():
    layer = GeneralizedRelationalConv(4, 4, NUM_RELATIONS, backend="reference")
    x, query, boundary = _layer_inputs(dim=3)
    with pytest.raises(ValueError, match=r"must be \[V, B, 4\], got \(5, 2, 3\)"):
        layer(x, query, boundary, _graph())
    x, query, boundary = _layer_inputs()
    with pytest.raises(ValueError, match=r"got \(5, 2, 4\) and \(5, 1, 4\)"):
        layer(x, query, boundary[:, :1], _graph())


def test_graph_and_x_node_counts_must_match():
    layer = GeneralizedRelationalConv(4, 4, NUM_RELATIONS, backend="reference")
    x, query, boundary = _layer_inputs(num_nodes=6)
    with pytest.raises(ValueError, match="the graph has 5 nodes, x has 6"):
        layer(x, query, boundary, _graph())


def test_relation_counts_must_match():
    layer = GeneralizedRelationalConv(4, 4, 3, backend="reference")
    with pytest.raises(ValueError, match="the graph has 2 relations, the layer 3"):
        layer(*_layer_inputs(), _graph())


def test_edge_weight_shape_is_checked_through_the_layer():
    layer = GeneralizedRelationalConv(4, 4, NUM_RELATIONS, backend="reference")
    with pytest.raises(ValueError, match=r"edge_weight must have shape \[6\]"):
        layer(*_layer_inputs(), _graph(), torch.ones(7))


def test_rotate_needs_an_even_dim():
    with pytest.raises(ValueError, match="'rotate' needs an even input_dim, got 3"):
        GeneralizedRelationalConv(3, 4, 2, message="rotate")


def test_unknown_aggregate_lists_the_valid_names():
    with pytest.raises(ConfigError, match="unknown aggregate 'summ'; did you mean 'sum'") as err:
        GeneralizedRelationalConv(4, 4, 2, aggregate="summ")
    assert "valid: add, max, mean, min, pna, sum" in str(err.value)


@pytest.mark.parametrize("kwargs,error,match", [
    ({"message": "none"}, ValueError, "not a relational message"),
    ({"message": "complex"}, ConfigError, "unknown message 'complex'"),
    ({"activation": "swish"}, ConfigError, "unknown activation 'swish'"),
    ({"input_dim": 0}, ValueError, "input_dim must be a positive integer, got 0"),
    ({"num_relations": 1.5}, ValueError, "num_relations must be a positive integer"),
])
def test_bad_configuration_fails_loudly(kwargs, error, match):
    args = {"input_dim": 4, "output_dim": 4, "num_relations": 2, **kwargs}
    with pytest.raises(error, match=match):
        GeneralizedRelationalConv(**args)
