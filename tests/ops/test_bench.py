"""The benchmark workers' shared pieces in graphlearn.ops.bench: the peak-RSS probe's
baseline, one point per subprocess, and a shipped config's training steps."""

from __future__ import annotations

import mmap

import pytest
import torch

from graphlearn.ops.bench import PeakRSS, TrainingBench, run_point_script
from tests.train.synthetic import write_tiny_config, write_tiny_dataset


def test_peak_rss_mark_is_a_baseline_the_peak_cannot_fall_below():
    probe = PeakRSS()
    base = probe.mark()
    assert base > 0 and probe.peak() >= base
    size = 64 * 2**20
    # fresh pages from the kernel, whatever the allocator keeps from earlier tests
    with mmap.mmap(-1, size) as block:
        for offset in range(0, size, 4096):
            block[offset] = 1  # touch every page
        grown = probe.peak() - base
    if probe.method.startswith("VmHWM"):
        assert grown >= 60 * 2**20


POINT_SCRIPT = """
import json, os, sys, time
job = json.loads(sys.argv[sys.argv.index("--point") + 1])
if job.get("fail"):
    sys.exit(3)
time.sleep(job.get("sleep", 0))
print("progress on stdout before the result")
print(json.dumps({"twice": 2 * job["x"], "env": os.environ.get("GL_BENCH_TEST")}))
"""


@pytest.fixture
def point_script(tmp_path):
    path = tmp_path / "point.py"
    path.write_text(POINT_SCRIPT)
    return path


def test_run_point_script_returns_the_last_json_line_with_the_extra_environment(point_script):
    assert run_point_script(point_script, {"x": 21}, timeout=60,
                            env={"GL_BENCH_TEST": "on"}) == {"twice": 42, "env": "on"}
    assert run_point_script(point_script, {"x": 1}, timeout=60) == {"twice": 2, "env": None}


def test_run_point_script_reports_a_failure_and_a_timeout(point_script):
    assert run_point_script(point_script, {"x": 1, "fail": True}, timeout=60) == {
        "error": "exit status 3 (traceback on stderr above)"}
    assert run_point_script(point_script, {"x": 1, "sleep": 30}, timeout=1) == {
        "error": "timed out after 1 s"}


def test_training_bench_steps_as_the_trainer_and_repeats_with_the_seed(tmp_path, monkeypatch):
    cards, root = write_tiny_dataset(tmp_path, num_users=20, num_items=16, per_user=6)
    monkeypatch.setenv("GRAPHLEARN_DATASETS", str(cards))
    config = write_tiny_config(tmp_path / "cfg.yaml", root, batch_size=16)
    threads = torch.get_num_threads()
    try:
        runs = []
        for _ in range(2):
            bench = TrainingBench.from_config(config, ["train.lr=0.05"], threads=1)
            assert torch.get_num_threads() == 1 and bench.cfg.train.lr == 0.05
            assert bench.model.training
            before = [p.detach().clone() for p in bench.model.parameters()]
            losses = [bench.step(batch) for batch in bench.batches(1, seed=3)]
            assert len(losses) == bench.task.num_batches()
            assert all(isinstance(x, float) and x > 0 for x in losses)
            moved = any(not torch.equal(a, b) for a, b in zip(before, bench.model.parameters()))
            assert moved  # the optimizer stepped
            runs.append((before, losses))
        # same seed: the same initial parameters and the same batches
        assert all(torch.equal(a, b) for a, b in zip(runs[0][0], runs[1][0]))
        assert runs[0][1] == runs[1][1]
    finally:
        torch.set_num_threads(threads)
