"""OGB loaders on small folders written here in OGB's exact layout, and on real ogbl-ddi."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from graphlearn.data.ogb import (
    is_ogbl_kg,
    load_ogbl,
    load_split_file,
    ogbl_kg,
    ogbl_spec,
    ogbl_stats,
    read_csv_array,
)
from graphlearn.errors import ConfigError, DataFormatError, DatasetNotFoundError


def write_csv_gz(path: Path, rows, header: list[str] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(header)] if header else []
    lines += [
        ",".join(str(v) for v in (row if isinstance(row, (list, tuple)) else [row])) for row in rows
    ]
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(lines) + "\n")


def write_split(folder: Path, split_type: str, parts: dict[str, dict]) -> None:
    target = folder / "split" / split_type
    target.mkdir(parents=True, exist_ok=True)
    for name, part in parts.items():
        torch.save(part, target / f"{name}.pt")  # dicts of numpy arrays, as OGB ships them


def write_homogeneous(folder: Path, edges, num_nodes: int, extra_files=None) -> None:
    raw = folder / "raw"
    write_csv_gz(raw / "edge.csv.gz", edges)
    write_csv_gz(raw / "num-node-list.csv.gz", [num_nodes])
    write_csv_gz(raw / "num-edge-list.csv.gz", [len(edges)])
    for name, rows in (extra_files or {}).items():
        write_csv_gz(raw / f"{name}.csv.gz", rows)


I64 = np.int64
DDI_EDGES = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 5)]


def make_ddi(root: Path) -> Path:
    folder = root / "ogbl_ddi"
    write_homogeneous(folder, DDI_EDGES, 6)
    write_split(
        folder,
        "target",
        {
            "train": {"edge": np.array(DDI_EDGES, dtype=I64)},
            "valid": {
                "edge": np.array([[1, 3]], dtype=I64),
                "edge_neg": np.array([[0, 3], [2, 5]], dtype=I64),
            },
            "test": {
                "edge": np.array([[2, 4], [4, 5]], dtype=I64),
                "edge_neg": np.array([[1, 5]], dtype=I64),
            },
        },
    )
    return folder


def test_names():
    assert ogbl_spec("ddi").name == "ogbl-ddi"
    assert ogbl_spec("OGBL_COLLAB").name == "ogbl-collab"
    assert ogbl_spec("ogbl-biokg").hetero
    with pytest.raises(ConfigError, match="ogbl-citation2"):
        ogbl_spec("ogbl-citation")


def test_ddi_like(tmp_path):
    make_ddi(tmp_path)
    data = load_ogbl(tmp_path, "ogbl-ddi")
    assert data.num_nodes == 6 and data.name == "ogbl-ddi"
    one_way = torch.tensor(DDI_EDGES).t()
    # Undirected: the raw edges in file order, then their reverses.
    assert torch.equal(data.edge_index, torch.cat([one_way, one_way.flip(0)], dim=1))
    split = data.split_edge
    assert torch.equal(split["train"]["edge"], one_way.t())
    assert split["valid"]["edge_neg"].dtype == torch.long
    assert split["test"]["edge"].tolist() == [[2, 4], [4, 5]]
    assert ogbl_stats(data) == {
        "nodes": 6,
        "graph_edges": 10,
        "train": 5,
        "valid": 1,
        "test": 2,
        "valid_neg": 2,
        "test_neg": 1,
        "features": 0,
    }
    # The dataset folder itself is accepted as root too.
    assert torch.equal(load_ogbl(tmp_path / "ogbl_ddi", "ddi").edge_index, data.edge_index)


def test_collab_like_weights_years_and_features(tmp_path):
    folder = tmp_path / "ogbl_collab"
    edges = [(0, 1), (1, 2), (0, 1)]  # a repeated collaboration stays a parallel edge
    feats = [[0.5, -1.0], [1.25, 2.0], [0.0, 3.5]]
    write_homogeneous(
        folder,
        edges,
        3,
        {
            "node-feat": feats,
            "edge_weight": [2, 1, 3],
            "edge_year": [2010, 2011, 2012],
        },
    )
    split = {
        "edge": np.array([[0, 2]], dtype=I64),
        "weight": np.array([1], dtype=I64),
        "year": np.array([2019], dtype=I64),
    }
    write_split(
        folder,
        "time",
        {
            "train": {
                "edge": np.array(edges, dtype=I64),
                "weight": np.array([2, 1, 3], dtype=I64),
                "year": np.array([2010, 2011, 2012], dtype=I64),
            },
            "valid": {**split, "edge_neg": np.array([[1, 1]], dtype=I64)},
            "test": {**split, "edge_neg": np.array([[2, 2]], dtype=I64)},
        },
    )
    data = load_ogbl(tmp_path, "collab")
    assert data.x.dtype == torch.float32 and data.x.tolist() == feats
    assert data.edge_index.size(1) == 6
    assert data.edge_weight.tolist() == [2, 1, 3, 2, 1, 3]  # aligned with both halves
    assert data.edge_year.tolist() == [2010, 2011, 2012] * 2
    assert data.split_edge["valid"]["year"].tolist() == [2019]
    assert ogbl_stats(data)["features"] == 2


def test_ppa_like_integer_features_stay_integer(tmp_path):
    folder = tmp_path / "ogbl_ppa"
    write_homogeneous(folder, [(0, 1), (1, 2)], 3, {"node-feat": [[1, 0], [0, 1], [1, 0]]})
    pos = {"edge": np.array([[0, 2]], dtype=I64), "edge_neg": np.array([[0, 0]], dtype=I64)}
    write_split(
        folder,
        "throughput",
        {"train": {"edge": np.array([[0, 1], [1, 2]], dtype=I64)}, "valid": pos, "test": pos},
    )
    data = load_ogbl(tmp_path, "ppa")
    assert data.x.dtype == torch.int64 and data.x.tolist() == [[1, 0], [0, 1], [1, 0]]


def test_citation2_like_directed(tmp_path):
    folder = tmp_path / "ogbl_citation2"
    edges = [(1, 0), (2, 0), (2, 1), (3, 2)]
    write_homogeneous(
        folder,
        edges,
        4,
        {
            "node-feat": [[0.1], [0.2], [0.3], [0.4]],
            "node_year": [2000, 2001, 2002, 2003],
        },
    )
    evaluation = {
        "source_node": np.array([3], dtype=I64),
        "target_node": np.array([1], dtype=I64),
        "target_node_neg": np.array([[0, 2, 3]], dtype=I64),
    }
    write_split(
        folder,
        "time",
        {
            "train": {
                "source_node": np.array([1, 2, 2, 3], dtype=I64),
                "target_node": np.array([0, 0, 1, 2], dtype=I64),
            },
            "valid": evaluation,
            "test": evaluation,
        },
    )
    data = load_ogbl(tmp_path, "citation2")
    assert data.edge_index.tolist() == [[1, 2, 2, 3], [0, 0, 1, 2]]  # directed, as shipped
    assert data.node_year.tolist() == [2000, 2001, 2002, 2003]
    assert data.split_edge["valid"]["target_node_neg"].shape == (1, 3)
    stats = ogbl_stats(data)
    assert (stats["train"], stats["valid"], stats["valid_neg"]) == (4, 1, 3)


def test_wikikg2_like_inverse_relations(tmp_path):
    folder = tmp_path / "ogbl_wikikg2"
    edges = [(0, 1), (1, 2), (2, 3)]
    write_homogeneous(folder, edges, 4, {"edge_reltype": [0, 2, 1]})
    evaluation = {
        "head": np.array([0], dtype=I64),
        "relation": np.array([1], dtype=I64),
        "tail": np.array([3], dtype=I64),
        "head_neg": np.array([[1, 2]], dtype=I64),
        "tail_neg": np.array([[0, 2]], dtype=I64),
    }
    write_split(
        folder,
        "time",
        {
            "train": {
                "head": np.array([0, 1, 2], dtype=I64),
                "relation": np.array([0, 2, 1], dtype=I64),
                "tail": np.array([1, 2, 3], dtype=I64),
            },
            "valid": evaluation,
            "test": evaluation,
        },
    )
    data = load_ogbl(tmp_path, "wikikg2")
    assert data.num_relations == 6  # R = 3 relations plus their inverses
    assert data.edge_index.tolist() == [[0, 1, 2, 1, 2, 3], [1, 2, 3, 0, 1, 2]]
    assert data.edge_type.tolist() == [0, 2, 1, 3, 5, 4]
    assert ogbl_stats(data)["relations"] == 6
    assert ogbl_stats(data)["test_neg"] == 4


def make_biokg(root: Path, types_as_array: bool = False) -> Path:
    folder = root / "ogbl_biokg"
    raw = folder / "raw"
    # Sorted node types: disease (2 nodes, ids 0-1), drug (3, ids 2-4), protein (2, ids 5-6).
    write_csv_gz(raw / "num-node-dict.csv.gz", [[3, 2, 2]], header=["drug", "disease", "protein"])
    triplets = [
        ("drug", "drug-disease", "disease"),
        ("disease", "disease-protein", "protein"),
        ("drug", "drug-drug", "drug"),
    ]
    write_csv_gz(raw / "triplet-type-list.csv.gz", triplets)
    rel_edges = {
        triplets[0]: ([(0, 1), (2, 0)], 1),
        triplets[1]: ([(1, 1)], 0),
        triplets[2]: ([(0, 2)], 2),
    }
    for triplet, (edges, relation) in rel_edges.items():
        sub = raw / "relations" / "___".join(triplet)
        write_csv_gz(sub / "edge.csv.gz", edges)
        write_csv_gz(sub / "num-edge-list.csv.gz", [len(edges)])
        write_csv_gz(sub / "edge_reltype.csv.gz", [relation] * len(edges))

    def types(names):
        return np.array(names) if types_as_array else list(names)

    evaluation = {
        "head": np.array([1, 0], dtype=I64),
        "head_type": types(["drug", "disease"]),
        "relation": np.array([1, 0], dtype=I64),
        "tail": np.array([1, 0], dtype=I64),
        "tail_type": types(["disease", "protein"]),
        "head_neg": np.array([[0, 2], [1, 1]], dtype=I64),
        "tail_neg": np.array([[0, 0], [1, 0]], dtype=I64),
    }
    write_split(
        folder,
        "random",
        {
            "train": {
                "head": np.array([0, 2, 1, 0], dtype=I64),
                "head_type": types(["drug", "drug", "disease", "drug"]),
                "relation": np.array([1, 1, 0, 2], dtype=I64),
                "tail": np.array([1, 0, 1, 2], dtype=I64),
                "tail_type": types(["disease", "disease", "protein", "drug"]),
            },
            "valid": evaluation,
            "test": evaluation,
        },
    )
    return folder


@pytest.mark.parametrize("types_as_array", [False, True])
def test_biokg_like_global_ids(tmp_path, types_as_array):
    make_biokg(tmp_path, types_as_array)
    data = load_ogbl(tmp_path, "biokg")
    assert data.node_type_names == ["disease", "drug", "protein"]
    assert data.node_type_offset.tolist() == [0, 2, 5]
    assert data.num_nodes == 7
    assert data.node_type.tolist() == [0, 0, 1, 1, 1, 2, 2]
    # Triplets in sorted order: disease-protein, drug-disease, drug-drug; then inverses.
    forward = [[1, 2, 4, 2], [6, 1, 0, 4]]
    assert data.edge_index[:, :4].tolist() == forward
    assert data.edge_index[:, 4:].tolist() == forward[::-1]
    assert data.edge_type.tolist() == [0, 1, 1, 2, 3, 4, 4, 5]
    assert data.num_relations == 6
    valid = data.split_edge["valid"]
    assert valid["head"].tolist() == [3, 0]  # drug 1 -> 3, disease 0 -> 0
    assert valid["tail"].tolist() == [1, 5]
    assert valid["head_type"].tolist() == [1, 0]
    assert valid["head_neg"].tolist() == [[2, 4], [1, 1]]
    assert valid["tail_neg"].tolist() == [[0, 0], [6, 5]]
    assert data.split_edge["train"]["tail"].tolist() == [1, 0, 6, 4]


def test_biokg_as_a_kg_with_names_types_and_candidates(tmp_path):
    make_biokg(tmp_path)
    data = load_ogbl(tmp_path, "biokg")
    assert is_ogbl_kg(data)
    kg = ogbl_kg(data)
    assert kg.num_nodes == 7 and kg.num_relations == 6
    assert kg.train_triples.tolist() == [[2, 1, 1], [4, 1, 0], [1, 0, 6], [2, 2, 4]]
    assert kg.valid_triples.tolist() == [[3, 1, 1], [0, 0, 5]]
    assert torch.equal(kg.test_triples, kg.valid_triples)
    assert kg.filter_triples.size(0) == 6  # train 4 + the two evaluation triples
    assert kg.relation_names == ["disease-protein", "drug-disease", "drug-drug"]
    assert kg.entity_names == ["disease:0", "disease:1", "drug:0", "drug:1", "drug:2",
                               "protein:0", "protein:1"]
    assert kg.entity_ranges.tolist() == [[0, 2]] * 2 + [[2, 5]] * 3 + [[5, 7]] * 2
    assert kg.ogb_negatives["valid"]["head_neg"].tolist() == [[2, 4], [1, 1]]
    assert kg.ogb_negatives["test"]["tail_neg"].tolist() == [[0, 0], [6, 5]]
    assert torch.equal(kg.edge_index, data.edge_index)


def test_ogbl_kg_refuses_a_homogeneous_dataset(tmp_path):
    make_ddi(tmp_path)
    data = load_ogbl(tmp_path, "ogbl-ddi")
    assert not is_ogbl_kg(data)
    with pytest.raises(ConfigError, match="not an OGB knowledge graph"):
        ogbl_kg(data)


def test_split_dict_shortcut(tmp_path):
    folder = make_ddi(tmp_path)
    parts = {
        name: torch.load(folder / "split" / "target" / f"{name}.pt", weights_only=False)
        for name in ("train", "valid", "test")
    }
    for name in parts:
        (folder / "split" / "target" / f"{name}.pt").unlink()
    torch.save(parts, folder / "split" / "target" / "split_dict.pt")
    data = load_ogbl(tmp_path, "ddi")
    assert data.split_edge["test"]["edge"].tolist() == [[2, 4], [4, 5]]


def test_malformed_line_names_file_and_line(tmp_path):
    folder = make_ddi(tmp_path)
    path = folder / "raw" / "edge.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("0,1\n1,2\n2,x\n3,4\n0,5\n")
    with pytest.raises(DataFormatError, match=r"edge\.csv\.gz:3: .*integer") as info:
        load_ogbl(tmp_path, "ddi")
    assert info.value.line == 3
    with gzip.open(path, "wt") as handle:
        handle.write("0,1\n1,2\n2,3\n3,4,9\n0,5\n")
    with pytest.raises(DataFormatError, match=r"edge\.csv\.gz:4: expected 2"):
        load_ogbl(tmp_path, "ddi")


def test_inconsistent_counts_and_ids(tmp_path):
    folder = make_ddi(tmp_path)
    write_csv_gz(folder / "raw" / "num-edge-list.csv.gz", [4])
    with pytest.raises(DataFormatError, match="num-edge-list says 4"):
        load_ogbl(tmp_path, "ddi")
    write_csv_gz(folder / "raw" / "num-edge-list.csv.gz", [5])
    write_csv_gz(folder / "raw" / "num-node-list.csv.gz", [5])
    with pytest.raises(DataFormatError, match=r"edge\.csv\.gz:5: node id \[0, 5\] outside"):
        load_ogbl(tmp_path, "ddi")


def test_missing_files(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="ogbl_ddi"):
        load_ogbl(tmp_path, "ddi")
    folder = make_ddi(tmp_path)
    (folder / "split" / "target" / "valid.pt").unlink()
    with pytest.raises(DatasetNotFoundError, match="valid.pt"):
        load_ogbl(tmp_path, "ddi")
    (folder / "raw" / "num-node-list.csv.gz").unlink()
    with pytest.raises(DatasetNotFoundError, match="num-node-list"):
        load_ogbl(tmp_path, "ddi")


def test_split_missing_keys(tmp_path):
    folder = make_ddi(tmp_path)
    torch.save({"edge": np.array([[1, 3]], dtype=I64)}, folder / "split" / "target" / "valid.pt")
    with pytest.raises(DataFormatError, match="lacks keys \\['edge_neg'\\]"):
        load_ogbl(tmp_path, "ddi")


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_split_loader_refuses_arbitrary_pickles(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"edge": _Evil()}, path)
    with pytest.raises(DataFormatError, match="weights_only"):
        load_split_file(path)
    assert "pwned" not in capsys.readouterr().out
    objects = tmp_path / "objects.pt"
    torch.save({"edge": np.array([{"a": 1}], dtype=object)}, objects)
    with pytest.raises(DataFormatError):
        load_split_file(objects)
    with open(tmp_path / "list.pt", "wb") as handle:
        pickle.dump([1, 2], handle)
    with pytest.raises(DataFormatError):
        load_split_file(tmp_path / "list.pt")


def test_read_csv_array_types(tmp_path):
    path = tmp_path / "x.csv.gz"
    write_csv_gz(path, [[1, 2], [3, 4]])
    assert read_csv_array(path, integer=None).dtype == np.int64
    write_csv_gz(path, [[1, 2.5], [3, 4]])
    assert read_csv_array(path, integer=None).dtype == np.float32
    with pytest.raises(DataFormatError, match=r"x\.csv\.gz:1: .*integer"):
        read_csv_array(path, integer=True)
    write_csv_gz(path, [])
    assert read_csv_array(path, num_columns=2).shape == (0, 2)


@pytest.mark.realdata
def test_real_ogbl_ddi(shared_data):
    data = load_ogbl(shared_data / "ogb", "ogbl-ddi")
    stats = ogbl_stats(data)
    assert stats == {
        "nodes": 4267,
        "graph_edges": 2 * 1_067_911,
        "train": 1_067_911,
        "valid": 133_489,
        "test": 133_489,
        "valid_neg": 101_882,
        "test_neg": 95_599,
        "features": 0,
    }
    raw_edges = data.edge_index[:, :1_067_911]
    train = data.split_edge["train"]["edge"].t()

    def key(edges: torch.Tensor) -> torch.Tensor:
        return torch.sort(edges[0] * 4267 + edges[1]).values

    assert torch.equal(key(raw_edges), key(train))  # the train split is the raw edge list
    assert int(data.edge_index.max()) < 4267
