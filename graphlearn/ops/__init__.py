"""Message-passing primitives.

The generalized relational SpMM (``rspmm``) is the primitive NBFNet, sheaf
convolutions and LightGCN reduce to::

    from graphlearn.ops import RelGraph, rspmm

    graph = RelGraph.build(edge_index, edge_type, num_nodes)   # sorts once
    out = rspmm(graph, x, rel, message="mul", reduce="pna")     # [V, B·4d]

or ``graph = graphlearn.ops.prepare(data)`` to cache it on a PyG ``Data``.
Importing this package compiles nothing; the fused CPU kernel builds on its
first use.
"""

from graphlearn.ops.dispatch import (
    BACKENDS,
    Backend,
    BackendUnavailableError,
    list_backends,
    resolve_backend,
    rspmm,
)
from graphlearn.ops.graph import RelGraph, prepare
from graphlearn.ops.reference import rspmm_reference
from graphlearn.ops.spec import (
    DEFAULT_PNA_EPS,
    MESSAGES,
    REDUCTIONS,
    RSpmmSpec,
    list_messages,
    list_reductions,
    resolve_spec,
)

__all__ = [
    "BACKENDS",
    "DEFAULT_PNA_EPS",
    "MESSAGES",
    "REDUCTIONS",
    "Backend",
    "BackendUnavailableError",
    "RSpmmSpec",
    "RelGraph",
    "list_backends",
    "list_messages",
    "list_reductions",
    "prepare",
    "resolve_backend",
    "resolve_spec",
    "rspmm",
    "rspmm_reference",
]
