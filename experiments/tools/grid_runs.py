"""Shared machinery of the experiment grids: run a config per seed, summarise, plot.

A grid row is a config file plus overrides; every (row, seed) is one
``graphlearn train`` run in its own directory, skipped when its ``final.json``
already exists (an interrupted grid resumes) and locked while it trains (a second
grid on the same directory stops with a clear error instead of training the same
run twice). :func:`run_rows` runs a grid's (row, seed) jobs, ``workers`` at a
time (each run is its own process). :func:`summarize` turns the runs
of each row into a markdown table of test metrics (mean ± sample std over seeds,
the selection metric on validation, selected epochs, seconds per epoch) and a
JSON payload with every run's final record; :func:`plot_curves` draws a
validation metric over epochs per row (mean over seeds).

Used by ``experiments/recommendation/ml100k_grid.py`` and
``experiments/forward/grid.py``.
"""

from __future__ import annotations

import fcntl
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Row:
    """One grid row: a config file and the overrides that make it this row."""

    config: Path
    overrides: list[str] = field(default_factory=list)


def run_row(name: str, row: Row, seed: int, runs: Path, *, root: str | None = None,
            extra: list[str] | None = None, threads: int = 1) -> Path:
    """Train ``row`` with ``train.seed=seed`` into ``runs/<name>_s<seed>`` (skipped when
    finished); ``extra`` overrides come after the row's own. Exits on a failed run,
    naming its log, and when another process is training the same run: the run's log
    ``runs/<name>_s<seed>.log`` is locked while it trains (the training process
    writes to it, so the lock holds as long as it runs)."""
    out = runs / f"{name}_s{seed}"
    if (out / "final.json").is_file():
        return out
    runs.mkdir(parents=True, exist_ok=True)
    log = runs / f"{name}_s{seed}.log"
    with open(log, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(f"{out}: another process is training this run (its log {log} "
                             f"is locked); wait for it or stop it") from None
        if (out / "final.json").is_file():  # finished just before we took the lock
            return out
        if out.exists():  # an interrupted run: continue it from its last checkpoint
            if not (out / "checkpoints").is_dir():
                raise SystemExit(f"{out}: exists without checkpoints or final.json; remove it")
            resume = ["--resume"]
        else:
            resume = []
        overrides = [*row.overrides, *(extra or []), f"train.seed={seed}"]
        if root:
            overrides.insert(0, f"data.root={root}")
        cmd = [sys.executable, "-m", "graphlearn", "train", str(row.config), *overrides,
               "--out", str(out), "--threads", str(threads), "--no-progress", *resume]
        proc = subprocess.run(cmd, check=False, stdout=f, stderr=subprocess.STDOUT, cwd=REPO,
                              env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    if proc.returncode != 0:
        raise SystemExit(f"{name} seed {seed} failed (exit {proc.returncode}); see {log}")
    return out


def run_rows(rows: dict[str, Row], seeds: Sequence[int], runs: Path, *, workers: int = 1,
             desc: str = "grid", **kwargs) -> dict[str, list[Path]]:
    """:func:`run_row` for every (row, seed), ``workers`` runs at a time (each a process
    with ``threads`` torch threads: keep ``workers x threads`` at most the cores);
    the run directories per row, in seed order. The first failure stops the grid:
    runs not yet started are cancelled, running ones finish."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    jobs = [(name, seed) for name in rows for seed in seeds]
    with ThreadPoolExecutor(max_workers=workers) as pool, \
            tqdm(total=len(jobs), desc=desc, unit="run") as bar:
        futures = {job: pool.submit(run_row, job[0], rows[job[0]], job[1], runs, **kwargs)
                   for job in jobs}
        for future in futures.values():
            future.add_done_callback(lambda _: bar.update())
        try:
            done = {job: future.result() for job, future in futures.items()}
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return {name: [done[(name, seed)] for seed in seeds] for name in rows}


def curve(run: Path | dict, metric: str) -> list[tuple[int, float]]:
    """``(epoch, value)`` of ``metric`` on the validation split per evaluated epoch, from a
    run directory's ``metrics.jsonl`` or from a run recorded by ``summarize_runs.py --json``
    (its ``valid_curve``; empty when the summary predates it)."""
    curves = ((run.get("valid_curve") or {}) if isinstance(run, dict)
              else valid_curves(metric_records(run)))
    return [(int(epoch), float(value)) for epoch, value in curves.get(metric, [])]


def metric_records(run: Path) -> list[dict]:
    """The records of a run directory's ``metrics.jsonl`` in order (empty without one)."""
    log = run / "metrics.jsonl"
    if not log.is_file():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def summary_runs(path: Path) -> list[dict]:
    """The ``runs`` of a summary JSON written by ``summarize_runs.py --json``; ``ValueError``
    naming the file when it is not one."""
    try:
        runs = json.loads(path.read_text())["runs"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a summary written by summarize_runs.py --json "
                         f"({error})") from error
    if not isinstance(runs, list) or not all(isinstance(run, dict) for run in runs):
        raise ValueError(f"{path}: not a summary written by summarize_runs.py --json "
                         f"(runs is not a list of records)")
    return runs


def valid_curves(records: list[dict]) -> dict[str, list[list[float]]]:
    """Every validation metric over the evaluated epochs, ``{metric: [[epoch, value],
    ...]}``, from a run's ``metric_records``, leaving out the trainer's closing
    re-evaluation of the selected checkpoint: what a summary JSON keeps so that its
    curves can be drawn after the directory is gone."""
    curves: dict[str, list[list[float]]] = {}
    for record in records:
        if record.get("split") == "valid" and not record.get("final"):
            for metric, value in (record.get("metrics") or {}).items():
                curves.setdefault(metric, []).append([int(record["epoch"]), float(value)])
    return curves


def fmt(values: list[float]) -> str:
    """``mean ± sample std`` (4 decimals), or the value itself for one run."""
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def summarize(results: dict[str, list[Path]], metrics: list[str],
              rows: dict[str, Row] | None = None, label: str = "model") -> tuple[str, dict]:
    """Markdown table and JSON payload of the finished runs of each row."""
    header = [label, "seeds", *metrics, "valid (selection)", "selected epochs", "s/epoch"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    payload: dict = {"metrics": metrics, "rows": {}}
    for name, runs in results.items():
        finals = [json.loads((r / "final.json").read_text()) for r in runs]
        cells = [name, ", ".join(str(f["seed"]) for f in finals)]
        stats = {}
        for m in metrics:
            values = [float(f["test"][m]) for f in finals]
            stats[m] = {"mean": statistics.mean(values),
                        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                        "values": values}
            cells.append(fmt(values))
        chosen = [float(f["valid"][f["metric"]]) for f in finals]
        cells.append(f"{finals[0]['metric']} {fmt(chosen)}")
        cells.append(" / ".join(str(f["selected_epoch"]) for f in finals))
        seconds = [float(f["seconds_per_epoch"]) for f in finals]
        cells.append(f"{statistics.mean(seconds):.2f}")
        lines.append("| " + " | ".join(cells) + " |")
        record: dict = {"test": stats, "seconds_per_epoch": seconds,
                        "valid_selection": {"metric": finals[0]["metric"], "values": chosen},
                        "runs": [{"dir": str(r), **f, "valid_curve": valid_curves(metric_records(r))}
                                 for r, f in zip(runs, finals)]}
        if rows is not None and name in rows:
            record = {"config": str(Path(rows[name].config).relative_to(REPO)
                                    if Path(rows[name].config).is_relative_to(REPO)
                                    else rows[name].config),
                      "overrides": rows[name].overrides, **record}
        payload["rows"][name] = record
    return "\n".join(lines), payload


def plot_curves(results: dict[str, list[Path | dict]], path: Path, metric: str,
                title: str) -> Path | None:
    """Validation ``metric`` over epochs per row (mean over seeds, over the epochs every
    seed evaluated); ``None`` without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot (pip install 'graphlearn[plot]')")
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, runs in results.items():
        curves = [dict(curve(r, metric)) for r in runs]
        epochs = sorted(set.intersection(*(set(c) for c in curves)))
        if not epochs:
            continue
        ax.plot(epochs, [statistics.mean(c[e] for c in curves) for e in epochs], label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"validation {metric} (mean over seeds)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
