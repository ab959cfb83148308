"""The on-disk index: round trip, search, manifest checks and atomic rebuilds."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

import rag.store_writer as store_writer
from rag import vector_segments
from rag.chunking import Chunk, chunk_document, whitespace_token_count
from rag.documents import Document
from rag.store import FORMAT_VERSION, Hit, IndexDamaged, NotesStore
from rag.window_scores import soft_best

DIM = 16
MANIFEST = {"embedder": "test-embedder", "dim": DIM, "chunking": {"max_tokens": 8}}


def unit_rows(n: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def corpus() -> tuple[list[Document], list[Chunk]]:
    texts = {
        "ml/adam.md": "# Adam\n\nAdam keeps two moving averages per parameter.\n\n## Betas\n\n0.9.",
        "bio/cells.txt": "Cells are the unit of life. Mitochondria make ATP.",
        "notes/empty-ish.md": "# Only",
    }
    docs = [Document(p, t, f"sha-{i}", 100.0 + i, len(t)) for i, (p, t) in enumerate(texts.items())]
    chunks = [c for d in docs for c in chunk_document(d, whitespace_token_count)]
    return docs, chunks


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, list[Document], list[Chunk], np.ndarray]:
    docs, chunks = corpus()
    vectors = unit_rows(len(chunks))
    folder = tmp_path / "notes" / ".notesqa"
    NotesStore.build(folder, docs, chunks, vectors, MANIFEST).close()
    return folder, docs, chunks, vectors


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir() if p.name != folder.name)


def test_round_trip(built) -> None:
    folder, docs, chunks, vectors = built
    assert sorted(p.name for p in folder.iterdir()) == [
        ".notesqa-owned",  # embedder.owned_folder's record that notesqa wrote the folder
        "manifest.json",
        "notes.sqlite",
        "segments",
    ]
    with NotesStore.open(folder, expected={"embedder": "test-embedder", "dim": DIM}) as store:
        assert len(store) == len(chunks)
        assert store.chunks() == chunks
        assert store.chunk(2) == chunks[2]
        assert store.chunk_ids().tolist() == list(range(len(chunks)))
        stored = np.concatenate([store.chunk_vectors(i) for i in range(len(chunks))])
        np.testing.assert_allclose(stored, vectors, atol=0.01)  # 8-bit codes
        m = store.manifest
        assert m["format_version"] == FORMAT_VERSION
        assert (m["num_chunks"], m["num_documents"]) == (len(chunks), len(docs))
        assert m["chunking"] == {"max_tokens": 8} and "created" in m
        m["embedder"] = "mutated"
        assert store.manifest["embedder"] == "test-embedder"
        counts = {c.source: 0 for c in chunks}
        for c in chunks:
            counts[c.source] += 1
        assert store.documents() == [
            {
                "path": d.path,
                "sha256": d.sha256,
                "mtime": d.mtime,
                "size": d.size,
                "num_chunks": counts[d.path],
            }
            for d in docs
        ]
        with pytest.raises(KeyError, match="no chunk with id 999"):
            store.chunk(999)
    assert leftovers(folder) == []


def test_sqlite_schema(built) -> None:
    folder = built[0]
    conn = sqlite3.connect(folder / "notes.sqlite")
    cols = {
        t: [r[1] for r in conn.execute(f"PRAGMA table_info({t})")]
        for t in ("documents", "chunks", "segments", "passage_tags")
    }
    conn.close()
    assert cols["documents"] == ["id", "path", "sha256", "mtime", "size"]
    assert cols["chunks"] == [
        *("id", "document_id", "start", "end", "heading", "text"),
        *("line", "col"),  # 1-based position of start (rag.locations)
        "context",  # title and heading path it was indexed with (rag.passage_context)
    ]
    assert cols["segments"] == ["name", "passages", "vectors", "kind", "recall_at_10"]
    assert cols["passage_tags"] == ["chunk_id", "position", "tag", "tag_key"]


def test_search_finds_the_chunk_with_the_query_vector(built) -> None:
    folder, _, chunks, vectors = built
    with NotesStore.open(folder) as store:
        for i in range(len(chunks)):
            for query in (vectors[i], vectors[i][None, :]):
                hits = store.search(query, k=3)
                assert [type(h) for h in hits] == [Hit] * 3
                assert hits[0].chunk_id == i and hits[0].chunk == chunks[i]
                assert hits[0].score == pytest.approx(1.0, abs=0.01)
                assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert len(store.search(vectors[0], k=100)) == len(chunks)
        assert store.search(vectors[0], k=0) == []
        with pytest.raises(ValueError, match="dimension 3"):
            store.search(np.ones(3, dtype=np.float32), k=1)


def test_search_from_another_thread(built) -> None:
    folder, _, _, vectors = built
    store = NotesStore.open(folder)
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(store.search(vectors[1], 1)[0].chunk_id))
    thread.start()
    thread.join()
    assert result == [1]
    store.close()
    store.close()  # idempotent


def test_manifest_mismatch_names_key_and_fix(built) -> None:
    folder = built[0]
    with pytest.raises(ValueError, match=r"embedder='test-embedder'.*'other'.*--rebuild"):
        NotesStore.open(folder, expected={"embedder": "other", "dim": DIM})
    with pytest.raises(ValueError, match=r"dim=16.*dim=32.*--rebuild"):
        NotesStore.open(folder, expected={"dim": 32})


def test_format_version_mismatch(built) -> None:
    folder = built[0]
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, "format_version": FORMAT_VERSION + 1}))
    with pytest.raises(ValueError, match=r"format_version.*--rebuild"):
        NotesStore.open(folder)


def test_missing_index(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no notesqa index at .*notesqa index NOTES_DIR"):
        NotesStore.open(tmp_path / ".notesqa")


def test_failed_build_leaves_previous_index_intact(built, monkeypatch) -> None:
    folder, docs, chunks, vectors = built
    before = (folder / "manifest.json").read_text()

    with pytest.raises(ValueError, match="rows"):
        NotesStore.build(folder, docs, chunks, vectors[:-1], MANIFEST)
    with pytest.raises(ValueError, match="unit length"):
        NotesStore.build(folder, docs, chunks, vectors * 2, MANIFEST)
    with pytest.raises(ValueError, match="dim"):
        NotesStore.build(folder, docs, chunks, vectors, {"embedder": "x", "dim": 8})

    def broken_sqlite(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(store_writer, "write_sqlite", broken_sqlite)  # fails after the segment
    with pytest.raises(OSError, match="disk full"):
        NotesStore.build(folder, docs, chunks[:1], vectors[:1], MANIFEST)

    assert (folder / "manifest.json").read_text() == before
    assert leftovers(folder) == []
    with NotesStore.open(folder) as store:
        assert store.chunks() == chunks


def test_rebuild_replaces_index(built) -> None:
    folder, docs, chunks, _ = built
    store = NotesStore.build(folder, docs, chunks[:2], unit_rows(2, seed=1), MANIFEST)
    assert len(store) == 2 and store.manifest["num_chunks"] == 2
    store.close()
    assert leftovers(folder) == []


def test_refuses_to_replace_a_folder_that_is_not_an_index(tmp_path: Path) -> None:
    docs, chunks = corpus()
    (tmp_path / "my-notes.md").write_text("precious")
    with pytest.raises(ValueError, match="not a notesqa index"):
        NotesStore.build(tmp_path, docs, chunks, unit_rows(len(chunks)), MANIFEST)
    assert (tmp_path / "my-notes.md").read_text() == "precious"


def test_chunk_of_unknown_document_is_rejected(tmp_path: Path) -> None:
    docs, chunks = corpus()
    with pytest.raises(ValueError, match="were not passed"):
        NotesStore.build(tmp_path / "i", docs[:1], chunks, unit_rows(len(chunks)), MANIFEST)


def test_empty_index(tmp_path: Path) -> None:
    vectors = np.zeros((0, DIM), dtype=np.float32)
    with NotesStore.build(tmp_path / "i", [], [], vectors, MANIFEST) as store:
        assert len(store) == 0
        assert store.search(unit_rows(1)[0], k=5) == []
        assert store.chunks() == [] and store.documents() == []


def several_vectors(n_chunks: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """1, 2, 3, 1, 2, 3, ... vectors per chunk: ``(vectors (N, DIM), owners (N,))``."""
    owners = np.repeat(np.arange(n_chunks), [1 + i % 3 for i in range(n_chunks)])
    return unit_rows(len(owners), seed=seed), owners


@pytest.mark.parametrize("index_type", ["flat", "ivf"])
def test_a_chunk_with_several_vectors_is_scored_by_all_of_them(
    tmp_path: Path, index_type, monkeypatch
) -> None:
    monkeypatch.setattr(store_writer, "IVF_TRAIN_MIN", 1)  # an IVF over the few test vectors
    monkeypatch.setattr(vector_segments, "IVF_TRAIN_MIN", 1)
    docs, chunks = corpus()
    vectors, owners = several_vectors(len(chunks))
    folder = tmp_path / ".notesqa"
    NotesStore.build(folder, docs, chunks, vectors, MANIFEST, index_type, owners).close()
    with NotesStore.open(folder) as store:
        assert (len(store), store.num_vectors) == (len(chunks), len(owners))
        assert store.manifest["num_vectors"] == len(owners)
        assert store.stats()["vectors"] == len(owners)
        assert store.stats()["index_type"] == index_type
        for chunk in range(len(chunks)):
            np.testing.assert_allclose(
                store.chunk_vectors(chunk), vectors[owners == chunk], atol=0.01
            )
        for query in unit_rows(5, seed=9):
            cosines = vectors @ query  # (N,)
            best = {c: soft_best(cosines[owners == c]) for c in range(len(chunks))}
            truth = sorted(best, key=lambda c: -best[c])
            hits = store.nearest(query, k=len(chunks))
            assert sorted(c for c, _ in hits) == sorted(truth)  # every chunk once
            # scored by all its vectors (decoded from 8 bits, so a near tie may swap)
            assert [s for _, s in hits] == pytest.approx([best[c] for c, _ in hits], abs=0.01)
            assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
            allowed = np.asarray([truth[-1], truth[-2]])  # the two worst chunks only
            assert [c for c, _ in store.nearest(query, k=5, allowed=allowed)] == truth[-2:]
        for row, chunk_id in enumerate(owners):  # every vector finds its own chunk
            assert store.search(vectors[row], k=1)[0].chunk_id == chunk_id


def test_vector_chunk_ids_are_checked_before_anything_is_written(built) -> None:
    folder, docs, chunks, _ = built
    before = (folder / "manifest.json").read_text()
    vectors, owners = several_vectors(len(chunks))
    cases = [
        (owners[:-1], "one per vector row"),
        (owners[::-1].copy(), "non-decreasing"),
        (np.where(owners == 1, 0, owners), "every chunk needs at least one vector"),
        (owners.astype(np.float32), "integer chunk ids"),
    ]
    for bad, message in cases:
        with pytest.raises(ValueError, match=message):
            NotesStore.build(folder, docs, chunks, vectors, MANIFEST, vector_chunks=bad)
    with pytest.raises(ValueError, match="or vector_chunks"):
        NotesStore.build(folder, docs, chunks, vectors, MANIFEST)
    assert (folder / "manifest.json").read_text() == before and leftovers(folder) == []


def test_an_index_of_an_older_format_asks_for_a_rebuild(built) -> None:
    folder = built[0]
    path = folder / "manifest.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "format_version": 3}))
    with pytest.raises(ValueError, match=r"format_version=3.*notesqa index NOTES_DIR --rebuild"):
        NotesStore.open(folder)


def drop_a_segment(folder: Path) -> None:
    conn = sqlite3.connect(folder / "notes.sqlite")
    conn.execute("DELETE FROM segments")
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda f: (f / "notes.sqlite").write_bytes(b"x" * 100), "notes.sqlite"),
        (
            lambda f: (f / "segments" / "s000001" / "vectors.faiss").write_bytes(b"x" * 100),
            "segments/s000001 cannot be read",
        ),
        (
            lambda f: (f / "segments" / "s000001" / "keywords" / "starts.npy").unlink(),
            "segments/s000001 cannot be read",
        ),
        (
            lambda f: (f / "segments" / "s000001" / "chunk_ids.npy").write_bytes(b""),
            "segments/s000001 cannot be read",
        ),
        (lambda f: drop_a_segment(f), "passages of notes.sqlite are in no segment"),
    ],
)
def test_damage_is_found_when_the_index_opens(built, damage, problem) -> None:
    folder = built[0]
    damage(folder)
    with pytest.raises(IndexDamaged, match=problem) as caught:
        NotesStore.open(folder)
    assert "--rebuild" in str(caught.value)


def test_skipped_files_are_kept_with_the_index(tmp_path: Path) -> None:
    docs, chunks = corpus()
    skipped = [("photo.png", "unsupported extension .png")]
    with NotesStore.build(
        tmp_path / "ix", docs, chunks, unit_rows(len(chunks)), MANIFEST, skipped=skipped
    ) as store:
        assert store.skipped() == skipped


def tagged_corpus() -> tuple[list[Document], list[Chunk]]:
    notes = {
        "exam/adam.md": ("# Adam\n\nAdam keeps two moving averages.", ("ML/optim", "exam")),
        "bio/cells.md": ("# Cells\n\nMitochondria make ATP.", ("bio", "exam")),
        "misc/todo.md": ("# Todo\n\nBuy more_coffee.", ("more_coffee", "Été")),
        "misc/plain.md": ("# Plain\n\nNo tags at all.", ()),
    }
    docs = [
        Document(path, text, f"sha-{i}", 1.0, len(text), tags=tags)
        for i, (path, (text, tags)) in enumerate(notes.items())
    ]
    return docs, [c for d in docs for c in chunk_document(d, whitespace_token_count)]


def test_tags_are_stored_per_passage_and_filter_inside_the_search(tmp_path: Path) -> None:
    docs, chunks = tagged_corpus()
    folder = tmp_path / ".notesqa"
    with NotesStore.build(folder, docs, chunks, unit_rows(len(chunks)), MANIFEST) as store:
        sources = {i: c.source for i, c in enumerate(store.chunks())}

        def matching(*tags: str) -> set[str]:
            return {sources[int(i)] for i in store.ids_matching(tags=tags)}

        assert store.chunks()[0].tags == ("ML/optim", "exam")  # the note's order and spelling
        assert matching("exam") == {"exam/adam.md", "bio/cells.md"}
        assert matching("#ml") == matching("ml/optim/") == {"exam/adam.md"}  # nested, any case
        assert matching("ml/opt") == set()  # a tag is matched whole, not as a prefix
        assert matching("exam", "bio") == {"bio/cells.md"}  # every tag given
        assert matching("more_coffee") == {"misc/todo.md"}
        assert matching("moreXcoffee") == set()  # "_" is no wildcard
        assert matching("#ÉTÉ") == matching("été") == {"misc/todo.md"}  # not only ASCII case
        assert store.tags() == [
            *(("exam", 2), ("bio", 1), ("ML/optim", 1), ("more_coffee", 1), ("Été", 1))
        ]
        assert store.chunks()[2].tags == ("more_coffee", "Été")
        with pytest.raises(ValueError, match="empty tag"):
            store.ids_matching(tags=["#"])
        # the keyword index sees the note title and heading path before each passage
        assert store.chunks()[0].keyword_text.startswith("Adam\n\n# Adam")


def test_an_index_written_before_tags_and_context_still_opens(built) -> None:
    folder, _, chunks, vectors = built
    conn = sqlite3.connect(folder / "notes.sqlite")
    conn.execute("DROP TABLE passage_tags")
    conn.execute("ALTER TABLE chunks DROP COLUMN context")
    conn.commit()
    conn.close()
    with NotesStore.open(folder) as store:
        assert [c.text for c in store.chunks()] == [c.text for c in chunks]
        assert {c.context for c in store.chunks()} == {""}
        assert store.tags() == [] and store.search(vectors[1], k=1)[0].chunk.tags == ()
        with pytest.raises(ValueError, match="written before notesqa stored tags.*notesqa index"):
            store.ids_matching(tags=["exam"])


@pytest.mark.parametrize(
    "tag", ["a\x1fb", "x:1", '"quoted", [json]', "\\back\\slash", "2:late"], ids=repr
)
def test_any_character_in_a_tag_comes_back_whole(tmp_path: Path, tag: str) -> None:
    # the store once joined a chunk's tags with "\x1f": a tag holding it broke every search
    text = "# Note\n\nA passage with a strange tag."
    docs = [Document("odd.md", text, "sha", 1.0, len(text), tags=(tag, "plain"))]
    chunks = chunk_document(docs[0], whitespace_token_count)
    vectors = unit_rows(len(chunks))
    with NotesStore.build(tmp_path / ".notesqa", docs, chunks, vectors, MANIFEST) as store:
        assert store.search(vectors[0], k=1)[0].chunk.tags == (tag, "plain")
        assert len(store.ids_matching(tags=[tag])) == len(chunks)


def test_the_heading_filter_folds_any_case_and_has_no_wildcards(tmp_path: Path) -> None:
    notes = {
        "a.md": "# Énergie libre\n\nGibbs energy.",
        "b.md": "# Ωmega notes\n\nThe last letter.",
        "c.md": "# 50% rule\n\nHalf of it.",
        "d.md": "# 5 rules\n\nFive of them.",
    }
    docs = [Document(p, t, f"sha{i}", 1.0, len(t)) for i, (p, t) in enumerate(notes.items())]
    chunks = [c for d in docs for c in chunk_document(d, whitespace_token_count)]
    with NotesStore.build(
        tmp_path / ".notesqa", docs, chunks, unit_rows(len(chunks)), MANIFEST
    ) as store:
        sources = [c.source for c in store.chunks()]

        def matching(heading: str) -> set[str]:
            return {sources[int(i)] for i in store.ids_matching(heading=heading)}

        assert matching("énergie") == matching("ÉNERGIE LIBRE") == {"a.md"}
        assert matching("ωMEGA") == {"b.md"}
        assert matching("50%") == {"c.md"}  # "%" is the character, not "anything"
        assert matching("5_") == set()  # "_" is not "any one character"


def test_vectors_may_be_given_as_a_plain_list_of_rows(tmp_path: Path) -> None:
    text = "# Note\n\nOne passage."
    docs = [Document("n.md", text, "sha", 1.0, len(text))]
    chunks = chunk_document(docs[0], whitespace_token_count)
    rows = unit_rows(len(chunks)).tolist()  # a list has .append, and is not a VectorSpool
    with NotesStore.build(tmp_path / ".notesqa", docs, chunks, rows, MANIFEST) as store:
        assert len(store) == len(chunks)
