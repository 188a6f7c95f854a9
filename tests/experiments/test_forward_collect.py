"""experiments/forward/collect.py: the matrix of every grid cell, from tiny grid JSONs."""

import json

import pytest

from tests.experiments.scripts import load_script


@pytest.fixture(scope="module")
def collect():
    return load_script("forward/collect.py", "forward_collect")


def grid_json(path, task, dataset, split, rows, extra=()):
    """A grid JSON as experiments/forward/grid.py writes it, with the test metric's
    per-seed values of each row."""
    metric = {"link": "auroc", "node": "accuracy"}[task]
    payload = {"task": task, "dataset": dataset, "split": split, "seeds": [0, 1],
               "extra_overrides": list(extra), "rows": {}}
    for name, values in rows.items():
        mean = sum(values) / len(values)
        std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
        payload["rows"][name] = {"test": {metric: {"mean": mean, "std": std,
                                                   "values": values}}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload))


def test_tables_missing_cells_and_ablations(tmp_path, collect):
    results = tmp_path / "results"
    grid_json(results / "node_cora_grid.json", "node", "cora", "public",
              {"gcn-L2-backprop": [0.80, 0.82], "gcn-L2-sf": [0.70, 0.70]})
    grid_json(results / "more" / "node_cora_grid.json", "node", "cora", "public",
              {"sage-L4-ccl": [0.5, 0.7, 0.6, 0.6, 0.6]})
    grid_json(results / "ablation" / "node_cora_grid.json", "node", "cora", "public",
              {"gcn-L2-ff-virtual": [0.1, 0.1]}, extra=["forward.class_members=none"])
    assert collect.main(["--results", str(results), "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "summary.md").read_text()
    lines = text.splitlines()
    start = lines.index("## Node classification, Cora, public split: test accuracy")
    header, _, *body = lines[start + 2:start + 2 + 8]
    assert header == "| variant | GCN L2 | SAGE L4 |"  # depth first, then backbone order
    assert body[0] == "| backprop | **0.810 ± 0.014 (2 seeds)** | — |"  # not the 5
    assert body[3] == "| sf | 0.700 ± 0.000 (2 seeds) | — |"
    assert body[5] == "| ccl | — | **0.600 ± 0.071** |"
    assert "0.100 ± 0.000" not in text  # the ablation is listed, not tabled
    assert "`ablation/node_cora_grid.json`: node cora public, " \
           "`forward.class_members=none`, rows gcn-L2-ff-virtual" in text
    payload = json.loads((tmp_path / "out" / "summary.json").read_text())
    cell = payload["tables"]["node/cora/public"]["gcn-L2-backprop"]
    assert cell["mean"] == pytest.approx(0.81) and cell["seeds"] == 2
    assert cell["file"] == "node_cora_grid.json"
    missing = payload["missing"]
    assert "node cora public gcn L2 (ff-label, ff-virtual, sf-topdown, ccl)" in missing
    assert "node cora public sage L4 (backprop, ff-label, ff-virtual, sf, sf-topdown)" \
        in missing
    assert "link citeseer random gat L4" in missing
    assert not any(m.startswith("node cora public gat L2 (") for m in missing)
    assert len(missing) == 2 * 1 * 3 * 2 + 2 * 2 * 3 * 2  # link + node cells, none full


def test_a_row_in_two_files_with_other_results_is_an_error(tmp_path, collect, capsys):
    results = tmp_path / "results"
    grid_json(results / "a" / "link_cora_grid.json", "link", "cora", "random",
              {"gcn-L2-ff": [0.9, 0.9]})
    grid_json(results / "b" / "link_cora_grid.json", "link", "cora", "random",
              {"gcn-L2-ff": [0.8, 0.8]})
    assert collect.main(["--results", str(results)]) == 1
    err = capsys.readouterr().err
    assert "b/link_cora_grid.json: row gcn-L2-ff of link cora (random) is also in " \
           "a/link_cora_grid.json" in err
    assert not (results / "summary.md").exists()


def test_bad_files_and_directories_are_named(tmp_path, collect, capsys):
    results = tmp_path / "results"
    results.mkdir()
    (results / "node_cora_grid.json").write_text("{not json")
    assert collect.main(["--results", str(results)]) == 1
    assert "node_cora_grid.json: not a grid JSON" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        collect.main(["--results", str(tmp_path / "absent")])
    assert "--results" in capsys.readouterr().err


def test_the_committed_summary_is_current(collect, tmp_path):
    """experiments/results/forward/summary.md is what collect.py writes from the grid
    JSONs committed beside it."""
    results = collect.REPO / "experiments" / "results" / "forward"
    if not (results / "summary.md").exists():
        pytest.skip("no committed summary")
    assert collect.main(["--out", str(tmp_path)]) == 0
    assert (tmp_path / "summary.md").read_text() == (results / "summary.md").read_text()
