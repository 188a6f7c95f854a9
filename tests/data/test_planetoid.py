from __future__ import annotations

import os

import pytest
import torch
from torch_geometric.data import Data

from graphlearn.data.paths import cache_dir
from graphlearn.data.planetoid import (
    _sync_raw,
    homogeneous_stats,
    load_planetoid,
    planetoid_name,
    planetoid_raw_files,
)
from graphlearn.errors import ConfigError, DatasetNotFoundError


def test_names_are_case_insensitive():
    assert planetoid_name("cora") == "Cora"
    assert planetoid_name("CITESEER") == "CiteSeer"
    assert planetoid_name("pubmed") == "PubMed"
    assert planetoid_raw_files("CiteSeer")[0] == "ind.citeseer.x"
    assert len(planetoid_raw_files("pubmed")) == 8


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ConfigError, match="Cora, CiteSeer, PubMed"):
        planetoid_name("coraa")
    with pytest.raises(ConfigError, match="did you mean 'cora'"):
        load_planetoid("/nonexistent", "coraa")


def test_missing_raw_files_name_folder_and_files(tmp_path):
    raw = tmp_path / "PubMed" / "raw"
    raw.mkdir(parents=True)
    for file in planetoid_raw_files("pubmed")[:5]:
        (raw / file).write_bytes(b"")
    with pytest.raises(DatasetNotFoundError) as info:
        load_planetoid(tmp_path, "pubmed")
    message = str(info.value)
    assert str(raw) in message
    assert "ind.pubmed.ally" in message and "ind.pubmed.test.index" in message
    assert "ind.pubmed.x," not in message  # present files are not listed
    # Nothing was fetched or written into the (pretend read-only) root.
    assert sorted(p.name for p in raw.iterdir()) == sorted(planetoid_raw_files("pubmed")[:5])
    assert not (tmp_path / "PubMed" / "processed").exists()


def test_missing_root_raises(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="ind.cora.x"):
        load_planetoid(tmp_path / "absent", "Cora")


def test_sync_raw_copies_once_and_refreshes_changed_files(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    files = ["a", "b"]
    for name in files:
        (source / name).write_bytes(name.encode() * 10)
    os.chmod(source, 0o555)  # read-only source folder, as in CI
    target = tmp_path / "cache" / "raw"
    processed = tmp_path / "cache" / "processed"
    try:
        _sync_raw(source, target, files, processed)
        assert (target / "a").read_bytes() == b"a" * 10
        first = (target / "a").stat().st_mtime_ns, (target / "a").stat().st_ino
        processed.mkdir()
        _sync_raw(source, target, files, processed)  # identical: no copy, cache kept
        assert ((target / "a").stat().st_mtime_ns, (target / "a").stat().st_ino) == first
        assert processed.is_dir()
        os.chmod(source, 0o755)
        (source / "b").write_bytes(b"changed")
        _sync_raw(source, target, files, processed)  # changed: recopied, stale cache dropped
        assert (target / "b").read_bytes() == b"changed"
        assert not processed.exists()
    finally:
        os.chmod(source, 0o755)


def test_homogeneous_stats_by_hand():
    # 0-1 listed twice (both directions and a duplicate), 1-2, a self-loop on 3.
    edge_index = torch.tensor([[0, 1, 0, 1, 3], [1, 0, 1, 2, 3]])
    data = Data(x=torch.zeros(5, 7), y=torch.tensor([0, 1, 1, 2, 0]), edge_index=edge_index)
    assert homogeneous_stats(data) == {
        "nodes": 5,
        "undirected_edges": 3,
        "self_loops": 1,
        "features": 7,
        "classes": 3,
    }
    bare = Data(edge_index=torch.empty(2, 0, dtype=torch.long), num_nodes=3)
    assert homogeneous_stats(bare) == {
        "nodes": 3,
        "undirected_edges": 0,
        "self_loops": 0,
        "features": 0,
        "classes": 0,
    }


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cora", {"nodes": 2708, "undirected_edges": 5278, "features": 1433, "classes": 7}),
        ("CiteSeer", {"nodes": 3327, "undirected_edges": 4552, "features": 3703, "classes": 6}),
    ],
)
def test_real_planetoid(shared_data, name, expected):
    root = shared_data / "planetoid"
    data = load_planetoid(root, name)
    stats = homogeneous_stats(data)
    assert {k: stats[k] for k in expected} == expected
    assert data.train_mask.sum() == 20 * expected["classes"]
    canonical = planetoid_name(name)
    # PyG's processed files went to the cache, never beside the (read-only) raw data.
    assert (cache_dir() / "planetoid" / canonical / "processed").is_dir()
    assert not (root / canonical / "processed").exists()
    # A second load reuses the cache; the <Name> folder itself is accepted as root.
    again = load_planetoid(root / canonical, name)
    assert torch.equal(again.edge_index, data.edge_index)
