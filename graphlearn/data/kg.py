"""Knowledge-graph triple folders: transductive splits and GraIL inductive splits.

A KG folder holds ``train.txt``, ``valid.txt`` and ``test.txt`` with one
``head<TAB>relation<TAB>tail`` triple per line, the layout of FB15k-237, WN18RR,
Nations, Kinships, UMLS and the GraIL inductive benchmarks. Names are strings;
ids are given in order of first appearance over train, valid, test (head before
tail within a line), so they are the same on every load.

The message graph follows the NBFNet protocol (DESIGN.md §2): every training
triple ``(h, r, t)`` is an edge ``h -> t`` of type ``r`` plus an inverse edge
``t -> h`` of type ``r + R``, where ``R`` is the number of original relations.
A head query ``(?, r, t)`` is then answered as the tail query ``(t, r + R, ?)``.

Duplicate lines are kept as they are in the file (as NBFNet-PyG does): the
benchmark files have none, and a user's duplicated fact stays a parallel edge.
The filter sets used for ranking are deduplicated.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch_geometric.data import Data

from graphlearn.data._io import read_rows
from graphlearn.errors import DataFormatError, DatasetNotFoundError
from graphlearn.registry import did_you_mean

#: The split files of a KG folder, in the order ids are assigned.
SPLITS: tuple[str, ...] = ("train", "valid", "test")

#: Suffix that names the inverse of a relation: ``relation_name(data, r + R)``.
INVERSE_SUFFIX = "^-1"


class _Vocabulary:
    """Names to consecutive ids, in order of first appearance."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.ids: dict[str, int] = {}
        self.names: list[str] = []
        for name in names:
            self.add(name)

    def add(self, name: str) -> int:
        index = self.ids.get(name)
        if index is None:
            index = self.ids[name] = len(self.names)
            self.names.append(name)
        return index

    def __len__(self) -> int:
        return len(self.names)


def _split_paths(folder: Path) -> dict[str, Path]:
    """The three split files of ``folder``; missing ones raise :class:`DatasetNotFoundError`."""
    if not folder.is_dir():
        raise DatasetNotFoundError(
            f"KG folder {folder} does not exist (expected train.txt, valid.txt, test.txt in it)"
        )
    paths = {split: folder / f"{split}.txt" for split in SPLITS}
    missing = [path.name for path in paths.values() if not path.is_file()]
    if missing:
        raise DatasetNotFoundError(
            f"KG folder {folder} lacks {', '.join(missing)} "
            "(expected train.txt, valid.txt, test.txt with head<TAB>relation<TAB>tail lines)"
        )
    return paths


def _read_triples(
    path: Path,
    entities: _Vocabulary,
    relations: _Vocabulary,
    frozen_relations: str | None = None,
) -> Tensor:
    """Read ``path`` into a ``[n, 3]`` LongTensor of (head, relation, tail) ids.

    New entity names are added to ``entities``. New relation names are added to
    ``relations`` unless ``frozen_relations`` names the graph whose vocabulary
    they must come from, in which case an unknown relation is a
    :class:`DataFormatError` on its line.
    """
    rows: list[tuple[int, int, int]] = []
    for line, fields in read_rows(path, 3, delimiter="\t"):
        head, relation, tail = (field.strip() for field in fields)
        if frozen_relations is None:
            rel = relations.add(relation)
        else:
            rel = relations.ids.get(relation, -1)
            if rel < 0:
                raise DataFormatError(
                    path,
                    line,
                    f"relation {relation!r} does not occur in {frozen_relations}"
                    f"{did_you_mean(relation, relations.names)}; an inductive split must "
                    "reuse the training graph's relations",
                )
        rows.append((entities.add(head), rel, entities.add(tail)))
    if not rows:
        return torch.empty(0, 3, dtype=torch.long)
    return torch.tensor(rows, dtype=torch.long)


def _unseen_entity_triples(known: Tensor, triples: Tensor) -> int:
    """Number of triples with a head or tail outside the boolean node mask ``known``."""
    if triples.numel() == 0:
        return 0
    return int((~known[triples[:, 0]] | ~known[triples[:, 2]]).sum())


def _build_data(
    name: str,
    triples: dict[str, Tensor],
    filter_triples: Tensor,
    entity_names: list[str],
    relation_names: list[str],
    graph: str,
) -> Data:
    """Assemble the documented :class:`Data` from id triples (see :func:`load_kg`)."""
    num_entities = len(entity_names)
    num_base = len(relation_names)
    head, relation, tail = triples["train"].t()
    # message graph: h -> t with type r, and the inverse t -> h with type r + R
    edge_index = torch.stack([torch.cat([head, tail]), torch.cat([tail, head])])  # (2, 2E)
    edge_type = torch.cat([relation, relation + num_base])  # (2E,)

    known = torch.zeros(num_entities, dtype=torch.bool)
    known[head] = True
    known[tail] = True
    unseen = {split: _unseen_entity_triples(known, triples[split]) for split in ("valid", "test")}
    if any(unseen.values()):
        warnings.warn(
            f"{name}: triples with an entity absent from the {graph}: "
            f"valid {unseen['valid']}, test {unseen['test']} (kept; recorded in "
            "data.unseen_entity_triples)",
            stacklevel=3,
        )

    return Data(
        edge_index=edge_index,
        edge_type=edge_type,
        num_nodes=num_entities,
        num_relations=2 * num_base,
        train_triples=triples["train"],
        valid_triples=triples["valid"],
        test_triples=triples["test"],
        filter_triples=torch.unique(filter_triples, dim=0),
        entity_names=entity_names,
        relation_names=relation_names,
        unseen_entity_triples=unseen,
        name=name,
    )


def load_kg(folder: str | os.PathLike, name: str | None = None) -> Data:
    r"""Load a transductive KG folder (``train.txt``, ``valid.txt``, ``test.txt``).

    Args:
        folder: the folder holding the three split files, one
            ``head<TAB>relation<TAB>tail`` triple per line.
        name: the dataset name recorded on the data and used in messages
            (default: the folder's name).

    Returns:
        A :class:`~torch_geometric.data.Data` with ``R`` original relations and
        fields:

        * ``edge_index`` ``[2, 2E]``: the message graph, the ``E`` training
          triples ``h -> t`` followed by their inverses ``t -> h``.
        * ``edge_type`` ``[2E]``: ``r`` for a forward edge, ``r + R`` for its inverse.
        * ``num_nodes``: the number of entities (over all splits).
        * ``num_relations``: ``2R`` (original relations and their inverses).
        * ``train_triples``, ``valid_triples``, ``test_triples`` ``[n, 3]``:
          ``(head, relation, tail)`` ids, relation in ``[0, R)``, in file order.
        * ``filter_triples`` ``[M, 3]``: every known true triple (train, valid
          and test, deduplicated), for filtered ranking
          (:func:`graphlearn.metrics.ranking.build_filter_index`).
        * ``entity_names``, ``relation_names``: ``list[str]`` indexed by id
          (``relation_names`` has length ``R``; see :func:`relation_name`).
        * ``unseen_entity_triples``: ``{"valid": n, "test": m}``, the triples of
          each split with an entity that has no edge in the training graph.
          They are kept and a warning gives the counts.
        * ``name``: the dataset name.

    Raises:
        DatasetNotFoundError: the folder or one of its split files is missing.
        DataFormatError: a line without exactly three non-empty tab-separated
            fields, naming the file and line.
    """
    folder = Path(folder)
    paths = _split_paths(folder)
    entities, relations = _Vocabulary(), _Vocabulary()
    triples = {split: _read_triples(paths[split], entities, relations) for split in SPLITS}
    return _build_data(
        name or folder.name,
        triples,
        torch.cat([triples[split] for split in SPLITS]),
        entities.names,
        relations.names,
        graph="training graph",
    )


@dataclass
class InductiveKG:
    """A GraIL inductive benchmark: a training graph and an unseen-entity inference graph.

    Both graphs are :class:`Data` with the fields of :func:`load_kg` and share
    one relation vocabulary (same ``relation_names`` and ``num_relations``);
    their entity vocabularies are disjoint by construction.

    Args:
        name: the benchmark name, e.g. ``"fb237_v1"``.
        train: the training graph (``name/``): message graph from its
            ``train.txt``; ``valid_triples``/``test_triples`` from its
            ``valid.txt``/``test.txt``; filter = its train+valid+test.
        test: the inference graph (``name_ind/``): message graph from
            ``name_ind/train.txt`` (also its ``train_triples``, which are facts,
            not training queries); ``valid_triples``/``test_triples`` from
            ``name_ind/valid.txt``/``test.txt``; filter = the inference graph's
            facts only, as in NBFNet-PyG.
    """

    name: str
    train: Data
    test: Data


def load_grail(root: str | os.PathLike, name: str) -> InductiveKG:
    """Load a GraIL inductive split, e.g. ``fb237_v1``, ``WN18RR_v2`` or ``nell_v3``.

    ``root`` holds ``name/`` (the training graph) and ``name_ind/`` (the
    inference graph with its queries), each with ``train.txt``, ``valid.txt``
    and ``test.txt``. See :class:`InductiveKG` for what each graph holds.

    Ids of the training graph follow :func:`load_kg`. The inference graph has
    its own entity ids (first appearance over ``name_ind/train.txt``,
    ``valid.txt``, ``test.txt``) and reuses the training graph's relation ids.
    Query triples whose entity is absent from the inference graph are counted
    in ``test.unseen_entity_triples`` and reported with a warning.

    Raises:
        DatasetNotFoundError: a folder or split file is missing.
        DataFormatError: a malformed line, or a relation in ``name_ind/`` that
            the training graph does not have (naming file and line).
    """
    root = Path(root)
    train_folder, test_folder = root / name, root / f"{name}_ind"
    for folder in (train_folder, test_folder):
        if not folder.is_dir():
            raise DatasetNotFoundError(
                f"GraIL split {name!r}: folder {folder} does not exist "
                f"(expected {name}/ and {name}_ind/ under {root})"
            )
    train = load_kg(train_folder, name)

    paths = _split_paths(test_folder)
    entities = _Vocabulary()
    relations = _Vocabulary(train.relation_names)
    triples = {
        split: _read_triples(paths[split], entities, relations, f"the training graph {name}")
        for split in SPLITS
    }
    test = _build_data(
        f"{name}_ind",
        triples,
        triples["train"],  # inductive filter: the inference graph's facts (DESIGN.md §2)
        entities.names,
        list(train.relation_names),
        graph="inference graph",
    )
    return InductiveKG(name=name, train=train, test=test)


# ---------------------------------------------------------------------------
# Names and ids


def _num_base_relations(data: Data) -> int:
    return len(data.relation_names)


def entity_id(data: Data, name: str) -> int:
    """The id of the entity called ``name`` (``KeyError`` naming the nearest match)."""
    try:
        return data.entity_names.index(name)
    except ValueError:
        raise KeyError(
            f"unknown entity {name!r} in {data.name}{did_you_mean(name, data.entity_names)}"
        ) from None


def entity_ids(data: Data, names: Sequence[str]) -> Tensor:
    """Ids of many entity names at once, as a LongTensor."""
    lookup = {entity: index for index, entity in enumerate(data.entity_names)}
    ids = []
    for name in names:
        if name not in lookup:
            entity_id(data, name)  # raises with a suggestion
        ids.append(lookup[name])
    return torch.tensor(ids, dtype=torch.long)


def entity_name(data: Data, index: int) -> str:
    """The name of entity ``index``."""
    if not 0 <= index < len(data.entity_names):
        raise IndexError(f"entity id {index} out of range [0, {len(data.entity_names)})")
    return data.entity_names[index]


def relation_id(data: Data, name: str) -> int:
    """The id of relation ``name``; ``name^-1`` gives its inverse ``r + R``."""
    names = data.relation_names
    if name in names:
        return names.index(name)
    if name.endswith(INVERSE_SUFFIX) and name[: -len(INVERSE_SUFFIX)] in names:
        return names.index(name[: -len(INVERSE_SUFFIX)]) + _num_base_relations(data)
    raise KeyError(f"unknown relation {name!r} in {data.name}{did_you_mean(name, names)}")


def relation_name(data: Data, index: int) -> str:
    """The name of relation ``index`` in ``[0, 2R)``: ``name`` or ``name^-1`` for ``r >= R``."""
    num_base = _num_base_relations(data)
    if not 0 <= index < 2 * num_base:
        raise IndexError(f"relation id {index} out of range [0, {2 * num_base})")
    if index < num_base:
        return data.relation_names[index]
    return data.relation_names[index - num_base] + INVERSE_SUFFIX


# ---------------------------------------------------------------------------
# Statistics


def kg_stats(data: Data) -> dict[str, int]:
    """Counts describing a KG :class:`Data` from :func:`load_kg` (for ``graphlearn data info``).

    Returns:
        ``entities``, ``relations`` (original ``R``), ``relations_with_inverses``
        (``2R``), ``train_triples``, ``valid_triples``, ``test_triples``,
        ``message_edges`` (``2E``), ``filter_triples``,
        ``unseen_entity_triples_valid`` and ``unseen_entity_triples_test``.
    """
    unseen = getattr(data, "unseen_entity_triples", None) or {}
    return {
        "entities": int(data.num_nodes),
        "relations": _num_base_relations(data),
        "relations_with_inverses": int(data.num_relations),
        "train_triples": int(data.train_triples.size(0)),
        "valid_triples": int(data.valid_triples.size(0)),
        "test_triples": int(data.test_triples.size(0)),
        "message_edges": int(data.edge_index.size(1)),
        "filter_triples": int(data.filter_triples.size(0)),
        "unseen_entity_triples_valid": int(unseen.get("valid", 0)),
        "unseen_entity_triples_test": int(unseen.get("test", 0)),
    }


def inductive_stats(kg: InductiveKG) -> dict[str, dict[str, int]]:
    """:func:`kg_stats` of both graphs: ``{"train": {...}, "test": {...}}``."""
    return {"train": kg_stats(kg.train), "test": kg_stats(kg.test)}
