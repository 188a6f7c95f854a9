"""MovieLens-100K recommendation grid (issue 6): every model × seeds, one command.

    python experiments/recommendation/ml100k_grid.py --root ../shared/data \\
        --runs runs/ml100k --out experiments/results/recommendation/ml100k_grid

Trains each row's config (``experiments/configs/recommendation/ml-100k/``) once
per seed through ``graphlearn train`` (``train.seed`` varies, the data split
stays seed 2020: the seeds measure training noise, not split noise), one torch
thread per run, and skips runs whose ``final.json`` already exists, so an
interrupted grid resumes. Then it prints a markdown table of the test metrics of
each run's checkpoint selected on validation (mean ± sample std over seeds),
writes the same as JSON (``OUT.json``, every run's final metrics, command and
commit included) and markdown (``OUT.md``), and plots validation NDCG@10 over
epochs per model (``OUT_valid_ndcg.png``, mean over seeds; needs matplotlib).

``--protocol paper`` runs the Sheaf4Rec paper's variant instead: ratings >= 3
as positives and an 80/20 split of them, of which we keep a validation
split for model selection (70/10/20) - the paper selected on test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from tqdm import tqdm

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "experiments" / "configs" / "recommendation" / "ml-100k"

#: row name -> (config file, overrides)
ROWS: dict[str, tuple[str, list[str]]] = {
    "bpr_mf": ("bpr_mf.yaml", []),
    "lightgcn": ("lightgcn_tuned.yaml", []),
    "ngcf": ("ngcf.yaml", []),
    "sheaf_diagonal": ("sheaf_rec.yaml", ["model.params.restriction=diagonal"]),
    "sheaf_orthogonal": ("sheaf_rec.yaml", ["model.params.restriction=orthogonal"]),
    "sheaf_orthogonal_exp": ("sheaf_rec.yaml", ["model.params.restriction=orthogonal_exp"]),
    "sheaf_general": ("sheaf_rec.yaml", ["model.params.restriction=general"]),
    "sheaf_scalar": ("sheaf_rec.yaml", ["model.params.restriction=scalar"]),
    # control: identity maps make the sheaf recommender LightGCN with self-loops
    "sheaf_identity": ("sheaf_rec.yaml", ["model.params.restriction=identity"]),
}

#: the Sheaf4Rec paper's data protocol, as config overrides
PAPER_PROTOCOL = ["data.rating_threshold=3", "data.ratios=[0.7,0.1,0.2]"]

METRICS = ["recall@10", "recall@20", "ndcg@10", "ndcg@20", "mrr@10", "hit@10",
           "precision@10", "f1@10"]


def _run(row: str, seed: int, root: str | None, runs: Path, extra: list[str],
         threads: int) -> Path:
    config, overrides = ROWS[row]
    out = runs / f"{row}_s{seed}"
    if (out / "final.json").is_file():
        return out
    cmd = [sys.executable, "-m", "graphlearn", "train", str(CONFIGS / config),
           *overrides, *extra, f"train.seed={seed}", "--out", str(out),
           "--threads", str(threads), "--no-progress"]
    if root:
        cmd.insert(5, f"data.root={root}")
    log = runs / f"{row}_s{seed}.log"
    with open(log, "w") as f:
        proc = subprocess.run(cmd, check=False, stdout=f, stderr=subprocess.STDOUT, cwd=REPO,
                              env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    if proc.returncode != 0:
        raise SystemExit(f"{row} seed {seed} failed (exit {proc.returncode}); see {log}")
    return out


def _curve(run: Path, metric: str) -> list[tuple[int, float]]:
    points = []
    with open(run / "metrics.jsonl") as f:
        for line in f:
            record = json.loads(line)
            if record.get("split") == "valid" and metric in record.get("metrics", {}):
                points.append((int(record["epoch"]), float(record["metrics"][metric])))
    return points


def _fmt(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def summarize(results: dict[str, list[Path]]) -> tuple[str, dict]:
    header = ["model", "seeds", *METRICS, "valid (selection)", "selected epochs", "s/epoch"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    payload: dict = {"metrics": METRICS, "rows": {}}
    for row, runs in results.items():
        finals = [json.loads((r / "final.json").read_text()) for r in runs]
        cells = [row, ", ".join(str(f["seed"]) for f in finals)]
        stats = {}
        for m in METRICS:
            values = [float(f["test"][m]) for f in finals]
            stats[m] = {"mean": statistics.mean(values),
                        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                        "values": values}
            cells.append(_fmt(values))
        chosen = [float(f["valid"][f["metric"]]) for f in finals]
        cells.append(f"{finals[0]['metric']} {_fmt(chosen)}")
        cells.append(" / ".join(str(f["selected_epoch"]) for f in finals))
        seconds = [float(f["seconds_per_epoch"]) for f in finals]
        cells.append(f"{statistics.mean(seconds):.2f}")
        lines.append("| " + " | ".join(cells) + " |")
        payload["rows"][row] = {"config": ROWS[row][0], "overrides": ROWS[row][1],
                                "test": stats, "seconds_per_epoch": seconds,
                                "valid_selection": {"metric": finals[0]["metric"],
                                                    "values": chosen},
                                "runs": [{"dir": str(r), **f} for r, f in zip(runs, finals)]}
    return "\n".join(lines), payload


def plot(results: dict[str, list[Path]], path: Path, metric: str = "ndcg@10") -> Path | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot (pip install 'graphlearn[plot]')")
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row, runs in results.items():
        curves = [dict(_curve(r, metric)) for r in runs]
        epochs = sorted(set.intersection(*(set(c) for c in curves)))
        if not epochs:
            continue
        ax.plot(epochs, [statistics.mean(c[e] for c in curves) for e in epochs], label=row)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"validation {metric.upper()} (mean over seeds)")
    ax.set_title("MovieLens-100K: validation curves per model")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", help="data root (default: the data layer's, fetching)")
    parser.add_argument("--runs", type=Path, default=Path("runs/ml100k"))
    parser.add_argument("--out", type=Path, required=True,
                        help="output stem: writes OUT.json, OUT.md, OUT_valid_ndcg.png")
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[2020, 2021, 2022])
    parser.add_argument("--protocol", choices=("recbole", "paper"), default="recbole")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="more overrides for every run (e.g. train.epochs=2 for a smoke run)")
    args = parser.parse_args(argv)
    extra = (PAPER_PROTOCOL if args.protocol == "paper" else []) + args.set
    args.runs.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[Path]] = {row: [] for row in args.rows}
    jobs = [(row, seed) for row in args.rows for seed in args.seeds]
    for row, seed in tqdm(jobs, desc="ml-100k grid", unit="run"):
        results[row].append(_run(row, seed, args.root, args.runs, extra, args.threads))
    table, payload = summarize(results)
    payload.update({"protocol": args.protocol, "extra_overrides": extra, "seeds": args.seeds,
                    "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    image = plot(results, args.out.parent / f"{args.out.name}_valid_ndcg.png")
    payload["plot"] = str(image) if image else None
    Path(f"{args.out}.json").write_text(json.dumps(payload, indent=2) + "\n")
    Path(f"{args.out}.md").write_text(table + "\n")
    print(table)
    print(f"wrote {args.out}.json, {args.out}.md" + (f", {image}" if image else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
