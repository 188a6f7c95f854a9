"""Optional extensions, detected in one place without importing them.

Each flag is computed on first access (``importlib.util.find_spec``), so
importing graphlearn never imports an optional dependency.
"""

from __future__ import annotations

import importlib.util
from functools import cache


@cache
def has_module(name: str) -> bool:
    """True when ``name`` can be imported (the module itself is not imported)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def with_ogb() -> bool:
    return has_module("ogb")


def with_torch_scatter() -> bool:
    return has_module("torch_scatter")


def with_triton() -> bool:
    return has_module("triton")


def with_matplotlib() -> bool:
    return has_module("matplotlib")
