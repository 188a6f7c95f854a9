"""``graphlearn explain`` on tiny NBFNet runs (transductive and inductive KGs)."""

import json

import pytest

from graphlearn.cli import main
from tests.cli.test_train_cli import one_line_error

#: People born in cities located in countries; nationality follows birth place.
#: p<i> -born_in-> city<i % 2> -located_in-> land<i % 2>, p<i> -nationality-> land<i % 2>
PEOPLE = 4


def family(person, city, land):
    """The triples of the tiny world with these entity name prefixes."""
    triples = [(f"{city}{j}", "located_in", f"{land}{j}") for j in range(2)]
    for i in range(PEOPLE):
        triples += [(f"{person}{i}", "born_in", f"{city}{i % 2}"),
                    (f"{person}{i}", "nationality", f"{land}{i % 2}")]
    return triples


def write_split(folder, train, valid, test):
    folder.mkdir(parents=True)
    for split, triples in (("train", train), ("valid", valid), ("test", test)):
        (folder / f"{split}.txt").write_text("".join("\t".join(t) + "\n" for t in triples))


def write_world(base):
    """A transductive KG ``world`` and an inductive GraIL pair ``grailw`` (cards + data)."""
    cards, root = base / "cards", base / "data"
    cards.mkdir(parents=True)
    triples = family("p", "city", "land")
    valid, test = [("p1", "nationality", "land1")], [("p0", "nationality", "land0")]
    write_split(root / "world", [t for t in triples if t not in valid + test], valid, test)
    (cards / "world.yaml").write_text("name: world\ntitle: Tiny world\ntask: kg\n"
                                      "format: kg_triples\npath: world\nlicence: test data\n")
    # inductive: the inference graph has its own people, towns and countries
    write_split(root / "grail" / "grailw", [t for t in triples if t not in valid + test],
                valid, test)
    unseen = family("q", "town", "country")
    query = ("q0", "nationality", "country0")
    write_split(root / "grail" / "grailw_ind", [t for t in unseen if t != query], [], [query])
    (cards / "grailw.yaml").write_text(
        "name: grailw\ntitle: Tiny inductive world\ntask: kg_inductive\nformat: grail\n"
        "path: grail\noptions:\n  name: grailw\nlicence: test data\n")
    return cards, root


def train_run(base, cards, root, name, model):
    config = base / f"{name}-{model}.yaml"
    params = ("{input_dim: 8, hidden_dims: [8, 8, 8], aggregate: sum, backend: reference}"
              if model == "nbfnet" else "{dim: 8}")
    config.write_text(
        f"task: kg\n"
        f"data: {{name: {name}, root: {root}}}\n"
        f"model: {{name: {model}, params: {params}}}\n"
        f"train: {{epochs: 1, batch_size: 8, lr: 0.01, optimizer: adam, num_negative: 2, "
        f"adversarial_temperature: 0.5, metric: mrr, patience: null, seed: 0}}\n")
    out = base / f"run-{name}-{model}"
    assert main(["train", str(config), "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("explain")
    cards, root = write_world(base)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRAPHLEARN_DATASETS", str(cards))
        return cards, {"world": train_run(base, cards, root, "world", "nbfnet"),
                       "grailw": train_run(base, cards, root, "grailw", "nbfnet")}


@pytest.fixture
def run_dirs(runs, monkeypatch, capsys):
    cards, out = runs
    monkeypatch.setenv("GRAPHLEARN_DATASETS", str(cards))
    capsys.readouterr()
    return out


def explain_json(capsys, argv):
    assert main(["explain", *argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_explain_table_lists_the_birth_place_path(run_dirs, capsys):
    assert main(["explain", str(run_dirs["world"]), "--head", "p0", "--relation",
                 "nationality", "--tail", "land0", "--k", "50"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "query: p0 -[nationality]-> land0  (graph world)"
    assert lines[1].startswith("score: ") and "removed" not in out  # a test triple
    assert lines[3].split() == ["rank", "importance", "layers", "path"]
    assert "p0 -[born_in]-> city0 -[located_in]-> land0" in out
    # the other walks within 3 layers go through a compatriot: p0 -> city0 -> p2 -> land0
    assert "p0 -[born_in]-> city0 -[born_in^-1]-> p2 -[nationality]-> land0" in out


def test_explain_json_and_a_known_fact(run_dirs, capsys):
    result = explain_json(capsys, [str(run_dirs["world"]), "--head", "p2", "--relation",
                                   "nationality", "--tail", "land0", "--k", "3"])
    assert result["query"] == {"head": "p2", "relation": "nationality", "tail": "land0"}
    assert result["removed_edges"] == 2  # the fact and its inverse edge
    paths = result["paths"]
    assert [p["rank"] for p in paths] == list(range(1, len(paths) + 1))
    assert all(p["path"].startswith("p2 -[") and p["path"].endswith("]-> land0") for p in paths)
    assert "p2 -[nationality]-> land0" not in [p["path"] for p in paths]
    # without the fact, the birth place is the only way from p2 to land0 within 3 layers
    assert len(paths) == 1
    edges = paths[0]["edges"]
    assert [(e["head"], e["relation"], e["tail"]) for e in edges] == [
        ("p2", "born_in", "city0"), ("city0", "located_in", "land0")]
    assert 1 <= edges[0]["layer"] < edges[1]["layer"] <= 3
    importance = [p["importance"] for p in paths]
    assert importance == sorted(importance, reverse=True)
    kept = explain_json(capsys, [str(run_dirs["world"]), "--head", "p2", "--relation",
                                 "nationality", "--tail", "land0", "--k", "50",
                                 "--keep-query-edge"])
    assert kept["removed_edges"] == 0
    assert "p2 -[nationality]-> land0" in [p["path"] for p in kept["paths"]]


def test_explain_inductive_graphs(run_dirs, capsys):
    run = str(run_dirs["grailw"])
    test = explain_json(capsys, [run, "--head", "q0", "--relation", "nationality",
                                 "--tail", "country0", "--k", "50"])
    assert test["graph"] == "grailw_ind"
    assert "q0 -[born_in]-> town0 -[located_in]-> country0" in [p["path"] for p in test["paths"]]
    train = explain_json(capsys, [run, "--head", "p0", "--relation", "nationality",
                                  "--tail", "land0", "--graph", "train", "--k", "50"])
    assert train["graph"] == "grailw"
    assert "p0 -[born_in]-> city0 -[located_in]-> land0" in [p["path"] for p in train["paths"]]
    # training-graph names do not exist in the inference graph
    one_line_error(capsys, ["explain", run, "--head", "p0", "--relation", "nationality",
                            "--tail", "land0"], "unknown entity 'p0'", "grailw_ind")


def test_explain_errors(run_dirs, capsys):
    run = str(run_dirs["world"])
    one_line_error(capsys, ["explain", run, "--head", "p9", "--relation", "nationality",
                            "--tail", "land0"], "unknown entity 'p9'", "did you mean")
    one_line_error(capsys, ["explain", run, "--head", "p0", "--relation", "nationalty",
                            "--tail", "land0"], "unknown relation 'nationalty'",
                   "did you mean 'nationality'")
    with pytest.raises(SystemExit) as exit_:
        main(["explain", run, "--head", "p0", "--relation", "nationality"])
    assert exit_.value.code == 2
    capsys.readouterr()


def test_explain_rejects_a_model_without_graph(tmp_path, monkeypatch, capsys):
    cards, root = write_world(tmp_path)
    monkeypatch.setenv("GRAPHLEARN_DATASETS", str(cards))
    out = train_run(tmp_path, cards, root, "world", "distmult")
    capsys.readouterr()
    one_line_error(capsys, ["explain", str(out), "--head", "p0", "--relation", "nationality",
                            "--tail", "land0"], "graph model", "'distmult'")


def test_predict_with_nbfnet_on_both_inductive_graphs(run_dirs, capsys):
    run = str(run_dirs["grailw"])
    assert main(["predict", run, "--head", "q0", "--relation", "nationality", "--k", "50",
                 "--format", "json", "--include-known"]) == 0
    answers = json.loads(capsys.readouterr().out)["answers"]
    names = [a["entity"] for a in answers]
    # the inference graph's entities only, every one of them ranked, best first
    assert all(name[0] in "qtc" for name in names) and "country0" in names
    assert len(names) == len(set(names)) == 4 + 2 + 2
    scores = [a["score"] for a in answers]
    assert scores == sorted(scores, reverse=True)
    assert main(["predict", run, "--head", "p0", "--relation", "nationality", "--graph",
                 "train", "--format", "json"]) == 0
    answers = json.loads(capsys.readouterr().out)["answers"]
    # training-graph entities; land0 (a test triple of the training graph) is known: excluded
    assert all(a["entity"][0] in "pcl" for a in answers)
    assert "land0" not in [a["entity"] for a in answers]
