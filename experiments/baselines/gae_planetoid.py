"""Train the graph auto-encoder (GAE) on Cora / CiteSeer and report test AUROC / AP.

Baseline 3 of issue 3, before the training pipeline exists. Split: the NBFNet
homogeneous protocol (DESIGN.md §2), :func:`random_link_split` with 85/5/10
undirected edges and one strict negative per validation/test positive, seeded
per run. Model and optimisation as Kipf & Welling (2016): GCN 32 -> 16, inner
product decoder, Adam lr 0.01, 200 epochs, no dropout, the binary bag-of-words
features. The epoch is selected on validation AUROC; test is read at that
epoch (the test metrics of the last epoch, which is what the paper reports,
are recorded too).

Training loss (``--loss``):

* ``full`` (the paper's): weighted BCE over all ``N^2`` entries of the
  training adjacency with self-loops, positives weighted by
  ``(N^2 - |A|) / |A|`` and the mean rescaled by ``N^2 / (2 (N^2 - |A|))``.
* ``sampled``: BCE on the training edges and as many fresh strict negatives
  (non-edges of the training graph) drawn every epoch.

    python experiments/baselines/gae_planetoid.py --dataset cora
    python experiments/baselines/gae_planetoid.py --dataset citeseer --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import (
    DEFAULT_DATA_ROOT,
    RESULTS,
    command_line,
    environment,
    seed_everything,
    write_json,
)

from graphlearn.data.link_split import random_link_split, sample_negative_edges
from graphlearn.data.planetoid import homogeneous_stats, load_planetoid
from graphlearn.metrics.classification import auroc_ap
from graphlearn.models.gae import GAE


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="cora", help="cora or citeseer")
    p.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--out-channels", type=int, default=16)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--loss", choices=("full", "sampled"), default="full")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def full_adjacency_loss(logits: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
    """Kipf & Welling's weighted BCE over the dense training adjacency (+ self-loops)."""
    n = logits.size(0)
    target = torch.zeros(n, n)
    target[edge_index[0], edge_index[1]] = 1.0
    num_edges = float(target.sum())  # |A|, both directions, before self-loops
    target.fill_diagonal_(1.0)
    pos_weight = torch.tensor((n * n - num_edges) / num_edges)
    norm = n * n / (2.0 * (n * n - num_edges))
    return norm * F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight)


@torch.no_grad()
def evaluate(model: GAE, split) -> dict[str, float]:
    model.eval()
    z = model.encode(split.x, split.edge_index)
    return auroc_ap(model.decode(z, split.edge_label_index), split.edge_label)


def run_seed(args: argparse.Namespace, data, seed: int) -> dict:
    generator = seed_everything(seed)
    train, valid, test = random_link_split(data, val_ratio=0.05, test_ratio=0.10, seed=seed)
    model = GAE(data.num_features, args.hidden, args.out_channels, args.dropout)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    num_nodes = int(data.num_nodes)
    best: dict | None = None
    history = []
    start = time.perf_counter()
    bar = tqdm(
        range(1, args.epochs + 1), desc=f"GAE {args.dataset} seed {seed}", disable=args.no_progress
    )
    for epoch in bar:
        model.train()
        optimizer.zero_grad()
        z = model.encode(train.x, train.edge_index)
        if args.loss == "full":
            loss = full_adjacency_loss(model.decode_all(z), train.edge_index)
        else:
            pos = train.edge_label_index  # (2, E_train), each undirected edge once
            neg = sample_negative_edges(train.edge_index, num_nodes, pos.size(1), generator)
            logits = model.decode(z, torch.cat([pos, neg], dim=1))
            labels = torch.cat([torch.ones(pos.size(1)), torch.zeros(neg.size(1))])
            loss = F.binary_cross_entropy_with_logits(logits, labels)
        loss.backward()
        optimizer.step()
        val = evaluate(model, valid)
        history.append({"epoch": epoch, "loss": float(loss.detach()), "valid": val})
        if best is None or val["auroc"] > best["valid"]["auroc"]:
            best = {"epoch": epoch, "valid": val, "test": evaluate(model, test)}
        bar.set_postfix(loss=f"{float(loss.detach()):.4f}", val_auroc=f"{val['auroc']:.4f}")
    assert best is not None
    last = {"epoch": args.epochs, "valid": history[-1]["valid"], "test": evaluate(model, test)}
    return {
        "seed": seed,
        "selected_epoch": best["epoch"],
        "valid": best["valid"],
        "test": best["test"],
        "last_epoch": last,
        "wall_time_s": round(time.perf_counter() - start, 2),
        "history": history,
    }


def summarize(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
    }


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_planetoid(args.data_root / "planetoid", args.dataset)
    start = time.perf_counter()
    runs = [run_seed(args, data, seed) for seed in args.seeds]
    result = {
        "command": command_line(__file__, argv),
        "task": "homogeneous_link_prediction",
        "dataset": args.dataset,
        "dataset_stats": homogeneous_stats(data),
        "model": "gae",
        "seeds": args.seeds,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "protocol": "random_link_split 85/5/10 undirected, 1 strict negative per valid/test "
        "positive, test message graph = train + valid edges, selection on valid AUROC",
        "test": {m: summarize([r["test"][m] for r in runs]) for m in ("auroc", "ap")},
        "valid": {m: summarize([r["valid"][m] for r in runs]) for m in ("auroc", "ap")},
        "test_last_epoch": {
            m: summarize([r["last_epoch"]["test"][m] for r in runs]) for m in ("auroc", "ap")
        },
        "wall_time_s": round(time.perf_counter() - start, 2),
        "environment": environment(),
        "runs": runs,
    }
    out = args.out or RESULTS / f"gae_{args.dataset.lower()}_{args.loss}.json"
    write_json(out, result)
    t = result["test"]
    print(
        f"GAE {args.dataset} ({args.loss} loss, seeds {args.seeds}): test AUROC "
        f"{t['auroc']['mean']:.4f}±{t['auroc']['std']:.4f}  AP {t['ap']['mean']:.4f}"
        f"±{t['ap']['std']:.4f}  (selected epochs {[r['selected_epoch'] for r in runs]})"
    )
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
