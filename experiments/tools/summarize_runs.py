"""Summarise run directories into a markdown table row and a JSON record.

    python experiments/tools/summarize_runs.py runs/fb237_v1_s0 runs/fb237_v1_s1 \
        --metrics mrr hits@1 hits@10 hits@10_50 --json experiments/results/kg/fb237_v1_nbfnet.json

Reads each run's ``final.json`` (written by ``graphlearn train``) and prints, per
metric, the test mean ± sample std over the runs with the per-run values, the
selected epochs, seconds per epoch (and, in the JSON, each epoch's training
seconds from ``metrics.jsonl``), peak memory, seeds, commands, commits and
the machine. ``--json`` writes the same facts (the per-run final metrics of
both splits and each run's validation curves, ``valid_curve``, included) for
the results folder. ``--plot FILE`` draws the
validation curve of ``--plot-metric`` (default: the first of ``--metrics``), mean
over the runs (``experiments/tools/grid_runs.py``'s plot; needs matplotlib).

``--include SUMMARY.json`` adds the runs recorded in an earlier ``--json`` summary
whose directories are gone (a run dir on a machine that no longer exists): a
seed finished in one session joins seeds finished later. Those runs keep the
facts the summary recorded, and join ``--plot`` when it recorded their curves
(summaries written before ``valid_curve`` existed have none).

    python experiments/tools/summarize_runs.py runs/fb237_v2_s1 runs/fb237_v2_s2 \
        --include experiments/results/kg/fb237_v2_nbfnet.json --json experiments/results/kg/fb237_v2_nbfnet.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grid_runs import curve as grid_curve
from grid_runs import metric_records, plot_curves, summary_runs, valid_curves


def _load(run: Path) -> dict:
    path = run / "final.json"
    if not path.is_file():
        raise SystemExit(f"{path}: missing (is {run} a finished run directory?)")
    final = json.loads(path.read_text())
    if (run / "metrics.jsonl").is_file():
        records = metric_records(run)
        # training seconds of each epoch, in order (resumed epochs included)
        final["epoch_train_time_s"] = [r["train_time_s"] for r in records
                                       if r.get("train_time_s") is not None]
        final["valid_curve"] = valid_curves(records)
    return final


def _included(path: Path, metrics: list[str], split: str) -> list[dict]:
    """The runs of an earlier summary JSON, checked to carry ``metrics`` on ``split``."""
    try:
        runs = summary_runs(path)
    except ValueError as error:
        raise SystemExit(str(error)) from error
    for i, run in enumerate(runs):
        missing = [m for m in metrics if m not in (run.get(split) or {})]
        if missing:
            raise SystemExit(f"{path}: runs[{i}] (seed {run.get('seed')}) has no {split} "
                             f"{', '.join(missing)}")
    return runs


def _number(value: float | None, spec: str) -> str:
    """``value`` formatted, or ``-`` where a run did not record it."""
    return "-" if value is None else format(value, spec)


def _mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--metrics", nargs="+", default=["mrr", "hits@1", "hits@10"])
    parser.add_argument("--split", default="test", choices=("valid", "test"))
    parser.add_argument("--json", type=Path, help="write the summary here")
    parser.add_argument("--plot", type=Path, help="write the validation curve here (PNG)")
    parser.add_argument("--plot-metric", help="the curve's metric (default: the first of "
                        "--metrics)")
    parser.add_argument("--label", default="runs", help="the curve's legend label")
    parser.add_argument("--include", type=Path, metavar="SUMMARY_JSON",
                        help="also count the runs recorded in this earlier --json summary")
    parser.add_argument("runs", nargs="*", type=Path, help="run directories")
    args = parser.parse_args(argv)

    finals = [_load(run) for run in args.runs]
    if args.include is not None:
        earlier = _included(args.include, args.metrics, args.split)
        seeds = {f.get("seed") for f in finals}
        clash = sorted(str(r.get("seed")) for r in earlier if r.get("seed") in seeds)
        if clash:
            raise SystemExit(f"{args.include}: seed(s) {', '.join(clash)} also given as a run "
                             f"directory; drop one of the two")
        finals = earlier + finals
    if not finals:
        parser.error("give run directories or --include")
    header = ["seeds", *[f"{args.split} {m}" for m in args.metrics], "selected epochs",
              "s/epoch", "peak MB"]
    row = [", ".join(str(f.get("seed")) for f in finals)]
    for metric in args.metrics:
        values = [float(f[args.split][metric]) for f in finals]
        per_run = " / ".join(f"{v:.4f}" for v in values)
        row.append(f"{_mean_std(values)} ({per_run})" if len(values) > 1 else f"{values[0]:.4f}")
    row.append(" / ".join(str(f["selected_epoch"]) for f in finals))
    row.append(" / ".join(_number(f.get("seconds_per_epoch"), ".1f") for f in finals))
    row.append(" / ".join(_number(f.get("peak_memory_mb"), ".0f") for f in finals))
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    print("| " + " | ".join(row) + " |")
    for f in finals:
        print(f"- seed {f.get('seed')}: `{f.get('command')}` — commit {f.get('git_commit')}, "
              f"{f.get('epochs_run')} epochs, wall {_number(f.get('wall_time_s'), '.0f')} s")
        early = f.get("finished_early")
        if early:
            print(f"  - finished after {early['after_epoch']} of {early['epochs_planned']} "
                  f"epochs (`graphlearn train --resume --finish`)")
        for r in f.get("session_log") or []:
            if len(f["session_log"]) > 1:
                epochs = (f"epochs {r['first_epoch']}–{r['last_epoch']}"
                          if r["first_epoch"] <= r["last_epoch"] else "no epochs")
                print(f"  - session {r['session']}, {epochs}"
                      f" on {r['threads']} thread(s): `{r['command']}` — commit "
                      f"{r['git_commit']}, {r['wall_time_s']:.0f} s, "
                      f"peak {r['peak_memory_mb']:.0f} MB")
    machine = finals[0].get("machine", {})
    print(f"- machine: {machine}")
    if args.json:
        keep = ("seed", "command", "git_commit", "selected_epoch", "epochs_run", "stopped_early",
                "seconds_per_epoch", "epoch_train_time_s", "train_time_s", "wall_time_s",
                "peak_memory_mb", "peak_cuda_memory_mb", "machine",
                "torch_version", "graphlearn_version", "data", "valid", "test", "valid_curve",
                "sessions", "session_log", "finished_early")
        record = {
            "runs": [{k: f.get(k) for k in keep} for f in finals],
            "summary": {m: {"mean": statistics.mean([float(f[args.split][m]) for f in finals]),
                            "std": (statistics.stdev([float(f[args.split][m]) for f in finals])
                                    if len(finals) > 1 else 0.0),
                            "split": args.split}
                        for m in args.metrics},
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    if args.plot:
        metric = args.plot_metric or args.metrics[0]
        with_curve = [f for f in finals if grid_curve(f, metric)]
        if not with_curve:
            print(f"no plot: no run has a validation {metric} curve (summaries written "
                  f"before the curves were recorded have none)", file=sys.stderr)
        elif plot_curves({args.label: with_curve}, args.plot, metric,
                         f"validation {metric}, {len(with_curve)} run(s)"):
            print(f"wrote {args.plot}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
