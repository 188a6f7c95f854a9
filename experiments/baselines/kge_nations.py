"""Train a KG embedding model (DistMult, ComplEx, RotatE) and report filtered ranking.

Baseline 2 of issue 3, before the training pipeline exists. Transductive KG
completion under the protocol of DESIGN.md §2: inverse relations ``r + R``,
filtered ranking against all entities (filter = train + valid + test), both
directions averaged, pessimistic ties, MR / MRR / Hits@1/3/10. The epoch is
selected on validation MRR; test is evaluated once, for that epoch.

Two training regimes:

* ``--training 1vsall``: every query ``(h, r, ?)`` and ``(t, r + R, ?)`` of a
  batch is scored against all entities, softmax cross-entropy on the answer
  (Lacroix et al. 2018), plus the model's N3 penalty when ``--n3 > 0``.
* ``--training negative``: strict negatives (never a known training answer),
  half the batch corrupting tails and half heads, BCE with self-adversarial
  weights at ``--temperature`` (NBFNet / RotatE).

Examples (from the repository root)::

    python experiments/baselines/kge_nations.py --model complex
    python experiments/baselines/kge_nations.py --model rotate --training negative
    python experiments/baselines/kge_nations.py --dataset grail/fb237_v1 --model distmult
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import (
    DEFAULT_DATA_ROOT,
    RESULTS,
    command_line,
    environment,
    seed_everything,
    write_json,
)

from graphlearn.data.kg import kg_stats, load_kg
from graphlearn.metrics.ranking import FilterIndex, evaluate_kg
from graphlearn.models.kge import ComplEx, DistMult, KGEModel, RotatE
from graphlearn.models.losses import self_adversarial_bce
from graphlearn.registry import Registry
from graphlearn.tasks.negatives import sample_kg_negatives, training_filter_index

KGE_MODELS: Registry[type[KGEModel]] = Registry("KGE model")
KGE_MODELS.register("distmult")(DistMult)
KGE_MODELS.register("complex")(ComplEx)
KGE_MODELS.register("rotate")(RotatE)

METRICS = ("mr", "mrr", "hits@1", "hits@3", "hits@10")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="complex", help=f"one of {KGE_MODELS.names()}")
    p.add_argument(
        "--dataset", default="nations", help="folder under DATA_ROOT/kg (e.g. grail/fb237_v1)"
    )
    p.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    p.add_argument("--dim", type=int, default=200, help="(complex) embedding dimension")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--optimizer", choices=("adam", "adagrad"), default="adagrad")
    p.add_argument("--batch-size", type=int, default=128, help="triples per batch")
    p.add_argument("--training", choices=("1vsall", "negative"), default="1vsall")
    p.add_argument("--num-negative", type=int, default=32)
    p.add_argument("--temperature", type=float, default=1.0, help="self-adversarial T (0: off)")
    p.add_argument("--n3", type=float, default=0.0, help="N3 weight (DistMult, ComplEx)")
    p.add_argument("--init-std", type=float, default=1e-3, help="init std (DistMult, ComplEx)")
    p.add_argument("--gamma", type=float, default=9.0, help="RotatE margin")
    p.add_argument("--eval-every", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=None, help="result JSON (default: under results)")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def build_model(args: argparse.Namespace, num_entities: int, num_relations: int) -> KGEModel:
    cls = KGE_MODELS.get(args.model)
    if cls is RotatE:
        return RotatE(num_entities, num_relations, args.dim, gamma=args.gamma)
    return cls(num_entities, num_relations, args.dim, init_std=args.init_std, n3_weight=args.n3)


def train_epoch(
    model: KGEModel,
    optimizer: torch.optim.Optimizer,
    triples: torch.Tensor,
    train_index: FilterIndex,
    args: argparse.Namespace,
    generator: torch.Generator,
) -> float:
    model.train()
    num_base = train_index.num_relations
    order = torch.randperm(triples.size(0), generator=generator)
    total, count = 0.0, 0
    for start in range(0, order.numel(), args.batch_size):
        batch = triples[order[start : start + args.batch_size]]  # (b, 3)
        h, r, t = batch.t()
        if args.training == "1vsall":
            # both directions: (h, r, ?) -> t and (t, r + R, ?) -> h
            head, relation = torch.cat([h, t]), torch.cat([r, r + num_base])
            answer = torch.cat([t, h])
            loss = F.cross_entropy(model.score_all_tails(head, relation), answer)
            loss = loss + model.regularization(head, relation, answer)
        else:
            neg = sample_kg_negatives(batch, train_index, args.num_negative, generator)
            pos_score = model(neg.head, neg.relation, neg.tail)  # (b,)
            neg_score = model(
                neg.head.unsqueeze(1), neg.relation.unsqueeze(1), neg.negative
            )  # (b, k)
            loss = self_adversarial_bce(pos_score, neg_score, args.temperature)
            loss = loss + model.regularization(neg.head, neg.relation, neg.tail)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * batch.size(0)
        count += batch.size(0)
    return total / max(count, 1)


def evaluate(model: KGEModel, triples: torch.Tensor, index: FilterIndex) -> dict[str, float]:
    model.eval()
    return evaluate_kg(model.score_all_tails, triples, index, metrics=METRICS, batch_size=256)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    generator = seed_everything(args.seed)
    folder = args.data_root / "kg" / args.dataset
    data = load_kg(folder, name=args.dataset.replace("/", "_"))
    num_entities, num_relations = int(data.num_nodes), int(data.num_relations)
    eval_index = FilterIndex.from_data(data)  # train + valid + test, both directions
    train_index = training_filter_index(data)  # strict training negatives: train only

    model = build_model(args, num_entities, num_relations)
    optim_cls = torch.optim.Adagrad if args.optimizer == "adagrad" else torch.optim.Adam
    optimizer = optim_cls(model.parameters(), lr=args.lr)

    start = time.perf_counter()
    best: tuple[float, int, dict, dict[str, float]] | None = None
    history = []
    bar = tqdm(
        range(1, args.epochs + 1), desc=f"{args.model} {data.name}", disable=args.no_progress
    )
    for epoch in bar:
        loss = train_epoch(model, optimizer, data.train_triples, train_index, args, generator)
        entry: dict = {"epoch": epoch, "loss": loss}
        if epoch % args.eval_every == 0 or epoch == args.epochs:
            valid = evaluate(model, data.valid_triples, eval_index)
            entry["valid"] = {k: valid[k] for k in METRICS}
            if best is None or valid["mrr"] > best[0]:
                best = (valid["mrr"], epoch, copy.deepcopy(model.state_dict()), entry["valid"])
            bar.set_postfix(loss=f"{loss:.4f}", val_mrr=f"{valid['mrr']:.4f}", best=best[1])
        history.append(entry)
    train_time = time.perf_counter() - start

    assert best is not None
    model.load_state_dict(best[2])
    test = evaluate(model, data.test_triples, eval_index)
    wall = time.perf_counter() - start
    result = {
        "command": command_line(__file__, argv),
        "task": "kg_completion",
        "dataset": data.name,
        "dataset_stats": kg_stats(data),
        "model": args.model,
        "seed": args.seed,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "protocol": "filtered, both directions averaged, pessimistic ties, selection on valid MRR",
        "selected_epoch": best[1],
        "valid": best[3],
        "test": {k: test[k] for k in test if not k.startswith(("tail_", "head_"))},
        "test_by_direction": {k: test[k] for k in test if k.startswith(("tail_", "head_"))},
        "train_time_s": round(train_time, 2),
        "wall_time_s": round(wall, 2),
        "environment": environment(),
        "history": history,
    }
    out = args.out or RESULTS / f"kge_{data.name}_{args.model}_{args.training}_seed{args.seed}.json"
    write_json(out, result)
    line = "  ".join(f"{k} {test[k]:.4f}" for k in METRICS)
    print(f"{data.name} {args.model}: epoch {best[1]} (valid MRR {best[0]:.4f}); test {line}")
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
