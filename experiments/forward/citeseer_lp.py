"""Backprop vs forward learning (FF, SF) of a 2-layer GCN on CiteSeer link prediction.

Issue 7 (ForwardGNN, Park et al., ICLR 2024). Protocol: ForwardGNN's edge split,
:func:`random_link_split` with ``val_ratio=0.16, test_ratio=0.20`` undirected
edges, one strict negative per validation/test positive, seeded per run; the
message graph is the training edges (test: train + valid). Model: GCN
``F -> hidden -> hidden`` wrapped in :class:`LayerLocalStack` (ReLU, length-
normalised layer inputs); every layer has its own Adam. Methods (``--methods``):

* ``backprop``: the same stack end-to-end, FF loss of the last layer;
* ``ff-simultaneous`` / ``ff-layerwise``: forward-forward goodness, BCE against
  fresh strict negatives every step, score = mean goodness over layers;
* ``sf-simultaneous`` / ``sf-layerwise``: single-forward in-batch softmax over dot
  products, no negatives, score = mean dot product over layers.

``--epochs`` is the number of full-batch steps (per layer for ``layerwise``).
The epoch (per layer for layerwise) is selected on validation AUROC; test is read
once, at the selection. Exact losses: ``graphlearn/train/forward.py``.

    python experiments/forward/citeseer_lp.py --seeds 0 1 2 --out experiments/results/forward/citeseer_lp.json
    python experiments/forward/citeseer_lp.py --seeds 0 --epochs 50 --methods backprop ff-simultaneous

Exits 0 with a message when the dataset is not under ``--data-root``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch
from torch_geometric.nn import GCNConv

from graphlearn.data.link_split import random_link_split
from graphlearn.data.registry import load_dataset
from graphlearn.errors import DatasetNotFoundError
from graphlearn.io import atomic_write
from graphlearn.train.forward import LayerLocalStack, train_forward

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA_ROOT = REPO.parent / "shared" / "data"
DEFAULT_OUT = REPO / "experiments" / "results" / "forward" / "citeseer_lp.json"

#: method name -> (variant, schedule)
METHODS: dict[str, tuple[str, str]] = {
    "backprop": ("backprop", "simultaneous"),
    "ff-simultaneous": ("ff", "simultaneous"),
    "ff-layerwise": ("ff", "layerwise"),
    "sf-simultaneous": ("sf", "simultaneous"),
    "sf-layerwise": ("sf", "layerwise"),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="citeseer", help="a homogeneous dataset card name")
    p.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--epochs", type=int, default=200, help="steps (per layer for layerwise)")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--theta", type=float, default=2.0)
    p.add_argument("--sf-batch-size", type=int, default=1024)
    p.add_argument("--eval-every", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return p.parse_args(argv)


def summarize(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def run(args: argparse.Namespace, data, method: str, seed: int) -> dict:
    variant, schedule = METHODS[method]
    split = random_link_split(data, val_ratio=0.16, test_ratio=0.20, seed=seed)
    stack = LayerLocalStack([GCNConv(data.num_features, args.hidden),
                             GCNConv(args.hidden, args.hidden)])
    out = train_forward(stack, split, variant=variant, schedule=schedule, epochs=args.epochs,
                        lr=args.lr, weight_decay=args.weight_decay, theta=args.theta,
                        sf_batch_size=args.sf_batch_size, eval_every=args.eval_every,
                        seed=seed)
    return {"method": method, "seed": seed, **out}


def main(argv: list[str] | None = None) -> dict | None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        data = load_dataset(args.dataset, root=args.data_root, download=False)
    except DatasetNotFoundError as error:
        print(f"skipped: {args.dataset} not found under {args.data_root} ({error})")
        return None
    start = time.perf_counter()
    runs: dict[str, list[dict]] = {}
    for method in args.methods:
        for seed in args.seeds:
            result = run(args, data, method, seed)
            runs.setdefault(method, []).append(result)
            test = result["metrics"]["test"]
            print(f"{method:16s} seed {seed}: test AUROC {test['auroc']:.4f} AP {test['ap']:.4f}"
                  f"  (selected {result['selected_epoch']}, {result['wall_time_s']:.1f} s)",
                  flush=True)
    table = {
        method: {
            split: {m: summarize([r["metrics"][split][m] for r in results])
                    for m in ("auroc", "ap")}
            for split in ("valid", "test")
        } | {"wall_time_s": summarize([r["wall_time_s"] for r in results])}
        for method, results in runs.items()
    }
    payload = {
        "command": shlex.join(["python", str(Path(__file__).resolve().relative_to(REPO)),
                               *(sys.argv[1:] if argv is None else argv)]),
        "task": "homogeneous_link_prediction",
        "dataset": args.dataset,
        "model": f"gcn-2x{args.hidden}",
        "protocol": "random_link_split 64/16/20 undirected, 1 strict negative per valid/test "
                    "positive, message graph = train edges (test: train + valid), "
                    "selection on valid AUROC",
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "summary": table,
        "environment": {"python": platform.python_version(), "torch": torch.__version__,
                        "threads": torch.get_num_threads()},
        "wall_time_s": round(time.perf_counter() - start, 2),
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out, lambda f: json.dump(payload, f, indent=1))
    print(f"\n{args.dataset}, seeds {args.seeds}, {args.epochs} epochs"
          f"{' per layer (layerwise)' if any('layerwise' in m for m in runs) else ''}:")
    print("| method | test AUROC | test AP | valid AUROC | s/run |")
    print("|---|---|---|---|---|")
    for method, row in table.items():
        t, v = row["test"], row["valid"]
        print(f"| {method} | {100 * t['auroc']['mean']:.2f} ± {100 * t['auroc']['std']:.2f} "
              f"| {100 * t['ap']['mean']:.2f} ± {100 * t['ap']['std']:.2f} "
              f"| {100 * v['auroc']['mean']:.2f} | {row['wall_time_s']['mean']:.1f} |")
    print(f"wrote {args.out}")
    return payload


if __name__ == "__main__":
    main()
