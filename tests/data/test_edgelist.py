from __future__ import annotations

import gzip

import pytest
import torch

from graphlearn.data.edgelist import load_edge_list
from graphlearn.errors import ConfigError, DataFormatError, DatasetNotFoundError


def test_csv_with_header_and_named_weight(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text("source,target,weight\nalice,bob,0.5\nbob, carol ,2\ncarol,carol,1\n")
    data = load_edge_list(path, weight_column="weight")
    assert data.node_names == ["alice", "bob", "carol"]
    assert data.num_nodes == 3
    # Undirected: file edges, then the reverses of the non-self-loop ones.
    assert data.edge_index.tolist() == [[0, 1, 2, 1, 2], [1, 2, 2, 0, 1]]
    assert data.edge_weight.tolist() == [0.5, 2.0, 1.0, 0.5, 2.0]


def test_tsv_directed_round_trips_names(tmp_path):
    lines = [("P2", "P1"), ("P1", "P3"), ("P3", "P2"), ("P2", "P1")]
    path = tmp_path / "g.tsv"
    path.write_text("".join(f"{u}\t{v}\n" for u, v in lines))
    data = load_edge_list(path, directed=True)
    assert data.node_names == ["P2", "P1", "P3"]  # order of first appearance
    names = data.node_names
    back = [(names[u], names[v]) for u, v in data.edge_index.t().tolist()]
    assert back == lines  # duplicates kept, ids map back to the file's names
    assert "edge_weight" not in data


def test_whitespace_comments_blank_lines_and_gzip(tmp_path):
    path = tmp_path / "g.edges.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("# SNAP-style comment\n\n1   2  \n2 3\n# another\n3\t1\n")
    data = load_edge_list(path, directed=True)
    assert data.node_names == ["1", "2", "3"]
    assert data.edge_index.tolist() == [[0, 1, 2], [1, 2, 0]]


def test_txt_is_tab_separated_and_whitespace_can_be_forced(tmp_path):
    path = tmp_path / "g.txt"
    path.write_text("a b\nb c\n")
    with pytest.raises(DataFormatError, match=r"g\.txt:1: .*tab"):
        load_edge_list(path)
    data = load_edge_list(path, delimiter="whitespace", directed=True)
    assert data.edge_index.tolist() == [[0, 1], [1, 2]]


def test_header_auto_detection(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text("src,dst\n0,1\n")
    assert load_edge_list(path).node_names == ["0", "1"]
    path.write_text("a,b,w\n0,1,3\n")  # non-numeric weight field: a header
    data = load_edge_list(path, weight_column=2, directed=True)
    assert data.node_names == ["0", "1"] and data.edge_weight.tolist() == [3.0]
    path.write_text("u,v\n0,1\n")  # not recognised: read as an edge
    assert load_edge_list(path).node_names == ["u", "v", "0", "1"]
    assert load_edge_list(path, header=True).node_names == ["0", "1"]
    path.write_text("source,target\n0,1\n")
    assert load_edge_list(path, header=False).node_names == ["source", "target", "0", "1"]


def test_malformed_lines_name_file_and_line(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text("a,b,1\nb,c,2\nc,d\n")
    with pytest.raises(DataFormatError, match=r"g\.csv:3: expected 3 comma-separated") as info:
        load_edge_list(path, weight_column=2)
    assert info.value.line == 3
    path.write_text("a,b,1\nb,c,heavy\n")
    with pytest.raises(DataFormatError, match=r"g\.csv:2: weight .*finite number"):
        load_edge_list(path, weight_column=2)
    path.write_text("a,b\n,c\n")
    with pytest.raises(DataFormatError, match=r"g\.csv:2: field 1 is empty"):
        load_edge_list(path)
    path.write_text("lonely\n")
    with pytest.raises(DataFormatError, match=r"g\.csv:1: expected at least 2"):
        load_edge_list(path)
    path.write_text("# only comments\n")
    with pytest.raises(DataFormatError, match="no edges"):
        load_edge_list(path)
    path.write_text("source,target\n")
    with pytest.raises(DataFormatError, match="no data lines"):
        load_edge_list(path)


def test_argument_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError):
        load_edge_list(tmp_path / "absent.csv")
    path = tmp_path / "g.csv"
    path.write_text("a,b,1\n")
    with pytest.raises(ConfigError, match="endpoint"):
        load_edge_list(path, weight_column=1)
    with pytest.raises(ConfigError, match="needs a header"):
        load_edge_list(path, header=False, weight_column="w")
    with pytest.raises(DataFormatError, match="no column 'w'"):
        load_edge_list(path, header=True, weight_column="w")
    with pytest.raises(DataFormatError, match="weight column 5 does not exist"):
        load_edge_list(path, weight_column=5)
    with pytest.raises(ConfigError, match="header"):
        load_edge_list(path, header="yes")


def test_feeds_the_link_split(tmp_path):
    from graphlearn.data.link_split import random_link_split

    path = tmp_path / "ring.csv"
    path.write_text("".join(f"n{i},n{(i + 1) % 12}\n" for i in range(12)))
    data = load_edge_list(path)
    assert data.edge_index.size(1) == 24
    train, valid, _ = random_link_split(data, 0.25, 0.25)
    assert train.edge_label_index.size(1) == 6
    assert bool((valid.edge_label[:3] == 1).all()) and torch.equal(
        valid.edge_index, train.edge_index
    )
