"""Silver STS pairs: new pairs of the gold sentences, scored by the cross-encoder (Augmented SBERT).

STS-B train and SICK train give about 10,000 scored pairs over some 15,000 sentences, few for a
bi-encoder to learn graded similarity from. Pairing each sentence with the sentences most like it
(its top BM25 matches and its nearest neighbours under the current embedder, as Thakur et al.
2021 found best) gives tens of thousands of new pairs, mostly of related sentences, where the
graded differences are; the cross-encoder (``training.cross_encoder``), which scores STS far
better than the bi-encoder, labels them. The bi-encoder then trains on gold + silver (a JSONL
file that ``read_scored_pairs`` and ``data.sts_train`` take like STS-B's csv).

Example:
    >>> pairs = neighbour_pairs(gold, SilverPairsConfig(), embedder=Embedder.load())
    >>> write_silver_pairs(SimilarityCrossEncoder.load("runs/sts-cross"), pairs, "runs/silver.jsonl")
    PosixPath('runs/silver.jsonl')
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import faiss

from embedder import Embedder
from rag.sparse import BM25Index
from training.configs import SilverPairsConfig
from training.cross_encoder import ScoredPair, SimilarityCrossEncoder

log = logging.getLogger(__name__)


def _same_text(a: str, b: str) -> bool:
    return " ".join(a.lower().split()) == " ".join(b.lower().split())


def neighbour_pairs(
    gold: list[ScoredPair], cfg: SilverPairsConfig, embedder: Embedder | None = None
) -> list[tuple[str, str]]:
    """New (sentence, sentence) pairs among the gold pairs' sentences: each sentence with its
    ``bm25_neighbours`` best BM25 matches and ``dense_neighbours`` nearest vectors (needs
    ``embedder``). A pair already in ``gold`` (either order), a sentence with itself and a
    repeated pair are left out; the order is deterministic.

    Example:
        >>> neighbour_pairs([("A dog runs.", "A dog is running.", 0.9), ...], SilverPairsConfig(3, 0))
        [('A dog runs.', 'The dog runs fast.'), ...]
    """
    if cfg.dense_neighbours and embedder is None:
        raise ValueError("dense_neighbours needs an embedder: pass one, or set it to 0")
    sentences = sorted({s for a, b, _ in gold for s in (a, b) if s.strip()})
    seen = {frozenset((a, b)) for a, b, _ in gold}
    pairs: list[tuple[str, str]] = []

    def add(i: int, j: int) -> None:
        key = frozenset((sentences[i], sentences[j]))
        if i != j and key not in seen and not _same_text(sentences[i], sentences[j]):
            seen.add(key)
            pairs.append((sentences[i], sentences[j]))

    if cfg.bm25_neighbours:
        index = BM25Index.build(sentences)
        for i, sentence in enumerate(sentences):
            for j, _ in index.search(sentence, cfg.bm25_neighbours + 1):  # +1: itself
                add(i, j)
        log.info("%d pairs from BM25 neighbours of %d sentences", len(pairs), len(sentences))
    if cfg.dense_neighbours:
        vectors = embedder.encode(sentences, batch_size=128, show_progress=True)  # (N, D)
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors)
        _, nearest = index.search(vectors, cfg.dense_neighbours + 1)  # (N, k + 1)
        before = len(pairs)
        for i, row in enumerate(nearest):
            for j in row:
                if j >= 0:
                    add(i, int(j))
        log.info("%d more pairs from the embedder's nearest neighbours", len(pairs) - before)
    return pairs


def write_silver_pairs(
    teacher: SimilarityCrossEncoder,
    pairs: list[tuple[str, str]],
    out_path: str | Path,
    batch_size: int = 256,
) -> Path:
    """Score ``pairs`` with ``teacher`` and write them as JSONL rows ``{"sentence1", "sentence2",
    "score"}``, atomically (a killed run leaves no half file)."""
    if not pairs:
        raise ValueError("no pairs to label: the gold pairs gave no new neighbour pairs")
    out = Path(out_path)
    if out.suffix != ".jsonl":
        raise ValueError(
            f"write the silver pairs to a .jsonl file (read_scored_pairs reads it), not {out}"
        )
    scores = teacher.score(pairs, batch_size=batch_size, show_progress=True)  # (len(pairs),)
    out.parent.mkdir(parents=True, exist_ok=True)
    staged = out.with_name(f".{out.name}.tmp")
    with open(staged, "w", encoding="utf-8") as handle:
        for (a, b), score in zip(pairs, scores.tolist(), strict=True):
            row = {"sentence1": a, "sentence2": b, "score": round(score, 4)}
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(staged, out)
    log.info("wrote %d silver pairs (mean score %.3f) to %s", len(pairs), scores.mean(), out)
    return out


__all__ = ["neighbour_pairs", "write_silver_pairs"]
