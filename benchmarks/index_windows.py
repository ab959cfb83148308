"""What token windows cost the notes index: indexing time, size on disk and search latency.

SQuAD v1.1 dev's 48 articles as notes (as ``benchmarks/notes_qa.py`` writes them) are indexed
twice in one run, with one vector per passage (``--window-tokens 0``) and with the default token
windows, by the real pipeline; then the same questions are searched in each (dense and hybrid,
one warm query at a time). Prints seconds, vectors, megabytes and the ratios windows / none.

Example:
    $ python benchmarks/index_windows.py --data ../shared/data --questions 500
    {"none": {"index_s": ..., "vectors": ..., "index_mb": ..., "search_ms": {...}},
     "windows": {...}, "ratio": {"index_s": ..., "index_mb": ..., "hybrid_p50": ...}}
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.notes_qa import write_notes  # noqa: E402
from embedder import WindowConfig  # noqa: E402
from rag.pipeline import NotesQA  # noqa: E402
from training.squad import read_squad_json  # noqa: E402


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def measure(notes: Path, index: Path, windows: WindowConfig, questions: list[str]) -> dict:
    """Index ``notes`` into ``index`` with ``windows`` and time searches of ``questions``."""
    qa = NotesQA.open(notes, index, windows=windows)
    _ = qa.embedder  # loaded before timing
    start = time.perf_counter()
    summary = qa.index(progress=False)
    result = {
        "index_s": round(time.perf_counter() - start, 1),
        "passages": summary.chunks,
        "vectors": summary.vectors,
        "index_mb": round(folder_mb(index), 1),
        "search_ms": {},
    }
    for mode in ("dense", "hybrid"):
        qa.search(questions[0], k=5, mode=mode)  # warm-up
        latencies = []
        for question in questions:
            t0 = time.perf_counter()
            qa.search(question, k=5, mode=mode)
            latencies.append((time.perf_counter() - t0) * 1000)
        result["search_ms"][mode] = {
            "p50": round(float(np.percentile(latencies, 50)), 2),
            "p95": round(float(np.percentile(latencies, 95)), 2),
        }
    qa.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--questions", type=int, default=500, help="questions searched per mode")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = read_squad_json(Path(args.data) / "squad" / "dev-v1.1.json.gz")
    with tempfile.TemporaryDirectory(prefix="notesqa-windows-") as tmp:
        notes = Path(tmp) / "notes"
        notes.mkdir()
        questions = [q["question"] for q in write_notes(data, notes)][: args.questions]
        none = measure(notes, Path(tmp) / "none", WindowConfig(tokens=0), questions)
        windows = measure(notes, Path(tmp) / "windows", WindowConfig(), questions)
    result = {
        "none": none,
        "windows": {**windows, "config": WindowConfig().to_dict()},
        "ratio": {
            "index_s": round(windows["index_s"] / none["index_s"], 2),
            "vectors": round(windows["vectors"] / none["vectors"], 2),
            "index_mb": round(windows["index_mb"] / none["index_mb"], 2),
            "dense_p50": round(
                windows["search_ms"]["dense"]["p50"] / none["search_ms"]["dense"]["p50"], 2
            ),
            "hybrid_p50": round(
                windows["search_ms"]["hybrid"]["p50"] / none["search_ms"]["hybrid"]["p50"], 2
            ),
        },
        "questions": len(questions),
        "threads": args.threads,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
