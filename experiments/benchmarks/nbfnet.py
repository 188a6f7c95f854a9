"""Benchmark NBFNet training on CPU per ``rspmm`` backend: speed on FB15k-237 v1, memory vs edges.

Two parts (``--part speed|memory|all``, default ``all``); every backend runs in the
same invocation and the results are compared side by side as ratios.

**speed**: seconds per training batch and per epoch on the inductive GraIL split
``fb237_v1`` (4,245 training triples, 67 batches per epoch) with the official
configuration ``experiments/configs/kg/fb237_v1/nbfnet.yaml`` (6 layers x 32,
DistMult, PNA, query-dependent relations, 64 triples x (1 + 32 strict
negatives), self-adversarial BCE at T = 0.5, Adam lr 5e-3), trained exactly as
``graphlearn train`` does: ``task.train_batches`` / ``task.training_step``, which
removes each batch's query edges (and their inverses) from the message graph.
Only ``model.params.backend`` changes between backends. Each backend runs in a
fresh subprocess with the same seed: the same initial parameters and the same
batches (the ``loss[1]`` column checks it). ``--warmup`` batches (drawn from a
separate generator, seed + 1) are trained first and not timed; then the first
``--batches`` batches of the epoch (default: all 67) are timed one by one, batch
sampling included. ``s/epoch`` is the measured wall time of the loop when the
whole epoch ran, else ``mean x batches-per-epoch`` marked ``extrapolated``.
``peak RSS growth``: the process's peak resident set during warm-up and timed
batches minus its resident set just before them (data, model and optimizer
built). The allocator is `graphlearn train`'s (``graphlearn/allocator.py``: freed
memory kept for reuse); ``--allocators reuse system`` times every backend under
both, glibc's defaults included, labelled ``backend/allocator``. ``x fastest``:
mean s/batch over the fastest row's.

**memory**: peak memory of one NBFNet training step (forward + backward, default
model, self-adversarial BCE; no optimizer) against the number of edges ``E`` of a
random relational graph with ``V`` nodes (``--nodes``, default 2,000): ``E / 2``
uniform random triples over ``R`` relations (``--relations``, default 10) plus
their inverses (2R = 20 relation types), ``B`` queries (``--queries``, default 16)
with 1 + 32 candidates. Every (backend, E) point is measured in a fresh
subprocess whose glibc maps each block above 64 KiB freshly
(``graphlearn.ops.bench.MALLOC_ENV``), so freed memory is neither hidden in nor
counted from the heap. The step runs twice and the *second* is measured: the
first loads the kernel and builds the prepared graph and one-off caches. The
measure is the rise of the peak resident set (Linux ``VmHWM``, reset through
``/proc/self/clear_refs`` before the second step) over the resident set just
before it. Where ``clear_refs`` cannot be written, ``ru_maxrss`` is used instead
and the figure includes the first step (``memory_method`` in the JSON says
which). The kernel updates the high-water mark lazily (memory returned with
``MADV_DONTNEED`` never reaches it), so on tiny graphs the figure is a few pages
either way and can come out slightly negative; at the benchmark's sizes (blocks
above 64 KiB are mmapped and unmapped) it is the step's peak. ``[E,B*d] MiB`` is the analytic size of one message tensor,
``E x B x d x 4`` bytes, which the reference materialises (several per layer)
and the fused kernel never does: the reference's memory grows as O(E·d), the
fused kernel's as O(V·d). A log-log plot (matplotlib, optional) goes next to the
JSON as ``<out stem>_memory.png``.

Backends: ``reference``, ``cpu`` and ``torch_scatter`` by default (``--backends``);
one that cannot run here (``torch_scatter`` not installed, the C++ kernel not
built) is listed as skipped with the reason.

From the repository root (the full default run takes long: let nothing else use
the CPUs)::

    python experiments/benchmarks/nbfnet.py --root ../shared/data
    python experiments/benchmarks/nbfnet.py --part speed --batches 10 --root ../shared/data
    python experiments/benchmarks/nbfnet.py --part memory --edges 10000 20000 40000 \\
        --out experiments/benchmarks/results/nbfnet_memory.json
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
from tqdm import tqdm

from graphlearn.cli.table import format_table
from graphlearn.config import to_dict
from graphlearn.data.paths import data_root
from graphlearn.ops.bench import MALLOC_ENV, PeakRSS, TrainingBench, run_point_script
from graphlearn.train.utils import git_commit, machine_info
from graphlearn.typing import with_matplotlib

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "experiments" / "configs" / "kg" / "fb237_v1" / "nbfnet.yaml"
DEFAULT_OUT = REPO / "experiments" / "benchmarks" / "results" / "nbfnet.json"
DEFAULT_BACKENDS = ("reference", "cpu", "torch_scatter")
DEFAULT_EDGES = (10_000, 20_000, 40_000, 80_000, 160_000)
MiB = 2**20


# ---------------------------------------------------------------- workers (subprocesses)
def speed_point(job: dict) -> dict:
    """Train ``warmup`` + ``batches`` fb237_v1 batches with one backend; per-batch times."""
    from graphlearn.allocator import reuse_freed_memory

    allocator = reuse_freed_memory()  # as `graphlearn train` (GRAPHLEARN_MALLOC decides)
    bench = TrainingBench.from_config(CONFIG, [f"data.root={job['root']}",
                                               f"model.params.backend={job['backend']}",
                                               f"train.seed={job['seed']}"], job["threads"])
    cfg, task = bench.cfg, bench.task
    per_epoch = task.num_batches()
    count = per_epoch if job["batches"] is None else min(job["batches"], per_epoch)
    probe = PeakRSS()
    base = probe.mark()
    for _, batch in zip(range(job["warmup"]), bench.batches(0, cfg.train.seed + 1)):
        bench.step(batch)
    batches = bench.batches(1, cfg.train.seed)
    times, losses = [], []
    bar = tqdm(total=count, desc=f"{job['backend']:13s}", unit="batch", file=sys.stderr,
               dynamic_ncols=True)
    start = time.perf_counter()
    for _ in range(count):
        t0 = time.perf_counter()
        losses.append(bench.step(next(batches)))
        times.append(time.perf_counter() - t0)
        bar.set_postfix(loss=f"{losses[-1]:.4f}", refresh=False)
        bar.update()
    loop_s = time.perf_counter() - start
    bar.close()
    full = count == per_epoch
    mean = statistics.fmean(times)
    return {
        "batch_seconds": times, "losses": losses,
        "s_per_batch_mean": mean, "s_per_batch_std": statistics.stdev(times) if count > 1 else 0.0,
        "s_per_epoch": loop_s if full else mean * per_epoch, "epoch_extrapolated": not full,
        "timed_batches": count, "batches_per_epoch": per_epoch,
        "peak_rss_growth_bytes": probe.peak() - base, "memory_method": probe.method,
        "threads": torch.get_num_threads(), "allocator": allocator,
        "dataset": {"name": cfg.data.name, "entities": task.num_entities,
                    "relation_types": task.num_relations,
                    "message_edges": int(task.message_graph("train").edge_index.size(1)),
                    "train_triples": int(task.train_triples.size(0))},
        "config": to_dict(cfg),
    }


def synthetic_kg(num_nodes: int, num_edges: int, num_relations: int, seed: int):
    """``num_edges // 2`` uniform random triples over ``num_relations`` relations plus their
    inverses (``r + R``): a message graph of ``2 * (num_edges // 2)`` edges, ``2R`` types."""
    from torch_geometric.data import Data

    gen = torch.Generator().manual_seed(seed)
    triples = num_edges // 2
    head = torch.randint(0, num_nodes, (triples,), generator=gen)
    tail = torch.randint(0, num_nodes, (triples,), generator=gen)
    rel = torch.randint(0, num_relations, (triples,), generator=gen)
    edge_index = torch.stack([torch.cat([head, tail]), torch.cat([tail, head])])  # (2, E)
    edge_type = torch.cat([rel, rel + num_relations])  # (E,)
    return Data(edge_index=edge_index, edge_type=edge_type, num_nodes=num_nodes,
                num_relations=2 * num_relations)


def memory_point(job: dict) -> dict:
    """Peak RSS growth of the second of two NBFNet training steps (forward + backward)."""
    from graphlearn.models.losses import self_adversarial_bce
    from graphlearn.models.nbfnet import NBFNet

    torch.set_num_threads(job["threads"])
    torch.manual_seed(job["seed"])
    data = synthetic_kg(job["nodes"], job["edges"], job["relations"], job["seed"])
    model = NBFNet(int(data.num_relations), backend=job["backend"])
    model.train()
    graph = model.message_graph(data)  # prepared once (CSR, boundary self-loops)
    gen = torch.Generator().manual_seed(job["seed"] + 1)
    queries, candidates = job["queries"], 1 + job["negatives"]
    head = torch.randint(0, job["nodes"], (queries,), generator=gen)
    relation = torch.randint(0, int(data.num_relations), (queries,), generator=gen)
    cand = torch.randint(0, job["nodes"], (queries, candidates), generator=gen)

    def step() -> None:
        scores = model(graph, head, relation, cand)  # (B, 1 + k)
        loss = self_adversarial_bce(scores[:, 0], scores[:, 1:], job["temperature"])
        loss.backward()
        model.zero_grad(set_to_none=True)

    probe = PeakRSS()
    step()  # warm-up: kernel load, one-off caches
    base = probe.mark()
    step()
    peak = probe.peak() - base
    dim = model.input_dim
    return {"peak_rss_growth_bytes": peak, "rss_before_bytes": base,
            "memory_method": probe.method, "num_edges": int(data.edge_index.size(1)),
            "num_nodes": job["nodes"], "relation_types": int(data.num_relations),
            "dim": dim, "layers": len(model.hidden_dims),
            "threads": torch.get_num_threads()}


# ---------------------------------------------------------------- parent side
def backend_status(names: Sequence[str]) -> dict[str, str | None]:
    """``None`` for each backend that runs NBFNet's rspmm call here, else the reason.

    A tiny ``rspmm`` call (DistMult message, PNA, per-query relations) also builds the
    fused CPU kernel once, before any worker needs it.
    """
    from graphlearn.ops import BackendUnavailableError, RelGraph, rspmm

    graph = RelGraph.build(torch.tensor([[0], [1]]), torch.tensor([0]), num_nodes=2,
                           num_relations=1)
    status: dict[str, str | None] = {}
    for name in names:
        try:
            rspmm(graph, torch.randn(2, 8), torch.randn(1, 8), message="mul", reduce="pna",
                  backend=name, batch_size=2)
            status[name] = None
        except BackendUnavailableError as error:
            status[name] = str(error)
    return status


def print_skipped(status: dict[str, str | None]) -> None:
    for backend, reason in status.items():
        if reason is not None:
            print(f"skipped {backend}: {reason}")


def run_point(job: dict, timeout: float, malloc: bool) -> dict:
    """``job`` in a fresh interpreter running this script (``--point``); its stderr (the
    progress bar, any traceback) goes to ours. ``{"error": ...}`` on failure. ``malloc``:
    the memory probe's glibc settings; else ``job["allocator"]`` (if any) is passed on
    as ``GRAPHLEARN_MALLOC``."""
    env = dict(MALLOC_ENV) if malloc else {}
    if job.get("allocator"):
        env["GRAPHLEARN_MALLOC"] = job["allocator"]
    return run_point_script(__file__, job, timeout, env)


def run_speed(args: argparse.Namespace, status: dict[str, str | None]) -> dict:
    root = str(data_root(args.root))
    results: dict[str, dict] = {}
    for backend, reason in status.items():
        if reason is not None:
            continue
        for allocator in args.allocators:  # one label per (backend, allocator) measured
            label = backend if len(args.allocators) == 1 else f"{backend}/{allocator}"
            job = {"kind": "speed", "backend": backend, "root": root, "seed": args.seed,
                   "threads": args.threads, "warmup": args.warmup, "batches": args.batches,
                   "allocator": allocator}
            results[label] = run_point(job, args.timeout, malloc=False)
    ok = {b: r for b, r in results.items() if "error" not in r}
    if ok:
        fastest = min(ok, key=lambda b: ok[b]["s_per_batch_mean"])
        first = next(iter(ok))
        for res in ok.values():
            res["ratio_vs_fastest"] = res["s_per_batch_mean"] / ok[fastest]["s_per_batch_mean"]
            # same initial parameters and batches: the losses differ by rounding only
            res["loss_max_abs_diff_vs_first_backend"] = max(
                abs(a - b) for a, b in zip(res["losses"], ok[first]["losses"]))
    rows = []
    for backend, res in results.items():
        if "error" in res:
            rows.append([backend, "ERROR", res["error"], "", "", "", "", "", ""])
            continue
        rows.append([backend, f"{res['s_per_batch_mean']:.3f}", f"{res['s_per_batch_std']:.3f}",
                     f"{res['s_per_epoch']:.1f}",
                     "extrapolated" if res["epoch_extrapolated"] else "measured",
                     res["timed_batches"], f"{res['peak_rss_growth_bytes'] / MiB:.1f}",
                     f"{res['ratio_vs_fastest']:.2f}", f"{res['losses'][0]:.5f}"])
    first_ok = next(iter(ok.values()), None)
    data = first_ok["dataset"] if first_ok else {}
    print(f"\nspeed: NBFNet training on {data.get('name', 'fb237_v1')} "
          f"({CONFIG.relative_to(REPO)}), {data.get('train_triples', '?')} triples, "
          f"{data.get('message_edges', '?')} edges, "
          f"{first_ok['batches_per_epoch'] if first_ok else '?'} batches/epoch, "
          f"{args.warmup} warm-up batch(es), {args.threads} threads")
    print(format_table(["backend", "s/batch mean", "std", "s/epoch", "epoch", "timed batches",
                        "peak RSS growth MiB", "x fastest", "loss[1]"], rows))
    print_skipped(status)
    return {
        "settings": {"config": str(CONFIG.relative_to(REPO)), "root": root, "seed": args.seed,
                     "warmup": args.warmup, "batches": args.batches, "threads": args.threads,
                     "warmup_generator_seed": args.seed + 1, "allocators": args.allocators},
        "dataset": data, "config": first_ok["config"] if first_ok else None,
        "first_backend": next(iter(ok), None), "backends": results,
        "skipped": {b: r for b, r in status.items() if r is not None},
    }


def run_memory(args: argparse.Namespace, status: dict[str, str | None], out: Path) -> dict:
    settings = {"nodes": args.nodes, "relations": args.relations,
                "relation_types": 2 * args.relations, "edges": list(args.edges),
                "queries": args.queries, "negatives": args.negatives, "temperature": 0.5,
                "model": "NBFNet defaults (6 x 32, distmult, pna, dependent)",
                "seed": args.seed, "threads": args.threads, "malloc_env": MALLOC_ENV,
                "measured": "second of two forward + backward steps"}
    available = [b for b, reason in status.items() if reason is None]
    points: list[dict] = []
    for edges in tqdm(args.edges, desc="memory", unit="E", file=sys.stderr,
                      dynamic_ncols=True):
        for backend in available:
            job = {"kind": "memory", "backend": backend, "edges": edges, "nodes": args.nodes,
                   "relations": args.relations, "queries": args.queries,
                   "negatives": args.negatives, "temperature": 0.5, "seed": args.seed,
                   "threads": args.threads}
            res = run_point(job, args.timeout, malloc=True)
            res.update(backend=backend, edges_requested=edges)
            points.append(res)
    dim = 32
    rows = []
    for res in points:
        if "error" in res:
            rows.append([res["edges_requested"], res["backend"], "ERROR", res["error"], "", ""])
            continue
        e = res["num_edges"]
        res["message_tensor_bytes"] = e * args.queries * res["dim"] * 4  # one [E, B*d] float32
        res["node_tensor_bytes"] = args.nodes * args.queries * res["dim"] * 4  # one [V, B*d]
        dim = res["dim"]
        ref = next((p for p in points if p["backend"] == "reference"
                    and p["edges_requested"] == res["edges_requested"] and "error" not in p), None)
        if ref is not None:
            res["ratio_vs_reference"] = (res["peak_rss_growth_bytes"]
                                         / max(ref["peak_rss_growth_bytes"], 1))
        rows.append([f"{e:,}", res["backend"], f"{res['peak_rss_growth_bytes'] / MiB:.1f}",
                     f"{res['ratio_vs_reference']:.3f}" if ref is not None else "-",
                     f"{res['message_tensor_bytes'] / MiB:.1f}",
                     f"{res['peak_rss_growth_bytes'] / res['message_tensor_bytes']:.2f}"])
    print(f"\nmemory: one NBFNet training step (forward + backward), V = {args.nodes:,}, "
          f"{2 * args.relations} relation types, B = {args.queries} queries x "
          f"(1 + {args.negatives}), d = {dim}, {args.threads} threads")
    print(format_table(["edges", "backend", "peak growth MiB", "x reference",
                        "[E,B*d] MiB", "peak / [E,B*d]"], rows))
    print_skipped(status)
    plot = plot_memory(points, out.parent / f"{out.stem}_memory.png")
    return {"settings": settings, "points": points,
            "skipped": {b: r for b, r in status.items() if r is not None},
            "plot": str(plot) if plot else None}


def plot_memory(points: list[dict], path: Path) -> Path | None:
    """Peak growth (MiB) vs edges, one line per backend, log-log; ``None`` without matplotlib."""
    ok = [p for p in points if "error" not in p and p["peak_rss_growth_bytes"] > 0]
    if not with_matplotlib():
        print("note: matplotlib is not installed: no plot (pip install graphlearn[plot])")
        return None
    if not ok:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for backend in dict.fromkeys(p["backend"] for p in ok):
        mine = sorted((p for p in ok if p["backend"] == backend), key=lambda p: p["num_edges"])
        ax.plot([p["num_edges"] for p in mine], [p["peak_rss_growth_bytes"] / MiB for p in mine],
                marker="o", label=backend)
    edges = sorted({p["num_edges"] for p in ok})
    msg = {p["num_edges"]: p["message_tensor_bytes"] for p in ok}
    ax.plot(edges, [msg[e] / MiB for e in edges], "k--", lw=1, label="one [E, B·d] tensor")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("edges E")
    ax.set_ylabel("peak RSS growth of a training step (MiB)")
    ax.set_title(f"NBFNet step memory vs edges (V = {ok[0]['num_nodes']:,})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"wrote {path}")
    return path


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=["speed", "memory", "all"], default="all")
    p.add_argument("--backends", nargs="+", default=list(DEFAULT_BACKENDS),
                   help="rspmm backends (default: reference cpu torch_scatter; unavailable "
                        "ones are skipped with the reason)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--seed", type=int, default=0, help="model, batch and graph seed (0)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help="JSON results (default experiments/benchmarks/results/nbfnet.json); "
                        "the plot goes beside it as <stem>_memory.png")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per subprocess")
    speed = p.add_argument_group("speed part (fb237_v1)")
    speed.add_argument("--root", help="data root (default: $GRAPHLEARN_DATA, else "
                                      "~/.cache/graphlearn/data)")
    speed.add_argument("--batches", type=int, help="time the first N batches of the epoch "
                                                   "(default: the whole epoch)")
    speed.add_argument("--warmup", type=int, default=1, help="untimed batches first (1)")
    speed.add_argument("--allocators", nargs="+", choices=["reuse", "system"],
                       default=["reuse"],
                       help="GRAPHLEARN_MALLOC per run (graphlearn/allocator.py); two values "
                            "time every backend under both (default: reuse, as `graphlearn "
                            "train`)")
    memory = p.add_argument_group("memory part (synthetic graph)")
    memory.add_argument("--edges", type=int, nargs="+", default=list(DEFAULT_EDGES),
                        help="edge counts E, inverses included (default 10k 20k 40k 80k 160k)")
    memory.add_argument("--nodes", type=int, default=2000, help="nodes V (2000)")
    memory.add_argument("--relations", type=int, default=10,
                        help="relations R; with inverses 2R types (10)")
    memory.add_argument("--queries", type=int, default=16, help="queries B per step (16)")
    memory.add_argument("--negatives", type=int, default=32, help="negatives per query (32)")
    p.add_argument("--point", help=argparse.SUPPRESS)  # internal: one measurement (JSON job)
    args = p.parse_args(argv)
    for name, low in (("threads", 1), ("warmup", 0), ("nodes", 2), ("relations", 1),
                      ("queries", 1), ("negatives", 1)):
        if getattr(args, name) < low:
            p.error(f"--{name} must be at least {low}, got {getattr(args, name)}")
    if args.batches is not None and args.batches < 1:
        p.error(f"--batches must be at least 1, got {args.batches}")
    if any(e < 2 for e in args.edges):
        p.error(f"--edges must all be at least 2 (triples plus inverses), got {args.edges}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.point:
        job = json.loads(args.point)
        result = speed_point(job) if job["kind"] == "speed" else memory_point(job)
        print(json.dumps(result))
        return 0
    torch.set_num_threads(args.threads)
    status = backend_status(args.backends)
    payload: dict[str, Any] = {
        "benchmark": "nbfnet",
        "command": shlex.join(["python", *sys.argv]),
        "git_commit": git_commit(REPO),
        "machine": {**machine_info(torch.device("cpu")), "torch": torch.__version__},
        "settings": {k: (str(v) if isinstance(v, Path) else v)
                     for k, v in vars(args).items() if k != "point"},
    }
    if args.part in ("speed", "all"):
        payload["speed"] = run_speed(args, status)
    if args.part in ("memory", "all"):
        payload["memory"] = run_memory(args, status, args.out)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2))
    print(f"wrote {args.out}")
    failed = [r for r in payload.get("speed", {}).get("backends", {}).values() if "error" in r]
    failed += [r for r in payload.get("memory", {}).get("points", []) if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
