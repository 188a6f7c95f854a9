"""Keep freed memory in the process for reuse (glibc's allocator), on CPU.

Training on CPU allocates tensors of tens to hundreds of MB at every step (an
NBFNet layer's PNA statistics are ``[V, 4·B·d]``). glibc serves every block above
its mmap threshold (at most 32 MiB) with a fresh ``mmap`` and returns it to the
system on ``free``, so each step page-faults its big tensors in again: an NBFNet
training batch on fb237_v1 took 2.21 s that way against 1.76 s with freed memory
kept (1 thread, ``experiments/benchmarks/results/nbfnet_allocator.json``), and a
fused PNA forward about a third more (``experiments/benchmarks/rspmm.md``).

:func:`reuse_freed_memory` tells glibc (``mallopt``) to serve big blocks from the
heap and to keep freed memory instead of trimming it, so the next step's
tensors land in pages already mapped. The cost: the process keeps its peak
resident memory until it exits. ``graphlearn train`` (and the benchmarks'
timing runs) call it on Linux with glibc; set ``GRAPHLEARN_MALLOC=system`` to
keep glibc's defaults. Nothing changes on other platforms or C libraries, or
when the process already sets ``MALLOC_MMAP_MAX_`` itself.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

from graphlearn.errors import GraphlearnError

#: environment variable: ``reuse`` (default) or ``system`` (glibc's defaults)
ENV = "GRAPHLEARN_MALLOC"
CHOICES = ("reuse", "system")

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_MAX = -4

_state = "system"


def wanted() -> str:
    """The mode asked for by ``GRAPHLEARN_MALLOC`` (``reuse`` when unset).

    Raises:
        GraphlearnError: another value, naming the variable and the accepted values.
    """
    value = os.environ.get(ENV, "reuse").strip().lower() or "reuse"
    if value not in CHOICES:
        raise GraphlearnError(f"{ENV}={os.environ[ENV]!r}: expected one of {', '.join(CHOICES)}")
    return value


def reuse_freed_memory() -> str:
    """Switch glibc to keeping freed memory for reuse, unless ``GRAPHLEARN_MALLOC=system``.

    Returns the allocator state afterwards: ``"reuse"``, or ``"system"`` (not asked
    for, not glibc, or the environment already sets glibc's ``MALLOC_MMAP_MAX_``).
    Idempotent.
    """
    global _state
    if _state == "reuse" or wanted() == "system" or "MALLOC_MMAP_MAX_" in os.environ:
        return _state
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return _state
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = (libc.mallopt(_M_MMAP_MAX, 0) == 1
              and libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
              and libc.mallopt(_M_TOP_PAD, 256 << 20) == 1)
    except (OSError, AttributeError):
        return _state
    if ok:
        _state = "reuse"
    return _state


def state() -> str:
    """``"reuse"`` after a successful :func:`reuse_freed_memory` in this process, else
    ``"system"``."""
    return _state
