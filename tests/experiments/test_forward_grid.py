"""experiments/forward/grid.py: every row's config loads; one real smoke run."""

import json

import pytest

from graphlearn.config import load_config
from tests.experiments.scripts import load_script


@pytest.fixture(scope="module")
def grid():
    return load_script("forward/grid.py", "forward_grid")


@pytest.mark.parametrize("dataset", ["cora", "citeseer"])
@pytest.mark.parametrize(("task", "split"), [("link", "public"), ("node", "public"),
                                             ("node", "random")])
def test_every_row_config_loads(grid, task, split, dataset):
    rows = grid.rows_for(task, dataset, list(grid.BACKBONES), [2, 4],
                         list(grid.VARIANTS[task]), split)
    assert len(rows) == len(grid.BACKBONES) * 2 * len(grid.VARIANTS[task])
    for name, row in rows.items():
        cfg = load_config(row.config, overrides=row.overrides)
        backbone, depth, variant = name.split("-", 2)
        assert cfg.task == task and cfg.data.name == dataset
        assert cfg.forward.backbone == backbone and cfg.forward.num_layers == int(depth[1:])
        assert cfg.forward.variant == variant
        if task == "node":
            assert cfg.data.split == split
            if split == "random":
                assert (cfg.data.val_ratio, cfg.data.test_ratio) == (0.16, 0.2)


def test_an_unknown_variant_of_the_task_is_a_usage_error(grid, capsys):
    with pytest.raises(SystemExit) as exit_info:
        grid.main(["--tasks", "link", "--variants", "ff-label"])
    assert exit_info.value.code == 2
    assert "not a link variant" in capsys.readouterr().err


@pytest.mark.realdata
@pytest.mark.slow
def test_one_row_two_epochs_end_to_end(grid, shared_data, tmp_path):
    out = tmp_path / "results"
    assert grid.main(["--root", str(shared_data), "--runs", str(tmp_path / "runs"),
                      "--out", str(out), "--tasks", "node", "--datasets", "cora",
                      "--variants", "sf", "--seeds", "0", "--set", "train.epochs=2"]) == 0
    payload = json.loads((out / "node_cora_grid.json").read_text())
    run = payload["rows"]["gcn-L2-sf"]["runs"][0]
    assert run["epochs_run"] == 2 and 0 <= run["test"]["accuracy"] <= 1
    assert "| gcn-L2-sf | 0 |" in (out / "node_cora_grid.md").read_text()
    # a second call finds the finished run and trains nothing
    before = (tmp_path / "runs" / "node_cora" / "gcn-L2-sf_s0" / "final.json").stat().st_mtime
    assert grid.main(["--root", str(shared_data), "--runs", str(tmp_path / "runs"),
                      "--out", str(out), "--tasks", "node", "--datasets", "cora",
                      "--variants", "sf", "--seeds", "0", "--set", "train.epochs=2"]) == 0
    after = (tmp_path / "runs" / "node_cora" / "gcn-L2-sf_s0" / "final.json").stat().st_mtime
    assert before == after
