"""Segmented BM25: bm25s's scores on one segment, and after deletions and new segments the scores
a rebuild over the live passages gives."""

import bm25s
import numpy as np
import pytest

from rag.keyword_segments import KeywordSegment, Statistics, merge, search
from rag.sparse import K1

WORDS = [f"w{i}" for i in range(40)]


def corpus(n: int, seed: int) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    # Zipf-like word choice: some words in most passages, some in few
    p = 1 / np.arange(1, len(WORDS) + 1)
    return [list(rng.choice(WORDS, size=rng.integers(1, 30), p=p / p.sum())) for _ in range(n)]


def as_dict(hits):
    return {(segment, row): score for segment, row, score in hits}


@pytest.mark.parametrize("query", [["w0"], ["w3", "w17"], ["w1", "w1", "w39"], ["nothing"]])
def test_one_segment_scores_as_bm25s(query):
    docs = corpus(200, seed=0)
    reference = bm25s.BM25(k1=K1)
    reference.index(docs, show_progress=False)
    ids, scores = reference.retrieve([query], k=200, show_progress=False)
    expected = {(0, int(i)): float(s) for i, s in zip(ids[0], scores[0], strict=True) if s > 0}
    segment = KeywordSegment.build(docs)
    found = as_dict(search([segment], [np.ones(200, bool)], query, k=200))
    assert found.keys() == expected.keys()
    for key, score in found.items():
        assert score == pytest.approx(expected[key], rel=1e-5)


def test_deletions_and_segments_score_as_a_rebuild():
    first, second = corpus(120, seed=1), corpus(80, seed=2)
    rng = np.random.default_rng(3)
    live = [rng.random(120) > 0.3, rng.random(80) > 0.2]  # tombstones in both
    segments = [KeywordSegment.build(first), KeywordSegment.build(second)]
    rebuilt_docs = [d for d, a in zip(first, live[0], strict=True) if a] + [
        d for d, a in zip(second, live[1], strict=True) if a
    ]
    rebuilt = KeywordSegment.build(rebuilt_docs)
    live_all = np.ones(len(rebuilt_docs), bool)
    where = [(0, r) for r in np.flatnonzero(live[0])] + [(1, r) for r in np.flatnonzero(live[1])]
    for query in (["w2"], ["w5", "w9", "w30"]):
        incremental = as_dict(search(segments, live, query, k=200))
        full = {where[row]: score for _, row, score in search([rebuilt], [live_all], query, 200)}
        assert full.keys() == incremental.keys()
        assert [full[key] for key in full] == pytest.approx([incremental[key] for key in full])


def test_merge_equals_a_build_of_the_live_passages(tmp_path):
    first, second = corpus(50, seed=4), corpus(30, seed=5)
    live = [np.arange(50) % 3 > 0, np.arange(30) % 2 == 0]
    merged = merge([KeywordSegment.build(first), KeywordSegment.build(second)], live)
    kept = [d for d, a in zip(first + second, np.concatenate(live), strict=True) if a]
    built = KeywordSegment.build(kept)
    merged.save(tmp_path / "merged")
    loaded = KeywordSegment.load(tmp_path / "merged")
    for segment in (merged, loaded):
        assert segment.words == built.words
        for name in ("starts", "passages", "counts", "lengths"):
            assert np.array_equal(getattr(segment, name), getattr(built, name)), name


def test_a_filter_narrows_the_results_not_the_statistics():
    docs = corpus(60, seed=6)
    segment = KeywordSegment.build(docs)
    live = [np.ones(60, bool)]
    allowed = [np.arange(60) < 10]
    everything = as_dict(search([segment], live, ["w4"], k=60))
    filtered = search([segment], live, ["w4"], k=60, allowed=allowed)
    assert filtered and all(row < 10 for _, row, _ in filtered)
    assert all(everything[(s, r)] == score for s, r, score in filtered)


def test_empty_and_dead_collections_find_nothing():
    segment = KeywordSegment.build([["a"], ["b"]])
    assert search([segment], [np.zeros(2, bool)], ["a"], k=5) == []
    assert Statistics.of([], []).search([], [], ["a"], k=5) == []
    assert search([KeywordSegment.build([])], [np.zeros(0, bool)], ["a"], k=5) == []


def test_the_postings_are_every_word_and_passage_with_its_count():
    docs = corpus(300, seed=5)
    segment = KeywordSegment.build(docs)
    assert list(segment.words) == sorted(segment.words)  # numbered alphabetically
    for word in segment.words:
        rows, counts = segment.postings(word)
        expected = [(row, doc.count(word)) for row, doc in enumerate(docs) if word in doc]
        assert list(zip(rows.tolist(), counts.tolist(), strict=True)) == expected
    assert segment.lengths.tolist() == [len(d) for d in docs]
    empty = KeywordSegment.build([[], []])
    assert len(empty) == 2 and not empty.words and empty.starts.tolist() == [0]
