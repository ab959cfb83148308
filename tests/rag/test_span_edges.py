"""Span edges: the fact fixture (every line's answer survives the view and the edge logic) and
the rules one at a time, including where they must not widen a span."""

from __future__ import annotations

from collections import Counter

import pytest
from tokenizers import Tokenizer

from models import default_model_path
from rag.plaintext import plain_view, source_span
from rag.span_edges import (
    answer_edges,
    is_punctuation,
    keep_edges,
    trim_edges,
    well_formed,
)
from tests.rag.fixtures.fact_lines import FACT_LINES


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.from_file(str(default_model_path("reader") / "tokenizer.json"))


def token_span(tokenizer: Tokenizer, text: str, start: int, end: int) -> tuple[int, int]:
    """The character span of the tokens of ``text`` that overlap ``[start, end)``."""
    offsets = [o for o in tokenizer.encode(text).offsets if o[1] > o[0]]
    inside = [(a, b) for a, b in offsets if a < end and b > start]
    return inside[0][0], inside[-1][1]


def core_span(tokenizer: Tokenizer, text: str, start: int, end: int) -> tuple[int, int]:
    """The tokens of ``[start, end)`` without the punctuation tokens at its edges and the
    ``##`` pieces at its end (never all of them): the span a reader picks around a fact."""
    encoding = tokenizer.encode(text)
    tokens = [
        (a, b, piece)
        for (a, b), piece in zip(encoding.offsets, encoding.tokens, strict=True)
        if b > a and a < end and b > start
    ]
    while (
        len(tokens) > 1 and tokens[0][1] - tokens[0][0] == 1 and is_punctuation(text[tokens[0][0]])
    ):
        tokens.pop(0)
    while len(tokens) > 1 and (
        tokens[-1][2].startswith("##")
        or (tokens[-1][1] - tokens[-1][0] == 1 and is_punctuation(text[tokens[-1][0]]))
    ):
        tokens.pop()
    return tokens[0][0], tokens[-1][1]


def test_the_fixture_has_sixty_lines_of_several_kinds():
    kinds = Counter(row[0] for row in FACT_LINES)
    assert len(FACT_LINES) >= 60
    assert {"shell", "python", "math", "chemistry", "prices", "windows"} <= set(kinds)
    assert min(kinds.values()) >= 5


@pytest.mark.parametrize("row", FACT_LINES, ids=[f"{r[0]}-{i}" for i, r in enumerate(FACT_LINES)])
def test_every_fact_survives_the_view_and_the_edges(row, tokenizer):
    kind, markdown, answer = row[:3]
    text, offsets = plain_view(markdown)
    # the plain view keeps the answer's characters
    assert answer in text, (text, answer)
    start = text.index(answer)
    end = start + len(answer)
    # ... and they map back to the same characters of the note
    s, e = source_span(offsets, start, end)
    assert "".join(markdown[o] for o in offsets if s <= o < e) == answer
    # the whole answer's tokens, and the span a reader picks around the fact, give the answer
    assert token_span(tokenizer, text, start, end) == (start, end), "tokens cut the answer"
    assert text[slice(*answer_edges(text, start, end))] == answer
    if len(row) == 4:
        core = text.index(row[3], start)
        core_start, core_end = core, core + len(row[3])
    else:
        core_start, core_end = core_span(tokenizer, text, start, end)
    picked = text[core_start:core_end]
    assert text[slice(*answer_edges(text, core_start, core_end))] == answer, picked


@pytest.mark.parametrize(
    "text, piece, expected",
    [
        ("pages 3-4 of the book", "4", "4"),  # a range, not a negative number
        ("a well-known result", "known", "known"),  # a hyphenated word, not a flag
        ("it took 10 ms in all", "10", "10"),  # a unit after a space is not attached
        ("teachers and/or students", "or", "or"),  # a slash between words is not a path
        ("TCP/IP is a protocol family", "IP", "IP"),
        ("the *important* part", "important", "important"),  # emphasis, not *args
        ("1990–1995 was the decade", "1995", "1995"),  # an en dash is a range
        ("the sum 1+2 is 3", "1", "1"),  # + between numbers is not C++
        ("Japanese imports rose", "Japan", "Japanese"),  # WordPiece cut a word
        ("it costs 1,350 in all", "350", "1,350"),
    ],
)
def test_edges_widen_only_what_belongs_to_the_token(text, piece, expected):
    start = text.index(piece)
    assert text[slice(*keep_edges(text, start, start + len(piece)))] == expected


def test_edges_never_cross_a_line_break():
    text = "-\n20 and $\n? and C:\\\nUsers"
    for piece in ("20", "?", "Users"):
        start = text.index(piece)
        assert keep_edges(text, start, start + len(piece)) == (start, start + len(piece))


def test_keep_edges_refuses_a_span_outside_the_text():
    with pytest.raises(ValueError, match="not inside a text of 3"):
        keep_edges("abc", 2, 5)


@pytest.mark.parametrize(
    "text, span, expected",
    [
        ("It was in 1989. Then", "in 1989.", "in 1989"),
        ("a tensor (from the lab sheet", "(from the lab", "from the lab"),
        ('he said "hello', '"hello', "hello"),
        ("see (the paper) here", "(the paper)", "(the paper)"),  # balanced: kept
        ("x, y and z", ", y and", "y and"),
        ("?", "?", "?"),  # nothing would be left: the span itself
    ],
)
def test_trim_takes_off_a_sentences_punctuation(text, span, expected):
    start = text.index(span)
    assert text[slice(*trim_edges(text, start, start + len(span)))] == expected


def test_the_exit_status_variable_keeps_its_question_mark():
    text = "Is it $? or $!?"
    start = text.index("$?")
    assert text[slice(*answer_edges(text, start, start + 2))] == "$?"
    start = text.index("$!")
    assert text[slice(*answer_edges(text, start, start + 3))] == "$!"


def test_well_formed_spans_close_their_brackets():
    text = "the answer is tensor (from the lab sheet, p. 2) and ${HOME} too"
    assert not well_formed(text, text.index("tensor"), text.index(", p."))
    assert well_formed(text, text.index("tensor"), text.index(")") + 1)
    assert well_formed(text, text.index("HOME"), text.index("HOME") + 4)  # ${HOME} once widened
