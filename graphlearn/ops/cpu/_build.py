"""Lazy, cached build of the fused CPU kernels (``rspmm.cpp``, and ``sheaf.cpp``: the
sheaf Laplacian of full restriction maps), one extension module.

Nothing compiles at import. The first call that needs the kernel builds it with
``torch.utils.cpp_extension.load`` (needs a C++ compiler and ``ninja``) into

    cache_dir()/torch_extensions/graphlearn_rspmm_cpu_<hash>/

(or ``$GRAPHLEARN_EXTENSIONS_DIR/graphlearn_rspmm_cpu_<hash>/`` when that is set),
where ``<hash>`` covers the sources, the compiler flags, the torch and Python
versions and the machine, so a changed source or a torch upgrade rebuilds into a
fresh folder and an unchanged one loads in milliseconds. One line on stderr
says when a compile starts. Concurrent processes are serialised by torch's own
lock file in that folder.

When the build is impossible (no compiler, no ninja, a compile error), the
reason is kept, :func:`load_cpu_extension` returns ``None`` and the ``auto``
backend warns once and uses the reference. ``GRAPHLEARN_DISABLE_CPU_KERNEL=1``
turns the kernel off without trying.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import sys
import threading
from pathlib import Path
from types import ModuleType

import torch

from graphlearn.data.paths import cache_dir

__all__ = ["SOURCE", "SOURCES", "cpu_extension_error", "extension_dir", "load_cpu_extension"]

SOURCE = Path(__file__).with_name("rspmm.cpp")
SOURCES = (SOURCE, Path(__file__).with_name("sheaf.cpp"))
DISABLE_ENV = "GRAPHLEARN_DISABLE_CPU_KERNEL"
DIR_ENV = "GRAPHLEARN_EXTENSIONS_DIR"
# -ffp-contract=off: no fused multiply-add contraction, so messages round exactly
# like the reference's separate PyTorch ops (max/min ties resolve identically).
# -fno-math-errno -fno-trapping-math change no value; they let GCC vectorise the
# loops with sqrt, division and selects.
CFLAGS = ["-O3", "-fopenmp", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math"]
LDFLAGS = ["-fopenmp"]


def _arch_flags() -> list[str]:
    """``-mavx2`` where torch reports AVX2 or better on this CPU (GCC then vectorises the
    float64 and the index-select loops too); the capability is part of the build hash."""
    cap = torch.backends.cpu.get_cpu_capability()
    if platform.machine().lower() in ("x86_64", "amd64") and cap in ("AVX2", "AVX512"):
        return ["-mavx2"]
    return []


_lock = threading.Lock()
_module: ModuleType | None = None
_error: str | None = None


def _build_hash() -> str:
    h = hashlib.sha256()
    for source in SOURCES:
        h.update(source.read_bytes())
    for part in (*CFLAGS, *_arch_flags(), *LDFLAGS, torch.__version__, sys.version, platform.machine(),
                 platform.system()):
        h.update(b"\0" + part.encode())
    return h.hexdigest()[:16]


def extension_dir() -> Path:
    """The build folder of the current source and environment."""
    env = os.environ.get(DIR_ENV)
    root = Path(env).expanduser() if env else cache_dir() / "torch_extensions"
    return root / f"graphlearn_rspmm_cpu_{_build_hash()}"


def cpu_extension_error() -> str | None:
    """Why the kernel is unavailable (after a failed load), else ``None``."""
    return _error


def load_cpu_extension() -> ModuleType | None:
    """Build (once) and load the CPU kernel; ``None`` with a kept reason if impossible."""
    global _module, _error
    if _module is not None or _error is not None:
        return _module
    with _lock:
        if _module is not None or _error is not None:
            return _module
        if os.environ.get(DISABLE_ENV, "") not in ("", "0"):
            _error = f"disabled by {DISABLE_ENV}={os.environ[DISABLE_ENV]}"
            return None
        try:
            _module = _load()
        except Exception as exc:  # noqa: BLE001 - any build failure means "use the reference"
            text = " ".join(str(exc).split())
            _error = f"{type(exc).__name__}: {text[:1500]}"
        return _module


def _ninja_from_wheel() -> None:
    """Put the ``ninja`` PyPI package's binary on PATH when ninja is not there already
    (a virtualenv's ``bin/`` is not on PATH unless the environment is activated)."""
    try:
        import ninja  # the PyPI package: ships the binary in ninja.BIN_DIR
    except ImportError:
        return
    bin_dir = getattr(ninja, "BIN_DIR", None)
    if bin_dir and os.path.isdir(bin_dir):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def _load() -> ModuleType:
    from torch.utils import cpp_extension

    if not cpp_extension.is_ninja_available():
        _ninja_from_wheel()
    if not cpp_extension.is_ninja_available():
        raise RuntimeError("ninja is not installed (pip install ninja)")
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        raise RuntimeError(f"no C++ compiler ({compiler!r} not on PATH)")
    build_dir = extension_dir()
    name = build_dir.name
    build_dir.mkdir(parents=True, exist_ok=True)
    if not (build_dir / f"{name}.so").exists():
        print(
            f"graphlearn: compiling the fused CPU rspmm kernel once (about a minute) "
            f"into {build_dir}",
            file=sys.stderr,
            flush=True,
        )
    return cpp_extension.load(
        name=name,
        sources=[str(source) for source in SOURCES],
        extra_cflags=CFLAGS + _arch_flags(),
        extra_ldflags=LDFLAGS,
        build_directory=str(build_dir),
        verbose=False,
    )
