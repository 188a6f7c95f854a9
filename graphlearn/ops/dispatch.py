r"""``rspmm``: the generalized relational SpMM and its backends.

.. math::
    \mathbf{out}_i = \bigoplus_{(j \to i,\, r) \in \mathcal{E}}
        w_e \cdot \phi(\mathbf{rel}_r, \mathbf{x}_j)

One function, several implementations of the same math (``backend=``):

=================  =====================================================
``reference``      plain PyTorch (:mod:`graphlearn.ops.reference`), any device
                   and dtype; the specification. O(E·D) memory.
``cpu``            fused C++ kernel (:mod:`graphlearn.ops.cpu`), float32 and
                   float64 on CPU; built on first use. O(V·D) memory.
``triton``         fused Triton kernels (:mod:`graphlearn.ops.triton`) for CUDA
                   tensors (float32, bfloat16, float16, float64); CPU tensors
                   only in Triton's interpreter (``TRITON_INTERPRET=1``, tests).
``torch_scatter``  gather + ``torch_scatter.segment_csr`` (:mod:`graphlearn.ops.scatter`),
                   when that optional package is installed. O(E·D) memory.
``auto``           CPU tensors: ``cpu`` when the kernel builds and the dtype is
                   float32/float64 (else ``reference``, with one warning for
                   those dtypes). CUDA tensors: ``triton`` when Triton is
                   installed and the dtype supported (else ``reference``, with
                   one warning). Other devices: ``reference``. Never
                   ``torch_scatter`` (slower than the fused kernels, O(E·D) memory).
=================  =====================================================
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

from graphlearn.errors import GraphlearnError
from graphlearn.ops.graph import RelGraph
from graphlearn.ops.reference import rspmm_reference
from graphlearn.ops.spec import DEFAULT_PNA_EPS, RSpmmSpec, resolve_spec
from graphlearn.registry import Registry, normalize_name

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendUnavailableError",
    "list_backends",
    "resolve_backend",
    "rspmm",
]


class BackendUnavailableError(GraphlearnError, RuntimeError):
    """A backend was asked for explicitly but cannot run this call; says why."""


@dataclass(frozen=True)
class Backend:
    """An implementation of ``rspmm``.

    ``unavailable(x, spec)`` returns ``None`` when the backend can run the call,
    else the reason; ``run(graph, x, rel, edge_weight, spec)`` computes it.
    """

    name: str
    unavailable: Callable[[Tensor, RSpmmSpec], str | None]
    run: Callable[[RelGraph, Tensor, Tensor | None, Tensor | None, RSpmmSpec], Tensor]


BACKENDS: Registry[Backend] = Registry("rspmm backend")


def _reference_unavailable(x: Tensor, spec: RSpmmSpec) -> str | None:
    return None


def cpu_kernel_unavailable(*tensors: Tensor) -> str | None:
    """Why the fused CPU extension cannot take these tensors (device, dtype, build),
    else ``None``; shared by ``rspmm`` and the sheaf kernels (:mod:`graphlearn.ops.sheaf`)."""
    from graphlearn.ops.cpu import SUPPORTED_DTYPES, cpu_extension_error, load_cpu_extension

    for t in tensors:
        if t.device.type != "cpu":
            return f"it runs on CPU tensors only, got {t.device}"
        if t.dtype not in SUPPORTED_DTYPES:
            return f"it supports float32 and float64, got {t.dtype}"
    if len({t.dtype for t in tensors}) > 1:
        return f"its inputs must share a dtype, got {sorted(str(t.dtype) for t in tensors)}"
    if load_cpu_extension() is None:
        return f"the C++ kernel could not be built ({cpu_extension_error()})"
    return None


def _cpu_unavailable(x: Tensor, spec: RSpmmSpec) -> str | None:
    return cpu_kernel_unavailable(x)


def _run_cpu(graph, x, rel, edge_weight, spec):
    from graphlearn.ops.cpu import rspmm_cpu

    return rspmm_cpu(graph, x, rel, edge_weight, spec)


def _triton_unavailable(x: Tensor, spec: RSpmmSpec) -> str | None:
    from graphlearn.ops.triton import triton_unavailable

    return triton_unavailable(x, spec)


def _run_triton(graph, x, rel, edge_weight, spec):
    from graphlearn.ops.triton import rspmm_triton

    return rspmm_triton(graph, x, rel, edge_weight, spec)


def _torch_scatter_unavailable(x: Tensor, spec: RSpmmSpec) -> str | None:
    from graphlearn.ops.scatter import torch_scatter_unavailable

    return torch_scatter_unavailable(x, spec)


def _run_torch_scatter(graph, x, rel, edge_weight, spec):
    from graphlearn.ops.scatter import rspmm_torch_scatter

    return rspmm_torch_scatter(graph, x, rel, edge_weight, spec)


for _backend in (
    Backend("reference", _reference_unavailable, rspmm_reference),
    Backend("cpu", _cpu_unavailable, _run_cpu),
    Backend("triton", _triton_unavailable, _run_triton),
    Backend("torch_scatter", _torch_scatter_unavailable, _run_torch_scatter),
):
    BACKENDS.register(_backend.name)(_backend)


def list_backends() -> list[str]:
    """Names accepted by ``backend=`` (``auto`` included)."""
    return ["auto", *BACKENDS.names()]


_warned_fallback: set[tuple[str, str]] = set()


def fallback_warning(fused: str, reason: str, op: str = "rspmm") -> None:
    """Warn once per (op, reason) that ``auto`` fell back to the reference."""
    if (op, reason) not in _warned_fallback:
        _warned_fallback.add((op, reason))
        warnings.warn(
            f"{op}: using the reference backend (O(E·D) memory) because the {fused} is "
            f"unavailable: {reason}",
            RuntimeWarning,
            stacklevel=4,
        )


#: The fused backend ``auto`` tries per device type: (backend, module holding its
#: ``SUPPORTED_DTYPES``, name used in the fallback warning).
_AUTO_FUSED = {
    "cpu": ("cpu", "graphlearn.ops.cpu", "fused CPU kernel"),
    "cuda": ("triton", "graphlearn.ops.triton", "Triton GPU kernel"),
}


def resolve_backend(backend: str, x: Tensor, spec: RSpmmSpec) -> Backend:
    """The backend that runs this call; explicit names fail loudly when they cannot."""
    if isinstance(backend, str) and normalize_name(backend) == "auto":
        fused = _AUTO_FUSED.get(x.device.type)
        if fused is not None:
            name, module, label = fused
            kernel = BACKENDS.get(name)
            reason = kernel.unavailable(x, spec)
            if reason is None:
                return kernel
            if x.dtype in importlib.import_module(module).SUPPORTED_DTYPES:
                fallback_warning(label, reason)
        return BACKENDS.get("reference")
    chosen = BACKENDS.get(backend)
    reason = chosen.unavailable(x, spec)
    if reason is not None:
        raise BackendUnavailableError(f"rspmm: backend={backend!r} cannot run: {reason}")
    return chosen


def rspmm(
    graph: RelGraph,
    x: Tensor,
    rel: Tensor | None = None,
    edge_weight: Tensor | None = None,
    message: str = "mul",
    reduce: str = "sum",
    backend: str = "auto",
    batch_size: int | None = None,
    eps: float = DEFAULT_PNA_EPS,
) -> Tensor:
    r"""Generalized relational sparse-dense matrix product.

    For every target node ``i`` (row 1 of ``edge_index``; the first
    ``graph.num_targets`` nodes, all ``V`` unless the graph was built with fewer):

    .. math::
        \mathbf{out}_i = \bigoplus_{(j \to i,\, r)} w_e \cdot \phi(\mathbf{rel}_r, \mathbf{x}_j)

    Args:
        graph: the graph, sorted once (:meth:`RelGraph.build` or
            :func:`graphlearn.ops.prepare`).
        x: ``[V, B·d]`` node features, ``B`` queries folded into the feature axis.
        rel: ``[R, d]`` (shared by the batch) or ``[R, B·d]`` (per query)
            relation features; ignored (may be ``None``) for ``message="none"``.
        edge_weight: ``[E]`` per-edge weights in ``edge_index`` order,
            multiplying each message before the reduction; ``None`` for 1.
        message: ``"mul"`` (DistMult, alias ``"distmult"``), ``"add"``
            (TransE, ``"transe"``), ``"rotate"`` (RotatE complex product, real
            halves first in each ``d``-block) or ``"none"`` (``x_j``: plain SpMM).
        reduce: ``"sum"``, ``"mean"``, ``"max"``, ``"min"`` or ``"pna"``
            (mean, max, min, std in one pass). Nodes without in-edges get 0.
        backend: ``"auto"``, ``"reference"``, ``"cpu"``, ``"triton"``,
            ``"torch_scatter"`` (see the module docstring).
        batch_size: ``B``; inferred from a shared ``rel``, else 1. Needed for
            per-query ``rel`` with ``rotate`` or ``pna`` (it sets the blocks).
        eps: PNA's ``std = sqrt(relu(E[m²] − E[m]²) + eps)`` (default 1e-5; the
            variance is computed from sums shifted by the first message).

    Returns:
        ``[T, B·d]`` (``T = graph.num_targets``, ``V`` by default); for ``pna``
        ``[T, B·4d]`` with block ``b`` = ``[mean | max | min | std]`` of query ``b``.

    Gradients flow to ``x``, ``rel`` and ``edge_weight`` on every backend.
    ``max``/``min`` route the gradient to the first edge (in ``edge_index``
    order among a node's in-edges) attaining the extreme.
    """
    spec = resolve_spec(graph, x, rel, edge_weight, message, reduce, batch_size, eps)
    chosen = resolve_backend(backend, x, spec)
    return chosen.run(graph, x, rel if spec.message.uses_rel else None, edge_weight, spec)
