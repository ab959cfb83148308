"""SQuAD dev as notes, asked through the real command line: ``notesqa index``, then
``notesqa ask --batch``, as a user with a folder of notes and a file of questions would.

Every article of the dev set becomes one Markdown file (``benchmarks.notes_qa.squad_task``: the
same files and the same ``--limit``/``--seed`` sample as ``benchmarks/notes_qa.py``); the sampled
questions go into one JSONL file; ``notesqa ask --batch`` answers them in one process with the
default policy, and again with ``--always-answer`` (the baseline of the same run). Prints one
JSON object: official EM/F1 (v2: ``has_ans``/``no_ans``), the share answered, the F1 of
abstaining on every question, and the seconds each command took.

Example:
    python benchmarks/squad_cli.py --squad v2 --limit 2000          # the issue #42 measurement
    python benchmarks/squad_cli.py --squad v1 --limit 1000 --no-always-answer
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.notes_qa import DATA, official_scores, squad_task  # noqa: E402

NOTESQA = [sys.executable, "-m", "app.cli"]
DEV_FILES = {"v1": "dev-v1.1.json.gz", "v2": "dev-v2.0.json.gz"}


def run_notesqa(args: list[str], stdout=None) -> float:
    """Run ``notesqa ARGS``; returns its seconds. A failure stops the benchmark with its output."""
    started = time.time()
    done = subprocess.run([*NOTESQA, *args], stdout=stdout, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise SystemExit(f"notesqa {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return round(time.time() - started, 1)


def ask_batch(index: Path, questions: Path, answers: Path, extra: list[str]) -> tuple[dict, float]:
    """``{id: top answer text or ""}`` from ``notesqa ask --batch`` and its seconds."""
    with open(answers, "w", encoding="utf-8") as out:
        seconds = run_notesqa(
            ["ask", "--batch", str(questions), "--index", str(index), *extra], stdout=out
        )
    predictions = {}
    for line in answers.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        predictions[record["id"]] = record["answers"][0]["text"] if record["answers"] else ""
    return predictions, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DATA), help="the shared data folder (%(default)s)")
    parser.add_argument("--squad", choices=("v1", "v2"), default="v2")
    parser.add_argument("--limit", type=int, default=2000, help="sample N questions (0: all)")
    parser.add_argument("--seed", type=int, default=0, help="of the --limit sample")
    parser.add_argument("--reader", help="reader folder (default: the shipped one)")
    parser.add_argument(
        "--no-always-answer", action="store_true", help="skip the --always-answer baseline run"
    )
    args = parser.parse_args()
    path = Path(args.data) / "squad" / DEV_FILES[args.squad]
    with tempfile.TemporaryDirectory(prefix="notesqa-cli-bench-") as tmp:
        notes = Path(tmp) / "notes"
        notes.mkdir()
        task = squad_task(path, notes, args.squad, args.limit, args.seed, None)
        questions = Path(tmp) / "questions.jsonl"
        questions.write_text(
            "".join(json.dumps({"id": q["id"], "question": q["question"]}) + "\n"
                    for q in task.questions),
            encoding="utf-8",
        )  # fmt: skip
        index_seconds = run_notesqa(["index", str(notes)], stdout=subprocess.DEVNULL)
        reader = ["--reader", args.reader] if args.reader else []
        index = notes / ".notesqa"
        runs = {"default": reader}
        if not args.no_always_answer:
            runs["always_answer"] = [*reader, "--always-answer"]
        result: dict = {"mode": f"squad-{args.squad}", "questions": len(task.questions)}
        for name, extra in runs.items():
            predictions, seconds = ask_batch(index, questions, Path(tmp) / f"{name}.jsonl", extra)
            scores = official_scores(task, predictions)
            scores["answered"] = round(sum(map(bool, predictions.values())) / len(predictions), 4)
            scores["ask_seconds"] = seconds
            result[name] = scores
        if args.squad == "v2":
            abstain = official_scores(task, {q["id"]: "" for q in task.questions})
            result["abstain_everywhere_f1"] = abstain["f1"]
        result["index_seconds"] = index_seconds
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
