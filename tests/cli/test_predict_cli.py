"""``graphlearn predict`` and :func:`graphlearn.tasks.kg.predict` on a tiny KG run."""

import json

import pytest
import torch
from torch import nn

from graphlearn.cli import main
from graphlearn.data.kg import load_kg
from graphlearn.tasks.kg import predict
from tests.cli.test_train_cli import one_line_error, train_tiny_rec_run

N = 12
NAME = "tiny-kg"
#: Relation ``next``: c<i> -> c<i+1>; ``opposite``: c<i> -> c<i+6> (mod 12).
TRIPLES = [(f"c{i}", "next", f"c{(i + 1) % N}") for i in range(N)] \
    + [(f"c{i}", "opposite", f"c{(i + 6) % N}") for i in range(N)]
VALID = [("c3", "next", "c4"), ("c2", "opposite", "c8")]
TEST = [("c7", "next", "c8"), ("c9", "opposite", "c3")]


def write_tiny_kg(base):
    """The tiny KG on disk under ``base/data/tiny-kg`` with a card in ``base/cards``."""
    cards, root = base / "cards", base / "data"
    folder = root / NAME
    folder.mkdir(parents=True)
    cards.mkdir(parents=True, exist_ok=True)
    held_out = set(VALID) | set(TEST)
    splits = {"train": [t for t in TRIPLES if t not in held_out], "valid": VALID, "test": TEST}
    for split, triples in splits.items():
        (folder / f"{split}.txt").write_text("".join("\t".join(t) + "\n" for t in triples))
    (cards / f"{NAME}.yaml").write_text(
        f"name: {NAME}\ntitle: Tiny KG\ntask: kg\nformat: kg_triples\npath: {NAME}\n"
        f"licence: test data\n")
    return cards, root


@pytest.fixture(scope="module")
def kg_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("predict")
    cards, root = write_tiny_kg(base)
    config = base / "kg.yaml"
    config.write_text(
        f"task: kg\n"
        f"data: {{name: {NAME}, root: {root}}}\n"
        f"model: {{name: distmult, params: {{dim: 16}}}}\n"
        f"train: {{epochs: 3, batch_size: 8, lr: 0.1, optimizer: adagrad, num_negative: 0, "
        f"metric: mrr, patience: null, seed: 0}}\n")
    out = base / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRAPHLEARN_DATASETS", str(cards))
        assert main(["train", str(config), "--out", str(out), "--quiet"]) == 0
    return cards, out


@pytest.fixture
def run_dir(kg_run, monkeypatch, capsys):
    cards, out = kg_run
    monkeypatch.setenv("GRAPHLEARN_DATASETS", str(cards))
    capsys.readouterr()
    return out


def predict_json(capsys, argv):
    assert main(["predict", *argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_predict_tails_excludes_every_known_answer(run_dir, capsys):
    result = predict_json(capsys, [str(run_dir), "--head", "c3", "--relation", "next",
                                   "--k", "20"])
    assert result["predict"] == "tail" and result["exclude_known"] is True
    names = [a["entity"] for a in result["answers"]]
    assert len(names) == N - 1 and "c4" not in names  # (c3, next, c4) is a validation triple
    assert [a["rank"] for a in result["answers"]] == list(range(1, N))
    scores = [a["score"] for a in result["answers"]]
    assert scores == sorted(scores, reverse=True)

    kept = predict_json(capsys, [str(run_dir), "--head", "c3", "--relation", "next",
                                 "--k", "20", "--include-known"])
    assert len(kept["answers"]) == N and "c4" in [a["entity"] for a in kept["answers"]]


def test_predict_heads_and_k(run_dir, capsys):
    result = predict_json(capsys, [str(run_dir), "--tail", "c1", "--relation", "next",
                                   "--k", "3"])
    assert result["predict"] == "head"
    names = [a["entity"] for a in result["answers"]]
    assert len(names) == 3 and "c0" not in names and all(n.startswith("c") for n in names)
    # an inverse relation by name: (c1, next^-1, ?) is the same head query
    inverse = predict_json(capsys, [str(run_dir), "--head", "c1", "--relation", "next^-1",
                                    "--k", "3"])
    assert inverse["answers"] == result["answers"]


def test_predict_table(run_dir, capsys):
    assert main(["predict", str(run_dir), "--head", "c0", "--relation", "opposite",
                 "--k", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["rank", "entity", "score"] and len(lines) == 2 + 4
    assert [line.split()[0] for line in lines[2:]] == ["1", "2", "3", "4"]
    assert "c6" not in {line.split()[1] for line in lines[2:]}


def test_predict_errors(run_dir, capsys):
    one_line_error(capsys, ["predict", str(run_dir), "--head", "c33", "--relation", "next"],
                   "unknown entity 'c33'", "did you mean")
    one_line_error(capsys, ["predict", str(run_dir), "--tail", "c1", "--relation", "nxt"],
                   "unknown relation 'nxt'", "did you mean 'next'")
    with pytest.raises(SystemExit) as exit_:
        main(["predict", str(run_dir), "--head", "c1", "--tail", "c2", "--relation", "next"])
    assert exit_.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["predict", str(run_dir), "--relation", "next"])
    capsys.readouterr()


def test_predict_rejects_a_run_of_another_task(tmp_path, monkeypatch, capsys):
    out = train_tiny_rec_run(tmp_path, monkeypatch, capsys)
    one_line_error(capsys, ["predict", str(out), "--head", "u0", "--relation", "r"],
                   "task 'kg'", "'recommendation'")


class _FixedScores(nn.Module):
    """Scores every tail query with the same fixed vector."""

    def __init__(self, scores):
        super().__init__()
        self.scores = nn.Parameter(torch.tensor(scores))

    def score_all_tails(self, head, relation):
        return self.scores.expand(head.numel(), -1)


def test_python_api_orders_by_score_then_id(tmp_path):
    _, root = write_tiny_kg(tmp_path)
    data = load_kg(root / NAME, NAME)
    scores = [0.0] * N
    scores[data.entity_names.index("c5")] = 2.0
    scores[data.entity_names.index("c1")] = 3.0  # known: (c0, next, c1)
    scores[data.entity_names.index("c9")] = 1.0
    scores[data.entity_names.index("c2")] = 1.0
    model = _FixedScores(scores)
    top = predict(model, data, head="c0", relation="next", k=4)
    tied = sorted(["c2", "c9"], key=data.entity_names.index)
    zeros = [name for name in data.entity_names if name not in {"c5", "c1", "c2", "c9"}]
    assert [name for name, _ in top] == ["c5", *tied, zeros[0]]  # ties: lower id first
    assert [score for _, score in top][:3] == [2.0, 1.0, 1.0]
    assert predict(model, data, head="c0", relation="next", k=1, exclude_known=False) \
        == [("c1", 3.0)]
    with pytest.raises(ValueError):
        predict(model, data, relation="next", k=1)
    with pytest.raises(KeyError, match="did you mean"):
        predict(model, data, tail="c0", relation="nexxt")
