"""Whose folder is it: recognising an index, refusing to replace anything else, the swap."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from embedder.owned_folder import MARKER, STALE_SECONDS, owner_kind, write_marker
from rag import index_folder
from rag.chunking import Chunk
from rag.documents import Document
from rag.store import NotesStore


@pytest.fixture
def index(tmp_path: Path) -> Path:
    """A real (one-passage) index folder at ``tmp_path/notes/.notesqa``."""
    doc = Document("a.md", "Adam keeps two moving averages.", "sha", 1.0, 31)
    vector = np.zeros((1, 4), dtype=np.float32)
    vector[0, 0] = 1.0
    folder = tmp_path / "notes" / ".notesqa"
    chunk = Chunk(source="a.md", start=0, end=31, text=doc.text, heading="")
    NotesStore.build(folder, [doc], [chunk], vector, {"embedder": "e", "dim": 4}).close()
    return folder


def test_an_index_is_recognised_by_its_manifest_not_by_a_file_name(index, tmp_path) -> None:
    assert index_folder.is_notesqa_index(index)
    assert json.loads((index / "manifest.json").read_text())["notesqa"] == "index"
    lookalike = tmp_path / "extension"
    lookalike.mkdir()
    (lookalike / "manifest.json").write_text('{"name": "x", "version": 3}')
    assert not index_folder.is_notesqa_index(lookalike)
    with pytest.raises(ValueError, match="not a notesqa index"):
        index_folder.check_replaceable(lookalike)
    (index / "mine.txt").write_text("a user's file")  # ours no more: never replaced
    assert index_folder.foreign_entries(index) == ["mine.txt"]
    assert not index_folder.is_notesqa_index(index)
    with pytest.raises(ValueError, match="files notesqa did not write"):
        index_folder.check_replaceable(index)


def test_an_index_holding_an_earlier_versions_adapted_folder_is_ours_and_a_rebuild_drops_it(
    index,
) -> None:
    adapted = index / "adapted"  # what `notesqa adapt` of earlier versions wrote
    (adapted / "reader").mkdir(parents=True)
    write_marker(adapted, "adapted")
    (adapted / "reader" / "model.safetensors").write_bytes(b"weights")
    killed = index / ".adapted.tmp-abc"  # an interrupted adapt's staging folder
    killed.mkdir()
    write_marker(killed, "adapted")
    assert index_folder.foreign_entries(index) == [] and index_folder.is_notesqa_index(index)
    (index / ".adapted.tmp-user").mkdir()  # the same name, but not notesqa's
    assert index_folder.foreign_entries(index) == [".adapted.tmp-user"]
    (index / ".adapted.tmp-user").rmdir()
    doc = Document("a.md", "Adam keeps two moving averages.", "sha", 1.0, 31)
    chunk = Chunk(source="a.md", start=0, end=31, text=doc.text, heading="")
    vector = np.eye(1, 4, dtype=np.float32)
    NotesStore.build(index, [doc], [chunk], vector, {"embedder": "e", "dim": 4}).close()
    assert not adapted.exists() and not killed.exists()
    assert index_folder.is_notesqa_index(index)


def test_an_index_written_before_the_marker_is_still_recognised(index) -> None:
    manifest = json.loads((index / "manifest.json").read_text())
    del manifest["notesqa"]
    manifest["format_version"] = 3  # the marker came with format 3, and vectors.faiss with it
    (index / "manifest.json").write_text(json.dumps(manifest))
    shutil.rmtree(index / "segments")
    (index / "vectors.faiss").write_bytes(b"")
    assert index_folder.is_notesqa_index(index)  # ours to replace: the next index rebuilds it
    with pytest.raises(ValueError, match="format_version=3"):
        NotesStore.open(index)


def test_a_new_or_empty_folder_is_replaceable_a_file_or_a_link_is_not(tmp_path) -> None:
    index_folder.check_replaceable(tmp_path / "new")
    (tmp_path / "empty").mkdir()
    index_folder.check_replaceable(tmp_path / "empty")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        index_folder.check_replaceable(tmp_path / "file")
    (tmp_path / "link").symlink_to(tmp_path / "empty")
    with pytest.raises(ValueError, match="symbolic link"):
        index_folder.check_replaceable(tmp_path / "link")


def test_swap_in_replaces_the_index_and_leaves_no_backup(index) -> None:
    new = index.with_name(".new")
    new.mkdir()
    (new / "manifest.json").write_text('{"notesqa": "index"}')
    index_folder.swap_in(new, index)
    assert json.loads((index / "manifest.json").read_text()) == {"notesqa": "index"}
    assert sorted(p.name for p in index.parent.iterdir()) == [".notesqa"]


def test_swap_in_stops_at_a_backup_that_is_not_an_index(index) -> None:
    backup = index.with_name(f".{index.name}.old")
    backup.mkdir()
    (backup / "keep.txt").write_text("someone's")
    new = index.with_name(".new")
    new.mkdir()
    with pytest.raises(ValueError, match="in the way"):
        index_folder.swap_in(new, index)
    assert (backup / "keep.txt").read_text() == "someone's"
    assert index_folder.is_notesqa_index(index) and new.is_dir()


def test_remove_stale_builds_deletes_only_what_notesqa_wrote(index) -> None:
    ours = index_folder.new_build_folder(index)  # a build killed mid-write, journal and all
    (ours / "notes.sqlite").write_bytes(b"SQLite format 3\0half")
    (ours / "notes.sqlite-journal").write_bytes(b"journal")
    _old(ours / MARKER)  # (its writer is gone: here, too old to be at work)
    foreign = index.with_name(f".{index.name}.tmp-other")
    foreign.mkdir()
    (foreign / "vectors.faiss").write_text("a user's folder with one of our names, no marker")
    _old(foreign)
    index_folder.remove_stale_builds(index)
    assert not ours.exists()
    assert foreign.is_dir() and len(list(foreign.iterdir())) == 1
    assert index_folder.is_notesqa_index(index)


def _old(path: Path) -> None:
    when = time.time() - STALE_SECONDS - 60
    os.utime(path, (when, when))


def test_a_built_index_keeps_its_marker_as_one_of_its_own_files(index) -> None:
    assert owner_kind(index) == "index" and index_folder.foreign_entries(index) == []
    assert sorted(p.name for p in index.parent.iterdir()) == [".notesqa"]  # no temp left


@pytest.mark.parametrize("manifest", ["", '{"notesqa": "ind', "[1, 2]", '"index"'])
@pytest.mark.parametrize("marked", [True, False])
def test_a_damaged_manifest_in_a_folder_of_our_files_is_ours_to_replace(
    index, manifest, marked
) -> None:
    (index / "manifest.json").write_text(manifest)
    if not marked:  # an index written before the marker: recognised by its three files
        (index / MARKER).unlink()
        shutil.rmtree(index / "segments")
        (index / "vectors.faiss").write_bytes(b"")
    assert index_folder.is_damaged_index(index) and not index_folder.is_notesqa_index(index)
    index_folder.check_replaceable(index)
    (index / "notes.md").write_text("a user's file")  # not ours any more: never replaced
    assert not index_folder.is_damaged_index(index)
    with pytest.raises(ValueError, match="not a notesqa index"):
        index_folder.check_replaceable(index)


def test_a_folder_with_only_a_bad_manifest_is_not_a_damaged_index(tmp_path) -> None:
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "manifest.json").write_text("[]")  # a web app's, say: not ours
    assert not index_folder.is_damaged_index(folder)
    with pytest.raises(ValueError, match="not a notesqa index"):
        index_folder.check_replaceable(folder)


def test_the_index_may_not_be_the_notes_folder_or_above_it(tmp_path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    index_folder.check_index_location(notes, notes / ".notesqa")
    index_folder.check_index_location(notes, tmp_path / "elsewhere")
    with pytest.raises(ValueError, match="is the notes folder itself"):
        index_folder.check_index_location(notes, notes)
    with pytest.raises(ValueError, match="contains the notes folder"):
        index_folder.check_index_location(notes, tmp_path)


def test_the_index_folder_is_the_option_then_the_environment_then_the_cwd(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NOTESQA_INDEX", raising=False)
    assert index_folder.resolve_index_dir(None) == tmp_path / ".notesqa"
    monkeypatch.setenv("NOTESQA_INDEX", str(tmp_path / "env"))
    assert index_folder.resolve_index_dir(None) == tmp_path / "env"
    assert index_folder.resolve_index_dir("given") == Path("given")
