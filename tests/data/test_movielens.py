"""MovieLens loaders: RecBole atomic files, u.data, ratings.dat, ratings.csv."""

from __future__ import annotations

import hashlib

import pytest
import torch

from graphlearn.data.interactions import interaction_stats
from graphlearn.data.movielens import find_movielens_file, load_movielens
from graphlearn.errors import DataFormatError, DatasetNotFoundError

INTER = ("user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
         "196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t302\t5\t881250950\n")
U_DATA = "196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t302\t5\t881250950\n"
RATINGS_DAT = "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n"
RATINGS_CSV = "userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n2,31,3.0,1260759179\n"


def folder_with(tmp_path, name, text, sub="ml"):
    folder = tmp_path / sub
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.mark.parametrize(("name", "text"), [("ml-100k.inter", INTER), ("u.data", U_DATA)])
def test_100k_formats_agree(tmp_path, name, text):
    data = load_movielens(folder_with(tmp_path, name, text))
    assert data.user_names == ["196", "186"] and data.item_names == ["242", "302"]
    assert data.user.tolist() == [0, 1, 0] and data.item.tolist() == [0, 1, 1]
    assert data.rating.tolist() == [3, 3, 5]
    assert data.timestamp.dtype == torch.long
    assert data.timestamp.tolist() == [881250949, 891717742, 881250950]


def test_ratings_dat(tmp_path):
    data = load_movielens(folder_with(tmp_path, "ratings.dat", RATINGS_DAT))
    assert data.user_names == ["1", "2"] and data.item_names == ["1193", "661"]
    assert data.rating.tolist() == [5, 3, 4] and data.timestamp.tolist()[0] == 978300760


def test_ratings_csv(tmp_path):
    data = load_movielens(folder_with(tmp_path, "ratings.csv", RATINGS_CSV))
    assert data.num_users == 2 and data.num_items == 1
    assert data.rating.tolist() == [2.5, 3.0]


def test_detection_prefers_inter_and_variant(tmp_path):
    folder = folder_with(tmp_path, "u.data", U_DATA)
    (folder / "ml-100k.inter").write_text(INTER.replace("\t3\t", "\t1\t"), encoding="utf-8")
    assert find_movielens_file(folder).name == "ml-100k.inter"
    assert load_movielens(folder).rating.tolist() == [1, 1, 5]
    (folder / "ml-1m.inter").write_text(INTER, encoding="utf-8")
    with pytest.raises(DatasetNotFoundError, match="several RecBole files.*variant"):
        load_movielens(folder)
    assert find_movielens_file(folder, "ml-1m").name == "ml-1m.inter"
    # a variant without its .inter falls back to the GroupLens file
    assert find_movielens_file(folder, "ml-10m").name == "u.data"


def test_variant_subfolder_and_missing(tmp_path):
    folder_with(tmp_path, "ratings.dat", RATINGS_DAT, sub="ml-1m")
    assert find_movielens_file(tmp_path, "ml-1m") == tmp_path / "ml-1m" / "ratings.dat"
    with pytest.raises(DatasetNotFoundError, match="no MovieLens ratings file"):
        load_movielens(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("name", "text", "line", "message"),
    [
        ("u.data", "1\t2\t3\t4\n1\t2\t3\n", 2, "expected 4 tab-separated fields, found 3"),
        ("u.data", "1\t2\t3\t4\n1\t\t3\t4\n", 2, "field 2 is empty"),
        ("u.data", "1\t2\tthree\t4\n", 1, "rating must be a finite number"),
        ("u.data", "1\t2\t3\t4\n\n1\t2\t3\tnoon\n", 3, "timestamp must be a finite number"),
        ("ratings.dat", "1::2::3::4\n1::2::3::4::5\n", 2,
         "expected 4 '::'-separated fields, found 5"),
        ("ratings.dat", "1::2::x::4\n", 1, "rating must be a finite number"),
        ("ratings.csv", "userId,movieId,rating,timestamp\n1,2,3\n", 2, "expected 4 fields"),
        ("ml-100k.inter", INTER + "1\t2\t3\t4\t5\n", 5, "expected 4 tab-separated fields"),
        ("ml-100k.inter", INTER + "1\t2\t\t4\n", 5, "field 3 is empty"),
        ("ml-100k.inter", INTER + "1\t2\t3\t4.5e\n", 5, "timestamp must be a finite number"),
    ],
)
def test_malformed_inputs_name_file_and_line(tmp_path, name, text, line, message):
    folder = folder_with(tmp_path, name, text)
    with pytest.raises(DataFormatError, match=rf"{name}:{line}: {message}") as info:
        load_movielens(folder)
    assert info.value.path == str(folder / name) and info.value.line == line


def test_inter_header_missing_column(tmp_path):
    folder = folder_with(tmp_path, "ml-1m.inter", "user_id:token\tmovie:token\n1\t2\n")
    with pytest.raises(DataFormatError, match=r"ml-1m\.inter:1: .*item_id.*columns found: "
                                              r"user_id:token, movie:token"):
        load_movielens(folder)


@pytest.mark.realdata
def test_real_ml100k(shared_data):
    folder = shared_data / "movielens/ml-100k"
    digest = hashlib.sha256((folder / "ml-100k.inter").read_bytes()).hexdigest()
    assert digest == "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff"
    data = load_movielens(folder)
    stats = interaction_stats(data)
    assert (stats["users"], stats["items"], stats["interactions"]) == (943, 1682, 100_000)
    assert stats["distinct_pairs"] == 100_000
    assert (stats["rating_min"], stats["rating_max"]) == (1.0, 5.0)
    assert stats["interactions_per_user_min"] == 20
    assert data.user_names[int(data.user[0])] == "196"
    assert data.item_names[int(data.item[0])] == "242"
    assert data.timestamp.dtype == torch.long and int(data.timestamp[0]) == 881250949
    assert sorted(int(n) for n in data.user_names) == list(range(1, 944))
