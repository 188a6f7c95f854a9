"""experiments/forward/inspect_ff_virtual.py on tiny trained runs."""

import json

import pytest

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
