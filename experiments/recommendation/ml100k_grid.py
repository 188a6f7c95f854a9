"""MovieLens-100K recommendation grid (issue 6): every model × seeds, one command.

    python experiments/recommendation/ml100k_grid.py --root ../shared/data \\
        --runs runs/ml100k --out experiments/results/recommendation/ml100k_grid

Trains each row's config (``experiments/configs/recommendation/ml-100k/``) once
per seed through ``graphlearn train`` (``train.seed`` varies, the data split
stays seed 2020: the seeds measure training noise, not split noise), one torch
thread per run (``--jobs`` runs at a time, default 1), and skips runs whose
``final.json`` already exists, so an interrupted grid resumes. Then it prints a
markdown table of the test metrics of each run's checkpoint selected on validation (mean ± sample std over seeds),
writes the same as JSON (``OUT.json``, every run's final metrics, command and
commit included) and markdown (``OUT.md``), and plots validation NDCG@10 over
epochs per model (``OUT_valid_ndcg.png``, mean over seeds; needs matplotlib).

``--ablations`` runs the ablation rows of the diagonal sheaf recommender instead
(stalk dimension at fixed ``d·f = 64``, shared maps, NSD's diffusion update, no
normalisation; ``ABLATIONS``), each one change from ``sheaf_diagonal``.

``--protocol paper`` runs the Sheaf4Rec paper's variant instead: ratings >= 3
as positives and an 80/20 split of them, of which we keep a validation
split for model selection (70/10/20) - the paper selected on test.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from grid_runs import REPO, Row, plot_curves, run_rows, summarize

CONFIGS = REPO / "experiments" / "configs" / "recommendation" / "ml-100k"


def _row(config: str, *overrides: str) -> Row:
    return Row(CONFIGS / config, list(overrides))


#: row name -> config and overrides
ROWS: dict[str, Row] = {
    "bpr_mf": _row("bpr_mf.yaml"),
    "lightgcn": _row("lightgcn_tuned.yaml"),
    "ngcf": _row("ngcf.yaml"),
    "sheaf_diagonal": _row("sheaf_rec.yaml", "model.params.restriction=diagonal"),
    "sheaf_orthogonal": _row("sheaf_rec.yaml", "model.params.restriction=orthogonal"),
    "sheaf_orthogonal_exp": _row("sheaf_rec.yaml", "model.params.restriction=orthogonal_exp"),
    "sheaf_general": _row("sheaf_rec.yaml", "model.params.restriction=general"),
    "sheaf_scalar": _row("sheaf_rec.yaml", "model.params.restriction=scalar"),
    # control: identity maps make the sheaf recommender LightGCN with self-loops
    "sheaf_identity": _row("sheaf_rec.yaml", "model.params.restriction=identity"),
    # ablations of the diagonal sheaf recommender, one change each (ABLATIONS)
    "sheaf_d1": _row("sheaf_rec.yaml", "model.params.stalk_dim=1"),
    "sheaf_d2": _row("sheaf_rec.yaml", "model.params.stalk_dim=2"),
    "sheaf_d4": _row("sheaf_rec.yaml", "model.params.stalk_dim=4"),
    "sheaf_d16": _row("sheaf_rec.yaml", "model.params.stalk_dim=16"),
    "sheaf_shared_maps": _row("sheaf_rec.yaml", "model.params.maps=shared"),
    "sheaf_diffusion": _row("sheaf_rec.yaml", "model.params.update=diffusion"),
    "sheaf_unnormalized": _row("sheaf_rec.yaml", "model.params.normalize=false"),
}

#: the ablation rows and the row they change one thing of (run them with the tuned
#: settings of sheaf_tuning.md: --set train.lr=0.001 model.params.reg_weight=0.001)
ABLATIONS = ["sheaf_diagonal", "sheaf_d1", "sheaf_d2", "sheaf_d4", "sheaf_d16",
             "sheaf_shared_maps", "sheaf_diffusion", "sheaf_unnormalized"]

#: the Sheaf4Rec paper's data protocol, as config overrides
PAPER_PROTOCOL = ["data.rating_threshold=3", "data.ratios=[0.7,0.1,0.2]"]

def default_rows() -> list[str]:
    """Every row but the ablations (``sheaf_diagonal`` is both)."""
    return [row for row in ROWS if row not in ABLATIONS or row == "sheaf_diagonal"]


METRICS = ["recall@10", "recall@20", "ndcg@10", "ndcg@20", "mrr@10", "hit@10",
           "precision@10", "f1@10"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", help="data root (default: the data layer's, fetching)")
    parser.add_argument("--runs", type=Path, default=Path("runs/ml100k"))
    parser.add_argument("--out", type=Path, required=True,
                        help="output stem: writes OUT.json, OUT.md, OUT_valid_ndcg.png")
    parser.add_argument("--rows", nargs="+", choices=list(ROWS),
                        help="rows to run (default: every row but the ablations)")
    parser.add_argument("--ablations", action="store_true",
                        help=f"run the ablation rows ({' '.join(ABLATIONS)}) instead")
    parser.add_argument("--seeds", nargs="+", type=int, default=[2020, 2021, 2022])
    parser.add_argument("--protocol", choices=("recbole", "paper"), default="recbole")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (1)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs at a time (1); keep jobs x threads at most the cores")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="more overrides for every run (e.g. train.epochs=2 for a smoke run)")
    args = parser.parse_args(argv)
    if args.ablations and args.rows:
        parser.error("--rows and --ablations are exclusive")
    if args.ablations:
        args.rows = ABLATIONS
    elif not args.rows:
        args.rows = default_rows()
    extra = (PAPER_PROTOCOL if args.protocol == "paper" else []) + args.set
    args.runs.mkdir(parents=True, exist_ok=True)
    results = run_rows({row: ROWS[row] for row in args.rows}, args.seeds, args.runs,
                       workers=args.jobs, desc="ml-100k grid", root=args.root, extra=extra,
                       threads=args.threads)
    table, payload = summarize(results, METRICS, ROWS)
    payload.update({"protocol": args.protocol, "extra_overrides": extra, "seeds": args.seeds,
                    "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    image = plot_curves(results, args.out.parent / f"{args.out.name}_valid_ndcg.png", "ndcg@10",
                        "MovieLens-100K: validation curves per model")
    payload["plot"] = str(image) if image else None
    Path(f"{args.out}.json").write_text(json.dumps(payload, indent=2) + "\n")
    Path(f"{args.out}.md").write_text(table + "\n")
    print(table)
    print(f"wrote {args.out}.json, {args.out}.md" + (f", {image}" if image else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
