from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Triton reads TRITON_INTERPRET when it is first imported (torch_geometric imports it
# early): without a CUDA device, tests/ops/test_triton.py runs the Triton kernels on
# CPU tensors in Triton's interpreter. TRITON_INTERPRET=0 set by the caller is kept.
if "TRITON_INTERPRET" not in os.environ and not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real benchmark data beside the repository; skips the test when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not present at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep caches written by loaders out of the user's home directory."""
    monkeypatch.setenv("GRAPHLEARN_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def pytest_collection_modifyitems(config, items):
    """Skip tests marked ``network`` when ``GRAPHLEARN_OFFLINE=1``."""
    import os

    if os.environ.get("GRAPHLEARN_OFFLINE") == "1":
        skip = pytest.mark.skip(reason="GRAPHLEARN_OFFLINE=1")
        for item in items:
            if "network" in item.keywords:
                item.add_marker(skip)
