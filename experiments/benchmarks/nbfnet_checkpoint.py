"""Benchmark NBFNet's ``checkpoint_layers``: peak memory and time of real training steps.

NBFNet keeps, for the backward pass, every layer's intermediate tensors over all
``V`` nodes and ``B`` queries of a batch; with PNA (four statistics per feature)
that is most of a training step's memory. ``model.params.checkpoint_layers: true``
keeps only each layer's input and recomputes the rest during the backward pass.
This script trains the same batches of a shipped config both ways and compares,
side by side, the rise of the peak resident set and the seconds per step.

Each setting runs in a fresh subprocess (same seed: same initial parameters, same
batches; the ``loss[1]`` column checks it) whose glibc maps blocks above 64 KiB
freshly (``graphlearn.ops.bench.MALLOC_ENV``), so freed memory is neither hidden
in nor counted from the heap. ``--warmup`` batches (from a separate generator,
seed + 1) run first, untimed; then the first ``--steps`` batches of epoch 1 are
timed one by one (forward, backward, Adam step; batch sampling included). ``peak
RSS growth``: the peak resident set over warm-up and timed steps (Linux
``VmHWM``, reset through ``/proc/self/clear_refs``) minus the resident set just
before them (data, model and optimizer built). ``x memory`` / ``x time``: over
the first setting's.

From the repository root (let nothing else use the CPUs; the default, Cora's
shipped config with 64 positives per batch, peaks near 12 GB without
checkpointing)::

    python experiments/benchmarks/nbfnet_checkpoint.py --root ../shared/data
    python experiments/benchmarks/nbfnet_checkpoint.py --root ../shared/data --batch-size 16 \\
        --steps 2 --out /tmp/nbfnet_checkpoint.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from graphlearn.cli.table import format_table
from graphlearn.data.paths import data_root
from graphlearn.ops.bench import MALLOC_ENV, PeakRSS, TrainingBench, run_point_script
from graphlearn.train.utils import git_commit, machine_info

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO / "experiments" / "configs" / "link" / "cora" / "nbfnet.yaml"
DEFAULT_OUT = REPO / "experiments" / "benchmarks" / "results" / "nbfnet_checkpoint.json"
SETTINGS = {"plain": False, "checkpoint_layers": True}
MiB = 2**20


def point(job: dict) -> dict:
    """Warm-up plus ``steps`` timed training steps of one setting, in this process."""
    overrides = [f"data.root={job['root']}", f"train.seed={job['seed']}",
                 f"model.params.checkpoint_layers={str(job['checkpoint_layers']).lower()}"]
    if job["batch_size"] is not None:
        overrides.append(f"train.batch_size={job['batch_size']}")
    bench = TrainingBench.from_config(job["config"], overrides, job["threads"])
    cfg, task = bench.cfg, bench.task
    probe = PeakRSS()
    base = probe.mark()
    for _, batch in zip(range(job["warmup"]), bench.batches(0, cfg.train.seed + 1)):
        bench.step(batch)
    times, losses = [], []
    for i, batch in zip(range(job["steps"]), bench.batches(1, cfg.train.seed)):
        start = time.perf_counter()
        losses.append(bench.step(batch))
        times.append(time.perf_counter() - start)
        print(f"  {job['label']}: step {i + 1}/{job['steps']} {times[-1]:.2f} s",
              file=sys.stderr, flush=True)
    return {"seconds": times, "losses": losses, "s_per_step_mean": statistics.fmean(times),
            "peak_rss_growth_bytes": probe.peak() - base, "memory_method": probe.method,
            "threads": torch.get_num_threads(), "batch_size": cfg.train.batch_size,
            "batches_per_epoch": task.num_batches(), "dataset": cfg.data.name,
            "model": cfg.model.name, "aggregate": cfg.model.params.get("aggregate")}


def run_point(job: dict, timeout: float) -> dict:
    """``job`` in a fresh interpreter (``--point``) under the memory probe's allocator
    settings; ``{"error": ...}`` on failure."""
    return run_point_script(__file__, job, timeout, MALLOC_ENV)


def compare(args: argparse.Namespace) -> dict:
    root = str(data_root(args.root))
    results: dict[str, dict] = {}
    for label, flag in SETTINGS.items():
        job = {"label": label, "checkpoint_layers": flag, "config": str(args.config),
               "root": root, "seed": args.seed, "threads": args.threads,
               "batch_size": args.batch_size, "warmup": args.warmup, "steps": args.steps}
        results[label] = run_point(job, args.timeout)
    ok = {k: r for k, r in results.items() if "error" not in r}
    first = next(iter(ok.values()), None)
    rows = []
    for label, res in results.items():
        if "error" in res:
            rows.append([label, "ERROR", res["error"], "", "", ""])
            continue
        res["memory_ratio"] = res["peak_rss_growth_bytes"] / first["peak_rss_growth_bytes"]
        res["time_ratio"] = res["s_per_step_mean"] / first["s_per_step_mean"]
        # same parameters and batches: the losses agree up to rounding
        res["loss_max_abs_diff_vs_first"] = max(abs(a - b) for a, b in
                                                zip(res["losses"], first["losses"]))
        rows.append([label, f"{res['peak_rss_growth_bytes'] / MiB:,.0f}",
                     f"{res['memory_ratio']:.2f}", f"{res['s_per_step_mean']:.2f}",
                     f"{res['time_ratio']:.2f}", f"{res['losses'][0]:.6f}"])
    if first is not None:
        print(f"\nNBFNet training steps on {first['dataset']} ({Path(args.config).name}, "
              f"aggregate {first['aggregate']}), {first['batch_size']} positives per batch, "
              f"{args.warmup} warm-up + {args.steps} timed steps, {args.threads} threads")
    print(format_table(["setting", "peak RSS growth MiB", "x memory", "s/step", "x time",
                        "loss[1]"], rows))
    return {"settings": {"config": str(Path(args.config).resolve().relative_to(REPO))
                         if Path(args.config).resolve().is_relative_to(REPO)
                         else str(args.config),
                         "root": root, "seed": args.seed, "threads": args.threads,
                         "batch_size": args.batch_size, "warmup": args.warmup,
                         "steps": args.steps, "warmup_generator_seed": args.seed + 1},
            "results": results}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                   help="an NBFNet config (default: Cora's shipped one)")
    p.add_argument("--root", help="data root (default: $GRAPHLEARN_DATA, else data/)")
    p.add_argument("--batch-size", type=int, help="train.batch_size (default: the config's)")
    p.add_argument("--steps", type=int, default=3, help="timed steps (3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first (1)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (2)")
    p.add_argument("--seed", type=int, default=0, help="model and batch seed (0)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON result path")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per subprocess")
    p.add_argument("--point", help=argparse.SUPPRESS)  # internal: one setting (JSON job)
    args = p.parse_args(argv)
    for name, low in (("steps", 1), ("warmup", 0), ("threads", 1), ("batch_size", 1)):
        value = getattr(args, name)
        if value is not None and value < low:
            p.error(f"--{name.replace('_', '-')} must be at least {low}, got {value}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.point:
        print(json.dumps(point(json.loads(args.point))))
        return 0
    payload: dict[str, Any] = {
        "benchmark": "nbfnet_checkpoint",
        "command": shlex.join(["python", *sys.argv]),
        "git_commit": git_commit(REPO),
        "machine": {**machine_info(torch.device("cpu")), "torch": torch.__version__},
    }
    payload.update(compare(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2))
    print(f"wrote {args.out}")
    return 1 if any("error" in r for r in payload["results"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
