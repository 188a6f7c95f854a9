"""Benchmark of graphlearn.ops.rspmm: time and peak memory per backend.

Usage (from the repository root)::

    python experiments/benchmarks/rspmm.py --json runs/bench_rspmm.json
    python experiments/benchmarks/rspmm.py --cases random --reductions sum,pna --repeats 3

Cases:

* ``random``: V = 10,000 nodes, E = 200,000 uniform random edges, R = 50
  relations, B·d = 16·32 = 512 features (per-query relations ``[R, B·d]``).
* ``fb237_v4``: the GraIL fb237_v4 training graph (``train.txt`` plus inverse
  relations ``r + R``), B = 64 queries of d = 32 (B·d = 2048). Skipped when the
  file is absent (``--fb237 PATH``; default ``../shared/data/kg/grail/fb237_v4/train.txt``).

Each (case, message, reduction, backend) runs in two fresh subprocesses, one
timing it and one measuring its memory, so one backend's memory cannot hide in
another's heap and the memory settings below do not slow the timings. Inputs are float32; ``x``,
``rel`` and the edge weight all require gradients (the NBFNet path-explanation
setting) unless ``--no-edge-weight``.

Measurements:

* ``forward_seconds`` / ``fwd_bwd_seconds``: best of ``--repeats`` wall-clock
  runs after one warm-up (the machine is shared, so the minimum is the most
  reproducible figure; every sample is in the JSON). The forward runs with
  autograd on, saving what the backward needs, as in training.
* ``peak_memory_bytes``: the rise of the process's peak resident set (Linux
  ``VmHWM``, reset through ``/proc/self/clear_refs``) over its resident set
  just before one forward + backward, i.e. everything the call allocates
  (messages, saved tensors, output, gradients), inputs excluded. The memory
  workers run with ``MALLOC_MMAP_THRESHOLD_=65536`` so that glibc maps every large
  block freshly and returns it on free: freed memory is neither hidden in nor
  counted from the heap. ``forward_peak_memory_bytes`` is the same for the
  forward alone.
* ``ratio_*``: reference / backend for time (speed-up), backend / reference
  for memory, from the same run.
* For the fused CPU kernel: ``bytes_moved_*`` is a model of the bytes the
  kernel must read and write (every gathered row counted once per edge; index
  arrays included), and ``bandwidth_fraction_*`` divides ``bytes / time`` by the
  machine's copy rate, measured in the same run as the best of 5
  ``dst.copy_(src)`` of 256 MiB with all threads (read + write counted).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_FB237 = REPO.parent / "shared" / "data" / "kg" / "grail" / "fb237_v4" / "train.txt"
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "65536"}


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


def _build_case(case: dict):
    import torch

    from graphlearn.ops import RelGraph

    gen = torch.Generator().manual_seed(case.get("seed", 0))
    if case["name"] == "random":
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
    graph = RelGraph.build(edge_index, edge_type, num_nodes, num_rel)
    width = case["batch"] * case["dim"]
    x = torch.randn(num_nodes, width, generator=gen)
    rel_t = torch.randn(num_rel, width, generator=gen)
    weight = torch.rand(graph.num_edges, generator=gen) if case["edge_weight"] else None
    return graph, x, rel_t, weight


def worker(job: dict) -> dict:
    import gc

    import torch

    from graphlearn.ops import rspmm

    if job.get("threads"):
        torch.set_num_threads(job["threads"])
    if job.get("copy"):
        src = torch.randn(64 * 2**20)  # 256 MiB
        dst = torch.empty_like(src)
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            dst.copy_(src)
            times.append(time.perf_counter() - t0)
        return {"copy_bytes": 2 * src.numel() * 4, "copy_seconds": min(times),
                "threads": torch.get_num_threads()}

    graph, x, rel, weight = _build_case(job["case"])
    x.requires_grad_()
    rel.requires_grad_()
    if weight is not None:
        weight.requires_grad_()
    kwargs = {"message": job["message"], "reduce": job["reduce"], "backend": job["backend"],
                  "batch_size": job["case"]["batch"]}

    def forward():
        return rspmm(graph, x, rel, weight, **kwargs)

    def fwd_bwd(grad):
        out = forward()
        out.backward(grad)
        x.grad = rel.grad = None
        if weight is not None:
            weight.grad = None

    out = forward()  # warm-up (loads the kernel)
    grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    del out
    fwd_bwd(grad)
    sizes = {"num_nodes": graph.num_nodes, "num_edges": graph.num_edges,
             "num_relations": graph.num_relations, "threads": torch.get_num_threads()}

    if job["mode"] == "memory":
        gc.collect()
        _reset_peak()
        base = _rss("VmRSS")
        out = forward()
        fwd_peak = _rss("VmHWM") - base
        out.backward(grad)
        peak = _rss("VmHWM") - base
        return {"peak_memory_bytes": peak, "forward_peak_memory_bytes": fwd_peak, **sizes}

    fwd_times, fb_times = [], []
    for _ in range(job["repeats"]):
        t0 = time.perf_counter()
        out = forward()
        fwd_times.append(time.perf_counter() - t0)
        del out
        t0 = time.perf_counter()
        fwd_bwd(grad)
        fb_times.append(time.perf_counter() - t0)
    return {
        "forward_seconds": min(fwd_times),
        "fwd_bwd_seconds": min(fb_times),
        "forward_samples": fwd_times,
        "fwd_bwd_samples": fb_times,
        **sizes,
    }


# ---------------------------------------------------------------- parent side
def bytes_moved(reduce: str, message: str, v: int, e: int, width: int, rel_rows: int,
                weight: bool, itemsize: int = 4) -> tuple[int, int]:
    """Model of the fused CPU kernel's memory traffic: (forward bytes, forward+backward bytes).

    Forward: gather x[j] per edge, index arrays, write the output (and the
    max/min argument arrays). Backward (one pass by source): read x[j] and write
    grad_x[j] once per source, gather the target-side row per edge (grad_out for
    sum/mean; PNA's [A | Bc] coefficients plus the routed max/min pairs), write
    grad_w, plus the max/min routing pre-pass over the rows.
    """
    out_w = 4 * width if reduce == "pna" else width
    idx = e * (8 + 8) + (v + 1) * 8 + (e * itemsize if weight else 0)
    rel = rel_rows * width * itemsize if message != "none" else 0
    fwd = e * width * itemsize + idx + rel + v * out_w * itemsize
    nargs = {"max": 1, "min": 1, "pna": 2}.get(reduce, 0)
    fwd += nargs * v * width * 4 + (v * width if reduce == "pna" else 0)
    bwd = 2 * v * width * itemsize + e * (8 + 8 + 8) + (v + 1) * 8 + 2 * rel
    if weight:
        bwd += 2 * e * itemsize
    if reduce in ("sum", "mean"):
        bwd += e * width * itemsize
    else:
        pairs = nargs * v * width
        prepass = v * out_w * itemsize + nargs * v * width * 4 + pairs * (4 + itemsize)
        if reduce == "pna":
            prepass += v * width * (2 * itemsize + 1) + 2 * v * width * itemsize
            bwd += e * 2 * width * itemsize + e * width * itemsize  # [A|Bc] rows, recomputed m
        bwd += prepass + pairs * (4 + itemsize) + e * 8
    return fwd, fwd + bwd


def run_job(job: dict, timeout: float) -> dict:
    env = {**os.environ, **(MALLOC_ENV if job.get("mode") == "memory" else {})}
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(job)],
        capture_output=True, text=True, env=env, timeout=timeout, cwd=REPO, check=False,
    )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": " | ".join(tail) or f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--cases", default="random,fb237_v4", help="comma list: random, fb237_v4")
    p.add_argument("--backends", default="reference,cpu", help="comma list of rspmm backends")
    p.add_argument("--messages", default="mul", help="comma list (mul, add, rotate, none)")
    p.add_argument("--reductions", default="sum,mean,max,pna", help="comma list")
    p.add_argument("--repeats", type=int, default=5, help="timed runs (best is reported)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--fb237", type=Path, default=DEFAULT_FB237, help="fb237_v4 train.txt")
    p.add_argument("--no-edge-weight", action="store_true", help="no per-edge weight")
    p.add_argument("--timeout", type=float, default=900, help="seconds per subprocess")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0

    weight = not args.no_edge_weight
    cases = []
    for name in args.cases.split(","):
        if name == "random":
            cases.append({"name": "random", "num_nodes": 10_000, "num_edges": 200_000,
                              "num_relations": 50, "batch": 16, "dim": 32, "edge_weight": weight})
        elif name == "fb237_v4":
            if not args.fb237.is_file():
                print(f"skipping fb237_v4: {args.fb237} not found", file=sys.stderr)
                continue
            cases.append({"name": "fb237_v4", "path": str(args.fb237), "batch": 64, "dim": 32,
                              "edge_weight": weight})
        else:
            p.error(f"unknown case {name!r} (valid: random, fb237_v4)")
    backends = args.backends.split(",")

    # Build the CPU kernel once here, so no worker pays for (or races on) the compile.
    if "cpu" in backends:
        from graphlearn.ops.cpu import cpu_extension_error, load_cpu_extension

        if load_cpu_extension() is None:
            print(f"cpu backend unavailable: {cpu_extension_error()}", file=sys.stderr)

    copy = run_job({"copy": True, "threads": args.threads}, args.timeout)
    copy_rate = copy["copy_bytes"] / copy["copy_seconds"]
    print(f"copy rate: {copy_rate / 1e9:.1f} GB/s ({copy['threads']} threads)")

    results = []
    for case in cases:
        for message in args.messages.split(","):
            for reduce in args.reductions.split(","):
                row = {"case": case["name"], "message": message, "reduce": reduce,
                       "batch": case["batch"], "dim": case["dim"], "edge_weight": weight,
                       "backends": {}}
                for backend in backends:
                    job = {"case": case, "message": message, "reduce": reduce, "backend": backend,
                               "repeats": args.repeats, "threads": args.threads}
                    res = run_job({**job, "mode": "time"}, args.timeout)
                    if "error" not in res:
                        mem = run_job({**job, "mode": "memory"}, args.timeout)
                        res.update(mem) if "error" not in mem else res.update(
                            error=f"memory run: {mem['error']}")
                    row["backends"][backend] = res
                    if "error" not in res:
                        row.update(num_nodes=res["num_nodes"], num_edges=res["num_edges"],
                                   num_relations=res["num_relations"])
                ref = row["backends"].get("reference", {})
                for backend, res in row["backends"].items():
                    if "error" in res:
                        continue
                    if "error" not in ref and ref and backend != "reference":
                        res["ratio_forward_speedup"] = ref["forward_seconds"] / res["forward_seconds"]
                        res["ratio_fwd_bwd_speedup"] = ref["fwd_bwd_seconds"] / res["fwd_bwd_seconds"]
                        res["ratio_peak_memory"] = res["peak_memory_bytes"] / ref["peak_memory_bytes"]
                    if backend == "cpu":
                        width = case["batch"] * case["dim"]
                        fb, fbb = bytes_moved(reduce, message, res["num_nodes"], res["num_edges"],
                                              width, res["num_relations"], weight)
                        res["bytes_moved_forward"] = fb
                        res["bytes_moved_fwd_bwd"] = fbb
                        res["bandwidth_fraction_forward"] = fb / res["forward_seconds"] / copy_rate
                        res["bandwidth_fraction_fwd_bwd"] = fbb / res["fwd_bwd_seconds"] / copy_rate
                results.append(row)
                _print_row(row)

    # PNA in one pass vs a single sum, per backend and case.
    summary = []
    for case in cases:
        for message in args.messages.split(","):
            by = {r["reduce"]: r for r in results
                  if r["case"] == case["name"] and r["message"] == message}
            if "pna" in by and "sum" in by:
                for backend in backends:
                    a, b = by["pna"]["backends"].get(backend, {}), by["sum"]["backends"].get(backend, {})
                    if "forward_seconds" in a and "forward_seconds" in b:
                        summary.append({
                            "case": case["name"], "message": message, "backend": backend,
                            "pna_over_sum_forward": a["forward_seconds"] / b["forward_seconds"],
                            "pna_over_sum_fwd_bwd": a["fwd_bwd_seconds"] / b["fwd_bwd_seconds"]})
    for s in summary:
        print(f"pna / sum [{s['case']}, {s['message']}, {s['backend']}]: forward "
              f"{s['pna_over_sum_forward']:.2f}x, forward+backward {s['pna_over_sum_fwd_bwd']:.2f}x")

    if args.json:
        import torch

        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "torch": torch.__version__, "python": platform.python_version(),
            "machine": platform.machine(), "cpu_count": os.cpu_count(),
            "copy_bytes_per_second": copy_rate, "copy": copy, "results": results, "pna_vs_sum": summary,
        }
        args.json.write_text(json.dumps(payload, indent=2))
        print(f"wrote {args.json}")
    return 0


def _print_row(row: dict) -> None:
    head = f"{row['case']:9s} {row['message']:6s} {row['reduce']:5s}"
    for backend, res in row["backends"].items():
        if "error" in res:
            print(f"{head} {backend:10s} ERROR {res['error']}")
            continue
        line = (f"{head} {backend:10s} fwd {res['forward_seconds']:8.4f}s  "
                f"fwd+bwd {res['fwd_bwd_seconds']:8.4f}s  peak {res['peak_memory_bytes'] / 2**20:8.1f} MiB")
        if "ratio_fwd_bwd_speedup" in res:
            line += (f"  | speed-up fwd {res['ratio_forward_speedup']:5.1f}x "
                     f"fwd+bwd {res['ratio_fwd_bwd_speedup']:5.1f}x  mem {res['ratio_peak_memory']:.3f}x")
        if "bandwidth_fraction_fwd_bwd" in res:
            line += (f"  | {res['bandwidth_fraction_forward']:.0%} / "
                     f"{res['bandwidth_fraction_fwd_bwd']:.0%} of copy rate")
        print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())
