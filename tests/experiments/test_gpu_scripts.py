"""The GPU scripts' paths that run without a GPU: refusal, and gpu_runs.sh's budget."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="tests the no-GPU refusal")


def _run(script: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHON": sys.executable, "OUT": str(tmp_path / "out"), **env}
    return subprocess.run(["bash", str(EXPERIMENTS / script)], env=full, capture_output=True,
                          text=True, timeout=300, check=False)


def test_gpu_runs_starts_nothing_that_does_not_fit_the_budget(tmp_path):
    proc = _run("gpu_runs.sh", tmp_path, DEVICE="cpu", BUDGET_S="1",
                RUNS="fb237_v1:0 fb237_v9:1")
    assert proc.returncode == 0, proc.stderr
    assert "fb237_v1_s0: needs about 60 s" in proc.stdout
    assert "fb237_v9_s1: needs about 520 s" in proc.stdout  # unknown: the largest estimate
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == []


@no_cuda
def test_gpu_runs_refuses_without_cuda(tmp_path):
    proc = _run("gpu_runs.sh", tmp_path, RUNS="fb237_v1:0")
    assert proc.returncode == 2
    assert "no CUDA device" in proc.stderr


@no_cuda
def test_gpu_check_refuses_without_cuda(tmp_path):
    proc = _run("gpu_check.sh", tmp_path)
    assert proc.returncode == 2
    assert "no CUDA device" in (tmp_path / "out" / "env.txt").read_text()
