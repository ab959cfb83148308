"""Folders notesqa writes: staged and marked, swapped in whole, and cleaned by one rule (what
carries the marker and whose writer is gone), never by a name alone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from embedder import owned_folder
from embedder.owned_folder import (
    MARKER,
    STALE_SECONDS,
    backup_of,
    is_owned,
    new_temp,
    owner_kind,
    remove_owned,
    remove_stale_temps,
    swap_in,
    writer_alive,
)

# A writer in another process: it stages a temp folder of TARGET, writes what a killed index
# build leaves (a SQLite journal beside a half database, a half keyword index), says where,
# and waits to be killed. The module is loaded from its file: nothing else is imported.
WRITER = """
import importlib.util, sys, time
from pathlib import Path
spec = importlib.util.spec_from_file_location("owned_folder", sys.argv[1])
owned = importlib.util.module_from_spec(spec); spec.loader.exec_module(owned)
tmp = owned.new_temp(Path(sys.argv[2]), "index")
(tmp / "notes.sqlite").write_bytes(b"SQLite format 3\\0half")
(tmp / "notes.sqlite-journal").write_bytes(b"journal")
(tmp / "bm25").mkdir(); (tmp / "bm25" / "params.index.json").write_text("{")
print(tmp, flush=True)
time.sleep(120)
"""


def _old(path: Path, seconds: float = STALE_SECONDS + 60) -> None:
    when = time.time() - seconds
    os.utime(path, (when, when))


def _folder(path: Path, files: dict[str, str]) -> Path:
    path.mkdir(parents=True)
    for name, text in files.items():
        (path / name).write_text(text)
    return path


def test_a_staged_folder_is_swapped_in_whole_and_keeps_the_marker(tmp_path) -> None:
    target = _folder(tmp_path / "model", {"config.json": "old", "stale.bin": "old weights"})
    owned_folder.write_marker(target, "training")  # an earlier write of notesqa's
    tmp = new_temp(target, "training")
    assert tmp.parent == tmp_path and tmp.name.startswith(".model.tmp-")
    assert [p.name for p in tmp.iterdir()] == [MARKER]  # the marker is the first file
    (tmp / "config.json").write_text("new")
    swap_in(tmp, target)
    assert sorted(p.name for p in target.iterdir()) == [MARKER, "config.json"]
    assert (target / "config.json").read_text() == "new" and owner_kind(target) == "training"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temp, no backup
    record = json.loads((target / MARKER).read_text())
    assert record["pid"] == os.getpid() and record["host"]


def test_a_killed_writers_temp_folder_is_removed_by_the_next_write(tmp_path) -> None:
    target = tmp_path / ".notesqa"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, owned_folder.__file__, str(target)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        theirs = Path(writer.stdout.readline().strip())
        assert (theirs / "notes.sqlite-journal").is_file()
        assert writer_alive(theirs)
        mine = new_temp(target, "index")  # a writer at work: its folder is kept
        assert theirs.is_dir()
        remove_owned(mine)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdout.close()
        assert not writer_alive(theirs)
        mine = new_temp(target, "index")  # killed: removed, journal and all
        assert not theirs.exists() and [p.name for p in tmp_path.iterdir()] == [mine.name]
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()


def test_a_temp_folder_past_the_age_bound_is_removed_even_if_its_pid_runs(tmp_path) -> None:
    target = tmp_path / "emb"
    stale = new_temp(target, "training")  # this process: alive
    (stale / "model.safetensors").write_bytes(b"half")
    assert remove_stale_temps(target) == [] and stale.exists()
    _old(stale / MARKER)
    assert remove_stale_temps(target) == [stale] and not stale.exists()


def test_a_reused_pid_is_not_the_writer(tmp_path) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = new_temp(tmp_path / "emb", "training")
        record = json.loads((stale / MARKER).read_text())
        record["pid"] = sleeper.pid  # a live process, started at another time than the writer
        (stale / MARKER).write_text(json.dumps(record))
        if owned_folder._process_start(sleeper.pid) is None:
            pytest.skip("no /proc: a reused pid cannot be told apart here")
        assert not writer_alive(stale)
        assert remove_stale_temps(tmp_path / "emb") == [stale]
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_marker_cut_short_still_marks_the_folder_ours(tmp_path) -> None:
    stale = _folder(tmp_path / ".emb.tmp-cut", {"model.safetensors": "half"})
    (stale / MARKER).write_text("")  # the writer was killed while it wrote its marker
    assert is_owned(stale) and owner_kind(stale) == ""
    assert remove_stale_temps(tmp_path / "emb") == [] and stale.exists()  # writer unknown: wait
    _old(stale / MARKER)
    assert remove_stale_temps(tmp_path / "emb") == [stale]


def test_a_folder_without_the_marker_is_never_deleted_whatever_its_name(tmp_path) -> None:
    lookalike = _folder(tmp_path / ".notesqa.tmp-mine", {"notes.md": "precious"})
    _old(lookalike)
    linked = _folder(tmp_path / ".notesqa.tmp-linked", {"notes.md": "precious too"})
    (tmp_path / "elsewhere.json").write_text("{}")
    (linked / MARKER).symlink_to(tmp_path / "elsewhere.json")  # a link is not our marker
    dir_marker = _folder(tmp_path / ".notesqa.tmp-dir", {"notes.md": "mine"})
    (dir_marker / MARKER).mkdir()
    remove_stale_temps(tmp_path / ".notesqa")
    assert not remove_owned(lookalike) and not remove_owned(linked)
    assert not remove_owned(dir_marker)
    assert (lookalike / "notes.md").read_text() == "precious"
    assert (linked / "notes.md").read_text() == "precious too"
    assert (dir_marker / "notes.md").read_text() == "mine"


def test_removing_an_owned_folder_does_not_follow_links_out_of_it(tmp_path) -> None:
    outside = _folder(tmp_path / "notes", {"a.md": "a note"})
    mine = new_temp(tmp_path / "index", "index")
    (mine / "notes").symlink_to(outside, target_is_directory=True)
    (mine / "a.md").symlink_to(outside / "a.md")
    assert remove_owned(mine) and not os.path.lexists(mine)
    assert (outside / "a.md").read_text() == "a note"


def test_a_leftover_previous_copy_is_removed_only_if_it_is_marked(tmp_path) -> None:
    target = _folder(tmp_path / "model", {"config.json": "current"})
    owned_folder.write_marker(target, "training")
    backup = _folder(backup_of(target), {"keep.txt": "someone's"})
    staged = new_temp(target, "training")
    with pytest.raises(ValueError, match=r"\.model\.old is in the way.*not written by notesqa"):
        swap_in(staged, target)
    assert (backup / "keep.txt").read_text() == "someone's"  # nothing moved
    assert (target / "config.json").read_text() == "current" and staged.is_dir()
    os.unlink(backup / "keep.txt")
    owned_folder.write_marker(backup, "training")  # a copy a crashed swap left: ours
    swap_in(staged, target)
    assert not os.path.lexists(backup) and owner_kind(target) == "training"


def test_an_interrupted_swap_keeps_the_previous_copy_until_the_new_one_is_in(tmp_path) -> None:
    target = tmp_path / "model"
    previous = new_temp(target, "training")
    (previous / "config.json").write_text("previous")
    os.rename(previous, backup_of(target))  # killed between the two renames: no target
    staged = new_temp(target, "training")  # the killed swap's copy is not a temp: kept
    assert (backup_of(target) / "config.json").read_text() == "previous"
    (staged / "config.json").write_text("new")
    swap_in(staged, target)
    assert (target / "config.json").read_text() == "new" and not backup_of(target).exists()


def test_a_failed_rename_puts_the_old_folder_back(tmp_path, monkeypatch) -> None:
    target = _folder(tmp_path / "model", {"config.json": "current"})
    owned_folder.write_marker(target, "training")
    staged = new_temp(target, "training")
    real = os.rename

    def failing(src, dst):
        if Path(src) == staged:
            raise OSError(28, "No space left on device", str(dst))
        real(src, dst)

    monkeypatch.setattr(owned_folder.os, "rename", failing)
    with pytest.raises(OSError, match="No space"):
        swap_in(staged, target)
    assert (target / "config.json").read_text() == "current" and not backup_of(target).exists()


def test_an_unmarked_folder_of_someones_files_is_never_replaced(tmp_path) -> None:
    target = _folder(tmp_path / "thesis", {"ch1.md": "hi"})
    staged = new_temp(target, "training")
    with pytest.raises(ValueError, match=r"thesis holds files notesqa did not write.*new folder"):
        swap_in(staged, target)
    assert (target / "ch1.md").read_text() == "hi" and not is_owned(target)  # nothing written
    assert not backup_of(target).exists() and staged.is_dir()
    refused: list[Path] = []
    with pytest.raises(ValueError, match="remove it yourself"):
        swap_in(staged, target, may_replace=lambda path: refused.append(path) is not None)
    assert refused == [target] and (target / "ch1.md").read_text() == "hi"
    swap_in(staged, target, may_replace=lambda path: path == target)  # the caller's own check
    assert sorted(p.name for p in target.iterdir()) == [MARKER]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis"]


def test_an_empty_folder_is_replaced_a_file_or_a_link_is_not(tmp_path) -> None:
    empty = _folder(tmp_path / "empty", {})
    swap_in(new_temp(empty, "training"), empty)
    assert is_owned(empty) and not backup_of(empty).exists()
    (tmp_path / "file").write_text("mine")
    with pytest.raises(ValueError, match="file is a file"):
        swap_in(new_temp(tmp_path / "file", "training"), tmp_path / "file")
    (tmp_path / "link").symlink_to(empty)
    with pytest.raises(ValueError, match="link is a link"):
        swap_in(new_temp(tmp_path / "link", "training"), tmp_path / "link")
    assert (tmp_path / "file").read_text() == "mine" and (tmp_path / "link").is_symlink()
    assert is_owned(empty)


@pytest.mark.parametrize("name", ["idx[1]", "idx*", "idx?"])
def test_a_target_name_is_never_a_glob_pattern(tmp_path, name) -> None:
    target, other = tmp_path / name, tmp_path / "idx1"
    mine, theirs = new_temp(target, "index"), new_temp(other, "index")
    _old(mine / MARKER)
    _old(theirs / MARKER)  # both writers gone
    assert remove_stale_temps(target) == [mine]  # its own killed temp: removed
    assert not mine.exists() and theirs.is_dir()  # another target's: left to that target
    assert remove_stale_temps(other) == [theirs]
