from __future__ import annotations

import math

import pytest
import torch
from scipy.stats import binom

from graphlearn.metrics.ranking import (
    DEFAULT_METRICS,
    FilterIndex,
    MetricSpec,
    build_filter_index,
    evaluate_kg,
    filtered_ranks,
    kg_ranks,
    parse_metric,
    ranking_metrics,
    sampled_hits,
)

# ---------------------------------------------------------------------------
# filtered_ranks


def test_ties_pessimistic_optimistic_average():
    # positive (column 0) scores 0.5; one candidate above, two tied, one below
    scores = torch.tensor([[0.5, 0.9, 0.5, 0.5, 0.1]])
    target = torch.tensor([0])
    pess, negatives = filtered_ranks(scores, target)
    opt, _ = filtered_ranks(scores, target, mode="optimistic")
    avg, _ = filtered_ranks(scores, target, mode="average")
    assert pess.tolist() == [4]
    assert opt.tolist() == [2]
    assert avg.tolist() == [3.0]
    assert negatives.tolist() == [4]


def test_constant_scorer_ranks_last_when_pessimistic():
    scores = torch.zeros(2, 6)
    ranks, _ = filtered_ranks(scores, torch.tensor([0, 3]))
    assert ranks.tolist() == [6, 6]
    ranks, _ = filtered_ranks(scores, torch.tensor([0, 3]), mode="optimistic")
    assert ranks.tolist() == [1, 1]


def test_filter_removes_other_answers_never_the_positive():
    scores = torch.tensor([[0.2, 0.9, 0.8, 0.1]])
    target = torch.tensor([0])
    raw, raw_negatives = filtered_ranks(scores, target)
    assert raw.tolist() == [3] and raw_negatives.tolist() == [3]
    # column 1 is another true answer; the positive is marked too and must stay
    mask = torch.tensor([[True, True, False, False]])
    ranks, negatives = filtered_ranks(scores, target, mask)
    assert ranks.tolist() == [2]
    assert negatives.tolist() == [2]


def test_filtered_ranks_rejects_bad_input():
    with pytest.raises(ValueError, match="rank mode"):
        filtered_ranks(torch.zeros(1, 3), torch.tensor([0]), mode="mean")
    with pytest.raises(ValueError, match="NaN"):
        filtered_ranks(torch.tensor([[0.0, float("nan")]]), torch.tensor([0]))
    with pytest.raises(ValueError, match=r"\[b, N\]"):
        filtered_ranks(torch.zeros(3), torch.tensor([0]))


# ---------------------------------------------------------------------------
# metrics


def test_hand_computed_metrics():
    out = ranking_metrics(torch.tensor([1, 2, 4, 12]))
    assert list(out) == ["mr", "mrr", "hits@1", "hits@3", "hits@10"]
    assert out["mr"] == pytest.approx(19 / 4)
    assert out["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 4 + 1 / 12) / 4)
    assert out["hits@1"] == pytest.approx(1 / 4)
    assert out["hits@3"] == pytest.approx(2 / 4)
    assert out["hits@10"] == pytest.approx(3 / 4)


def test_metric_names_parse():
    assert parse_metric("MRR") == MetricSpec("mrr")
    assert parse_metric("hits@3") == MetricSpec("hits", 3)
    assert parse_metric("hits@10_50") == MetricSpec("hits", 10, 50)
    for bad in ("hits@0", "hits@60_50", "hits10", "ndcg@10"):
        with pytest.raises(ValueError):
            parse_metric(bad)
    assert all(parse_metric(name) for name in DEFAULT_METRICS)


def test_sampled_hits_needs_num_negatives():
    with pytest.raises(ValueError, match="num_negatives"):
        ranking_metrics(torch.tensor([1, 2]), metrics=["hits@10_50"])
    out = ranking_metrics(torch.tensor([1, 2]), torch.tensor([5, 5]))
    assert "hits@10_50" in out


@pytest.mark.parametrize("k,num_samples", [(10, 50), (1, 50), (3, 5)])
def test_sampled_hits_matches_binomial_cdf(k, num_samples):
    ranks = torch.tensor([1, 2, 5, 40, 101, 300, 1000])
    negatives = torch.tensor([999, 999, 10, 200, 100, 999, 999])
    got = sampled_hits(ranks, negatives, k, num_samples)
    fp = [min((r - 1) / n, 1.0) for r, n in zip(ranks.tolist(), negatives.tolist())]
    want = [binom.cdf(k - 1, num_samples - 1, p) for p in fp]
    assert got.tolist() == pytest.approx(want, abs=1e-12)
    # rank 1: no negative can outscore the positive; every negative above: hits only if K = N
    assert got[0] == pytest.approx(1.0)
    assert got[4] == pytest.approx(0.0)


def test_sampled_hits_formula_by_hand():
    # N = 3 (two sampled negatives), p = 1/2: P(0 above) = 1/4, P(1 above) = 1/2
    got = sampled_hits(torch.tensor([3]), torch.tensor([4]), k=1, num_samples=3)
    assert got.item() == pytest.approx(0.25)
    got = sampled_hits(torch.tensor([3]), torch.tensor([4]), k=2, num_samples=3)
    assert got.item() == pytest.approx(0.75)
    assert math.comb(2, 1) * 0.5 * 0.5 + 0.25 == pytest.approx(0.75)


def test_sampled_hits_matches_monte_carlo():
    # one query: draw 49 negatives (with replacement) from the filtered ones, as the
    # estimate assumes, and count how often fewer than 10 of them score >= the positive
    gen = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 50, (1, 300), generator=gen).float()
    scores[0, 7] = 40.0  # about a fifth of the negatives tie or beat it
    target = torch.tensor([7])
    mask = torch.zeros(1, 300, dtype=torch.bool)
    mask[0, 100:130] = True  # other true answers
    rank, negatives = filtered_ranks(scores, target, mask)

    candidate = ~mask[0]
    candidate[7] = False
    negative_scores = scores[0, candidate]
    trials = 40_000
    draws = torch.randint(0, negative_scores.numel(), (trials, 49), generator=gen)
    above = (negative_scores[draws] >= scores[0, 7]).sum(1)
    monte_carlo = (above < 10).double().mean().item()

    estimate = ranking_metrics(rank, negatives, ["hits@10_50"])["hits@10_50"]
    assert 0.05 < estimate < 0.95  # a non-trivial case
    assert estimate == pytest.approx(monte_carlo, abs=0.01)


# ---------------------------------------------------------------------------
# filter index


def test_filter_index_holds_both_directions():
    # R = 2 relations, 4 entities
    triples = torch.tensor([[0, 0, 1], [0, 0, 2], [2, 1, 0], [0, 0, 1]])
    index = build_filter_index(triples, num_relations=2, num_entities=4)
    heads = torch.tensor([0, 1, 2, 2, 0, 3, 2])
    relations = torch.tensor([0, 2, 2, 1, 3, 0, 0])
    mask = index.mask(heads, relations)
    assert mask.shape == (7, 4)
    expected = [
        {1, 2},  # (0, r0, ?)
        {0},  # (1, r0^-1, ?)
        {0},  # (2, r0^-1, ?)
        {0},  # (2, r1, ?)
        {2},  # (0, r1^-1, ?)
        set(),  # (3, r0, ?): no answers
        set(),  # (2, r0, ?)
    ]
    assert [set(row.nonzero().flatten().tolist()) for row in mask] == expected
    assert index.answers.numel() == 6  # the duplicate triple is stored once


def test_filter_index_from_data_and_validation():
    from torch_geometric.data import Data

    data = Data(filter_triples=torch.tensor([[0, 1, 2]]), num_relations=4, num_nodes=3)
    index = FilterIndex.from_data(data)
    assert (index.num_entities, index.num_relations) == (3, 2)
    with pytest.raises(ValueError, match="relation ids"):
        build_filter_index(torch.tensor([[0, 2, 1]]), num_relations=2, num_entities=3)
    with pytest.raises(ValueError, match="entity ids"):
        build_filter_index(torch.tensor([[0, 0, 3]]), num_relations=2, num_entities=3)
    empty = build_filter_index(torch.empty(0, 3, dtype=torch.long), 2, 3)
    assert not empty.mask(torch.tensor([0]), torch.tensor([1])).any()


# ---------------------------------------------------------------------------
# evaluate_kg


def _table_scorer(table: torch.Tensor, num_relations: int):
    """score_fn from a fixed [num_entities * 2R, num_entities] table of query scores."""
    calls = []

    def score_fn(heads, relations):
        calls.append(heads.numel())
        return table[heads * (2 * num_relations) + relations]

    return score_fn, calls


def test_evaluate_kg_by_hand_with_head_queries_through_inverse():
    # 3 entities, R = 1. True triples: (0, 0, 1) and (0, 0, 2); test triple (0, 0, 1).
    num_entities, num_relations = 3, 1
    table = torch.zeros(num_entities * 2, num_entities)
    # tail query (0, r0, ?): entity 2 (another true answer) scores highest, 0 ties 1
    table[0 * 2 + 0] = torch.tensor([0.5, 0.5, 0.9])
    # head query (1, r0^-1, ?): answer 0 scores below entity 2
    table[1 * 2 + 1] = torch.tensor([0.3, 0.0, 0.6])
    index = build_filter_index(torch.tensor([[0, 0, 1], [0, 0, 2]]), num_relations, num_entities)
    score_fn, _ = _table_scorer(table, num_relations)
    out, ranks = evaluate_kg(
        score_fn, torch.tensor([[0, 0, 1]]), index, num_entities, num_relations, return_ranks=True
    )
    # tail: 2 is filtered, 0 ties -> pessimistic rank 2; head: 2 outscores 0 -> rank 2
    assert ranks.tail.tolist() == [2] and ranks.head.tolist() == [2]
    assert ranks.tail_num_negatives.tolist() == [1]
    assert ranks.head_num_negatives.tolist() == [2]
    assert out["mrr"] == pytest.approx(0.5)
    assert out["tail_mrr"] == pytest.approx(0.5) and out["head_hits@1"] == 0.0

    optimistic = evaluate_kg(score_fn, torch.tensor([[0, 0, 1]]), index, mode="optimistic")
    assert optimistic["tail_mr"] == 1.0 and optimistic["head_mr"] == 2.0
    assert optimistic["mrr"] == pytest.approx(0.75)


def _reference_ranks(table, triples, true_triples, num_entities, num_relations):
    """Loop-by-loop pessimistic filtered ranks (the spec)."""
    true = {tuple(t) for t in true_triples.tolist()}
    tails, heads = [], []
    for h, r, t in triples.tolist():
        row = table[h * 2 * num_relations + r]
        negatives = [e for e in range(num_entities) if e != t and (h, r, e) not in true]
        tails.append(1 + sum(bool(row[e] >= row[t]) for e in negatives))
        row = table[t * 2 * num_relations + r + num_relations]
        negatives = [e for e in range(num_entities) if e != h and (e, r, t) not in true]
        heads.append(1 + sum(bool(row[e] >= row[h]) for e in negatives))
    return tails, heads


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_evaluate_kg_matches_loop_reference(batch_size):
    gen = torch.Generator().manual_seed(1)
    num_entities, num_relations = 9, 3
    true_triples = torch.stack(
        [
            torch.randint(0, num_entities, (30,), generator=gen),
            torch.randint(0, num_relations, (30,), generator=gen),
            torch.randint(0, num_entities, (30,), generator=gen),
        ],
        dim=1,
    )
    test = true_triples[:12]
    # integer scores so that ties occur
    table = torch.randint(0, 4, (num_entities * 2 * num_relations, num_entities), generator=gen)
    table = table.float()
    index = build_filter_index(true_triples, num_relations, num_entities)
    score_fn, calls = _table_scorer(table, num_relations)
    ranks = kg_ranks(score_fn, test, index, batch_size=batch_size)
    tails, heads = _reference_ranks(table, test, true_triples, num_entities, num_relations)
    assert ranks.tail.tolist() == tails
    assert ranks.head.tolist() == heads
    assert max(calls) <= batch_size and sum(calls) == 2 * test.size(0)


def test_evaluate_kg_rejects_mismatches():
    index = build_filter_index(torch.tensor([[0, 0, 1]]), num_relations=2, num_entities=3)
    triples = torch.tensor([[0, 1, 2]])

    def score_fn(heads, relations):
        return torch.zeros(heads.numel(), 3)

    with pytest.raises(ValueError, match=r"data.num_relations // 2"):
        evaluate_kg(score_fn, triples, index, num_relations=4)
    with pytest.raises(ValueError, match="num_entities"):
        evaluate_kg(score_fn, triples, index, num_entities=5)
    with pytest.raises(ValueError, match="relation ids"):
        evaluate_kg(score_fn, torch.tensor([[0, 2, 1]]), index)
    with pytest.raises(ValueError, match="score_fn must return"):
        evaluate_kg(lambda h, r: torch.zeros(h.numel(), 4), triples, index)
