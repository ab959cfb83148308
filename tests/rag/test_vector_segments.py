"""8-bit segments: codes that survive a round trip, exact and IVF search, filters, files."""

import numpy as np
import pytest

from rag.vector_segments import VectorCodec, VectorSegment, measure_recall


def unit_rows(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_decoded_vectors_keep_their_codes_and_their_cosines():
    vectors = unit_rows(500)
    codec = VectorCodec.for_dim(vectors.shape[1])
    segment = VectorSegment.build(codec, vectors, np.arange(501))
    decoded = segment.all_vectors()
    assert np.abs((decoded * vectors).sum(axis=1) - 1).max() < 0.01
    again = VectorSegment.build(codec, decoded, np.arange(501))  # a merge re-encodes them
    assert np.array_equal(again.all_vectors(), decoded)


def test_a_component_beyond_the_range_is_clipped_not_wrapped():
    codec = VectorCodec.for_dim(256)  # [-0.75, 0.75]
    far = np.zeros((1, 256), np.float32)
    far[0, 0] = 1.0
    segment = VectorSegment.build(codec, far, np.array([0, 1]))
    assert segment.all_vectors()[0, 0] == pytest.approx(0.75, abs=0.01)  # not wrapped to -0.75
    assert VectorCodec.for_dim(16).low[0] == -1.0  # never wider than a unit vector needs


def test_rows_map_to_their_vectors():
    vectors = unit_rows(6)
    segment = VectorSegment.build(
        VectorCodec.for_dim(vectors.shape[1]), vectors, np.array([0, 3, 3, 6])
    )
    assert segment.row_of(np.array([0, 2, 3, 5])).tolist() == [0, 0, 2, 2]
    assert segment.row_vectors(1).shape == (0, 32)
    assert segment.vector_mask(np.array([True, False, False])).tolist() == [True] * 3 + [False] * 3


def test_a_filter_applies_inside_the_search():
    vectors = unit_rows(300)
    segment = VectorSegment.build(VectorCodec.for_dim(vectors.shape[1]), vectors, np.arange(301))
    allowed = np.zeros(300, bool)
    allowed[[5, 77, 200]] = True
    ids, scores = segment.search(vectors[0:1], k=10, allowed=allowed)
    assert sorted(ids.tolist()) == [5, 77, 200] and list(scores) == sorted(scores, reverse=True)
    assert len(segment.search(vectors[0:1], k=10, allowed=np.zeros(300, bool))[0]) == 0


def clustered_rows(n: int, dim: int, seed: int) -> np.ndarray:
    """Unit rows around 40 topics, as passages' vectors are (uniform random ones have no
    neighbourhoods for an IVF to find)."""
    rng = np.random.default_rng(seed)
    topics = unit_rows(40, dim, seed + 1)
    rows = topics[rng.integers(0, 40, n)] + 0.08 * rng.standard_normal((n, dim))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_a_large_segment_is_an_ivf_with_high_recall(tmp_path):
    vectors = clustered_rows(4000, dim=256, seed=1)
    codec = VectorCodec.for_dim(vectors.shape[1])
    segment = VectorSegment.build(codec, vectors, np.arange(4001), ivf_min_vectors=1000)
    assert segment.approximate
    assert not VectorSegment.build(codec, vectors, np.arange(4001)).approximate  # below 50k
    assert measure_recall(segment) >= 0.9
    ids = np.array([3999, 0, 17, 17])
    for built in (segment, VectorSegment.build(codec, vectors, np.arange(4001))):  # IVF, flat
        np.testing.assert_array_equal(built.decoded(ids), built.index.reconstruct_batch(ids))
        expected = built.index.reconstruct_batch(ids) @ vectors[5]
        np.testing.assert_allclose(built.cosines(ids, vectors[5]), expected, atol=1e-5)
    allowed = np.zeros(4000, bool)
    allowed[::500] = True  # a narrow filter: searched exactly
    ids, _ = segment.search(vectors[1:2], k=20, allowed=allowed)
    assert sorted(ids.tolist()) == list(range(0, 4000, 500))
    segment.save(tmp_path)
    loaded = VectorSegment.load(tmp_path)
    assert loaded.approximate and np.array_equal(loaded.row_vectors(7), segment.row_vectors(7))
    assert np.array_equal(loaded.search(vectors[3:4], 5)[0], segment.search(vectors[3:4], 5)[0])


def test_mismatched_files_are_refused(tmp_path):
    vectors = unit_rows(4)
    VectorSegment.build(VectorCodec.for_dim(vectors.shape[1]), vectors, np.arange(5)).save(tmp_path)
    np.save(tmp_path / "bounds.npy", np.arange(3))
    with pytest.raises(ValueError, match="do not match"):
        VectorSegment.load(tmp_path)
