"""Chunking: exact offsets, full coverage, size limits, overlap and heading paths."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.chunking import (
    Chunk,
    ChunkingConfig,
    chunk_document,
    chunk_text,
    whitespace_token_count,
)
from rag.documents import Document

SMALL = ChunkingConfig(max_tokens=12, overlap_tokens=4)


def doc(text: str, path: str = "note.md") -> Document:
    return Document(path=path, text=text, sha256="", mtime=0.0, size=len(text))


def assert_exact_and_covering(text: str, spans: list[tuple[int, int]]) -> None:
    covered = [False] * len(text)
    for start, end in spans:
        piece = text[start:end]
        assert 0 <= start < end <= len(text)
        assert piece.strip() == piece and piece  # trimmed by offsets, never whitespace-only
        for i in range(start, end):
            covered[i] = True
    missed = [i for i, c in enumerate(text) if not c.isspace() and not covered[i]]
    assert missed == [], f"uncovered characters at {missed[:10]}"


LONG_NOTE = """# Optimisers

Gradient descent moves the weights against the gradient. The learning rate sets the step.

## Adam

Adam keeps two moving averages for every parameter. The first is an exponential moving average of
the gradient. The second is an exponential moving average of the squared gradient. The default
betas are 0.9 and 0.999. Bias correction divides by one minus beta to the power t. Adam works
well with little tuning. Many transformers are trained with AdamW, which decouples weight decay.

```python
# not a heading: inside a code fence
m = beta1 * m + (1 - beta1) * g
```

### Tips

- Warm up the learning rate.
- Clip gradients.

# Scheduling

Cosine decay is common.
"""


def test_chunks_are_exact_substrings_of_the_document() -> None:
    for c in chunk_document(doc(LONG_NOTE), whitespace_token_count, SMALL):
        assert isinstance(c, Chunk)
        assert c.text == LONG_NOTE[c.start : c.end]
        assert c.source == "note.md"


def test_coverage_of_every_non_whitespace_character() -> None:
    assert_exact_and_covering(LONG_NOTE, chunk_text(LONG_NOTE, whitespace_token_count, SMALL))


def test_chunks_respect_max_tokens() -> None:
    for cfg in (SMALL, ChunkingConfig(5, 2), ChunkingConfig(30, 10), ChunkingConfig(1, 0)):
        for start, end in chunk_text(LONG_NOTE, whitespace_token_count, cfg):
            n = whitespace_token_count(LONG_NOTE[start:end])
            assert n <= cfg.max_tokens, (cfg, LONG_NOTE[start:end])


def test_unsplittable_word_may_exceed_max_tokens() -> None:
    # With a character counter a long word cannot fit; it is kept whole, not cut.
    text = "short words " + "x" * 50 + " more words"
    spans = chunk_text(text, len, ChunkingConfig(max_tokens=20, overlap_tokens=0))
    assert "x" * 50 in [text[s:e] for s, e in spans]
    assert_exact_and_covering(text, spans)


def test_overlap_between_consecutive_chunks_of_a_long_section() -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(40))  # 5 words each
    cfg = ChunkingConfig(max_tokens=20, overlap_tokens=5)
    spans = chunk_text(text, whitespace_token_count, cfg)
    assert len(spans) > 3
    for (s1, e1), (s2, e2) in zip(spans, spans[1:], strict=False):
        assert s1 < s2 < e1 < e2  # the next chunk starts inside the previous one
        assert whitespace_token_count(text[s2:e1]) <= cfg.overlap_tokens
    assert_exact_and_covering(text, spans)


def test_no_overlap_when_disabled() -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(10))
    spans = chunk_text(text, whitespace_token_count, ChunkingConfig(10, 0))
    assert all(e1 <= s2 for (_, e1), (s2, _) in zip(spans, spans[1:], strict=False))


def test_word_windows_for_a_sentence_without_punctuation() -> None:
    text = " ".join(f"w{i}" for i in range(50))
    spans = chunk_text(text, whitespace_token_count, ChunkingConfig(10, 3))
    assert all(whitespace_token_count(text[s:e]) <= 10 for s, e in spans)
    assert_exact_and_covering(text, spans)


def test_heading_paths_for_nested_markdown_headings() -> None:
    chunks = chunk_document(doc(LONG_NOTE), whitespace_token_count, ChunkingConfig(200, 40))
    headings = [c.heading for c in chunks]
    assert headings == ["Optimisers", "Optimisers > Adam", "Optimisers > Adam > Tips", "Scheduling"]
    assert chunks[1].text.startswith("## Adam")


def test_heading_only_section_merges_into_its_subsection() -> None:
    text = "# Optimisers\n## Adam\n\nTwo averages.\n\n## SGD ##\n\nOne step.\n"
    chunks = chunk_document(doc(text), whitespace_token_count)
    assert [(c.heading, c.text.split("\n")[0]) for c in chunks] == [
        ("Optimisers > Adam", "# Optimisers"),
        ("Optimisers > SGD", "## SGD ##"),
    ]


def test_hash_inside_code_fence_is_not_a_heading() -> None:
    text = "# Real\n\n```bash\n# comment\n\nls\n```\n\n~~~\n## also code\n~~~\n\nafter\n"
    chunks = chunk_document(doc(text), whitespace_token_count)
    assert {c.heading for c in chunks} == {"Real"}
    assert len(chunks) == 1


def test_code_block_stays_intact_when_it_fits() -> None:
    code = "```python\ndef f(x):\n\n    return x\n```"
    text = "Intro words here.\n\n" + code + "\n\nOutro words here."
    spans = chunk_text(text, whitespace_token_count, ChunkingConfig(8, 0))
    assert code in [text[s:e] for s, e in spans]


def test_hashtag_and_txt_files_have_no_headings() -> None:
    assert chunk_document(doc("#hashtag text"), whitespace_token_count)[0].heading == ""
    (c,) = chunk_document(doc("# Not a heading in txt", "a.txt"), whitespace_token_count)
    assert c.heading == ""


def test_empty_and_whitespace_text() -> None:
    assert chunk_text("", whitespace_token_count) == []
    assert chunk_text(" \n\n\t ", whitespace_token_count) == []
    assert chunk_document(doc(""), whitespace_token_count) == []


def test_count_tokens_is_called_per_unit_not_per_character() -> None:
    calls: list[str] = []

    def counter(s: str) -> int:
        calls.append(s)
        return whitespace_token_count(s)

    chunk_text(LONG_NOTE, counter, ChunkingConfig(200, 40))
    assert len(calls) < 20


def test_bad_config() -> None:
    with pytest.raises(ValueError, match="overlap_tokens"):
        ChunkingConfig(max_tokens=10, overlap_tokens=10)
    with pytest.raises(ValueError, match="max_tokens"):
        ChunkingConfig(max_tokens=0, overlap_tokens=0)


_ALPHABET = st.sampled_from(list("ab #`~.!?-*\n\t ") + ["é", "😀", "\u00a0", "```", "## "])


@settings(max_examples=60, deadline=None)
@given(
    text=st.lists(_ALPHABET, max_size=120).map("".join) | st.text(max_size=200),
    max_tokens=st.integers(1, 12),
    overlap=st.integers(0, 11),
    markdown=st.booleans(),
)
def test_property_exact_substrings_and_full_coverage(
    text: str, max_tokens: int, overlap: int, markdown: bool
) -> None:
    cfg = ChunkingConfig(max_tokens, min(overlap, max_tokens - 1))
    spans = chunk_text(text, whitespace_token_count, cfg, markdown=markdown)
    assert_exact_and_covering(text, spans)
    for s, e in spans:
        piece = text[s:e]
        assert whitespace_token_count(piece) <= max_tokens or len(piece.split()) == 1
