"""Scoring a passage from its vectors: soft_best, the owners' ranges, re-scoring candidates."""

from __future__ import annotations

import numpy as np
import pytest

from rag.window_scores import (
    best_per_owner,
    candidates_for,
    owner_bounds,
    rescore_owners,
    rows_by_owner,
    soft_best,
    soft_best_runs,
)


def test_soft_best_lies_between_the_mean_and_the_best_and_rewards_more_matches() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        cosines = rng.uniform(-1, 1, size=rng.integers(1, 12))
        assert cosines.mean() - 1e-9 <= soft_best(cosines) <= cosines.max() + 1e-9
        assert soft_best(cosines, temperature=1e-4) == pytest.approx(cosines.max(), abs=1e-3)
    assert soft_best(np.array([0.7])) == pytest.approx(0.7)
    two_matches, one_match = np.array([0.8, 0.8]), np.array([0.8, 0.2])
    assert soft_best(two_matches) > soft_best(one_match)
    assert soft_best(np.array([0.8, 0.8, 0.2, 0.2])) == pytest.approx(soft_best(one_match))


def test_owner_bounds_give_each_owner_its_range_empty_for_an_owner_without_vectors() -> None:
    owners = np.array([0, 0, 0, 2, 3, 3])
    bounds = owner_bounds(owners, 5)
    assert bounds.tolist() == [0, 3, 3, 4, 6, 6]
    for owner in range(5):
        assert (owners[bounds[owner] : bounds[owner + 1]] == owner).all()
    blocks = rows_by_owner(np.arange(6.0)[:, None], owners, 5)
    assert [b[:, 0].tolist() for b in blocks] == [[0, 1, 2], [], [3], [4, 5], []]


def test_best_per_owner_keeps_each_owners_first_hit_and_skips_missing_ones() -> None:
    owners = np.array([0, 0, 1, 1, 2, 2])
    found = best_per_owner([1, -1, 0, 5, 2], [0.9, 0.0, 0.8, 0.7, 0.6], owners, 3)
    assert found == [(0, 0.9), (2, 0.7), (1, 0.6)]
    assert candidates_for(2, num_vectors=10, num_owners=4) == 10  # 2 * 2 * ceil(10 / 4), capped


def test_rescore_owners_ranks_candidates_over_all_their_vectors() -> None:
    rows = {
        0: np.array([[1.0, 0.0], [0.0, 1.0]]),  # one exact match, one orthogonal window
        1: np.array([[0.99, 0.141], [0.99, 0.141]]),  # two near matches
        2: np.array([[-1.0, 0.0]]),
    }
    query = np.array([1.0, 0.0])

    def cosines_of(ids, q):
        blocks = [rows[int(i)] @ q for i in ids]
        return np.concatenate(blocks), np.array([len(b) for b in blocks])

    ranked = rescore_owners([2, 0, 1], query, cosines_of, k=2)
    assert [owner for owner, _ in ranked] == [1, 0]  # the best single vector is not enough
    assert ranked[0][1] == pytest.approx(0.99)


def test_soft_best_runs_scores_each_run_as_soft_best_does() -> None:
    rng = np.random.default_rng(3)
    counts = rng.integers(1, 9, size=50)
    cosines = rng.uniform(-1, 1, size=counts.sum())
    starts = np.cumsum(counts) - counts
    expected = [soft_best(cosines[a : a + n]) for a, n in zip(starts, counts, strict=True)]
    np.testing.assert_allclose(soft_best_runs(cosines, counts), expected, rtol=1e-12)
    assert soft_best_runs(np.zeros(0), np.zeros(0, np.int64)).shape == (0,)
