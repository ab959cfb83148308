"""How `notesqa serve` holds up under concurrent clients, against asking in-process.

notes_dev (or ``--notes`` in its layout) is indexed, then the same ``--questions`` questions are
asked: first in-process one after another (``NotesQA.ask``, the baseline), then through a real
``notesqa serve`` on a free localhost port by 1, 4 and 16 concurrent clients (threads with their
own ``httpx`` connection; each client asks its share of the questions in turn). Printed per
level: questions per second, the ratio to the in-process rate, latency p50/p95 in ms and
requests that failed (any non-200). Bounded: localhost only, ``--questions`` requests a level.

Example:
    $ python benchmarks/serve_load.py --data ../shared/data
    {"in_process": {"questions_per_s": ...}, "clients": {"1": {..., "ratio": 0.97}, "16": ...}}
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from notes_qa import notes_dev_task  # noqa: E402
from speed import percentiles  # noqa: E402

from rag.pipeline import NotesQA  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def latency_block(latencies: list[float], seconds: float, failed: int, baseline: float) -> dict:
    rate = len(latencies) / seconds
    ms = percentiles(latencies)
    return {
        "questions_per_s": round(rate, 2),
        "ratio": round(rate / baseline, 3),
        "p50_ms": ms["p50"],
        "p95_ms": ms["p95"],
        "failed": failed,
    }


def load(base: str, questions: list[str], clients: int) -> tuple[list[float], float, int]:
    """Ask every question once, ``clients`` at a time; (latencies ms, wall seconds, failures)."""
    shares = [questions[i::clients] for i in range(clients)]

    def client(share: list[str]) -> tuple[list[float], int]:
        latencies, failed = [], 0
        with httpx.Client(base_url=base, timeout=300) as http:
            for question in share:
                started = time.perf_counter()
                reply = http.post("/ask", json={"question": question})
                latencies.append((time.perf_counter() - started) * 1000)
                failed += reply.status_code != 200
        return latencies, failed

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(client, shares))
    seconds = time.perf_counter() - started
    return [ms for lat, _ in results for ms in lat], seconds, sum(f for _, f in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument(
        "--notes", type=Path, help="a set in notes_dev's layout (default notes_dev)"
    )
    parser.add_argument("--questions", type=int, default=64)
    parser.add_argument("--clients", nargs="+", type=int, default=[1, 4, 16])
    args = parser.parse_args()
    root = args.notes or Path(args.data) / "notes_dev"
    with tempfile.TemporaryDirectory(prefix="notesqa-load-") as tmp:
        notes = Path(tmp) / "notes"
        notes.mkdir()
        task = notes_dev_task(root, notes, 0, 0)
        questions = [q["question"] for q in task.questions]
        questions = (questions * (args.questions // len(questions) + 1))[: args.questions]
        qa = NotesQA.open(notes)
        qa.index(progress=False)
        qa.ask(questions[0])  # warm: models loaded, as the server's are
        latencies = []
        started = time.perf_counter()
        for question in questions:
            t0 = time.perf_counter()
            qa.ask(question)
            latencies.append((time.perf_counter() - t0) * 1000)
        baseline_s = time.perf_counter() - started
        qa.close()
        baseline = len(questions) / baseline_s
        out = {"in_process": latency_block(latencies, baseline_s, 0, baseline), "clients": {}}
        port = free_port()
        command = [sys.executable, "-m", "app.cli", "serve", "--index", str(notes / ".notesqa"),
                   "--port", str(port)]  # fmt: skip
        server = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    if httpx.get(f"{base}/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            httpx.post(f"{base}/ask", json={"question": questions[0]}, timeout=300)  # warm
            for clients in args.clients:
                latencies, seconds, failed = load(base, questions, clients)
                out["clients"][str(clients)] = latency_block(latencies, seconds, failed, baseline)
        finally:
            server.terminate()
            server.wait(timeout=30)
    out["questions"] = len(questions)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
