"""``make bench``'s runner (benchmarks/report.py) and the throughput benchmark's bf16 check,
without running a real benchmark: fake ones print canned JSON in a subprocess."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from benchmarks import report  # noqa: E402
from benchmarks.pretrain_throughput import native_bf16  # noqa: E402


def fake(name: str, printed: str, needs: list[str] | None = None, code: int = 0):
    """A benchmark that prints ``printed`` (after a progress line) and exits with ``code``."""
    script = f"import sys; print('loading'); print({printed!r}); sys.exit({code})"
    return report.Headline(
        name,
        f"the fake {name}",
        ["-c", script],
        needs or [],
        lambda r: [report.Row("score", r["ours"], "peer", r["peer"], ratio=True)],
    )


def test_a_table_with_an_ok_a_skipped_and_a_failed_benchmark(tmp_path):
    benches = [
        fake("good", json.dumps({"ours": 0.9, "peer": 0.6}, indent=2)),
        fake("no_data", "{}", needs=["squad/missing.json.gz"]),
        fake("broken", "not json", code=3),
    ]
    entries = {b.name: report.run_one(b, tmp_path, tmp_path, timeout=60) for b in benches}
    assert entries["good"]["status"] == "ok"
    assert entries["good"]["result"] == {"ours": 0.9, "peer": 0.6}
    assert entries["no_data"] == {
        "what": "the fake no_data",
        "command": [sys.executable, "-c", benches[1].command[1]],
        "status": "skipped",
        "reason": "missing data: squad/missing.json.gz",
    }
    assert entries["broken"]["status"] == "failed"
    assert entries["broken"]["reason"] == "exit code 3"

    rows = report.table_rows(benches, entries)
    assert rows[0]["ratio"] == 1.5 and rows[0]["notesqa"] == 0.9
    assert rows[1]["metric"].startswith("skipped: missing data")
    text = report.markdown(report.machine_info(), benches, entries, rows)
    assert "| good | score | 0.9 | 0.6 (peer) | 1.5x |" in text
    assert "| no_data | skipped: missing data: squad/missing.json.gz |" in text
    assert "| broken | failed: exit code 3 |" in text


def test_a_benchmark_past_its_timeout_is_reported_not_waited_for(tmp_path):
    slow = report.Headline("slow", "sleeps", ["-c", "import time; time.sleep(30)"], [], list)
    entry = report.run_one(slow, tmp_path, tmp_path, timeout=1)
    assert entry["status"] == "timed out" and entry["seconds"] < 20


def test_every_headline_benchmark_has_rows_for_an_empty_result():
    """A benchmark whose JSON lacks a key gives empty cells, not a crash of the whole table."""
    for bench in report.HEADLINE:
        assert bench.rows({}), bench.name


@pytest.mark.parametrize(
    ("cpuinfo", "native"),
    [
        ("flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile", "amx_bf16"),
        ("flags\t\t: fpu sse2 avx2 avx512f avx512_bf16", "avx512_bf16"),
        ("flags\t\t: fpu sse2 avx2 avx512f avx512_vnni", None),
        ("flags\t\t: fpu sse2 avx2", None),
        ("Features\t: fp asimd sve bf16 i8mm", "bf16"),
        ("", None),
    ],
)
def test_native_bf16_reads_the_cpu_flags(cpuinfo, native):
    assert native_bf16(torch.device("cpu"), cpuinfo) == native


def test_the_scale_rows_set_late_chunking_beside_every_window_embedded_alone():
    run = {"passages": 1000, "passages_per_s": 200.0, "index_s": 5.0, "search_ms": {"p50": 9.0}}
    result = {
        "sizes": {
            "1000": {"auto": run},
            "10000": {
                "auto": {**run, "passages": 10000, "passages_per_s": 180.0},
                "flat": {"passages": 10000, "rewritten_from": "auto"},
                "baseline": {"windows": "encoded", "passages_per_s": 72.0},
            },
        }
    }
    rows = report.scale_rows(result)
    speed = [r for r in rows if r.peer_name == "every window embedded alone"]
    assert [(s.ours, s.peer, s.ratio) for s in speed] == [(180.0, 72.0, True)]
    assert not any("baseline" in r.metric for r in rows)
