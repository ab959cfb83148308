"""Clickable places: line and column of an offset, their storage in the index, the links."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from rag.answers import SearchHit, View, _answer
from rag.chunking import ChunkingConfig, chunk_document, whitespace_token_count
from rag.documents import Document
from rag.locations import (
    advance,
    display_path,
    line_and_column,
    obsidian_uri,
    source_links,
    where,
    with_links,
)
from rag.plaintext import plain_view
from rag.spans import Span
from rag.store import NotesStore

TEXT = "# Adam\n\nAdam keeps two moving averages.\n\n## Betas\n\nbeta1 = 0.9, beta2 = 0.999.\n"


@pytest.mark.parametrize(
    ("text", "offset", "expected"),
    [
        ("", 0, (1, 1)),
        ("first line", 0, (1, 1)),
        ("first line", 6, (1, 7)),
        ("first line", 10, (1, 11)),  # just after the last character
        ("a\nb", 1, (1, 2)),  # the line break itself ends line 1
        ("a\nb", 2, (2, 1)),
        ("a\n\n\nb", 4, (4, 1)),
        ("a\r\nb", 3, (2, 1)),  # CRLF is one break
        ("a\r\nbc\r\nd", 5, (2, 3)),
        ("a\rb", 2, (2, 1)),  # a lone CR too
        ("é😀\nx", 4, (2, 2)),  # columns count characters, not bytes
    ],
)
def test_line_and_column(text: str, offset: int, expected: tuple[int, int]) -> None:
    assert line_and_column(text, offset) == expected


def test_line_and_column_rejects_an_offset_outside_the_text() -> None:
    with pytest.raises(ValueError, match="offset 5 is outside the text"):
        line_and_column("abc", 5)


def test_advance_agrees_with_counting_from_the_start() -> None:
    for start in range(len(TEXT)):
        line, column = line_and_column(TEXT, start)
        for end in range(start, len(TEXT) + 1, 7):
            assert advance(line, column, TEXT[start:end]) == line_and_column(TEXT, end)


def test_chunks_carry_the_line_and_column_of_their_start() -> None:
    doc = Document("ml/adam.md", TEXT, "", 0.0, 0)
    chunks = chunk_document(doc, whitespace_token_count, ChunkingConfig(4, 0))
    assert len(chunks) > 3
    for chunk in chunks:
        assert (chunk.line, chunk.column) == line_and_column(TEXT, chunk.start)
    assert (chunks[0].line, chunks[0].column) == (1, 1)


def _build(folder: Path) -> list:
    doc = Document("ml/adam.md", TEXT, "sha", 0.0, len(TEXT))
    chunks = chunk_document(doc, whitespace_token_count, ChunkingConfig(4, 0))
    vectors = np.eye(len(chunks), 8, dtype=np.float32)
    NotesStore.build(folder, [doc], chunks, vectors, {"embedder": "e", "dim": 8}).close()
    return chunks


def test_the_index_stores_positions_and_opens_an_index_without_them(tmp_path: Path) -> None:
    folder = tmp_path / ".notesqa"
    chunks = _build(folder)
    with NotesStore.open(folder) as store:
        stored = store.chunks()
        hit = store.hits([(2, 1.0)])[0]
    assert [(c.line, c.column) for c in stored] == [(c.line, c.column) for c in chunks]
    assert (hit.chunk.line, hit.chunk.column) == line_and_column(TEXT, chunks[2].start)

    # an index written before the columns existed opens, its positions unknown
    conn = sqlite3.connect(folder / "notes.sqlite")
    conn.execute("ALTER TABLE chunks DROP COLUMN line")
    conn.execute("ALTER TABLE chunks DROP COLUMN col")
    conn.commit()
    conn.close()
    with NotesStore.open(folder) as store:
        old = store.chunks()
        assert store.chunk(1).line is None
        assert len(store.ids_matching("ml/*")) == len(chunks)
    assert old == chunks and all(c.line is None and c.column is None for c in old)


def test_an_answer_gets_its_own_line_and_column_in_a_markdown_passage() -> None:
    # the answer "0.9" sits in line 7 behind inline code, read from the plain view
    text = "# Adam\n\nAdam keeps two moving averages.\n\n## Betas\n\n`beta1` is 0.9.\n"
    start = text.index("## Betas")
    passage = SearchHit(text[start:], 1.0, "ml/adam.md", start, len(text), "Adam > Betas", 5, 1)
    view = View(*plain_view(passage.text))
    at = view.text.index("0.9")
    answer = _answer(passage, view, Span("0.9", at, at + 3, 1.0), 1.0)
    assert text[answer.start : answer.end] == "0.9"
    assert (answer.line, answer.column) == line_and_column(text, answer.start) == (7, 12)
    assert answer.to_dict()["line"] == 7

    unknown = SearchHit(passage.text, 1.0, "ml/adam.md", start, len(text), "")  # an old index
    assert _answer(unknown, view, Span("0.9", at, at + 3, 1.0), 1.0).line is None


def test_paths_and_links(tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    (notes / "ml").mkdir(parents=True)
    assert display_path(notes, "ml/adam.md", cwd=tmp_path) == "notes/ml/adam.md"
    assert display_path(notes, "ml/adam.md", cwd=tmp_path / "elsewhere") == str(
        notes / "ml" / "adam.md"
    )
    assert display_path(None, "ml/adam.md") == "ml/adam.md"
    links = source_links(notes, "ml/a b.md")
    assert links == {"uri": (notes / "ml" / "a b.md").as_uri()} and "%20" in links["uri"]
    assert source_links(None, "ml/a b.md") == {}

    (notes / ".obsidian").mkdir()  # the notes folder is a vault
    assert source_links(notes, "ml/a b.md")["obsidian_uri"] == (
        "obsidian://open?vault=notes&file=ml%2Fa%20b.md"
    )
    sub = notes / "ml"  # a folder inside a vault: the file named from the vault's root
    assert source_links(sub, "a b.md")["obsidian_uri"].endswith("&file=ml%2Fa%20b.md")
    assert obsidian_uri("My Vault&Co", "x?.md") == (
        "obsidian://open?vault=My%20Vault%26Co&file=x%3F.md"
    )
    record = with_links({"source": "ml/a b.md", "line": 3}, notes)
    assert record["line"] == 3 and record["uri"].startswith("file://")


def test_where_names_the_place_or_falls_back_to_offsets() -> None:
    assert where(None, "ml/adam.md", 41, 3, 1521, 1540) == "ml/adam.md:41:3"
    assert where(None, "ml/adam.md", None, None, 1521, 1540) == "ml/adam.md (characters 1521-1540)"


def test_search_and_ask_carry_lines_and_columns(tmp_path, tiny_embedder_dir, tiny_reader_dir):
    from rag.pipeline import NotesQA

    notes = tmp_path / "notes"
    notes.mkdir()
    files = {
        "ada.md": "# People\n\n## Ada\n\nAda Smithson was born in `Oslo` in 1850.\n\n"
        "She worked as a chemist.\n",
        "boris.txt": "Intro line.\r\n\r\nBoris Kirason was born in Lima in 1901.\r\n",
    }
    for name, text in files.items():
        (notes / name).write_bytes(text.encode())
    texts = {name: text.replace("\r\n", "\n") for name, text in files.items()}  # as indexed
    qa = NotesQA.open(notes, embedder=tiny_embedder_dir, reader=tiny_reader_dir)
    qa.index(progress=False)
    hits = qa.search("Where was Ada Smithson born?", k=4)
    assert hits
    for hit in hits:
        assert (hit.line, hit.column) == line_and_column(texts[hit.source], hit.start)
        assert hit.to_dict()["line"] == hit.line
    answers = qa.ask("Where was Ada Smithson born?", k=4, null_threshold=None, min_confidence=None)
    assert answers
    for answer in answers:
        assert (answer.line, answer.column) == line_and_column(texts[answer.source], answer.start)
    qa.close()
