r"""Path explanations of NBFNet's predictions.

From Zhu et al. (2021), "Neural Bellman-Ford Networks: A General Graph Neural
Network Framework for Link Prediction" (https://arxiv.org/abs/2106.06935),
§ "Interpretability": the importance of a path is approximated to first order
by the summed importance of its edges, and the most important paths are found
by a beam search over the layers.

**Edge importance.** Every real edge :math:`e` of the message graph gets one
weight per layer, :math:`w^{(\ell)}_e = 1`, multiplying its message at that
layer (:meth:`NBFNet.bellman_ford`'s ``edge_weights``); the importance of
:math:`e` at layer :math:`\ell` is the gradient of the query's score

.. math::
    I^{(\ell)}_e = \frac{\partial\, s(h, r, t)}{\partial w^{(\ell)}_e}
    \Big|_{w = 1}.

**Paths.** A path :math:`h = v_0 \to v_1 \to \dots \to v_L = t` of
:math:`1 \le L \le T` edges takes its edges at strictly increasing layers
:math:`\ell_1 < \ell_2 < \dots < \ell_L` (any, not necessarily consecutive)
and scores

.. math::
    \operatorname{score}(e_1, \dots, e_L) = \max_{\ell_1 < \dots < \ell_L}
    \sum_{i=1}^{L} I^{(\ell_i)}_{e_i}.

Paths shorter than :math:`T` are real routes of the computation for two
reasons: the boundary (the query at :math:`h`) is re-injected at every layer
as a self-loop message, so a path may *start* at any layer; and each layer's
update reads its own input :math:`\mathbf{h}^{(\ell-1)}_v` (and the short-cut
adds it), so what reached a node may *wait* there for later layers, including
at :math:`t` after the last edge. Neither step goes through a real edge, so
neither has an importance of its own: the placement of a path's edges in the
layers is the one that maximises its score. (NBFNet-PyG's visualisation
instead fixes the edges of a length-:math:`L` path to layers :math:`1..L` and
ranks by the average edge importance.)

Paths are walks: nodes and edges may repeat, but a walk ends the first time it
reaches :math:`t` (no edge leaves the tail). Allowing repeats keeps the beam
search *exact*: :func:`top_paths` keeps, per layer, node and length, the ``k``
best distinct edge sequences, and by an exchange argument the overall top-``k``
is never pruned (forbidding repeats would make a pruned prefix matter).
The same edge sequence found at several layer placements counts once, with
its best score. Edges are named by ``(source, relation, target)``, so parallel
duplicates of a triple in the graph are one edge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from graphlearn.models.nbfnet import remove_query_edges

__all__ = ["Explanation", "ScoredPath", "edge_importance", "explain", "format_explanation",
           "format_path", "path_text", "top_paths"]

Triple = tuple[int, int, int]
#: edge sequence -> (score, layers) of the walks kept at one node and length
Beam = dict[tuple[Triple, ...], tuple[float, tuple[int, ...]]]


class ScoredPath(NamedTuple):
    """One path from head to tail, best placement in the layers.

    Attributes:
        score: the summed importance of its edges at their layers.
        edges: ``[(source, relation, target), ...]`` from the head to the tail.
        layers: the 1-based layer each edge is taken at (strictly increasing).
    """

    score: float
    edges: list[Triple]
    layers: list[int]


@dataclass(frozen=True)
class Explanation:
    """Why a model scores the triple ``(head, relation, tail)`` as it does.

    Attributes:
        head, relation, tail: the query, by id (``relation`` in ``[0, 2R)``).
        score: the model's score (logit) of the triple on the explained graph.
        paths: the top paths, best first (:func:`top_paths`).
        removed_edges: edges stating the triple itself (and its inverse) that
            were taken out of the graph before explaining (0 for a new triple).
    """

    head: int
    relation: int
    tail: int
    score: float
    paths: list[ScoredPath]
    removed_edges: int = 0


# ----------------------------------------------------------------------------------------
# edge importance
# ----------------------------------------------------------------------------------------


def _check_explainable(model: nn.Module) -> None:
    if not callable(getattr(model, "bellman_ford", None)) or not hasattr(model, "mlp"):
        raise TypeError(f"path explanations need an NBFNet-style model (bellman_ford, mlp), "
                        f"got {type(model).__name__}")
    if getattr(model, "symmetric", False):
        raise ValueError(f"{type(model).__name__}(symmetric=True): its score averages the "
                         f"h->t and t->h passes; path explanations read one pass")


def _importance_and_score(model: nn.Module, data: Any, head: int, relation: int,
                          tail: int) -> tuple[Tensor, float]:
    """``([T, E] importance, score)`` of one query (see :func:`edge_importance`)."""
    _check_explainable(model)
    graph = model.message_graph(data)
    num_nodes, num_relations = graph.num_nodes, int(model.num_relations)
    for name, node in (("head", head), ("tail", tail)):
        if not 0 <= int(node) < num_nodes:
            raise ValueError(f"{name} {node} out of range [0, {num_nodes})")
    if not 0 <= int(relation) < num_relations:
        raise ValueError(f"relation {relation} out of range [0, {num_relations})")
    parameter = next(model.parameters())
    device, dtype = parameter.device, parameter.dtype
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            weights = [torch.ones(graph.num_edges, device=device, dtype=dtype,
                                  requires_grad=True) for _ in model.layers]
            head_t = torch.tensor([int(head)], device=device)
            relation_t = torch.tensor([int(relation)], device=device)
            feature = model.bellman_ford(graph, head_t, relation_t, weights)  # (V, 1, F)
            score = model.mlp(feature[int(tail), 0]).squeeze(-1)  # ()
            # gradients of the edge weights only: no parameter .grad accumulates
            grads = torch.autograd.grad(score, weights, allow_unused=True)
    finally:
        model.train(was_training)
    importance = torch.stack([g if g is not None else torch.zeros_like(w)
                              for g, w in zip(grads, weights)])  # (T, E)
    return importance.detach(), float(score.detach())


def edge_importance(model: nn.Module, data: Any, head: int, relation: int,
                    tail: int) -> Tensor:
    r"""Importance ``[T, E]`` of every real edge at every layer for one query.

    :math:`I^{(\ell)}_e = \partial s(h, r, t) / \partial w^{(\ell)}_e` at
    :math:`w = 1`, with :math:`w^{(\ell)}_e` multiplying edge :math:`e`'s message
    at layer :math:`\ell` (module docstring). The model is run in evaluation
    mode (its mode is restored) and no parameter gradient is accumulated.

    Args:
        model: an :class:`~graphlearn.models.NBFNet` (``symmetric=False``).
        data: the message graph (PyG ``Data`` or ``BellmanFordGraph``).
        head, tail: node ids.
        relation: the query relation in ``[0, num_relations)``; a head query
            ``(?, r, t)`` is explained as ``(t, r^{-1}, ?)`` by the caller.

    Returns:
        ``[T, E]``, row ``ℓ - 1`` for layer ``ℓ``, columns in the order of
        ``data.edge_index`` (for a model with ``self_loops``, then one column per
        node's loop: the columns of ``model.graph_data(data)``).
    """
    return _importance_and_score(model, data, head, relation, tail)[0]


# ----------------------------------------------------------------------------------------
# beam search
# ----------------------------------------------------------------------------------------


def _distance_to(tail: int, src: Tensor, dst: Tensor, num_nodes: int, limit: int) -> list[int]:
    """Hops from every node to ``tail`` (``limit + 1`` when farther than ``limit``)."""
    far = limit + 1
    distance = torch.full((num_nodes,), far, dtype=torch.long)
    distance[tail] = 0
    for hop in range(1, limit + 1):
        frontier = distance[dst] == hop - 1
        sources = src[frontier]
        distance[sources] = torch.minimum(distance[sources], torch.full_like(sources, hop))
    return distance.tolist()


def _best(beam: Beam, k: int) -> list[tuple[tuple[Triple, ...], tuple[float, tuple[int, ...]]]]:
    """The ``k`` best entries of a beam: higher score first, ties by edge sequence."""
    return sorted(beam.items(), key=lambda item: (-item[1][0], item[0]))[:k]


def top_paths(importance: Tensor, edge_index: Tensor, edge_type: Tensor | None, head: int,
              tail: int, k: int = 10, max_length: int | None = None,
              rank: str = "sum") -> list[ScoredPath]:
    """The ``k`` paths from ``head`` to ``tail`` with the largest summed (or mean) importance.

    Dynamic programming over the layers (module docstring for the path model):
    after layer ``ℓ`` every node keeps, for every path length, the ``k`` best
    distinct edge sequences from ``head`` to it whose edges lie at layers
    ``<= ℓ``; a layer either extends a kept sequence by one of its edges or
    leaves it waiting at its node. Walks that cannot reach ``tail`` within the
    remaining layers and length are dropped early. The search is exact.

    Args:
        importance: ``[T, E]`` edge importance per layer (:func:`edge_importance`).
        edge_index: ``[2, E]`` the graph's edges, in the columns' order.
        edge_type: ``[E]`` relation ids (``None``: all 0).
        head, tail: node ids; with ``head == tail`` the walks are cycles.
        k: at most this many paths (fewer when fewer exist).
        max_length: longest path, ``1 <= max_length <= T`` (default ``T``).
        rank: ``"sum"`` (default, the paper's path importance) or ``"mean"``
            (sum divided by the number of edges, as NBFNet-PyG's visualisation
            ranks; longer paths are not favoured). Exact for both: the search
            keeps the best ``k`` per length, and within one length the two
            orders agree.

    Returns:
        ``[ScoredPath(score, edges, layers), ...]``, best first, ties broken by
        the edge sequence; each distinct edge sequence once, with its best
        score (the mean with ``rank="mean"``).
    """
    if rank not in ("sum", "mean"):
        raise ValueError(f"rank must be 'sum' or 'mean', got {rank!r}")
    if importance.dim() != 2:
        raise ValueError(f"importance must have shape [T, E], got {tuple(importance.shape)}")
    num_layers, num_edges = importance.shape
    if edge_index.dim() != 2 or tuple(edge_index.shape) != (2, num_edges):
        raise ValueError(f"edge_index must have shape [2, {num_edges}] (one column per "
                         f"importance column), got {tuple(edge_index.shape)}")
    if edge_type is not None and tuple(edge_type.shape) != (num_edges,):
        raise ValueError(f"edge_type must have shape [{num_edges}], got "
                         f"{tuple(edge_type.shape)}")
    if isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    max_length = num_layers if max_length is None else int(max_length)
    if not 1 <= max_length <= num_layers:
        raise ValueError(f"max_length must lie in [1, {num_layers}] (one edge per layer), "
                         f"got {max_length}")
    head, tail = int(head), int(tail)
    if head < 0 or tail < 0:
        raise ValueError(f"head and tail must be node ids >= 0, got {head} and {tail}")
    src, dst = edge_index[0].long().cpu(), edge_index[1].long().cpu()
    rel = (torch.zeros(num_edges, dtype=torch.long) if edge_type is None
           else edge_type.long().cpu())
    num_nodes = max(int(edge_index.max()) + 1 if num_edges else 0, head + 1, tail + 1)
    importance = importance.detach().double().cpu()
    distance = _distance_to(tail, src, dst, num_nodes, max_length)
    distance_t = torch.tensor(distance)

    # beams[(node, length)]: edge sequence -> (score, layers)
    beams: dict[tuple[int, int], Beam] = {(head, 0): {(): (0.0, ())}}
    for layer in range(1, num_layers + 1):
        remaining = num_layers - layer  # layers after this one
        reached = torch.zeros(num_nodes, dtype=torch.bool)
        reached[[node for node, _ in beams]] = True
        active = (reached[src] & (distance_t[dst] <= min(remaining, max_length - 1))).nonzero()
        active = active.view(-1).tolist()
        by_source: dict[int, list[int]] = {}
        for edge in active:
            by_source.setdefault(int(src[edge]), []).append(edge)
        weights = importance[layer - 1]
        new: dict[tuple[int, int], Beam] = {key: dict(beam) for key, beam in beams.items()}
        for (node, length), beam in beams.items():
            if length >= max_length or (node == tail and length > 0):
                continue  # full, or arrived: no edge leaves the tail
            for edge in by_source.get(node, ()):
                target = int(dst[edge])
                if length + 1 + distance[target] > max_length:
                    continue
                triple = (node, int(rel[edge]), target)
                weight = float(weights[edge])
                out = new.setdefault((target, length + 1), {})
                for sequence, (score, layers) in beam.items():
                    candidate = sequence + (triple,)
                    value = score + weight
                    kept = out.get(candidate)
                    if kept is None or value > kept[0]:
                        out[candidate] = (value, layers + (layer,))
        # a node keeps its best k per length; hopeless walks are dropped
        beams = {key: dict(_best(beam, k)) for key, beam in new.items()
                 if distance[key[0]] <= min(remaining, max_length - key[1])}
        if not beams:
            break
    found: Beam = {}
    for (node, length), beam in beams.items():
        if node == tail and length > 0:
            if rank == "mean":
                beam = {seq: (score / length, layers) for seq, (score, layers) in beam.items()}
            found.update(beam)
    return [ScoredPath(score, list(sequence), list(layers))
            for sequence, (score, layers) in _best(found, k)]


# ----------------------------------------------------------------------------------------
# explain and format
# ----------------------------------------------------------------------------------------


def explain(model: nn.Module, data: Any, head: int, relation: int, tail: int, k: int = 10,
            max_length: int | None = None, remove_query_edge: bool = True,
            rank: str = "sum") -> Explanation:
    """The model's score of ``(head, relation, tail)`` and its top-``k`` paths.

    Args:
        model: an :class:`~graphlearn.models.NBFNet` (``symmetric=False``).
        data: the message graph, a PyG ``Data`` with ``edge_index``,
            ``edge_type`` and ``num_nodes`` (e.g. a KG from
            :func:`graphlearn.data.kg.load_kg`).
        head, relation, tail: the query by id, ``relation`` in ``[0, num_relations)``.
        k: at most this many paths.
        max_length: longest path (default: the model's number of layers).
        rank: ``"sum"`` or ``"mean"`` edge importance per path (:func:`top_paths`).
        remove_query_edge: explain the triple from the rest of the graph: the
            edges ``(head, relation, tail)`` and ``(tail, relation^-1, head)``
            are removed first, as at training time (a known fact would
            otherwise explain itself). A triple not in the graph is unaffected.

    Returns:
        An :class:`Explanation`; its edges are ids of ``data``.
    """
    _check_explainable(model)
    graph = data
    removed = 0
    if remove_query_edge:
        one = torch.tensor([int(head)])
        graph = remove_query_edges(data, one, torch.tensor([int(relation)]),
                                   torch.tensor([int(tail)]), int(model.num_relations))
        removed = int(data.edge_index.size(1)) - int(graph.edge_index.size(1))
    if hasattr(model, "graph_data"):  # the edges the layers see (self-loops included)
        graph = model.graph_data(graph)
    importance, score = _importance_and_score(model, graph, head, relation, tail)
    paths = top_paths(importance, graph.edge_index, getattr(graph, "edge_type", None),
                      head, tail, k=k, max_length=max_length, rank=rank)
    return Explanation(int(head), int(relation), int(tail), score, paths, removed)


def _entity(data: Any, index: int) -> str:
    names = getattr(data, "entity_names", None)
    return str(names[index]) if names is not None and 0 <= index < len(names) else str(index)


def _relation(data: Any, index: int) -> str:
    if getattr(data, "relation_names", None) is None:
        return str(index)
    from graphlearn.data.kg import relation_name

    try:
        return relation_name(data, index)
    except IndexError:
        return str(index)


def path_text(edges: Sequence[Triple], data: Any = None) -> str:
    """``A -[born_in]-> B -[located_in^-1]-> C``: names from ``data`` when it has them."""
    if not edges:
        return ""
    parts = [_entity(data, edges[0][0])]
    for _, relation, target in edges:
        parts.append(f"-[{_relation(data, relation)}]-> {_entity(data, target)}")
    return " ".join(parts)


def format_path(path: ScoredPath, data: Any = None) -> str:
    """``0.1234  A -[born_in]-> B -[located_in^-1]-> C`` (score, then the path)."""
    return f"{path.score:.4g}  {path_text(path.edges, data)}"


def format_explanation(explanation: Explanation, data: Any = None) -> str:
    """The query, the model's score and one line per path, best first."""
    query = path_text([(explanation.head, explanation.relation, explanation.tail)], data)
    lines = [f"query: {query}  score {explanation.score:.4g}"]
    if explanation.removed_edges:
        lines.append(f"({explanation.removed_edges} edges stating the query removed first)")
    if not explanation.paths:
        lines.append("no path from head to tail within the model's layers")
    lines += [format_path(path, data) for path in explanation.paths]
    return "\n".join(lines)
