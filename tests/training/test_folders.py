"""Training's folders go through embedder.owned_folder: staged, marked, swapped in whole."""

import os
import time

import pytest

from embedder.owned_folder import MARKER, STALE_SECONDS, owner_kind, write_marker
from training.folders import (
    previous_copy,
    replace_folder,
    staging_folder,
    written_by_training,
)


def staged_folder(path, text):
    path.mkdir()
    (path / "config.json").write_text(text)
    return path


def test_a_staged_folder_replaces_the_target_whole(tmp_path):
    target = tmp_path / "model"
    assert replace_folder(staged_folder(tmp_path / ".model.tmp", "first"), target) == target
    (target / "stale.bin").write_text("from the first model")
    replace_folder(staged_folder(tmp_path / ".model.tmp", "second"), target)
    # nothing of the old kept; the marker says notesqa wrote it
    assert sorted(p.name for p in target.iterdir()) == [MARKER, "config.json"]
    assert (target / "config.json").read_text() == "second" and owner_kind(target) == "training"
    assert not (tmp_path / ".model.tmp").exists() and not previous_copy(target).exists()


def test_a_model_folder_written_before_markers_is_replaced_as_asked(tmp_path):
    target = staged_folder(tmp_path / "reader", "from git, before markers")  # e.g. models/reader
    (target / "model.safetensors").write_bytes(b"weights")
    (target / "1_Pooling").mkdir()
    (target / "1_Pooling" / "config.json").write_text("{}")
    replace_folder(staged_folder(tmp_path / ".reader.tmp", "retrained"), target)
    assert (target / "config.json").read_text() == "retrained"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reader"]


def test_a_leftover_previous_copy_is_removed_if_notesqa_wrote_it(tmp_path):
    target = staged_folder(tmp_path / "model", "current")
    write_marker(target, "training")
    leftover = staged_folder(previous_copy(target), "from an interrupted swap")
    write_marker(leftover, "training")  # every copy a swap moves aside carries the marker
    replace_folder(staged_folder(tmp_path / ".model.tmp", "new"), target)
    assert (target / "config.json").read_text() == "new"
    assert previous_copy(target) == tmp_path / ".model.old" and not previous_copy(target).exists()


def test_a_previous_copy_without_the_marker_stops_the_swap(tmp_path):
    target = staged_folder(tmp_path / "model", "current")
    write_marker(target, "training")
    someone = staged_folder(previous_copy(target), "not notesqa's")
    (someone / "notes.md").write_text("a user's file")
    with pytest.raises(ValueError, match="model.old is in the way"):
        replace_folder(staged_folder(tmp_path / ".model.tmp", "new"), target)
    assert (someone / "config.json").read_text() == "not notesqa's"
    assert (target / "config.json").read_text() == "current"


def test_a_killed_runs_staging_folder_is_removed_by_the_next_one(tmp_path):
    target = tmp_path / "data"
    killed = staging_folder(target)
    (killed / "tokens.npy").write_bytes(b"half")
    old = time.time() - STALE_SECONDS - 60  # (gone: here, past the age bound)
    os.utime(killed / MARKER, (old, old))
    user = staged_folder(tmp_path / ".data.tmp-mine", "a user's folder, no marker")
    os.utime(user, (old, old))
    fresh = staging_folder(target)
    assert not killed.exists() and user.is_dir() and fresh.is_dir()


@pytest.mark.parametrize(
    "files",
    [
        {"ch1.md": "my thesis"},  # a folder of notes
        {"config.json": "{}"},  # no weights: not a model folder
        {"config.json": "{}", "model.safetensors": "w", "ch1.md": "my thesis"},  # plus a note
        {"config.json": "{}", "model.safetensors": "w", "1_Pooling/notes.md": "mine"},
        {"meta.json": "{}", "tokens.npy": "t", "plan.txt": "mine"},
    ],
)
def test_a_folder_holding_files_a_model_folder_does_not_is_never_replaced(tmp_path, files):
    target = tmp_path / "out"
    for rel, text in files.items():
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        (target / rel).write_text(text)
    before = {p.relative_to(target): p.read_text() for p in target.rglob("*") if p.is_file()}
    assert not written_by_training(target)
    staged = staging_folder(target)
    with pytest.raises(ValueError, match="out holds files notesqa did not write.*new folder"):
        replace_folder(staged, target)
    after = {p.relative_to(target): p.read_text() for p in target.rglob("*") if p.is_file()}
    assert after == before and not previous_copy(target).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # the staged copy is dropped


@pytest.mark.parametrize(
    "files",
    [
        {},  # an empty folder
        {"config.json": "{}", "model.safetensors": "w", "tokenizer.json": "{}", "README.md": "#"},
        {"meta.json": "{}", "tokens.npy": "t", "sentences.npy": "s", "documents.npy": "d"},
    ],
)
def test_an_empty_or_older_notesqa_folder_is_replaced(tmp_path, files):
    target = tmp_path / "out"
    target.mkdir()
    for name, text in files.items():
        (target / name).write_text(text)
    replace_folder(staged_folder(tmp_path / ".out.tmp", "new"), target)
    assert sorted(p.name for p in target.iterdir()) == [MARKER, "config.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_older_model_folder_left_at_the_previous_copy_is_removed(tmp_path):
    target = tmp_path / "model"
    leftover = staged_folder(previous_copy(target), "killed between the renames, before markers")
    (leftover / "model.safetensors").write_text("w")
    replace_folder(staged_folder(tmp_path / ".model.tmp", "new"), target)
    assert not leftover.exists() and (target / "config.json").read_text() == "new"
