"""``make bench``: the headline benchmarks, each in its own process, into one results table.

Every benchmark below backs a number in README.md or models/MODEL_CARD.md. Each runs as a
subprocess that prints one JSON object (``HEADLINE`` lists the command and the data it needs);
this script times it, kills it past ``--timeout`` seconds, picks the table's rows out of its JSON
and writes

* ``OUT/results.json``: the machine, every benchmark's command, status, seconds and full JSON,
  and the rows;
* ``OUT/results.md``: the same rows as a Markdown table (benchmark, metric, notesqa, baseline or
  peer, ratio, seconds), the machine above it.

A benchmark whose data is missing is reported as skipped; one that fails or runs out of time is
reported as such, with the end of its stderr in the JSON: neither stops the others. The sizes
are chosen so that each benchmark finishes in under 10 minutes on a 2-core CPU.

Example:
    $ python benchmarks/report.py --data ../shared/data --out build/bench
    notes_qa_squad_v1: ok in 231.5 s
    ...
    wrote build/bench/results.json and build/bench/results.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"  # the shared data folder beside the repository
BENCH = "benchmarks"


@dataclass
class Row:
    """One line of the table: ``ours`` beside ``peer`` (what it is named in ``peer_name``);
    ``ratio`` is ours / peer, given only where both are higher-is-better measures of the same
    thing in the same run."""

    metric: str
    ours: float | str | None
    peer_name: str = ""
    peer: float | str | None = None
    ratio: bool = False


@dataclass
class Headline:
    """A benchmark of the table: its command (``{data}`` and ``{out}`` filled in), the data files
    it reads (relative to the data folder) and how its JSON becomes rows."""

    name: str
    what: str
    command: list[str]
    needs: list[str]
    rows: Callable[[dict], list[Row]]
    python: bool = field(default=True)  # the command is run by this Python interpreter


def _get(result: dict, *keys, default=None):
    """``result[k1][k2]...``, or ``default`` where a key is missing.

    Example:
        >>> _get({"a": {"b": 1}}, "a", "b"), _get({"a": {}}, "a", "b")
        (1, None)
    """
    for key in keys:
        if not isinstance(result, dict) or key not in result:
            return default
        result = result[key]
    return result


def _percent(share: float | None) -> str | None:
    return None if share is None else f"{100 * share:.1f}%"


def squad_v1_rows(r: dict) -> list[Row]:
    return [
        Row(
            "F1 (answers 0 where it abstains)",
            r.get("f1"),
            "never abstaining",
            _get(r, "always_answer", "f1"),
        ),
        Row(
            "exact match",
            r.get("exact_match"),
            "never abstaining",
            _get(r, "always_answer", "exact_match"),
        ),
        Row("answered", _percent(r.get("answered"))),
        Row("ECE of confidence (EM)", _get(r, "selective", "ece")),
        Row(
            "AURC (1 - F1), lower is better",
            _get(r, "selective", "aurc"),
            "no order",
            _get(r, "selective", "aurc_random"),
        ),
        Row(
            "ask latency p50 / p95 (ms)",
            f"{_get(r, 'ask_latency_ms', 'p50')} / {_get(r, 'ask_latency_ms', 'p95')}",
        ),
    ]


def squad_v2_rows(r: dict) -> list[Row]:
    no_ans = _get(r, "no_ans", "total")
    abstain_f1 = round(100 * no_ans / r["questions"], 2) if no_ans and r.get("questions") else None
    return [
        Row("F1", r.get("f1"), "always abstaining", abstain_f1, ratio=True),
        Row("F1 HasAns / NoAns", f"{_get(r, 'has_ans', 'f1')} / {_get(r, 'no_ans', 'f1')}"),
        Row("answered", _percent(r.get("answered"))),
    ]


def notes_dev_rows(r: dict) -> list[Row]:
    abstained = r.get("unanswerable_abstained") or {}
    return [
        Row(
            "answerable F1",
            _get(r, "has_ans", "f1"),
            "never abstaining",
            _get(r, "always_answer", "has_ans", "f1"),
        ),
        Row("unanswerable abstained", f"{abstained.get('correct')} of {abstained.get('of')}"),
        Row("F1, all questions", r.get("f1")),
    ]


def notes_retrieval_rows(r: dict) -> list[Row]:
    def score(mode: str, key: str):
        return _get(r, "retrieval", mode, key)

    return [
        Row(
            "Recall@5 hybrid (the default)",
            score("hybrid", "recall@5"),
            "BM25",
            score("bm25", "recall@5"),
            True,
        ),
        Row("Recall@5 dense", score("dense", "recall@5"), "BM25", score("bm25", "recall@5"), True),
        Row("MRR@10 hybrid", score("hybrid", "mrr@10"), "BM25", score("bm25", "mrr@10"), True),
        Row("index passages/s (2 threads)", r.get("index_passages_per_s")),
    ]


def retrieval_rows(r: dict) -> list[Row]:
    def r5(name: str):
        return _get(r, "squad_dev", name, "recall@5")

    return [
        Row(
            "Recall@5, one vector per paragraph", r5("ours"), "all-MiniLM-L6-v2", r5("minilm"), True
        ),
        Row(
            "Recall@5 with windows",
            r5("ours_windows"),
            "all-MiniLM-L6-v2 with windows",
            r5("minilm_windows"),
            True,
        ),
        Row("Recall@5 hybrid with windows", r5("hybrid_windows"), "BM25", r5("bm25"), True),
        *(
            Row(
                f"notes_dev Recall@5 {mode} ({criterion})",
                _get(r, "notes_dev", mode, criterion, "recall@5"),
                "BM25",
                _get(r, "notes_dev", "bm25", criterion, "recall@5"),
                True,
            )
            for mode in ("hybrid", "dense")
            for criterion in ("lenient", "strict")
        ),
        Row(
            "STS-B test Spearman x 100",
            _get(r, "stsb_test_spearman", "ours"),
            "all-MiniLM-L6-v2",
            _get(r, "stsb_test_spearman", "minilm"),
            True,
        ),
        Row(
            "encode passages/s",
            _get(r, "encode_per_s", "ours"),
            "all-MiniLM-L6-v2",
            _get(r, "encode_per_s", "minilm"),
            True,
        ),
    ]


def _round(value, digits: int = 2):
    return round(value, digits) if isinstance(value, (int, float)) else value


def reader_rows(r: dict) -> list[Row]:
    return [Row("F1", _round(r.get("f1"))), Row("exact match", _round(r.get("exact_match")))]


def throughput_rows(r: dict) -> list[Row]:
    return [
        Row(
            "pretraining tokens/s",
            r.get("ours_tokens_per_s"),
            "Hugging Face BertForPreTraining, fp32",
            r.get("baseline_tokens_per_s"),
            True,
        ),
        Row("model FLOPs utilisation", r.get("mfu")),
        Row("bf16", r.get("bf16")),
    ]


def speed_rows(r: dict) -> list[Row]:
    def both(*keys):
        return _get(r, "onnx", *keys), _get(r, "torch", *keys)

    cold, cold_torch = both("cold_ask_s")
    p50, p50_torch = both("squad", "ask_ms", "p50")
    index, index_torch = both("squad", "index_passages_per_s")
    cost = _get(r, "compare", "cost_points") or {}
    return [
        Row("cold `notesqa ask` s (ONNX), lower is better", cold, "torch", cold_torch),
        Row("warm ask p50 ms (ONNX), lower is better", p50, "torch", p50_torch),
        Row("index passages/s (ONNX)", index, "torch", index_torch, True),
        Row(
            "cost in points: SQuAD F1 / reader F1 / hybrid R@5",
            f"{cost.get('squad_f1')} / {cost.get('squad_reader_f1')} / "
            f"{cost.get('squad_hybrid_recall@5')}",
        ),
        Row(
            "cost in points: notes_dev F1 / hybrid R@5",
            f"{cost.get('notes_dev_has_ans_f1')} / {cost.get('notes_dev_hybrid_recall@5')}",
        ),
    ]


def scale_rows(r: dict) -> list[Row]:
    """The largest size against the smallest, per index type: what growing the vault costs."""
    sizes = r.get("sizes") or {}
    if len(sizes) < 2:
        return [Row("index passages/s, search and ask p50 ms by vault size", None)]
    small, big = sorted(sizes, key=int)[0], sorted(sizes, key=int)[-1]
    rows = []
    for index_type, b in sizes[big].items():
        if index_type == "baseline":  # late chunking against every window embedded alone
            built = next((r for r in sizes[big].values() if "index_s" in r), {})
            rows.append(
                Row(f"index passages/s, {big} passages", built.get("passages_per_s"),
                    "every window embedded alone", b.get("passages_per_s"), True)
            )  # fmt: skip
            continue
        a = sizes[small].get(index_type, {})
        name = f"{index_type}, {b.get('passages')} passages vs {a.get('passages')}"
        rows += [
            Row(f"{name}: index passages/s", b.get("passages_per_s"), "smaller vault",
                a.get("passages_per_s"), True),
            Row(f"{name}: search p50 ms", _get(b, "search_ms", "p50"), "smaller vault",
                _get(a, "search_ms", "p50")),
            Row(f"{name}: ask p50 ms", _get(b, "ask_ms", "p50"), "smaller vault",
                _get(a, "ask_ms", "p50")),
            Row(f"{name}: index bytes per passage", b.get("bytes_per_passage"), "smaller vault",
                a.get("bytes_per_passage")),
            Row(f"{name}: Recall@5 / re-index after one edit s",
                f"{b.get('recall_at_5')} / {b.get('reindex_one_note_s')}"),
        ]  # fmt: skip
    return rows


SQUAD_V1, SQUAD_V2 = "squad/dev-v1.1.json.gz", "squad/dev-v2.0.json.gz"
HEADLINE = [
    Headline(
        "notes_qa_squad_v1",
        "SQuAD v1.1 dev as notes (48 files), 1,000 questions asked, k 5",
        [f"{BENCH}/notes_qa.py", "--data", "{data}", "--squad", "v1", "--limit", "1000",
         "--no-retrieval", "--plot", "{out}/risk_coverage_squad-v1.png"],
        [SQUAD_V1],
        squad_v1_rows,
    ),
    Headline(
        "notes_qa_squad_v2",
        "SQuAD v2.0 dev as notes, 1,000 questions asked (about half unanswerable)",
        [f"{BENCH}/notes_qa.py", "--data", "{data}", "--squad", "v2", "--limit", "1000",
         "--no-retrieval", "--plot", "{out}/risk_coverage_squad-v2.png"],
        [SQUAD_V2],
        squad_v2_rows,
    ),
    Headline(
        "notes_qa_notes_dev",
        "notes_dev: 12 D2L chapters, 90 questions (15 unanswerable)",
        [f"{BENCH}/notes_qa.py", "--data", "{data}", "--notes-dev",
         "--plot", "{out}/risk_coverage_notes-dev.png"],
        ["notes_dev/questions.jsonl", "notes_dev/notes"],
        notes_dev_rows,
    ),
    Headline(
        "notes_qa_retrieval",
        "SQuAD v1.1 dev as notes (48 files), the same 1,000 questions searched (not asked)",
        [f"{BENCH}/notes_qa.py", "--data", "{data}", "--squad", "v1", "--limit", "1000",
         "--no-reader"],
        [SQUAD_V1],
        notes_retrieval_rows,
    ),
    Headline(
        "retrieval",
        "SQuAD v1.1 dev, 16 of its 48 articles (seed 0): 3,074 questions over their 666 "
        "paragraphs; STS-B test",
        [f"{BENCH}/retrieval.py", "--data", "{data}", "--articles", "16"],
        [SQUAD_V1, "stsbenchmark/sts-test.csv"],
        retrieval_rows,
    ),
    Headline(
        "reader_squad",
        "the reader alone (notesqa eval squad), first 2,000 SQuAD v1.1 dev questions",
        ["-m", "app.cli", "eval", "squad", "--data", "{data}/" + SQUAD_V1, "--limit", "2000",
         "--json"],
        [SQUAD_V1],
        reader_rows,
    ),
    Headline(
        "speed",
        "ONNX int8 (the default runtime) against torch, each in its own process: cold ask, "
        "warm ask on 300 SQuAD questions over 8 articles, indexing, and the quality it costs",
        [f"{BENCH}/speed.py", "--data", "{data}"],
        [SQUAD_V1, "notes_dev/questions.jsonl", "notes_dev/notes"],
        speed_rows,
    ),
    Headline(
        "scale",
        "big vaults: Wikipedia notes plus 6 SQuAD dev articles at about 1k and 10k passages, "
        "indexed from scratch (auto), rewritten flat; 200 questions searched, 50 asked",
        [f"{BENCH}/scale.py", "--data", "{data}"],
        [SQUAD_V1, "enwiki"],
        scale_rows,
    ),
    Headline(
        "pretrain_throughput",
        "pretraining step, 4 x 256 BERT, batch 64 x 128 tokens, synthetic data",
        [f"{BENCH}/pretrain_throughput.py", "--batch", "64", "--steps", "8",
         "--max-seconds", "240"],
        [],
        throughput_rows,
    ),
]  # fmt: skip


def last_json_object(text: str) -> dict:
    """The last top-level JSON object printed in ``text`` (progress lines may come before it).

    Example:
        >>> last_json_object('loading...\\n{"a": 1}\\n{\\n  "b": [2]\\n}\\n')
        {'b': [2]}
    """
    decoder = json.JSONDecoder()
    starts = [i for i, c in enumerate(text) if c == "{" and (i == 0 or text[i - 1] == "\n")]
    for start in reversed(starts):
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    raise ValueError("no JSON object in the benchmark's output")


def run_one(bench: Headline, data: Path, out: Path, timeout: float) -> dict:
    """Run ``bench`` (or skip it when its data is missing): status, seconds, command, result."""
    command = [
        part.replace("{data}", str(data)).replace("{out}", str(out)) for part in bench.command
    ]
    if bench.python:
        command = [sys.executable, *command]
    entry: dict = {"what": bench.what, "command": command}
    missing = [need for need in bench.needs if not (data / need).exists()]
    if missing:
        return {**entry, "status": "skipped", "reason": f"missing data: {', '.join(missing)}"}
    start = time.perf_counter()
    try:
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as err:
        seconds = round(time.perf_counter() - start, 1)
        stderr = err.stderr.decode(errors="replace") if isinstance(err.stderr, bytes) else ""
        return {
            **entry,
            "status": "timed out",
            "seconds": seconds,
            "reason": f"still running after {timeout:.0f} s",
            "stderr_tail": stderr[-2000:],
        }
    entry["seconds"] = round(time.perf_counter() - start, 1)
    if done.returncode != 0:
        return {
            **entry,
            "status": "failed",
            "reason": f"exit code {done.returncode}",
            "stderr_tail": done.stderr[-2000:],
        }
    try:
        entry["result"] = last_json_object(done.stdout)
    except ValueError as err:
        return {**entry, "status": "failed", "reason": str(err), "stdout_tail": done.stdout[-2000:]}
    return {**entry, "status": "ok"}


def machine_info() -> dict:
    """CPU model, cores, Python and torch versions, and the commit the table was made at."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()}
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        info["torch"] = None
    info["commit"] = _git("rev-parse", "--short", "HEAD")
    info["uncommitted_changes"] = bool(_git("status", "--porcelain", "--untracked-files=no"))
    info["date"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return info


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def table_rows(benches: list[Headline], entries: dict[str, dict]) -> list[dict]:
    """The table's rows: a benchmark's metrics when it ran, else one row saying why not."""
    rows = []
    for bench in benches:
        entry = entries[bench.name]
        base = {"benchmark": bench.name, "seconds": entry.get("seconds")}
        if entry["status"] != "ok":
            rows.append({**base, "metric": f"{entry['status']}: {entry.get('reason', '')}"})
            continue
        for row in bench.rows(entry["result"]):
            ratio = None
            if (
                row.ratio
                and isinstance(row.ours, (int, float))
                and isinstance(row.peer, (int, float))
                and row.peer
            ):
                ratio = round(row.ours / row.peer, 3)
            rows.append(
                {
                    **base,
                    "metric": row.metric,
                    "notesqa": row.ours,
                    "peer": row.peer_name,
                    "peer_value": row.peer,
                    "ratio": ratio,
                }
            )
    return rows


def _cell(value) -> str:
    if value is None:
        return ""
    return str(value).replace("|", "\\|")


def markdown(machine: dict, benches: list[Headline], entries: dict, rows: list[dict]) -> str:
    """The results table, the machine above it and each benchmark's set and command below."""
    torch = machine.get("torch")
    cuda = f", {machine['cuda']}" if machine.get("cuda") else ""
    dirty = " (with uncommitted changes)" if machine.get("uncommitted_changes") else ""
    lines = [
        "# notesqa benchmarks (`make bench`)",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores{cuda}; Python {machine['python']}, "
        f"torch {torch}. Commit {machine.get('commit')}{dirty}, {machine['date']}.",
        "",
        "| benchmark | metric | notesqa | baseline / peer | ratio | seconds |",
        "|---|---|---|---|---|---|",
    ]
    shown: set[str] = set()
    for row in rows:
        name = row["benchmark"]
        first = name not in shown
        shown.add(name)
        peer = row.get("peer") or ""
        if row.get("peer_value") is not None:
            peer = f"{row['peer_value']} ({peer})" if peer else str(row["peer_value"])
        ratio = f"{row['ratio']}x" if row.get("ratio") is not None else ""
        seconds = row.get("seconds") if first else ""
        cells = [name if first else "", row["metric"], row.get("notesqa"), peer, ratio, seconds]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines += ["", "Each benchmark's set and command (`results.json` has its full output):", ""]
    for bench in benches:
        entry = entries[bench.name]
        command = " ".join(entry["command"]).replace(sys.executable, "python")
        command = command.replace(str(ROOT) + "/", "")
        lines.append(f"- **{bench.name}**: {bench.what}. `{command}`")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, default=DATA, help="the shared data folder (%(default)s)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench", help="%(default)s")
    parser.add_argument(
        "--only", nargs="+", choices=[b.name for b in HEADLINE], help="run only these benchmarks"
    )
    parser.add_argument(
        "--timeout", type=float, default=600, help="seconds one benchmark may run (%(default)s)"
    )
    args = parser.parse_args()
    data, out = args.data.resolve(), args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    benches = [b for b in HEADLINE if not args.only or b.name in args.only]
    machine = machine_info()
    entries = {}
    for bench in benches:
        print(f"{bench.name}: running ({bench.what})", flush=True)
        entries[bench.name] = entry = run_one(bench, data, out, args.timeout)
        took = f" in {entry['seconds']} s" if "seconds" in entry else ""
        why = f" ({entry['reason']})" if "reason" in entry else ""
        print(f"{bench.name}: {entry['status']}{took}{why}", flush=True)
    rows = table_rows(benches, entries)
    settings = {"data": str(data), "timeout_s": args.timeout}
    results = {"machine": machine, "settings": settings, "benchmarks": entries, "rows": rows}
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (out / "results.md").write_text(markdown(machine, benches, entries, rows), encoding="utf-8")
    print(f"wrote {out / 'results.json'} and {out / 'results.md'}")
    if any(e["status"] in ("failed", "timed out") for e in entries.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
