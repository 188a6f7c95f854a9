"""``graphlearn data list | info | fetch``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from graphlearn.cli.table import format_table


def add_parser(commands: argparse._SubParsersAction) -> None:
    data = commands.add_parser("data", help="list, inspect and fetch datasets")
    sub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    listing = sub.add_parser("list", help="print the registered datasets")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(run=run_list)

    info = sub.add_parser("info", help="load a dataset and print its statistics")
    info.add_argument("name", help="dataset name (see `graphlearn data list`), or a path "
                                   "with --format")
    info.add_argument("--format", help="read NAME as a path in this format (kg_triples, grail, "
                                       "movielens, planetoid, ogbl, edge_list, interaction_table)")
    info.add_argument("--root", help="data root (default: $GRAPHLEARN_DATA or the user cache)")
    info.add_argument("--no-download", action="store_true", help="fail instead of fetching")
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.set_defaults(run=run_info)

    fetch = sub.add_parser("fetch", help="download a dataset and verify its checksums")
    fetch.add_argument("name", help="dataset name (see `graphlearn data list`)")
    fetch.add_argument("--root", help="data root (default: $GRAPHLEARN_DATA or the user cache)")
    fetch.set_defaults(run=run_fetch)


def run_list(args: argparse.Namespace) -> int:
    from graphlearn.data.registry import list_datasets

    cards = list_datasets()
    if args.json:
        print(json.dumps([{"name": c.name, "title": c.title, "task": c.task, "path": c.path,
                           "licence": c.licence, "statistics": c.statistics} for c in cards],
                         indent=2))
        return 0
    rows = [[c.name, c.task, c.title, _short_stats(c.statistics)] for c in cards]
    print(format_table(["name", "task", "title", "statistics (published)"], rows))
    return 0


def run_info(args: argparse.Namespace) -> int:
    from graphlearn.data.registry import FORMATS, dataset_stats, get_card, load_dataset, load_path

    if args.format:
        stats = FORMATS.get(args.format).stats_fn()(load_path(args.name, args.format))
        if args.json:
            print(json.dumps({"path": args.name, "statistics": stats}, indent=2))
        else:
            print(f"{args.name} ({args.format})")
            print(format_table(["statistic", "value"], list(_flatten(stats))))
        return 0
    card = get_card(args.name)
    obj = load_dataset(card.name, root=args.root, download=not args.no_download)
    stats = dataset_stats(card.name, obj)
    if args.json:
        print(json.dumps({"name": card.name, "folder": str(card.folder(args.root)),
                          "statistics": stats}, indent=2))
        return 0
    print(f"{card.title} ({card.name}) — {card.folder(args.root)}")
    print(format_table(["statistic", "value"], list(_flatten(stats))))
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    from graphlearn.data.registry import ensure_files, get_card

    card = get_card(args.name)
    folder = ensure_files(card, root=args.root)
    print(f"{card.name}: files present in {folder}")
    return 0


def _flatten(stats: dict[str, Any], prefix: str = ""):
    for key, value in stats.items():
        if isinstance(value, dict):
            yield from _flatten(value, prefix=f"{prefix}{key}.")
        else:
            yield [f"{prefix}{key}", _fmt(value)]


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _short_stats(stats: dict[str, Any]) -> str:
    return ", ".join(f"{k} {_fmt(v)}" for k, v in stats.items() if not isinstance(v, dict))
