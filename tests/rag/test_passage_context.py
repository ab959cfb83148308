"""Passage context: the note title and heading path a passage is keyword-indexed with."""

from __future__ import annotations

import pytest

from rag.chunking import ChunkingConfig, chunk_document, whitespace_token_count
from rag.documents import Document
from rag.passage_context import clean_heading, keyword_text, note_title, passage_context


@pytest.mark.parametrize(
    ("heading", "clean"),
    [
        ("(**Implementation from Scratch**)", "Implementation from Scratch"),
        ("[**Concise Implementation**]", "Concise Implementation"),
        ("The `adam`  step", "The adam step"),
        ("snake_case stays", "snake_case stays"),
        ("__init__ of a module", "init of a module"),
        ("", ""),
    ],
)
def test_clean_heading_drops_markup_only(heading: str, clean: str) -> None:
    assert clean_heading(heading) == clean


def test_the_title_is_front_matter_else_the_file_name_and_is_not_repeated() -> None:
    assert note_title("ml/linear-regression.md") == "linear regression"
    assert note_title("x/my_notes.txt", "  Week  3 ") == "Week 3"
    assert passage_context("d2l/linear-regression.md", "", "Linear Regression > Basics") == (
        "Linear Regression > Basics"  # the H1 already says what the file name says
    )
    assert passage_context("d2l/mlp.md", "", "Multilayer Perceptrons") == (
        "mlp > Multilayer Perceptrons"
    )
    assert passage_context("a.md", "Optimisers", "") == "Optimisers"
    assert keyword_text("", "text") == "text"


def test_every_chunk_of_a_long_section_knows_its_heading_path() -> None:
    text = "# Adam\n\n## Implementation\n\n" + " ".join(f"w{i}." for i in range(60))
    doc = Document("ml/optim.md", text, "", 0.0, 0, title="Optimisers", tags=("ml",))
    chunks = chunk_document(doc, whitespace_token_count, ChunkingConfig(20, 5))
    assert len(chunks) > 2
    for chunk in chunks:
        assert chunk.context == "Optimisers > Adam > Implementation"
        assert chunk.keyword_text == f"{chunk.context}\n\n{chunk.text}"
        assert chunk.tags == ("ml",)
        assert text[chunk.start : chunk.end] == chunk.text  # offsets are the file's
