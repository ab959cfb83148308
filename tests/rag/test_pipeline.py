import shutil
from pathlib import Path

import numpy as np
import pytest

from rag.pipeline import NotesQA, SearchHit, extract_answers
from rag.reader import Reader, ReaderSettings
from rag.spans import Span

NOTES = {
    "people/ada.md": "# People\n\n## Ada\n\nAda Smithson was born in Oslo in 1850. "
    "Ada Smithson worked as a chemist for many years.\n",
    "people/boris.txt": "Boris Kirason was born in Lima in 1901.\r\nBoris Kirason collected clocks.\n",
    "places.md": "# Places\n\nLisbon is a city by the sea. Cairo is a city on the Nile.\n",
    "image.png": "\x89PNG\x00\x00binary",
    ".hidden/secret.md": "Hidden notes are never indexed.",
}


@pytest.fixture
def notes_dir(tmp_path) -> Path:
    root = tmp_path / "notes"
    for rel, text in NOTES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
    return root


@pytest.fixture
def qa(notes_dir, tiny_embedder_dir, tiny_reader_dir):
    return NotesQA.open(notes_dir, embedder=tiny_embedder_dir, reader=tiny_reader_dir)


def test_index_search_and_ask_with_exact_sources(qa, notes_dir):
    summary = qa.index(progress=False)
    assert summary.files == 3 and summary.chunks >= 3
    assert any(path == "image.png" for path, _ in summary.skipped)
    assert (notes_dir / ".notesqa" / "manifest.json").exists()

    hits = qa.search("Where was Ada Smithson born?", k=2)
    assert len(hits) == 2 and hits[0].score >= hits[1].score
    answers = qa.ask("Where was Ada Smithson born?", k=3)
    assert answers
    for answer in answers:
        text = (notes_dir / answer.source).read_text(encoding="utf-8").replace("\r\n", "\n")
        assert text[answer.start : answer.end] == answer.text
        assert answer.text in answer.context
    sources = {a.source for a in answers}
    assert sources <= {"people/ada.md", "people/boris.txt", "places.md"}


def test_answers_are_not_duplicated(qa):
    qa.index(progress=False)
    answers = qa.ask("What did Boris Kirason collect?", k=5, top_answers=10)
    keys = [(a.source, a.start, a.end) for a in answers]
    assert len(keys) == len(set(keys))


def test_reindex_replaces_the_index_and_an_empty_query_is_an_error(qa, notes_dir):
    qa.index(progress=False)
    (notes_dir / "places.md").unlink()
    qa.index(progress=False)
    assert {h.source for h in qa.search("Lisbon city", k=10)} == {
        "people/ada.md",
        "people/boris.txt",
    }
    with pytest.raises(ValueError, match="empty"):
        qa.search("   ")


def test_index_built_by_another_embedder_is_refused(
    qa, notes_dir, tiny_embedder_dir, tiny_reader_dir, copy_dir
):
    qa.index(progress=False)
    other = copy_dir(tiny_embedder_dir)
    from safetensors.torch import load_file, save_file

    weights = load_file(other / "model.safetensors")
    key = sorted(weights)[0]
    weights[key] = weights[key] * 0.5
    save_file(weights, other / "model.safetensors")
    stale = NotesQA.from_index(notes_dir / ".notesqa", embedder=other, reader=tiny_reader_dir)
    with pytest.raises(ValueError, match="--rebuild"):
        stale.search("Ada")


def test_truncated_vectors_keep_their_size_until_a_rebuild(notes_dir, tiny_embedder_dir):
    small = NotesQA.open(notes_dir, embedder=tiny_embedder_dir, dim=8)
    small.index(progress=False)
    assert small.stats()["dim"] == 8
    index = notes_dir / ".notesqa"
    asker = NotesQA.from_index(index, embedder=tiny_embedder_dir)  # no dim: the index's own
    assert asker.embedder.dim == 8
    assert asker.search("Ada Smithson born", k=1)[0].source == "people/ada.md"
    (notes_dir / "extra.md").write_text("Chen Lihua was born in Xi'an in 1920.\n")
    summary = NotesQA.open(notes_dir, embedder=tiny_embedder_dir).index(progress=False)
    assert summary.to_dict()["files"] >= 4
    assert NotesQA.from_index(index, embedder=tiny_embedder_dir).embedder.dim == 8
    with pytest.raises(ValueError, match="--rebuild"):
        NotesQA.open(notes_dir, embedder=tiny_embedder_dir, dim=4).index(progress=False)
    full = NotesQA.open(notes_dir, embedder=tiny_embedder_dir)
    full.index(progress=False, rebuild=True)
    assert full.stats()["dim"] == full.embedder.dim > 8
    assert NotesQA.from_index(index, embedder=tiny_embedder_dir).embedder.dim == full.embedder.dim


def test_missing_index_is_a_clear_error(tmp_path, tiny_embedder_dir):
    qa = NotesQA.from_index(tmp_path / "nowhere", embedder=tiny_embedder_dir)
    with pytest.raises(FileNotFoundError, match="notesqa index"):
        qa.search("anything")


def test_missing_notes_folder(tmp_path, tiny_embedder_dir):
    with pytest.raises((FileNotFoundError, NotADirectoryError)):
        NotesQA.open(tmp_path / "missing", embedder=tiny_embedder_dir).index(progress=False)
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_the_null_threshold_can_be_overridden_per_question(qa):
    qa.index(progress=False)
    question = "Where was Ada Smithson born?"
    assert qa.ask(question, k=3, null_threshold=-1e9) == []  # abstains whatever the scores
    always = qa.ask(question, k=3, null_threshold=None)
    assert always  # never abstains when a span was found
    assert qa.ask(question, k=3, null_threshold=1e9) == always
    # the default is the threshold stored with the reader
    qa.reader.settings.null_threshold = -1e9
    assert qa.ask(question, k=3) == []


class _ScriptedReader(Reader):
    """A reader whose spans and null scores are given per passage text (no model)."""

    def __init__(self, outputs: dict[str, tuple[list[Span], float]], threshold: float | None):
        self.outputs = outputs
        self.settings = ReaderSettings(null_threshold=threshold)

    def read(self, question, contexts):
        return [self.outputs[c] for c in contexts]


def test_the_best_span_is_weighed_against_the_null_score_of_its_own_passage():
    relevant = "Ada Smithson was born in Oslo."
    unrelated = "Cairo is a city on the Nile."
    reader = _ScriptedReader(
        {
            relevant: ([Span("Oslo", 25, 29, 6.0)], 1.0),  # confident span, low null
            unrelated: ([Span("Cairo", 0, 5, 0.5)], 9.0),  # no answer here: high null
        },
        threshold=0.0,
    )
    hits = [
        SearchHit(relevant, 0.9, "ada.md", 10, 40, ""),
        SearchHit(unrelated, 0.5, "c.md", 0, 28, ""),
    ]
    answers = extract_answers(reader, "Where was Ada born?", hits, top_answers=2)
    # 1.0 - 6.0 < 0: answered, although the unrelated passage's null (9.0) beats the span
    assert [(a.text, a.source, a.start, a.end) for a in answers[:1]] == [("Oslo", "ada.md", 35, 39)]
    # when the span's own passage prefers "no answer", the reader abstains
    reader.outputs[relevant] = ([Span("Oslo", 25, 29, 6.0)], 7.0)
    assert extract_answers(reader, "Where was Ada born?", hits) == []
    assert extract_answers(reader, "Where was Ada born?", hits, null_threshold=None)


def test_indexing_streams_notes_and_embeds_a_batch_at_a_time(
    tmp_path, tiny_embedder_dir, monkeypatch
):
    # #41 part 3: a big vault once tokenised every passage up front (9.2 GB for 50 MB of notes)
    import rag.index_vectors as index_vectors
    from embedder import Embedder

    root = tmp_path / "notes"
    root.mkdir()
    for i in range(12):
        sentences = " ".join(f"Fact {i}-{j} is about topic {j}." for j in range(40))
        (root / f"note{i:02d}.md").write_text(f"# Note {i}\n\n{sentences}\n", encoding="utf-8")
    monkeypatch.setattr(index_vectors, "EMBED_BATCH", 8)
    batches: list[int] = []
    real_encode = Embedder.encode_with_windows

    def encode(self, texts, *args, **kwargs):
        batches.append(len(texts))
        return real_encode(self, texts, *args, **kwargs)

    monkeypatch.setattr(Embedder, "encode_with_windows", encode)
    progress: list[tuple[int, int]] = []
    qa = NotesQA.open(root, embedder=tiny_embedder_dir)
    summary = qa.index(
        progress=False, on_progress=lambda done, total: progress.append((done, total))
    )
    assert summary.chunks > 3 * 8 and max(batches) <= 8 and sum(batches) == summary.chunks
    assert progress[-1] == (summary.chunks, summary.chunks)
    rebuilt = NotesQA.open(root, embedder=tiny_embedder_dir)
    monkeypatch.setattr(index_vectors, "EMBED_BATCH", 1000)  # one batch: the same vectors
    rebuilt.index(progress=False, rebuild=True)
    assert np.allclose(qa.store.vectors(), rebuilt.store.vectors(), atol=1e-5)


def test_an_update_reads_the_index_again_when_another_indexer_changed_it(
    notes_dir, tiny_embedder_dir, tiny_reader_dir
):
    def open_qa():
        return NotesQA.open(notes_dir, embedder=tiny_embedder_dir, reader=tiny_reader_dir)

    open_qa().index(progress=False)
    first = open_qa()
    assert first._damage() is None  # whole: kept open for the update check that follows
    kept = first._checked[1]
    (notes_dir / "new.md").write_text("# New\n\nMira Toll was born in Quito.\n")
    open_qa().index(progress=False)  # another indexer updates the index meanwhile
    settings = dict(kept.manifest)
    store = first._updatable(settings)
    assert store is not None and store is not kept  # read again, not the stale one
    assert "new.md" in {d["path"] for d in store.documents()}
    store.close()
    assert first._damage() is None  # nothing changes now: the store it opened is the one used
    kept = first._checked[1]
    store = first._updatable(settings)
    assert store is kept and first._checked is None
    store.close()
