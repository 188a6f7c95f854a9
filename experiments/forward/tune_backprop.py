"""Tune the backprop baseline's weight decay on validation (issue 7, link prediction).

The ForwardGNN grid's backprop row trains the same stack as the forward variants
end to end, without weight decay (the paper's settings). To check that the gap
to FF / SF is not just missing regularisation, this script trains the backprop
row of each (dataset, depth) at every ``--weight-decays`` value, seed 0, through
``experiments/forward/grid.py`` (one ``graphlearn train`` per run; finished runs
are skipped), and selects, per (dataset, depth), the value with the best
validation AUROC. Test metrics are not read. Prints a markdown table and writes
JSON with every value, the selection and the commands::

    python experiments/forward/tune_backprop.py --root ../shared/data --runs runs/forward_wd \\
        --json experiments/results/forward/backprop_weight_decay.json

Then run the selected value over 5 seeds with the grid (``--set
train.weight_decay=<selected>``), as ``experiments/results/forward/link.md`` shows.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from graphlearn.train.utils import git_commit

sys.path.insert(0, str(Path(__file__).resolve().parent))
import grid as forward_grid  # experiments/forward/grid.py

REPO = Path(__file__).resolve().parents[2]
WEIGHT_DECAYS = ["0", "1e-5", "1e-4", "5e-4", "1e-3", "5e-3"]


def valid_auroc(run: Path) -> float:
    return float(json.loads((run / "final.json").read_text())["valid"]["auroc"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", help="data root (default: the data layer's)")
    parser.add_argument("--runs", type=Path, default=Path("runs/forward_wd"),
                        help="runs go to RUNS/wd<value>/link_<dataset>/ (default runs/forward_wd)")
    parser.add_argument("--datasets", nargs="+", default=list(forward_grid.DATASETS),
                        choices=forward_grid.DATASETS)
    parser.add_argument("--layers", nargs="+", type=int, default=[2, 4])
    parser.add_argument("--weight-decays", nargs="+", default=WEIGHT_DECAYS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="more overrides for every run (e.g. train.epochs=2 for a smoke run)")
    parser.add_argument("--json", type=Path, help="also write the table as JSON")
    args = parser.parse_args(argv)
    for value in args.weight_decays:
        try:
            if float(value) < 0:
                raise ValueError
        except ValueError:
            parser.error(f"--weight-decays: {value!r} is not a number >= 0")

    commands = []
    for value in args.weight_decays:
        grid_args = ["--runs", str(args.runs / f"wd{value}"),
                     "--out", str(args.runs / f"wd{value}" / "summary"), "--tasks", "link",
                     "--datasets", *args.datasets, "--variants", "backprop",
                     "--layers", *map(str, args.layers), "--seeds", str(args.seed),
                     "--set", f"train.weight_decay={value}", *args.set]
        if args.root:
            grid_args = ["--root", args.root, *grid_args]
        commands.append("python experiments/forward/grid.py " + " ".join(grid_args))
        forward_grid.main(grid_args)

    rows, table = [], {}
    header = ["dataset", "layers", *(f"wd {v}" for v in args.weight_decays), "selected"]
    for dataset in args.datasets:
        for depth in args.layers:
            name = f"gcn-L{depth}-backprop_s{args.seed}"
            values = {v: valid_auroc(args.runs / f"wd{v}" / f"link_{dataset}" / name)
                      for v in args.weight_decays}
            selected = max(values, key=values.get)
            table[f"{dataset}-L{depth}"] = {"valid_auroc": values, "selected": selected}
            rows.append([dataset, str(depth), *(f"{values[v]:.4f}" for v in args.weight_decays),
                         selected])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    print(f"\nbackprop, validation AUROC (seed {args.seed}) per weight decay\n")
    print("\n".join(lines))
    if args.json:
        payload = {"metric": "valid auroc", "seed": args.seed, "results": table,
                   "command": " ".join(["python", *sys.argv]), "grid_commands": commands,
                   "git_commit": git_commit(REPO)}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
