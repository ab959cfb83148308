"""Updates in place: a new segment per update, tombstones, merges, and the same answers as a
rebuild; crash safety of the commit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag import index_update
from rag.index_folder import foreign_entries
from rag.pipeline import NotesQA
from rag.store import NotesStore

NOTES = {
    "biology/cells.md": "# Cells\n\n## Mitochondria\n\nMitochondria make ATP for the cell.\n\n"
    "## Ribosomes\n\nRibosomes build proteins from amino acids.\n",
    "history/rome.md": "# Rome\n\nRome was founded in 753 BC. Julius Caesar crossed the Rubicon.\n",
    "ml/adam.md": "# Adam\n\nAdam keeps two moving averages for every parameter.\n\n"
    "## Bias\n\nBoth averages start at zero, so Adam corrects their bias early on.\n",
}
QUERIES = ["Who crossed the Rubicon?", "What makes ATP?", "moving averages", "SGD momentum"]


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")


@pytest.fixture
def qa(tmp_path, tiny_embedder_dir) -> NotesQA:
    write(tmp_path / "notes", NOTES)
    return NotesQA.open(tmp_path / "notes", embedder=tiny_embedder_dir)


def edit(root: Path) -> None:
    """Change one note (one passage of it), add one, remove one."""
    adam = (root / "ml/adam.md").read_text()
    (root / "ml/adam.md").write_text(adam.replace("early on", "in the first steps"))
    write(root, {"ml/sgd.md": "# SGD\n\nSGD with momentum keeps one velocity per parameter.\n"})
    (root / "history/rome.md").unlink()


def results(qa: NotesQA) -> list:
    """What a user sees: every query's passages (source, start) and rounded scores, per mode."""
    out = []
    for query in QUERIES:
        for mode in ("dense", "bm25", "hybrid"):
            out.append([(h.source, h.start, round(h.score, 4)) for h in qa.search(query, 5, mode)])
    return out


def test_an_update_adds_a_segment_and_answers_as_a_rebuild(qa, tmp_path, tiny_embedder_dir):
    qa.index(progress=False)
    edit(qa.notes_dir)
    summary = qa.index(progress=False)
    assert (summary.added, summary.changed, summary.removed) == (
        ["ml/sgd.md"],
        ["ml/adam.md"],
        ["history/rome.md"],
    )
    assert summary.unchanged == 1
    adam_passages = len(qa.store.passages_of(["ml/adam.md"]))
    assert 0 < summary.embedded < adam_passages + 1  # the edited note's unchanged passage kept
    assert qa.store.stats()["segments"] == 2
    fresh = NotesQA.open(qa.notes_dir, tmp_path / "fresh", embedder=tiny_embedder_dir)
    fresh.index(progress=False)
    assert results(qa) == results(fresh)
    assert sorted(c.text for c in qa.store.chunks()) == sorted(c.text for c in fresh.store.chunks())
    again = qa.index(progress=False)
    assert again.embedded == 0 and not (again.added or again.changed or again.removed)
    assert qa.store.stats()["segments"] == 2  # nothing changed: nothing written


def test_segments_merge_as_they_pile_up_and_on_optimize(qa, tmp_path, tiny_embedder_dir):
    qa.index(progress=False)
    for i in range(index_update.MAX_SEGMENTS + 2):
        write(qa.notes_dir, {f"log/day{i}.md": f"# Day {i}\n\nOn day {i} we studied topic {i}.\n"})
        qa.index(progress=False)
        assert qa.store.stats()["segments"] <= index_update.MAX_SEGMENTS
    fresh = NotesQA.open(qa.notes_dir, tmp_path / "fresh", embedder=tiny_embedder_dir)
    fresh.index(progress=False)
    assert results(qa) == results(fresh)
    qa.index(progress=False, optimize=True)
    assert qa.store.stats()["segments"] == 1
    assert results(qa) == results(fresh)
    segments = sorted(p.name for p in (qa.index_dir / "segments").iterdir())
    assert len(segments) == 1  # merged-away folders are gone


def test_removing_every_note_leaves_an_empty_index(qa):
    qa.index(progress=False)
    for rel in NOTES:
        (qa.notes_dir / rel).unlink()
    summary = qa.index(progress=False)
    assert summary.chunks == 0 and sorted(summary.removed) == sorted(NOTES)
    assert qa.search("ATP", k=3) == []


def test_another_process_sees_the_update(qa, tiny_embedder_dir):
    qa.index(progress=False)
    reader = NotesQA.from_index(qa.index_dir, embedder=tiny_embedder_dir)
    assert not [h for h in reader.search("velocity momentum", 5, "bm25") if "sgd" in h.source]
    write(qa.notes_dir, {"ml/sgd.md": "# SGD\n\nSGD with momentum keeps one velocity.\n"})
    qa.index(progress=False)
    assert [h for h in reader.search("velocity momentum", 5, "bm25") if "sgd" in h.source]


# An update in a child process, stopped inside its commit (the rollback journal beside the
# index's notes.sqlite), then killed: the index must stay the old one, and whole.
KILLED_MID_COMMIT = """
import os, sqlite3, sys, time
real_connect = sqlite3.connect

def connect(database, *args, **kwargs):
    conn = real_connect(database, *args, **kwargs)
    journal = str(database) + "-journal"
    def hold():
        if os.path.exists(journal):
            print(journal, flush=True)
            time.sleep(120)
        return 0
    if kwargs.get("isolation_level", "") is None:  # the update's writer
        conn.set_progress_handler(hold, 20)
    return conn

sqlite3.connect = connect
from rag.pipeline import NotesQA
NotesQA.open(sys.argv[1], embedder=sys.argv[2]).index(progress=False)
"""


def test_kill_9_inside_an_update_keeps_the_old_index(qa, tiny_embedder_dir):
    qa.index(progress=False)
    before = results(qa)
    qa.close()
    edit(qa.notes_dir)
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_MID_COMMIT, str(qa.notes_dir), str(tiny_embedder_dir)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert child.stdout.readline().strip().endswith("notes.sqlite-journal")
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert foreign_entries(qa.index_dir) == []  # the journal is SQLite's, inside our folder
    with NotesStore.open(qa.index_dir) as store:  # the journal is rolled back on opening
        assert sorted(d["path"] for d in store.documents()) == sorted(NOTES)
    restored = NotesQA.open(qa.notes_dir, embedder=tiny_embedder_dir)
    assert results(restored) == before
    summary = restored.index(progress=False)  # the next update does it all again
    assert summary.removed == ["history/rome.md"] and summary.added == ["ml/sgd.md"]
    listed = {p.name for p in (qa.index_dir / "segments").iterdir()}
    assert listed == set(restored.store.segment_set.names)  # the killed update's segment went
    assert np.isfinite(restored.search("velocity", 3)[0].score)


def test_an_update_reads_only_the_notes_whose_time_or_size_changed(qa, monkeypatch):
    qa.index(progress=False)
    read = []
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: read.append(self.name) or real(self))
    adam = qa.notes_dir / "ml/adam.md"
    adam.write_text(adam.read_text() + "\nOne more line.\n")
    summary = qa.index(progress=False)
    assert read == ["adam.md"] and summary.changed == ["ml/adam.md"]


def test_updates_keep_the_index_type_and_another_type_rewrites_the_index(qa):
    qa.index(progress=False, index_type="flat")
    write(qa.notes_dir, {"ml/sgd.md": "# SGD\n\nSGD with momentum keeps one velocity.\n"})
    qa.index(progress=False)  # the index's own type: updated in place
    assert qa.store.stats()["segments"] == 2 and qa.store.manifest["index_type"] == "flat"
    qa.index(progress=False, index_type="auto")  # another type: written anew, one segment
    assert qa.store.stats()["segments"] == 1 and qa.store.manifest["index_type"] == "auto"
