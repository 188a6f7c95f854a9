"""OGB link-prediction datasets read from OGB's own on-disk layout, without ``ogb``.

``ogb``'s ``LinkPropPredDataset`` cannot load its split files on torch >= 2.6
(``torch.load`` defaults to ``weights_only=True`` and the files hold pickled numpy
arrays), asks ``input()`` when a folder looks outdated, and downloads on its own.
This module reads the same files itself:

* ``raw/edge.csv.gz`` (one ``src,dst`` line per edge), ``raw/num-node-list.csv.gz``,
  ``raw/num-edge-list.csv.gz``; optional ``raw/node-feat.csv.gz`` and the
  dataset's additional files (``raw/edge_weight.csv.gz``, ``raw/edge_year.csv.gz``,
  ``raw/node_year.csv.gz``, ``raw/edge_reltype.csv.gz``);
* ``ogbl-biokg`` (heterogeneous): ``raw/num-node-dict.csv.gz`` (header of node
  types, one row of counts), ``raw/triplet-type-list.csv.gz`` (``head,relation,tail``
  type lines) and ``raw/relations/<head>___<relation>___<tail>/{edge,num-edge-list,
  edge_reltype}.csv.gz`` (node ids local to their type);
* ``split/<type>/{train,valid,test}.pt`` (or ``split_dict.pt``): dicts of numpy
  arrays saved with ``torch.save``, loaded here with ``weights_only=True`` and a
  minimal numpy allowlist (:func:`load_split_file`); never ``weights_only=False``.

Returned ``Data`` (homogeneous: ``ogbl-ddi``, ``ogbl-collab``, ``ogbl-ppa``,
``ogbl-citation2``):

* ``edge_index`` ``[2, E']``: the training graph of ``raw/edge.csv.gz``. Undirected
  datasets (ddi, collab, ppa) hold both directions: the ``E`` raw edges in file
  order followed by their ``E`` reverses. ``ogbl-citation2`` is directed (as OGB
  ships it); duplicate edges (collab's repeated collaborations) are kept.
* ``num_nodes``; ``x`` from ``node-feat.csv.gz`` (``float32``, or ``int64`` when the
  file holds integers, e.g. ppa's one-hot species, as ``ogb`` reads it);
* ``edge_weight``/``edge_year`` ``[E']`` (collab, aligned with ``edge_index``),
  ``node_year`` ``[N]`` (citation2); dtypes as ``ogb`` reads them (``int64`` when
  the file holds integers, as collab's weights do: cast before normalising);
* ``split_edge``: ``{"train"|"valid"|"test": {key: Tensor}}`` with the keys of
  ``ogb``'s ``get_edge_split()`` (ddi/ppa: ``edge`` ``[n, 2]``, valid/test
  ``edge_neg`` ``[m, 2]``; collab adds ``weight``, ``year``; citation2:
  ``source_node``, ``target_node`` ``[n]``, valid/test ``target_node_neg`` ``[n, 1000]``);
* ``name`` (``"ogbl-ddi"``, ...).

Knowledge graphs (``ogbl-wikikg2``, ``ogbl-biokg``) follow graphlearn's KG
convention: ``edge_index`` ``[2, 2E]`` and ``edge_type`` ``[2E]`` hold the training
triples ``(h, r, t)`` followed by their inverses ``(t, r + R, h)``, and
``num_relations`` = ``2R`` counts both. ``split_edge`` has ``head``, ``relation``,
``tail`` ``[n]`` and, for valid/test, ``head_neg``/``tail_neg`` ``[n, k]``.
For ``ogbl-biokg`` every node has one global id: node types are ordered by name
(as ``ogb`` does) and type ``i`` occupies ``[node_type_offset[i],
node_type_offset[i] + num_nodes_dict[name])``. Unlike ``ogb``'s raw split,
``head``/``tail``/``head_neg``/``tail_neg`` are **global** ids here, and
``head_type``/``tail_type`` are type indices into ``node_type_names``; ``node_type``
``[N]`` gives each node's type index (PyG's ``node_type``/``node_type_names``
convention) and ``num_nodes_dict`` the count per type.

Malformed lines raise :class:`~graphlearn.errors.DataFormatError` with file and
line; missing files raise :class:`~graphlearn.errors.DatasetNotFoundError`.
"""

from __future__ import annotations

import os
import pickle
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from graphlearn.data._io import open_text, parse_float, parse_int, read_rows
from graphlearn.errors import ConfigError, DataFormatError, DatasetNotFoundError
from graphlearn.registry import Registry, normalize_name

SPLITS: tuple[str, ...] = ("train", "valid", "test")


@dataclass(frozen=True)
class OgblSpec:
    """What ``ogb/linkproppred/master.csv`` says about one dataset.

    Args:
        name: OGB name, e.g. ``"ogbl-ddi"``.
        kind: ``"homogeneous"`` or ``"kg"`` (head, relation, tail triples).
        undirected: ``add_inverse_edge`` in master.csv (raw edges stored once).
        split: the folder under ``split/``.
        metric: the official metric (``hits@20``, ``mrr``, ...).
        node_files: additional per-node files in ``raw/`` (without ``.csv.gz``).
        edge_files: additional per-edge files in ``raw/`` (without ``.csv.gz``).
        hetero: the heterogeneous ``raw/relations/`` layout.
        train_keys: keys every train split dict must have.
        eval_keys: keys every valid/test split dict must have.
    """

    name: str
    kind: str
    undirected: bool
    split: str
    metric: str
    node_files: tuple[str, ...] = ()
    edge_files: tuple[str, ...] = ()
    hetero: bool = False
    train_keys: tuple[str, ...] = ("edge",)
    eval_keys: tuple[str, ...] = ("edge", "edge_neg")

    @property
    def dir_name(self) -> str:
        """OGB's folder name (``ogbl-ddi`` -> ``ogbl_ddi``)."""
        return self.name.replace("-", "_")


OGBL_DATASETS: Registry[OgblSpec] = Registry("OGB link dataset")

_KG_TRAIN = ("head", "relation", "tail")
_KG_EVAL = ("head", "relation", "tail", "head_neg", "tail_neg")
_BIOKG_TRAIN = ("head", "head_type", "relation", "tail", "tail_type")
_BIOKG_EVAL = _BIOKG_TRAIN + ("head_neg", "tail_neg")

for _spec in (
    OgblSpec("ogbl-ddi", "homogeneous", True, "target", "hits@20"),
    OgblSpec("ogbl-ppa", "homogeneous", True, "throughput", "hits@100"),
    OgblSpec(
        "ogbl-collab",
        "homogeneous",
        True,
        "time",
        "hits@50",
        edge_files=("edge_weight", "edge_year"),
        train_keys=("edge", "weight", "year"),
        eval_keys=("edge", "weight", "year", "edge_neg"),
    ),
    OgblSpec(
        "ogbl-citation2",
        "homogeneous",
        False,
        "time",
        "mrr",
        node_files=("node_year",),
        train_keys=("source_node", "target_node"),
        eval_keys=("source_node", "target_node", "target_node_neg"),
    ),
    OgblSpec(
        "ogbl-wikikg2",
        "kg",
        False,
        "time",
        "mrr",
        edge_files=("edge_reltype",),
        train_keys=_KG_TRAIN,
        eval_keys=_KG_EVAL,
    ),
    OgblSpec(
        "ogbl-biokg",
        "kg",
        False,
        "random",
        "mrr",
        edge_files=("edge_reltype",),
        hetero=True,
        train_keys=_BIOKG_TRAIN,
        eval_keys=_BIOKG_EVAL,
    ),
):
    OGBL_DATASETS.register(_spec.name)(_spec)


def ogbl_spec(name: str) -> OgblSpec:
    """Look up a dataset by name: ``"ogbl-ddi"``, ``"ogbl_ddi"`` or ``"ddi"`` (any case).

    Raises:
        ConfigError: unknown name; lists the supported ones.
    """
    if (
        isinstance(name, str)
        and not normalize_name(name).startswith("ogbl")
        and f"ogbl-{name}" in OGBL_DATASETS
    ):
        return OGBL_DATASETS.get(f"ogbl-{name}")
    return OGBL_DATASETS.get(name)


# --------------------------------------------------------------------------- files


def _numpy_safe_globals() -> list[Any]:
    """The numpy objects that OGB's pickled split arrays need, and nothing else.

    A pickled ``ndarray`` is rebuilt by ``_reconstruct``, named
    ``numpy.core.multiarray._reconstruct`` in files written under numpy 1 (all of
    OGB's releases) and ``numpy._core.multiarray._reconstruct`` under numpy 2 (both
    names are needed), then ``ndarray.__setstate__`` with a ``numpy.dtype`` whose
    instance class (``numpy.dtypes.Int64DType``, ...) must be allowed for the
    unpickler's BUILD step. ``_codecs.encode`` (the raw bytes) is allowed by torch
    already. The dtype classes are those OGB's link splits use: int64 ids and
    years, int32/float32/float64 weights, unicode node-type names (biokg). Object
    arrays (arbitrary pickles) stay refused.
    """
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    allowed: list[Any] = [
        (_reconstruct, "numpy.core.multiarray._reconstruct"),
        (_reconstruct, "numpy._core.multiarray._reconstruct"),
        np.ndarray,
        np.dtype,
    ]
    for code in ("i4", "i8", "f4", "f8", "U1"):
        cls = type(np.dtype(code))
        if cls is not np.dtype:  # numpy >= 1.20: one class per dtype
            allowed.append(cls)
    return allowed


def load_split_file(path: str | os.PathLike) -> dict[str, Any]:
    """Load one OGB split file (a dict of numpy arrays saved with ``torch.save``).

    Uses ``torch.load(path, weights_only=True)`` with only
    :func:`_numpy_safe_globals` added to the allowlist.

    Raises:
        DatasetNotFoundError: the file is missing.
        DataFormatError: it is not a dict, or needs anything beyond numpy arrays.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"OGB split file missing: {path}")
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataFormatError(
            path, None, f"not a split file of numpy arrays loadable with weights_only=True: {first}"
        ) from None
    if not isinstance(obj, Mapping):
        raise DataFormatError(path, None, f"expected a dict of arrays, got {type(obj).__name__}")
    return dict(obj)


def _require(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DatasetNotFoundError(f"{what}: file missing: {path}")
    return path


def read_csv_array(
    path: str | os.PathLike,
    num_columns: int | None = None,
    integer: bool | None = True,
) -> np.ndarray:
    """Read a header-less comma-separated numeric file (``.gz`` allowed) into 2-D numpy.

    Args:
        path: the file.
        num_columns: the exact number of columns, or ``None`` for any (consistent) number.
        integer: ``True`` -> ``int64``; ``None`` -> ``int64`` when every value is an
            integer, else ``float32`` (``ogb``'s rule); ``False`` -> ``float32``.

    Returns:
        ``[rows, columns]`` array (``[0, num_columns or 0]`` for an empty file).

    Raises:
        DataFormatError: a line with the wrong number of fields or a non-number,
            naming file and line.
    """
    path = Path(path)
    attempts = (
        [np.int64] if integer else [np.float64] if integer is False else [np.int64, np.float64]
    )
    last: Exception | None = None
    for dtype in attempts:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "input contained no data"
                with open_text(path) as handle:
                    array = np.loadtxt(handle, delimiter=",", dtype=dtype, ndmin=2, comments=None)
        except ValueError as error:
            last = error
            continue
        if array.size == 0:
            return np.zeros((0, num_columns or 0), dtype=dtype)
        if num_columns is not None and array.shape[1] != num_columns:
            _locate_error(path, num_columns, integer=dtype is np.int64)
            raise DataFormatError(
                path, None, f"expected {num_columns} columns, found {array.shape[1]}"
            )
        return array.astype(np.float32) if dtype is np.float64 else array
    _locate_error(path, num_columns, integer=attempts[-1] is np.int64)
    raise DataFormatError(path, None, f"could not parse as numbers: {last}")


def _locate_error(path: Path, num_columns: int | None, integer: bool) -> None:
    """Scan ``path`` line by line and raise at the first malformed line (if any)."""
    if num_columns is None:
        with open_text(path) as handle:
            for raw in handle:
                if raw.strip():
                    num_columns = len(raw.rstrip("\r\n").split(","))
                    break
        if num_columns is None:
            return
    kind = "integer" if integer else "number"
    for line, fields in read_rows(path, num_columns, delimiter=","):
        for column, value in enumerate(fields, start=1):
            if integer:
                parse_int(value.strip(), path, line, f"column {column} ({kind})")
            else:
                parse_float(value.strip(), path, line, f"column {column} ({kind})")


def _read_single_count(path: Path) -> int:
    """Read a ``num-*-list.csv.gz`` that must describe exactly one graph."""
    counts = read_csv_array(path, num_columns=1).reshape(-1)
    if counts.size != 1:
        raise DataFormatError(
            path, None, f"expected one line (a single graph), found {counts.size}"
        )
    if counts[0] < 0:
        raise DataFormatError(path, 1, f"count must be >= 0, got {counts[0]}")
    return int(counts[0])


def _read_edges(path: Path, num_edges: int, num_nodes: int) -> np.ndarray:
    edges = read_csv_array(path, num_columns=2)
    if edges.shape[0] != num_edges:
        raise DataFormatError(
            path, None, f"{edges.shape[0]} edges, but num-edge-list says {num_edges}"
        )
    _check_ids(path, edges, num_nodes)
    return edges


def _check_ids(path: Path, ids: np.ndarray, num_nodes: int) -> None:
    if ids.size == 0:
        return
    bad = np.flatnonzero(
        ((ids < 0) | (ids >= num_nodes)).any(axis=-1)
        if ids.ndim > 1
        else (ids < 0) | (ids >= num_nodes)
    )
    if bad.size:
        row = int(bad[0])
        raise DataFormatError(
            path, row + 1, f"node id {ids[row].tolist()} outside [0, {num_nodes})"
        )


def _read_per_item(path: Path, count: int, what: str, integer: bool | None) -> np.ndarray:
    values = read_csv_array(path, num_columns=None, integer=integer)
    if values.shape[0] != count:
        raise DataFormatError(
            path, None, f"{values.shape[0]} lines, expected one per {what} ({count})"
        )
    return values


def _dataset_dir(root: str | os.PathLike, spec: OgblSpec) -> Path:
    """``root/<ogbl_name>`` when it exists, else ``root`` itself when it holds ``raw/``."""
    root = Path(root).expanduser()
    for candidate in (root / spec.dir_name, root):
        if (candidate / "raw").is_dir():
            return candidate
    raise DatasetNotFoundError(
        f"{spec.name}: no OGB dataset folder at {root / spec.dir_name} or {root} "
        f"(expected raw/ and split/{spec.split}/ as released by OGB)"
    )


# --------------------------------------------------------------------------- splits


def _to_tensor(value: Any, path: Path, key: str) -> Any:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "iub":
            return torch.from_numpy(np.ascontiguousarray(value).astype(np.int64, copy=False))
        if value.dtype.kind == "f":
            return torch.from_numpy(np.ascontiguousarray(value))
        if value.dtype.kind == "U":
            return value.tolist()
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    if isinstance(value, (list, tuple)):
        return torch.as_tensor(value)
    raise DataFormatError(
        path, None, f"split key {key!r}: unsupported value {type(value).__name__}"
    )


def read_split_edge(folder: Path, spec: OgblSpec) -> dict[str, dict[str, Any]]:
    """Read ``split/<type>/`` into ``{"train"|"valid"|"test": {key: Tensor | list}}``."""
    split_dir = folder / "split" / spec.split
    shortcut = split_dir / "split_dict.pt"
    if shortcut.is_file():
        raw = load_split_file(shortcut)
        sources = {split: shortcut for split in SPLITS}
        missing = [s for s in SPLITS if s not in raw]
        if missing:
            raise DataFormatError(shortcut, None, f"missing splits: {', '.join(missing)}")
    else:
        files = {split: split_dir / f"{split}.pt" for split in SPLITS}
        missing = [str(p.name) for p in files.values() if not p.is_file()]
        if missing:
            raise DatasetNotFoundError(
                f"{spec.name}: split files missing in {split_dir}: {', '.join(missing)}"
            )
        raw = {split: load_split_file(path) for split, path in files.items()}
        sources = files
    out: dict[str, dict[str, Any]] = {}
    for split in SPLITS:
        path = sources[split]
        part = raw[split]
        if not isinstance(part, Mapping):
            raise DataFormatError(path, None, f"split {split!r} is not a dict")
        required = spec.train_keys if split == "train" else spec.eval_keys
        absent = [key for key in required if key not in part]
        if absent:
            raise DataFormatError(
                path,
                None,
                f"split {split!r} lacks keys {absent} (has {sorted(part)}); "
                f"{spec.name} needs {list(required)}",
            )
        out[split] = {key: _to_tensor(value, path, key) for key, value in part.items()}
    return out


# --------------------------------------------------------------------------- loaders


def load_ogbl(root: str | os.PathLike, name: str) -> Data:
    """Load an OGB link-prediction dataset from OGB's on-disk layout.

    Args:
        root: the dataset folder (holding ``raw/`` and ``split/``) or its parent
            (holding ``ogbl_<name>/``, as ``ogb``'s ``root=`` argument).
        name: ``"ogbl-ddi"``, ``"ogbl-collab"``, ``"ogbl-ppa"``, ``"ogbl-citation2"``,
            ``"ogbl-biokg"`` or ``"ogbl-wikikg2"`` (``"ddi"`` etc. also accepted).

    Returns:
        ``Data`` described in the module docstring.

    Raises:
        ConfigError: unknown name.
        DatasetNotFoundError: the folder or a required file is missing.
        DataFormatError: a malformed file (file and line named).
    """
    spec = ogbl_spec(name)
    folder = _dataset_dir(root, spec)
    raw = folder / "raw"
    if spec.hetero:
        data = _load_hetero_kg(raw, spec)
    else:
        data = _load_homogeneous(raw, spec)
    split_edge = read_split_edge(folder, spec)
    if spec.hetero:
        _globalize_biokg_split(data, split_edge, folder / "split" / spec.split)
    if spec.kind == "kg":
        relations = [data.edge_type]
        relations += [split_edge[s]["relation"].reshape(-1) for s in SPLITS]
        num_base = int(max(int(r.max()) for r in relations if r.numel()) + 1)
        _add_inverse_relations(data, num_base)
    data.split_edge = split_edge
    data.name = spec.name
    return data


def _load_homogeneous(raw: Path, spec: OgblSpec) -> Data:
    num_nodes = _read_single_count(_require(raw / "num-node-list.csv.gz", spec.name))
    num_edges = _read_single_count(_require(raw / "num-edge-list.csv.gz", spec.name))
    edges = _read_edges(_require(raw / "edge.csv.gz", spec.name), num_edges, num_nodes)
    edge_index = torch.from_numpy(edges.T.copy())
    data = Data(num_nodes=num_nodes)

    feat_path = raw / "node-feat.csv.gz"
    if feat_path.is_file():
        feat = _read_per_item(feat_path, num_nodes, "node", integer=None)
        data.x = torch.from_numpy(feat)
    for file in spec.node_files:
        path = _require(raw / f"{file}.csv.gz", spec.name)
        data[file] = torch.from_numpy(_read_per_item(path, num_nodes, "node", None).reshape(-1))

    edge_values: dict[str, Tensor] = {}
    for file in spec.edge_files:
        path = _require(raw / f"{file}.csv.gz", spec.name)
        edge_values[file] = torch.from_numpy(
            _read_per_item(path, num_edges, "edge", None).reshape(-1)
        )

    if spec.kind == "kg":
        data.edge_index = edge_index
        data.edge_type = edge_values.pop("edge_reltype")
        if data.edge_type.numel() and int(data.edge_type.min()) < 0:
            raise DataFormatError(raw / "edge_reltype.csv.gz", None, "negative relation id")
    elif spec.undirected:
        data.edge_index = torch.cat([edge_index, edge_index.flip(0)], dim=1)
        edge_values = {key: torch.cat([value, value]) for key, value in edge_values.items()}
    else:
        data.edge_index = edge_index
    for key, value in edge_values.items():
        data[key] = value
    return data


def _read_node_type_counts(path: Path) -> dict[str, int]:
    """``num-node-dict.csv.gz``: a header line of node types, then one line of counts."""
    rows = list(read_rows(path, (1, 10_000), delimiter=","))
    if len(rows) != 2:
        raise DataFormatError(
            path, None, f"expected a header line and one line of counts, found {len(rows)} lines"
        )
    (_, header), (line, values) = rows
    if len(values) != len(header):
        raise DataFormatError(
            path, line, f"{len(values)} counts for {len(header)} node types {header}"
        )
    return {
        node_type.strip(): parse_int(value.strip(), path, line, f"count of {node_type.strip()!r}")
        for node_type, value in zip(header, values)
    }


def _load_hetero_kg(raw: Path, spec: OgblSpec) -> Data:
    counts_path = _require(raw / "num-node-dict.csv.gz", spec.name)
    num_nodes_dict = _read_node_type_counts(counts_path)
    node_types = sorted(num_nodes_dict)
    offsets = np.cumsum([0] + [num_nodes_dict[t] for t in node_types])
    offset_of = {t: int(offsets[i]) for i, t in enumerate(node_types)}

    triplet_path = _require(raw / "triplet-type-list.csv.gz", spec.name)
    triplets = []
    for line, fields in read_rows(triplet_path, 3, delimiter=","):
        head, relation, tail = (f.strip() for f in fields)
        for node_type in (head, tail):
            if node_type not in num_nodes_dict:
                raise DataFormatError(
                    triplet_path,
                    line,
                    f"node type {node_type!r} not in {counts_path.name} ({', '.join(node_types)})",
                )
        triplets.append((head, relation, tail))
    triplets.sort()

    sources, targets, types = [], [], []
    relation_of: dict[int, str] = {}  # relation id -> name, from the triplet folders
    for head, relation, tail in triplets:
        folder = raw / "relations" / f"{head}___{relation}___{tail}"
        num_edges = _read_single_count(_require(folder / "num-edge-list.csv.gz", spec.name))
        edges = read_csv_array(_require(folder / "edge.csv.gz", spec.name), num_columns=2)
        if edges.shape[0] != num_edges:
            raise DataFormatError(
                folder / "edge.csv.gz",
                None,
                f"{edges.shape[0]} edges, but num-edge-list says {num_edges}",
            )
        _check_ids(folder / "edge.csv.gz", edges[:, :1], num_nodes_dict[head])
        _check_ids(folder / "edge.csv.gz", edges[:, 1:], num_nodes_dict[tail])
        reltype = _read_per_item(
            _require(folder / "edge_reltype.csv.gz", spec.name), num_edges, "edge", True
        ).reshape(-1)
        sources.append(edges[:, 0] + offset_of[head])
        targets.append(edges[:, 1] + offset_of[tail])
        types.append(reltype)
        for rid in np.unique(reltype).tolist():
            relation_of.setdefault(int(rid), relation)

    def cat(parts: list[np.ndarray]) -> Tensor:
        return torch.from_numpy(np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64))

    num_nodes = int(offsets[-1])
    data = Data(num_nodes=num_nodes)
    data.edge_index = torch.stack([cat(sources), cat(targets)])
    data.edge_type = cat(types)
    data.node_type_names = node_types
    data.relation_id_names = relation_of
    data.num_nodes_dict = dict(num_nodes_dict)
    data.node_type_offset = torch.tensor(offsets[:-1], dtype=torch.long)
    data.node_type = torch.repeat_interleave(
        torch.arange(len(node_types)), torch.tensor([num_nodes_dict[t] for t in node_types])
    )
    return data


def _globalize_biokg_split(data: Data, split_edge: dict[str, dict[str, Any]], where: Path) -> None:
    """Turn biokg's per-type ids into global ids and type names into type indices."""
    type_index = {name: i for i, name in enumerate(data.node_type_names)}
    offsets = data.node_type_offset
    sizes = torch.tensor([data.num_nodes_dict[t] for t in data.node_type_names])
    for split, part in split_edge.items():
        for side in ("head", "tail"):
            names = part[f"{side}_type"]
            if isinstance(names, Tensor):
                kinds = names.long()
            else:
                unknown = sorted({n for n in names if n not in type_index})
                if unknown:
                    raise DataFormatError(
                        where / f"{split}.pt",
                        None,
                        f"{side}_type has unknown node types {unknown} "
                        f"(known: {', '.join(data.node_type_names)})",
                    )
                kinds = torch.tensor([type_index[n] for n in names], dtype=torch.long)
            local = part[side].long()
            if local.numel() and bool(((local < 0) | (local >= sizes[kinds])).any()):
                raise DataFormatError(
                    where / f"{split}.pt", None, f"{side} id outside its node type's range"
                )
            part[f"{side}_type"] = kinds
            part[side] = local + offsets[kinds]
            if f"{side}_neg" in part:
                neg = part[f"{side}_neg"].long()
                part[f"{side}_neg"] = neg + offsets[kinds].view(-1, *([1] * (neg.dim() - 1)))


def _add_inverse_relations(data: Data, num_base: int) -> None:
    """Append ``(t, r + R, h)`` for every ``(h, r, t)``; ``num_relations = 2R``."""
    data.edge_index = torch.cat([data.edge_index, data.edge_index.flip(0)], dim=1)
    data.edge_type = torch.cat([data.edge_type, data.edge_type + num_base])
    data.num_relations = 2 * num_base


# --------------------------------------------------------------------------- as a KG


def is_ogbl_kg(data: Any) -> bool:
    """Whether ``data`` is an OGB knowledge graph from :func:`load_ogbl` (biokg, wikikg2)."""
    split = getattr(data, "split_edge", None)
    return isinstance(split, Mapping) and "head_neg" in split.get("test", {})


def ogbl_kg(data: Data) -> Data:
    """An OGB knowledge graph from :func:`load_ogbl` in :func:`graphlearn.data.kg.load_kg`'s
    form, plus OGB's evaluation candidates.

    Fields: ``edge_index``/``edge_type``/``num_nodes``/``num_relations`` (``2R``) as
    loaded; ``train_triples``, ``valid_triples``, ``test_triples`` ``[n, 3]`` from
    ``split_edge`` (global ids); ``filter_triples`` (all three, unique);
    ``entity_names`` (biokg: ``"<type>:<id within type>"``; wikikg2: the id);
    ``relation_names`` (biokg: the names of ``raw/triplet-type-list.csv.gz``, a
    relation id seen under several names keeps the first in sorted order; else
    ``"r<id>"``); ``ogb_negatives``: ``{"valid"|"test": {"head_neg", "tail_neg"}}``,
    ``[n, k]`` each, the fixed candidates OGB ranks every triple against; and, for
    typed graphs (biokg), ``entity_ranges`` ``[N, 2]``: the ``[lo, hi)`` id block of
    each entity's type.
    """
    if not is_ogbl_kg(data):
        raise ConfigError(f"{getattr(data, 'name', 'dataset')}: not an OGB knowledge graph "
                          f"(ogbl-biokg, ogbl-wikikg2)")
    split = data.split_edge
    triples = {
        name: torch.stack([split[name]["head"], split[name]["relation"], split[name]["tail"]],
                          dim=1).long()
        for name in SPLITS
    }
    num_nodes = int(data.num_nodes)
    num_base = int(data.num_relations) // 2
    out = Data(edge_index=data.edge_index, edge_type=data.edge_type, num_nodes=num_nodes,
               num_relations=int(data.num_relations), name=data.name,
               **{f"{name}_triples": value for name, value in triples.items()})
    out.filter_triples = torch.unique(torch.cat(list(triples.values())), dim=0)
    names = getattr(data, "relation_id_names", None) or {}
    out.relation_names = [names.get(r, f"r{r}") for r in range(num_base)]
    out.ogb_negatives = {name: {"head_neg": split[name]["head_neg"].long(),
                                "tail_neg": split[name]["tail_neg"].long()}
                         for name in ("valid", "test")}
    if getattr(data, "node_type_names", None) is not None:
        offsets = data.node_type_offset.tolist()
        types = data.node_type_names
        out.entity_names = [f"{types[t]}:{i - offsets[t]}"
                            for i, t in enumerate(data.node_type.tolist())]
        sizes = torch.tensor([data.num_nodes_dict[t] for t in types])
        lo = data.node_type_offset[data.node_type]
        out.entity_ranges = torch.stack([lo, lo + sizes[data.node_type]], dim=1)
        out.node_type = data.node_type
        out.node_type_names = list(types)
    else:
        out.entity_names = [str(i) for i in range(num_nodes)]
    return out


# --------------------------------------------------------------------------- stats


def _num_positives(part: Mapping[str, Any]) -> int:
    for key in ("edge", "source_node", "head"):
        if key in part:
            return len(part[key])
    return 0


def _num_negatives(part: Mapping[str, Any]) -> int:
    if "edge_neg" in part:
        return len(part["edge_neg"])
    return sum(
        int(part[key].numel()) for key in ("target_node_neg", "head_neg", "tail_neg") if key in part
    )


def ogbl_stats(data: Data) -> dict[str, int]:
    """Counts of a dataset loaded by :func:`load_ogbl`.

    Returns:
        ``nodes``; ``graph_edges`` (columns of ``edge_index``); ``train``, ``valid``,
        ``test`` (positive targets per split); ``valid_neg``, ``test_neg`` (negative
        candidates in all: rows of ``edge_neg``, or all entries of the ``[n, k]``
        ``target_node_neg``/``head_neg``+``tail_neg``); ``features`` (columns of ``x``,
        0 without); ``relations`` (``num_relations`` incl. inverses, KGs only).
    """
    split_edge = data.split_edge
    stats = {"nodes": int(data.num_nodes), "graph_edges": int(data.edge_index.size(1))}
    for split in SPLITS:
        stats[split] = _num_positives(split_edge[split])
    for split in ("valid", "test"):
        stats[f"{split}_neg"] = _num_negatives(split_edge[split])
    x = getattr(data, "x", None)
    stats["features"] = int(x.size(-1)) if x is not None and x.dim() > 1 else 0
    if getattr(data, "num_relations", None) is not None:
        stats["relations"] = int(data.num_relations)
    return stats


__all__ = [
    "OGBL_DATASETS",
    "OgblSpec",
    "load_ogbl",
    "load_split_file",
    "ogbl_spec",
    "ogbl_stats",
    "read_csv_array",
    "read_split_edge",
]
