"""The notes folder and everything read from it is data, through the real ``notesqa`` entry point.

Nothing from the notes folder is imported or run by a process notesqa starts (booby-trapped
folders); file names and note text reach the terminal inert (no raw escape sequence); odd input
(invalid UTF-8, deep JSON, a pipe) gives a clear one-line error or the right result.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

NOTESQA = Path(sys.executable).with_name("notesqa")  # the installed console script
# a module that, if ever imported, leaves a line in the marker file
TRAP = "open({marker!r}, 'a').write(__file__ + '\\n')\n"
TRAPS = (
    "streamlit/__init__.py",  # `python -m streamlit` from the notes folder
    "streamlit/__main__.py",
    "app/__init__.py",  # `python -m app.cli watch` from the notes folder
    "app/cli.py",
    "json.py",  # any standard module a child imports
    "runpy.py",
    "sitecustomize.py",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as r:
            return r.status == 200
    except OSError:  # not listening yet, or at another path (a config from the notes read)
        return False


def _stop(proc: subprocess.Popen) -> None:
    """Stop ``proc`` and the processes it started (its own process group)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:  # the group is gone already
            pass
        try:
            proc.wait(timeout=30)
            return
        except subprocess.TimeoutExpired:
            continue


def _booby_trapped_notes(root: Path, marker: Path) -> Path:
    notes = root / "notes"
    notes.mkdir()
    (notes / "ada.md").write_text("# Ada\n\nAda Smithson was born in Oslo in 1850.\n")
    for rel in TRAPS:
        (notes / rel).parent.mkdir(parents=True, exist_ok=True)
        (notes / rel).write_text(TRAP.format(marker=str(marker)))
    # a Streamlit config in the notes: read, it would move the app to /trapped/
    (notes / ".streamlit").mkdir()
    (notes / ".streamlit" / "config.toml").write_text('[server]\nbaseUrlPath = "trapped"\n')
    return notes


@pytest.mark.skipif(not NOTESQA.exists(), reason="the notesqa console script is not installed")
def test_notesqa_app_watch_runs_nothing_from_the_notes_folder(
    tmp_path, tiny_embedder_dir, tiny_reader_dir
):
    """``cd NOTES && notesqa app . --watch`` starts both kinds of child (the Streamlit server and
    a watcher): neither imports the notes' modules nor reads their Streamlit settings."""
    pytest.importorskip("streamlit")
    marker = tmp_path / "trap-ran.txt"
    notes = _booby_trapped_notes(tmp_path, marker)
    port = _free_port()
    argv = [str(NOTESQA), "app", ".", "--port", str(port), "--embedder", str(tiny_embedder_dir)]
    argv += ["--reader", str(tiny_reader_dir), "--watch"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # as a user's shell has it
    log = tmp_path / "out.txt"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv,
            cwd=notes,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped with its children below
        )
    healthy = watching = False
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            healthy = healthy or _healthy(port)
            watching = watching or "watching" in log.read_text(errors="replace")
            if healthy and watching:
                break
            time.sleep(0.5)
    finally:
        _stop(proc)
    output = log.read_text(errors="replace")
    assert not marker.exists(), f"code from the notes folder ran: {marker.read_text()}"
    assert healthy, f"the app did not answer at /_stcore/health:\n{output[-3000:]}"
    assert watching, f"the watcher did not start:\n{output[-3000:]}"
