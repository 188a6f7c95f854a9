import pytest

from graphlearn.data.fetch import sha256_of
from graphlearn.data.registry import (
    FORMATS,
    TASKS,
    ensure_files,
    get_card,
    list_datasets,
    parse_card,
)
from graphlearn.errors import ConfigError, DataFormatError, DatasetNotFoundError


def test_every_card_parses_and_names_a_known_format():
    cards = list_datasets()
    names = {c.name for c in cards}
    for required in ("nations", "kinships", "umls", "fb15k-237", "wn18rr", "fb237_v1",
                     "wn18rr_v1", "nell_v1", "ml-100k", "ml-1m", "cora", "citeseer", "pubmed",
                     "ogbl-ddi", "ogbl-collab", "ogbl-ppa", "ogbl-citation2", "ogbl-biokg",
                     "ogbl-wikikg2"):
        assert required in names
    for card in cards:
        assert card.task in TASKS and card.format in FORMATS
        assert card.files and card.sources and card.licence


def test_names_are_normalised_and_unknown_names_suggest():
    assert get_card("ML_100K").name == "ml-100k"
    with pytest.raises(ConfigError, match="did you mean 'nations'"):
        get_card("natons")


def test_card_with_unknown_key_names_file_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\ntitle: X\ntask: kg\nformat: kg_triples\npath: x\nlicence: l\n"
                    "fils: {}\n")
    with pytest.raises(DataFormatError, match=r"bad\.yaml.*'fils'.*did you mean 'files'"):
        parse_card(path)


def test_card_with_bad_task_lists_valid_ones(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\ntitle: X\ntask: kgc\nformat: kg_triples\npath: x\nlicence: l\n")
    with pytest.raises(DataFormatError, match="kg_inductive"):
        parse_card(path)


def test_missing_dataset_without_download_says_what_to_do(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="graphlearn data fetch nations"):
        ensure_files(get_card("nations"), root=tmp_path, download=False)


@pytest.mark.realdata
def test_shared_data_matches_the_card_checksums(shared_data):
    for name in ("nations", "fb237_v1", "ml-100k", "cora", "citeseer", "ogbl-ddi"):
        card = get_card(name)
        folder = card.folder(shared_data)
        for file, expected in card.files.items():
            if expected is not None:
                assert sha256_of(folder / file) == expected, (name, file)


@pytest.mark.network
def test_movielens_100k_mirror_fetch_verifies_checksums(tmp_path):
    """The PyPI mirror alone (the recbole==1.2.1 wheel) yields the verified files."""
    card = get_card("ml-100k")
    mirror = [s for s in card.sources if s.kind == "pypi_wheel"]
    from dataclasses import replace

    folder = ensure_files(replace(card, sources=mirror), root=tmp_path, log=lambda _: None)
    for file, expected in card.files.items():
        assert sha256_of(folder / file) == expected
