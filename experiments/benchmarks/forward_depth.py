"""Benchmark forward learning vs backprop: peak memory and time per epoch against depth.

Issue 7 (ForwardGNN): "forward learning keeps memory flat as depth grows". For each
depth ``L`` in ``--depths`` (default 2 4 8 16) and each link-prediction variant in
``--variants`` (default ``backprop ff sf sf-topdown ccl``) under each schedule of
``--schedules`` it supports (default both: ``ff`` and ``sf`` run ``layerwise`` and
``simultaneous``, the others ``simultaneous`` only), a GCN stack of ``L`` layers of
width ``--hidden`` (default 128; built by
:func:`graphlearn.train.forward.build_stack`, so ``sf-topdown`` gets its wider
inputs) is trained on CiteSeer link prediction for ``--epochs`` epochs (default 3;
per layer under ``layerwise``) by the package's own schedule
(``graphlearn.train.forward.link.SCHEDULES``), exactly as
:func:`~graphlearn.train.forward.train_forward` runs it, with validation only at
the last epoch (``eval_every = epochs``; per layer under ``layerwise``). Split as
the link configs ``experiments/configs/link/citeseer/forward_*.yaml``:
``random_link_split`` 64/16/20, seed
``--seed``. The final test evaluation of ``train_forward`` is not run.

Every (depth, variant, schedule) point runs in a fresh subprocess (so one point's
peak cannot hide in another's heap) whose glibc maps each block above 64 KiB freshly
(``graphlearn.ops.bench.MALLOC_ENV``), with ``--threads`` torch threads (default 1).
The subprocess first trains a throw-away copy of the stack for one epoch (kernels,
thread pools, one-off caches), then measures the real run:

* ``peak RSS growth``: the rise of the resident set's high-water mark (Linux
  ``VmHWM``, reset through ``/proc/self/clear_refs`` right before training) over the
  mark right after the reset. Data, model, heads are built before; what grows is
  activations, the graph autograd keeps, gradients, Adam state, negatives,
  validation. Where ``clear_refs`` is not writable it falls back to ``ru_maxrss``
  (``memory_method`` in the JSON).
* ``peak saved-tensor bytes`` ("activation memory"): the largest total, at any
  moment, of the tensors autograd holds for backward
  (``torch.autograd.graph.saved_tensors_hooks``), each storage counted once, the
  parameters excluded. Unlike RSS it is exact and free of allocator noise.
* ``s/epoch``: wall time of the schedule divided by ``--epochs``. Under
  ``layerwise`` that is the time of one full pass over all layers (each layer one
  step, plus its share of caching the layer's outputs and of validation); under
  ``simultaneous`` one step of the whole stack. Either includes the one
  validation pass at the end. On a shared machine the times are noisy; memory is
  not.

``x backprop`` divides by ``backprop`` at the same depth. Results go to ``--out``
(JSON, with command, commit and machine) and a three-panel plot to ``--plot``
(matplotlib, optional): peak memory (RSS growth, saved tensors) and s/epoch
against depth, one line per variant.

From the repository root::

    python experiments/benchmarks/forward_depth.py
    python experiments/benchmarks/forward_depth.py --depths 2 4 8 --variants backprop ff
    python experiments/benchmarks/forward_depth.py --synthetic --depths 2 4 --epochs 1 \\
        --hidden 16 --out /tmp/fd.json --plot /tmp/fd.png        # seconds: a smoke test
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from graphlearn.cli.table import format_table
from graphlearn.errors import ConfigError
from graphlearn.ops.bench import MALLOC_ENV, PeakRSS, run_point_script
from graphlearn.train.utils import git_commit, machine_info
from graphlearn.typing import with_matplotlib

if TYPE_CHECKING:
    from typing_extensions import Self

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "experiments" / "benchmarks" / "results" / "forward_depth.json"
DEFAULT_PLOT = REPO / "docs" / "img" / "forward_depth_memory.png"
DEFAULT_DEPTHS = (2, 4, 8, 16)
DEFAULT_VARIANTS = ("backprop", "ff", "sf", "sf-topdown", "ccl")
DEFAULT_SCHEDULES = ("layerwise", "simultaneous")
SPLIT = {"val_ratio": 0.16, "test_ratio": 0.20}  # as experiments/configs/link/citeseer/forward_*.yaml
SYNTHETIC = {"nodes": 300, "features": 32, "edges": 1200}  # undirected edges
MiB = 2**20


# ---------------------------------------------------------------- saved-tensor meter
class _Saved:
    """One tensor saved for backward; tells the meter when autograd lets it go."""

    __slots__ = ("key", "meter", "tensor")

    def __init__(self, meter: SavedTensorMeter, tensor: Tensor, key: int) -> None:
        self.tensor, self.meter, self.key = tensor, meter, key
        meter.acquire(key, tensor.untyped_storage().nbytes())

    def __del__(self) -> None:
        self.meter.release(self.key)


class SavedTensorMeter:
    """Peak total bytes of the tensors autograd saves for backward, while active.

    Each storage counts once however many ops save it (or views of it); storages
    in ``exclude`` (the parameters) are not counted. A tensor counts from the op
    that saves it until autograd frees the saved copy (after ``backward``, or when
    the graph is dropped).
    """

    def __init__(self, exclude: Iterable[Tensor] = ()) -> None:
        self.excluded = {t.untyped_storage().data_ptr() for t in exclude}
        self.live: dict[int, list[int]] = {}  # storage address -> [references, bytes]
        self.current = 0
        self.peak = 0
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)

    def acquire(self, key: int, nbytes: int) -> None:
        entry = self.live.setdefault(key, [0, nbytes])
        if entry[0] == 0:
            self.current += nbytes
            self.peak = max(self.peak, self.current)
        entry[0] += 1

    def release(self, key: int) -> None:
        entry = self.live[key]
        entry[0] -= 1
        if entry[0] == 0:
            self.current -= entry[1]
            del self.live[key]

    def _pack(self, tensor: Tensor) -> Any:
        if tensor.layout != torch.strided:
            return tensor
        key = tensor.untyped_storage().data_ptr()
        if key in self.excluded:
            return tensor
        # Keep a detached alias: a saved *output* handed over with its grad_fn would
        # form a cycle (node -> saved -> tensor -> node) that only the garbage
        # collector frees, keeping graphs that never see backward alive.
        return _Saved(self, tensor.detach(), key)

    @staticmethod
    def _unpack(packed: Any) -> Tensor:
        return packed.tensor if isinstance(packed, _Saved) else packed

    def __enter__(self) -> Self:
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._hooks.__exit__(*exc)


# ---------------------------------------------------------------- data
def synthetic_graph(seed: int):
    """A random undirected graph: 300 nodes, 32 Gaussian features, 1,200 edges."""
    from torch_geometric.data import Data
    from torch_geometric.utils import coalesce, to_undirected

    gen = torch.Generator().manual_seed(seed)
    n = SYNTHETIC["nodes"]
    src = torch.randint(0, n, (SYNTHETIC["edges"],), generator=gen)
    dst = (src + torch.randint(1, n, (SYNTHETIC["edges"],), generator=gen)) % n  # no self-loops
    edge_index = coalesce(to_undirected(torch.stack([src, dst]), num_nodes=n), num_nodes=n)
    x = torch.randn(n, SYNTHETIC["features"], generator=gen)
    return Data(x=x, edge_index=edge_index, num_nodes=n)


def load_graph(job: dict):
    if job["synthetic"]:
        return synthetic_graph(job["seed"])
    from graphlearn.data.registry import load_dataset

    return load_dataset("citeseer", root=job["root"], download=False)


def default_root() -> Path:
    env = os.environ.get("GRAPHLEARN_DATA")
    return Path(env).expanduser() if env else REPO.parent / "shared" / "data"


# ---------------------------------------------------------------- worker (subprocess)
def measure_point(job: dict) -> dict:
    """Train one (depth, variant, schedule) point; its memory and time."""
    from torch_geometric.nn import GCNConv

    from graphlearn.data.link_split import random_link_split
    from graphlearn.train.forward import build_stack
    from graphlearn.train.forward.link import SCHEDULES, VARIANTS, ForwardConfig

    torch.set_num_threads(job["threads"])
    data = load_graph(job)
    split = random_link_split(data, seed=job["seed"], **SPLIT)
    train = split[0]
    depth, variant, schedule, epochs = job["depth"], job["variant"], job["schedule"], job["epochs"]
    cfg = ForwardConfig(variant=variant, schedule=schedule, epochs=epochs, eval_every=epochs,
                        seed=job["seed"])

    def build(seed: int):
        """A stack and objective as ``train_forward`` sets them up (``reset=True``)."""
        torch.manual_seed(seed)
        stack = build_stack(GCNConv, int(train.x.size(-1)), [job["hidden"]] * depth,
                            variant=variant, task="link")
        objective = VARIANTS.get(variant).from_config(cfg)
        objective.setup(stack, train, reset=True)
        return stack, objective

    run = SCHEDULES.get(schedule)
    # Warm-up on a throw-away stack: one epoch (per layer), untimed, unmeasured.
    warm_stack, warm_objective = build(job["seed"] + 1)
    run(warm_stack, warm_objective, split, dataclasses.replace(cfg, epochs=1, eval_every=1),
        torch.Generator().manual_seed(job["seed"] + 1))
    del warm_stack, warm_objective

    stack, objective = build(job["seed"])
    meter = SavedTensorMeter(exclude=stack.parameters())
    probe = PeakRSS()
    generator = torch.Generator().manual_seed(job["seed"])
    base = probe.mark()
    start = time.perf_counter()
    with meter:
        result = run(stack, objective, split, cfg, generator)
    seconds = time.perf_counter() - start
    peak = probe.peak()
    history = result["history"]
    return {
        "peak_rss_growth_bytes": peak - base, "rss_before_bytes": base,
        "memory_method": probe.method,
        "saved_tensor_peak_bytes": meter.peak,
        "saved_tensor_leftover_bytes": meter.current,
        "train_seconds": seconds, "s_per_epoch": seconds / epochs,
        "steps": len(history) if schedule == "layerwise" else epochs,
        "last_loss": history[-1]["loss"],
        "parameters": sum(p.numel() for p in stack.parameters()),
        "graph": {"nodes": int(data.num_nodes), "features": int(train.x.size(-1)),
                  "message_edges": int(train.edge_index.size(1)),
                  "train_positives": int(train.edge_label_index.size(1))},
        "threads": torch.get_num_threads(),
    }


# ---------------------------------------------------------------- parent side
def expand_points(variants: Sequence[str], schedules: Sequence[str]) -> list[tuple[str, str]]:
    """``(variant, schedule)`` for every variant and each requested schedule it supports;
    an unknown variant or schedule fails with the valid names."""
    from graphlearn.train.forward.link import SCHEDULES, VARIANTS

    for name in schedules:
        SCHEDULES.get(name)
    points = []
    for name in variants:
        objective = VARIANTS.get(name)
        supported = [s for s in schedules if s in objective.schedules]
        if not supported:
            raise ConfigError(f"variant {name!r} supports only "
                              f"{', '.join(objective.schedules)}; --schedules {' '.join(schedules)}")
        points += [(objective.name, s) for s in supported]
    return points


def label(variant: str, schedule: str) -> str:
    return f"{variant}/{schedule}"


def run_point(job: dict, timeout: float) -> dict:
    """``job`` in a fresh interpreter running this script (``--point``); its stderr goes to
    ours. ``{"error": ...}`` on failure."""
    return run_point_script(__file__, job, timeout,
                            {**MALLOC_ENV, "OMP_NUM_THREADS": str(job["threads"])})


def add_ratios(points: list[dict]) -> None:
    """``*_x_backprop``: each memory figure over backprop's at the same depth."""
    base = {p["depth"]: p for p in points if p["variant"] == "backprop" and "error" not in p}
    for p in points:
        ref = base.get(p["depth"])
        if "error" in p or ref is None:
            continue
        for key in ("peak_rss_growth_bytes", "saved_tensor_peak_bytes", "s_per_epoch"):
            p[f"{key}_x_backprop"] = p[key] / ref[key] if ref[key] > 0 else None


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def print_table(points: list[dict]) -> None:
    rows = []
    for p in points:
        name = label(p["variant"], p["schedule"])
        if "error" in p:
            rows.append([p["depth"], name, "ERROR", p["error"], "", "", "", ""])
            continue
        rows.append([p["depth"], name, f"{p['peak_rss_growth_bytes'] / MiB:.1f}",
                     _fmt(p.get("peak_rss_growth_bytes_x_backprop")),
                     f"{p['saved_tensor_peak_bytes'] / MiB:.1f}",
                     _fmt(p.get("saved_tensor_peak_bytes_x_backprop")),
                     f"{p['s_per_epoch']:.3f}", _fmt(p.get("s_per_epoch_x_backprop"))])
    print(format_table(["depth", "variant/schedule", "peak RSS MiB", "x backprop",
                        "saved MiB", "x backprop", "s/epoch", "x backprop"], rows))


def _display(path: Path) -> str:
    """``path`` relative to the repository when inside it."""
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def plot(points: list[dict], path: Path, title: str) -> Path | None:
    """Peak RSS growth, peak saved tensors and s/epoch vs depth; ``None`` without matplotlib."""
    if not with_matplotlib():
        print("note: matplotlib is not installed: no plot (pip install graphlearn[plot])")
        return None
    ok = [p for p in points if "error" not in p]
    if not ok:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("peak_rss_growth_bytes", MiB, "peak RSS growth (MiB)"),
              ("saved_tensor_peak_bytes", MiB, "peak autograd-saved tensors (MiB)"),
              ("s_per_epoch", 1, "seconds per epoch")]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    names = list(dict.fromkeys(label(p["variant"], p["schedule"]) for p in ok))
    depths = sorted({p["depth"] for p in ok})
    for ax, (key, scale, ylabel) in zip(axes, panels):
        for name in names:
            mine = sorted((p for p in ok if label(p["variant"], p["schedule"]) == name),
                          key=lambda p: p["depth"])
            style = "--" if name.endswith("/simultaneous") and not name.startswith("backprop") \
                else "-"
            ax.plot([p["depth"] for p in mine], [p[key] / scale for p in mine], style,
                    marker="o", label=name, lw=2.5 if name.startswith("backprop") else 1.5)
        ax.set_xscale("log", base=2)
        ax.set_xticks(depths, [str(d) for d in depths])
        ax.set_xlabel("depth (GCN layers)")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}")
    return path


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--depths", type=int, nargs="+", default=list(DEFAULT_DEPTHS),
                   help="numbers of GCN layers (default 2 4 8 16)")
    p.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS),
                   help="link variants (default backprop ff sf sf-topdown ccl)")
    p.add_argument("--schedules", nargs="+", default=list(DEFAULT_SCHEDULES),
                   help="schedules, each run for the variants that support it "
                        "(default layerwise simultaneous)")
    p.add_argument("--epochs", type=int, default=3,
                   help="training epochs (per layer under layerwise) (default 3)")
    p.add_argument("--hidden", type=int, default=128, help="width of every layer (128)")
    p.add_argument("--root", type=Path, default=None,
                   help="data root holding planetoid/CiteSeer/raw (default $GRAPHLEARN_DATA, "
                        "else ../shared/data)")
    p.add_argument("--synthetic", action="store_true",
                   help=f"a random graph ({SYNTHETIC['nodes']} nodes, {SYNTHETIC['features']} "
                        f"features, {SYNTHETIC['edges']} edges) instead of CiteSeer")
    p.add_argument("--threads", type=int, default=1, help="torch threads per point (1)")
    p.add_argument("--seed", type=int, default=0, help="split, initialisation, negatives (0)")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per point (1800)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help="JSON results (default experiments/benchmarks/results/forward_depth.json)")
    p.add_argument("--plot", type=Path, default=DEFAULT_PLOT,
                   help="plot (default docs/img/forward_depth_memory.png)")
    p.add_argument("--point", help=argparse.SUPPRESS)  # internal: one measurement (JSON job)
    args = p.parse_args(argv)
    for name in ("epochs", "hidden", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if min(args.depths) < 1:
        p.error(f"--depths must all be at least 1, got {args.depths}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.point:
        print(json.dumps(measure_point(json.loads(args.point))))
        return 0
    try:
        pairs = expand_points(args.variants, args.schedules)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    root = args.root if args.root is not None else default_root()
    if not args.synthetic and not (root / "planetoid" / "CiteSeer" / "raw").is_dir():
        print(f"error: CiteSeer not found under {root} (planetoid/CiteSeer/raw); pass --root "
              f"or --synthetic", file=sys.stderr)
        return 2
    dataset = "synthetic" if args.synthetic else "citeseer"
    load_before = os.getloadavg()
    start = time.perf_counter()
    points: list[dict] = []
    for depth in args.depths:
        for variant, schedule in pairs:
            job = {"depth": depth, "variant": variant, "schedule": schedule,
                   "epochs": args.epochs, "hidden": args.hidden, "root": str(root),
                   "synthetic": args.synthetic, "threads": args.threads, "seed": args.seed}
            t0 = time.perf_counter()
            res = run_point(job, args.timeout)
            res.update(depth=depth, variant=variant, schedule=schedule)
            points.append(res)
            status = res.get("error") or (f"{res['peak_rss_growth_bytes'] / MiB:.1f} MiB RSS, "
                                          f"{res['saved_tensor_peak_bytes'] / MiB:.1f} MiB saved, "
                                          f"{res['s_per_epoch']:.3f} s/epoch")
            print(f"depth {depth:2d} {label(variant, schedule):22s} {status} "
                  f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    add_ratios(points)
    title = (f"{dataset} link prediction, GCN width {args.hidden}, {args.epochs} epoch(s) "
             f"(per layer for layerwise), {args.threads} thread(s)")
    print(f"\n{title}; s/epoch under layerwise = one pass over all layers")
    print_table(points)
    plot_path = plot(points, args.plot, title)
    payload: dict[str, Any] = {
        "benchmark": "forward_depth",
        "command": shlex.join(["python", *(sys.argv if argv is None else
                                           [str(Path(__file__)), *argv])]),
        "git_commit": git_commit(REPO),
        "machine": {**machine_info(torch.device("cpu")), "torch": torch.__version__,
                    "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "settings": {k: (str(v) if isinstance(v, Path) else v)
                     for k, v in vars(args).items() if k != "point"}
        | {"root": str(root), "dataset": dataset, "split": SPLIT, "backbone": "gcn",
           "malloc_env": MALLOC_ENV, "eval_every": "epochs (validation only at the last)",
           "s_per_epoch": "schedule wall time / epochs; layerwise: one pass over all layers"},
        "points": points,
        "plot": _display(plot_path) if plot_path else None,
        "wall_time_s": round(time.perf_counter() - start, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2))
    print(f"wrote {args.out}")
    return 1 if any("error" in p for p in points) else 0


if __name__ == "__main__":
    sys.exit(main())
