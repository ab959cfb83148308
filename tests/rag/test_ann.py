"""Approximate FAISS indexes: measured recall, exact copies for reuse, filters stay exact."""

from __future__ import annotations

import numpy as np
import pytest

from rag.ann import build_index
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
