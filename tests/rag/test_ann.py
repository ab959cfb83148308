"""Approximate FAISS indexes: measured recall, exact copies for reuse, filters stay exact."""

from __future__ import annotations

import numpy as np
import pytest

from rag.ann import build_index, search
from rag.chunking import Chunk
from rag.documents import Document
from rag.store import NotesStore


def _unit(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_hnsw_recall_is_measured_and_high():
    index, info = build_index(_unit(2000), "hnsw")
    assert info["index_type"] == "hnsw" and index.ntotal == 2000
    assert info["recall_at_10"] > 0.9


def test_ivfpq_trains_and_reports_recall():
    _, info = build_index(_unit(3000), "ivfpq")
    assert info["index_type"] == "ivfpq"
    assert 0.0 < info["recall_at_10"] <= 1.0
    # too few vectors to train: an exact index instead, said in the summary
    _, small = build_index(_unit(100), "ivfpq")
    assert small == {"index_type": "flat"}
    with pytest.raises(ValueError, match="unknown index type"):
        build_index(_unit(10), "lsh")


def test_store_with_hnsw_keeps_exact_vectors_and_filters_exactly(tmp_path):
    n = 400
    docs = [Document(f"f{i}.md", "x" * 10, f"sha{i}", 0.0, 10) for i in range(4)]
    chunks = [
        Chunk(source=f"f{i % 4}.md", start=0, end=1, text=f"t{i}", heading="") for i in range(n)
    ]
    vectors = _unit(n)
    store = NotesStore.build(
        tmp_path / "ix", docs, chunks, vectors, {"embedder": "e", "dim": 32}, index_type="hnsw"
    )
    assert store.manifest["index_type"] == "hnsw" and "recall_at_10" in store.manifest
    np.testing.assert_array_equal(store.vectors(), vectors)  # reuse never goes through HNSW
    allowed = store.ids_matching("f2.md")
    hits = store.search(vectors[6], k=5, allowed=allowed)  # chunk 6 lives in f2.md
    assert hits[0].chunk_id == 6 and {h.chunk.source for h in hits} == {"f2.md"} and len(hits) == 5
    store.close()


def test_reranked_search_scores_are_exact_and_recall_beats_raw_pq():
    vectors, queries = _unit(3000, seed=1), _unit(50, seed=2)
    index, _ = build_index(vectors, "ivfpq")
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]  # (Q, 10) exact neighbours
    _, raw = search(index, queries, 10)  # PQ distances decide the order
    scores, ids = search(index, queries, 10, exact_vectors=vectors)

    def recall(found: np.ndarray) -> float:
        return np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth, found, strict=True)])

    assert recall(ids) > recall(raw)
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ vectors.T, ids, 1), rtol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 0)  # best first
