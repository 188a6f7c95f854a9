"""experiments/forward/inspect_ff_virtual.py on tiny trained runs."""

import json

import pytest
import torch
from torch_geometric.nn import GATConv

from graphlearn.config import Config, from_dict
from graphlearn.train import train
from tests.experiments.scripts import load_script
from tests.train.test_forward_trainer import NODE_DATA, QUIET, node_graph


@pytest.fixture(scope="module")
def script():
    return load_script("forward/inspect_ff_virtual.py", "inspect_ff_virtual")


def _run(tmp_path, backbone, variant="ff-virtual"):
    cfg = from_dict(Config, {
        "task": "node", "data": NODE_DATA,
        "forward": {"variant": variant, "hidden_channels": 8, "backbone": backbone},
        "train": {"epochs": 3, "lr": 0.02, "patience": None, "seed": 5}})
    rundir, _ = train(cfg, out=tmp_path / f"{backbone}-{variant}", data=node_graph(1), **QUIET)
    return rundir.path


@pytest.mark.parametrize("backbone", ["gat", "gcn"])
def test_recomputed_accuracy_matches_the_run_and_attention_is_a_weight(script, tmp_path,
                                                                       backbone):
    path = _run(tmp_path, backbone)
    result = script.inspect(path, data=node_graph(1))
    final = json.loads((path / "final.json").read_text())
    for name in ("valid", "test"):
        assert result["accuracy"][name] == pytest.approx(final[name]["accuracy"])
    test_nodes = sum(result["test_true_per_class"])
    assert sum(result["test_predicted_per_class"]) == test_nodes > 0
    assert len(result["layers"]) == 2
    for layer in result["layers"]:
        assert len(layer["test_goodness_per_class"]) == 3
        attention = layer["query_attention_per_class"]
        if backbone == "gcn":
            assert attention is None
        else:  # one in-edge among the node's self-loop, neighbours and the query edge
            assert len(attention) == 3 and all(0.0 < a < 1.0 for a in attention)
    row = script.table([result]).splitlines()[-1]
    assert row.startswith(f"| {backbone}-ff-virtual | train |")
    assert row.endswith("| — |") == (backbone == "gcn")


def test_a_run_of_another_variant_is_refused_by_name(script, tmp_path):
    path = _run(tmp_path, "gcn", variant="sf")
    with pytest.raises(ValueError, match=f"{path}: not a node ff-virtual run"):
        script.inspect(path, data=node_graph(1))


def test_query_attention_reads_the_query_edge_of_the_asked_class(script):
    """With zero attention vectors GAT weighs a node's in-edges equally, so the query
    edge gets 1 / (in-neighbours + self-loop + query edge)."""
    layer = GATConv(4, 2, heads=1)
    with torch.no_grad():
        layer.att_src.zero_()
        layer.att_dst.zero_()
    num_nodes, c = 3, 1  # real nodes 0..2, class nodes 3 (c = 0) and 4 (c = 1)
    real = [[0, 2], [1, 1]]  # 0 -> 1, 2 -> 1
    members = [[0, 1], [3, 4]]  # 0 -> class 0, 1 -> class 1
    queries = [[4, 4, 4], [0, 1, 2]]  # class node 4 -> every real node
    edge_index = torch.cat([torch.tensor(e) for e in (real, members, queries)], dim=1)
    x = torch.randn(5, 4)
    out, weights = script._query_attention(layer, x, edge_index, num_nodes, c)
    assert out.shape == (5, 2)
    assert weights.tolist() == pytest.approx([1 / 2, 1 / 4, 1 / 2])
    _, other = script._query_attention(layer, x, edge_index, num_nodes, 0)
    assert other.tolist() == [0.0, 0.0, 0.0]  # class 0 has no query edges here
