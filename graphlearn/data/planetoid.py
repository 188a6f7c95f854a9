"""Planetoid citation graphs (Cora, CiteSeer, PubMed) through PyG's ``Planetoid``.

The raw files are the ones published in the kimiyoung/planetoid repository
(``ind.<name>.{x,tx,allx,y,ty,ally,graph,test.index}``), read from
``root/<Name>/raw/``. PyG writes its ``processed/`` folder beside ``raw/`` and the
data root may be read-only, so the raw files are first copied into the writable
cache ``cache_dir()/planetoid/<Name>/raw`` (skipped when the cached copy is
already identical; a changed raw file also discards the stale ``processed/``)
and ``Planetoid`` is pointed there. PyG is never allowed to download: missing raw
files raise :class:`~graphlearn.errors.DatasetNotFoundError` first.

Example::

    data = load_planetoid("~/data/planetoid", "cora")
    homogeneous_stats(data)   # {'nodes': 2708, 'undirected_edges': 5278, ...}
"""

from __future__ import annotations

import filecmp
import os
import shutil
import tempfile
from pathlib import Path

import torch
from torch_geometric.data import Data

from graphlearn.data.paths import cache_dir
from graphlearn.errors import ConfigError, DatasetNotFoundError
from graphlearn.registry import did_you_mean

#: Canonical names, as PyG spells them (and as the folders are named).
PLANETOID_NAMES: tuple[str, ...] = ("Cora", "CiteSeer", "PubMed")

_RAW_SUFFIXES: tuple[str, ...] = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")


def planetoid_name(name: str) -> str:
    """Return the canonical spelling of a Planetoid name (case-insensitive).

    Raises:
        ConfigError: unknown name; the message lists the valid ones.
    """
    lookup = {n.lower(): n for n in PLANETOID_NAMES}
    key = str(name).lower()
    if key not in lookup:
        raise ConfigError(
            f"unknown Planetoid dataset {name!r}{did_you_mean(key, list(lookup))} "
            f"(valid: {', '.join(PLANETOID_NAMES)})"
        )
    return lookup[key]


def planetoid_raw_files(name: str) -> list[str]:
    """The raw file names PyG's ``Planetoid`` reads for ``name``."""
    lower = planetoid_name(name).lower()
    return [f"ind.{lower}.{suffix}" for suffix in _RAW_SUFFIXES]


def load_planetoid(root: str | os.PathLike, name: str) -> Data:
    """Load a Planetoid citation graph as a PyG ``Data``.

    Args:
        root: folder holding ``<Name>/raw/ind.<name>.*`` (may be read-only), or the
            ``<Name>`` folder itself.
        name: ``"cora"``, ``"citeseer"`` or ``"pubmed"`` (case-insensitive).

    Returns:
        ``Data`` with ``x`` ``[N, F]`` (binary bag of words, as PyG reads it without transforms),
        ``y`` ``[N]``, ``edge_index`` ``[2, E]`` (both directions of every undirected
        edge), ``train_mask``/``val_mask``/``test_mask`` ``[N]`` (the public split).

    Raises:
        ConfigError: unknown name.
        DatasetNotFoundError: the raw folder or some raw files are missing.
    """
    from torch_geometric.datasets import Planetoid

    canonical = planetoid_name(name)
    files = planetoid_raw_files(canonical)
    root = Path(root).expanduser()
    source = root / canonical / "raw"
    if not source.is_dir() and all((root / "raw" / f).is_file() for f in files):
        source = root / "raw"  # root is the <Name> folder itself
    missing = [f for f in files if not (source / f).is_file()]
    if missing:
        raise DatasetNotFoundError(
            f"Planetoid {canonical}: raw files missing in {source}: {', '.join(missing)} "
            "(expected the kimiyoung/planetoid files ind.<name>.{x,tx,allx,y,ty,ally,graph,"
            "test.index})"
        )
    cache_root = cache_dir() / "planetoid"
    _sync_raw(source, cache_root / canonical / "raw", files, cache_root / canonical / "processed")
    dataset = Planetoid(str(cache_root), canonical)
    data = dataset[0]
    assert isinstance(data, Data)
    return data


def _sync_raw(source: Path, target: Path, files: list[str], processed: Path) -> None:
    """Copy ``files`` from ``source`` to ``target`` unless identical copies are there.

    Each file is written to a temporary name and renamed, so concurrent loaders
    never see a half-written file. When any file changed, the processed cache is
    removed so that PyG rebuilds it from the new raw files.
    """
    target.mkdir(parents=True, exist_ok=True)
    changed = False
    for file in files:
        src, dst = source / file, target / file
        if dst.is_file() and filecmp.cmp(src, dst, shallow=False):
            continue
        fd, tmp = tempfile.mkstemp(dir=target, prefix=f".{file}.")
        os.close(fd)
        try:
            shutil.copyfile(src, tmp)
            os.chmod(tmp, 0o644)
            os.replace(tmp, dst)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        changed = True
    if changed and processed.is_dir():
        shutil.rmtree(processed, ignore_errors=True)


def homogeneous_stats(data: Data) -> dict[str, int]:
    """Summary counts of a homogeneous graph.

    Returns:
        ``nodes``; ``undirected_edges`` (distinct unordered node pairs, a self-loop
        counted once); ``self_loops`` (distinct); ``features`` (columns of ``x``,
        0 without ``x``); ``classes`` (distinct values of ``y``, 0 without ``y``).
    """
    num_nodes = int(data.num_nodes or 0)
    edge_index = data.edge_index
    if edge_index is None or edge_index.numel() == 0:
        pairs = torch.empty(0, dtype=torch.long)
        loops = 0
    else:
        low = torch.minimum(edge_index[0], edge_index[1])
        high = torch.maximum(edge_index[0], edge_index[1])
        pairs = torch.unique(low * max(num_nodes, 1) + high)
        loops = int(torch.unique(edge_index[0][edge_index[0] == edge_index[1]]).numel())
    x = getattr(data, "x", None)
    y = getattr(data, "y", None)
    return {
        "nodes": num_nodes,
        "undirected_edges": int(pairs.numel()),
        "self_loops": loops,
        "features": int(x.size(-1)) if x is not None and x.dim() > 1 else 0,
        "classes": int(torch.unique(y).numel()) if y is not None else 0,
    }
