"""Index types at scale: flat vs HNSW vs IVF-PQ on 100k passages, in one run.

The collection is real plus synthetic: the SQuAD v1.1 dev paragraphs embedded by our embedder,
then as many noisy copies of those vectors (each renormalised) as it takes to reach ``--size``, so
the vectors keep the real collection's clustering. Queries are the embedded dev questions. For each
index type (``rag.ann.build_index`` and ``rag.ann.search``, as ``notesqa index --index-type`` and
the store use them, approximate candidates re-ranked with the exact vectors memory-mapped from
disk): build seconds, recall@10 against exact search, single-query latency p50/p95, bytes per
passage of the FAISS index (held in memory) and on disk in all (index plus exact vectors).

Example:
    $ python benchmarks/tuning/index_scale.py --data ../shared/data --size 100000
    {"flat": {"build_s": ..., "recall_at_10": 1.0, "latency_ms": {"p50": ..., "p95": ...},
              "bytes_per_passage": ...}, "hnsw": {...}, "ivfpq": {...}, ...}
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.retrieval import squad_corpus  # noqa: E402
from embedder import Embedder  # noqa: E402
from rag.ann import INDEX_TYPES, build_index, search  # noqa: E402


def grow(vectors: np.ndarray, size: int, noise: float, seed: int = 0) -> np.ndarray:
    """``size`` unit vectors: the originals, then noisy renormalised copies of them."""
    rng = np.random.default_rng(seed)
    extra = size - len(vectors)
    base = vectors[rng.integers(0, len(vectors), size=max(extra, 0))]
    copies = base + noise * rng.standard_normal(base.shape).astype(np.float32) / np.sqrt(
        vectors.shape[1]
    )
    copies /= np.linalg.norm(copies, axis=1, keepdims=True)
    return np.ascontiguousarray(np.concatenate([vectors, copies]), dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--noise", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)

    paragraphs, questions, _ = squad_corpus(Path(args.data) / "squad" / "dev-v1.1.json.gz")
    embedder = Embedder.load()
    vectors = grow(
        embedder.encode(paragraphs, batch_size=64, kind="passage"), args.size, args.noise
    )
    queries = embedder.encode(questions[: args.queries], batch_size=128, kind="query")  # (Q, d)
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, truth = exact.search(queries, 10)

    tmp_dir = tempfile.TemporaryDirectory()
    np.save(f"{tmp_dir.name}/vectors.npy", vectors, allow_pickle=False)
    exact_rows = np.load(f"{tmp_dir.name}/vectors.npy", mmap_mode="r")  # as the store reads them
    result: dict = {}
    for index_type in INDEX_TYPES:
        start = time.perf_counter()
        index, info = build_index(vectors, index_type)
        build_s = time.perf_counter() - start
        flat = index_type == "flat"
        latencies, found = [], []
        for q in queries:
            t = time.perf_counter()
            _, ids = search(index, q[None, :], 10, exact_vectors=None if flat else exact_rows)
            latencies.append((time.perf_counter() - t) * 1000)
            found.append(ids[0])
        hits = sum(
            len(set(a) & set(b))
            for a, b in zip(truth.tolist(), np.asarray(found).tolist(), strict=True)
        )
        with tempfile.TemporaryDirectory() as tmp:
            faiss.write_index(index, f"{tmp}/ix.faiss")
            size_bytes = Path(f"{tmp}/ix.faiss").stat().st_size
        result[index_type] = {
            "build_s": round(build_s, 2),
            "recall_at_10_queries": round(hits / (10 * len(queries)), 4),
            "recall_at_10_at_build": info.get("recall_at_10", 1.0),
            "latency_ms": {
                "p50": round(float(np.percentile(latencies, 50)), 3),
                "p95": round(float(np.percentile(latencies, 95)), 3),
            },
            "bytes_per_passage": round(size_bytes / len(vectors), 1),
            "disk_bytes_per_passage": round(
                (size_bytes + (0 if flat else vectors.nbytes)) / len(vectors), 1
            ),
        }
    result.update(
        {
            "passages": len(vectors),
            "real_passages": len(paragraphs),
            "dim": vectors.shape[1],
            "queries": len(queries),
            "threads": args.threads,
        }
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
