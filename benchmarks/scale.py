"""Big vaults: what indexing, searching and asking cost as a vault grows, per index type, in one run.

A vault is Wikipedia articles written as notes (``enwiki/`` then ``simplewiki/`` of the data
folder, one article a file, 500 files a folder) grown to about ``--passages`` passages, with
``--squad-articles`` SQuAD v1.1 dev articles mixed in at every size, so answer recall is measured
on the same questions whatever the size. Each size is indexed from scratch with the real command
line (``notesqa index --index-type T``, in its own process: its peak RSS is its own) as the first
of ``--index-types``; each other type is written from the same vectors (an update that re-embeds
nothing). Then, per type:

- indexing passages/s and peak RSS (the first type); index bytes per passage (every file in the
  index folder);
- ``search`` and ``ask`` p50/p95 over ``--questions`` SQuAD questions (in-process, warm, the
  default hybrid mode, k 5) and Recall@5 of the passage holding each answer;
- the seconds to re-index after editing one note (an incremental ``notesqa index``);
- up to ``--baseline-up-to`` passages, the vault indexed again with every token window embedded
  alone (``--window-vectors encoded``, the path before late chunking): the indexing speed ratio;
- between consecutive sizes, the growth ratio of each number (1.0: flat cost; the size ratio:
  linear).

Example:
    $ python benchmarks/scale.py --data ../shared/data                     # 1k and 10k, auto and flat
    $ python benchmarks/scale.py --data ../shared/data --passages 1000 10000 100000
    {"sizes": {"1000": {"auto": {"passages": 1032, "passages_per_s": ..., ...}}}, "growth": {...}}
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from notes_qa import paragraph_flags, write_notes  # noqa: E402
from speed import percentiles  # noqa: E402

from rag.pipeline import NotesQA  # noqa: E402
from training.squad import read_squad_json  # noqa: E402

CHARS_PER_PASSAGE = 600  # about what the default chunking makes of Wikipedia prose
FILES_PER_FOLDER = 500
# Runs ``notesqa`` in this process and reports its own peak RSS (KiB) on stderr's last line.
MEASURED = """
import resource, sys
from app.cli import main
code = main(sys.argv[1:])
print("peak_rss_kib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def wiki_articles(data: Path) -> Iterator[tuple[str, str]]:
    """``(title, text)`` of the bundled Wikipedia, English first, in file order."""
    files = sorted((data / "enwiki").glob("*.jsonl.gz")) + sorted(
        (data / "simplewiki").glob("*.jsonl.gz")
    )
    for path in files:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                article = json.loads(line)
                if len(article.get("text", "")) >= 500:
                    yield article["title"], article["text"]


def grow_vault(folder: Path, articles: Iterator[tuple[str, str]], target: int, state: dict) -> int:
    """Add articles to ``folder`` until it holds about ``target`` passages; returns the estimate.
    ``state`` carries the running counts between calls (the vaults are nested)."""
    while state["passages"] < target:
        title, text = next(articles)
        n = state["files"]
        sub = folder / "wiki" / f"{n // FILES_PER_FOLDER:04d}"
        sub.mkdir(parents=True, exist_ok=True)
        safe = "".join(c if c.isalnum() else "-" for c in title)[:60]
        paragraphs = "\n\n".join(p.strip() for p in text.split("\n") if p.strip())
        (sub / f"{n:06d}-{safe}.md").write_text(f"# {title}\n\n{paragraphs}\n", encoding="utf-8")
        state["files"] += 1
        state["passages"] += max(1, len(text) // CHARS_PER_PASSAGE)
    return state["passages"]


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def run_index(
    notes: Path, index: Path, index_type: str, rebuild: bool, extra: tuple[str, ...] = ()
) -> dict:
    """One ``notesqa index`` in a fresh process: its summary, wall seconds and peak RSS."""
    command = [sys.executable, "-c", MEASURED, "index", str(notes), "--index", str(index)]
    command += ["--index-type", index_type, "--json", *extra] + (["--rebuild"] if rebuild else [])
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"notesqa index failed: {done.stderr[-2000:]}")
    rss = int(done.stderr.strip().splitlines()[-1].split()[-1])
    return {"summary": json.loads(done.stdout), "seconds": seconds, "peak_rss_mb": rss / 1024}


def measure_queries(index: Path, questions: list[dict], asks: int) -> dict:
    """Warm search and ask latencies (ms) and Recall@5 of the answer's passage."""
    qa = NotesQA.from_index(index)
    qa.search(questions[0]["question"], k=5)
    qa.ask(questions[0]["question"])  # load both models before timing
    search_ms, found = [], []
    for q in questions:
        started = time.perf_counter()
        hits = qa.search(q["question"], k=5)
        search_ms.append((time.perf_counter() - started) * 1000)
        found.append(any(paragraph_flags(hits, q)))
    ask_ms = []
    for q in questions[:asks]:
        started = time.perf_counter()
        qa.ask(q["question"])
        ask_ms.append((time.perf_counter() - started) * 1000)
    qa.close()
    return {
        "search_ms": percentiles(search_ms),
        "ask_ms": percentiles(ask_ms),
        "recall_at_5": round(float(np.mean(found)), 4),
    }


def encoded_baseline(notes: Path, index: Path, row: dict, index_type: str) -> dict:
    """Index ``notes`` from scratch as ``index_type`` with every window embedded alone (the path
    before late chunking): its passages/s, and the first type's speed as a ratio of it."""
    first = next(r for r in row.values() if "passages_per_s" in r)
    extra = ("--window-vectors", "encoded")
    built = run_index(notes, index, index_type, rebuild=True, extra=extra)
    shutil.rmtree(index)
    per_s = built["summary"]["chunks"] / built["seconds"]
    return {
        "windows": "encoded",
        "passages_per_s": round(per_s, 1),
        "peak_rss_mb": round(built["peak_rss_mb"], 1),
        "indexing_speedup": round(first["passages_per_s"] / per_s, 2),
    }


def edit_one_note(notes: Path) -> Path:
    """Append a paragraph to one Wikipedia note (the same note at every size)."""
    note = sorted((notes / "wiki" / "0000").glob("*.md"))[0]
    with open(note, "a", encoding="utf-8") as handle:
        handle.write(f"\nAn edit made at {time.time():.0f} to measure an incremental update.\n")
    return note


def growth(sizes: dict, keys: list[str]) -> dict:
    """Ratio of each number between consecutive sizes, per index type."""
    out: dict = {}
    labels = sorted(sizes, key=int)
    for small, big in zip(labels, labels[1:], strict=False):
        for index_type in sizes[big]:
            if index_type not in sizes[small] or "passages" not in sizes[big][index_type]:
                continue  # (the baseline: its speed ratio is in its own row)
            a, b = sizes[small][index_type], sizes[big][index_type]
            ratios = {"passages": round(b["passages"] / a["passages"], 2)}
            for key in keys:
                if key not in a or key not in b:
                    continue
                x, y = a[key], b[key]
                x, y = (x["p50"], y["p50"]) if isinstance(x, dict) else (x, y)
                ratios[key] = round(y / x, 2) if x else None
            out.setdefault(f"{small}->{big}", {})[index_type] = ratios
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--passages", nargs="+", type=int, default=[1_000, 10_000])
    parser.add_argument(
        "--index-types",
        nargs="+",
        default=["auto", "flat"],
        choices=["auto", "flat", "ivf"],
        help="the first is indexed from scratch (speed, memory); each other one rewrites its "
        "vectors as that type, for search cost and recall against exact (flat)",
    )
    parser.add_argument("--squad-articles", type=int, default=6)
    parser.add_argument("--questions", type=int, default=200, help="searched (Recall@5, latency)")
    parser.add_argument("--asks", type=int, default=50, help="of them also asked (latency)")
    parser.add_argument(
        "--baseline-up-to",
        type=int,
        default=10_000,
        metavar="N",
        help="sizes up to N passages are also indexed the way every window was embedded before "
        "late chunking (--window-vectors encoded), for the indexing speed ratio in the same run "
        "(0: never)",
    )
    args = parser.parse_args()
    data = Path(args.data)
    started = time.time()
    squad = read_squad_json(data / "squad" / "dev-v1.1.json.gz")
    rng = random.Random(0)
    chosen = set(rng.sample(range(len(squad)), args.squad_articles))
    sizes: dict = {}
    with tempfile.TemporaryDirectory(prefix="notesqa-scale-") as tmp:
        notes = Path(tmp) / "vault"
        (notes / "squad").mkdir(parents=True)
        questions = write_notes(squad, notes / "squad", chosen)
        for q in questions:
            q["source"] = f"squad/{q['source']}"
        questions = rng.sample(questions, min(args.questions, len(questions)))
        squad_chars = folder_bytes(notes / "squad")
        articles, state = (
            wiki_articles(data),
            {"files": 0, "passages": squad_chars // CHARS_PER_PASSAGE},
        )
        for target in sorted(args.passages):
            grow_vault(notes, articles, target, state)
            row, first = {}, None
            for index_type in args.index_types:
                index = Path(tmp) / f"index-{target}-{index_type}"
                if first is None:  # from scratch: the indexing speed and memory
                    built = run_index(notes, index, index_type, rebuild=True)
                    first = index
                else:  # the first type's vectors, written as this type (nothing re-embedded)
                    shutil.copytree(first, index)
                    built = run_index(notes, index, index_type, rebuild=False)
                summary = built["summary"]
                passages = summary["chunks"]
                size = folder_bytes(index)
                edit_one_note(notes)
                update = run_index(notes, index, index_type, rebuild=False)
                row[index_type] = {
                    "passages": passages,
                    "files": summary["files"],
                    "built": summary["index_type"],
                    **(
                        {
                            "index_s": round(built["seconds"], 1),
                            "passages_per_s": round(passages / built["seconds"], 1),
                            "peak_rss_mb": round(built["peak_rss_mb"], 1),
                        }
                        if index == first
                        else {"rewritten_from": args.index_types[0]}
                    ),
                    "index_mb": round(size / 2**20, 1),
                    "bytes_per_passage": round(size / passages),
                    "recall_at_10_vs_exact": summary.get("recall_at_10"),
                    "reindex_one_note_s": round(update["seconds"], 1),
                    **measure_queries(index, questions, args.asks),
                }
                print(json.dumps({target: {index_type: row[index_type]}}), file=sys.stderr)
            if target <= args.baseline_up_to:  # today's path before late chunking, same vault
                baseline = Path(tmp) / f"encoded-{target}"
                row["baseline"] = encoded_baseline(notes, baseline, row, args.index_types[0])
                print(json.dumps({target: {"baseline": row["baseline"]}}), file=sys.stderr)
            sizes[str(target)] = row
    keys = ["passages_per_s", "peak_rss_mb", "bytes_per_passage", "search_ms", "ask_ms",
            "reindex_one_note_s", "recall_at_5"]  # fmt: skip
    print(
        json.dumps(
            {
                "sizes": sizes,
                "growth": growth(sizes, keys),
                "questions": len(questions),
                "squad_articles": args.squad_articles,
                "wall_seconds": round(time.time() - started, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
