"""A tiny learnable interaction dataset, as objects and as a registered dataset on disk.

Users and items fall into two groups; each user mostly interacts with items of
its own group, so a few epochs of BPR already rank held-out items well.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from graphlearn.config import Config, DataConfig, EvalConfig, ModelConfig, TrainConfig
from graphlearn.data.interactions import make_interactions

NAME = "tiny-rec"


def tiny_rows(num_users: int = 40, num_items: int = 30, per_user: int = 10,
              seed: int = 0) -> list[tuple[str, str, float, int]]:
    """``(user, item, rating, timestamp)`` rows with original ids ``u<k>`` / ``i<k>``."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(num_users):
        group = user % 2
        own = [i for i in range(num_items) if i % 2 == group]
        other = [i for i in range(num_items) if i % 2 != group]
        items = list(rng.choice(own, size=per_user - 2, replace=False)) \
            + list(rng.choice(other, size=2, replace=False))
        for t, item in enumerate(items):
            rows.append((f"u{user}", f"i{item}", float(rng.integers(1, 6)), 1000 * user + t))
    return rows


def tiny_data(**kwargs):
    """The rows as an interaction graph."""
    users, items, ratings, times = zip(*tiny_rows(**kwargs))
    return make_interactions(users, items, ratings, times)


def tiny_config(model: str = "bpr_mf", epochs: int = 4, **train: object) -> Config:
    """A config for the tiny data (the dataset name is only used in messages)."""
    params = {"dim": 8} if model == "bpr_mf" else {"dim": 8, "num_layers": 2, "reg_weight": 1e-4}
    train_cfg = {"epochs": epochs, "batch_size": 32, "lr": 0.01, "metric": "ndcg@5",
                 "patience": None, "seed": 7, **train}
    return Config(task="recommendation", data=DataConfig(name=NAME),
                  model=ModelConfig(name=model, params=params),
                  train=TrainConfig(**train_cfg), eval=EvalConfig(ks=(5, 10)))


def write_tiny_dataset(base: Path, **kwargs) -> tuple[Path, Path]:
    """Write the rows as a RecBole ``.inter`` file under ``base/data/tiny-rec`` and a
    dataset card under ``base/cards``; return ``(cards_dir, data_root)`` (set
    ``GRAPHLEARN_DATASETS`` to the first, ``data.root`` to the second)."""
    cards, root = base / "cards", base / "data"
    (root / NAME).mkdir(parents=True, exist_ok=True)
    cards.mkdir(parents=True, exist_ok=True)
    lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    lines += [f"{u}\t{i}\t{r}\t{t}" for u, i, r, t in tiny_rows(**kwargs)]
    (root / NAME / f"{NAME}.inter").write_text("\n".join(lines) + "\n")
    (cards / f"{NAME}.yaml").write_text(
        f"name: {NAME}\ntitle: Tiny synthetic interactions\ntask: recommendation\n"
        f"format: movielens\npath: {NAME}\nlicence: test data\n"
    )
    return cards, root


def write_tiny_config(path: Path, root: Path, model: str = "bpr_mf", epochs: int = 4,
                      batch_size: int = 32, extra: str = "") -> Path:
    """A YAML config for the on-disk tiny dataset."""
    params = "{dim: 8}" if model == "bpr_mf" else "{dim: 8, num_layers: 2, reg_weight: 1.0e-4}"
    path.write_text(
        f"task: recommendation\n"
        f"data: {{name: {NAME}, root: {root}}}\n"
        f"model: {{name: {model}, params: {params}}}\n"
        f"train: {{epochs: {epochs}, batch_size: {batch_size}, lr: 0.01, metric: ndcg@5, "
        f"patience: null, seed: 7{extra}}}\n"
        f"eval: {{ks: [5, 10]}}\n"
    )
    return path
