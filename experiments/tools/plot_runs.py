"""Validation curves of several models' runs in one plot.

    python experiments/tools/plot_runs.py --metric hits@20 \
        --out experiments/results/ogbl/ddi_valid.png --title "ogbl-ddi, seed 0" \
        GCN=runs/ddi_gcn_s0 GraphSAGE=runs/ddi_sage_s0

Each positional argument is ``LABEL=RUN[,RUN...]``: one curve, the mean over
its runs of the validation ``--metric`` read from each run's ``metrics.jsonl``;
a RUN may also be a summary JSON of ``summarize_runs.py --json``, whose runs'
recorded ``valid_curve`` stand in for directories that are gone
(``experiments/tools/grid_runs.py``'s plot, over the epochs every run of the
label evaluated; needs matplotlib). For one model's seeds with a table, use
``summarize_runs.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grid_runs import plot_curves, summary_runs


def _summary_runs(path: Path) -> list[dict]:
    """The runs of a ``summarize_runs.py --json`` summary, each with a ``valid_curve``."""
    try:
        runs = summary_runs(path)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error
    for i, run in enumerate(runs):
        if not run.get("valid_curve"):
            raise argparse.ArgumentTypeError(
                f"{path}: runs[{i}] has no valid_curve (summarised before curves were "
                f"recorded; plot its run directory instead)")
    return runs


def parse_curve(text: str) -> tuple[str, list[Path | dict]]:
    """``LABEL=RUN[,RUN...]`` -> ``(label, runs)``; each run is a directory holding a
    ``metrics.jsonl`` or a summary ``.json`` (its runs join the curve)."""
    label, sep, paths = text.partition("=")
    if not sep or not label or not paths:
        raise argparse.ArgumentTypeError(f"{text!r}: expected LABEL=RUN[,RUN...]")
    runs: list[Path | dict] = []
    for run in (Path(p) for p in paths.split(",") if p):
        if run.suffix == ".json" and run.is_file():
            runs.extend(_summary_runs(run))
        elif (run / "metrics.jsonl").is_file():
            runs.append(run)
        else:
            raise argparse.ArgumentTypeError(f"{run / 'metrics.jsonl'}: missing (is {run} "
                                             f"a run directory or a summary .json?)")
    return label, runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("curves", nargs="+", type=parse_curve, metavar="LABEL=RUN[,RUN...]")
    parser.add_argument("--metric", required=True, help="a validation metric of the runs")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    parser.add_argument("--title", default="", help="the plot's title")
    args = parser.parse_args(argv)
    labels = [label for label, _ in args.curves]
    if len(set(labels)) != len(labels):
        parser.error(f"labels must differ, got {labels}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    path = plot_curves(dict(args.curves), args.out, args.metric,
                       args.title or f"validation {args.metric}")
    if path is None:
        return 1
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
