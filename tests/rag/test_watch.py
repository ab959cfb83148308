"""`notesqa watch`: edits, additions and deletions reach the index within seconds."""

import threading
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


def test_a_note_saved_every_fifth_of_a_second_does_not_hold_back_a_new_one(qa):
    notes = qa.notes_dir
    saving = threading.Event()

    def autosave() -> None:  # an editor saving a draft every 0.2 s
        count = 0
        while not saving.is_set():
            count += 1
            (notes / "draft.md").write_text(f"# Draft\n\nSaved {count} times.\n")
            time.sleep(0.2)

    saver = threading.Thread(target=autosave, daemon=True)
    with NotesWatcher(qa, debounce=0.5, max_wait=2.0):
        saver.start()
        try:
            time.sleep(0.5)
            (notes / "boris.md").write_text("Boris Kirason was born in Riga.\n")
            started = time.monotonic()
            assert wait_for(lambda: "Riga" in texts(qa), seconds=15)
            assert saver.is_alive()  # found while the draft was still being saved
            assert time.monotonic() - started < 2.0 + 10  # max wait, plus an update or two
        finally:
            saving.set()
            saver.join()
    with pytest.raises(ValueError, match="max_wait must be at least debounce"):
        NotesWatcher(qa, debounce=2, max_wait=1)


@pytest.mark.parametrize("ignore", ["drafts/\n!\n", "drafts/\n[z-a]\n"])
def test_a_half_typed_ignore_file_never_stops_the_watcher(qa, caplog, ignore):
    notes = qa.notes_dir
    errors = []
    with NotesWatcher(qa, debounce=0.3, on_error=errors.append) as watcher:
        (notes / ".notesqaignore").write_text(ignore)
        (notes / "drafts").mkdir()
        (notes / "drafts" / "idea.md").write_text("A draft born in Tromso.\n")
        (notes / "ada.md").write_text("# Ada\n\nAda Smithson was born in Bergen in 1850.\n")
        assert wait_for(lambda: "Bergen" in texts(qa))
        (notes / "ada.md").write_text("# Ada\n\nAda Smithson was born in Narvik in 1850.\n")
        assert wait_for(lambda: "Narvik" in texts(qa))  # still watching after the bad line
        assert watcher._observer.is_alive() and watcher._worker.is_alive()
    assert "Tromso" not in texts(qa)  # the good line still applies
    assert errors == []
    warnings = [r.getMessage() for r in caplog.records if r.name == "rag.ignore"]
    assert len(warnings) == 1 and ".notesqaignore:2: ignored the pattern" in warnings[0]


def test_an_event_that_cannot_be_judged_is_reported_once_and_indexed(qa, monkeypatch):
    errors = []
    watcher = NotesWatcher(qa, debounce=0.3, on_error=errors.append)

    def broken(path, is_dir=False):
        raise RuntimeError("cannot judge")

    monkeypatch.setattr(watcher, "is_relevant", broken)
    with watcher:
        for year in (1851, 1852, 1853):
            (qa.notes_dir / "ada.md").write_text(f"Ada Smithson was born in Hamar in {year}.\n")
            time.sleep(0.1)
        assert wait_for(lambda: "Hamar" in texts(qa))
    assert [str(error) for error in errors] == ["cannot judge"]  # once, not per event


def test_a_file_watcher_that_died_is_started_again(qa):
    errors = []
    with NotesWatcher(qa, debounce=0.3, on_error=errors.append) as watcher:
        first = watcher._observer
        first.stop()
        first.join(timeout=5)
        assert wait_for(lambda: watcher._observer is not first and watcher._observer.is_alive())
        (qa.notes_dir / "ada.md").write_text("Ada Smithson was born in Molde in 1850.\n")
        assert wait_for(lambda: "Molde" in texts(qa))
    assert len(errors) == 1 and "thread ended" in str(errors[0])


def test_the_same_failure_is_reported_once_until_an_update_works(qa, monkeypatch):
    errors = []
    watcher = NotesWatcher(qa, on_error=errors.append)
    index = qa.index
    monkeypatch.setattr(qa, "index", lambda progress=False: (_ for _ in ()).throw(OSError("disk")))
    assert [watcher.update() for _ in range(3)] == [None, None, None]
    assert len(errors) == 1
    monkeypatch.setattr(qa, "index", index)
    assert watcher.update() is not None
    monkeypatch.setattr(qa, "index", lambda progress=False: (_ for _ in ()).throw(OSError("disk")))
    watcher.update()
    assert len(errors) == 2  # failing again after a good update is news
