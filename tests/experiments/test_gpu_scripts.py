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
                RUNS="fb237_v1:0 fb237_v9:1 cora:0")
    assert proc.returncode == 0, proc.stderr
    assert "fb237_v1_s0: needs about 60 s" in proc.stdout
    assert "cora_s0: needs about 400 s" in proc.stdout
    assert "fb237_v9_s1: needs about 520 s" in proc.stdout  # unknown: the largest estimate
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == []


def test_gpu_runs_configs_per_dataset(tmp_path):
    proc = _run("gpu_runs.sh", tmp_path, DRY_RUN="1", BUDGET_S="1000", DATA="/d",
                RUNS="fb237_v3:0 cora:1 citeseer:2")
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("would run:")]
    assert len(lines) == 3
    assert "kg/fb237_v1/nbfnet.yaml data.root=/d train.seed=0 train.device=cuda " \
           "data.name=fb237_v3 " in lines[0]
    assert "link/cora/nbfnet.yaml data.root=/d train.seed=1 train.device=cuda --threads" \
        in lines[1]
    assert "link/citeseer/nbfnet.yaml" in lines[2] and "data.name" not in lines[2]
    assert "cora_s1: needs" not in proc.stdout  # 400 s estimated, fits in 1000


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
