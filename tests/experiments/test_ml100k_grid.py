"""The MovieLens-100K grid script: every row's config loads (the shared machinery:
tests/experiments/test_grid.py)."""


import pytest

from graphlearn.config import load_config
from tests.experiments.scripts import load_script


@pytest.fixture(scope="module")
def grid():
    return load_script("recommendation/ml100k_grid.py", "ml100k_grid")


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


def test_each_ablation_changes_one_model_setting_of_the_diagonal_row(grid):
    import torch

    from graphlearn.models import build_model

    base = load_config(grid.ROWS["sheaf_diagonal"].config,
                       overrides=grid.ROWS["sheaf_diagonal"].overrides)
    assert grid.ABLATIONS[0] == "sheaf_diagonal"
    pairs = torch.tensor([[0, 0, 1, 2], [0, 1, 1, 2]])  # 3 users x 3 items
    for row in grid.ABLATIONS[1:]:
        spec = grid.ROWS[row]
        cfg = load_config(spec.config, overrides=spec.overrides)
        changed = {k for k in {**base.model.params, **cfg.model.params}
                   if base.model.params.get(k) != cfg.model.params.get(k)}
        assert len(changed) == 1, (row, changed)
        model = build_model("sheaf_rec", cfg.model.params, num_users=3, num_items=3,
                            train_edges=pairs)
        users, items = model.encode()
        assert users.shape == items.shape == (3, 64)
        assert torch.isfinite(users).all() and torch.isfinite(items).all()


def test_ablations_are_not_in_the_default_rows_and_exclude_rows(grid):
    defaults = grid.default_rows()
    assert "sheaf_diagonal" in defaults and "bpr_mf" in defaults
    assert not set(grid.ABLATIONS[1:]) & set(defaults)
    with pytest.raises(SystemExit):
        grid.main(["--out", "unused", "--rows", "bpr_mf", "--ablations"])
