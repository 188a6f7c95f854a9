import numpy as np
import pytest

from graphlearn.metrics.bootstrap import EvaluationSample, bootstrap, bootstrap_sample


def mean_of(values):
    values = np.asarray(values, dtype=np.float64)
    return lambda idx: {"mean": float(values[idx].mean())}


def test_point_value_is_the_statistic_on_every_unit_once():
    seen = []

    def statistic(idx):
        seen.append(idx.copy())
        return {"n": float(idx.size), "sum": float(np.arange(5)[idx].sum())}

    result = bootstrap(statistic, 5, resamples=3)
    assert np.array_equal(seen[0], np.arange(5))
    assert result.values == {"n": 5.0, "sum": 10.0}
    assert len(seen) == 1 + 3 and all(s.size == 5 for s in seen)
    assert result.intervals["n"] == (5.0, 5.0)  # every draw has as many units as the sample


def test_a_constant_has_a_zero_width_interval():
    result = bootstrap(mean_of([0.25] * 7), 7, resamples=50)
    assert result.values["mean"] == 0.25 and result.intervals["mean"] == (0.25, 0.25)


def test_two_units_give_the_three_possible_means():
    # draws of {0, 1}: mean 0 (p 1/4), 1/2 (p 1/2), 1 (p 1/4); a 95 % interval spans 0..1,
    # a 40 % one (the 30th..70th percentiles) is the middle value only
    wide = bootstrap(mean_of([0.0, 1.0]), 2, resamples=2000, confidence=0.95, seed=1)
    narrow = bootstrap(mean_of([0.0, 1.0]), 2, resamples=2000, confidence=0.4, seed=1)
    assert wide.values["mean"] == 0.5
    assert wide.intervals["mean"] == (0.0, 1.0)
    assert narrow.intervals["mean"] == (0.5, 0.5)


def test_strata_are_resampled_within_themselves():
    labels = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
    result = bootstrap(lambda idx: {"positives": float(labels[idx].sum())}, labels.size,
                       strata=labels, resamples=200)
    assert result.intervals["positives"] == (3.0, 3.0)
    free = bootstrap(lambda idx: {"positives": float(labels[idx].sum())}, labels.size,
                     resamples=200)
    low, high = free.intervals["positives"]
    assert low < 3.0 < high  # without strata the class sizes vary from draw to draw


def test_interval_of_a_mean_matches_the_normal_approximation():
    values = np.random.default_rng(0).normal(size=400)
    result = bootstrap(mean_of(values), values.size, resamples=2000, seed=0)
    low, high = result.intervals["mean"]
    half_width = 1.96 * values.std() / np.sqrt(values.size)  # about 0.098
    assert low < values.mean() < high
    assert abs((high - low) / 2 - half_width) < 0.15 * half_width


def test_the_seed_fixes_the_draws():
    values = np.arange(20, dtype=np.float64)
    a = bootstrap(mean_of(values), 20, resamples=100, seed=3)
    b = bootstrap(mean_of(values), 20, resamples=100, seed=3)
    c = bootstrap(mean_of(values), 20, resamples=100, seed=4)
    assert a == b and a.intervals != c.intervals
    assert a.to_dict() == {"resamples": 100, "confidence": 0.95, "seed": 3,
                           "intervals": {"mean": list(a.intervals["mean"])}}


def test_undefined_draws_are_left_out_and_progress_is_reported():
    labels = np.array([0, 1])

    def statistic(idx):  # undefined when a draw holds one class only
        picked = labels[idx]
        return {"share": float(picked.mean()) if 0 < picked.sum() < picked.size else np.nan}

    ticks = []
    result = bootstrap(statistic, 2, resamples=40, seed=0, progress=ticks.append)
    assert ticks == [1] * 40
    assert result.intervals["share"] == (0.5, 0.5)
    never = bootstrap(lambda idx: {"x": np.nan}, 3, resamples=5)
    assert never.intervals == {"x": None} and never.to_dict()["intervals"] == {"x": None}


def test_metrics_named_in_no_interval_get_a_point_value_only():
    result = bootstrap(lambda idx: {"mean": float(idx.mean()), "distinct": float(
        np.unique(idx).size)}, 10, resamples=20, no_interval={"distinct"})
    assert result.values == {"mean": 4.5, "distinct": 10.0}
    assert result.intervals["distinct"] is None and result.intervals["mean"] is not None
    sample = EvaluationSample(lambda idx: {"n": float(np.unique(idx).size)}, 4, None, "unit",
                              {"n": "a count of distinct units"})
    assert bootstrap_sample(sample, resamples=5).intervals == {"n": None}


def test_bootstrap_sample_passes_the_sample_on():
    labels = np.array([1, 0, 1, 0])
    sample = EvaluationSample(lambda idx: {"pos": float(labels[idx].sum())}, 4, labels, "pair")
    assert bootstrap_sample(sample, resamples=10).intervals["pos"] == (2.0, 2.0)


@pytest.mark.parametrize("kwargs, message", [
    ({"num_units": 0}, "at least one unit"),
    ({"resamples": 1}, "resamples must be >= 2"),
    ({"confidence": 1.0}, "confidence must lie in (0, 1)"),
    ({"confidence": 0.0}, "confidence must lie in (0, 1)"),
    ({"strata": [0, 1]}, "strata has 2 entries for 3 units"),
])
def test_bad_arguments_are_errors(kwargs, message):
    args = {"num_units": 3, **kwargs}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        bootstrap(mean_of([1.0, 2.0, 3.0]), **args)
