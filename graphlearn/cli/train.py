"""``graphlearn train | evaluate | recommend | predict``.

* ``graphlearn train CONFIG [key=value ...] [--out DIR] [--resume]`` trains into a
  run directory (default ``runs/<dataset>-<model>-<timestamp>``) and prints the
  selected checkpoint's validation and test metrics. A config with a ``forward:``
  section (forward learning, docs/forward.md) trains with
  :class:`graphlearn.train.forward.ForwardTrainer` into the same run directory.
* ``graphlearn train`` with no CONFIG runs the **main job**: the default
  experiment (:data:`MAIN_CONFIG`, MovieLens-100K fetched if missing), then
  prints the test metrics and the top-10 recommendations of the first
  :data:`MAIN_USERS` users, also written to ``recommendations.csv`` in the run.
* ``graphlearn train --resume --out DIR [key=value ...]`` continues the run in
  DIR from its own ``config.yaml`` (a CONFIG may be given; it must match).
* ``--time-limit DURATION`` (``5400``, ``90m``, ``1h30m``, ``1:30:00``) ends the
  session between epochs when the next one would not end in time, leaving a
  run that ``--resume`` continues; the exit status is then
  :data:`EXIT_TIME_LIMIT` (75, sysexits' "temporary failure, retry"), so a job
  script can loop until the run is complete.
* ``graphlearn train --resume --out DIR --finish`` ends an interrupted run at its
  last completed epoch: the checkpoint selected so far is evaluated on validation
  and test and ``final.json`` records ``finished_early`` (epochs trained and
  planned).
* ``graphlearn evaluate RUN_DIR [--split valid|test] [--bootstrap N]`` re-evaluates a
  run's selected (or last) checkpoint; ``--bootstrap`` adds percentile confidence
  intervals from N resamples of the split's examples
  (:mod:`graphlearn.metrics.bootstrap`; link, kg, ogbl and recommendation runs).
* ``graphlearn recommend RUN_DIR --users IDS|--all [--k 10] [--format csv|json]``
  prints top-K new items per user, by original user and item ids; every item
  the user interacted with in the data (train, validation **and** test) is
  excluded, since those are known.
* ``graphlearn predict RUN_DIR --head NAME|--tail NAME --relation NAME [--k 10]
  [--format table|json] [--include-known]`` lists the top-K tails of
  ``(head, relation, ?)`` or heads of ``(?, relation, tail)`` of a ``kg`` run
  (:func:`graphlearn.tasks.kg.predict`); answers known anywhere in the data
  (train, validation and test triples) are excluded unless ``--include-known``.
* ``graphlearn explain RUN_DIR --head NAME --relation NAME --tail NAME [--k 10]
  [--graph test|train] [--format table|json]`` prints a graph model's (NBFNet's)
  score of one triple and the top-K paths from head to tail that explain it
  (:func:`graphlearn.models.explain.explain`).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import re
import shlex
import sys
from pathlib import Path
from typing import Any

from graphlearn.cli.table import format_table
from graphlearn.errors import GraphlearnError

#: The main job's config, relative to the source tree root.
MAIN_CONFIG = Path("experiments/configs/recommendation/ml-100k/lightgcn_tuned.yaml")
#: How many users the main job recommends for.
MAIN_USERS = 5
#: Exit status of ``graphlearn train`` stopped by ``--time-limit`` (sysexits' EX_TEMPFAIL).
EXIT_TIME_LIMIT = 75


def add_parser(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train", help="train a model from a YAML config (no CONFIG: the default experiment)",
        description="Train a model from a YAML config into a run directory. Without CONFIG, "
                    f"run the default experiment ({MAIN_CONFIG}).")
    train.add_argument("config", nargs="?", metavar="CONFIG",
                       help="YAML config (experiments/configs/<task>/<dataset>/<model>.yaml)")
    train.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                       help="config overrides with dotted keys, e.g. train.lr=0.001")
    train.add_argument("--out", metavar="DIR",
                       help="run directory (default: runs/<dataset>-<model>-<timestamp>)")
    train.add_argument("--resume", action="store_true",
                       help="continue the interrupted run in --out from its last checkpoint")
    train.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="show the progress bar (default: when stderr is a terminal)")
    train.add_argument("--quiet", action="store_true", help="no per-epoch log lines")
    train.add_argument("--threads", type=_positive_int, metavar="N",
                       help="CPU threads for torch (default: torch's choice); on a machine "
                            "shared with other jobs, fewer threads can be much faster")
    train.add_argument("--time-limit", type=_duration, metavar="DURATION",
                       help="end this session between epochs when the next epoch would not "
                            "end within DURATION of the start (seconds, or e.g. 90m, 1h30m, "
                            "1:30:00); the run stays resumable and the exit status is "
                            f"{EXIT_TIME_LIMIT}")
    train.add_argument("--finish", action="store_true",
                       help="with --resume: train no further; end the run at its last "
                            "completed epoch, evaluate the checkpoint selected so far on "
                            "validation and test and write final.json, which records the "
                            "epochs trained and planned (for a run whose budget is spent)")
    train.add_argument("--json", action="store_true", help="print final.json instead of tables")
    train.set_defaults(run=run_train)

    evaluate = commands.add_parser("evaluate", help="evaluate a trained run's checkpoint")
    evaluate.add_argument("run_dir", metavar="RUN_DIR")
    evaluate.add_argument("--split", choices=("valid", "test"), default="test")
    evaluate.add_argument("--checkpoint", choices=("best", "last"), default="best",
                          help="the selected checkpoint (default) or the last one")
    evaluate.add_argument("--root", help="data root overriding the run's data.root")
    evaluate.add_argument("--json", action="store_true", help="print JSON instead of a table")
    evaluate.add_argument("--bootstrap", type=_resamples, default=0, metavar="N",
                          help="also print percentile confidence intervals from N bootstrap "
                               "resamples of the split's examples (link, kg, ogbl and "
                               "recommendation runs; 1000 or more for 95%% intervals)")
    evaluate.add_argument("--confidence", type=_confidence, default=0.95,
                          help="coverage of the --bootstrap intervals (default 0.95)")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the bootstrap draws")
    evaluate.set_defaults(run=run_evaluate)

    recommend = commands.add_parser(
        "recommend", help="top-K new items per user from a trained run",
        description="Top-K items per user by original ids. Items the user interacted with "
                    "anywhere in the data (train, validation and test) are excluded.")
    recommend.add_argument("run_dir", metavar="RUN_DIR")
    who = recommend.add_mutually_exclusive_group(required=True)
    who.add_argument("--users", metavar="IDS",
                     help="comma-separated original user ids (e.g. 196,186)")
    who.add_argument("--all", action="store_true", help="every user")
    recommend.add_argument("--k", type=_positive_int, default=10, help="list length (10)")
    recommend.add_argument("--format", choices=("csv", "json"), default="csv")
    recommend.add_argument("--checkpoint", choices=("best", "last"), default="best")
    recommend.add_argument("--root", help="data root overriding the run's data.root")
    recommend.set_defaults(run=run_recommend)

    predict = commands.add_parser(
        "predict", help="top-K answers of a KG query (h, r, ?) or (?, r, t) from a kg run",
        description="Top-K tails of (HEAD, RELATION, ?) with --head, or heads of "
                    "(?, RELATION, TAIL) with --tail, by entity name. Answers known anywhere "
                    "in the data (train, validation and test triples) are excluded unless "
                    "--include-known.")
    predict.add_argument("run_dir", metavar="RUN_DIR")
    side = predict.add_mutually_exclusive_group(required=True)
    side.add_argument("--head", metavar="NAME", help="the known head: predict tails")
    side.add_argument("--tail", metavar="NAME", help="the known tail: predict heads")
    predict.add_argument("--relation", metavar="NAME", required=True,
                         help="the query relation (NAME^-1 for its inverse)")
    predict.add_argument("--k", type=_positive_int, default=10, help="list length (10)")
    predict.add_argument("--format", choices=("table", "json"), default="table")
    predict.add_argument("--include-known", action="store_true",
                         help="keep answers already known in the data")
    predict.add_argument("--graph", choices=("test", "train"), default="test",
                         help="inductive benchmarks: ask on the inference graph (test, "
                              "default) or the training graph (train)")
    predict.add_argument("--checkpoint", choices=("best", "last"), default="best")
    predict.add_argument("--root", help="data root overriding the run's data.root")
    predict.set_defaults(run=run_predict)

    explain = commands.add_parser(
        "explain", help="the paths that explain a graph model's score of a KG triple",
        description="The model's score of (HEAD, RELATION, TAIL) and the top-K paths from "
                    "HEAD to TAIL by summed edge importance (the gradient of the score with "
                    "respect to each edge's message at each layer), for a kg run of a graph "
                    "model such as NBFNet. A triple stated in the graph is explained from "
                    "the rest of the graph unless --keep-query-edge.")
    explain.add_argument("run_dir", metavar="RUN_DIR")
    explain.add_argument("--head", metavar="NAME", required=True, help="the head entity")
    explain.add_argument("--relation", metavar="NAME", required=True,
                         help="the relation (NAME^-1 for its inverse)")
    explain.add_argument("--tail", metavar="NAME", required=True, help="the tail entity")
    explain.add_argument("--k", type=_positive_int, default=10, help="paths to list (10)")
    explain.add_argument("--rank", choices=("sum", "mean"), default="sum",
                         help="rank paths by summed edge importance (sum, the paper's) or by "
                              "its mean over the path's edges (mean, as NBFNet-PyG's "
                              "visualisation)")
    explain.add_argument("--graph", choices=("test", "train"), default="test",
                         help="inductive benchmarks: the inference graph (test, default) or "
                              "the training graph; a transductive KG has one graph")
    explain.add_argument("--keep-query-edge", action="store_true",
                         help="keep the edges stating the triple itself in the graph")
    explain.add_argument("--format", choices=("table", "json"), default="table")
    explain.add_argument("--checkpoint", choices=("best", "last"), default="best")
    explain.add_argument("--root", help="data root overriding the run's data.root")
    explain.set_defaults(run=run_explain)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


#: ``1h30m``-style durations: hours, minutes, seconds, each optional, in this order.
_UNIT_DURATION = re.compile(r"(?:(\d+(?:\.\d*)?)h)?(?:(\d+(?:\.\d*)?)m)?(?:(\d+(?:\.\d*)?)s)?")


def _duration(text: str) -> float:
    """Seconds of ``5400``, ``90m``, ``1h30m``, ``2h``, ``45s`` or ``1:30:00`` (more than 0)."""
    spec = text.strip().lower()
    error = argparse.ArgumentTypeError(f"expected a duration such as 5400 (seconds), 90m, "
                                       f"1h30m or 1:30:00, got {text!r}")
    units = _UNIT_DURATION.fullmatch(spec)
    try:
        if units is not None and any(units.groups()):
            seconds = sum(float(n or 0) * f for n, f in zip(units.groups(), (3600, 60, 1)))
        elif ":" in spec:  # SLURM's [[hours:]minutes:]seconds
            parts = [float(part) for part in spec.split(":")]
            if len(parts) > 3 or any(part < 0 for part in parts):
                raise error
            seconds = 0.0
            for part in parts:
                seconds = seconds * 60 + part
        else:
            seconds = float(spec)
    except ValueError:
        raise error from None
    if not 0 < seconds < math.inf:
        raise error
    return seconds


def main_config_path() -> Path:
    """The main job's config in the source tree."""
    path = Path(__file__).resolve().parents[2] / MAIN_CONFIG
    if not path.is_file():
        raise GraphlearnError(f"the default experiment's config {MAIN_CONFIG} is not here "
                              f"({path}); run from a source checkout or pass a CONFIG")
    return path


# ----------------------------------------------------------------------------------------
# train
# ----------------------------------------------------------------------------------------


def run_train(args: argparse.Namespace) -> int:
    from graphlearn.config import load_config
    from graphlearn.train import train

    config, overrides = args.config, list(args.overrides)
    if config is not None and "=" in config and not Path(config).exists():
        config, overrides = None, [config, *overrides]  # `graphlearn train key=value`
    main_job = config is None and not args.resume
    if args.finish and not args.resume:
        raise GraphlearnError("--finish ends an interrupted run: use it with --resume --out "
                              "RUN_DIR")
    if args.finish and args.time_limit:
        raise GraphlearnError("--finish trains no further epochs: drop --time-limit")
    if config is None:
        if args.resume:
            if args.out is None:
                raise GraphlearnError("--resume needs --out RUN_DIR (the run to continue)")
            config = Path(args.out) / "config.yaml"
            if not config.is_file():
                raise GraphlearnError(f"{args.out}: not a run directory (no config.yaml)")
        else:
            config = main_config_path()
    cfg = load_config(config, overrides)
    from graphlearn.allocator import reuse_freed_memory

    reuse_freed_memory()  # big tensors reuse mapped pages step after step (GRAPHLEARN_MALLOC)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    log = (lambda _: None) if args.quiet else None
    command = ["graphlearn", "train", *([args.config] if args.config else []), *args.overrides,
               *(["--out", args.out] if args.out else []), *(["--resume"] if args.resume else []),
               *(["--threads", str(args.threads)] if args.threads else []),
               *(["--time-limit", str(args.time_limit)] if args.time_limit else []),
               *(["--finish"] if args.finish else [])]
    run, final = train(cfg, out=args.out, resume=args.resume, progress=args.progress, log=log,
                       command=command, time_limit_s=args.time_limit, finish=args.finish)
    from graphlearn.train.utils import DistInfo

    if final is None:  # stopped by --time-limit (the trainer said so on stderr)
        if DistInfo.from_env().is_main:
            print(f"run directory: {run.path} (incomplete; continue with: graphlearn train "
                  f"--resume --out {shlex.quote(str(run.path))})")
        return EXIT_TIME_LIMIT
    if not DistInfo.from_env().is_main:  # under torchrun, rank 0 alone reports and writes
        return 0
    if args.json:
        print(json.dumps(final, indent=2))
    else:
        print(f"run directory: {run.path}")
        print(f"selected epoch {final['selected_epoch']} of {final['epochs_run']} by "
              f"{final['selected_by']} {final['metric']}; "
              f"{final['seconds_per_epoch']:.2f} s/epoch, {final['wall_time_s']:.1f} s in all")
        early = final.get("finished_early")
        if early:
            print(f"finished early (--finish) after epoch {early['after_epoch']} of the "
                  f"{early['epochs_planned']} planned")
        print(_metrics_table({"valid": final.get("valid"), "test": final.get("test")}))
    if main_job:
        _main_job_recommendations(run.path, quiet=args.json)
    return 0


def _main_job_recommendations(run_dir: Path, quiet: bool = False) -> None:
    from graphlearn.train import load_run

    _, task, model = load_run(run_dir)
    names = list(task.data.user_names[:MAIN_USERS])
    rows = _recommend_rows(task, model, names, 10)
    path = Path(run_dir) / "recommendations.csv"
    path.write_text(_csv(rows), encoding="utf-8")
    if not quiet:
        print(f"\ntop-10 new items for the first {len(names)} users "
              f"(original ids; known items excluded) -> {path}")
        by_user: dict[str, list[str]] = {}
        for row in rows:
            by_user.setdefault(row["user"], []).append(row["item"])
        print(format_table(["user", "recommended items, best first"],
                           [[u, " ".join(items)] for u, items in by_user.items()]))


def _metrics_table(results: dict[str, dict[str, float] | None]) -> str:
    splits = [s for s, m in results.items() if m]
    if not splits:
        return "(no metrics)"
    names = list(results[splits[0]])
    rows = [[name] + [f"{results[s][name]:.4f}" for s in splits] for name in names]
    return format_table(["metric", *splits], rows)


# ----------------------------------------------------------------------------------------
# evaluate, recommend
# ----------------------------------------------------------------------------------------


def run_evaluate(args: argparse.Namespace) -> int:
    from graphlearn.train import load_run

    run, task, model = load_run(args.run_dir, checkpoint=args.checkpoint, root=args.root)
    if not task.has_split(args.split):
        raise GraphlearnError(f"{args.run_dir}: the run's data has no {args.split} split")
    if not args.bootstrap:
        metrics = task.evaluate(model, args.split)
        if args.json:
            print(json.dumps({"run_dir": str(run.path), "checkpoint": args.checkpoint,
                              "split": args.split, "metrics": metrics}, indent=2))
        else:
            print(_metrics_table({args.split: metrics}))
        return 0

    from tqdm import tqdm

    from graphlearn.metrics.bootstrap import bootstrap_sample

    sample = task.evaluation_sample(model, args.split)
    with tqdm(total=args.bootstrap, desc="bootstrap", unit="draw", file=sys.stderr,
              disable=args.json or not sys.stderr.isatty()) as bar:
        result = bootstrap_sample(sample, resamples=args.bootstrap,
                                  confidence=args.confidence, seed=args.seed,
                                  progress=bar.update)
    if args.json:
        print(json.dumps({"run_dir": str(run.path), "checkpoint": args.checkpoint,
                          "split": args.split, "metrics": result.values,
                          "bootstrap": {**result.to_dict(), "unit": sample.unit,
                                        "units": sample.num_units,
                                        "no_interval": sample.no_interval}}, indent=2))
        return 0
    percent = f"{100 * args.confidence:g}%"
    rows = []
    for name, value in result.values.items():
        bounds = result.intervals[name]
        rows.append([name, f"{value:.4f}", *(("n/a", "n/a") if bounds is None
                                              else (f"{bounds[0]:.4f}", f"{bounds[1]:.4f}"))])
    print(format_table(["metric", args.split, f"{percent} low", f"{percent} high"], rows))
    print(f"{percent} percentile intervals from {args.bootstrap} bootstrap resamples of the "
          f"{sample.num_units} units (unit: {sample.unit}; seed {args.seed}); they show the "
          "test-sample noise of this one model, not the spread over training seeds or splits")
    for reason in dict.fromkeys(sample.no_interval.values()):
        names = ", ".join(n for n, r in sample.no_interval.items() if r == reason)
        print(f"no interval for {names}: {reason}")
    return 0


def _resamples(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value != 0 and value < 2:
        raise argparse.ArgumentTypeError(f"--bootstrap takes a number of resamples >= 2 "
                                         f"(or 0: no intervals), got {text!r}")
    return value


def _confidence(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"--confidence takes a number in (0, 1), e.g. 0.95, "
                                         f"got {text!r}")
    return value


def _recommend_rows(task: Any, model: Any, names: list[str], k: int) -> list[dict[str, Any]]:
    if not hasattr(task, "recommend"):
        raise GraphlearnError(f"task {task.name!r} does not recommend items")
    users = task.user_ids(names)
    items, scores = task.recommend(model, users, k)
    item_names = task.data.item_names
    rows = []
    for name, user_items, user_scores in zip(names, items.tolist(), scores.tolist()):
        for rank, (item, score) in enumerate(zip(user_items, user_scores), start=1):
            if item >= 0:
                rows.append({"user": name, "rank": rank, "item": item_names[item],
                             "score": round(float(score), 6)})
    return rows


def _csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["user", "rank", "item", "score"],
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def run_recommend(args: argparse.Namespace) -> int:
    from graphlearn.train import load_run

    _, task, model = load_run(args.run_dir, checkpoint=args.checkpoint, root=args.root)
    if args.all:
        names = list(task.data.user_names)
    else:
        names = [u.strip() for u in args.users.split(",") if u.strip()]
        if not names:
            raise GraphlearnError("--users: no user ids given")
    rows = _recommend_rows(task, model, names, args.k)
    if args.format == "csv":
        sys.stdout.write(_csv(rows))
    else:
        grouped: dict[str, dict[str, Any]] = {}
        for name in names:
            grouped.setdefault(name, {"user": name, "items": [], "scores": []})
        for row in rows:
            grouped[row["user"]]["items"].append(row["item"])
            grouped[row["user"]]["scores"].append(row["score"])
        print(json.dumps(list(grouped.values()), indent=2))
    return 0


# ----------------------------------------------------------------------------------------
# predict
# ----------------------------------------------------------------------------------------


def run_predict(args: argparse.Namespace) -> int:
    from graphlearn.train import load_run
    from graphlearn.train.rundir import RunDir

    task_name = RunDir.open(args.run_dir).config().task
    if task_name != "kg":
        raise GraphlearnError(f"{args.run_dir}: predict needs a run of task 'kg' "
                              f"(this run's task is {task_name!r})")
    _, task, model = load_run(args.run_dir, checkpoint=args.checkpoint, root=args.root)
    try:
        answers = task.predict(model, relation=args.relation, head=args.head, tail=args.tail,
                               k=args.k, exclude_known=not args.include_known,
                               graph=args.graph)
    except KeyError as error:
        raise GraphlearnError(str(error.args[0])) from None
    if args.format == "json":
        query = {"head": args.head, "relation": args.relation, "tail": args.tail}
        print(json.dumps({"query": query, "predict": "tail" if args.head is not None else "head",
                          "exclude_known": not args.include_known,
                          "answers": [{"rank": rank, "entity": name, "score": round(score, 6)}
                                      for rank, (name, score) in enumerate(answers, start=1)]},
                         indent=2))
    else:
        print(format_table(["rank", "entity", "score"],
                           [[str(rank), name, f"{score:.4f}"]
                            for rank, (name, score) in enumerate(answers, start=1)]))
    return 0


# ----------------------------------------------------------------------------------------
# explain
# ----------------------------------------------------------------------------------------


def run_explain(args: argparse.Namespace) -> int:
    from graphlearn.data.kg import entity_id, entity_name, relation_id, relation_name
    from graphlearn.models.explain import explain, path_text
    from graphlearn.train import load_run
    from graphlearn.train.rundir import RunDir

    cfg = RunDir.open(args.run_dir).config()
    if cfg.task != "kg":
        raise GraphlearnError(f"{args.run_dir}: explain needs a run of task 'kg' "
                              f"(this run's task is {cfg.task!r})")
    _, task, model = load_run(args.run_dir, checkpoint=args.checkpoint, root=args.root)
    if not getattr(model, "uses_graph", False) or not hasattr(model, "bellman_ford"):
        raise GraphlearnError(f"{args.run_dir}: explain needs a graph model such as nbfnet "
                              f"(this run's model is {cfg.model.name!r}, which reads no paths)")
    data = task.test_data if args.graph == "test" else task.data
    try:
        head, tail = entity_id(data, args.head), entity_id(data, args.tail)
        relation = relation_id(data, args.relation)
    except KeyError as error:
        raise GraphlearnError(str(error.args[0])) from None
    try:
        result = explain(model, data, head, relation, tail, k=args.k, rank=args.rank,
                         remove_query_edge=not args.keep_query_edge)
    except ValueError as error:
        raise GraphlearnError(f"{args.run_dir}: {error}") from None
    if args.format == "json":
        print(json.dumps({
            "query": {"head": args.head, "relation": args.relation, "tail": args.tail},
            "graph": data.name, "score": round(result.score, 6),
            "removed_edges": result.removed_edges,
            "paths": [{"rank": rank, "importance": round(path.score, 6),
                       "path": path_text(path.edges, data),
                       "edges": [{"head": entity_name(data, s), "relation": relation_name(data, r),
                                  "tail": entity_name(data, t), "layer": layer}
                                 for (s, r, t), layer in zip(path.edges, path.layers)]}
                      for rank, path in enumerate(result.paths, start=1)]}, indent=2))
        return 0
    query = path_text([(head, relation, tail)], data)
    print(f"query: {query}  (graph {data.name})")
    print(f"score: {result.score:.4f}")
    if result.removed_edges:
        print(f"explained without the {result.removed_edges} edges stating the triple "
              f"(--keep-query-edge keeps them)")
    if not result.paths:
        print(f"no path from {args.head} to {args.tail} within the model's "
              f"{len(model.layers)} layers")
        return 0
    noun = "path" if len(result.paths) == 1 else "paths"
    how = "summed" if args.rank == "sum" else "mean"
    print(f"top {len(result.paths)} {noun} by {how} edge importance (d score / d edge):")
    print(format_table(["rank", "importance", "layers", "path"],
                       [[str(rank), f"{path.score:.4g}", ",".join(map(str, path.layers)),
                         path_text(path.edges, data)]
                        for rank, path in enumerate(result.paths, start=1)]))
    return 0
