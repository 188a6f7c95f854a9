"""SIGKILL a training process mid-run, resume it, and compare with an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from graphlearn.config import load_config
from graphlearn.train import train
from tests.train.synthetic import write_tiny_config, write_tiny_dataset

ROOT = Path(__file__).resolve().parents[2]
SIZE = {"num_users": 100, "num_items": 60, "per_user": 16}
EPOCHS = 12


def _evaluations(run_dir: Path) -> int:
    path = run_dir / "metrics.jsonl"
    return len(path.read_text().splitlines()) if path.is_file() else 0


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_gives_the_uninterrupted_results(tmp_path, monkeypatch):
    cards, root = write_tiny_dataset(tmp_path, **SIZE)
    monkeypatch.setenv("GRAPHLEARN_DATASETS", str(cards))
    config = write_tiny_config(tmp_path / "cfg.yaml", root, model="lightgcn",
                               epochs=EPOCHS, batch_size=64)
    killed = tmp_path / "killed"
    env = {**os.environ, "GRAPHLEARN_DATASETS": str(cards), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "graphlearn", "train", str(config),
                             "--out", str(killed), "--quiet", "--no-progress"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while _evaluations(killed) < 2:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "training did not start in time"
            time.sleep(0.01)
        time.sleep(0.02)  # somewhere inside a later epoch
        assert proc.poll() is None, "the run finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "final.json").exists()

    quiet = {"progress": False, "log": lambda _: None}
    cfg = load_config(config)
    _, resumed = train(cfg, out=killed, resume=True, **quiet)
    _, whole = train(cfg, out=tmp_path / "whole", **quiet)
    for key in ("selected_epoch", "epochs_run", "valid", "test"):
        assert resumed[key] == whole[key], key
    assert resumed["sessions"] == 2
    lines = [json.loads(x) for x in (killed / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines if not r.get("final")] == list(range(1, EPOCHS + 1))
