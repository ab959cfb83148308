"""Bad input to every command, through the real ``notesqa`` entry point: a clear one-line error
(exit code 2) or the right result, never a traceback, and nothing of the user's lost.

Each case builds what it needs in a fresh folder, runs ``app.cli.main`` and checks the exit code,
a phrase of the message and (where files are at stake) that they are all still there.
"""

from __future__ import annotations

import errno
import gzip
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.cli import main
from tests.reliability.cli_runner import run

NOTES = {
    "people/ada.md": "# Ada\n\nAda Smithson was born in Oslo in 1850. She worked as a chemist.\n",
    "boris.txt": "Boris Kirason collected clocks from every country he visited.\n",
}


def write_notes(root: Path) -> Path:
    for rel, text in NOTES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes (to prove nothing was lost or changed)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def built_index(tmp_path_factory, tiny_embedder_dir) -> Path:
    """A notes folder indexed once per module; tests that damage it work on a copy."""
    from rag.pipeline import NotesQA

    notes = write_notes(tmp_path_factory.mktemp("reliability") / "notes")
    NotesQA.open(notes, embedder=tiny_embedder_dir).index(progress=False)
    return notes


@pytest.fixture
def notes(tmp_path, built_index) -> Path:
    """A fresh copy of the indexed notes folder (index at ``notes/.notesqa``)."""
    return Path(shutil.copytree(built_index, tmp_path / "notes"))


@pytest.fixture(scope="module")
def models(tiny_embedder_dir) -> list[str]:
    return ["--embedder", str(tiny_embedder_dir)]


@pytest.fixture(scope="module")
def reader(tiny_reader_dir) -> list[str]:
    return ["--reader", str(tiny_reader_dir)]


# ---------------------------------------------------------------- data loss (regressions)


def test_index_into_the_notes_folder_is_refused_and_nothing_is_lost(tmp_path, capsys, models):
    notes = write_notes(tmp_path / "p")
    (notes / "manifest.json").write_text('{"name": "x"}')  # e.g. a web extension's manifest
    before = snapshot(notes)
    code, _, err = run(["index", str(notes), "--index", str(notes), *models], capsys)
    assert code == 2 and "is the notes folder itself" in err
    assert snapshot(notes) == before


def test_index_into_a_folder_that_is_not_an_index_is_refused(tmp_path, capsys, models):
    notes = write_notes(tmp_path / "notes")
    project = tmp_path / "project"
    project.mkdir()
    (project / "manifest.json").write_text('{"name": "my extension"}')
    (project / "main.js").write_text("console.log('hi')")
    before = snapshot(project)
    code, _, err = run(["index", str(notes), "--index", str(project), *models], capsys)
    assert code == 2 and "is not a notesqa index" in err and "nothing was changed" in err
    assert snapshot(project) == before


def test_index_in_a_folder_above_the_notes_is_refused(tmp_path, capsys, models):
    notes = write_notes(tmp_path / "notes")
    before = snapshot(tmp_path)
    code, _, err = run(["index", str(notes), "--index", str(tmp_path), *models], capsys)
    assert code == 2 and "contains the notes folder" in err
    assert snapshot(tmp_path) == before


def test_an_index_holding_a_user_file_is_not_replaced(notes, capsys, models):
    (notes / ".notesqa" / "todo.md").write_text("my own file, put here by hand")
    code, _, err = run(["index", str(notes), *models], capsys)
    assert code == 2 and "files notesqa did not write" in err and "todo.md" in err
    assert (notes / ".notesqa" / "todo.md").read_text() == "my own file, put here by hand"


def test_a_user_folder_in_the_place_of_the_backup_is_never_deleted(notes, capsys, models):
    backup = notes / "..notesqa.old"
    backup.mkdir()
    (backup / "thesis.md").write_text("years of work")
    code, _, err = run(["index", str(notes), *models], capsys)
    assert code == 2 and "in the way" in err
    assert (backup / "thesis.md").read_text() == "years of work"
    assert (notes / ".notesqa" / "manifest.json").is_file()  # the old index is still in place


def test_a_user_folder_named_like_a_stale_build_is_kept(notes, capsys, models):
    # only a folder carrying notesqa's marker is ever deleted, never one judged by its names
    # (a killed build's marked folder is removed: tests/reliability/test_owned_state.py)
    stale = notes / "..notesqa.tmp-abc123"
    stale.mkdir()
    (stale / "mine.txt").write_text("keep me")
    unmarked = notes / "..notesqa.tmp-killed"
    unmarked.mkdir()
    (unmarked / "vectors.faiss").write_bytes(b"half written")
    code, _, _ = run(["index", str(notes), *models], capsys)
    assert code == 0
    assert (stale / "mine.txt").read_text() == "keep me"
    assert (unmarked / "vectors.faiss").read_bytes() == b"half written"


# ---------------------------------------------------------------- what gets read


def test_symlinked_files_outside_the_notes_are_not_indexed(tmp_path, capsys, models):
    notes = write_notes(tmp_path / "notes")
    secret = tmp_path / "secret.txt"
    secret.write_text("the password is hunter2")
    (notes / "link.txt").symlink_to(secret)
    (notes / "inside.txt").symlink_to(notes / "boris.txt")  # inside: fine to read
    code, out, _ = run(["index", str(notes), *models], capsys)
    assert code == 0 and "link.txt: symlink to a file outside the notes folder" in out
    code, out, _ = run(["search", "password hunter2", "--index", str(notes / ".notesqa"),
                        "--mode", "bm25", "--json", *models], capsys)  # fmt: skip
    assert code == 0 and not any("hunter2" in h["text"] for h in json.loads(out)["hits"])
    code, out, _ = run(["stats", "--files", "--json", "--index", str(notes / ".notesqa")], capsys)
    stats = json.loads(out)
    assert {
        "path": "link.txt",
        "reason": "symlink to a file outside the notes folder, not followed",
    } in stats["skipped_files"]
    assert "inside.txt" in {f["path"] for f in stats["indexed_files"]}


def test_deeply_nested_folders_are_indexed(tmp_path, capsys, models):
    notes = write_notes(tmp_path / "notes")
    deep = notes
    for _ in range(1100):  # one at a time: mkdir(parents=True) recurses once per level
        deep = deep / "d"
        deep.mkdir()
    (deep / "bottom.md").write_text("The bottom note mentions a lighthouse.")
    try:
        code, out, err = run(["index", str(notes), "--json", *models], capsys)
        assert code == 0, err
        assert json.loads(out)["files"] == 3
    finally:  # bottom up: pytest's own (recursive) cleanup of old temp folders cannot
        (deep / "bottom.md").unlink()
        while deep != notes:
            deep.rmdir()
            deep = deep.parent


def test_a_file_name_that_is_not_utf8_is_skipped_by_name(tmp_path, capsys, models):
    notes = write_notes(tmp_path / "notes")
    with open(os.path.join(os.fsencode(notes), b"caf\xe9.md"), "wb") as handle:
        handle.write(b"# Cafe\n\nCoffee notes.")
    code, out, _ = run(["index", str(notes), *models], capsys)
    assert code == 0
    assert "caf\\xe9.md: file name is not valid UTF-8" in out


def test_binary_looking_text_is_skipped(tmp_path, capsys, models):
    notes = write_notes(tmp_path / "notes")
    noise = bytes((i * 37 + 11) % 256 for i in range(4000)).replace(b"\x00", b"\x01")
    (notes / "blob.txt").write_bytes(noise)
    code, out, _ = run(["index", str(notes), "--json", *models], capsys)
    assert code == 0
    summary = json.loads(out)
    assert summary["files"] == 2
    assert any(p == "blob.txt" and "binary-looking" in r for p, r in summary["skipped"])


# ---------------------------------------------------------------- damaged indexes


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: max(1, path.stat().st_size // 3)])


def _edit_manifest(key: str, value):
    def tamper(index: Path) -> None:
        manifest = json.loads((index / "manifest.json").read_text())
        manifest[key] = value
        (index / "manifest.json").write_text(json.dumps(manifest))

    return tamper


SEGMENT = "segments/s000001"  # the first segment of an index (rag.store_writer)


def _sql(index, statement: str) -> None:
    conn = sqlite3.connect(index / "notes.sqlite")
    conn.execute(statement)
    conn.commit()
    conn.close()


DAMAGE = {
    "garbage sqlite": lambda i: (i / "notes.sqlite").write_bytes(b"not a database " * 50),
    "truncated sqlite": lambda i: _truncate(i / "notes.sqlite"),
    "garbage faiss": lambda i: (i / SEGMENT / "vectors.faiss").write_bytes(b"\x00garbage" * 10),
    "truncated faiss": lambda i: _truncate(i / SEGMENT / "vectors.faiss"),
    "segment count edited": lambda i: _sql(i, "UPDATE segments SET passages = passages + 1"),
    "segment unlisted": lambda i: _sql(i, "DELETE FROM segments"),
    "dim edited": _edit_manifest("dim", 100),
    "manifest garbage": lambda i: (i / "manifest.json").write_text("{not json"),
    "postings edited": lambda i: (i / SEGMENT / "keywords" / "lengths.npy").write_bytes(b"7"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_index_is_reported_and_a_plain_index_repairs_it(notes, capsys, models, damage):
    index = notes / ".notesqa"
    DAMAGE[damage](index)
    for argv in (
        ["search", "Where was Ada born?", "--index", str(index), *models],
        ["stats", "--index", str(index)],
    ):
        code, _, err = run(argv, capsys)
        assert code == 2 and "damaged" in err and "--rebuild" in err, err
    code, out, err = run(["index", str(notes), "--json", *models], capsys)
    assert code == 0, err  # a garbage manifest too: the folder holds only notesqa's files
    summary = json.loads(out)
    assert summary["repaired"] and summary["files"] == 2
    code, out, _ = run(["search", "Ada", "--index", str(index), "--json", *models], capsys)
    assert code == 0 and json.loads(out)["hits"]


def test_a_damaged_keyword_index_names_its_folder(notes, capsys, models):
    (notes / ".notesqa" / SEGMENT / "keywords" / "words.json").write_text("{broken")
    code, _, err = run(["search", "clocks", "--mode", "bm25", "--index",
                        str(notes / ".notesqa"), *models], capsys)  # fmt: skip
    assert code == 2 and SEGMENT in err and "damaged" in err


def test_a_dim_mismatch_is_not_called_an_embedder_mismatch(notes, capsys, models):
    code, _, err = run(["index", str(notes), "--dim", "8", *models], capsys)
    assert code == 2 and "dimension" in err and "embedder" not in err.split(";")[0]


# ---------------------------------------------------------------- the disk


def test_a_full_disk_is_one_clear_line_and_the_old_index_stays(notes, capsys, models, monkeypatch):
    import rag.vector_segments

    def full(*_):
        raise RuntimeError("Error in ... fwrite: No space left on device")  # FAISS's own words

    before = snapshot(notes / ".notesqa")
    (notes / "new.md").write_text("A new note about volcanoes.")
    monkeypatch.setattr(rag.vector_segments.faiss, "write_index", full)
    code, _, err = run(["index", str(notes), *models], capsys)
    assert code == 2 and "no space left on the device" in err
    assert snapshot(notes / ".notesqa") == before
    assert not list(notes.glob("..notesqa.tmp-*"))


def test_an_unwritable_index_folder_is_one_clear_line(notes, capsys, models, monkeypatch):
    import tempfile

    def denied(*_, **__):
        raise PermissionError(errno.EACCES, "Permission denied", str(notes))

    monkeypatch.setattr(tempfile, "mkdtemp", denied)
    (notes / "new.md").write_text("A new note.")
    code, _, err = run(["index", str(notes), *models], capsys)
    assert code == 2 and "permission denied" in err


# ---------------------------------------------------------------- ask / search input


@dataclass
class BatchCase:
    content: bytes | None  # None: the path is a folder
    message: str


BATCHES = {
    "number": BatchCase(b'{"id": 1, "question": 42}\n', "questions.jsonl:1: 'question' must be a string"),
    "null": BatchCase(b'{"id": 1, "question": "ok?"}\n{"id": 2, "question": null}\n', "questions.jsonl:2: 'question' must be a string"),
    "list": BatchCase(b'{"id": 1, "question": ["a"]}\n', "questions.jsonl:1: 'question' must be a string"),
    "empty": BatchCase(b'{"id": 1, "question": "  "}\n', "questions.jsonl:1: 'question' is empty"),
    "latin-1": BatchCase('{"id": 1, "question": "café?"}\n'.encode("latin-1"), "questions.jsonl:1: not UTF-8"),
    "not json": BatchCase(b"what is adam?\n", "questions.jsonl:1: not valid JSON"),
    "no id": BatchCase(b'{"question": "a?"}\n', "questions.jsonl:1: expected a JSON object"),
    "folder": BatchCase(None, "is a folder"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BATCHES))
@pytest.mark.parametrize("command", ["ask", "search"])
def test_bad_batch_files_name_the_line(notes, tmp_path, capsys, models, case, command):
    batch = tmp_path / "questions.jsonl"
    if BATCHES[case].content is None:
        batch.mkdir()
    else:
        batch.write_bytes(BATCHES[case].content)
    code, out, err = run([command, "--batch", str(batch), "--index", str(notes / ".notesqa"),
                          *models], capsys)  # fmt: skip
    assert code == 2 and BATCHES[case].message in err, err
    assert out == ""  # every line is checked before the first answer


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["-k", "-3"], "must be at least 1"),
        (["-k", "0"], "must be at least 1"),
        (["-k", "two"], "not a whole number"),
        (["--answers", "-1"], "must be at least 1"),
        (["--null-threshold", "nan"], "finite"),
        (["--null-threshold", "inf"], "finite"),
        (["--mode", "fuzzy"], "invalid choice"),
    ],
)
def test_bad_option_values_are_refused(notes, capsys, models, options, message):
    code, _, err = run(["ask", "Where was Ada born?", "--index", str(notes / ".notesqa"),
                        *options, *models], capsys)  # fmt: skip
    assert code == 2 and message in err


def test_a_missing_index_and_a_file_for_a_folder(tmp_path, capsys, models):
    note = write_notes(tmp_path / "notes") / "boris.txt"
    code, _, err = run(["index", str(note), *models], capsys)
    assert code == 2 and "is a file; pass the folder that holds your notes" in err
    code, _, err = run(["index", str(tmp_path / "nope"), *models], capsys)
    assert code == 2 and "does not exist" in err
    code, _, err = run(["search", "x", "--index", str(tmp_path / "nope"), *models], capsys)
    assert code == 2 and "run `notesqa index NOTES_DIR` first" in err


def test_a_model_path_that_does_not_exist_is_not_taken_for_a_hub_name(tmp_path, capsys):
    code, _, err = run(["train", "reader", "--init", str(tmp_path / "typo"), "--out",
                        str(tmp_path / "out")], capsys)  # fmt: skip
    assert code == 2 and "no model folder at" in err and "hf:ORG/NAME" in err
    code, _, err = run(["search", "x", "--embedder", "runs/nope"], capsys)
    assert code == 2 and "no model folder at runs/nope" in err


# ---------------------------------------------------------------- training input


def test_a_broken_gzip_corpus_is_named(tmp_path, capsys):
    corpus = tmp_path / "wiki.jsonl.gz"
    corpus.write_bytes(gzip.compress(b'{"text": "hello world"}\n' * 500)[:60])
    code, _, err = run(["train", "tokenizer", "--corpus", str(corpus), "--out",
                        str(tmp_path / "tok")], capsys)  # fmt: skip
    assert code == 2 and "wiki.jsonl.gz cannot be decompressed" in err


def test_a_tokenizer_from_too_little_text_is_refused(tmp_path, capsys):
    csv = tmp_path / "scores.csv"
    csv.write_text("".join(f"{i},{i * 3},{i % 7}\n" for i in range(200)))
    code, _, err = run(["train", "tokenizer", "--corpus", str(csv), "--out",
                        str(tmp_path / "tok")], capsys)  # fmt: skip
    assert code == 2 and "too little text" in err
    assert not (tmp_path / "tok").exists()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"data": [{"title": "t"}]}, "data[0] has no 'paragraphs' list"),
        ({"data": [{"paragraphs": [{"qas": []}]}]}, "data[0].paragraphs[0] has no string 'context'"),
        ({"data": [{"paragraphs": [{"context": "c", "qas": [{"id": 1}]}]}]}, "has no string 'question'"),
        ({"version": "1.1"}, "no top-level 'data' list"),
    ],
)  # fmt: skip
def test_reader_training_data_of_the_wrong_shape_is_named(
    tmp_path, capsys, tiny_bert_dir, payload, message
):
    data = tmp_path / "train.json"
    data.write_text(json.dumps(payload))
    code, _, err = run(["train", "reader", "--init", str(tiny_bert_dir), "--data", str(data),
                        "--out", str(tmp_path / "out")], capsys)  # fmt: skip
    assert code == 2 and message in err, err


# ---------------------------------------------------------------- the app command


def test_the_app_listens_on_localhost_unless_told(tmp_path, capsys, monkeypatch):
    import subprocess as sp

    seen = []
    monkeypatch.setattr(sp, "call", lambda command, env: seen.append((command, env)) or 0)
    notes = write_notes(tmp_path / "notes")
    code, _, err = run(["app", str(notes)], capsys)
    command, env = seen[-1]
    assert code == 0 and command[command.index("--server.address") + 1] == "127.0.0.1"
    assert env["NOTESQA_NOTES"] == str(notes.resolve()) and "warning" not in err
    code, _, err = run(["app", str(notes), "--host", "0.0.0.0"], capsys)
    assert code == 0 and "warning: serving on 0.0.0.0" in err


# ---------------------------------------------------------------- the shell


def test_a_closed_pipe_ends_quietly(notes, tmp_path, tiny_embedder_dir):
    batch = tmp_path / "many.jsonl"
    batch.write_text("".join(json.dumps({"id": i, "question": "Ada?"}) + "\n" for i in range(60)))
    command = (
        f"{sys.executable} -m app.cli search --batch {batch} --index {notes / '.notesqa'} "
        f"--embedder {tiny_embedder_dir} | head -1; echo exit=${{PIPESTATUS[0]}}"
    )
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120)
    first, status = done.stdout.splitlines()
    assert json.loads(first)["id"] == 0 and status == "exit=0"
    assert "Traceback" not in done.stderr and "Broken" not in done.stderr, done.stderr


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(
    notes, capsys, models, monkeypatch
):
    import rag.pipeline

    def boom(*_, **__):
        raise RuntimeError("a bug")

    monkeypatch.setattr(rag.pipeline.NotesQA, "search", boom)
    argv = ["search", "Ada", "--index", str(notes / ".notesqa"), *models]
    code, _, err = run(argv, capsys)
    assert code == 1 and "unexpected error: RuntimeError: a bug" in err and "--debug" in err
    with pytest.raises(RuntimeError, match="a bug"):
        main(["--debug", *argv])


# ---------------------------------------------------------------- random option values


option_text = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["", " ", "nan", "-inf", "1e309", "0x10", "3.5", "--", "-k", "☃", "\x00"]),
    st.text(max_size=8),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    command=st.sampled_from(["ask", "search"]),
    option=st.sampled_from(
        ["-k", "--answers", "--null-threshold", "--mode", "--filter", "--heading"]
    ),
    value=option_text,
)
def test_random_option_values_never_give_a_traceback(
    built_index, models, reader, capsys, command, option, value
):
    if command == "search" and option in ("--answers", "--null-threshold"):
        option = "-k"
    argv = [
        command,
        "Where was Ada born?",
        "--index",
        str(built_index / ".notesqa"),
        f"{option}={value}",
        *models,
    ]
    if command == "ask":
        argv += reader
    code, _, err = run(argv, capsys)
    assert code in (0, 2), err
    if code == 2:  # argparse's usage lines, if any, then one line naming the problem
        assert err.strip().splitlines()[-1].startswith(f"notesqa {command}: error:") or (
            err.startswith("notesqa: error:") and err.count("\n") == 1
        ), err
