"""The restriction-map benchmark (experiments/benchmarks/sheaf_maps.py) on a tiny
synthetic graph: it runs, the JSON holds every family, an unknown family fails."""

from __future__ import annotations

import json

from tests.experiments.scripts import load_script


def load_bench():
    return load_script("benchmarks/sheaf_maps.py", "sheaf_maps_benchmark")


def test_benchmark_times_every_family_and_writes_json(tmp_path, capsys):
    bench = load_bench()
    out = tmp_path / "maps.json"
    families = ["diagonal", "orthogonal", "orthogonal@sequential", "general"]
    assert bench.main(["--synthetic", "--edges", "300", "--rounds", "1", "--threads", "1",
                       "--families", *families, "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert list(result["families"]) == families
    for row in result["families"].values():
        assert row["layer_fwd_bwd_s"] > 0 and len(row["rounds_layer_s"]) == 1
    assert result["graph"] == "random bipartite graph" and result["stalk_dim"] == 8
    table = capsys.readouterr().out
    assert "orthogonal@sequential" in table and "x diagonal" in table


def test_the_sequential_row_uses_the_reference_product():
    bench = load_bench()
    from graphlearn.nn.sheaf import SheafConv
    conv = bench.with_method(SheafConv(4, 2, "orthogonal"), "sequential")
    assert conv.restriction_maps.method == "sequential"
    assert bench.family_and_method("orthogonal@sequential") == ("orthogonal", "sequential")
    assert bench.family_and_method("general") == ("general", None)


def test_unknown_family_is_refused_with_the_valid_names(capsys):
    bench = load_bench()
    assert bench.main(["--synthetic", "--families", "cayley"]) == 2
    err = capsys.readouterr().err
    assert "unknown families: cayley" in err and "orthogonal@sequential" in err


def test_training_batches_on_real_ml100k(shared_data, tmp_path):
    bench = load_bench()
    out = tmp_path / "maps.json"
    assert bench.main(["--root", str(shared_data), "--rounds", "1", "--train-batches", "1",
                       "--threads", "1", "--families", "diagonal", "scalar",
                       "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["graph"] == "ML-100K training graph" and result["batches_per_epoch"] == 40
    for row in result["families"].values():
        assert row["train_batch_s"] > 0
        assert row["s_per_epoch_estimated"] == row["train_batch_s"] * 40
