"""Interaction graph: construction, tables, implicit conversion, k-core, splits, stats."""

from __future__ import annotations

import gzip

import pytest
import torch
from torch_geometric.data import Data

from graphlearn.data.interactions import (
    InteractionSplit,
    UserItemCSR,
    check_interactions,
    compact,
    drop_duplicates,
    interaction_stats,
    k_core,
    load_atomic_inter,
    load_interaction_table,
    make_interactions,
    ratio_split_counts,
    select_interactions,
    split_interactions,
    split_random,
    split_temporal,
    to_implicit,
)
from graphlearn.errors import ConfigError, DataFormatError, GraphlearnError


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------ construction


def test_make_interactions_ids_in_order_of_first_appearance():
    data = make_interactions(["u9", "u2", "u9", "u5"], [7, 3, 3, 1], [5, 4, 3, 2],
                             [10, 20, 30, 40])
    check_interactions(data)
    assert data.user.tolist() == [0, 1, 0, 2]
    assert data.item.tolist() == [0, 1, 1, 2]
    assert data.user_names == ["u9", "u2", "u5"]
    assert data.item_names == ["7", "3", "1"]
    assert (data.num_users, data.num_items, data.num_nodes) == (3, 3, 6)
    assert data.rating.dtype == torch.float32 and data.rating.tolist() == [5, 4, 3, 2]
    assert data.timestamp.dtype == torch.long
    # names round-trip
    assert [data.user_names[u] for u in data.user] == ["u9", "u2", "u9", "u5"]


def test_make_interactions_defaults_and_fractional_timestamps():
    data = make_interactions(["a", "b"], ["x", "y"])
    assert data.rating.tolist() == [1.0, 1.0]
    assert "timestamp" not in data
    data = make_interactions(["a", "b"], ["x", "y"], timestamps=[1.5, 2.0])
    assert data.timestamp.dtype == torch.float64
    assert data.timestamp.tolist() == [1.5, 2.0]


def test_check_interactions_rejects_bad_data():
    data = make_interactions(["a", "b"], ["x", "y"])
    data.item = torch.tensor([0, 5])
    with pytest.raises(GraphlearnError, match="item ids"):
        check_interactions(data)
    with pytest.raises(GraphlearnError, match="missing"):
        check_interactions(Data(user=torch.tensor([0])))


# ------------------------------------------------------------------ atomic .inter


def test_atomic_inter_columns_located_by_name(tmp_path):
    path = write(tmp_path / "x.inter",
                 "timestamp:float\titem_id:token\textra:token\tuser_id:token\trating:float\n"
                 "100\ti1\tz\tu1\t4\n"
                 "50.0\ti2\tz\tu2\t3.5\n")
    data = load_atomic_inter(path)
    assert data.user_names == ["u1", "u2"] and data.item_names == ["i1", "i2"]
    assert data.rating.tolist() == [4.0, 3.5]
    assert data.timestamp.dtype == torch.long and data.timestamp.tolist() == [100, 50]


def test_atomic_inter_without_rating_and_timestamp(tmp_path):
    data = load_atomic_inter(write(tmp_path / "x.inter", "user_id:token\titem_id:token\n1\t2\n"))
    assert data.rating.tolist() == [1.0] and "timestamp" not in data


def test_atomic_inter_missing_column_names_columns_found(tmp_path):
    path = write(tmp_path / "x.inter", "user_id:token\trating:float\n1\t2\n")
    with pytest.raises(DataFormatError, match=r"x\.inter:1: .*item_id.*columns found: "
                                              r"user_id:token, rating:float"):
        load_atomic_inter(path)


HEADER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("1\t2\t3\t4\n1\t2\t3\n", 3, "expected 4 tab-separated fields, found 3"),
        ("1\t2\t3\t4\n\t2\t3\t4\n", 3, "field 1 is empty"),
        ("1\t2\tgood\t4\n", 2, "rating must be a finite number"),
        ("1\t2\t3\t4\n1\t2\t3\tyesterday\n", 3, "timestamp must be a finite number"),
        ("1\t2\tnan\t4\n", 2, "rating must be a finite number"),
    ],
)
def test_atomic_inter_malformed_lines(tmp_path, body, line, message):
    path = write(tmp_path / "bad.inter", HEADER + body)
    with pytest.raises(DataFormatError, match=rf"bad\.inter:{line}: {message}") as info:
        load_atomic_inter(path)
    assert info.value.line == line and info.value.path == str(path)


def test_atomic_inter_empty_body(tmp_path):
    with pytest.raises(DataFormatError, match="no interactions"):
        load_atomic_inter(write(tmp_path / "e.inter", HEADER))


# ------------------------------------------------------------------ user tables


def test_table_csv_by_name_with_quotes_bom_and_gzip(tmp_path):
    text = '\ufeffUserId,Item,Score,When\n"a,1",x,4,10\nb,"y ""2""",5,11.5\n\nb,x,1,12\n'
    path = write(tmp_path / "t.csv", text)
    data = load_interaction_table(path, user="userid", item="Item", rating="Score",
                                  timestamp="when")
    assert data.user_names == ["a,1", "b"]
    assert data.item_names == ["x", 'y "2"']
    assert data.rating.tolist() == [4, 5, 1]
    assert data.timestamp.dtype == torch.float64
    gz = tmp_path / "t.csv.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as handle:
        handle.write(text)
    again = load_interaction_table(gz, user="UserId", item="Item")
    assert again.user.tolist() == data.user.tolist() and again.rating.tolist() == [1, 1, 1]
    assert "timestamp" not in again


def test_table_tsv_without_header_by_index(tmp_path):
    path = write(tmp_path / "t.tsv", "x\tu1\t3\nx\tu2\t4\ny\tu1\t5\n")
    data = load_interaction_table(path, user=1, item=0, rating=2, header=False)
    assert data.user_names == ["u1", "u2"] and data.item_names == ["x", "y"]
    with pytest.raises(ConfigError, match="column index"):
        load_interaction_table(path, user="u", item=0, header=False)


def test_table_recbole_style_header_and_explicit_delimiter(tmp_path):
    path = write(tmp_path / "t.log", "user_id:token|item_id:token\n1|2\n")
    data = load_interaction_table(path, delimiter="|")
    assert data.user_names == ["1"] and data.item_names == ["2"]
    with pytest.raises(ConfigError, match="cannot infer the delimiter"):
        load_interaction_table(path)


def test_table_unknown_column_lists_columns(tmp_path):
    path = write(tmp_path / "t.csv", "user,item_id\n1,2\n")
    with pytest.raises(DataFormatError, match=r"t\.csv:1: no user column 'usr'; did you mean "
                                              r"'user'\?; columns found: user, item_id"):
        load_interaction_table(path, user="usr")


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("1,2,3\n1,2\n", 3, "expected 3 fields, found 2"),
        ("1,2,3\n1, ,3\n", 3, "item field .column 2. is empty"),
        ("1,2,x\n", 2, "rating must be a finite number, got 'x'"),
    ],
)
def test_table_malformed_lines(tmp_path, body, line, message):
    path = write(tmp_path / "t.csv", "u,i,r\n" + body)
    with pytest.raises(DataFormatError, match=rf"t\.csv:{line}: {message}"):
        load_interaction_table(path, user="u", item="i", rating="r")


def test_table_not_utf8(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"u,i\n1,\xff\xfe\n")
    with pytest.raises(DataFormatError, match="not UTF-8"):
        load_interaction_table(path, user="u", item="i")


# ------------------------------------------------------------------ filters


def test_to_implicit_threshold_dedup_and_compact():
    data = make_interactions(["a", "a", "b", "c", "a"], ["x", "y", "x", "z", "x"],
                             [5, 2, 4, 1, 3], [30, 10, 20, 5, 5])
    implicit = to_implicit(data)
    # duplicate (a, x): the earliest row (timestamp 5, the last line) is kept
    assert implicit.user.numel() == 4
    assert implicit.timestamp.tolist() == [10, 20, 5, 5]
    assert implicit.rating.tolist() == [1, 1, 1, 1]
    high = to_implicit(data, threshold=4)
    assert [high.user_names[u] for u in high.user] == ["a", "b"]
    assert high.user_names == ["a", "b"] and high.item_names == ["x"]
    assert (high.num_users, high.num_items) == (2, 1)


def test_drop_duplicates_without_timestamp_keeps_first_row():
    data = make_interactions(["a", "a", "a"], ["x", "x", "y"], [1, 2, 3])
    assert drop_duplicates(data).rating.tolist() == [1, 3]


def test_k_core_iterates_to_fixed_point_and_keeps_names():
    # u3 has 1 interaction -> removed; then item i2 drops to 1 -> removed;
    # then u2 drops to 1 -> removed.  The rest is a 2-core.
    users = ["u0", "u0", "u1", "u1", "u2", "u2", "u3"]
    items = ["i0", "i1", "i0", "i1", "i1", "i2", "i2"]
    core = k_core(make_interactions(users, items), user_k=2, item_k=2)
    assert core.user_names == ["u0", "u1"] and core.item_names == ["i0", "i1"]
    assert core.user.tolist() == [0, 0, 1, 1] and core.item.tolist() == [0, 1, 0, 1]
    assert k_core(make_interactions(users, items), 0, 0).user.numel() == 7
    with pytest.raises(ConfigError):
        k_core(core, -1, 0)


def test_select_and_compact():
    data = make_interactions(["a", "b", "c"], ["x", "y", "z"], timestamps=[1, 2, 3])
    sub = select_interactions(data, torch.tensor([False, True, True]))
    assert sub.num_users == 3 and sub.user.tolist() == [1, 2]
    small = compact(sub)
    assert small.user_names == ["b", "c"] and small.user.tolist() == [0, 1]
    assert small.item_names == ["y", "z"] and small.timestamp.tolist() == [2, 3]


def test_interaction_stats():
    data = make_interactions(["a", "a", "b"], ["x", "y", "x"], [1, 5, 3], [3, 1, 2])
    stats = interaction_stats(data)
    assert stats["users"] == 2 and stats["items"] == 2 and stats["interactions"] == 3
    assert stats["density"] == pytest.approx(0.75)
    assert (stats["rating_min"], stats["rating_max"]) == (1.0, 5.0)
    assert stats["interactions_per_user_max"] == 2 and stats["distinct_pairs"] == 3
    assert (stats["timestamp_min"], stats["timestamp_max"]) == (1, 3)


# ------------------------------------------------------------------ user-item sets


def test_user_item_csr():
    csr = UserItemCSR.from_pairs(torch.tensor([2, 0, 2, 2]), torch.tensor([3, 1, 0, 3]), 4, 5)
    assert csr.indptr.tolist() == [0, 1, 1, 3, 3]
    assert csr.row(2).tolist() == [0, 3] and csr.counts().tolist() == [1, 0, 2, 0]
    position, items = csr.batch(torch.tensor([2, 1, 0]))
    assert position.tolist() == [0, 0, 2] and items.tolist() == [0, 3, 1]
    dense = csr.to_dense(torch.tensor([0, 2]))
    assert dense.tolist() == [[False, True, False, False, False],
                              [True, False, False, True, False]]
    other = UserItemCSR.from_pairs(torch.tensor([1, 2]), torch.tensor([4, 0]), 4, 5)
    assert csr.union(other).pairs().tolist() == [[0, 1, 2, 2], [1, 4, 0, 3]]


# ------------------------------------------------------------------ ratio splits


def restated_rule(total: int, ratios: list[float]) -> list[int]:
    """RecBole 1.2.1's per-group counts, written out from its documented behaviour."""
    shares = [r / sum(ratios) for r in ratios]
    counts = [int(s * total) for s in shares]
    counts[0] = total - sum(counts[1:])
    for back in range(1, len(shares)):
        if counts[0] <= 1:
            break
        if 0 < shares[-back] * total < 1:
            counts[-back] += 1
            counts[0] -= 1
    return counts


@pytest.mark.parametrize("ratios", [(0.8, 0.1, 0.1), (0.7, 0.2, 0.1), (8, 1, 1), (0.8, 0.2),
                                    (0.6, 0.0, 0.4)])
def test_ratio_split_counts_matches_rule(ratios):
    for total in range(250):
        assert ratio_split_counts(total, ratios) == restated_rule(total, list(ratios)), total


def test_ratio_split_counts_small_groups():
    rule = (0.8, 0.1, 0.1)
    assert [ratio_split_counts(n, rule) for n in (1, 2, 3, 4, 9, 10, 19, 20)] == [
        [1, 0, 0], [1, 0, 1], [1, 1, 1], [2, 1, 1], [7, 1, 1], [8, 1, 1], [17, 1, 1],
        [16, 2, 2]]
    with pytest.raises(ConfigError):
        ratio_split_counts(5, (0.0, 0.5, 0.5))
    with pytest.raises(ConfigError):
        ratio_split_counts(5, (0.5, 0.2, 0.2, 0.1))


def toy(num_users: int = 5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    users, items, times = [], [], []
    for u in range(num_users):
        count = 1 + 3 * u
        chosen = torch.randperm(40, generator=g)[:count].tolist()
        users += [f"u{u}"] * count
        items += [f"i{i}" for i in chosen]
        times += torch.randint(0, 5, (count,), generator=g).tolist()  # many ties
    order = torch.randperm(len(users), generator=g).tolist()  # interleave users
    return make_interactions([users[j] for j in order], [items[j] for j in order],
                             timestamps=[times[j] for j in order])


def assert_partition(split: InteractionSplit) -> None:
    everything = torch.cat([split.train_index, split.valid_index, split.test_index])
    assert everything.sort().values.tolist() == list(range(split.data.user.numel()))
    for name in ("train", "valid", "test"):
        index = split.index(name)
        assert index.tolist() == sorted(index.tolist())


def test_split_random_partitions_with_recbole_counts():
    data = toy()
    split = split_random(data, (0.8, 0.1, 0.1), seed=7)
    assert_partition(split)
    sizes = torch.bincount(data.user, minlength=data.num_users)
    for u in range(data.num_users):
        got = [int((data.user[split.index(s)] == u).sum()) for s in ("train", "valid", "test")]
        assert got == ratio_split_counts(int(sizes[u]), (0.8, 0.1, 0.1))
    assert split.strategy == "random(0.8, 0.1, 0.1; seed=7)"


def test_split_random_seeded():
    data = toy()
    a, b = split_random(data, seed=3), split_random(data, seed=3)
    assert torch.equal(a.test_index, b.test_index) and torch.equal(a.train_index, b.train_index)
    c = split_random(data, seed=4)
    assert not torch.equal(a.test_index, c.test_index)


def test_split_random_two_way():
    data = toy()
    split = split_random(data, (0.8, 0.2), seed=1)
    assert_partition(split)
    assert split.valid_index.numel() == 0
    sizes = torch.bincount(data.user, minlength=data.num_users)
    for u in range(data.num_users):
        assert int((data.user[split.test_index] == u).sum()) == \
            ratio_split_counts(int(sizes[u]), (0.8, 0.2))[1]
    assert split.seen("test").nnz == split.items("train").nnz


def test_split_registry():
    data = toy()
    assert torch.equal(split_interactions(data, "Random", seed=5).test_index,
                       split_random(data, seed=5).test_index)
    with pytest.raises(ConfigError, match="did you mean 'temporal'"):
        split_interactions(data, "temporl")


def test_split_views():
    data = toy()
    split = split_random(data, seed=0)
    train, valid, test = (split.items(s) for s in ("train", "valid", "test"))
    assert split.seen("valid").pairs().tolist() == train.pairs().tolist()
    assert split.seen("test").pairs().tolist() == train.union(valid).pairs().tolist()
    assert split.seen("train").nnz == 0
    pairs = split.pairs("test")
    assert pairs.shape == (2, split.test_index.numel())
    assert split.subset("test").item.tolist() == pairs[1].tolist()
    assert test.nnz == split.test_index.numel()  # the toy data has no duplicates
    assert sum(split.sizes().values()) == data.user.numel()
    with pytest.raises(ConfigError, match="unknown split"):
        split.index("validation")


# ------------------------------------------------------------------ temporal splits


def test_split_temporal_leave_last_out_with_ties_by_file_order():
    data = make_interactions(
        ["a", "a", "a", "a", "b", "b", "c", "a"],
        ["1", "2", "3", "4", "1", "2", "1", "5"],
        timestamps=[5, 9, 9, 1, 3, 2, 7, 0],
    )
    split = split_temporal(data)
    assert_partition(split)
    # user a, ordered by (time, row): rows 7(0) 3(1) 0(5) 1(9) 2(9): 1 -> valid, 2 -> test
    # user b (2 interactions): row 5 (t=2) train, row 4 (t=3) test, no valid
    # user c (1 interaction): train
    assert split.test_index.tolist() == [2, 4]
    assert split.valid_index.tolist() == [1]
    assert split.train_index.tolist() == [0, 3, 5, 6, 7]
    only_test = split_temporal(data, valid=False)
    assert only_test.valid_index.numel() == 0 and only_test.test_index.tolist() == [2, 4]
    assert split_interactions(data, "temporal").test_index.tolist() == [2, 4]


def test_split_temporal_needs_timestamps():
    with pytest.raises(GraphlearnError, match="timestamp"):
        split_temporal(make_interactions(["a"], ["b"]))


# ------------------------------------------------------------------ real data


@pytest.mark.realdata
def test_real_ml100k_random_split(shared_data):
    from graphlearn.data.movielens import load_movielens

    data = to_implicit(load_movielens(shared_data / "movielens/ml-100k"))
    assert (data.num_users, data.num_items, data.user.numel()) == (943, 1682, 100_000)
    split = split_random(data, (0.8, 0.1, 0.1), seed=2020)
    assert_partition(split)
    sizes = torch.bincount(data.user, minlength=data.num_users).tolist()
    expected = [restated_rule(n, [0.8, 0.1, 0.1]) for n in sizes]
    for part, name in enumerate(("train", "valid", "test")):
        got = torch.bincount(data.user[split.index(name)], minlength=data.num_users).tolist()
        assert got == [e[part] for e in expected], name
    assert split.sizes() == {"train": 80_808, "valid": 9_596, "test": 9_596}
    assert split.items("test").nnz == 9_596
    assert int((split.items("test").counts() > 0).sum()) == 943
