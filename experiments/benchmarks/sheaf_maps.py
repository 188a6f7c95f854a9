"""Time the restriction-map families of the sheaf layer side by side on ML-100K.

Issue 6: the orthogonal, general and matrix-exponential families were too slow for
the ML-100K grid. This script measures, for each family in ``--families`` (default:
every registered one, plus ``orthogonal@sequential``: the orthogonal family with
the reference Householder product, one reflection at a time,
``orthogonal@wy``: with the compact-WY product (batched products) instead of
the fused CPU kernel,
``orthogonal_exp@taylor`` / ``orthogonal_exp@torch``: the matrix-exponential family
with the Taylor scaling and squaring in batched products (autograd) or
:func:`torch.linalg.matrix_exp` instead of the fused CPU kernel, and
``general@reference`` / ``orthogonal@reference``: the layers' ``backend="reference"``,
the Laplacian's blocks with gathers, batched products and ``index_add`` instead of
the fused CPU kernel of :mod:`graphlearn.ops.sheaf`), on
the training
graph of the shipped ML-100K sheaf config
(``experiments/configs/recommendation/ml-100k/sheaf_rec.yaml``; users and items
as nodes, the training interactions as undirected edges):

* **layer**: one :class:`~graphlearn.nn.sheaf.SheafConv` with the config's
  ``stalk_dim`` / ``dim`` / ``update`` / ``step``, maps learned from random
  node features, forward and backward (``sum`` of the output);
* **train batch** (``--train-batches N``, default 3): the recommendation task's
  own training step of ``sheaf_rec`` with that family (all layers, BPR + L2,
  backward, Adam step), mean over ``N`` batches; ``s/epoch`` is that mean times
  the batches per epoch (an estimate, marked so).

Families are timed round-robin over ``--rounds`` rounds and the median round is
reported, so a change in the machine's load affects every family alike. Ratios
divide by ``diagonal``. Prints a table; ``--json`` writes the numbers, command,
commit and machine. From the repository root::

    python experiments/benchmarks/sheaf_maps.py --root ../shared/data --threads 1 \\
        --json experiments/benchmarks/results/sheaf_maps.json
    python experiments/benchmarks/sheaf_maps.py --synthetic --train-batches 0    # seconds
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from graphlearn.cli.table import format_table
from graphlearn.config import load_config
from graphlearn.models.sheaf_rec import bipartite_edge_index
from graphlearn.nn.sheaf import SheafConv, list_restriction_maps
from graphlearn.tasks import build_task
from graphlearn.train.utils import git_commit, machine_info

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recommenders import CONFIGS, Bench

ROOT = Path(__file__).resolve().parents[2]
CONFIG = CONFIGS / "sheaf_rec.yaml"
SEQUENTIAL = "orthogonal@sequential"
REFERENCES = (SEQUENTIAL, "orthogonal@wy", "orthogonal_exp@taylor", "orthogonal_exp@torch",
              "general@reference", "orthogonal@reference")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="data root (default: the config's data.root, "
                                       "$GRAPHLEARN_DATA or the cache)")
    parser.add_argument("--families", nargs="+",
                        help=f"map families (default: all registered, plus {' '.join(REFERENCES)})")
    parser.add_argument("--synthetic", action="store_true",
                        help="a random bipartite graph of ML-100K's size instead of the data "
                             "(layer timings only)")
    parser.add_argument("--edges", type=int, default=80_000,
                        help="interactions of the --synthetic graph (80000, ML-100K's 80%%)")
    parser.add_argument("--train-batches", type=int, default=3, metavar="N",
                        help="sheaf_rec training batches per round and family (3; 0: skip)")
    parser.add_argument("--rounds", type=int, default=3, help="round-robin rounds (3)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    return parser.parse_args(argv)


def family_and_method(name: str) -> tuple[str, str | None]:
    """``"orthogonal@sequential"`` -> ``("orthogonal", "sequential")``."""
    family, _, method = name.partition("@")
    return family, method or None


def with_method(module: torch.nn.Module, method: str | None) -> torch.nn.Module:
    """Set the ``method`` (Householder product, matrix exponential) of every orthogonal
    map learner in ``module``; ``"reference"`` sets every ``backend`` instead (the
    sheaf layers and the recommender)."""
    if method is not None:
        attribute = "backend" if method == "reference" else "method"
        for sub in module.modules():
            if hasattr(sub, attribute):
                setattr(sub, attribute, method)
    return module


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    families = args.families or [*list_restriction_maps(), *REFERENCES]
    known = set(list_restriction_maps())
    unknown = [f for f in families if family_and_method(f)[0] not in known]
    if unknown:
        print(f"unknown families: {', '.join(unknown)} (valid: {', '.join(sorted(known))}, "
              f"{', '.join(REFERENCES)})", file=sys.stderr)
        return 2
    cfg = load_config(CONFIG)
    params = dict(cfg.model.params)
    d, dim = params["stalk_dim"], params["dim"]
    generator = torch.Generator().manual_seed(0)
    task = None
    if args.synthetic:
        num_users, num_items, num_pairs = 943, 1682, args.edges
        pairs = torch.stack([torch.randint(num_users, (num_pairs,), generator=generator),
                             torch.randint(num_items, (num_pairs,), generator=generator)])
        args.train_batches = 0
    else:
        if args.root is not None:
            cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, root=args.root))
        task = build_task(cfg)
        num_users, num_items, pairs = task.num_users, task.num_items, task.train_pairs
    edge_index = bipartite_edge_index(pairs[0], pairs[1], num_users, num_items)
    num_nodes = num_users + num_items
    x = torch.randn(num_nodes, dim, generator=generator)

    layers, benches = {}, {}
    for name in families:
        family, method = family_and_method(name)
        torch.manual_seed(0)
        layers[name] = with_method(SheafConv(d, dim // d, family, update=params["update"],
                                             step=params.get("step", 1.0)), method)
        if args.train_batches:  # the same seeds: every family sees the same batches
            benches[name] = Bench("sheaf_rec", args.root, {"restriction": family}, task)
            with_method(benches[name].model, method)

    def layer_step(name: str) -> None:
        inp = x.clone().requires_grad_()
        layers[name](inp, edge_index).sum().backward()

    for name in families:  # warm-up: kernels, caches (the layers' sheaf graphs)
        layer_step(name)
        if args.train_batches:
            benches[name].step()
    layer_s = {name: [] for name in families}
    batch_s = {name: [] for name in families}
    for _ in range(args.rounds):
        for name in families:
            layer_s[name].append(timed(layer_step, name))
            if args.train_batches:
                batch_s[name].append(statistics.mean(
                    benches[name].step() for _ in range(args.train_batches)))

    per_epoch = task.num_batches() if task is not None else None
    base = statistics.median(layer_s["diagonal"]) if "diagonal" in layer_s else None
    base_batch = statistics.median(batch_s["diagonal"]) \
        if batch_s.get("diagonal") else None
    rows, results = [], {}
    for name in families:
        layer = statistics.median(layer_s[name])
        result = {"layer_fwd_bwd_s": layer, "rounds_layer_s": layer_s[name]}
        row = [name, f"{layer * 1e3:.0f}", f"{layer / base:.1f}" if base else "-"]
        if args.train_batches:
            batch = statistics.median(batch_s[name])
            result.update(train_batch_s=batch, rounds_train_batch_s=batch_s[name],
                          s_per_epoch_estimated=batch * per_epoch)
            row += [f"{batch * 1e3:.0f}", f"{batch / base_batch:.1f}" if base_batch else "-",
                    f"{batch * per_epoch:.0f}*"]
        results[name] = result
        rows.append(row)
    header = ["family", "layer fwd+bwd (ms)", "x diagonal"]
    if args.train_batches:
        header += ["train batch (ms)", "x diagonal", "s/epoch"]
    graph = "random bipartite graph" if args.synthetic else "ML-100K training graph"
    print(f"{graph}: {num_nodes} nodes, {edge_index.size(1):,} undirected edges; stalk "
          f"dim {d}, {dim // d} channels; {torch.get_num_threads()} threads; median of "
          f"{args.rounds} rounds")
    print(format_table(header, rows))
    if args.train_batches:
        print(f"* estimated: mean of {args.train_batches} batches x {per_epoch} batches "
              f"per epoch")
    if args.json:
        out = {"command": " ".join(["python", *sys.argv]), "git_commit": git_commit(ROOT),
               "graph": graph, "nodes": num_nodes, "edges": int(edge_index.size(1)),
               "stalk_dim": d, "dim": dim, "update": params["update"],
               "rounds": args.rounds, "train_batches": args.train_batches,
               "batches_per_epoch": per_epoch, "families": results,
               "machine": {**machine_info(torch.device("cpu")), "torch": torch.__version__,
                           "threads": torch.get_num_threads()}}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2), encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
