from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data

from graphlearn.ops import RelGraph, prepare


def _edges():
    # (src, dst, type); the in-edges of node 1 are listed out of order on purpose.
    src = torch.tensor([2, 0, 3, 1, 0, 2])
    dst = torch.tensor([1, 3, 1, 2, 1, 2])
    typ = torch.tensor([0, 1, 2, 1, 0, 2])
    return torch.stack([src, dst]), typ


def test_csr_by_target_is_stable():
    ei, et = _edges()
    g = RelGraph.build(ei, et, num_nodes=5)
    # in-degrees: node 0 none, node 1 three (edges 0, 2, 4 in input order), node 2 two, node 3 one.
    assert g.rowptr.tolist() == [0, 0, 3, 5, 6, 6]
    assert g.perm.tolist() == [0, 2, 4, 3, 5, 1]
    assert g.col.tolist() == [2, 3, 0, 1, 2, 0]
    assert g.edge_type.tolist() == [0, 2, 0, 1, 2, 1]
    assert g.row.tolist() == [1, 1, 1, 2, 2, 3]
    assert g.in_degree.tolist() == [0, 3, 2, 1, 0]
    assert g.out_degree.tolist() == [2, 1, 2, 1, 0]
    assert g.num_relations == 3 and g.num_edges == 6 and g.num_nodes == 5
    assert torch.equal(g.edge_index(), ei[:, g.perm])


def test_csc_by_source_points_at_csr_positions():
    ei, et = _edges()
    g = RelGraph.build(ei, et, num_nodes=5)
    assert g.colptr.tolist() == [0, 2, 3, 5, 6, 6]
    for j in range(g.num_nodes):
        slots = range(int(g.colptr[j]), int(g.colptr[j + 1]))
        positions = [int(g.csc_pos[s]) for s in slots]
        assert all(int(g.col[k]) == j for k in positions)
        assert positions == sorted(positions)  # CSR order within a source
        assert [int(g.csc_row[s]) for s in slots] == [int(g.row[k]) for k in positions]


def test_highest_id_and_defaults():
    ei = torch.tensor([[0, 1], [3, 3]])
    g = RelGraph.build(ei)
    assert g.num_nodes == 4 and g.num_relations == 1
    assert g.rowptr.tolist() == [0, 0, 0, 0, 2]
    assert not g.has_edge_type and g.edge_type.tolist() == [0, 0]


def test_empty_graph():
    g = RelGraph.build(torch.zeros(2, 0, dtype=torch.long), num_nodes=3)
    assert g.rowptr.tolist() == [0, 0, 0, 0] and g.num_edges == 0


def test_fewer_targets_than_sources():
    # 4 sources, 2 targets: CSR views over the targets, CSC views over every source
    g = RelGraph.build(torch.tensor([[2, 3, 0, 3], [1, 0, 1, 1]]), num_nodes=4, num_targets=2)
    assert (g.num_nodes, g.num_targets) == (4, 2)
    assert g.rowptr.tolist() == [0, 1, 4] and g.in_degree.tolist() == [1, 3]
    assert g.colptr.tolist() == [0, 1, 1, 2, 4] and g.out_degree.tolist() == [1, 0, 1, 2]
    assert g.row.tolist() == [0, 1, 1, 1] and g.col.tolist() == [3, 2, 0, 3]
    assert "num_targets=2" in repr(g)
    assert RelGraph.build(torch.tensor([[0], [1]])).num_targets == 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"edge_index": torch.zeros(3, 2, dtype=torch.long)}, r"shape \[2, E\]"),
        ({"edge_index": torch.zeros(2, 2)}, "integer"),
        ({"edge_index": torch.tensor([[0, 5], [1, 1]]), "num_nodes": 3}, r"node ids must lie in \[0, 3\)"),
        ({"edge_index": torch.tensor([[0], [1]]), "edge_type": torch.tensor([0, 1])}, "edge_type must have shape"),
        ({"edge_index": torch.tensor([[0], [1]]), "edge_type": torch.tensor([4]), "num_relations": 2}, "edge types"),
        ({"edge_index": torch.tensor([[0], [1]]), "num_nodes": 2, "num_targets": 3}, r"num_targets must lie in \[0, num_nodes=2\]"),
        ({"edge_index": torch.tensor([[0], [2]]), "num_nodes": 3, "num_targets": 2}, r"every target must lie in \[0, num_targets=2\)"),
    ],
)
def test_build_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RelGraph.build(**kwargs)


def test_prepare_caches_and_rebuilds():
    ei, et = _edges()
    data = Data(edge_index=ei.clone(), edge_type=et.clone(), num_nodes=5)
    g1 = prepare(data)
    assert prepare(data) is g1  # no second sort
    assert "_graphlearn_rel_graph" not in data  # not a PyG attribute
    data.edge_index[1, 0] = 4  # in-place change: rebuilt
    g2 = prepare(data)
    assert g2 is not g1 and g2.in_degree[4] == 1
    data.edge_type = torch.zeros_like(et)
    assert prepare(data).edge_type.sum() == 0


def test_to_same_device_is_identity():
    ei, et = _edges()
    g = RelGraph.build(ei, et)
    assert g.to("cpu") is g
