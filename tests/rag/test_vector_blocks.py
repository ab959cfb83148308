"""Vectors read a block at a time: arrays, the 8-bit spool, the live rows of segments."""

import numpy as np
import pytest

from rag.vector_blocks import ArrayVectors, as_source, take_from_blocks
from rag.vector_segments import LiveVectors, VectorCodec, VectorSegment
from rag.vector_spool import VectorSpool


def unit_rows(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_take_reads_any_order_in_one_pass():
    vectors = unit_rows(10)
    source = ArrayVectors(vectors)
    ids = np.array([9, 0, 4, 4, 3])
    np.testing.assert_array_equal(take_from_blocks(source, ids, block=3), vectors[ids])
    assert take_from_blocks(source, np.array([], np.int64)).shape == (0, 16)
    with pytest.raises(IndexError, match="0..9"):
        take_from_blocks(source, np.array([10]))
    assert as_source(source) is source
    with pytest.raises(ValueError, match="num_vectors, dim"):
        ArrayVectors(np.zeros(4, np.float32))


def test_the_spool_holds_codes_and_an_index_built_from_it_equals_one_from_floats(tmp_path):
    vectors = unit_rows(300)
    codec = VectorCodec.for_dim(16)
    with VectorSpool(tmp_path, codec) as spool:
        spool.append(vectors[:120])
        spool.append(vectors[120:])
        blocks = list(spool.blocks(128))
        assert spool.path.stat().st_size == 300 * 16  # one byte a number, no float32 copy
        assert [first for first, _ in blocks] == [0, 128, 256]
        from_spool = VectorSegment.build(codec, spool, np.arange(301))
        np.testing.assert_array_equal(
            spool.take(np.array([5, 299])), codec.decode(codec.encode(vectors[[5, 299]]))
        )
    from_floats = VectorSegment.build(codec, vectors, np.arange(301))
    np.testing.assert_array_equal(from_spool.all_vectors(), from_floats.all_vectors())
    assert not spool.path.exists()


def test_the_spool_refuses_rows_that_are_not_unit_vectors(tmp_path):
    with VectorSpool(tmp_path, VectorCodec.for_dim(4)) as spool:
        with pytest.raises(ValueError, match="unit length"):
            spool.append(np.full((1, 4), 2.0, np.float32))
        with pytest.raises(ValueError, match=r"shape \(n, 4\)"):
            spool.append(unit_rows(1, dim=8))
        assert len(spool) == 0


def test_live_vectors_are_the_live_rows_in_order():
    codec = VectorCodec.for_dim(16)
    first, second = unit_rows(6, seed=1), unit_rows(4, seed=2)
    # rows of 2, 1, 3 vectors; then 4 rows of one
    a = VectorSegment.build(codec, first, np.array([0, 2, 3, 6]))
    b = VectorSegment.build(codec, second, np.arange(5))
    live = LiveVectors(
        [a, b], [np.array([True, False, True]), np.array([False, True, True, False])], 16
    )
    expected = np.concatenate([a.all_vectors()[[0, 1, 3, 4, 5]], b.all_vectors()[[1, 2]]])
    assert len(live) == 7
    np.testing.assert_array_equal(np.concatenate([blk for _, blk in live.blocks(2)]), expected)
    np.testing.assert_array_equal(live.take(np.array([6, 0])), expected[[6, 0]])
