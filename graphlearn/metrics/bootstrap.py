"""Bootstrap confidence intervals of evaluation metrics over a fixed test set.

A test metric is computed from a finite sample of test examples; another
sample of the same size from the same distribution would give another value.
The bootstrap estimates that spread for one trained model: draw the test
examples with replacement ``resamples`` times, recompute every metric on each
draw, and report the central ``confidence`` share of the draws (percentile
intervals, Efron & Tibshirani 1993, ch. 13). It says nothing about the spread
over training seeds or over data splits, which come on top.

Valid for means over examples (MRR, Hits@K, recall, ...) and smooth functions
of them such as AUROC; not for statistics a draw with repeated units distorts
(a union such as item coverage) or extreme order statistics (the K-th best of a
large negative pool): tasks name those in ``EvaluationSample.no_interval`` or
hold them fixed.

``strata`` keeps the size of each group fixed across draws (e.g. positives and
negatives for AUROC/AP, whose ratio is part of the protocol): each group is
resampled within itself.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

import numpy as np

Statistic = Callable[[np.ndarray], dict[str, float]]


@dataclass(frozen=True)
class EvaluationSample:
    """A split's evaluation as resampling units: what :func:`bootstrap` draws from.

    Attributes:
        statistic: the split's metrics on the units at the given indices.
        num_units: the number of units (scored pairs, test triples, ...).
        strata: ``[num_units]`` group ids resampled within themselves, or ``None``.
        unit: what one unit is, in words, for reports.
        no_interval: metrics reported without an interval, each with the reason
            (e.g. a union over units, which draws with repeated units shrink).
    """

    statistic: Statistic
    num_units: int
    strata: np.ndarray | None
    unit: str
    no_interval: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BootstrapResult:
    """Point values on the whole sample and percentile intervals from the draws."""

    values: dict[str, float]
    #: ``None`` for a metric left without an interval (``no_interval``, or no finite draw)
    intervals: dict[str, tuple[float, float] | None]
    resamples: int
    confidence: float
    seed: int

    def to_dict(self) -> dict[str, object]:
        return {"resamples": self.resamples, "confidence": self.confidence, "seed": self.seed,
                "intervals": {name: None if bounds is None else list(bounds)
                              for name, bounds in self.intervals.items()}}


def bootstrap_sample(sample: EvaluationSample, **kwargs: object) -> BootstrapResult:
    """:func:`bootstrap` over an :class:`EvaluationSample` (keyword arguments passed on)."""
    return bootstrap(sample.statistic, sample.num_units, strata=sample.strata,
                     no_interval=sample.no_interval, **kwargs)  # type: ignore[arg-type]


def bootstrap(statistic: Statistic, num_units: int, *, strata: Sequence[int] | np.ndarray | None
              = None, resamples: int = 1000, confidence: float = 0.95, seed: int = 0,
              progress: Callable[[int], None] | None = None,
              no_interval: Collection[str] = ()) -> BootstrapResult:
    """Percentile bootstrap intervals of the metrics ``statistic`` computes.

    Args:
        statistic: ``statistic(indices) -> {metric: value}`` on the units at
            ``indices`` (an int64 array, repeats allowed); called once on
            ``arange(num_units)`` for the point values, then once per draw.
        num_units: how many resampling units (test examples) there are.
        strata: ``[num_units]`` group ids; each group is resampled within itself.
        resamples: number of draws (>= 2; 1000 or more for 95 % intervals).
        confidence: the interval's coverage, in ``(0, 1)``.
        seed: seed of the draws (the same seed gives the same intervals).
        progress: called with 1 after each draw (e.g. a progress bar's update).
        no_interval: metrics given a point value only (interval ``None``).

    Returns:
        A :class:`BootstrapResult`. A metric a draw leaves undefined (NaN) is
        left out of that draw's quantiles; one no draw defines gets ``None``.

    Raises:
        ValueError: no units, ``resamples < 2``, ``confidence`` outside
            ``(0, 1)``, or ``strata`` of the wrong length.
    """
    if num_units < 1:
        raise ValueError("bootstrap needs at least one unit to resample")
    if resamples < 2:
        raise ValueError(f"resamples must be >= 2, got {resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if strata is None:
        groups = [np.arange(num_units, dtype=np.int64)]
    else:
        labels = np.asarray(strata).reshape(-1)
        if labels.size != num_units:
            raise ValueError(f"strata has {labels.size} entries for {num_units} units")
        groups = [np.flatnonzero(labels == value).astype(np.int64) for value in np.unique(labels)]

    values = statistic(np.arange(num_units, dtype=np.int64))
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {name: [] for name in values if name not in no_interval}
    for _ in range(resamples):
        indices = np.concatenate([group[rng.integers(0, group.size, group.size)]
                                  for group in groups])
        for name, value in statistic(indices).items():
            if name in draws:
                draws[name].append(float(value))
        if progress is not None:
            progress(1)

    tail = (1.0 - confidence) / 2.0
    intervals: dict[str, tuple[float, float] | None] = {}
    for name in values:
        finite = np.asarray(draws.get(name, []), dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        if finite.size == 0:
            intervals[name] = None
        else:
            low, high = np.quantile(finite, [tail, 1.0 - tail])
            intervals[name] = (float(low), float(high))
    return BootstrapResult({k: float(v) for k, v in values.items()}, intervals, resamples,
                           confidence, seed)
