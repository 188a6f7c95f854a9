"""Smoke tests of experiments/benchmarks/nbfnet_checkpoint.py: one tiny step per setting.

They check the harness (same batches both ways, fields, ratios), not the figures:
those live in the benchmark's own output.
"""

from __future__ import annotations

import json

import pytest

from tests.experiments.scripts import load_script


@pytest.fixture(scope="module")
def bench():
    return load_script("benchmarks/nbfnet_checkpoint.py", "nbfnet_checkpoint_benchmark")


@pytest.mark.realdata
@pytest.mark.slow
def test_one_step_each_way_on_cora(bench, shared_data, tmp_path, capsys):
    out = tmp_path / "ckpt.json"
    assert bench.main(["--root", str(shared_data), "--batch-size", "2", "--steps", "1",
                       "--warmup", "0", "--threads", "1", "--out", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert payload["benchmark"] == "nbfnet_checkpoint" and payload["machine"]["torch"]
    assert payload["settings"]["config"] == "experiments/configs/link/cora/nbfnet.yaml"
    plain, kept = payload["results"]["plain"], payload["results"]["checkpoint_layers"]
    for res in (plain, kept):
        assert "error" not in res, res
        assert res["batch_size"] == 2 and res["dataset"] == "cora" and len(res["seconds"]) == 1
        assert isinstance(res["peak_rss_growth_bytes"], int)
    # the same parameters and batches both ways: checkpointing changes no number
    assert kept["losses"] == pytest.approx(plain["losses"], abs=1e-6)
    assert kept["loss_max_abs_diff_vs_first"] < 1e-6
    assert plain["memory_ratio"] == 1.0 and kept["time_ratio"] == pytest.approx(
        kept["s_per_step_mean"] / plain["s_per_step_mean"])
    text = capsys.readouterr().out
    assert "checkpoint_layers" in text and "x memory" in text


@pytest.mark.parametrize("argv, message", [
    (["--steps", "0"], "--steps must be at least 1"),
    (["--batch-size", "0"], "--batch-size must be at least 1"),
])
def test_bad_arguments(bench, capsys, argv, message):
    with pytest.raises(SystemExit):
        bench.parse_args(argv)
    assert message in capsys.readouterr().err
