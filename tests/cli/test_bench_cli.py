import json

import pytest

from graphlearn.cli import main


@pytest.fixture
def _persistent_extensions(request, monkeypatch):
    """The CPU kernel build the ops tests keep in .pytest_cache (no second compile)."""
    folder = request.config.cache.mkdir("graphlearn_torch_extensions")
    monkeypatch.setenv("GRAPHLEARN_EXTENSIONS_DIR", str(folder))


def test_bench_rspmm_writes_json(_persistent_extensions, tmp_path, capsys):
    out = tmp_path / "bench.json"
    args = ["bench", "rspmm", "--cases", "tiny", "--reductions", "sum,pna", "--repeats", "1",
            "--backends", "reference,cpu", "--json", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "tiny" in printed and "pna / sum [tiny, mul, cpu]" in printed
    payload = json.loads(out.read_text())
    assert payload["device"] == "cpu"
    assert [(r["case"], r["reduce"]) for r in payload["results"]] == [("tiny", "sum"),
                                                                      ("tiny", "pna")]
    for row in payload["results"]:
        ref, cpu = row["backends"]["reference"], row["backends"]["cpu"]
        assert "error" not in ref and "error" not in cpu, row
        for res in (ref, cpu):
            assert res["forward_seconds"] > 0 and res["fwd_bwd_seconds"] > 0
            assert res["peak_memory_bytes"] > 0
        assert cpu["ratio_fwd_bwd_speedup"] == pytest.approx(
            ref["fwd_bwd_seconds"] / cpu["fwd_bwd_seconds"])
        assert cpu["ratio_peak_memory"] == pytest.approx(
            cpu["peak_memory_bytes"] / ref["peak_memory_bytes"])


def test_bench_unknown_case_exits_2(capsys):
    assert main(["bench", "rspmm", "--cases", "randm"]) == 2
    assert "unknown benchmark case 'randm'" in capsys.readouterr().err


def test_bench_cuda_without_a_device_exits_2(capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert main(["bench", "rspmm", "--cases", "tiny", "--device", "cuda"]) == 2
    assert "no CUDA device" in capsys.readouterr().err
