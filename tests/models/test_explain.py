"""Path explanations (graphlearn.models.explain) on tiny hand-built graphs."""

import itertools

import pytest
import torch
from torch_geometric.data import Data

from graphlearn.data.kg import INVERSE_SUFFIX
from graphlearn.models.explain import (
    Explanation,
    ScoredPath,
    edge_importance,
    explain,
    format_explanation,
    format_path,
    path_text,
    top_paths,
)
from graphlearn.models.nbfnet import NBFNet

BACKENDS = ["reference", "cpu"]


@pytest.fixture(scope="module")
def _extensions_dir(request):
    """The fused CPU kernel builds once into .pytest_cache (as in tests/ops)."""
    return str(request.config.cache.mkdir("graphlearn_torch_extensions"))


@pytest.fixture(autouse=True)
def _persistent_extensions(_extensions_dir, monkeypatch):
    monkeypatch.setenv("GRAPHLEARN_EXTENSIONS_DIR", _extensions_dir)

#: 6 nodes, 4 relation ids (2 relations and their inverses r + 2), edges in this order.
EDGES = [(0, 0, 1), (1, 1, 2), (2, 0, 5), (0, 1, 3), (3, 0, 5), (1, 2, 0), (2, 3, 1),
         (3, 1, 4), (4, 0, 5), (5, 2, 4)]


def hand_graph(edges=EDGES, num_nodes=6, num_relations=4):
    index = torch.tensor([[s for s, _, _ in edges], [t for _, _, t in edges]])
    return Data(edge_index=index, edge_type=torch.tensor([r for _, r, _ in edges]),
                num_nodes=num_nodes, num_relations=num_relations)


def small_nbfnet(backend, num_relations=4, **params):
    if backend == "cpu":
        from graphlearn.ops.cpu import _build

        if _build.load_cpu_extension() is None:
            pytest.skip(f"fused CPU kernel unavailable: {_build.cpu_extension_error()}")
    torch.manual_seed(0)
    params = {"input_dim": 8, "hidden_dims": [8, 8, 8], "backend": backend, **params}
    return NBFNet(num_relations, **params)


def score_with_weights(model, data, head, relation, tail, weights):
    graph = model.message_graph(data)
    feature = model.bellman_ford(graph, torch.tensor([head]), torch.tensor([relation]), weights)
    return float(model.mlp(feature[tail, 0]))


def all_walks(edges, importance, head, tail, max_length):
    """Brute force: every walk head -> tail (ending at its first arrival) with its best
    placement in strictly increasing layers; {edge sequence: (score, layers)}."""
    num_layers = len(importance)
    out = {}

    def extend(node, sequence):
        if sequence and node == tail:
            yield tuple(sequence)
            return
        if len(sequence) == max_length:
            return
        for index, (source, _, target) in enumerate(edges):
            if source == node:
                yield from extend(target, [*sequence, index])

    for ids in extend(head, []):
        for layers in itertools.combinations(range(1, num_layers + 1), len(ids)):
            score = sum(importance[layer - 1][e] for layer, e in zip(layers, ids))
            key = tuple(edges[e] for e in ids)
            if key not in out or score > out[key][0]:
                out[key] = (score, list(layers))
    return out


# ----------------------------------------------------------------------------------------
# edge importance
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_importance_shape_eval_mode_and_no_parameter_grads(backend):
    model = small_nbfnet(backend)
    model.train()
    importance = edge_importance(model, hand_graph(), 0, 0, 5)
    assert importance.shape == (3, len(EDGES)) and not importance.requires_grad
    assert model.training  # its mode is restored
    assert all(p.grad is None for p in model.parameters())
    # layer 1 only carries the head's boundary: edges not leaving node 0 have no effect
    leaves_head = torch.tensor([s == 0 for s, _, _ in EDGES])
    assert torch.all(importance[0, ~leaves_head] == 0)
    assert importance.abs().sum() > 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_importance_matches_finite_differences(backend):
    model = small_nbfnet(backend, aggregate="sum").double().eval()
    data = hand_graph()
    head, relation, tail = 0, 0, 5
    importance = edge_importance(model, data, head, relation, tail)
    eps = 1e-6
    with torch.no_grad():
        for layer, edge in [(1, 1), (2, 2), (1, 3), (2, 4)]:
            shifted = []
            for sign in (1.0, -1.0):
                weights = [torch.ones(len(EDGES), dtype=torch.float64) for _ in range(3)]
                weights[layer][edge] += sign * eps
                shifted.append(score_with_weights(model, data, head, relation, tail, weights))
            estimate = (shifted[0] - shifted[1]) / (2 * eps)
            assert importance[layer, edge].item() == pytest.approx(estimate, rel=1e-4,
                                                                   abs=1e-8)
    assert importance[1:].abs().sum() > 0


def test_importance_agrees_across_backends():
    data = hand_graph()
    reference = edge_importance(small_nbfnet("reference"), data, 0, 1, 4)
    fused = edge_importance(small_nbfnet("cpu"), data, 0, 1, 4)
    torch.testing.assert_close(fused, reference, rtol=1e-4, atol=1e-6)


def test_importance_rejects_bad_queries():
    model = small_nbfnet("reference")
    with pytest.raises(ValueError, match="relation 4 out of range"):
        edge_importance(model, hand_graph(), 0, 4, 5)
    with pytest.raises(ValueError, match="tail 6 out of range"):
        edge_importance(model, hand_graph(), 0, 0, 6)
    with pytest.raises(ValueError, match="symmetric"):
        edge_importance(small_nbfnet("reference", symmetric=True), hand_graph(), 0, 0, 5)


# ----------------------------------------------------------------------------------------
# beam search
# ----------------------------------------------------------------------------------------

#: A diamond with a long way round, 3 layers, edges in this order:
#: 0: 0->1   1: 1->3   2: 0->2   3: 2->3   4: 0->3   5: 1->2   6: 3->1 (leaves the tail)
DIAMOND = [(0, 0, 1), (1, 0, 3), (0, 1, 2), (2, 1, 3), (0, 2, 3), (1, 3, 2), (3, 0, 1)]
#: importance[layer - 1][edge], chosen so that every best placement is known by hand
DIAMOND_IMPORTANCE = [
    # 0->1  1->3  0->2  2->3  0->3  1->2  3->1
    [0.50, 0.00, 0.10, 0.00, 0.05, 0.00, 9.00],  # layer 1
    [0.20, 0.30, 0.40, 0.00, 0.10, 0.25, 9.00],  # layer 2
    [0.00, 0.60, 0.00, 0.35, 0.20, 0.00, 9.00],  # layer 3
]


def test_top_paths_hand_computed():
    """Every path and its best placement, worked out by hand:

    * 0->1->3: layers (1, 3) = 0.5 + 0.6 = 1.10 (better than (1, 2) 0.8 and (2, 3) 0.8)
    * 0->1->2->3: only (1, 2, 3) = 0.5 + 0.25 + 0.35 = 1.10, tie with the above:
      the lower edge sequence first, ((0,0,1), (1,0,3)) < ((0,0,1), (1,3,2), ...)
    * 0->2->3: (2, 3) = 0.4 + 0.35 = 0.75
    * 0->3: layer 3 = 0.20
    The edge 3->1 leaves the tail: its large importance never counts.
    """
    data = hand_graph(DIAMOND, num_nodes=4)
    importance = torch.tensor(DIAMOND_IMPORTANCE)
    paths = top_paths(importance, data.edge_index, data.edge_type, 0, 3, k=10)
    assert [p.edges for p in paths] == [
        [(0, 0, 1), (1, 0, 3)],
        [(0, 0, 1), (1, 3, 2), (2, 1, 3)],
        [(0, 1, 2), (2, 1, 3)],
        [(0, 2, 3)],
    ]
    assert [p.score for p in paths] == pytest.approx([1.10, 1.10, 0.75, 0.20])
    assert [p.layers for p in paths] == [[1, 3], [1, 2, 3], [2, 3], [3]]
    assert all(isinstance(p, ScoredPath) for p in paths)
    # k cuts the ordered list; max_length drops the 3-edge path
    assert top_paths(importance, data.edge_index, data.edge_type, 0, 3, k=2) == paths[:2]
    short = top_paths(importance, data.edge_index, data.edge_type, 0, 3, max_length=2)
    assert [p.edges for p in short] == [paths[0].edges, paths[2].edges, paths[3].edges]
    # 1-layer model: only the direct edge, at its layer-1 importance
    single = top_paths(importance[:1], data.edge_index, data.edge_type, 0, 3)
    assert single == [ScoredPath(pytest.approx(0.05), [(0, 2, 3)], [1])]


def test_top_paths_dedupes_parallel_edges_and_placements():
    # two copies of the edge 0->1 (same triple) and 1->2: one path, with its best score
    edges = [(0, 0, 1), (0, 0, 1), (1, 1, 2)]
    data = hand_graph(edges, num_nodes=3)
    importance = torch.tensor([[0.1, 0.3, 0.0], [0.2, 0.0, 0.1], [0.0, 0.0, 0.4]])
    paths = top_paths(importance, data.edge_index, data.edge_type, 0, 2, k=5)
    # best: copy 2 at layer 1 (0.3) + 1->2 at layer 3 (0.4)
    assert paths == [ScoredPath(pytest.approx(0.7), [(0, 0, 1), (1, 1, 2)], [1, 3])]


@pytest.mark.parametrize("seed", range(4))
def test_top_paths_equals_brute_force(seed):
    """Random importance on the 6-node graph (cycles included): the beam search is exact."""
    generator = torch.Generator().manual_seed(seed)
    importance = torch.randn(4, len(EDGES), generator=generator, dtype=torch.float64)
    data = hand_graph()
    for head, tail, max_length, k in [(0, 5, 4, 3), (0, 4, 4, 50), (1, 5, 3, 5), (0, 0, 4, 4)]:
        expected = all_walks(EDGES, importance.tolist(), head, tail, max_length)
        ranked = sorted(expected.items(), key=lambda item: (-item[1][0], item[0]))[:k]
        paths = top_paths(importance, data.edge_index, data.edge_type, head, tail, k=k,
                          max_length=max_length)
        assert [tuple(p.edges) for p in paths] == [key for key, _ in ranked]
        assert [p.score for p in paths] == pytest.approx([v[0] for _, v in ranked])
        assert [p.layers for p in paths] == [v[1] for _, v in ranked]


def test_top_paths_follow_edges_and_large_k_returns_all():
    importance = torch.rand(4, len(EDGES), generator=torch.Generator().manual_seed(1))
    data = hand_graph()
    edge_set = set(EDGES)
    paths = top_paths(importance, data.edge_index, data.edge_type, 0, 5, k=1000)
    assert len(paths) == len(all_walks(EDGES, importance.tolist(), 0, 5, 4)) >= 4
    assert len({tuple(p.edges) for p in paths}) == len(paths)
    for path in paths:
        assert path.edges[0][0] == 0 and path.edges[-1][2] == 5
        assert all(a[2] == b[0] for a, b in zip(path.edges, path.edges[1:]))
        assert all(edge in edge_set for edge in path.edges)
        assert all(a < b for a, b in zip(path.layers, path.layers[1:]))
        assert 5 not in [s for s, _, _ in path.edges]  # never leaves the tail
        assert path.score == pytest.approx(
            sum(importance[layer - 1, EDGES.index(edge)].item()
                for layer, edge in zip(path.layers, path.edges)))
    assert [p.score for p in paths] == sorted((p.score for p in paths), reverse=True)


def test_top_paths_no_path_and_bad_arguments():
    data = hand_graph()
    importance = torch.ones(3, len(EDGES))
    assert top_paths(importance, data.edge_index, data.edge_type, 5, 0) == []  # 5 -> 4 only
    with pytest.raises(ValueError, match="max_length must lie in"):
        top_paths(importance, data.edge_index, data.edge_type, 0, 5, max_length=4)
    with pytest.raises(ValueError, match="k must be at least 1"):
        top_paths(importance, data.edge_index, data.edge_type, 0, 5, k=0)
    with pytest.raises(ValueError, match="edge_index must have shape"):
        top_paths(importance[:, :3], data.edge_index, data.edge_type, 0, 5)


# ----------------------------------------------------------------------------------------
# explain and format
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_explain_paths_are_walks_of_the_graph(backend):
    model = small_nbfnet(backend)
    data = hand_graph()
    result = explain(model, data, 0, 1, 4, k=100)
    assert isinstance(result, Explanation) and result.removed_edges == 0
    with torch.no_grad():
        expected = float(model(data, torch.tensor([0]), torch.tensor([1]), torch.tensor([[4]])))
    assert result.score == pytest.approx(expected, rel=1e-5)
    # the only walks 0 -> 4 of at most 3 edges: 0-3-4 and 0-3-5-4
    assert sorted(p.edges for p in result.paths) == [[(0, 1, 3), (3, 0, 5), (5, 2, 4)],
                                                     [(0, 1, 3), (3, 1, 4)]]
    assert result.paths == top_paths(edge_importance(model, data, 0, 1, 4), data.edge_index,
                                     data.edge_type, 0, 4, k=100)


def test_explain_removes_the_query_edge():
    model = small_nbfnet("reference")
    data = hand_graph()
    # (3, 1, 4) is an edge of the graph: explained from the rest, it is not its own path
    result = explain(model, data, 3, 1, 4, k=50)
    assert result.removed_edges == 1
    assert [(3, 1, 4)] not in [p.edges for p in result.paths]
    kept = explain(model, data, 3, 1, 4, k=50, remove_query_edge=False)
    assert kept.removed_edges == 0 and [(3, 1, 4)] in [p.edges for p in kept.paths]


def test_format_with_names():
    data = hand_graph(DIAMOND, num_nodes=4)
    data.entity_names = ["Ann", "Paris", "Lyon", "France"]
    data.relation_names = ["born_in", "located_in"]
    path = ScoredPath(0.123, [(0, 0, 1), (1, 3, 2)], [1, 2])
    assert format_path(path, data) == \
        f"0.123  Ann -[born_in]-> Paris -[located_in{INVERSE_SUFFIX}]-> Lyon"
    assert path_text([(0, 2, 3)]) == "0 -[2]-> 3"  # no names: ids
    text = format_explanation(Explanation(0, 1, 3, 1.5, [path], removed_edges=2), data)
    lines = text.splitlines()
    assert lines[0] == "query: Ann -[located_in]-> France  score 1.5"
    assert "2 edges" in lines[1] and lines[2] == format_path(path, data)
    assert "no path" in format_explanation(Explanation(0, 1, 3, 0.0, []), data)


def test_mean_rank_divides_by_length_and_reorders():
    # head 0 -> tail 3: a 1-edge path (importance 1.0) and a 3-edge path (0.6 each: sum 1.8)
    edge_index = torch.tensor([[0, 0, 1, 2], [3, 1, 2, 3]])
    importance = torch.tensor([[1.0, 0.6, 0.0, 0.0],
                               [0.0, 0.0, 0.6, 0.0],
                               [0.0, 0.0, 0.0, 0.6]])
    by_sum = top_paths(importance, edge_index, None, 0, 3, k=2)
    by_mean = top_paths(importance, edge_index, None, 0, 3, k=2, rank="mean")
    assert [len(p.edges) for p in by_sum] == [3, 1]
    assert [round(p.score, 6) for p in by_sum] == [1.8, 1.0]
    assert [len(p.edges) for p in by_mean] == [1, 3]
    assert [round(p.score, 6) for p in by_mean] == [1.0, 0.6]
    with pytest.raises(ValueError, match="rank"):
        top_paths(importance, edge_index, None, 0, 3, rank="max")
