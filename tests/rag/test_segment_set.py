"""Segments seen as one: tombstones, filters, a passage's vectors, files on disk."""

import numpy as np
import pytest

from rag.segment import Segment
from rag.segment_set import SegmentSet
from rag.vector_segments import VectorCodec
from rag.window_scores import soft_best

DIM = 16
CODEC = VectorCodec.for_dim(DIM)


def unit_rows(n: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def segment(chunk_ids: list[int], counts: list[int], seed: int) -> tuple[Segment, np.ndarray]:
    vectors = unit_rows(sum(counts), seed)
    words = [[f"w{c % 3}", f"id{c}"] for c in chunk_ids]
    return Segment.build(np.array(chunk_ids), CODEC, vectors, counts, words), vectors


@pytest.fixture
def two_segments():
    old, old_vectors = segment([0, 1, 2, 3], [1, 2, 3, 1], seed=0)
    new, new_vectors = segment([7, 8], [2, 1], seed=1)
    return old, new, old_vectors, new_vectors


def test_nearest_scores_every_live_passage_over_all_its_vectors(two_segments):
    old, new, old_vectors, new_vectors = two_segments
    view = SegmentSet([old, new], live_ids=np.array([0, 2, 3, 7, 8]))  # 1 is a tombstone
    assert (view.num_live, view.num_live_vectors, view.num_vectors) == (5, 8, 10)
    by_chunk = {0: old_vectors[0:1], 2: old_vectors[3:6], 3: old_vectors[6:7]}
    by_chunk |= {7: new_vectors[0:2], 8: new_vectors[2:3]}
    for query in unit_rows(4, seed=5):
        truth = {c: soft_best(v @ query) for c, v in by_chunk.items()}
        hits = view.nearest(query, k=10)
        assert sorted(c for c, _ in hits) == sorted(truth)  # each live passage once, 1 never
        assert [s for _, s in hits] == pytest.approx([truth[c] for c, _ in hits], abs=0.01)
        only = view.nearest(query, k=10, allowed=np.array([1, 3, 8]))  # 1: dead, stays out
        assert sorted(c for c, _ in only) == [3, 8]


def test_keyword_search_counts_only_live_passages(two_segments):
    old, new, *_ = two_segments
    view = SegmentSet([old, new], live_ids=np.array([0, 2, 3, 7, 8]))
    assert [c for c, _ in view.keyword_search(["id1"], k=5)] == []  # deleted
    assert sorted(c for c, _ in view.keyword_search(["w1"], k=5)) == [7]  # 1 and 7 hold w1
    assert sorted(c for c, _ in view.keyword_search(["w0"], k=5)) == [0, 3]
    assert [c for c, _ in view.keyword_search(["w0"], k=5, allowed=np.array([3]))] == [3]


def test_a_passage_is_found_in_its_segment(two_segments, tmp_path):
    old, new, old_vectors, _ = two_segments
    view = SegmentSet([old, new], live_ids=np.array([0, 1, 2, 3, 7, 8]))
    assert view.locate(8) == (1, 1) and view.locate(2) == (0, 2)
    np.testing.assert_allclose(view.vectors_of(2), old_vectors[3:6], atol=0.01)
    with pytest.raises(KeyError, match="no passage 5"):
        view.locate(5)
    with pytest.raises(ValueError, match="in two segments"):
        SegmentSet([old, old], live_ids=np.array([0]))
    old.save(tmp_path / "s1")
    loaded = Segment.load(tmp_path / "s1")
    assert loaded.chunk_ids.tolist() == [0, 1, 2, 3] and len(loaded.keywords) == 4
    np.testing.assert_array_equal(loaded.vectors.all_vectors(), old.vectors.all_vectors())


def test_an_empty_view_finds_nothing():
    view = SegmentSet([], live_ids=np.zeros(0, np.int64))
    assert view.nearest(unit_rows(1, 0)[0], k=3) == [] and view.keyword_search(["a"], 3) == []


def test_many_passages_cosines_come_in_the_order_asked():
    codec = VectorCodec.for_dim(4)
    vectors = np.eye(4, dtype=np.float32)[[0, 1, 2, 3, 0]]  # (5, d)
    old = Segment.build(np.array([4, 5]), codec, vectors[:3], [2, 1], [["a"], ["b"]])
    new = Segment.build(np.array([6, 7]), codec, vectors[3:], [1, 1], [["c"], ["d"]])
    view = SegmentSet([old, new], live_ids=np.array([4, 5, 6, 7]))
    query = np.array([0.5, 0.5, 0.5, 0.5], np.float32)
    cosines, counts = view.cosines_of_many(np.array([6, 4, 7]), query)
    assert counts.tolist() == [1, 2, 1]
    expected = np.concatenate([view.vectors_of(c) for c in (6, 4, 7)]) @ query
    np.testing.assert_allclose(cosines, expected, atol=1e-6)
    with pytest.raises(KeyError):
        view.cosines_of_many(np.array([9]), query)
