"""A user's own graph as a delimited edge list: ``source<sep>target[<sep>weight ...]``.

Node names are arbitrary strings (``"alice"``, ``"P12345"``, ``"42"``) mapped to
contiguous ids in order of first appearance (source before target within a
line); ``data.node_names[i]`` is the name of node ``i``, so ids map back to the
file's names exactly.

Reading rules:

* delimiter: ``None`` picks by extension (after a ``.gz``): ``.csv`` comma,
  ``.tsv``/``.txt`` tab, anything else runs of whitespace; ``"whitespace"`` forces
  the latter; any other string is used as given. Fields are stripped of
  surrounding spaces.
* comments: lines starting with ``comment`` (default ``#``) and blank lines are
  skipped.
* header: ``True``/``False``, or ``"auto"``: the first data line is a header when
  ``weight_column`` is a column name, when the weight field of that line is not a
  number, or when both endpoint fields are common header words (``source,target``,
  ``src,dst``, ``from,to``, ``head,tail``, ``node1,node2``, ``u,v`` is *not* one).
* every line must have as many fields as the first data line; columns after the
  second are ignored unless one is the weight column.

``directed=False`` (default) stores each line's edge in both directions:
``edge_index`` holds the ``E`` file edges in file order, then the reverses of the
non-self-loop ones; ``edge_weight`` follows the same order. Duplicate lines are
kept (``torch_geometric.utils.coalesce`` merges them; :func:`random_link_split`
deduplicates on its own).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch_geometric.data import Data

from graphlearn.data._io import open_text, parse_float
from graphlearn.errors import ConfigError, DataFormatError, DatasetNotFoundError

#: Header words recognised by ``header="auto"`` (case-insensitive, both endpoints).
HEADER_WORDS: frozenset[str] = frozenset(
    {
        "source",
        "target",
        "src",
        "dst",
        "from",
        "to",
        "head",
        "tail",
        "node1",
        "node2",
        "node_1",
        "node_2",
        "source_id",
        "target_id",
        "src_id",
        "dst_id",
        "source_node",
        "target_node",
        "from_id",
        "to_id",
    }
)

_WHITESPACE = "whitespace"


def _resolve_delimiter(path: Path, delimiter: str | None) -> str | None:
    """The separator to split on (``None`` = runs of whitespace)."""
    if delimiter == _WHITESPACE:
        return None
    if delimiter is not None:
        if delimiter == "":
            raise ConfigError("delimiter must not be empty (use 'whitespace' for runs of spaces)")
        return delimiter
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    if last == ".csv":
        return ","
    if last in (".tsv", ".txt"):
        return "\t"
    return None


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def load_edge_list(
    path: str | os.PathLike,
    delimiter: str | None = None,
    header: bool | str = "auto",
    directed: bool = False,
    weight_column: int | str | None = None,
    comment: str | None = "#",
) -> Data:
    """Read an edge list file into a PyG ``Data``.

    Args:
        path: the file (``.gz`` is decompressed).
        delimiter: field separator; ``None`` = by extension, ``"whitespace"`` = runs
            of whitespace (see the module docstring).
        header: ``True``, ``False`` or ``"auto"``.
        directed: keep edges as listed; ``False`` also stores every reverse edge.
        weight_column: 0-based column index, or a header name, of an edge weight.
        comment: prefix of lines to skip; ``None`` skips none.

    Returns:
        ``Data`` with ``edge_index`` ``[2, E']``, ``num_nodes``, ``node_names``
        (``list[str]``, id -> name) and, with a weight column, ``edge_weight`` ``[E']``
        (float32).

    Raises:
        DatasetNotFoundError: the file does not exist.
        ConfigError: bad arguments (unknown header name, weight column 0 or 1, ...).
        DataFormatError: a malformed line (wrong field count, empty field,
            non-numeric weight) or no edges, naming file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"edge list file not found: {path}")
    if header not in (True, False, "auto"):
        raise ConfigError(f"header must be True, False or 'auto', got {header!r}")
    if isinstance(weight_column, bool) or (
        weight_column is not None and not isinstance(weight_column, (int, str))
    ):
        raise ConfigError(f"weight_column must be a column index or name, got {weight_column!r}")
    if isinstance(weight_column, int) and weight_column in (0, 1):
        raise ConfigError(f"weight_column {weight_column} is an endpoint column (0 and 1 are)")
    if isinstance(weight_column, int) and weight_column < 0:
        raise ConfigError(f"weight_column must be >= 2, got {weight_column}")
    sep = _resolve_delimiter(path, delimiter)

    lines = _data_lines(path, sep, comment)
    first = next(lines, None)
    if first is None:
        raise DataFormatError(path, None, "no edges: the file has no data lines")
    first_number, first_fields = first
    width = len(first_fields)
    if width < 2:
        raise DataFormatError(
            path,
            first_number,
            f"expected at least 2 {_sep_name(sep)}-separated fields (source, target), "
            f"found {width}: {first_fields!r}",
        )

    has_header = _detect_header(first_fields, weight_column) if header == "auto" else header
    column = _weight_index(path, first_number, first_fields, weight_column, has_header)
    if column is not None and column >= width:
        raise DataFormatError(
            path,
            first_number,
            f"weight column {column} does not exist: lines have {width} fields",
        )

    ids: dict[str, int] = {}
    names: list[str] = []
    sources: list[int] = []
    targets: list[int] = []
    weights: list[float] = []

    def node(name: str) -> int:
        index = ids.get(name)
        if index is None:
            index = ids[name] = len(names)
            names.append(name)
        return index

    def add(number: int, fields: list[str]) -> None:
        if len(fields) != width:
            raise DataFormatError(
                path,
                number,
                f"expected {width} {_sep_name(sep)}-separated fields (as on line "
                f"{first_number}), found {len(fields)}: {fields!r}",
            )
        sources.append(node(fields[0]))
        targets.append(node(fields[1]))
        if column is not None:
            weights.append(parse_float(fields[column], path, number, f"weight (column {column})"))

    if not has_header:
        add(first_number, first_fields)
    for number, fields in lines:
        add(number, fields)
    if not sources:
        raise DataFormatError(path, None, "no edges: the file has a header but no data lines")

    edge_index = torch.tensor([sources, targets], dtype=torch.long)
    weight = torch.tensor(weights, dtype=torch.float32) if column is not None else None
    if not directed:
        reverse = edge_index[0] != edge_index[1]
        edge_index = torch.cat([edge_index, edge_index[:, reverse].flip(0)], dim=1)
        if weight is not None:
            weight = torch.cat([weight, weight[reverse]])
    data = Data(edge_index=edge_index, num_nodes=len(names))
    data.node_names = names
    if weight is not None:
        data.edge_weight = weight
    return data


def _sep_name(sep: str | None) -> str:
    return {"\t": "tab", ",": "comma", None: "whitespace"}.get(sep, repr(sep))


def _data_lines(path: Path, sep: str | None, comment: str | None):
    """Yield ``(line_number, stripped fields)`` for non-blank, non-comment lines."""
    with open_text(path) as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.rstrip("\r\n")
            if not line.strip() or (comment and line.lstrip().startswith(comment)):
                continue
            fields = [f.strip() for f in (line.split(sep) if sep is not None else line.split())]
            for position, value in enumerate(fields, start=1):
                if not value:
                    raise DataFormatError(path, number, f"field {position} is empty: {line[:80]!r}")
            yield number, fields


def _detect_header(fields: Sequence[str], weight_column: int | str | None) -> bool:
    if isinstance(weight_column, str):
        return True
    if (
        isinstance(weight_column, int)
        and weight_column < len(fields)
        and not _is_number(fields[weight_column])
    ):
        return True
    return fields[0].lower() in HEADER_WORDS and fields[1].lower() in HEADER_WORDS


def _weight_index(
    path: Path,
    line: int,
    fields: Sequence[str],
    weight_column: int | str | None,
    has_header: bool,
) -> int | None:
    if not isinstance(weight_column, str):
        return weight_column
    if not has_header:
        raise ConfigError(
            f"weight_column {weight_column!r} is a name, which needs a header line (header=False)"
        )
    if weight_column not in fields:
        raise DataFormatError(
            path, line, f"header has no column {weight_column!r} (columns: {list(fields)})"
        )
    index = list(fields).index(weight_column)
    if index in (0, 1):
        raise ConfigError(f"weight_column {weight_column!r} is an endpoint column")
    return index


__all__ = ["HEADER_WORDS", "load_edge_list"]


def edge_list_stats(data: Data) -> dict[str, int | bool]:
    """Statistics of a loaded edge list: nodes, stored (directed) edges, weighted."""
    return {
        "nodes": int(data.num_nodes),
        "stored_edges": int(data.edge_index.size(1)),
        "weighted": getattr(data, "edge_weight", None) is not None,
    }
