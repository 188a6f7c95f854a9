"""The MovieLens-100K grid script: every row's config loads (the shared machinery:
tests/experiments/test_grid.py)."""

import importlib.util
from pathlib import Path

import pytest

from graphlearn.config import load_config

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "recommendation" / "ml100k_grid.py"


@pytest.fixture(scope="module")
def grid():
    spec = importlib.util.spec_from_file_location("ml100k_grid", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("row", ["bpr_mf", "lightgcn", "ngcf", "sheaf_diagonal",
                                 "sheaf_orthogonal", "sheaf_orthogonal_exp", "sheaf_general",
                                 "sheaf_scalar", "sheaf_identity"])
@pytest.mark.parametrize("protocol", ["recbole", "paper"])
def test_every_row_config_loads_with_its_overrides(grid, row, protocol):
    spec = grid.ROWS[row]
    extra = grid.PAPER_PROTOCOL if protocol == "paper" else []
    cfg = load_config(spec.config, overrides=[*spec.overrides, *extra])
    assert cfg.task == "recommendation" and cfg.data.name == "ml-100k"
    if protocol == "paper":
        assert cfg.data.rating_threshold == 3 and list(cfg.data.ratios) == [0.7, 0.1, 0.2]
