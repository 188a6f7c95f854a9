from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data

from graphlearn.metrics.ranking import build_filter_index
from graphlearn.tasks.negatives import (
    sample_kg_negatives,
    strict_negative_tails,
    training_filter_index,
    uniform_negative_tails,
)

# Entities 0..4, relations 0..1 (R = 2):
#   0 -r0-> 1, 0 -r0-> 2, 0 -r0-> 3, 3 -r0-> 1, 4 -r1-> 0, 1 -r1-> 0
HAND = torch.tensor([[0, 0, 1], [0, 0, 2], [0, 0, 3], [3, 0, 1], [4, 1, 0], [1, 1, 0]])
N, R = 5, 2


def _true(index, heads, relations, negatives):
    """BoolTensor [b, k]: negative is a known answer of its query."""
    mask = index.mask(heads, relations)  # (b, N)
    return mask.gather(1, negatives)


def test_hand_graph_tail_and_head_corruptions():
    index = build_filter_index(HAND, R, N)
    g = torch.Generator().manual_seed(0)
    batch = sample_kg_negatives(HAND, index, num_negative=50, generator=g)
    # first ceil(6 / 2) = 3 corrupt tails, the last 3 heads via r + R
    assert batch.corrupt_head.tolist() == [False] * 3 + [True] * 3
    assert batch.head.tolist() == [0, 0, 0, 1, 0, 0]
    assert batch.relation.tolist() == [0, 0, 0, 0 + R, 1 + R, 1 + R]
    assert batch.tail.tolist() == [1, 2, 3, 3, 4, 1]
    assert batch.negative.shape == (6, 50)
    # (0, r0, ?) has answers {1, 2, 3}: negatives only 0 and 4, both drawn
    for row in range(3):
        assert set(batch.negative[row].tolist()) == {0, 4}
    # (1, r0^-1, ?) has answers {0, 3}: negatives 1, 2, 4
    assert set(batch.negative[3].tolist()) == {1, 2, 4}
    # (0, r1^-1, ?) has answers {1, 4}: negatives 0, 2, 3
    assert set(batch.negative[4].tolist()) == {0, 2, 3}
    assert not _true(index, batch.head, batch.relation, batch.negative).any()


def test_single_free_candidate():
    triples = torch.tensor([[0, 0, t] for t in (1, 2, 3, 4)])  # (0, r0, ?) has answers 1..4
    index = build_filter_index(triples, 1, 5)
    negatives = strict_negative_tails(
        torch.tensor([0]),
        torch.tensor([0]),
        torch.tensor([1]),
        index,
        20,
        torch.Generator().manual_seed(1),
    )
    assert negatives.tolist() == [[0] * 20]


def test_positive_excluded_even_when_not_indexed():
    index = build_filter_index(torch.tensor([[0, 0, 1]]), 1, 3)
    negatives = strict_negative_tails(
        torch.tensor([0]),
        torch.tensor([0]),
        torch.tensor([2]),
        index,
        30,
        torch.Generator().manual_seed(0),
    )
    assert set(negatives.flatten().tolist()) == {0}


def test_query_without_negatives_is_an_error():
    triples = torch.tensor([[0, 0, t] for t in range(4)])
    index = build_filter_index(triples, 1, 4)
    with pytest.raises(ValueError, match=r"query \(head=0, relation=0\) has no strict negative"):
        strict_negative_tails(torch.tensor([0]), torch.tensor([0]), torch.tensor([1]), index, 2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_graph_never_hits_a_true_answer(seed):
    g = torch.Generator().manual_seed(100 + seed)
    num_entities, num_base = 40, 3
    # dense enough that many queries have most entities as answers
    triples = torch.stack(
        [
            torch.randint(num_entities, (900,), generator=g),
            torch.randint(num_base, (900,), generator=g),
            torch.randint(12, (900,), generator=g),  # tails concentrated on 0..11
        ],
        dim=1,
    )
    index = build_filter_index(triples, num_base, num_entities)
    batch = triples[torch.randperm(900, generator=g)[:256]]
    out = sample_kg_negatives(batch, index, 64, generator=g)
    assert out.negative.min() >= 0 and out.negative.max() < num_entities
    assert not _true(index, out.head, out.relation, out.negative).any()
    assert not (out.negative == out.tail.unsqueeze(1)).any()
    # the positive itself is a true answer of its query
    assert index.mask(out.head, out.relation).gather(1, out.tail.unsqueeze(1)).all()


def test_negatives_are_uniform_over_the_complement():
    num_entities = 20
    answers = [3, 4, 5, 11, 19]
    triples = torch.tensor([[0, 0, t] for t in answers])
    index = build_filter_index(triples, 1, num_entities)
    negatives = strict_negative_tails(
        torch.zeros(1, dtype=torch.long),
        torch.zeros(1, dtype=torch.long),
        torch.tensor([3]),
        index,
        30_000,
        torch.Generator().manual_seed(0),
    )
    counts = torch.bincount(negatives.flatten(), minlength=num_entities).double()
    free = [e for e in range(num_entities) if e not in answers]
    assert counts[answers].sum() == 0
    expected = 30_000 / len(free)
    chi2 = float(((counts[free] - expected) ** 2 / expected).sum())
    assert chi2 < 40.0  # 14 degrees of freedom; p < 1e-3 above ~36


def test_same_generator_state_same_negatives():
    index = build_filter_index(HAND, R, N)
    a = sample_kg_negatives(HAND, index, 8, torch.Generator().manual_seed(5))
    b = sample_kg_negatives(HAND, index, 8, torch.Generator().manual_seed(5))
    c = sample_kg_negatives(HAND, index, 8, torch.Generator().manual_seed(6))
    assert torch.equal(a.negative, b.negative)
    assert not torch.equal(a.negative, c.negative)


def test_does_not_touch_the_global_rng():
    index = build_filter_index(HAND, R, N)
    torch.manual_seed(0)
    before = torch.rand(3)
    torch.manual_seed(0)
    sample_kg_negatives(HAND, index, 8, torch.Generator().manual_seed(5))
    assert torch.equal(torch.rand(3), before)


def test_non_strict_sampling_is_uniform_over_all_entities():
    index = build_filter_index(HAND, R, N)
    out = sample_kg_negatives(HAND, index, 400, torch.Generator().manual_seed(0), strict=False)
    assert set(out.negative.flatten().tolist()) == set(range(N))
    draws = uniform_negative_tails(3, 7, 5, torch.Generator().manual_seed(0))
    assert draws.shape == (3, 5) and draws.max() < 7


def test_training_filter_index_uses_train_triples_only():
    data = Data(
        num_nodes=N,
        num_relations=2 * R,
        train_triples=HAND[:3],
        filter_triples=HAND,
    )
    index = training_filter_index(data)
    # (3, r0, 1) is not a training triple, so 1 is a valid negative of (3, r0, ?)
    assert not index.mask(torch.tensor([3]), torch.tensor([0]))[0, 1]
    assert index.mask(torch.tensor([0]), torch.tensor([0]))[0, [1, 2, 3]].all()


def test_bad_input():
    index = build_filter_index(HAND, R, N)
    with pytest.raises(ValueError, match=r"\[b, 3\]"):
        sample_kg_negatives(HAND[:, :2], index, 4)
    with pytest.raises(ValueError, match="relations must lie"):
        sample_kg_negatives(torch.tensor([[0, R, 1]]), index, 4)
    with pytest.raises(ValueError, match="num_negative"):
        sample_kg_negatives(HAND, index, 0)
    empty = sample_kg_negatives(HAND[:0], index, 4)
    assert empty.negative.shape == (0, 4)


# -- StrictPairSampler (homogeneous full-graph link models, the ogbl task) ---------------


def test_strict_pairs_are_never_edges_or_loops_and_distinct():
    from graphlearn.tasks.negatives import StrictPairSampler

    edges = torch.tensor([[0, 1, 1, 2, 3], [1, 0, 2, 1, 3]])  # 3 -> 3 is a loop
    sampler = StrictPairSampler(edges, 5)
    assert sampler.num_free == 5 * 4 - 4
    gen = torch.Generator().manual_seed(0)
    for num in (3, 8, 16):  # rejection and (16 > free / 2) enumeration
        pairs = sampler.sample(num, gen)
        assert pairs.shape == (2, num)
        seen = [tuple(p) for p in pairs.t().tolist()]
        assert len(set(seen)) == num
        assert all(a != b and (a, b) not in {(0, 1), (1, 0), (1, 2), (2, 1)} for a, b in seen)
    again = StrictPairSampler(edges, 5).sample(8, torch.Generator().manual_seed(1))
    assert torch.equal(again, StrictPairSampler(edges, 5).sample(
        8, torch.Generator().manual_seed(1)))  # the generator decides everything
    with pytest.raises(ValueError, match="cannot draw 17 distinct negative pairs: only 16"):
        sampler.sample(17, gen)
    with pytest.raises(ValueError, match=r"node ids must be in \[0, 3\)"):
        StrictPairSampler(edges, 3)


def test_strict_pairs_are_uniform_over_the_free_pairs():
    from graphlearn.tasks.negatives import StrictPairSampler

    sampler = StrictPairSampler(torch.tensor([[0, 1], [1, 0]]), 4)  # 10 free ordered pairs
    gen = torch.Generator().manual_seed(0)
    counts: dict[tuple[int, int], int] = {}
    for _ in range(400):
        for pair in sampler.sample(2, gen).t().tolist():
            counts[tuple(pair)] = counts.get(tuple(pair), 0) + 1
    assert len(counts) == 10 and min(counts.values()) > 50 and max(counts.values()) < 110


def test_typed_negatives_stay_in_the_answer_type_and_are_uniform_there():
    """Types are id blocks [0, 6) and [6, 20): (0, r0, ?) answers 7, 8, 19 (type 1)
    and, against the schema, 2 (type 0: it must not shrink type 1's free set)."""
    num_entities = 20
    answers = [2, 7, 8, 19]
    index = build_filter_index(torch.tensor([[0, 0, t] for t in answers]), 1, num_entities)
    ranges = torch.tensor([[6, 20]])
    negatives = strict_negative_tails(torch.tensor([0]), torch.tensor([0]), torch.tensor([7]),
                                      index, 26_000, torch.Generator().manual_seed(0), ranges)
    counts = torch.bincount(negatives.flatten(), minlength=num_entities).double()
    free = [e for e in range(6, 20) if e not in answers]  # 11 entities
    assert counts[:6].sum() == 0 and counts[answers].sum() == 0
    expected = 26_000 / len(free)
    chi2 = float(((counts[free] - expected) ** 2 / expected).sum())
    assert chi2 < 35.0  # 10 degrees of freedom; p < 1e-3 above ~29.6


def test_sample_kg_negatives_with_entity_ranges_uses_each_answer_type():
    # entities 0-2 type A, 3-5 type B; relation 0: A -> B
    triples = torch.tensor([[0, 0, 3], [1, 0, 4], [0, 0, 5], [2, 0, 3]])
    entity_ranges = torch.tensor([[0, 3]] * 3 + [[3, 6]] * 3)
    index = build_filter_index(triples, 1, 6)
    batch = sample_kg_negatives(triples, index, 40, torch.Generator().manual_seed(3),
                                entity_ranges=entity_ranges)
    # tail corruptions (first two) draw from type B, head corruptions from type A
    assert set(batch.negative[0].tolist()) == {4}  # (0, r0, ?) answers 3, 5
    assert set(batch.negative[1].tolist()) == {3, 5}  # (1, r0, ?) answers 4
    assert set(batch.negative[2].tolist()) == {1, 2}  # (5, r0^-1, ?) answers 0
    assert set(batch.negative[3].tolist()) == {1}  # (3, r0^-1, ?) answers 0, 2
    with pytest.raises(ValueError, match="strict=True"):
        sample_kg_negatives(triples, index, 4, strict=False, entity_ranges=entity_ranges)


def test_a_positive_outside_its_range_is_an_error():
    index = build_filter_index(torch.tensor([[0, 0, 3]]), 1, 6)
    with pytest.raises(ValueError, match="outside its range"):
        strict_negative_tails(torch.tensor([0]), torch.tensor([0]), torch.tensor([3]), index,
                              2, ranges=torch.tensor([[0, 3]]))
