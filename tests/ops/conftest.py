from __future__ import annotations

import os

import pytest
import torch

from graphlearn.ops import RelGraph


@pytest.fixture(scope="session")
def _extensions_dir(request) -> str:
    """Kernel builds persist in .pytest_cache, so a test session compiles only after a change."""
    return str(request.config.cache.mkdir("graphlearn_torch_extensions"))


@pytest.fixture(autouse=True)
def _persistent_extensions(_extensions_dir, monkeypatch):
    monkeypatch.setenv("GRAPHLEARN_EXTENSIONS_DIR", _extensions_dir)


@pytest.fixture(scope="session")
def cpu_kernel(_extensions_dir):
    """The loaded CPU extension; skips when it cannot be built (fails instead under CI)."""
    from graphlearn.ops.cpu import _build

    old = os.environ.get("GRAPHLEARN_EXTENSIONS_DIR")
    os.environ["GRAPHLEARN_EXTENSIONS_DIR"] = _extensions_dir
    try:
        ext = _build.load_cpu_extension()
    finally:
        if old is None:
            os.environ.pop("GRAPHLEARN_EXTENSIONS_DIR", None)
        else:
            os.environ["GRAPHLEARN_EXTENSIONS_DIR"] = old
    if ext is None:
        reason = f"fused CPU kernel unavailable: {_build.cpu_extension_error()}"
        if os.environ.get("CI") and not os.environ.get(_build.DISABLE_ENV):
            pytest.fail(reason)
        pytest.skip(reason)
    return ext


def tiny_graphs() -> dict[str, RelGraph]:
    """Small graphs covering the edge cases every backend must get right."""
    graphs = {}
    # 7 nodes, 5 relations: node 0 has no in-edges, node 5 is isolated, node 6 (the
    # highest id) receives edges, 2 -> 2 is a self-loop, 3 -> 1 (r1) appears twice,
    # relations 2 and 4 have no edges.
    src = torch.tensor([0, 2, 3, 3, 2, 1, 4, 0, 6, 1, 4])
    dst = torch.tensor([1, 1, 1, 1, 2, 3, 3, 6, 6, 4, 2])
    typ = torch.tensor([0, 1, 1, 1, 0, 3, 0, 1, 3, 0, 3])
    graphs["mixed"] = RelGraph.build(torch.stack([src, dst]), typ, num_nodes=7, num_relations=5)
    graphs["single_edge"] = RelGraph.build(
        torch.tensor([[0], [2]]), torch.tensor([1]), num_nodes=3, num_relations=2
    )
    gen = torch.Generator().manual_seed(7)
    num_edges = 120
    ei = torch.randint(0, 30, (2, num_edges), generator=gen)
    ei[1, :3] = 39  # the highest id receives edges; ids 30..38 are isolated
    et = torch.randint(0, 4, (num_edges,), generator=gen)
    graphs["random"] = RelGraph.build(ei, et, num_nodes=40, num_relations=6)
    graphs["no_edges"] = RelGraph.build(
        torch.zeros(2, 0, dtype=torch.long), torch.zeros(0, dtype=torch.long),
        num_nodes=3, num_relations=2,
    )
    return graphs


TINY_GRAPHS = tiny_graphs()
