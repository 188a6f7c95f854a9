"""Top-K recommendation metrics: hand-computed cases, ties, masking, chunking."""

from __future__ import annotations

import math

import pytest
import torch

from graphlearn.data.interactions import UserItemCSR
from graphlearn.errors import GraphlearnError
from graphlearn.metrics.topk import evaluate_topk, mask_seen_, topk_items, topk_metrics

L3 = 1 / math.log2(3)  # discount at rank 2


def csr(rows: list[list[int]], num_items: int) -> UserItemCSR:
    users = [u for u, items in enumerate(rows) for _ in items]
    items = [i for row in rows for i in row]
    return UserItemCSR.from_pairs(torch.tensor(users, dtype=torch.long),
                                  torch.tensor(items, dtype=torch.long), len(rows), num_items)


# 4 users, 6 items.
#   u0: item 0 seen (top score), ranking 1 2 3 4 5, truth {2, 5}: hit at rank 2 only
#   u1: all scores tie -> ids 0 1 2, truth {0}: hit at rank 1
#   u2: no ground truth -> excluded everywhere (coverage too)
#   u3: truth {4} scored low: no hit in the top 3
SCORES = torch.tensor([
    [0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
    [0.1, 0.1, 0.1, 0.1, 0.1, 0.1],
    [0.0, 0.0, 0.0, 0.0, 0.9, 0.9],
    [0.6, 0.5, 0.4, 0.3, 0.0, 0.2],
])
TRUTH = csr([[2, 5], [0], [], [4]], 6)
SEEN = csr([[0], [], [], []], 6)


def test_hand_computed_at_3():
    result = evaluate_topk(SCORES, TRUTH, SEEN, ks=[3])
    assert result["recall@3"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert result["precision@3"] == pytest.approx((1 / 3 + 1 / 3 + 0) / 3)
    # F1 per user: u0 2*(1/3)(1/2)/(5/6) = 0.4, u1 2*(1/3)*1/(4/3) = 0.5, u3 0
    assert result["f1@3"] == pytest.approx((0.4 + 0.5) / 3)
    p, r = result["precision@3"], result["recall@3"]
    assert result["f1@3"] != pytest.approx(2 * p * r / (p + r))  # not from the averages
    assert result["ndcg@3"] == pytest.approx((L3 / (1 + L3) + 1 + 0) / 3)
    assert result["mrr@3"] == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert result["hit@3"] == pytest.approx(2 / 3)
    # MAP: u0 precision@2 = 1/2 at its hit, over min(|R|=2, K=3) = 2 -> 0.25; u1 -> 1
    assert result["map@3"] == pytest.approx((0.25 + 1 + 0) / 3)
    # top-3 lists of evaluated users: {1,2,3}, {0,1,2}, {0,1,2} -> 4 of 6 items
    assert result["coverage@3"] == pytest.approx(4 / 6)
    assert set(result) == {f"{m}@3" for m in
                           ("recall", "precision", "f1", "ndcg", "mrr", "hit", "map", "coverage")}


def test_user_without_ground_truth_is_excluded():
    with_u2 = evaluate_topk(SCORES, TRUTH, SEEN, ks=[3])
    without = evaluate_topk(SCORES[[0, 1, 3]], csr([[2, 5], [0], [4]], 6),
                            csr([[0], [], []], 6), ks=[3])
    assert with_u2 == pytest.approx(without)


def test_map_ndcg_mrr_with_several_hits():
    hits = torch.tensor([[True, False, True, False, True]])
    relevant = torch.tensor([3])
    at5 = topk_metrics(hits, relevant, 5)
    assert float(at5["map"][0]) == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    idcg = 1 + L3 + 0.5
    assert float(at5["ndcg"][0]) == pytest.approx((1 + 0.5 + 1 / math.log2(6)) / idcg)
    at2 = topk_metrics(hits, relevant, 2)
    assert float(at2["map"][0]) == pytest.approx(1 / 2)  # min(|R|, K) = 2
    assert float(at2["ndcg"][0]) == pytest.approx(1 / (1 + L3))  # IDCG over min(|R|, K)
    assert float(at2["recall"][0]) == pytest.approx(1 / 3)
    late = topk_metrics(torch.tensor([[False, False, True]]), torch.tensor([1]), 3)
    assert float(late["mrr"][0]) == pytest.approx(1 / 3)
    assert float(topk_metrics(torch.tensor([[False, False, True]]), torch.tensor([1]), 2)
                 ["mrr"][0]) == 0.0


def test_seen_items_masked_to_minus_inf_not_zeroed():
    # all scores negative: zeroing the seen item would put it on top
    scores = torch.tensor([[-1.0, -2.0, -3.0, -4.0]])
    seen = csr([[2]], 4)
    top = topk_items(scores, seen, 3)
    assert top.tolist() == [[0, 1, 3]]
    assert scores.tolist() == [[-1.0, -2.0, -3.0, -4.0]]  # input untouched
    mask = torch.tensor([[True, False, False, False]])
    assert topk_items(scores, mask, 2).tolist() == [[1, 2]]
    result = evaluate_topk(scores, csr([[2]], 4), seen, ks=[1, 3])
    assert result["hit@3"] == 0.0  # a seen item can never be a hit


def test_top_seen_item_never_recommended():
    scores = torch.tensor([[5.0, 1.0, 2.0], [0.0, 9.0, 1.0]])
    seen = csr([[0], [1]], 3)
    top = topk_items(scores, seen, 2, users=torch.tensor([0, 1]))
    assert top.tolist() == [[2, 1], [2, 0]]
    # rows map to users: row 0 is user 1 here
    assert topk_items(scores, seen, 1, users=torch.tensor([1, 0])).tolist() == [[0], [1]]


def test_padding_when_fewer_items_than_k():
    scores = torch.tensor([[0.3, 0.2, 0.1]])
    seen = csr([[0, 1]], 3)
    assert topk_items(scores, seen, 3).tolist() == [[2, -1, -1]]
    assert topk_items(scores, None, 5).tolist() == [[0, 1, 2, -1, -1]]
    result = evaluate_topk(scores, csr([[2]], 3), seen, ks=[3])
    assert result["precision@3"] == pytest.approx(1 / 3) and result["recall@3"] == 1.0
    assert result["coverage@3"] == pytest.approx(1 / 3)


def reference_ranking(row: torch.Tensor) -> list[int]:
    """Descending score, ties by ascending id, -inf items dropped."""
    items = [i for i in range(row.numel()) if row[i] != float("-inf")]
    return sorted(items, key=lambda i: (-float(row[i]), i))


def test_ties_break_to_lower_id():
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 4, (50, 30), generator=g).float()  # heavy ties
    scores[torch.rand(50, 30, generator=g) < 0.2] = float("-inf")
    for k in (1, 5, 12, 30):
        top = topk_items(scores, None, k)
        for row, ids in zip(scores, top.tolist()):
            expected = reference_ranking(row)[:k]
            assert ids == expected + [-1] * (k - len(expected))


def reference_metrics(scores, truth_rows, seen_rows, k):
    """Straightforward per-user loops (independent of the vectorised code)."""
    per_user = []
    for row, truth, seen in zip(scores, truth_rows, seen_rows):
        if not truth:
            continue
        masked = row.clone()
        masked[list(seen)] = float("-inf")
        ranked = reference_ranking(masked)[:k]
        rel = [1 if i in truth else 0 for i in ranked] + [0] * (k - len(ranked))
        hits = sum(rel)
        p, r = hits / k, hits / len(truth)
        ideal = min(len(truth), k)
        dcg = sum(x / math.log2(i + 2) for i, x in enumerate(rel))
        idcg = sum(1 / math.log2(i + 2) for i in range(ideal))
        first = next((i + 1 for i, x in enumerate(rel) if x), None)
        ap = sum(sum(rel[: i + 1]) / (i + 1) for i, x in enumerate(rel) if x) / ideal
        per_user.append({"recall": r, "precision": p, "f1": 2 * p * r / (p + r) if hits else 0,
                         "ndcg": dcg / idcg, "mrr": 1 / first if first else 0,
                         "hit": float(hits > 0), "map": ap})
    return {name: sum(u[name] for u in per_user) / len(per_user) for name in per_user[0]}


@pytest.mark.parametrize("batch_size", [1, 7, 1024])
def test_matches_reference_on_random_data(batch_size):
    g = torch.Generator().manual_seed(1)
    num_users, num_items = 23, 17
    scores = torch.randint(0, 6, (num_users, num_items), generator=g).float()
    truth_rows, seen_rows = [], []
    for u in range(num_users):
        perm = torch.randperm(num_items, generator=g).tolist()
        n_truth = 0 if u % 5 == 0 else 1 + u % 4
        truth_rows.append(set(perm[:n_truth]))
        seen_rows.append(set(perm[n_truth:n_truth + u % 6]))
    truth = csr([sorted(t) for t in truth_rows], num_items)
    seen = csr([sorted(s) for s in seen_rows], num_items)

    def score_fn(users):
        return scores[users]

    result = evaluate_topk(score_fn, truth, seen, ks=(3, 10), batch_size=batch_size)
    for k in (3, 10):
        expected = reference_metrics(scores, truth_rows, seen_rows, k)
        for name, value in expected.items():
            assert result[f"{name}@{k}"] == pytest.approx(value), (name, k)
    assert result == evaluate_topk(scores, truth, seen, ks=(10, 3), batch_size=5)


def test_mask_seen_in_place():
    scores = torch.zeros(2, 3)
    mask_seen_(scores, csr([[], [0, 2]], 3), torch.tensor([1, 0]))
    assert scores.tolist() == [[-math.inf, 0, -math.inf], [0, 0, 0]]


def test_errors():
    truth = csr([[0], [1]], 3)
    with pytest.raises(GraphlearnError, match="NaN"):
        evaluate_topk(torch.tensor([[float("nan"), 0, 0], [0, 0, 0]]), truth)
    with pytest.raises(GraphlearnError, match="shape"):
        evaluate_topk(lambda users: torch.zeros(len(users), 4), truth)
    with pytest.raises(GraphlearnError, match="no user has ground-truth"):
        evaluate_topk(torch.zeros(2, 3), csr([[], []], 3))
    with pytest.raises(ValueError, match="k must be"):
        topk_items(torch.zeros(1, 3), None, 0)
