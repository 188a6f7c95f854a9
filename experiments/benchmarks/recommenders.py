"""Time the ML-100K recommenders side by side: training batches and all-user top-K.

For every model (default: bpr_mf, lightgcn, ngcf, sheaf_rec) the script loads its
shipped config (``experiments/configs/recommendation/ml-100k/<model>.yaml``: model
hyperparameters, batch size, negatives, optimizer and lr), builds it on the same
prepared ML-100K split (RecBole protocol, seed 2020) and measures

* **training**: seconds per batch of the recommendation task's own training step
  (``encode`` + BPR + L2, backward, Adam step), after ``--warmup`` batches; the
  epoch time is measured over the full epoch, or with ``--batches N`` estimated
  as N batches' mean times the batches per epoch (marked ``"estimated"``);
* **recommendation**: seconds for top-10 over all items for every user, every
  known item masked (``RecommendationTask.recommend``: one ``encode``, then scores
  in chunks of ``eval.batch_size``), in eval mode, median of ``--repeats``.

Models are timed round-robin over ``--rounds`` rounds (each round times every
model once) and the median round is reported, so that a change in the machine's
load affects every model alike. Prints a table and, with ``--json``, writes the
numbers and the environment.

    python experiments/benchmarks/recommenders.py --root ../shared/data --batches 10 \\
        --json recommenders.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from graphlearn.cli.table import format_table
from graphlearn.config import load_config
from graphlearn.errors import ConfigError
from graphlearn.models import build_model, list_models
from graphlearn.tasks import build_task

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "experiments" / "configs" / "recommendation" / "ml-100k"
MODELS = ("bpr_mf", "lightgcn", "ngcf", "sheaf_rec")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="data root (default: the configs' data.root, "
                                       "$GRAPHLEARN_DATA or the cache)")
    parser.add_argument("--models", nargs="+", default=list(MODELS),
                        help=f"registered models with a config in {CONFIGS.relative_to(ROOT)} "
                             f"(default: {' '.join(MODELS)})")
    parser.add_argument("--batches", type=int, metavar="N",
                        help="time N training batches per round (default: a full epoch)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed batches first (2)")
    parser.add_argument("--rounds", type=int, default=3, help="round-robin rounds (3)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="all-user recommendation timings per round (3)")
    parser.add_argument("--k", type=int, default=10, help="top-K of the recommendation (10)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    return parser.parse_args(argv)


class Bench:
    """One model on its config's task: a model, an optimizer and a batch stream."""

    def __init__(self, name: str, root: str | None, params: dict | None = None,
                 task=None) -> None:
        """``params``: overrides of the config's model parameters; ``task``: the
        config's task, already built (several benches on the same data)."""
        cfg = load_config(CONFIGS / f"{name}.yaml")
        if root is not None:
            cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, root=root))
        self.name, self.cfg = name, cfg
        self.task = build_task(cfg) if task is None else task
        torch.manual_seed(cfg.train.seed)
        self.model = build_model(cfg.model.name, {**cfg.model.params, **(params or {})},
                                 **self.task.model_context())
        if cfg.train.optimizer != "adam":
            raise ConfigError(f"{name}: the benchmark runs Adam, the config says "
                              f"{cfg.train.optimizer!r}")
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.train.lr)
        self.generator = torch.Generator().manual_seed(cfg.train.seed)
        self.epoch = 0
        self._batches = iter(())

    def _next_batch(self):
        batch = next(self._batches, None)
        if batch is None:
            self.epoch += 1
            self._batches = self.task.train_batches(self.epoch, self.generator)
            batch = next(self._batches)
        return batch

    def step(self) -> float:
        """One training batch; its wall time in seconds."""
        batch = self._next_batch()
        self.model.train()
        start = time.perf_counter()
        self.optimizer.zero_grad()
        loss = self.task.training_step(self.model, batch)
        loss.backward()
        self.optimizer.step()
        return time.perf_counter() - start

    def recommend(self, k: int) -> float:
        """Top-``k`` for every user; wall time in seconds."""
        self.model.eval()
        users = torch.arange(self.task.num_users)
        start = time.perf_counter()
        self.task.recommend(self.model, users, k)
        return time.perf_counter() - start


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    known = set(list_models())
    missing = [m for m in args.models if m not in known or not (CONFIGS / f"{m}.yaml").exists()]
    if missing:
        print(f"skipped (not registered or no config): {', '.join(missing)}", file=sys.stderr)
    benches = [Bench(m, args.root) for m in args.models if m not in missing]
    if not benches:
        return 1
    per_epoch = {b.name: b.task.num_batches() for b in benches}
    timed = {b.name: args.batches or per_epoch[b.name] for b in benches}
    batch_s = {b.name: [] for b in benches}  # per round: mean s per batch
    epoch_s = {b.name: [] for b in benches}  # per round: s per (full or estimated) epoch
    rec_s = {b.name: [] for b in benches}
    for b in benches:
        for _ in range(args.warmup):
            b.step()
        b.recommend(args.k)  # warm-up
    for _ in range(args.rounds):
        for b in benches:
            times = [b.step() for _ in range(timed[b.name])]
            batch_s[b.name].append(statistics.mean(times))
            epoch_s[b.name].append(sum(times) if args.batches is None
                                   else statistics.mean(times) * per_epoch[b.name])
            rec_s[b.name].append(min(b.recommend(args.k) for _ in range(args.repeats)))
    base = statistics.median(batch_s["lightgcn"]) if "lightgcn" in batch_s else None
    rows, results = [], {}
    for b in benches:
        s_batch = statistics.median(batch_s[b.name])
        result = {
            "s_per_batch": s_batch, "s_per_epoch": statistics.median(epoch_s[b.name]),
            "epoch_estimated": args.batches is not None, "batches_per_epoch": per_epoch[b.name],
            "timed_batches_per_round": timed[b.name],
            "recommend_all_users_s": statistics.median(rec_s[b.name]),
            "rounds_s_per_batch": batch_s[b.name], "rounds_recommend_s": rec_s[b.name],
            "params": sum(p.numel() for p in b.model.parameters()),
            "model_params": dict(b.cfg.model.params),
        }
        results[b.name] = result
        rows.append([b.name, f"{s_batch * 1e3:.1f}",
                     f"{s_batch / base:.2f}" if base else "-",
                     f"{result['s_per_epoch']:.2f}{'*' if args.batches else ''}",
                     f"{result['recommend_all_users_s'] * 1e3:.1f}", f"{result['params']:,}"])
    task = benches[0].task
    print(f"ML-100K: {task.num_users} users, {task.num_items} items, "
          f"{task.train_pairs.size(1):,} training interactions; {torch.get_num_threads()} "
          f"threads; median of {args.rounds} rounds of "
          f"{args.batches or 'one epoch of'} batches")
    print(format_table(["model", "ms/batch", "x lightgcn", "s/epoch", "top-10 all users (ms)",
                        "parameters"], rows))
    if args.batches:
        print("* estimated: mean batch time x batches per epoch")
    if args.json:
        out = {"dataset": "ml-100k", "users": task.num_users, "items": task.num_items,
               "train_interactions": int(task.train_pairs.size(1)),
               "threads": torch.get_num_threads(), "batches": args.batches,
               "warmup": args.warmup, "rounds": args.rounds, "k": args.k, "models": results,
               "torch_version": torch.__version__,
               "machine": {"host": platform.node(), "platform": platform.platform(),
                           "cpus": torch.get_num_threads()}}
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(out, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
