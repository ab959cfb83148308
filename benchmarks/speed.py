"""Speed of the product path on ONNX (the default runtime) against torch (today's), in one run.

For each runtime (``NOTESQA_RUNTIME``, see ``embedder.onnx_runtime``) the same work, each
runtime in a fresh process of its own (so no thread pool of one waits beside the other's):

* ``cold_ask_s``: wall seconds of a fresh ``notesqa ask`` process over the example notes' index
  (median of ``--cold-runs``, the runtimes alternating; the ONNX exports already made);
* ``index_passages_per_s``: ``NotesQA.index`` of SQuAD v1.1 dev articles written as notes
  (``--articles`` of them, drawn with ``--seed``; models loaded before the clock starts);
* ``ask_ms``: p50/p95 of a warm ``NotesQA.ask``, one question at a time, ``--limit`` SQuAD
  questions of those articles;
* the quality it costs: on the same questions, ``squad.f1``/``exact_match`` of the answers
  asked (official v1.1 scorer, an abstention scores 0), ``squad.reader_f1`` of the reader alone
  on each question's own paragraph (its top span), ``squad.recall@5`` per retrieval mode; and on
  notes_dev (``benchmarks/notes_qa.py``'s task, every question) the answerable F1 and the lenient
  hybrid Recall@5.

``ratio`` divides ONNX by torch (speed-ups: torch time / ONNX time) and ``cost_points`` gives
ONNX minus torch in points (x 100 for recall). ``--runtimes`` may add ``onnx-int8`` (the
embedder in int8 too) or ``onnx-fp32``; the ratios compare the first two.

Example:
    $ .venv/bin/python benchmarks/speed.py --data ../shared/data
    {"runtimes": ["torch", "onnx"], "cold_ask_s": {"torch": 6.1, "onnx": 0.9, "ratio": 6.8}, ...}
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))
from benchmarks.notes_qa import (  # noqa: E402
    lenient_flags,
    notes_dev_task,
    official_scores,
    paragraph_flags,
    retrieval_block,
    squad_task,
)
from embedder import Embedder  # noqa: E402
from rag.metrics import squad_question_scores  # noqa: E402
from rag.pipeline import NotesQA  # noqa: E402
from rag.reader import Reader  # noqa: E402

QUESTION = "What does Adam keep for every parameter?"


def notesqa_command() -> list[str]:
    """The ``notesqa`` entry point beside this Python (as a user runs it)."""
    script = Path(sys.executable).with_name("notesqa")
    return [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]


def cold_asks(index: Path, runtimes: list[str], runs: int) -> dict[str, float]:
    """Median wall seconds of a fresh ``notesqa ask`` per runtime, the runtimes alternating."""
    times: dict[str, list[float]] = {r: [] for r in runtimes}
    for _ in range(runs):
        for name in runtimes:
            env = {**os.environ, "NOTESQA_RUNTIME": name}
            start = time.perf_counter()
            subprocess.run(
                [*notesqa_command(), "ask", QUESTION, "--index", str(index)],
                env=env,
                check=True,
                capture_output=True,
            )
            times[name].append(time.perf_counter() - start)
    return {name: round(statistics.median(t), 3) for name, t in times.items()}


def article_subset(path: Path, articles: int, seed: int, out: Path) -> Path:
    """A SQuAD file of ``articles`` of ``path``'s articles, drawn with ``seed``."""
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        payload = json.load(handle)
    data = payload["data"]
    keep = sorted(random.Random(seed).sample(range(len(data)), min(articles, len(data))))
    out.write_text(json.dumps({**payload, "data": [data[i] for i in keep]}))
    return out


def percentiles(values: list[float]) -> dict:
    return {
        "p50": round(float(np.percentile(values, 50)), 1),
        "p95": round(float(np.percentile(values, 95)), 1),
    }


def squad_block(name: str, notes: Path, work: Path, task, contexts: dict) -> dict:
    """Index, warm asks, reader alone and retrieval on the SQuAD notes, on runtime ``name``."""
    qa = NotesQA.open(notes, work / f"index-{name}")
    _ = (qa.embedder, qa.reader)  # loaded before the clock starts
    summary = qa.index(progress=False)
    qa.ask(task.questions[0]["question"], k=5, top_answers=1)  # warm-up
    latencies, predictions = [], {}
    for q in task.questions:
        start = time.perf_counter()
        answers = qa.ask(q["question"], k=5, top_answers=1)
        latencies.append((time.perf_counter() - start) * 1000)
        predictions[q["id"]] = answers[0].text if answers else ""
    reader_f1 = []
    for q in task.questions:
        ((spans, _),) = qa.reader.read(q["question"], [contexts[q["id"]]])
        reader_f1.append(squad_question_scores(spans[0].text if spans else "", q["answers"])[1])
    recall = retrieval_block(qa, task.questions, {"paragraph": paragraph_flags})
    ran = {"embedder": qa.embedder.runtime, "reader": qa.reader.runtime}
    qa.close()
    return {
        "runtime": ran,
        "passages": summary.chunks,
        "vectors": summary.vectors,
        "index_seconds": round(summary.seconds, 2),
        "index_passages_per_s": round(summary.chunks / summary.seconds, 1),
        "ask_ms": percentiles(latencies),
        **official_scores(task, predictions),
        "reader_f1": round(100 * float(np.mean(reader_f1)), 2),
        "recall@5": {mode: scores["recall@5"] for mode, scores in recall.items()},
    }


def notes_dev_block(name: str, notes: Path, work: Path, task) -> dict:
    """notes_dev's answerable F1 and lenient hybrid Recall@5 on runtime ``name``."""
    qa = NotesQA.open(notes, work / f"notes-dev-index-{name}")
    qa.index(progress=False)
    predictions = {}
    for q in task.questions:
        answers = qa.ask(q["question"], k=5, top_answers=1)
        predictions[q["id"]] = answers[0].text if answers else ""
    answerable = [q for q in task.questions if q["answers"]]
    recall = retrieval_block(qa, answerable, {"lenient": lenient_flags})
    qa.close()
    scores = official_scores(task, predictions)
    return {
        "has_ans_f1": scores.get("has_ans", {}).get("f1"),
        "f1": scores["f1"],
        "recall@5": {mode: s["recall@5"] for mode, s in recall.items()},
    }


def make_exports(runtimes: list[str]) -> float:
    """Load both models on every ONNX runtime once, so their exports exist; seconds taken."""
    start = time.perf_counter()
    for name in runtimes:
        if name != "torch":
            Embedder.load(runtime=name)
            Reader.load(runtime=name)
    return round(time.perf_counter() - start, 1)


def worker(args: argparse.Namespace) -> dict:
    """One runtime's SQuAD and notes_dev blocks (run in its own process by ``main``)."""
    data = Path(args.data)
    with tempfile.TemporaryDirectory(prefix="notesqa-speed-") as tmp:
        work = Path(tmp)
        squad_notes, dev_notes = work / "squad-notes", work / "notes-dev"
        squad_notes.mkdir()
        dev_notes.mkdir()
        subset = article_subset(
            data / "squad" / "dev-v1.1.json.gz", args.articles, args.seed, work / "subset.json"
        )
        task = squad_task(subset, squad_notes, "v1", args.limit, args.seed, None)
        contexts = {
            qa["id"]: p["context"]
            for article in json.loads(subset.read_text())["data"]
            for p in article["paragraphs"]
            for qa in p["qas"]
        }
        dev_task = notes_dev_task(data / "notes_dev", dev_notes, args.notes_dev_limit, args.seed)
        return {
            "squad": squad_block(args.worker, squad_notes, work, task, contexts),
            "notes_dev": notes_dev_block(args.worker, dev_notes, work, dev_task),
            "squad_questions": len(task.questions),
            "notes_dev_questions": len(dev_task.questions),
        }


def run_worker(name: str, argv: list[str]) -> dict:
    """``worker`` for runtime ``name`` in a fresh process; its JSON."""
    env = {**os.environ, "NOTESQA_RUNTIME": name}
    done = subprocess.run(
        [sys.executable, __file__, *argv, "--worker", name],
        env=env,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return json.loads(done.stdout)


def compare(results: dict, runtimes: list[str]) -> dict:
    """Ratios (speed) and differences in points (quality) of the second runtime to the first."""
    base, new = (results[r] for r in runtimes[:2])

    def ratio(a, b):
        return round(a / b, 2) if b else None

    sq, sq0 = new["squad"], base["squad"]
    nd, nd0 = new["notes_dev"], base["notes_dev"]
    return {
        "of": f"{runtimes[1]} against {runtimes[0]}",
        "cold_ask_speedup": ratio(base["cold_ask_s"], new["cold_ask_s"]),
        "ask_p50_speedup": ratio(sq0["ask_ms"]["p50"], sq["ask_ms"]["p50"]),
        "index_speedup": ratio(sq["index_passages_per_s"], sq0["index_passages_per_s"]),
        "cost_points": {
            "squad_f1": round(sq["f1"] - sq0["f1"], 2),
            "squad_reader_f1": round(sq["reader_f1"] - sq0["reader_f1"], 2),
            "squad_hybrid_recall@5": round(
                100 * (sq["recall@5"]["hybrid"] - sq0["recall@5"]["hybrid"]), 2
            ),
            "notes_dev_has_ans_f1": round((nd["has_ans_f1"] or 0) - (nd0["has_ans_f1"] or 0), 2),
            "notes_dev_hybrid_recall@5": round(
                100 * (nd["recall@5"]["hybrid"] - nd0["recall@5"]["hybrid"]), 2
            ),
        },
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DATA), help="the shared data folder (%(default)s)")
    parser.add_argument("--runtimes", default="torch,onnx", help="comma-separated; first = base")
    parser.add_argument("--articles", type=int, default=8, help="SQuAD dev articles indexed")
    parser.add_argument("--limit", type=int, default=300, help="SQuAD questions asked")
    parser.add_argument("--notes-dev-limit", type=int, default=0, help="0: all 90 questions")
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # one runtime's blocks, as JSON
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    started = time.time()
    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    data = Path(args.data)
    result: dict = {"runtimes": runtimes, "threads": os.environ.get("NOTESQA_THREADS", "cores")}
    result["export_seconds"] = make_exports(runtimes)  # 0-ish when the cache already has them
    with tempfile.TemporaryDirectory(prefix="notesqa-speed-") as tmp:
        work = Path(tmp)
        example = NotesQA.open(ROOT / "examples" / "notes", work / "example-index")
        example.index(progress=False)
        example.close()
        cold = cold_asks(work / "example-index", runtimes, args.cold_runs)
    argv = ["--data", str(data), "--articles", str(args.articles), "--limit", str(args.limit)]
    argv += ["--notes-dev-limit", str(args.notes_dev_limit), "--seed", str(args.seed)]
    for name in runtimes:
        blocks = run_worker(name, argv)
        counts = {k: blocks.pop(k) for k in ("squad_questions", "notes_dev_questions")}
        result[name] = {"cold_ask_s": cold[name], **blocks}
    if len(runtimes) >= 2:
        result["compare"] = compare(result, runtimes)
    result.update(
        {
            **counts,
            "squad_articles": args.articles,
            "cold_runs": args.cold_runs,
            "wall_seconds": round(time.time() - started, 1),
        }
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
