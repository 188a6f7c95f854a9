"""Gather the ForwardGNN grid tables (issue 7) into one matrix per task, dataset and split.

    python experiments/forward/collect.py                   # experiments/results/forward
    python experiments/forward/collect.py --results DIR --out DIR

Reads every ``*_grid.json`` that ``experiments/forward/grid.py`` wrote under
``--results`` (any depth) and writes ``OUT/summary.{md,json}``: per (task,
dataset, split) a table with a row per variant and a column per backbone and
depth, each cell the test metric's mean ± sample std over seeds (selection on
validation, as in the grid), ``—`` where the cell was not run, the best mean
of each column in bold. Only grids run with the configs' own settings count;
grids with extra overrides (``--set``, e.g. the ``class_members: none`` and
weight-decay ablations) are listed under the tables, not mixed into them. The
JSON also says which cells of the full grid (every backbone of the grid × 2
and 4 layers × every variant) are still missing. Nothing is trained or
recomputed: the numbers are the grid JSONs' own.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grid import BACKBONES, DATASETS, METRICS, REPO, VARIANTS

#: the depths of experiment 1 / 2 of issue 7
DEPTHS = (2, 4)
#: the backbones the issue asks for; others (gatv2) appear when run, never as missing
REQUIRED_BACKBONES = ("gcn", "sage", "gat")
SPLITS = {"link": ("random",), "node": ("public", "random")}


class GridFileError(ValueError):
    """A grid JSON that cannot be read or contradicts another."""


def _row_key(name: str, path: Path) -> tuple[str, int, str]:
    """``<backbone>-L<depth>-<variant>`` -> (backbone, depth, variant)."""
    parts = name.split("-", 2)
    if len(parts) != 3 or not parts[1].startswith("L") or not parts[1][1:].isdigit():
        raise GridFileError(f"{path}: row {name!r} is not <backbone>-L<depth>-<variant>")
    return parts[0], int(parts[1][1:]), parts[2]


def load_grids(results: Path) -> tuple[dict, list[dict]]:
    """``cells[(task, dataset, split)][(backbone, depth, variant)]`` = the row's test
    summary with its source file, and the grids with extra overrides (ablations)."""
    cells: dict[tuple[str, str, str], dict[tuple[str, int, str], dict]] = {}
    ablations = []
    for path in sorted(results.rglob("*_grid.json")):
        try:
            payload = json.loads(path.read_text())
            task, dataset, split = payload["task"], payload["dataset"], payload["split"]
            rows = payload["rows"]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise GridFileError(f"{path}: not a grid JSON of experiments/forward/grid.py "
                                f"({type(err).__name__}: {err})") from err
        relative = path.relative_to(results).as_posix()
        if payload.get("extra_overrides"):
            ablations.append({"file": relative, "task": task, "dataset": dataset,
                              "split": split, "overrides": payload["extra_overrides"],
                              "rows": sorted(rows)})
            continue
        metric = METRICS[task][0]
        table = cells.setdefault((task, dataset, split), {})
        for name, row in rows.items():
            key = _row_key(name, path)
            summary = row["test"][metric]
            cell = {"mean": summary["mean"], "std": summary["std"],
                    "seeds": len(summary["values"]), "file": relative}
            known = table.get(key)
            if known is not None and (known["mean"], known["std"]) != (cell["mean"], cell["std"]):
                raise GridFileError(
                    f"{path}: row {name} of {task} {dataset} ({split}) is also in "
                    f"{known['file']} with another result ({known['mean']:.4f} against "
                    f"{cell['mean']:.4f}); keep one of the two files")
            table[key] = known or cell
    return cells, ablations


def _columns(table: dict) -> list[tuple[str, int]]:
    present = {(b, d) for b, d, _ in table}
    order = {name: i for i, name in enumerate(BACKBONES)}
    return sorted(present, key=lambda c: (c[1], order.get(c[0], len(order)), c[0]))


def render(task: str, table: dict) -> str:
    """One markdown table: a row per variant, a column per (backbone, depth)."""
    columns = _columns(table)
    best = {c: max(v["mean"] for (b, d, _), v in table.items() if (b, d) == c)
            for c in columns}
    lines = ["| variant | " + " | ".join(f"{b.upper()} L{d}" for b, d in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for variant in VARIANTS[task]:
        cells = []
        for backbone, depth in columns:
            cell = table.get((backbone, depth, variant))
            if cell is None:
                cells.append("—")
                continue
            text = f"{cell['mean']:.3f} ± {cell['std']:.3f}"
            if cell["seeds"] != 5:
                text += f" ({cell['seeds']} seeds)"
            cells.append(f"**{text}**" if cell["mean"] == best[(backbone, depth)] else text)
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def missing_cells(cells: dict) -> list[str]:
    """The (task, dataset, split, backbone, depth) cells of the full grid not yet run
    (any of their variants absent)."""
    missing = []
    for task, splits in SPLITS.items():
        for dataset, split, backbone, depth in itertools.product(
                sorted(DATASETS), splits, REQUIRED_BACKBONES, DEPTHS):
            table = cells.get((task, dataset, split), {})
            absent = [v for v in VARIANTS[task] if (backbone, depth, v) not in table]
            if absent:
                missing.append(f"{task} {dataset} {split} {backbone} L{depth}"
                               + ("" if len(absent) == len(VARIANTS[task])
                                  else f" ({', '.join(absent)})"))
    return missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default = REPO / "experiments" / "results" / "forward"
    parser.add_argument("--results", type=Path, default=default,
                        help="where the grid JSONs are (searched at any depth)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where summary.{md,json} go (default: --results)")
    args = parser.parse_args(argv)
    if not args.results.is_dir():
        parser.error(f"--results {args.results}: no such directory")
    try:
        cells, ablations = load_grids(args.results)
    except GridFileError as err:
        print(f"collect.py: {err}", file=sys.stderr)
        return 1
    if not cells:
        parser.error(f"--results {args.results}: no *_grid.json with the configs' own settings")
    sections = []
    for task, dataset, split in sorted(cells):
        what = "Link prediction" if task == "link" else "Node classification"
        metric = {"auroc": "AUROC"}.get(METRICS[task][0], METRICS[task][0])
        name = {"cora": "Cora", "citeseer": "CiteSeer"}.get(dataset, dataset)
        title = f"## {what}, {name}, {split} split: test {metric}"
        sections.append(f"{title}\n\n{render(task, cells[(task, dataset, split)])}")
    missing = missing_cells(cells)
    lines = ["# ForwardGNN grid: every cell run so far (issue 7)", "",
             ("Written by `python experiments/forward/collect.py` from the grid JSONs "
              "beside it; mean ± sample std over seeds, selection on validation; `—`: "
              "not run yet; bold: the best mean of its column.")]
    for section in sections:
        lines += ["", section]
    if ablations:
        lines += ["", "## Grids with extra overrides (not in the tables above)", ""]
        lines += [f"- `{a['file']}`: {a['task']} {a['dataset']} {a['split']}, "
                  f"`{' '.join(a['overrides'])}`, rows {', '.join(a['rows'])}"
                  for a in ablations]
    lines += ["", "## Not run yet", ""]
    lines += [f"- {m}" for m in missing] or ["- nothing: the grid is complete"]
    out = args.out or args.results
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    payload = {
        "tables": {f"{t}/{d}/{s}": {f"{b}-L{n}-{v}": cell for (b, n, v), cell in
                                    sorted(table.items())}
                   for (t, d, s), table in sorted(cells.items())},
        "ablations": ablations, "missing": missing,
    }
    (out / "summary.json").write_text(json.dumps(payload, indent=2) + "\n")
    print("\n".join(lines))
    print(f"\nwrote {out / 'summary.md'}, {out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
