"""Backprop vs forward learning of a 2-layer GCN on Planetoid node classification.

Issue 7 (ForwardGNN, Park et al., ICLR 2024; CCL, Kao & Hariharan, NeurIPS 2024).
Protocol: Planetoid's public split (20 labelled nodes per class, 500 validation,
1000 test), transductive, full batch, message graph = the whole graph. Model:
GCN ``F(+C) -> hidden -> hidden`` in a :class:`LayerLocalStack` (ReLU, length-
normalised layer inputs; :class:`TopDownStack` for ``sf-topdown``), built by
:func:`build_stack` with the input widths each variant needs; every layer and
head has its own Adam. Variants (``--variants``, default all of
``list_variants("node")``): ``backprop``, ``ff-label``, ``ff-virtual``, ``sf``,
``sf-topdown``, ``ccl``; exact losses in ``graphlearn/train/forward/node.py``.

``--epochs`` full-batch steps; the epoch is selected on validation accuracy;
test is read once, at the selection.

    python experiments/forward/planetoid_nc.py --datasets cora citeseer --seeds 0 1 2
    python experiments/forward/planetoid_nc.py --datasets cora --seeds 0 --epochs 50

Exits 0 with a message when a dataset is not under ``--data-root``.
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

from graphlearn.data.registry import load_dataset
from graphlearn.errors import DatasetNotFoundError
from graphlearn.io import atomic_write
from graphlearn.train.forward import build_stack, list_variants, train_forward_node

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA_ROOT = REPO.parent / "shared" / "data"
DEFAULT_OUT = REPO / "experiments" / "results" / "forward" / "planetoid_nc.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", default=["cora", "citeseer"])
    p.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variants", nargs="+", default=list_variants("node"),
                   choices=list_variants("node"))
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--theta", type=float, default=2.0)
    p.add_argument("--ccl-temperature", type=float, default=0.1)
    p.add_argument("--topdown-iterations", type=int, default=3)
    p.add_argument("--label-context", default="shared", choices=["shared", "uniform"])
    p.add_argument("--eval-every", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return p.parse_args(argv)


def summarize(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def run(args: argparse.Namespace, data, variant: str, seed: int) -> dict:
    num_classes = int(data.y.max()) + 1
    stack = build_stack(lambda i, o: GCNConv(i, o), data.num_features,
                        [args.hidden, args.hidden], variant=variant, task="node",
                        num_classes=num_classes)
    out = train_forward_node(stack, data, variant=variant, epochs=args.epochs, lr=args.lr,
                             weight_decay=args.weight_decay, theta=args.theta,
                             ccl_temperature=args.ccl_temperature,
                             topdown_iterations=args.topdown_iterations,
                             label_context=args.label_context, eval_every=args.eval_every,
                             seed=seed)
    return {"variant": variant, "seed": seed, **out}


def main(argv: list[str] | None = None) -> dict | None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    runs: dict[str, dict[str, list[dict]]] = {}
    for name in args.datasets:
        try:
            data = load_dataset(name, root=args.data_root, download=False)
        except DatasetNotFoundError as error:
            print(f"skipped: {name} not found under {args.data_root} ({error})")
            continue
        for variant in args.variants:
            for seed in args.seeds:
                result = run(args, data, variant, seed)
                runs.setdefault(name, {}).setdefault(variant, []).append(result)
                m = result["metrics"]
                print(f"{name:9s} {variant:11s} seed {seed}: test acc {m['test']['accuracy']:.4f}"
                      f"  valid {m['valid']['accuracy']:.4f}  (epoch {result['selected_epoch']},"
                      f" {result['wall_time_s']:.1f} s)", flush=True)
    if not runs:
        return None
    table = {
        name: {
            variant: {split: summarize([r["metrics"][split]["accuracy"] for r in results])
                      for split in ("valid", "test")}
            | {"wall_time_s": summarize([r["wall_time_s"] for r in results])}
            for variant, results in by_variant.items()
        }
        for name, by_variant in runs.items()
    }
    payload = {
        "command": shlex.join(["python", str(Path(__file__).resolve().relative_to(REPO)),
                               *(sys.argv[1:] if argv is None else argv)]),
        "task": "node_classification",
        "model": f"gcn-2x{args.hidden}",
        "protocol": "Planetoid public split, transductive, full batch, selection on valid "
                    "accuracy",
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "summary": table,
        "environment": {"python": platform.python_version(), "torch": torch.__version__,
                        "threads": torch.get_num_threads()},
        "wall_time_s": round(time.perf_counter() - start, 2),
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out, lambda f: json.dump(payload, f, indent=1))
    print(f"\nseeds {args.seeds}, {args.epochs} epochs, test accuracy (%):")
    names = list(table)
    print("| variant | " + " | ".join(names) + " | s/run |")
    print("|---|" + "---|" * len(names) + "---|")
    for variant in args.variants:
        cells = []
        for name in names:
            row = table[name].get(variant)
            cells.append("—" if row is None else
                         f"{100 * row['test']['mean']:.2f} ± {100 * row['test']['std']:.2f}")
        seconds = statistics.fmean(table[n][variant]["wall_time_s"]["mean"] for n in names
                                   if variant in table[n])
        print(f"| {variant} | " + " | ".join(cells) + f" | {seconds:.1f} |")
    print(f"wrote {args.out}")
    return payload


if __name__ == "__main__":
    main()
