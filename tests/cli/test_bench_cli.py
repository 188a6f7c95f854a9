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


def test_bench_records_allocator_env_and_memory_probe_keeps_its_own(
        _persistent_extensions, tmp_path, monkeypatch):
    """Timing subprocesses inherit MALLOC_* (recorded in the JSON); the memory probe
    replaces them with its own settings, so its peaks stay comparable."""
    from graphlearn.ops import bench

    seen = []
    real_run = bench.subprocess.run

    def spy(cmd, **kwargs):
        job = json.loads(cmd[-1])
        seen.append((job.get("mode"), {k: v for k, v in kwargs["env"].items()
                                       if k.startswith("MALLOC_")}))
        return real_run(cmd, **kwargs)

    monkeypatch.setenv("MALLOC_MMAP_MAX_", "0")
    monkeypatch.setattr(bench.subprocess, "run", spy)
    out = tmp_path / "bench.json"
    assert main(["bench", "rspmm", "--cases", "tiny", "--reductions", "sum", "--repeats", "1",
                 "--backends", "cpu", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["allocator_env"] == {"MALLOC_MMAP_MAX_": "0"}
    memory = [env for mode, env in seen if mode == "memory"]
    timing = [env for mode, env in seen if mode != "memory"]
    assert memory and timing
    assert all(env == bench.MALLOC_ENV for env in memory)
    assert all(env == {"MALLOC_MMAP_MAX_": "0"} for env in timing)
