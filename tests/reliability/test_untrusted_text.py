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

from tests.reliability.cli_runner import run

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
    tmp_path, tiny_embedder_dir, tiny_reader_dir, evil_notes
):
    """``cd NOTES && notesqa app . --watch`` starts both kinds of child (the Streamlit server and
    a watcher): neither imports the notes' modules nor reads their Streamlit settings.

    (``evil_notes`` indexed with the tiny embedder first: its ONNX export is in the session's
    cache, so the watcher only loads it, and a busy machine stays within the wait.)"""
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
    started = time.monotonic()
    try:
        deadline = started + 180
        while time.monotonic() < deadline and proc.poll() is None:
            healthy = healthy or _healthy(port)
            watching = watching or "watching" in log.read_text(errors="replace")
            if healthy and watching:
                break
            time.sleep(0.5)
    finally:
        _stop(proc)
    output = log.read_text(errors="replace")
    waited = f"after {time.monotonic() - started:.0f} s, exit code {proc.returncode}"
    assert not marker.exists(), f"code from the notes folder ran: {marker.read_text()}"
    assert healthy, f"the app did not answer at /_stcore/health {waited}:\n{output[-3000:]}"
    assert watching, f"the watcher did not start {waited}:\n{output[-3000:]}"


# ---------------------------------------------------------------- untrusted text on the terminal

EVIL_NAME = "evil\x1b[32m\u202e.md"  # a colour and a right-to-left override in a file name
EVIL_TEXT = (
    "# Adam \x1b]0;pwned\x07\n\n"  # "set window title" in a heading
    "Adam keeps \x1b[31mtwo moving averages\x1b[0m per parameter \x9b2J and the \u202esecond. "
    + "The first and second moment estimates are kept for every parameter of the network. "
    * 4
)
SKIPPED_NAME = "skip\x1b]0;x\x07.md"  # a binary-looking note: listed as skipped, by name
RAW = ("\x1b", "\x07", "\x9b", "\u202e")  # none of these may reach the terminal raw


@pytest.fixture(scope="module")
def evil_notes(tmp_path_factory, tiny_embedder_dir) -> Path:
    """A notes folder whose names and text hold escape sequences, indexed once per module."""
    from rag.pipeline import NotesQA

    notes = tmp_path_factory.mktemp("untrusted") / "notes"
    notes.mkdir()
    (notes / EVIL_NAME).write_text(EVIL_TEXT, encoding="utf-8")
    (notes / SKIPPED_NAME).write_bytes(bytes(range(1, 32)) * 20)
    (notes / "ada.md").write_text("# Ada\n\nAda Smithson was born in Oslo in 1850.\n")
    NotesQA.open(notes, embedder=tiny_embedder_dir).index(progress=False)
    return notes


MODELS = ["--embedder", "{embedder}"]
INDEX = ["--index", "{notes}/.notesqa", *MODELS]
TERMINAL = {  # a command line ({notes}: the notes folder) -> its exit code
    "index": (["index", "{notes}", *MODELS], 0),
    "search": (["search", "Adam moving averages", "-k", "3", *INDEX], 0),
    "ask": (["ask", "What does Adam keep?", "--always-answer", "--reader", "{reader}", *INDEX], 0),
    "stats --files": (["stats", "--files", "--index", "{notes}/.notesqa"], 0),
    "an error naming a path": (["search", "--batch", "{notes}/\x1b[2Jq.jsonl", *INDEX], 2),
    "an argparse error": (["stats", "\x1b]0;title\x07"], 2),
}


@pytest.mark.parametrize("case", sorted(TERMINAL))
def test_names_and_text_reach_the_terminal_inert(
    case, evil_notes, capsys, tiny_embedder_dir, tiny_reader_dir
):
    """Escape sequences in file names and note text are printed escaped (``\\x1b``), never raw."""
    line, expected = TERMINAL[case]
    paths = {"notes": evil_notes, "embedder": tiny_embedder_dir, "reader": tiny_reader_dir}
    code, out, err = run([a.format(**paths) for a in line], capsys)
    shown = out + err
    assert not [c for c in RAW if c in shown], shown
    assert "\\x1b" in shown  # the name or text is shown, its escapes written out
    assert code == expected, err


def test_json_output_is_escaped_and_reads_back_the_same(evil_notes, capsys, tiny_embedder_dir):
    import json

    index = ["--index", str(evil_notes / ".notesqa"), "--embedder", str(tiny_embedder_dir)]
    code, out, _ = run(["search", "Adam moving averages", "-k", "3", "--json", *index], capsys)
    assert code == 0 and not [c for c in RAW if c in out]
    hits = json.loads(out)["hits"]
    assert EVIL_NAME in {h["source"] for h in hits}  # escaped on screen, exact in the data
    assert any("\x9b2J" in h["text"] for h in hits)


# ---------------------------------------------------------------- odd input: a clear line or the right result

NOT_UTF8 = {  # Python hands a byte that is not UTF-8 over as a lone surrogate (\udcff for 0xff)
    "ask": ["ask", "\udcff"],
    "search": ["search", "caf\udce9"],
    "--tag": ["search", "x", "--tag", "\udcff"],
    "--heading": ["search", "x", "--heading", "\udcff"],
    "--filter": ["search", "x", "--filter", "\udcff"],
}


@pytest.mark.parametrize("case", sorted(NOT_UTF8))
def test_text_that_is_not_utf8_is_one_clear_line(case, capsys):
    code, out, err = run(NOT_UTF8[case], capsys)
    assert code == 2 and "is not valid UTF-8 (byte 0x" in err, err
    assert out == "" and not [c for c in err if 0xDC80 <= ord(c) <= 0xDCFF]


@pytest.mark.skipif(not NOTESQA.exists(), reason="the notesqa console script is not installed")
def test_a_question_of_invalid_utf8_from_the_shell(tmp_path):
    """``notesqa ask $'\\xff'`` as a shell runs it: the byte reaches Python's argv raw."""
    done = subprocess.run(
        [str(NOTESQA), "ask", b"\xff"], cwd=tmp_path, capture_output=True, timeout=120
    )
    assert done.returncode == 2 and b"is not valid UTF-8 (byte 0xff" in done.stderr, done.stderr
    assert b"Traceback" not in done.stderr


BATCH_LINES = {  # a --batch file -> the phrase of its one-line error
    "an id nested 100,000 deep": (
        b'{"id": ' + b"[" * 100_000 + b"]" * 100_000 + b', "question": "Ada?"}\n',
        "questions.jsonl:1: nested too deeply",
    ),
    "a line over 1 MiB": (b'{"id": 1, "question": "' + b"a" * 2**20 + b'"}\n', "longer than 1 MiB"),
}


@pytest.mark.parametrize("case", sorted(BATCH_LINES))
def test_odd_batch_lines_are_one_clear_line(case, evil_notes, tmp_path, capsys, tiny_embedder_dir):
    content, message = BATCH_LINES[case]
    batch = tmp_path / "questions.jsonl"
    batch.write_bytes(content)
    index = ["--index", str(evil_notes / ".notesqa"), "--embedder", str(tiny_embedder_dir)]
    code, out, err = run(["search", "--batch", str(batch), *index], capsys)
    assert code == 2 and message in err and out == "", err


QUESTIONS = b'{"id": "a", "question": "Ada?"}\n{"id": "b", "question": "Adam?"}\n'


@pytest.mark.parametrize("source", ["-", "a named pipe", "/dev/stdin"])
def test_questions_can_be_piped_in(
    source, evil_notes, tmp_path, capsys, monkeypatch, tiny_embedder_dir
):
    """``--batch -``, ``/dev/stdin`` and a FIFO are read as a stream: one answer line each."""
    import io
    import json
    import threading

    index = ["--index", str(evil_notes / ".notesqa"), "--embedder", str(tiny_embedder_dir)]
    if source == "/dev/stdin":  # the real standard input of a real process
        done = subprocess.run(
            [sys.executable, "-m", "app.cli", "search", "--batch", "/dev/stdin", *index],
            input=QUESTIONS,
            cwd=tmp_path,
            capture_output=True,
            timeout=300,
        )
        code, out, err = done.returncode, done.stdout.decode(), done.stderr.decode()
    elif source == "-":
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(QUESTIONS)))
        code, out, err = run(["search", "--batch", "-", *index], capsys)
    else:
        fifo = tmp_path / "questions.fifo"
        os.mkfifo(fifo)

        def write() -> None:
            with open(fifo, "wb") as pipe:  # blocks until notesqa opens it
                pipe.write(QUESTIONS)

        threading.Thread(target=write, daemon=True).start()
        code, out, err = run(["search", "--batch", str(fifo), *index], capsys)
    assert code == 0, err
    assert [json.loads(line)["id"] for line in out.splitlines()] == ["a", "b"]


def test_a_folder_name_holding_a_colon_is_served_whole(
    tmp_path, capsys, monkeypatch, tiny_embedder_dir, tiny_reader_dir
):
    """``notesqa app A 'B:C'`` serves A and ``B:C`` (a path-separator list split it in two)."""
    import subprocess as sp

    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    seen = []
    monkeypatch.setattr(sp, "call", lambda command, env: seen.append(env) or 0)
    folders = [tmp_path / "notes", tmp_path / "week 1: intro"]
    for folder in folders:
        folder.mkdir()
    code, _, err = run(["app", *map(str, folders)], capsys)
    assert code == 0, err
    monkeypatch.setenv("NOTESQA_NOTES", seen[-1]["NOTESQA_NOTES"])  # as the app gets it
    monkeypatch.setenv("NOTESQA_EMBEDDER", str(tiny_embedder_dir))
    monkeypatch.setenv("NOTESQA_READER", str(tiny_reader_dir))
    at = AppTest.from_file(str(Path(__file__).parents[2] / "app" / "streamlit_app.py"))
    at.run(timeout=180)
    assert not at.exception
    assert at.selectbox(key="folder").options == ["notes", "week 1: intro"]


def test_ask_outside_the_notes_folder_says_how_to_name_the_index(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NOTESQA_INDEX", raising=False)
    code, _, err = run(["ask", "What does Adam keep?"], capsys)
    assert code == 2 and f"no notesqa index at {tmp_path / '.notesqa'}" in err
    assert "--index NOTES_DIR/.notesqa" in err and "NOTESQA_INDEX" in err
    assert err.count("\n") == 1


def test_stats_reads_as_words(evil_notes, capsys):
    code, out, _ = run(["stats", "--files", "--index", str(evil_notes / ".notesqa")], capsys)
    assert code == 0
    assert "(1 passage)" in out and "1 passages" not in out  # singular where it is one
    assert "None" not in out and "recall" not in out  # an exact index has no recall to show
    assert "{" not in out and "'" not in out  # no Python dicts
    assert "chunking: up to" in out


@pytest.mark.skipif(not NOTESQA.exists(), reason="the notesqa console script is not installed")
def test_ask_with_an_own_embedder_and_the_shipped_reader_on_a_fresh_cache(
    evil_notes, tmp_path, tiny_embedder_dir
):
    """The embedder's ONNX export put onnxruntime's own ``models`` package on the import path,
    and the shipped reader was then looked up there ("unexpected error: ImportError")."""
    if not (Path(__file__).parents[2] / "models" / "reader" / "config.json").exists():
        pytest.skip("no shipped reader in this checkout")
    env = {**os.environ, "NOTESQA_CACHE": str(tmp_path / "fresh-cache")}
    env.pop("PYTHONPATH", None)
    index = ["--index", str(evil_notes / ".notesqa"), "--embedder", str(tiny_embedder_dir)]
    done = subprocess.run(
        [str(NOTESQA), "ask", "Where was Ada Smithson born?", *index, "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "answers" in done.stdout
