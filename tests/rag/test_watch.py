"""`notesqa watch`: edits, additions and deletions reach the index within seconds."""

import time

import pytest

from rag.pipeline import NotesQA
from rag.watch import NotesWatcher, update_line


def wait_for(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def qa(tmp_path, tiny_embedder_dir):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "ada.md").write_text("# Ada\n\nAda Smithson was born in Oslo in 1850.\n")
    qa = NotesQA.open(notes, embedder=str(tiny_embedder_dir))
    qa.index(progress=False)
    yield qa
    qa.close()


def texts(qa: NotesQA) -> str:
    return " ".join(hit.text for hit in qa.search("born", k=10, mode="bm25"))


def test_an_edit_an_addition_and_a_deletion_reach_the_index_in_seconds(qa):
    notes = qa.notes_dir
    lines = []
    with NotesWatcher(qa, debounce=0.3, on_update=lambda s: lines.append(update_line(s))):
        started = time.monotonic()
        (notes / "ada.md").write_text("# Ada\n\nAda Smithson was born in Bergen in 1850.\n")
        assert wait_for(lambda: "Bergen" in texts(qa))
        assert time.monotonic() - started < 10
        (notes / "boris.md").write_text("Boris Kirason was born in Riga.\n")
        assert wait_for(lambda: "Riga" in texts(qa))
        (notes / "ada.md").unlink()
        assert wait_for(lambda: "Bergen" not in texts(qa))
    assert any("changed ada.md" in line for line in lines)
    assert any("added boris.md" in line for line in lines)
    assert any("removed ada.md" in line for line in lines)


def test_events_in_the_index_and_hidden_folders_are_ignored(qa):
    watcher = NotesWatcher(qa)
    assert not watcher.is_relevant(str(qa.index_dir / "manifest.json"))
    assert not watcher.is_relevant(str(qa.notes_dir / ".git" / "index"))
    assert not watcher.is_relevant(str(qa.notes_dir / "draft.md~"))
    assert not watcher.is_relevant(str(qa.notes_dir / "node_modules" / "pkg" / "README.md"))
    assert watcher.is_relevant(str(qa.notes_dir / "sub" / "new.md"))
    assert watcher.is_relevant(str(qa.notes_dir / ".notesqaignore"))
    assert watcher.is_relevant(str(qa.notes_dir / "sub" / ".gitignore"))
    with pytest.raises(ValueError, match="debounce must be above 0"):
        NotesWatcher(qa, debounce=0)


def test_events_at_ignored_paths_and_at_files_that_are_not_notes_do_not_wake_it(qa):
    notes = qa.notes_dir
    (notes / ".notesqaignore").write_text("drafts/\n*.log.md\n!drafts/keep.md\n")
    (notes / "sub").mkdir(exist_ok=True)
    (notes / "sub" / ".gitignore").write_text("build/\n")
    watcher = NotesWatcher(qa)
    assert not watcher.is_relevant(str(notes / "drafts" / "idea.md"))
    assert not watcher.is_relevant(str(notes / "drafts"), is_dir=True)
    assert not watcher.is_relevant(str(notes / "run.log.md"))
    assert not watcher.is_relevant(str(notes / "sub" / "build" / "out.md"))
    assert not watcher.is_relevant(str(notes / "sub" / "figure.png"))
    assert watcher.is_relevant(str(notes / "sub" / "figures"), is_dir=True)  # may hold notes
    assert watcher.is_relevant(str(notes / "drafts" / "keep.md"))  # brought back by "!"
    assert watcher.is_relevant(str(notes / "build" / "out.md"))  # sub/.gitignore only in sub/
    watcher.notice(str(notes / "drafts" / "idea.md"))
    assert not watcher._wake.is_set()
    watcher.notice(str(notes / "lecture.md"))
    assert watcher._wake.is_set()


def test_a_failed_update_is_reported_and_watching_goes_on(qa, monkeypatch):
    errors = []
    watcher = NotesWatcher(qa, on_error=errors.append)
    monkeypatch.setattr(qa, "index", lambda progress=False: (_ for _ in ()).throw(OSError("disk")))
    assert watcher.update() is None and "disk" in str(errors[0])


def test_an_open_notes_qa_reads_an_index_another_process_updated(qa, tiny_embedder_dir):
    assert "Oslo" in texts(qa)  # opened the index
    (qa.notes_dir / "ada.md").write_text("# Ada\n\nAda Smithson was born in Turku in 1850.\n")
    other = NotesQA.open(qa.notes_dir, embedder=str(tiny_embedder_dir))  # as `notesqa watch`
    other.index(progress=False)
    other.close()
    assert "Turku" in texts(qa)
