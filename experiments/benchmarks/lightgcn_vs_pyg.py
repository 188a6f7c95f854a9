"""Time a training epoch of graphlearn's LightGCN against PyG's, and check they agree.

Both train on the same MovieLens-100K split (RecBole protocol: implicit, per-user
random 80/10/10, seed 2020), with the same batches and negatives (drawn by
graphlearn's recommendation task from one generator), the same dimensions,
layers, batch size, BPR loss and Adam. PyG's model is used as its own example
trains it: every batch calls ``model(edge_index, edge_label_index)``, which
re-normalises and re-propagates the whole graph, and ``recommendation_loss``.

Before timing, the script checks that our propagation equals PyG's
``LightGCN.get_embedding`` given the same layer-0 embeddings.

    python experiments/benchmarks/lightgcn_vs_pyg.py --root ../shared/data --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time

import torch
import torch_geometric
from torch_geometric.nn.models import LightGCN as PyGLightGCN

from graphlearn.cli.table import format_table
from graphlearn.config import Config, DataConfig, EvalConfig, ModelConfig, TrainConfig
from graphlearn.tasks import build_task


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="data root (default: $GRAPHLEARN_DATA or the cache)")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs of ours (3)")
    parser.add_argument("--pyg-epochs", type=int, default=1, help="timed epochs of PyG's (1)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    return parser.parse_args(argv)


def make_task(args: argparse.Namespace):
    cfg = Config(task="recommendation", data=DataConfig(name="ml-100k", root=args.root),
                 model=ModelConfig(name="lightgcn", params={
                     "dim": args.dim, "num_layers": args.layers, "reg_weight": 1e-4}),
                 train=TrainConfig(batch_size=args.batch_size, seed=2020, metric="ndcg@10"),
                 eval=EvalConfig(ks=(10,)))
    return build_task(cfg)


def bipartite_edge_index(task) -> torch.Tensor:
    """Distinct training pairs as a symmetric edge_index over users then items."""
    user, item = task.train_pairs
    key = torch.unique(user * task.num_items + item)
    u, i = key // task.num_items, key % task.num_items + task.num_users
    return torch.stack([torch.cat([u, i]), torch.cat([i, u])])


def check_propagation(task, args) -> float:
    torch.manual_seed(0)
    ours = task.build_model()
    theirs = PyGLightGCN(task.num_users + task.num_items, args.dim, args.layers)
    with torch.no_grad():
        theirs.embedding.weight.copy_(torch.cat([ours.user_embedding.weight,
                                                 ours.item_embedding.weight]))
        user_repr, item_repr = ours.encode()
        expected = theirs.get_embedding(bipartite_edge_index(task))
    return float((torch.cat([user_repr, item_repr]) - expected).abs().max())


def epoch_ours(task, model, optimizer, generator) -> float:
    start = time.perf_counter()
    for batch in task.train_batches(1, generator):
        optimizer.zero_grad()
        task.training_step(model, batch).backward()
        optimizer.step()
    return time.perf_counter() - start


def epoch_pyg(task, model, optimizer, generator, edge_index) -> float:
    offset = task.num_users
    start = time.perf_counter()
    for batch in task.train_batches(1, generator):
        pos = torch.stack([batch.user, batch.pos_item + offset])
        neg = torch.stack([batch.user, batch.neg_item[:, 0] + offset])
        edge_label_index = torch.cat([pos, neg], dim=1)
        optimizer.zero_grad()
        pos_rank, neg_rank = model(edge_index, edge_label_index).chunk(2)
        loss = model.recommendation_loss(pos_rank, neg_rank,
                                         node_id=edge_label_index.unique(), lambda_reg=1e-4)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    task = make_task(args)
    max_diff = check_propagation(task, args)
    ok = max_diff < 1e-5
    print(f"propagation check: max |ours - PyG| = {max_diff:.2e} "
          f"({'OK' if ok else 'MISMATCH'})", file=sys.stderr)

    torch.manual_seed(0)
    ours = task.build_model()
    opt = torch.optim.Adam(ours.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    epoch_ours(task, ours, opt, gen)  # warm-up
    ours_times = [epoch_ours(task, ours, opt, gen) for _ in range(args.epochs)]

    torch.manual_seed(0)
    pyg = PyGLightGCN(task.num_users + task.num_items, args.dim, args.layers)
    opt = torch.optim.Adam(pyg.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    edge_index = bipartite_edge_index(task)
    pyg_times = [epoch_pyg(task, pyg, opt, gen, edge_index) for _ in range(args.pyg_epochs)]

    ours_s, pyg_s = statistics.mean(ours_times), statistics.mean(pyg_times)
    rows = [["graphlearn LightGCN", f"{ours_s:.3f}", f"{min(ours_times):.3f}", "1.00"],
            ["torch_geometric LightGCN", f"{pyg_s:.3f}", f"{min(pyg_times):.3f}",
             f"{pyg_s / ours_s:.2f}"]]
    print(f"ML-100K train {task.train_pairs.size(1):,} interactions, {args.dim} dims, "
          f"{args.layers} layers, batch {args.batch_size}, {task.num_batches()} batches/epoch, "
          f"{torch.get_num_threads()} threads")
    print(format_table(["implementation", "s/epoch (mean)", "s/epoch (min)", "x ours"], rows))
    result = {
        "dataset": "ml-100k", "users": task.num_users, "items": task.num_items,
        "train_interactions": int(task.train_pairs.size(1)), "dim": args.dim,
        "layers": args.layers, "batch_size": args.batch_size,
        "batches_per_epoch": task.num_batches(), "threads": torch.get_num_threads(),
        "ours_s_per_epoch": ours_times, "pyg_s_per_epoch": pyg_times,
        "ours_mean_s": ours_s, "pyg_mean_s": pyg_s, "ratio_pyg_over_ours": pyg_s / ours_s,
        "propagation_max_abs_diff": max_diff, "propagation_equal": ok,
        "torch_version": torch.__version__, "torch_geometric_version": torch_geometric.__version__,
        "machine": {"host": platform.node(), "platform": platform.platform()},
    }
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=2)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
