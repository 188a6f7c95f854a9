from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from graphlearn.data.kg import (
    InductiveKG,
    entity_id,
    entity_ids,
    entity_name,
    inductive_stats,
    kg_stats,
    load_grail,
    load_kg,
    relation_id,
    relation_name,
)
from graphlearn.errors import DataFormatError, DatasetNotFoundError
from graphlearn.metrics.ranking import FilterIndex, evaluate_kg

TRAIN = [
    ("paris", "capital_of", "france"),
    ("berlin", "capital_of", "germany"),
    ("france", "borders", "germany"),
    ("paris", "located_in", "france"),
]
VALID = [("germany", "borders", "france")]
TEST = [("berlin", "located_in", "germany")]


def write_split(folder: Path, split: str, rows) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{split}.txt"
    lines = ["\t".join(row) if isinstance(row, tuple) else row for row in rows]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def write_kg(folder: Path, train=TRAIN, valid=VALID, test=TEST) -> Path:
    for split, rows in (("train", train), ("valid", valid), ("test", test)):
        write_split(folder, split, rows)
    return folder


def as_names(data, triples):
    return [
        (data.entity_names[h], data.relation_names[r], data.entity_names[t])
        for h, r, t in triples.tolist()
    ]


# ---------------------------------------------------------------------------
# load_kg on tiny folders


def test_vocabulary_in_order_of_first_appearance(tmp_path):
    data = load_kg(write_kg(tmp_path / "toy"))
    assert data.entity_names == ["paris", "france", "berlin", "germany"]
    assert data.relation_names == ["capital_of", "borders", "located_in"]
    assert data.num_nodes == 4
    assert data.num_relations == 6
    assert data.name == "toy"
    assert load_kg(tmp_path / "toy", name="custom").name == "custom"


def test_triples_round_trip_names(tmp_path):
    data = load_kg(write_kg(tmp_path / "toy"))
    assert as_names(data, data.train_triples) == TRAIN
    assert as_names(data, data.valid_triples) == VALID
    assert as_names(data, data.test_triples) == TEST
    for name in data.entity_names:
        assert entity_name(data, entity_id(data, name)) == name
    assert entity_ids(data, ["germany", "paris"]).tolist() == [3, 0]
    num_base = len(data.relation_names)
    for r in range(2 * num_base):
        assert relation_id(data, relation_name(data, r)) == r
    assert relation_name(data, 1 + num_base) == "borders^-1"
    assert relation_id(data, "borders^-1") == 1 + num_base


def test_unknown_names_fail_with_suggestion(tmp_path):
    data = load_kg(write_kg(tmp_path / "toy"))
    with pytest.raises(KeyError, match="did you mean 'france'"):
        entity_id(data, "frnace")
    with pytest.raises(KeyError, match="unknown relation"):
        relation_id(data, "flows_into^-1")
    with pytest.raises(IndexError):
        relation_name(data, 6)


def test_message_graph_has_inverse_edges(tmp_path):
    data = load_kg(write_kg(tmp_path / "toy"))
    num_base = len(data.relation_names)
    num_train = len(TRAIN)
    assert data.edge_index.shape == (2, 2 * num_train)
    assert data.edge_type.shape == (2 * num_train,)
    head, relation, tail = data.train_triples.t()
    assert data.edge_index[:, :num_train].tolist() == [head.tolist(), tail.tolist()]
    assert data.edge_index[:, num_train:].tolist() == [tail.tolist(), head.tolist()]
    assert data.edge_type[:num_train].tolist() == relation.tolist()
    assert data.edge_type[num_train:].tolist() == (relation + num_base).tolist()
    # only training triples enter the message graph
    edges = {(h, r, t) for (h, t), r in zip(data.edge_index.t().tolist(), data.edge_type.tolist())}
    for h, r, t in data.test_triples.tolist():
        assert (h, r, t) not in edges


def test_filter_is_all_splits_deduplicated(tmp_path):
    # a duplicated training fact stays a parallel edge; the filter holds it once
    data = load_kg(write_kg(tmp_path / "toy", train=TRAIN + [TRAIN[0]], test=TEST + [TRAIN[1]]))
    assert data.train_triples.size(0) == len(TRAIN) + 1
    assert data.edge_index.size(1) == 2 * (len(TRAIN) + 1)
    every = {
        tuple(t)
        for t in torch.cat([data.train_triples, data.valid_triples, data.test_triples]).tolist()
    }
    assert {tuple(t) for t in data.filter_triples.tolist()} == every
    assert data.filter_triples.size(0) == len(every) == len(TRAIN) + 2


def test_unseen_entities_are_counted_and_kept(tmp_path):
    folder = write_kg(
        tmp_path / "toy",
        valid=VALID + [("rome", "capital_of", "italy")],
        test=TEST + [("rome", "located_in", "italy"), ("paris", "borders", "spain")],
    )
    with pytest.warns(UserWarning, match=r"toy: .*training graph: valid 1, test 2"):
        data = load_kg(folder)
    assert data.unseen_entity_triples == {"valid": 1, "test": 2}
    assert data.valid_triples.size(0) == 2 and data.test_triples.size(0) == 3
    assert data.num_nodes == 7  # unseen entities are nodes without edges
    assert kg_stats(data)["unseen_entity_triples_test"] == 2


def test_no_warning_when_every_entity_is_seen(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = load_kg(write_kg(tmp_path / "toy"))
    assert data.unseen_entity_triples == {"valid": 0, "test": 0}


def test_stats(tmp_path):
    stats = kg_stats(load_kg(write_kg(tmp_path / "toy")))
    assert stats == {
        "entities": 4,
        "relations": 3,
        "relations_with_inverses": 6,
        "train_triples": 4,
        "valid_triples": 1,
        "test_triples": 1,
        "message_edges": 8,
        "filter_triples": 6,
        "unseen_entity_triples_valid": 0,
        "unseen_entity_triples_test": 0,
    }


# ---------------------------------------------------------------------------
# malformed folders


def test_wrong_column_count_names_file_and_line(tmp_path):
    folder = write_kg(tmp_path / "toy", train=TRAIN[:2] + ["paris\tcapital_of"] + TRAIN[2:])
    with pytest.raises(DataFormatError, match=r"train\.txt:3: expected 3 tab-separated") as info:
        load_kg(folder)
    assert info.value.line == 3


def test_empty_field_names_file_and_line(tmp_path):
    folder = write_kg(tmp_path / "toy", valid=VALID + ["germany\t\tfrance"])
    with pytest.raises(DataFormatError, match=r"valid\.txt:2: field 2 is empty"):
        load_kg(folder)


def test_space_separated_line_is_an_error(tmp_path):
    folder = write_kg(tmp_path / "toy", test=["berlin located_in germany"])
    with pytest.raises(DataFormatError, match=r"test\.txt:1"):
        load_kg(folder)


def test_missing_file_names_folder_and_file(tmp_path):
    folder = write_kg(tmp_path / "toy")
    (folder / "valid.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"toy lacks valid\.txt"):
        load_kg(folder)
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        load_kg(tmp_path / "absent")


# ---------------------------------------------------------------------------
# GraIL inductive splits


def write_grail(root: Path, name="toy_v1", ind_train=None, ind_valid=None, ind_test=None):
    write_kg(root / name)
    write_kg(
        root / f"{name}_ind",
        train=ind_train or [("lyon", "located_in", "spain"), ("madrid", "capital_of", "spain")],
        valid=ind_valid or [("madrid", "located_in", "spain")],
        test=ind_test or [("lyon", "capital_of", "spain"), ("oslo", "capital_of", "norway")],
    )
    return root


def test_grail_graphs_share_relations_not_entities(tmp_path):
    with pytest.warns(UserWarning, match=r"toy_v1_ind: .*inference graph: valid 0, test 1"):
        kg = load_grail(write_grail(tmp_path), "toy_v1")
    assert isinstance(kg, InductiveKG) and kg.name == "toy_v1"
    train, test = kg.train, kg.test
    assert test.relation_names == train.relation_names
    assert test.num_relations == train.num_relations == 6
    assert test.entity_names == ["lyon", "spain", "madrid", "oslo", "norway"]
    assert test.num_nodes == 5
    # relation ids come from the training graph's vocabulary
    assert test.train_triples[:, 1].tolist() == [
        train.relation_names.index("located_in"),
        train.relation_names.index("capital_of"),
    ]
    assert as_names(test, test.test_triples) == [
        ("lyon", "capital_of", "spain"),
        ("oslo", "capital_of", "norway"),
    ]
    assert test.unseen_entity_triples == {"valid": 0, "test": 1}
    # message graph = inference facts + inverses
    assert test.edge_index.size(1) == 4
    assert test.edge_type.tolist()[2:] == [r + 3 for r in test.edge_type.tolist()[:2]]


def test_grail_filters(tmp_path):
    with pytest.warns(UserWarning):
        kg = load_grail(write_grail(tmp_path), "toy_v1")
    # training graph: train + valid + test; inference graph: its facts only
    assert kg.train.filter_triples.size(0) == 6
    assert {tuple(t) for t in kg.test.filter_triples.tolist()} == {
        tuple(t) for t in kg.test.train_triples.tolist()
    }
    stats = inductive_stats(kg)
    assert stats["train"]["entities"] == 4 and stats["test"]["entities"] == 5
    assert stats["test"]["test_triples"] == 2


def test_grail_unknown_relation_names_file_and_line(tmp_path):
    root = write_grail(
        tmp_path,
        ind_test=[("lyon", "capital_of", "spain"), ("lyon", "capitl_of", "spain")],
    )
    with pytest.raises(DataFormatError, match=r"toy_v1_ind/test\.txt:2: relation 'capitl_of'"):
        load_grail(root, "toy_v1")


def test_grail_missing_folder(tmp_path):
    write_kg(tmp_path / "toy_v1")
    with pytest.raises(DatasetNotFoundError, match="toy_v1_ind"):
        load_grail(tmp_path, "toy_v1")


def test_oracle_scorer_ranks_first_through_loader_filter(tmp_path):
    # a scorer that knows every true fact gets MRR 1 with the loader's filter
    data = load_kg(write_kg(tmp_path / "toy"))
    index = FilterIndex.from_data(data)

    def score_fn(heads, relations):
        return index.mask(heads, relations).float()

    out = evaluate_kg(score_fn, data.test_triples, index, data.num_nodes, data.num_relations // 2)
    assert out["mrr"] == 1.0 and out["hits@1"] == 1.0


# ---------------------------------------------------------------------------
# real data


def count_lines(path: Path) -> int:
    with open(path, encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())


@pytest.mark.realdata
def test_nations(shared_data):
    folder = shared_data / "kg" / "nations"
    data = load_kg(folder)
    stats = kg_stats(data)
    assert stats["entities"] == 14
    assert stats["relations"] == 55
    assert stats["relations_with_inverses"] == 110
    assert (stats["train_triples"], stats["valid_triples"], stats["test_triples"]) == (
        1592,
        199,
        201,
    )
    for split in ("train", "valid", "test"):
        assert stats[f"{split}_triples"] == count_lines(folder / f"{split}.txt")
    assert stats["message_edges"] == 2 * 1592
    assert data.unseen_entity_triples == {"valid": 0, "test": 0}


@pytest.mark.realdata
def test_grail_fb237_v1(shared_data):
    root = shared_data / "kg" / "grail"
    kg = load_grail(root, "fb237_v1")
    for graph, folder in ((kg.train, root / "fb237_v1"), (kg.test, root / "fb237_v1_ind")):
        stats = kg_stats(graph)
        for split in ("train", "valid", "test"):
            assert stats[f"{split}_triples"] == count_lines(folder / f"{split}.txt")
        assert stats["message_edges"] == 2 * stats["train_triples"]
    assert kg.test.relation_names == kg.train.relation_names
    assert kg.test.num_relations == kg.train.num_relations == 2 * len(kg.train.relation_names)
    # the published GraIL statistics of fb237_v1
    assert kg.train.num_nodes == 1594 and len(kg.train.relation_names) == 180
    assert kg.test.num_nodes == 1093
    # the inference graph's entities are unseen: no name in common with the training graph
    assert not set(kg.test.entity_names) & set(kg.train.entity_names)
    assert kg.test.filter_triples.size(0) == count_lines(root / "fb237_v1_ind" / "train.txt")
