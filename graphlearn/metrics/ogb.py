"""OGB link-prediction metrics through the official ``ogb.linkproppred.Evaluator``.

The numbers are OGB's own, so they compare with the leaderboards:

* ``ogbl-ddi`` (Hits@20), ``ogbl-collab`` (Hits@50), ``ogbl-ppa`` (Hits@100):
  ``pos_scores`` ``[n]``, ``neg_scores`` ``[m]`` (one shared pool of negatives).
  Hits@K is the fraction of positives scoring **strictly above** the K-th highest
  negative score (1.0 when there are fewer than K negatives).
* ``ogbl-citation2``, ``ogbl-biokg``, ``ogbl-wikikg2`` (MRR): ``pos_scores`` ``[n]``,
  ``neg_scores`` ``[n, k]`` (row ``i`` holds the negatives of positive ``i``). The rank
  is the mean of the optimistic and pessimistic rank, ``1 + (#{neg > pos} +
  #{neg >= pos}) / 2``; note that graphlearn's own filtered KG ranking
  (:mod:`graphlearn.metrics.ranking`) counts ties against the model instead.
* ``ogbl-vessel`` (ROC-AUC): ``[n]`` and ``[m]``.

``ogb`` is an optional dependency (``pip install 'graphlearn[ogb]'``), imported
only when :func:`ogb_evaluate` is first called. Importing ``ogb`` normally starts
a thread that asks PyPI whether ``ogb`` is outdated (its ``version.py`` imports
the ``outdated`` package); :func:`import_ogb_evaluator` hides ``outdated`` from
that one import (``sys.modules["outdated"] = None`` makes the import fail, which
``ogb`` tolerates), then restores ``sys.modules`` and the ``OUTDATED_IGNORE``
environment variable that ``ogb`` sets. No thread, no network.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from graphlearn.errors import ConfigError
from graphlearn.registry import did_you_mean, normalize_name
from graphlearn.typing import with_ogb

#: Dataset -> official metric (``ogb/linkproppred/master.csv``).
OGB_METRICS: dict[str, str] = {
    "ogbl-ddi": "hits@20",
    "ogbl-collab": "hits@50",
    "ogbl-ppa": "hits@100",
    "ogbl-citation2": "mrr",
    "ogbl-biokg": "mrr",
    "ogbl-wikikg2": "mrr",
    "ogbl-vessel": "rocauc",
}

_MISSING = object()


def import_ogb_evaluator() -> type:
    """Return ``ogb.linkproppred.Evaluator`` without starting ogb's PyPI-check thread.

    Raises:
        ImportError: ``ogb`` is not installed (names the ``graphlearn[ogb]`` extra).
    """
    if "ogb.linkproppred" in sys.modules:
        return sys.modules["ogb.linkproppred"].Evaluator
    if not with_ogb():
        raise ImportError("OGB evaluation needs the 'ogb' package: pip install 'graphlearn[ogb]'")
    saved_module = sys.modules.get("outdated", _MISSING)
    saved_env = os.environ.get("OUTDATED_IGNORE")
    sys.modules["outdated"] = None  # type: ignore[assignment]  # import -> ImportError
    try:
        from ogb.linkproppred import Evaluator
    finally:
        if saved_module is _MISSING:
            sys.modules.pop("outdated", None)
        else:
            sys.modules["outdated"] = saved_module  # type: ignore[assignment]
        if saved_env is None:
            os.environ.pop("OUTDATED_IGNORE", None)
        else:
            os.environ["OUTDATED_IGNORE"] = saved_env
    return Evaluator


def ogb_name(name: str) -> str:
    """Canonical OGB name: ``"ddi"``, ``"ogbl_ddi"``, ``"OGBL-DDI"`` -> ``"ogbl-ddi"``.

    Raises:
        ConfigError: not an OGB link dataset; lists the valid names.
    """
    if not isinstance(name, str):
        raise ConfigError(f"OGB dataset name must be a string, got {type(name).__name__}")
    key = normalize_name(name)
    for canonical in OGB_METRICS:
        if key in (normalize_name(canonical), normalize_name(canonical)[4:]):
            return canonical
    raise ConfigError(
        f"unknown OGB link dataset {name!r}{did_you_mean(name, list(OGB_METRICS))} "
        f"(valid: {', '.join(OGB_METRICS)})"
    )


def _as_tensor(values: Any) -> Tensor:
    if isinstance(values, np.ndarray):
        values = torch.from_numpy(values)
    elif not isinstance(values, Tensor):
        values = torch.as_tensor(values)
    if not values.is_floating_point():
        values = values.float()
    return values.detach().cpu()


def ogb_evaluate(
    name: str,
    pos_scores: Tensor | np.ndarray,
    neg_scores: Tensor | np.ndarray,
    ks: Sequence[int] | None = None,
) -> dict[str, float]:
    """Evaluate scores with OGB's official ``Evaluator`` for dataset ``name``.

    Args:
        name: ``"ogbl-ddi"`` etc. (``"ddi"`` accepted).
        pos_scores: ``[n]`` scores of the positive edges.
        neg_scores: ``[m]`` for Hits@K and ROC-AUC datasets, ``[n, k]`` for MRR ones.
        ks: Hits@K cut-offs for the Hits@K datasets (default: the official K only).

    Returns:
        Hits datasets: ``{"hits@K": ...}`` for each K. MRR datasets: ``{"mrr",
        "hits@1", "hits@3", "hits@10"}`` (means over positives). ``ogbl-vessel``:
        ``{"rocauc": ...}``.

    Raises:
        ConfigError: unknown dataset, or ``ks`` for a dataset without Hits@K.
        ValueError: input shapes that do not match the dataset's metric.
        ImportError: ``ogb`` is not installed.
    """
    canonical = ogb_name(name)
    metric = OGB_METRICS[canonical]
    pos = _as_tensor(pos_scores)
    neg = _as_tensor(neg_scores)
    if pos.dim() != 1:
        raise ValueError(f"{canonical}: pos_scores must be 1-D [n], got shape {list(pos.shape)}")
    if pos.numel() == 0:
        raise ValueError(f"{canonical}: pos_scores is empty")
    if metric == "mrr":
        if neg.dim() != 2 or neg.size(0) != pos.size(0):
            raise ValueError(
                f"{canonical} ({metric}): neg_scores must be [n, k] with n = {pos.size(0)} "
                f"(row i = negatives of positive i), got shape {list(neg.shape)}"
            )
    elif neg.dim() != 1:
        raise ValueError(
            f"{canonical} ({metric}): neg_scores must be 1-D [m] (one shared pool of "
            f"negatives), got shape {list(neg.shape)}"
        )
    if ks is not None and not metric.startswith("hits@"):
        raise ConfigError(f"ks only applies to Hits@K datasets; {canonical} uses {metric}")

    evaluator = import_ogb_evaluator()(canonical)
    inputs = {"y_pred_pos": pos, "y_pred_neg": neg}
    if metric.startswith("hits@"):
        cutoffs = [int(metric.split("@")[1])] if ks is None else [int(k) for k in ks]
        results = {}
        for k in cutoffs:
            if k < 1:
                raise ConfigError(f"Hits@K cut-offs must be >= 1, got {k}")
            evaluator.K = k  # the cut-off OGB's Evaluator reads
            results[f"hits@{k}"] = float(evaluator.eval(inputs)[f"hits@{k}"])
        return results
    if metric == "mrr":
        lists = evaluator.eval(inputs)
        return {
            "mrr": float(lists["mrr_list"].float().mean()),
            "hits@1": float(lists["hits@1_list"].float().mean()),
            "hits@3": float(lists["hits@3_list"].float().mean()),
            "hits@10": float(lists["hits@10_list"].float().mean()),
        }
    return {"rocauc": float(evaluator.eval(inputs)["rocauc"])}


__all__ = ["OGB_METRICS", "import_ogb_evaluator", "ogb_evaluate", "ogb_name"]
