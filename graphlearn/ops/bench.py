"""Benchmark of :func:`graphlearn.ops.rspmm`: time and peak memory per backend.

Entry points: ``graphlearn bench rspmm`` (the CLI), ``python -m graphlearn.ops.bench``
and ``experiments/benchmarks/rspmm.py`` (a thin wrapper); all take the same options.

Cases:

* ``random``: V = 10,000 nodes, E = 200,000 uniform random edges, R = 50
  relations, B·d = 16·32 = 512 features (per-query relations ``[R, B·d]``).
* ``fb237_v4``: the GraIL fb237_v4 training graph (``train.txt`` plus inverse
  relations ``r + R``), B = 64 queries of d = 32 (B·d = 2048). Skipped when the
  file is absent (``--fb237 PATH``; default
  ``<data root>/kg/grail/fb237_v4/train.txt``, data root ``$GRAPHLEARN_DATA``).
* ``tiny``: V = 500, E = 5,000, R = 8, B·d = 4·16: a smoke test of the harness.

Each (case, message, reduction, backend) runs in fresh subprocesses, so one
backend's memory cannot hide in another's heap. Inputs are float32; ``x``,
``rel`` and the edge weight all require gradients (the NBFNet
path-explanation setting) unless ``--no-edge-weight``.

Measurements:

* ``forward_seconds`` / ``fwd_bwd_seconds``: best of ``--repeats`` runs after one
  warm-up (the minimum is the most reproducible figure on a shared machine; every
  sample is in the JSON). The forward runs with autograd on, saving what the
  backward needs, as in training. On CUDA each run is bracketed by
  ``torch.cuda.synchronize()`` and timed with CUDA events. CPU timing runs use
  ``graphlearn train``'s allocator (:mod:`graphlearn.allocator`: freed memory
  kept for reuse); ``GRAPHLEARN_MALLOC=system`` times glibc's defaults (every
  fresh output page-faulted in). The JSON's ``allocator_env`` records the setting.
* ``peak_memory_bytes``: what one forward + backward allocates, inputs
  excluded. CPU: the rise of the process's peak resident set (Linux ``VmHWM``,
  reset through ``/proc/self/clear_refs``) over its resident set just before, in
  a separate subprocess whose glibc maps every block above 64 KiB freshly
  (``MALLOC_MMAP_THRESHOLD_``), so freed memory is neither hidden in nor counted
  from the heap. CUDA: ``torch.cuda.max_memory_allocated()`` after
  ``reset_peak_memory_stats()``, minus the memory allocated before.
  ``forward_peak_memory_bytes`` is the same for the forward alone.
* ``ratio_*``: reference / backend for time (speed-up), backend / reference for
  memory, from the same run.
* ``bytes_moved_*`` (fused ``cpu`` backend; ``triton`` forward): a model of the
  bytes the kernel must read and write (every gathered row counted once per
  edge; index arrays included); ``bandwidth_fraction_*`` divides ``bytes / time``
  by the device's copy rate, measured in the same run (best of 5
  ``dst.copy_(src)`` of 256 MiB, read + write counted).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CASES",
    "PeakRSS",
    "TrainingBench",
    "bytes_moved",
    "default_fb237_path",
    "format_result_lines",
    "main",
    "make_cases",
    "run_benchmark",
    "run_point_script",
]

CASES = ("random", "fb237_v4", "tiny")
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "65536"}


def default_fb237_path() -> Path:
    from graphlearn.data.paths import data_root

    return data_root() / "kg" / "grail" / "fb237_v4" / "train.txt"


def make_cases(names: Sequence[str], fb237: Path | None = None, edge_weight: bool = True,
               log: Callable[[str], None] = print) -> list[dict]:
    """The case descriptions (JSON-serialisable) for ``names``; a missing fb237 file
    is skipped with a message."""
    cases = []
    for name in names:
        if name == "random":
            cases.append({"name": "random", "num_nodes": 10_000, "num_edges": 200_000,
                          "num_relations": 50, "batch": 16, "dim": 32})
        elif name == "tiny":
            cases.append({"name": "tiny", "num_nodes": 500, "num_edges": 5_000,
                          "num_relations": 8, "batch": 4, "dim": 16})
        elif name == "fb237_v4":
            path = Path(fb237) if fb237 is not None else default_fb237_path()
            if not path.is_file():
                log(f"skipping fb237_v4: {path} not found (--fb237 PATH)")
                continue
            cases.append({"name": "fb237_v4", "path": str(path), "batch": 64, "dim": 32})
        else:
            from graphlearn.errors import ConfigError

            raise ConfigError(f"unknown benchmark case {name!r} (valid: {', '.join(CASES)})")
    for case in cases:
        case["edge_weight"] = edge_weight
    return cases


# ---------------------------------------------------------------- worker side
def _rss(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


class PeakRSS:
    """Peak resident set since :meth:`reset`, in bytes (for benchmark workers).

    ``VmHWM`` reset through ``/proc/self/clear_refs`` where Linux allows it; else
    ``ru_maxrss`` (KiB on Linux), which cannot be reset: the peak of the whole
    process so far (:attr:`method` says which).
    """

    def __init__(self) -> None:
        try:
            _reset_peak()
            _rss("VmHWM")
            self.method = "VmHWM reset via /proc/self/clear_refs"
        except OSError:
            self.method = "ru_maxrss (not resettable: includes everything before)"

    def reset(self) -> None:
        if self.method.startswith("VmHWM"):
            _reset_peak()

    def current(self) -> int:
        """The resident set now."""
        try:
            return _rss("VmRSS")
        except OSError:
            return _max_rss()

    def peak(self) -> int:
        return _rss("VmHWM") if self.method.startswith("VmHWM") else _max_rss()

    def mark(self) -> int:
        """Collect garbage, reset the peak and return the baseline to subtract from a
        later :meth:`peak`: the high-water mark right after the reset, not the resident
        set a moment later. The mark only rises, so a growth measured from it cannot
        come out negative when pages are freed between the two reads."""
        gc.collect()
        self.reset()
        return self.peak()


def run_point_script(script: str | Path, job: dict, timeout: float,
                     env: dict[str, str] | None = None) -> dict:
    """Run ``python SCRIPT --point JSON(job)`` in a fresh interpreter and return the JSON
    object on the last line of its stdout; its stderr (progress, any traceback) goes to
    ours. ``env`` is added to this process's environment. ``{"error": ...}`` when the
    worker fails or runs past ``timeout`` seconds. The benchmark scripts under
    ``experiments/benchmarks/`` measure each point this way, one process per point."""
    try:
        proc = subprocess.run([sys.executable, str(Path(script).resolve()), "--point",
                               json.dumps(job)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, **(env or {})}, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        return {"error": f"exit status {proc.returncode} (traceback on stderr above)"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


@dataclass
class TrainingBench:
    """One shipped config's task, model and optimizer, set up as ``graphlearn train`` does
    (same initial parameters for the same seed), for benchmark workers that time
    :meth:`step` on :meth:`batches`."""

    cfg: Any
    task: Any
    model: Any
    optimizer: Any

    @classmethod
    def from_config(cls, config: str | Path, overrides: Sequence[str],
                    threads: int) -> TrainingBench:
        import torch

        from graphlearn.config import load_config
        from graphlearn.tasks import build_task
        from graphlearn.train.utils import make_optimizer

        torch.set_num_threads(threads)
        cfg = load_config(config, list(overrides))
        task = build_task(cfg)
        task.to("cpu")
        torch.manual_seed(cfg.train.seed)  # as the trainer: the same initial parameters
        model = task.build_model()
        model.train()
        return cls(cfg, task, model, make_optimizer(cfg.train, model.parameters()))

    def batches(self, epoch: int, seed: int):
        """The task's training batches of ``epoch`` drawn with a generator seeded ``seed``."""
        import torch

        return self.task.train_batches(epoch, torch.Generator().manual_seed(seed))

    def step(self, batch: Any) -> float:
        """One training step (forward, backward, optimizer step); the loss."""
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.task.training_step(self.model, batch)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())


def _max_rss() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _build_case(case: dict, device: str):
    import torch

    from graphlearn.ops import RelGraph

    gen = torch.Generator().manual_seed(case.get("seed", 0))
    if case["name"] in ("random", "tiny"):
        num_nodes, num_edges, num_rel = case["num_nodes"], case["num_edges"], case["num_relations"]
        edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=gen)
        edge_type = torch.randint(0, num_rel, (num_edges,), generator=gen)
    else:  # a GraIL/NBFNet training graph: head<TAB>relation<TAB>tail, inverses appended
        ent: dict[str, int] = {}
        rel: dict[str, int] = {}
        triples = []
        with open(case["path"]) as f:
            for line in f:
                parts = line.split()
                if len(parts) != 3:
                    continue
                h, r, t = parts
                triples.append((ent.setdefault(h, len(ent)), rel.setdefault(r, len(rel)),
                                ent.setdefault(t, len(ent))))
        tri = torch.tensor(triples)
        num_nodes, base_rel = len(ent), len(rel)
        num_rel = 2 * base_rel
        edge_index = torch.cat([tri[:, [0, 2]].t(), tri[:, [2, 0]].t()], dim=1)
        edge_type = torch.cat([tri[:, 1], tri[:, 1] + base_rel])
    graph = RelGraph.build(edge_index, edge_type, num_nodes, num_rel).to(device)
    width = case["batch"] * case["dim"]
    x = torch.randn(num_nodes, width, generator=gen).to(device)
    rel_t = torch.randn(num_rel, width, generator=gen).to(device)
    weight = (torch.rand(graph.num_edges, generator=gen).to(device) if case["edge_weight"]
              else None)
    return graph, x, rel_t, weight


def _copy_rate(device: str, threads: int) -> dict:
    import torch

    if threads:
        torch.set_num_threads(threads)
    src = torch.randn(64 * 2**20, device=device)  # 256 MiB
    dst = torch.empty_like(src)
    times = []
    for _ in range(6):
        times.append(_timed(lambda: dst.copy_(src), device))
    return {"copy_bytes": 2 * src.numel() * 4, "copy_seconds": min(times[1:]),
            "threads": torch.get_num_threads()}


def _timed(fn: Callable[[], Any], device: str) -> float:
    """Seconds one call of ``fn`` takes (CUDA: events, synchronised)."""
    import torch

    if device == "cuda":
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def worker(job: dict) -> dict:
    """One measurement in this (fresh) process: timing, memory, or the copy rate."""
    import gc

    import torch

    from graphlearn.ops import rspmm

    device = job.get("device", "cpu")
    if job.get("mode") == "time":  # time what `graphlearn train` gets (graphlearn/allocator.py)
        from graphlearn.allocator import reuse_freed_memory

        reuse_freed_memory()
    if job.get("threads"):
        torch.set_num_threads(job["threads"])
    if job.get("copy"):
        return _copy_rate(device, job.get("threads", 0))

    graph, x, rel, weight = _build_case(job["case"], device)
    x.requires_grad_()
    rel.requires_grad_()
    if weight is not None:
        weight.requires_grad_()
    kwargs = {"message": job["message"], "reduce": job["reduce"], "backend": job["backend"],
              "batch_size": job["case"]["batch"]}

    def forward():
        return rspmm(graph, x, rel, weight, **kwargs)

    def fwd_bwd():
        out = forward()
        out.backward(grad)
        x.grad = rel.grad = None
        if weight is not None:
            weight.grad = None

    out = forward()  # warm-up (loads or compiles the kernel)
    grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(1)).to(device)
    del out
    fwd_bwd()
    sizes = {"num_nodes": graph.num_nodes, "num_edges": graph.num_edges,
             "num_relations": graph.num_relations, "threads": torch.get_num_threads()}
    result: dict[str, Any] = dict(sizes)

    if job["mode"] in ("memory", "all"):
        gc.collect()
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            out = forward()
            torch.cuda.synchronize()
            fwd_peak = torch.cuda.max_memory_allocated() - base
            out.backward(grad)
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated() - base
        else:
            _reset_peak()
            base = _rss("VmRSS")
            out = forward()
            fwd_peak = _rss("VmHWM") - base
            out.backward(grad)
            peak = _rss("VmHWM") - base
        del out
        x.grad = rel.grad = None
        if weight is not None:
            weight.grad = None
        result.update(peak_memory_bytes=peak, forward_peak_memory_bytes=fwd_peak)

    if job["mode"] in ("time", "all"):
        fwd_times, fb_times = [], []
        for _ in range(job["repeats"]):
            fwd_times.append(_timed(forward, device))
            fb_times.append(_timed(fwd_bwd, device))
        result.update(forward_seconds=min(fwd_times), fwd_bwd_seconds=min(fb_times),
                      forward_samples=fwd_times, fwd_bwd_samples=fb_times)
    return result


# ---------------------------------------------------------------- parent side
def bytes_moved(reduce: str, message: str, v: int, e: int, width: int, rel_rows: int,
                weight: bool, itemsize: int = 4) -> tuple[int, int]:
    """Model of the fused CPU kernel's memory traffic: (forward bytes, forward+backward bytes).

    Forward: gather x[j] per edge, index arrays, write the output (and max/min's
    int32 arg array, PNA's uint8 var > 0 mask). Backward (one pass by source):
    read x[j] and write grad_x[j] once per source, gather the target-side row per
    edge (grad_out for sum/mean; PNA's [A | Bc] coefficients plus the routed
    max/min pairs), write grad_w, plus the max/min routing pre-pass over the rows
    (PNA's recomputes the messages, gathering x[j] per edge again, to find its
    max and min edges).
    """
    out_w = 4 * width if reduce == "pna" else width
    idx = e * (8 + 8) + (v + 1) * 8 + (e * itemsize if weight else 0)
    rel = rel_rows * width * itemsize if message != "none" else 0
    fwd = e * width * itemsize + idx + rel + v * out_w * itemsize
    nargs = {"max": 1, "min": 1, "pna": 2}.get(reduce, 0)
    saved_args = 1 if reduce in ("max", "min") else 0
    fwd += saved_args * v * width * 4 + (v * width if reduce == "pna" else 0)
    bwd = 2 * v * width * itemsize + e * (8 + 8 + 8) + (v + 1) * 8 + 2 * rel
    if weight:
        bwd += 2 * e * itemsize
    if reduce in ("sum", "mean"):
        bwd += e * width * itemsize
    else:
        pairs = nargs * v * width
        prepass = v * out_w * itemsize + saved_args * v * width * 4 + pairs * (4 + itemsize)
        if reduce == "pna":
            prepass += e * width * itemsize + idx  # recomputed messages
            prepass += v * width * (2 * itemsize + 1) + 2 * v * width * itemsize
            bwd += e * 2 * width * itemsize + e * width * itemsize  # [A|Bc] rows, recomputed m
        bwd += prepass + pairs * (4 + itemsize) + e * 8
    return fwd, fwd + bwd


def _package_root() -> str:
    import graphlearn

    return str(Path(graphlearn.__file__).resolve().parents[1])


def run_job(job: dict, timeout: float) -> dict:
    """Run :func:`worker` on ``job`` in a fresh interpreter (the same ``graphlearn`` as
    this process: run from its parent folder); ``{"error": ...}`` on failure."""
    root = _package_root()
    path = os.environ.get("PYTHONPATH", "")
    env = dict(os.environ)
    if job.get("mode") == "memory":  # the memory probe's own allocator settings only
        env = {k: v for k, v in env.items() if not k.startswith("MALLOC_")} | MALLOC_ENV
    env["PYTHONPATH"] = root + (os.pathsep + path if path else "")
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "graphlearn.ops.bench", "--worker", json.dumps(job)],
            capture_output=True, text=True, env=env, cwd=root, timeout=timeout, check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": " | ".join(tail) or f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def default_backends(device: str) -> list[str]:
    """reference + the fused backend of the device (+ torch_scatter when installed)."""
    from graphlearn.typing import with_torch_scatter

    backends = ["reference", "cpu" if device == "cpu" else "triton"]
    if with_torch_scatter():
        backends.append("torch_scatter")
    return backends


def run_benchmark(
    cases: list[dict],
    backends: Sequence[str],
    messages: Sequence[str] = ("mul",),
    reductions: Sequence[str] = ("sum", "mean", "max", "pna"),
    repeats: int = 5,
    threads: int = 0,
    device: str = "cpu",
    timeout: float = 900.0,
    progress: Callable[[dict], None] | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Measure every (case, message, reduction, backend); returns the JSON payload.

    ``progress(row)`` is called after each (case, message, reduction) row."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        from graphlearn.errors import ConfigError

        raise ConfigError("bench --device cuda: no CUDA device is available")
    if "cpu" in backends and device == "cpu":
        # Build the CPU kernel once here, so no worker pays for (or races on) the compile.
        from graphlearn.ops.cpu import cpu_extension_error, load_cpu_extension

        if load_cpu_extension() is None:
            log(f"cpu backend unavailable: {cpu_extension_error()}")

    copy = run_job({"copy": True, "threads": threads, "device": device}, timeout)
    copy_rate = copy["copy_bytes"] / copy["copy_seconds"] if "error" not in copy else None
    if copy_rate:
        log(f"copy rate: {copy_rate / 1e9:.1f} GB/s ({device}, {copy['threads']} threads)")

    results = []
    for case in cases:
        for message in messages:
            for reduce in reductions:
                row = {"case": case["name"], "message": message, "reduce": reduce,
                       "batch": case["batch"], "dim": case["dim"],
                       "edge_weight": case["edge_weight"], "backends": {}}
                for backend in backends:
                    job = {"case": case, "message": message, "reduce": reduce,
                           "backend": backend, "repeats": repeats, "threads": threads,
                           "device": device}
                    if device == "cuda":  # the caching allocator's statistics: one process
                        res = run_job({**job, "mode": "all"}, timeout)
                    else:
                        res = run_job({**job, "mode": "time"}, timeout)
                        if "error" not in res:
                            mem = run_job({**job, "mode": "memory"}, timeout)
                            if "error" in mem:
                                res["error"] = f"memory run: {mem['error']}"
                            else:
                                res.update(mem)
                    row["backends"][backend] = res
                    if "error" not in res:
                        row.update(num_nodes=res["num_nodes"], num_edges=res["num_edges"],
                                   num_relations=res["num_relations"])
                _add_ratios(row, case, copy_rate, device)
                results.append(row)
                if progress is not None:
                    progress(row)

    payload = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "device": device,
        "device_name": (torch.cuda.get_device_name() if device == "cuda"
                        else platform.processor() or platform.machine()),
        "torch": torch.__version__, "python": platform.python_version(),
        "machine": platform.machine(), "cpu_count": os.cpu_count(),
        "copy_bytes_per_second": copy_rate, "copy": copy,
        # allocator settings inherited by the timing subprocesses (they change the
        # cost of fresh output pages: see experiments/benchmarks/rspmm.md)
        "allocator_env": {k: v for k, v in sorted(os.environ.items())
                          if k.startswith(("MALLOC_", "GRAPHLEARN_MALLOC")) or k == "LD_PRELOAD"},
        "results": results, "pna_vs_sum": _pna_vs_sum(results, backends),
    }
    if device == "cuda":
        try:
            import triton

            payload["triton"] = triton.__version__
        except ImportError:
            payload["triton"] = None
    return payload


def _add_ratios(row: dict, case: dict, copy_rate: float | None, device: str) -> None:
    ref = row["backends"].get("reference", {})
    width = case["batch"] * case["dim"]
    for backend, res in row["backends"].items():
        if "error" in res:
            continue
        if ref and "error" not in ref and backend != "reference":
            res["ratio_forward_speedup"] = ref["forward_seconds"] / res["forward_seconds"]
            res["ratio_fwd_bwd_speedup"] = ref["fwd_bwd_seconds"] / res["fwd_bwd_seconds"]
            res["ratio_peak_memory"] = res["peak_memory_bytes"] / max(ref["peak_memory_bytes"], 1)
        if copy_rate and backend in ("cpu", "triton"):
            fb, fbb = bytes_moved(row["reduce"], row["message"], res["num_nodes"],
                                  res["num_edges"], width, res["num_relations"],
                                  case["edge_weight"])
            res["bytes_moved_forward"] = fb
            res["bandwidth_fraction_forward"] = fb / res["forward_seconds"] / copy_rate
            if backend == "cpu":  # the model describes the CPU kernel's backward only
                res["bytes_moved_fwd_bwd"] = fbb
                res["bandwidth_fraction_fwd_bwd"] = fbb / res["fwd_bwd_seconds"] / copy_rate


def _pna_vs_sum(results: list[dict], backends: Sequence[str]) -> list[dict]:
    """PNA in one pass against a single sum, per backend, case and message."""
    summary = []
    keys = sorted({(r["case"], r["message"]) for r in results})
    for case, message in keys:
        by = {r["reduce"]: r for r in results if r["case"] == case and r["message"] == message}
        if "pna" not in by or "sum" not in by:
            continue
        for backend in backends:
            a = by["pna"]["backends"].get(backend, {})
            b = by["sum"]["backends"].get(backend, {})
            if "forward_seconds" in a and "forward_seconds" in b:
                summary.append({
                    "case": case, "message": message, "backend": backend,
                    "pna_over_sum_forward": a["forward_seconds"] / b["forward_seconds"],
                    "pna_over_sum_fwd_bwd": a["fwd_bwd_seconds"] / b["fwd_bwd_seconds"]})
    return summary


def format_result_lines(row: dict) -> list[str]:
    """One aligned line per backend of a result row."""
    head = f"{row['case']:9s} {row['message']:6s} {row['reduce']:5s}"
    lines = []
    for backend, res in row["backends"].items():
        if "error" in res:
            lines.append(f"{head} {backend:13s} ERROR {res['error']}")
            continue
        line = (f"{head} {backend:13s} fwd {res['forward_seconds']:8.4f}s  "
                f"fwd+bwd {res['fwd_bwd_seconds']:8.4f}s  "
                f"peak {res['peak_memory_bytes'] / 2**20:8.1f} MiB")
        if "ratio_fwd_bwd_speedup" in res:
            line += (f"  | speed-up fwd {res['ratio_forward_speedup']:5.1f}x "
                     f"fwd+bwd {res['ratio_fwd_bwd_speedup']:5.1f}x  "
                     f"mem {res['ratio_peak_memory']:.3f}x")
        if "bandwidth_fraction_forward" in res:
            line += f"  | {res['bandwidth_fraction_forward']:.0%}"
            if "bandwidth_fraction_fwd_bwd" in res:
                line += f" / {res['bandwidth_fraction_fwd_bwd']:.0%}"
            line += " of copy rate"
        lines.append(line)
    return lines


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The benchmark's options (shared by the CLI and ``python -m graphlearn.ops.bench``)."""
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--cases", default="random,fb237_v4",
                   help=f"comma list of cases ({', '.join(CASES)}); default random,fb237_v4")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="where inputs live (default cpu)")
    p.add_argument("--backends", help="comma list of rspmm backends (default: reference and "
                                      "the device's fused backend, + torch_scatter if installed)")
    p.add_argument("--messages", default="mul", help="comma list (mul, add, rotate, none)")
    p.add_argument("--reductions", default="sum,mean,max,pna", help="comma list")
    p.add_argument("--repeats", type=int, default=5, help="timed runs (best is reported)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--fb237", type=Path, help="fb237_v4 train.txt (default: under the data root)")
    p.add_argument("--no-edge-weight", action="store_true", help="no per-edge weight")
    p.add_argument("--timeout", type=float, default=900, help="seconds per subprocess")


def run_from_args(args: argparse.Namespace, out: Callable[[str], None] = print) -> dict:
    """Run the benchmark described by parsed :func:`add_arguments` options; prints rows."""
    def split(text: str) -> list[str]:
        return [t.strip() for t in text.split(",") if t.strip()]

    cases = make_cases(split(args.cases), args.fb237, not args.no_edge_weight, log=out)
    backends = split(args.backends) if args.backends else default_backends(args.device)
    payload = run_benchmark(
        cases, backends, split(args.messages), split(args.reductions), args.repeats,
        args.threads, args.device, args.timeout,
        progress=lambda row: [out(line) for line in format_result_lines(row)], log=out,
    )
    for s in payload["pna_vs_sum"]:
        out(f"pna / sum [{s['case']}, {s['message']}, {s['backend']}]: forward "
            f"{s['pna_over_sum_forward']:.2f}x, forward+backward {s['pna_over_sum_fwd_bwd']:.2f}x")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2))
        out(f"wrote {args.json}")
    return payload


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m graphlearn.ops.bench",
                                description="Benchmark rspmm: time and peak memory per backend.")
    add_arguments(p)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    run_from_args(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
