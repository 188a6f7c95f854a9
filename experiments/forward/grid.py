"""ForwardGNN grid (issue 7): task × dataset × backbone × depth × variant × seeds.

    python experiments/forward/grid.py --root ../shared/data --runs runs/forward \\
        --tasks link --datasets cora citeseer --backbones gcn --layers 2 --seeds 0 1 2 3 4 \\
        --out experiments/results/forward

Every row is a config of ``experiments/configs/{link,node}/<dataset>/forward_*.yaml``
with overrides (``forward.backbone``, ``forward.num_layers``; node ``ff-virtual``
is the ``ff`` config with ``forward.variant=ff-virtual``; ``--node-split random``
swaps Planetoid's public split for a seeded 64/16/20 random node split), trained
once per seed through ``graphlearn train`` (``train.seed`` varies; the split is
seed 0 throughout, so seeds measure training noise), one torch thread per run,
``--jobs`` runs at a time (default 1; ``--jobs 2`` on two free cores).
Finished runs (``final.json``) are skipped and interrupted ones resumed, so the
grid can be run in pieces; a run another grid is training stops this one. Per (task, dataset, split) it prints and writes a
markdown table of the test metrics (mean ± sample std over seeds, selection on
validation), a JSON with every run's final record, command and commit, and a
plot of the validation metric over epochs per row:
``OUT/<task>_<dataset>[_random]_grid.{md,json}`` and ``..._valid.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from grid_runs import REPO, Row, plot_curves, run_rows, summarize

CONFIGS = REPO / "experiments" / "configs"
DATASETS = ("cora", "citeseer")
BACKBONES = ("gcn", "sage", "gat", "gatv2")
#: variant -> (config stem, extra overrides), per task
VARIANTS: dict[str, dict[str, tuple[str, list[str]]]] = {
    "link": {"backprop": ("forward_backprop", []), "ff": ("forward_ff", []),
             "sf": ("forward_sf", []), "sf-topdown": ("forward_sf_topdown", []),
             "ccl": ("forward_ccl", [])},
    "node": {"backprop": ("forward_backprop", []), "ff-label": ("forward_ff", []),
             "ff-virtual": ("forward_ff", ["forward.variant=ff-virtual"]),
             "sf": ("forward_sf", []), "sf-topdown": ("forward_sf_topdown", []),
             "ccl": ("forward_ccl", [])},
}
#: ForwardGNN's random node split (DESIGN.md §2): 64/16/20, split seed 0
RANDOM_NODE_SPLIT = ["data.split=random", "data.val_ratio=0.16", "data.test_ratio=0.2",
                     "data.split_seed=0"]
METRICS = {"link": ["auroc", "ap"], "node": ["accuracy"]}


def rows_for(task: str, dataset: str, backbones: list[str], layers: list[int],
             variants: list[str], node_split: str = "public") -> dict[str, Row]:
    """The grid rows of one table, named ``<backbone>-L<layers>-<variant>``."""
    rows = {}
    for backbone in backbones:
        for depth in layers:
            for variant in variants:
                stem, extra = VARIANTS[task][variant]
                overrides = [f"forward.backbone={backbone}", f"forward.num_layers={depth}",
                             *extra]
                if task == "node" and node_split == "random":
                    overrides += RANDOM_NODE_SPLIT
                rows[f"{backbone}-L{depth}-{variant}"] = Row(
                    CONFIGS / task / dataset / f"{stem}.yaml", overrides)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", help="data root (default: the data layer's)")
    parser.add_argument("--runs", type=Path, default=Path("runs/forward"))
    parser.add_argument("--out", type=Path, default=Path("runs/forward/results"),
                        help="where the tables, JSON and plots go (the committed ones: "
                             "experiments/results/forward)")
    parser.add_argument("--tasks", nargs="+", default=["link", "node"], choices=["link", "node"])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--backbones", nargs="+", default=["gcn"], choices=BACKBONES)
    parser.add_argument("--layers", nargs="+", type=int, default=[2])
    parser.add_argument("--variants", nargs="+",
                        help="default: every variant of the task (link: backprop ff sf "
                             "sf-topdown ccl; node: backprop ff-label ff-virtual sf "
                             "sf-topdown ccl)")
    parser.add_argument("--node-split", choices=["public", "random"], default="public")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (1)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs at a time (1); keep jobs x threads at most the cores")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="more overrides for every run (e.g. train.epochs=2 for a smoke run)")
    args = parser.parse_args(argv)
    for task in args.tasks:
        unknown = sorted(set(args.variants or []) - set(VARIANTS[task]))
        if unknown and len(args.tasks) == 1:
            parser.error(f"--variants {' '.join(unknown)}: not a {task} variant "
                         f"(choose from {', '.join(VARIANTS[task])})")

    for task in args.tasks:
        variants = [v for v in (args.variants or VARIANTS[task]) if v in VARIANTS[task]]
        split = args.node_split if task == "node" else "random"
        for dataset in args.datasets:
            rows = rows_for(task, dataset, args.backbones, args.layers, variants,
                            args.node_split)
            tag = f"{task}_{dataset}" + ("_random" if task == "node" and split == "random"
                                         else "")
            results = run_rows(rows, args.seeds, args.runs / tag, workers=args.jobs, desc=tag,
                               root=args.root, extra=args.set, threads=args.threads)
            table, payload = summarize(results, METRICS[task], rows, label="row")
            payload.update({"task": task, "dataset": dataset, "split": split,
                            "seeds": args.seeds, "extra_overrides": args.set,
                            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])})
            args.out.mkdir(parents=True, exist_ok=True)
            stem = args.out / f"{tag}_grid"
            metric = METRICS[task][0]
            image = plot_curves(results, args.out / f"{tag}_grid_valid.png", metric,
                                f"{dataset} {task}: validation {metric} per row")
            payload["plot"] = str(image) if image else None
            Path(f"{stem}.json").write_text(json.dumps(payload, indent=2) + "\n")
            Path(f"{stem}.md").write_text(table + "\n")
            print(f"\n### {tag}\n\n{table}\nwrote {stem}.json, {stem}.md"
                  + (f", {image}" if image else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
