"""The most that late chunking could speed up embedding on the shipped ONNX path (#45, part 5).

Today every passage is encoded, then each of its token windows again on its own (``embedder.
windows``: 32 tokens every 16, about 2x the passage's tokens more). Late chunking would encode
the passage once and pool each window's vector from its token states, so its cost is at least
that of the passages alone. This benchmark times both on notes_dev's passages in the same run,
twice; the ratio bounds the lever (before the pooling, and before the rest of indexing: chunking,
keyword postings, SQLite). Whether an embedder trained on pooled windows keeps Recall@5 is
another question (docs/EXPERIMENTS.md S6).

Example:
    $ python benchmarks/tuning/late_chunking_bound.py --data ../shared/data
    {"passages": 743, "vectors": 7278, "runs": [{"with_windows_per_s": ..., "alone_per_s": ...,
     "ratio": ...}, ...]}
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from embedder import Embedder, WindowConfig  # noqa: E402
from rag.chunking import ChunkingConfig, chunk_document  # noqa: E402
from rag.documents import iter_notes  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder")
    parser.add_argument("--runs", type=int, default=2, help="timed runs of each (default 2)")
    args = parser.parse_args(argv)
    embedder = Embedder.load()
    config = ChunkingConfig(
        max_tokens=min(ChunkingConfig().max_tokens, embedder.max_seq_length - 2)
    )
    notes, _ = iter_notes(args.data / "notes_dev" / "notes", 10_000_000)
    texts = [c.text for d in notes for c in chunk_document(d, embedder.count_tokens, config)]
    windows = WindowConfig()
    embedder.encode_with_windows(texts[:64], windows)  # load the sessions before timing
    runs, vectors = [], 0
    for _ in range(args.runs):
        started = time.perf_counter()
        vectors = len(embedder.encode_with_windows(texts, windows)[0])
        with_windows = time.perf_counter() - started
        started = time.perf_counter()
        embedder.encode(texts, kind="passage", groups=list(range(len(texts))))
        alone = time.perf_counter() - started
        runs.append(
            {
                "with_windows_per_s": round(len(texts) / with_windows, 1),
                "alone_per_s": round(len(texts) / alone, 1),
                "ratio": round(with_windows / alone, 2),
            }
        )
    result = {
        "passages": len(texts),
        "vectors": vectors,
        "windows": windows.to_dict(),
        "runs": runs,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
