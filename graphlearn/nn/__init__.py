"""Layers built on :mod:`graphlearn.ops`, usable in any PyTorch / PyG training loop.

* :class:`GeneralizedRelationalConv` — NBFNet's generalized Bellman-Ford layer
  (INDICATOR re-injected as a self-loop, MESSAGE, AGGREGATE) over ``rspmm``.
* :class:`BellmanFordGraph` — a message graph prepared once for that layer.
* :class:`SheafConv` — sheaf diffusion with learned restriction maps
  (:mod:`graphlearn.nn.sheaf`).
"""

from graphlearn.nn.bellman_ford import BellmanFordGraph
from graphlearn.nn.nbf_conv import AGGREGATIONS, GeneralizedRelationalConv, list_aggregations
from graphlearn.nn.sheaf import SheafConv

__all__ = ["AGGREGATIONS", "BellmanFordGraph", "GeneralizedRelationalConv", "SheafConv",
           "list_aggregations"]
