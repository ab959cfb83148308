"""Loading a notes folder: what is loaded, what is skipped and why."""

from __future__ import annotations

import codecs
import hashlib
import os
from pathlib import Path

import pytest

from rag.documents import decode_bytes, iter_note_files, iter_notes, load_notes


def write(root: Path, rel: str, data: bytes | str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    write(tmp_path, "top.md", "# Top\n\nA note at the top.\n")
    write(tmp_path, "ml/optim/adam.md", "# Adam\n\nTwo moving averages.\n")
    write(tmp_path, "ml/intro.markdown", "Intro to ML.\n")
    write(tmp_path, "bio/cells.txt", "Cells are small.\n")
    write(tmp_path, ".hidden.md", "hidden file\n")
    write(tmp_path, ".git/HEAD.md", "not a note\n")
    write(tmp_path, ".notesqa/manifest.md", "index folder\n")
    write(tmp_path, "ml/.drafts/wip.md", "hidden folder\n")
    return tmp_path


def test_nested_folders_sorted_and_hidden_skipped(notes: Path) -> None:
    docs, report = load_notes(notes)
    paths = [d.path for d in docs]
    assert paths == ["bio/cells.txt", "ml/intro.markdown", "ml/optim/adam.md", "top.md"]
    assert report.loaded == paths
    assert report.skipped == []  # hidden things are ignored, not reported
    assert [p.relative_to(notes).as_posix() for p in iter_note_files(notes)] == paths


def test_document_fields(tmp_path: Path) -> None:
    raw = "# Adam — ünïcode\n\nTwo moving averages.\n".encode()
    path = write(tmp_path, "adam.md", raw)
    (doc,), _ = load_notes(tmp_path)
    assert doc.text == raw.decode()
    assert doc.sha256 == hashlib.sha256(raw).hexdigest()
    assert doc.size == len(raw)
    assert doc.mtime == path.stat().st_mtime


def test_strange_files_are_skipped_with_reasons(tmp_path: Path) -> None:
    write(tmp_path, "good.md", "fine\n")
    write(tmp_path, "img.png", b"\x89PNG\r\n\x1a\n\x00\x00")
    write(tmp_path, "Makefile", "all:\n")
    write(tmp_path, "blob.txt", b"text then \x00\x01\x02 binary")
    write(tmp_path, "empty.md", "")
    write(tmp_path, "blank.md", "  \n\n\t \r\n")
    write(tmp_path, "big.md", "word " * 100)
    docs, report = load_notes(tmp_path, max_file_bytes=200)
    assert [d.path for d in docs] == ["good.md"]
    reasons = dict(report.skipped)
    assert reasons["img.png"] == "unsupported extension .png"
    assert reasons["Makefile"] == "no file extension"
    assert "binary" in reasons["blob.txt"]
    assert reasons["empty.md"] == "empty file"
    assert reasons["blank.md"] == "empty file"
    assert "too large" in reasons["big.md"] and "--max-note-mb" in reasons["big.md"]


def test_cp1252_fallback_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "utf8.md", "café — ok\n")
    write(tmp_path, "win.md", "caf\xe9 \x93quoted\x94 \x80 5\n".encode("latin-1"))
    docs, report = load_notes(tmp_path)
    by_path = {d.path: d for d in docs}
    assert by_path["win.md"].text == "café “quoted” € 5\n"
    assert by_path["utf8.md"].text == "café — ok\n"
    assert report.decoded_with_fallback == ["win.md"]


def test_latin1_last_resort() -> None:
    # 0x81 is undefined in cp1252, so only latin-1 can decode this.
    assert decode_bytes(b"a\x81b") == ("a\x81b", "latin-1")


def test_bom_stripped_and_crlf_normalised(tmp_path: Path) -> None:
    write(tmp_path, "win.md", b"\xef\xbb\xbf# T\r\n\r\nline one\r\nline two\rold mac\r\n")
    (doc,), report = load_notes(tmp_path)
    assert doc.text == "# T\n\nline one\nline two\nold mac\n"
    assert report.decoded_with_fallback == []


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-be"])
def test_notes_with_a_utf16_or_utf32_byte_order_mark_are_read(tmp_path: Path, encoding) -> None:
    note = "# Zellen\r\n\r\nMitochondrien machen ATP — café 日本\r\n"
    bom = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}
    bom["utf-32-be"] = codecs.BOM_UTF32_BE
    write(tmp_path, "cells.md", bom.get(encoding, b"") + note.encode(encoding))
    write(tmp_path, "no-mark.txt", note.encode("utf-16-le"))  # no mark: still binary
    (doc,), report = load_notes(tmp_path)
    assert doc.text == note.replace("\r\n", "\n")
    assert report.skipped == [("no-mark.txt", "binary file (NUL byte in first 8 KB)")]
    assert report.decoded_with_fallback == []  # a byte-order mark is no guess


def test_iter_notes_reads_one_note_at_a_time(notes: Path, monkeypatch) -> None:
    read = []
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda p: read.append(p.name) or real(p))
    docs, report = iter_notes(notes)
    assert read == [] and report.loaded == []  # nothing read before the first note is asked for
    first = next(docs)
    assert first.path == "bio/cells.txt" and read == ["cells.txt"]
    assert [d.path for d in docs] == ["ml/intro.markdown", "ml/optim/adam.md", "top.md"]
    assert report.loaded == ["bio/cells.txt", "ml/intro.markdown", "ml/optim/adam.md", "top.md"]
    with pytest.raises(FileNotFoundError):
        iter_notes(notes / "nope")  # a bad root raises at once


def test_symlink_loop_does_not_hang(tmp_path: Path) -> None:
    write(tmp_path, "a/note.md", "a note\n")
    try:
        os.symlink(tmp_path, tmp_path / "a" / "loop", target_is_directory=True)
        os.symlink(tmp_path / "a" / "note.md", tmp_path / "alias.md")
        os.symlink(tmp_path / "missing.md", tmp_path / "broken.md")
    except (OSError, NotImplementedError):
        pytest.skip("symlinks not supported here")
    docs, report = load_notes(tmp_path)
    assert [d.path for d in docs] == ["a/note.md", "alias.md"]  # file links are read
    reasons = dict(report.skipped)
    assert reasons["a/loop"] == "symlinked folder not followed"
    assert "broken.md" in reasons


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist; pass the path"):
        load_notes(tmp_path / "nope")
    with pytest.raises(FileNotFoundError):
        iter_note_files(tmp_path / "nope")  # raises at once, not on first next()


def test_root_is_a_file(tmp_path: Path) -> None:
    path = write(tmp_path, "note.md", "x\n")
    with pytest.raises(NotADirectoryError, match="not a folder"):
        load_notes(path)


def test_control_characters_mark_binary_looking_text() -> None:
    from rag.documents import control_share

    assert control_share("Größe: 5 µm\tnormal text\n") == 0.0
    assert control_share("日本語のノート") == 0.0
    assert control_share(bytes(range(256)).decode("latin-1")) > 0.2


def test_a_symlink_loop_between_files_is_skipped(tmp_path: Path) -> None:
    write(tmp_path, "a.md", "# A\n\nreal note")
    os.symlink(tmp_path / "y.md", tmp_path / "x.md")
    os.symlink(tmp_path / "x.md", tmp_path / "y.md")
    docs, report = load_notes(tmp_path)
    assert [d.path for d in docs] == ["a.md"]
    assert {p for p, _ in report.skipped} == {"x.md", "y.md"}


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    write(tmp_path, ".notesqaignore", "drafts/\n*.tmp\n\n# keep one draft\n!drafts/keep.md\n")
    write(tmp_path, ".gitignore", "secret.md\nbuild/\n")
    write(tmp_path, "a.md", "# A\n\nkept\n")
    write(tmp_path, "drafts/wip.md", "draft\n")
    write(tmp_path, "drafts/keep.md", "kept draft\n")
    write(tmp_path, "notes.tmp", "scratch\n")
    write(tmp_path, "secret.md", "password\n")
    write(tmp_path, "build/out.md", "generated\n")
    write(tmp_path, "deep/.gitignore", "*.log.md\n")
    write(tmp_path, "deep/sub/run.log.md", "log\n")
    write(tmp_path, "deep/sub/b.md", "kept deep\n")
    write(tmp_path, "run.log.md", "not under deep/, so kept\n")
    write(tmp_path, ".obsidian/workspace.md", "settings\n")
    write(tmp_path, ".trash/old.md", "deleted\n")
    for i in range(5):
        write(tmp_path, f"node_modules/pkg{i}/README.md", "a package\n")
    write(tmp_path, "__pycache__/x.md", "cache\n")
    write(tmp_path, "my-index/manifest.md", "an index put inside the notes\n")
    return tmp_path


def test_ignore_files_and_default_skips_decide_what_is_read(vault: Path) -> None:
    docs, report = load_notes(vault, index_dir=vault / "my-index")
    assert [d.path for d in docs] == [
        "a.md",
        "deep/sub/b.md",
        "drafts/keep.md",
        "run.log.md",
    ]
    assert dict(report.skipped) == {
        "build/": "ignored by .gitignore (line 2: build/)",  # the folder once, not entered
        "deep/sub/run.log.md": "ignored by deep/.gitignore (line 1: *.log.md)",
        "drafts/wip.md": "ignored by .notesqaignore (line 1: drafts/)",
        "node_modules/": "node_modules/ folders are never indexed",  # once, not per file
        "__pycache__/": "__pycache__/ folders are never indexed",
        "notes.tmp": "ignored by .notesqaignore (line 2: *.tmp)",
        "secret.md": "ignored by .gitignore (line 1: secret.md)",
    }
    assert [p.relative_to(vault).as_posix() for p in iter_note_files(vault)][:2] == [
        "a.md",
        "deep/sub/b.md",
    ]


def test_notesqaignore_can_bring_back_what_git_ignores(tmp_path: Path) -> None:
    write(tmp_path, ".gitignore", "*.md\n")
    write(tmp_path, ".notesqaignore", "!wanted.md\n")
    write(tmp_path, "wanted.md", "yes\n")
    write(tmp_path, "other.md", "no\n")
    docs, report = load_notes(tmp_path)
    assert [d.path for d in docs] == ["wanted.md"]
    assert report.skipped == [("other.md", "ignored by .gitignore (line 1: *.md)")]


def test_an_ignored_folder_is_not_entered(tmp_path: Path, monkeypatch) -> None:
    write(tmp_path, ".notesqaignore", "big/\n")
    write(tmp_path, "big/a/b.md", "x\n")
    write(tmp_path, "ok.md", "x\n")
    listed = []
    real_scandir = os.scandir
    monkeypatch.setattr(os, "scandir", lambda p: listed.append(Path(p).name) or real_scandir(p))
    docs, report = load_notes(tmp_path)
    assert [d.path for d in docs] == ["ok.md"] and "big" not in listed
    assert report.skipped == [("big/", "ignored by .notesqaignore (line 1: big/)")]


def test_symlinks_out_of_the_folder_are_not_followed(tmp_path: Path) -> None:
    outside, notes = tmp_path / "outside", tmp_path / "notes"
    write(outside, "private.md", "not a note of this folder\n")
    write(notes, "a.md", "a note\n")
    try:
        os.symlink(outside / "private.md", notes / "link.md")
        os.symlink(outside, notes / "out", target_is_directory=True)
    except (OSError, NotImplementedError):
        pytest.skip("symlinks not supported here")
    docs, report = load_notes(notes)
    assert [d.path for d in docs] == ["a.md"]
    assert dict(report.skipped) == {
        "link.md": "symlink to a file outside the notes folder, not followed",
        "out": "symlinked folder not followed",
    }


def test_markdown_documents_carry_front_matter_and_inline_tags(tmp_path: Path) -> None:
    raw = "---\ntitle: Adam\ntags: [ml]\naliases:\n  - AdamW\n---\n# Adam\n\n#optim and [[SGD]]\n"
    write(tmp_path, "adam.md", raw)
    write(tmp_path, "plain.txt", "#not-a-tag in a text file\n")
    docs, _ = load_notes(tmp_path)
    doc = {d.path: d for d in docs}["adam.md"]
    assert (doc.title, doc.tags, doc.aliases) == ("Adam", ("ml", "optim"), ("AdamW",))
    assert len(doc.text) == len(raw) and "title" not in doc.text and "[[" not in doc.text
    assert {d.path: d for d in docs}["plain.txt"].tags == ()
