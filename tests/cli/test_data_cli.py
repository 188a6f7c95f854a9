import json
import shutil

import pytest

from graphlearn.cli import main


def _info(capsys, *args):
    assert main(["data", "info", *args, "--json", "--no-download"]) == 0
    return json.loads(capsys.readouterr().out)["statistics"]


def test_list_prints_every_card(capsys):
    assert main(["data", "list", "--json"]) == 0
    names = {card["name"] for card in json.loads(capsys.readouterr().out)}
    assert {"ml-100k", "nations", "fb237_v1", "cora", "ogbl-ddi"} <= names


def test_unknown_dataset_exits_2_with_one_line(capsys):
    assert main(["data", "info", "movielens-100"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown dataset" in err


def test_missing_dataset_without_download_exits_2(tmp_path, capsys):
    assert main(["data", "info", "nations", "--root", str(tmp_path), "--no-download"]) == 2
    assert "graphlearn data fetch nations" in capsys.readouterr().err


def test_malformed_triple_file_names_file_and_line(tmp_path, capsys):
    folder = tmp_path / "kg" / "nations"
    folder.mkdir(parents=True)
    (folder / "train.txt").write_text("a\tr\tb\nb\tr\n")
    (folder / "valid.txt").write_text("a\tr\tb\n")
    (folder / "test.txt").write_text("a\tr\tb\n")
    assert main(["data", "info", "nations", "--root", str(tmp_path), "--no-download"]) == 2
    err = capsys.readouterr().err
    assert "train.txt:2" in err and "found 2" in err


def test_malformed_rating_names_file_and_line(tmp_path, capsys):
    folder = tmp_path / "movielens" / "ml-100k"
    folder.mkdir(parents=True)
    (folder / "u.data").write_text("1\t2\t5\t881250949\n1\t3\tfive\t881250950\n")
    assert main(["data", "info", "ml-100k", "--root", str(tmp_path), "--no-download"]) == 2
    err = capsys.readouterr().err
    assert "u.data:2" in err and "rating" in err


@pytest.mark.realdata
def test_info_on_shared_data_matches_published_statistics(shared_data, capsys):
    root = str(shared_data)
    ml = _info(capsys, "ml-100k", "--root", root)
    assert (ml["users"], ml["items"], ml["interactions"]) == (943, 1682, 100000)
    nations = _info(capsys, "nations", "--root", root)
    assert (nations["entities"], nations["relations"], nations["relations_with_inverses"]) == (
        14, 55, 110)
    grail = _info(capsys, "fb237_v1", "--root", root)
    assert [grail["train"][f"{s}_triples"] for s in ("train", "valid", "test")] == [4245, 489, 492]
    assert [grail["test"][f"{s}_triples"] for s in ("train", "valid", "test")] == [1993, 206, 205]


@pytest.mark.realdata
def test_info_on_a_read_only_root_writes_nothing_there(shared_data, tmp_path, capsys):
    root = tmp_path / "root"
    shutil.copytree(shared_data / "kg" / "nations", root / "kg" / "nations")
    before = sorted(p.name for p in (root / "kg" / "nations").iterdir())
    _info(capsys, "nations", "--root", str(root))
    assert sorted(p.name for p in (root / "kg" / "nations").iterdir()) == before


def test_info_on_a_user_folder_with_format(tmp_path, capsys):
    (tmp_path / "train.txt").write_text("a\tr\tb\nb\tr\tc\n")
    (tmp_path / "valid.txt").write_text("a\tr\tc\n")
    (tmp_path / "test.txt").write_text("c\tr\ta\n")
    stats = _info_path(capsys, str(tmp_path), "kg_triples")
    assert (stats["entities"], stats["relations"], stats["message_edges"]) == (3, 1, 4)


def test_info_on_a_user_edge_list(tmp_path, capsys):
    path = tmp_path / "edges.csv"
    path.write_text("source,target\nx,y\ny,z\n")
    stats = _info_path(capsys, str(path), "edge_list")
    assert (stats["nodes"], stats["stored_edges"]) == (3, 4)


def test_user_format_typo_suggests(tmp_path, capsys):
    assert main(["data", "info", str(tmp_path), "--format", "edge_lst"]) == 2
    assert "did you mean 'edge_list'" in capsys.readouterr().err


def _info_path(capsys, path, fmt):
    assert main(["data", "info", path, "--format", fmt, "--json"]) == 0
    return json.loads(capsys.readouterr().out)["statistics"]
