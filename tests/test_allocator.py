"""graphlearn.allocator: GRAPHLEARN_MALLOC, glibc's mallopt, the trainer's record."""

import platform
import subprocess
import sys

import pytest

from graphlearn import allocator
from graphlearn.errors import GraphlearnError

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def _in_fresh_process(code: str, **env: str) -> str:
    import os

    environ = {k: v for k, v in os.environ.items()
               if not k.startswith(("MALLOC_", "GRAPHLEARN_MALLOC"))}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**environ, **env}, check=True, timeout=60)
    return proc.stdout.strip()


CODE = ("from graphlearn import allocator; print(allocator.state(), "
        "allocator.reuse_freed_memory(), allocator.state())")


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_reuse_is_switched_on_once_asked():
    assert _in_fresh_process(CODE) == "system reuse reuse"


def test_system_keeps_glibc_defaults():
    assert _in_fresh_process(CODE, GRAPHLEARN_MALLOC="system") == "system system system"


def test_the_environment_own_malloc_settings_win():
    assert _in_fresh_process(CODE, MALLOC_MMAP_MAX_="0") == "system system system"


def test_a_bad_value_names_the_variable_and_the_choices(monkeypatch):
    monkeypatch.setenv("GRAPHLEARN_MALLOC", "jemalloc")
    with pytest.raises(GraphlearnError, match=r"GRAPHLEARN_MALLOC='jemalloc'.*reuse, system"):
        allocator.wanted()


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_freed_big_blocks_come_back_without_new_page_faults():
    """A training-like loop (two 64 MiB tensors per step, freed at the end): glibc's
    default maps both afresh every step (2 x 16384 page faults); after the switch
    the heap settles within a few steps and the last steps fault nothing."""
    code = (
        "import resource, torch\n"
        "from graphlearn import allocator\n"
        "allocator.reuse_freed_memory()\n"
        "faults = []\n"
        "for _ in range(12):\n"
        "    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "    a = torch.ones(16 << 20); b = a * 2\n"
        "    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)\n"
        "    del a, b\n"
        "print(sum(faults[-4:]))\n")
    faults = {mode: int(_in_fresh_process(code, GRAPHLEARN_MALLOC=mode))
              for mode in ("reuse", "system")}
    assert faults["system"] > 4 * 16000  # both tensors faulted in again at every step
    assert faults["reuse"] < 1000
