"""Smoke tests of experiments/benchmarks/nbfnet.py: tiny settings, JSON fields present.

They check the harness runs and reports positive figures, not the figures themselves
(performance claims live in the benchmark's own output).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from graphlearn.typing import with_torch_scatter

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "benchmarks" / "nbfnet.py"


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--threads", "1", *args],
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _check_provenance(payload: dict) -> None:
    assert payload["benchmark"] == "nbfnet"
    assert "experiments/benchmarks/nbfnet.py" in payload["command"]
    assert payload["machine"]["cpu_count"] >= 1 and payload["machine"]["torch"]
    assert payload["settings"]["threads"] == 1
    assert "torch_scatter" in payload["settings"]["backends"]


@pytest.mark.slow
def test_memory_part_two_edge_counts(cpu_kernel, tmp_path):
    out = tmp_path / "nbfnet.json"
    proc = _run("--part", "memory", "--backends", "reference", "cpu", "torch_scatter",
                "--edges", "400", "800", "--nodes", "60", "--queries", "2", "--negatives", "3",
                "--out", str(out))
    payload = json.loads(out.read_text())
    _check_provenance(payload)
    assert "speed" not in payload
    memory = payload["memory"]
    assert memory["settings"]["edges"] == [400, 800]
    backends = ["reference", "cpu"] + (["torch_scatter"] if with_torch_scatter() else [])
    points = {(p["backend"], p["num_edges"]): p for p in memory["points"]}
    assert set(points) == {(b, e) for b in backends for e in (400, 800)}
    for point in points.values():
        assert "error" not in point, point
        # On graphs this small the growth is a few pages either way: the kernel updates
        # the high-water mark lazily (RSS released by MADV_DONTNEED never reaches it),
        # so VmHWM read right after the reset can exceed a later reading. Real sizes
        # are checked by the benchmark's own runs; here only the field's type.
        assert isinstance(point["peak_rss_growth_bytes"], int)
        assert point["message_tensor_bytes"] == point["num_edges"] * 2 * point["dim"] * 4
        # the ratio's definition, since the growth itself can be a few pages negative
        reference = points[("reference", point["num_edges"])]["peak_rss_growth_bytes"]
        assert point["ratio_vs_reference"] == pytest.approx(
            point["peak_rss_growth_bytes"] / max(reference, 1))
    if not with_torch_scatter():
        assert "not installed" in memory["skipped"]["torch_scatter"]
        assert "skipped torch_scatter" in proc.stdout
    assert "peak growth MiB" in proc.stdout
    if memory["plot"] is not None:
        assert Path(memory["plot"]) == tmp_path / "nbfnet_memory.png"
        assert Path(memory["plot"]).stat().st_size > 0


@pytest.mark.realdata
@pytest.mark.slow
def test_speed_part_one_batch_of_fb237_v1(cpu_kernel, shared_data, tmp_path):
    out = tmp_path / "speed.json"
    proc = _run("--part", "speed", "--backends", "cpu", "torch_scatter", "--batches", "1",
                "--warmup", "0", "--root", str(shared_data), "--out", str(out))
    payload = json.loads(out.read_text())
    _check_provenance(payload)
    assert "memory" not in payload
    speed = payload["speed"]
    assert speed["dataset"]["train_triples"] == 4245
    assert speed["config"]["model"]["params"]["backend"] == "cpu"
    cpu = speed["backends"]["cpu"]
    assert "error" not in cpu, cpu
    assert cpu["timed_batches"] == 1 and cpu["batches_per_epoch"] == 67
    assert cpu["s_per_batch_mean"] > 0 and cpu["s_per_epoch"] > 0
    assert cpu["epoch_extrapolated"] is True
    assert cpu["peak_rss_growth_bytes"] > 0 and cpu["ratio_vs_fastest"] == 1.0
    assert "extrapolated" in proc.stdout
    assert cpu["allocator"] in ("reuse", "system")  # reuse on glibc, as `graphlearn train`


@pytest.mark.realdata
@pytest.mark.slow
def test_speed_part_under_both_allocators(cpu_kernel, shared_data, tmp_path):
    out = tmp_path / "speed.json"
    proc = _run("--part", "speed", "--backends", "cpu", "--batches", "1", "--warmup", "0",
                "--allocators", "reuse", "system", "--root", str(shared_data), "--out", str(out))
    speed = json.loads(out.read_text())["speed"]
    assert set(speed["backends"]) == {"cpu/reuse", "cpu/system"}
    assert speed["backends"]["cpu/system"]["allocator"] == "system"
    # same seed, same batch: the allocator changes where memory comes from, not the math
    assert speed["backends"]["cpu/reuse"]["losses"] == speed["backends"]["cpu/system"]["losses"]
    assert "cpu/system" in proc.stdout
