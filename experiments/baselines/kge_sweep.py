"""Small hyper-parameter grid for the KGE baselines, selected on validation MRR only.

For each model, every grid point is trained with seed 0 and scored by its best
validation MRR; the winning point is then rerun with seeds 0, 1, 2 and its
test metrics (of the epoch selected on validation) are averaged. The grid's
test numbers are never looked at. Writes
``experiments/results/baselines/kge_<dataset>_summary.json``.

    python experiments/baselines/kge_sweep.py --dataset nations
    python experiments/baselines/kge_sweep.py --dataset grail/fb237_v1 --rotate-training negative
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import kge_nations
from _results import RESULTS, command_line, environment, write_json

METRICS = kge_nations.METRICS


def grid(
    model: str, epochs: int, eval_every: int, rotate_training: str, dims: list[str]
) -> list[list[str]]:
    """Grid points as argument lists for :func:`kge_nations.main`."""
    e = ["--epochs", str(epochs), "--eval-every", str(eval_every)]
    points: list[list[str]] = []
    if model in ("distmult", "complex"):
        for dim, n3 in itertools.product(dims, ["0", "0.003", "0.01", "0.03", "0.1"]):
            points.append(
                e
                + [
                    "--training",
                    "1vsall",
                    "--optimizer",
                    "adagrad",
                    "--lr",
                    "0.1",
                    "--dim",
                    dim,
                    "--n3",
                    n3,
                ]
            )
        for lr in ["0.001", "0.01"]:
            points.append(
                e
                + [
                    "--training",
                    "negative",
                    "--optimizer",
                    "adam",
                    "--lr",
                    lr,
                    "--dim",
                    "200",
                    "--num-negative",
                    "32",
                    "--temperature",
                    "1",
                    "--init-std",
                    "0.1",
                ]
            )
    elif model == "rotate":
        for gamma, lr in itertools.product(["6", "12"], ["0.001", "0.003"]):
            points.append(
                e
                + [
                    "--training",
                    "negative",
                    "--optimizer",
                    "adam",
                    "--lr",
                    lr,
                    "--dim",
                    "200",
                    "--gamma",
                    gamma,
                    "--num-negative",
                    "32",
                    "--temperature",
                    "1",
                ]
            )
            if rotate_training == "both":
                points.append(
                    e
                    + [
                        "--training",
                        "1vsall",
                        "--optimizer",
                        "adam",
                        "--lr",
                        lr,
                        "--dim",
                        "200",
                        "--gamma",
                        gamma,
                    ]
                )
    else:
        raise SystemExit(f"no grid for model {model!r}")
    return points


def summarize(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="nations")
    p.add_argument("--models", nargs="+", default=["distmult", "complex", "rotate"])
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--eval-every", type=int, default=1)
    p.add_argument("--dims", nargs="+", default=["100", "200"], help="DistMult/ComplEx grid dims")
    p.add_argument(
        "--rotate-training",
        choices=("both", "negative"),
        default="both",
        help="RotatE grid: both regimes, or negative sampling only (1-vs-all RotatE scores "
        "a [b, N, d] block per batch, slow for thousands of entities on CPU)",
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--data-root", type=Path, default=kge_nations.DEFAULT_DATA_ROOT)
    args = p.parse_args()

    start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="kge_sweep_"))
    common = ["--dataset", args.dataset, "--no-progress"]
    if args.data_root != kge_nations.DEFAULT_DATA_ROOT:
        common += ["--data-root", str(args.data_root)]
    summary: dict = {"command": command_line(), "dataset": args.dataset, "models": {}}
    for model in args.models:
        tried = []
        for i, point in enumerate(
            grid(model, args.epochs, args.eval_every, args.rotate_training, args.dims)
        ):
            result = kge_nations.main(
                common
                + ["--model", model, "--seed", "0", "--out", str(tmp / f"{model}_{i}.json")]
                + point
            )
            tried.append(
                {
                    "args": " ".join(point),
                    "selected_epoch": result["selected_epoch"],
                    "valid_mrr": result["valid"]["mrr"],
                }
            )
            print(
                f"  [{model} {i}] valid MRR {result['valid']['mrr']:.4f}  {' '.join(point)}",
                flush=True,
            )
        best = max(tried, key=lambda t: t["valid_mrr"])
        runs = []
        for seed in args.seeds:
            result = kge_nations.main(
                common + ["--model", model, "--seed", str(seed)] + best["args"].split()
            )
            runs.append(result)
        summary["models"][model] = {
            "selected_args": best["args"],
            "grid": tried,
            "seeds": args.seeds,
            "selected_epochs": [r["selected_epoch"] for r in runs],
            "valid": {m: summarize([r["valid"][m] for r in runs]) for m in METRICS},
            "test": {m: summarize([r["test"][m] for r in runs]) for m in METRICS},
            "wall_time_s_per_run": [r["wall_time_s"] for r in runs],
        }
        test = summary["models"][model]["test"]
        print(
            f"== {model}: "
            + "  ".join(f"{m} {test[m]['mean']:.4f}±{test[m]['std']:.4f}" for m in METRICS),
            flush=True,
        )
    summary["wall_time_s"] = round(time.perf_counter() - start, 1)
    summary["environment"] = environment()
    name = args.dataset.replace("/", "_")
    out = RESULTS / f"kge_{name}_summary.json"
    write_json(out, summary)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
