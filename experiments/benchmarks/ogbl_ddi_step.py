"""Time ogbl-ddi training steps of the shipped configs, graphlearn's path beside the
plain PyG / PyTorch one, in one run.

For each config in ``--configs`` (default ``gcn sage sheaf`` under
``experiments/configs/ogbl/ogbl-ddi/``) the trainer's own step runs on the real
data (full-graph encode, ``2 × 65,536`` pairs through the predictor, backward,
per-part gradient clipping, Adam), in two variants of the same model and seed:

* ``graphlearn``: as shipped. GCN / SAGE layers multiply by the cached CSR
  propagation matrix with its cached transpose for the backward
  (``graphlearn.models.gnn_lp._CsrMatmul``), and ReLU + dropout are one node
  with a 16-bit mask (:func:`graphlearn.nn.functional.relu_dropout`).
* ``pyg``: the PyG modules' own forward on the CSR adjacency (``conv(x,
  adj_t)``: autograd through ``torch.sparse.mm`` transposes the matrix in
  every backward) and ``F.dropout(F.relu(x))``.

Variants are timed round-robin over ``--rounds`` rounds of ``--steps`` steps each
(after one warm-up step) and the median round is reported, so a change in the
machine's load affects both alike; ``ratio`` is ``pyg / graphlearn``; ``s/epoch``
is the step time times the 17 steps of an epoch (an estimate, marked so).
Prints a table; ``--json`` writes the numbers, command, commit and machine. From
the repository root::

    python experiments/benchmarks/ogbl_ddi_step.py --root ../shared/data --threads 1 \\
        --json experiments/benchmarks/results/ogbl_ddi_step.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F

from graphlearn.cli.table import format_table
from graphlearn.config import load_config
from graphlearn.models import gnn_lp
from graphlearn.train.run import _build_any_task
from graphlearn.train.rundir import RunDir
from graphlearn.train.trainer import Trainer
from graphlearn.train.utils import git_commit, machine_info

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "experiments" / "configs" / "ogbl" / "ogbl-ddi"
VARIANTS = ("graphlearn", "pyg")
SHIPPED_RELU_DROPOUT = gnn_lp.relu_dropout


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=None, help="data root (holds ogb/ogbl_ddi)")
    parser.add_argument("--configs", nargs="+", default=["gcn", "sage", "sheaf"],
                        help="config names under experiments/configs/ogbl/ogbl-ddi")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3, help="round-robin rounds")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    return parser.parse_args(argv)


def _pyg_layer(encoder: torch.nn.Module):
    """The PyG module's own forward on the 0/1 (SAGE) or normalised (GCN) CSR matrix."""
    def layer(conv, x, adj):
        if isinstance(encoder, gnn_lp.SAGEEncoder):
            return conv(x, encoder._pyg_adjacency(adj))
        return conv(x, adj[0])
    return layer


@contextlib.contextmanager
def variant(model: torch.nn.Module, name: str) -> Iterator[None]:
    """Switch ``model`` to the ``pyg`` path inside the block (``graphlearn``: as is)."""
    if name == "graphlearn":
        yield
        return
    encoder = model.encoder
    saved_dropout = gnn_lp.relu_dropout
    gnn_lp.relu_dropout = lambda x, p, training=True: F.dropout(F.relu(x), p, training)
    if isinstance(encoder, gnn_lp._ConvStack):
        cache: dict[int, torch.Tensor] = {}

        def unnormalised(adj):  # the 0/1 matrix SAGEConv's mean reduction expects
            key = id(adj[0])
            if key not in cache:
                ones = torch.ones_like(adj[0].values())
                cache[key] = torch.sparse_csr_tensor(adj[0].crow_indices(),
                                                     adj[0].col_indices(), ones, adj[0].shape)
            return cache[key]

        encoder._pyg_adjacency = unnormalised
        encoder.layer = _pyg_layer(encoder)
    try:
        yield
    finally:
        gnn_lp.relu_dropout = saved_dropout
        encoder.__dict__.pop("layer", None)
        encoder.__dict__.pop("_pyg_adjacency", None)


def _step(trainer: Trainer, batch) -> None:
    """One training step as the trainer takes it."""
    trainer.optimizer.zero_grad(set_to_none=True)
    loss, _, _ = trainer._loss(batch)
    loss.backward()
    trainer._clip_gradients()
    trainer.optimizer.step()


def time_config(name: str, args: argparse.Namespace) -> dict:
    """Median seconds per step of each variant on config ``name``."""
    overrides = [f"data.root={args.root}"] if args.root else []
    cfg = load_config(CONFIGS / f"{name}.yaml", overrides)
    task = _build_any_task(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(task, RunDir.create(Path(tmp) / "run", cfg), progress=False,
                          log=lambda _: None)
        model = trainer.model
        batch = next(task.train_batches(1, trainer.generator))  # reused: same cost
        encoded = []
        model.eval()
        for v in VARIANTS:  # the same encoder output from both paths
            with variant(model, v), torch.no_grad():
                encoded.append(model.encode(task.x, task.edge_index))
        if not torch.allclose(*encoded, rtol=1e-4, atol=1e-5):
            raise SystemExit(f"{name}: the variants encode differently "
                             f"({(encoded[0] - encoded[1]).abs().max().item():.3g})")
        model.train()
        for v in VARIANTS:  # warm-up
            with variant(model, v):
                _step(trainer, batch)
        times: dict[str, list[float]] = {v: [] for v in VARIANTS}
        for _ in range(args.rounds):
            for v in VARIANTS:
                with variant(model, v):
                    start = time.perf_counter()
                    for _ in range(args.steps):
                        _step(trainer, batch)
                    times[v].append((time.perf_counter() - start) / args.steps)
    median = {v: statistics.median(t) for v, t in times.items()}
    steps_per_epoch = task.num_batches()
    return {"config": name, "s_per_step": median, "rounds": times,
            "steps_per_epoch": steps_per_epoch,
            "s_per_epoch_estimate": {v: t * steps_per_epoch for v, t in median.items()},
            "speedup_over_pyg": median["pyg"] / median["graphlearn"]}


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    rows, results = [], []
    for name in args.configs:
        result = time_config(name, args)
        results.append(result)
        median = result["s_per_step"]
        for v in VARIANTS:
            rows.append([name, v, f"{median[v]:.3f}",
                         f"~{result['s_per_epoch_estimate'][v]:.0f}",
                         f"{median['pyg'] / median[v]:.2f}"])
    print(format_table(["config", "variant", "s/step", "s/epoch (est.)", "× pyg"], rows))
    if args.json:
        out = {"command": " ".join(["python", *sys.argv]), "git_commit": git_commit(ROOT),
               "machine": machine_info(torch.device("cpu")), "threads": args.threads,
               "steps": args.steps, "rounds": args.rounds, "results": results}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
