"""Split a document into passages that fit a model window, with exact character offsets.

The algorithm, top to bottom:

1. **Blocks.** Scan the text line by line. In Markdown a block is an ATX heading line
   (``#`` .. ``######`` followed by a space, at most three spaces of indent, not inside a
   fenced code block), a fenced code block (blank lines inside stay in it), or a paragraph
   (consecutive non-blank lines). Plain text has paragraphs only.
2. **Sections.** A heading starts a new section; its heading path ("Optimisers > Adam") is the
   ``heading`` of every chunk that starts in it. A section holding nothing but its heading line
   is merged into the next section when that one is a sub-section, so ``# A`` directly followed
   by ``## B`` does not become a chunk of its own.
3. **Units.** Each block is a unit. A unit over ``max_tokens`` is split into sentences (code
   blocks: into lines), and a sentence still over ``max_tokens`` into single words. A single
   word longer than ``max_tokens`` is kept whole: it cannot be split without cutting it.
4. **Packing.** Consecutive units of a section are packed greedily up to ``max_tokens``; the
   next chunk starts with the trailing units of the previous one that total at most
   ``overlap_tokens``. Sections never share a chunk or an overlap.

Offsets are exact: every chunk is ``text[start:end]``, whitespace is trimmed by moving the
offsets, never by rewriting text. Every non-whitespace character lands in at least one chunk.
``count_tokens`` is called once per unit (not per chunk or character), and a chunk's size is the
sum of its units' counts, which is exact for tokenizers that split at whitespace first (BERT's
WordPiece, the whitespace counter used in tests).

Example::

    >>> text = "# Optimisers\\n\\n## Adam\\n\\nAdam keeps two moving averages."
    >>> chunk_text(text, whitespace_token_count)
    [(0, 54)]
    >>> chunk_text("one two three. four five six.", whitespace_token_count,
    ...            ChunkingConfig(max_tokens=3, overlap_tokens=0))
    [(0, 14), (15, 29)]
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from rag.documents import Document
from rag.locations import line_starts, position
from rag.passage_context import keyword_text, passage_context

MARKDOWN_EXTENSIONS = (".md", ".markdown")

# ATX heading: up to 3 spaces of indent, 1-6 '#', then a space/tab or the end of the line
# ("#hashtag" is not a heading). Group 2 is the title with an optional closing '#' run.
_HEADING_RE = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*$")
_CLOSING_HASHES_RE = re.compile(r"(?:^|[ \t]+)#+$")
_FENCE_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
# Split points between sentences (only whitespace is consumed, so no character is lost):
# after . ! ? or … (optionally followed by closing quotes/brackets), or before a list item.
_SENTENCE_SPLIT_RE = re.compile(
    r"(?:(?<=[.!?…])|(?<=[.!?…][\"'”’)\]]))\s+|\n(?=[ \t]*(?:[-*+]|\d+[.)])[ \t])"
)
_LINE_SPLIT_RE = re.compile(r"\n")
_WORD_RE = re.compile(r"\S+")


@dataclass(frozen=True)
class Chunk:
    """A passage of one document: ``text == document.text[start:end]``."""

    source: str  # Document.path
    start: int  # char offset in Document.text
    end: int  # exclusive
    text: str
    heading: str  # heading path of the section the chunk starts in, "" if none
    # 1-based line and column of ``start`` in the document (``rag.locations``); None when unknown
    # (an index written before they were stored). Not compared: they follow from ``start``.
    line: int | None = field(default=None, compare=False)
    column: int | None = field(default=None, compare=False)
    # Note title and heading path put before the text in the keyword index
    # (``rag.passage_context``), and the note's tags (front matter and inline ``#tags``); both
    # follow from the document, so they are not compared either.
    context: str = field(default="", compare=False)
    tags: tuple[str, ...] = field(default=(), compare=False)

    @property
    def keyword_text(self) -> str:
        """What the keyword index sees: ``context``, a blank line, ``text``."""
        return keyword_text(self.context, self.text)


@dataclass(frozen=True)
class ChunkingConfig:
    """Passage size in model tokens; overlap is shared with the previous chunk of a section."""

    max_tokens: int = 200
    overlap_tokens: int = 40

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if not 0 <= self.overlap_tokens < self.max_tokens:
            raise ValueError(
                f"overlap_tokens must be >= 0 and < max_tokens={self.max_tokens}, got "
                f"{self.overlap_tokens}; lower overlap_tokens or raise max_tokens"
            )


def whitespace_token_count(text: str) -> int:
    """Count whitespace-separated words: a cheap stand-in for a real tokenizer in tests.

    Example::

        >>> whitespace_token_count("  Adam keeps\\ntwo moving averages ")
        5
    """
    return len(text.split())


@dataclass(frozen=True)
class _Block:
    start: int  # first char of the first line
    end: int  # end of the last line (before its "\n")
    kind: str  # "heading" | "code" | "text"
    level: int = 0  # heading level, 0 for other blocks
    title: str = ""


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    tokens: int


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    """Move ``start``/``end`` inwards past whitespace; ``start == end`` if nothing is left."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of each "\\n"-separated line, end excluding the newline.

    Example: ``_lines("ab\\n\\nc")`` -> ``[(0, 2), (3, 3), (4, 5)]``
    """
    spans, pos = [], 0
    while True:
        nl = text.find("\n", pos)
        if nl < 0:
            spans.append((pos, len(text)))
            return spans
        spans.append((pos, nl))
        pos = nl + 1


def _blocks(text: str, markdown: bool) -> list[_Block]:
    """Cut ``text`` into heading, fenced-code and paragraph blocks (see module docstring)."""
    blocks: list[_Block] = []
    para_start = para_end = -1  # the paragraph being collected, -1 when none
    fence: tuple[str, int, int] | None = None  # (char, length, start) of an open code fence

    def flush_paragraph() -> None:
        nonlocal para_start
        if para_start >= 0:
            blocks.append(_Block(para_start, para_end, "text"))
            para_start = -1

    for start, end in _lines(text):
        line = text[start:end]
        if fence is not None:
            # Inside a fence, only a closing fence (same char, at least as long) matters.
            stripped = line.strip()
            char, length, fence_start = fence
            if stripped and set(stripped) == {char} and len(stripped) >= length:
                if len(line) - len(line.lstrip(" ")) <= 3:
                    blocks.append(_Block(fence_start, end, "code"))
                    fence = None
            continue
        if markdown and (m := _FENCE_RE.match(line)):
            flush_paragraph()
            fence = (m.group(1)[0], len(m.group(1)), start)
            continue
        if markdown and (m := _HEADING_RE.match(line)):
            flush_paragraph()
            title = _CLOSING_HASHES_RE.sub("", (m.group(2) or "").strip()).strip()
            blocks.append(_Block(start, end, "heading", len(m.group(1)), title))
            continue
        if not line.strip():
            flush_paragraph()
            continue
        if para_start < 0:
            para_start = start
        para_end = end
    flush_paragraph()
    if fence is not None:  # an unclosed fence runs to the end of the text (as in CommonMark)
        blocks.append(_Block(fence[2], len(text), "code"))
    return blocks


def _sections(blocks: list[_Block]) -> list[tuple[str, list[_Block]]]:
    """Group blocks into ``(heading path, blocks)`` sections, one per heading."""
    sections: list[tuple[int, str, list[_Block]]] = []  # (level, path, blocks)
    stack: list[tuple[int, str]] = []  # open headings (level, title)
    for block in blocks:
        if block.kind == "heading":
            while stack and stack[-1][0] >= block.level:
                stack.pop()
            stack.append((block.level, block.title))
            path = " > ".join(title for _, title in stack if title)
            sections.append((block.level, path, [block]))
        elif sections:
            sections[-1][2].append(block)
        else:
            sections.append((0, "", [block]))  # text before the first heading
    # Merge a heading-only section into the sub-section right after it.
    merged: list[tuple[int, str, list[_Block]]] = []
    pending: list[_Block] = []
    for i, (level, path, section_blocks) in enumerate(sections):
        section_blocks = pending + section_blocks
        pending = []
        heading_only = all(b.kind == "heading" for b in section_blocks)
        next_level = sections[i + 1][0] if i + 1 < len(sections) else 0
        if heading_only and next_level > level:
            pending = section_blocks
            continue
        merged.append((level, path, section_blocks))
    return [(path, section_blocks) for _, path, section_blocks in merged]


def _pieces(text: str, start: int, end: int, split_re: re.Pattern[str]) -> list[tuple[int, int]]:
    """Non-empty stripped spans of ``text[start:end]`` between matches of ``split_re``."""
    spans, pos = [], start
    for m in split_re.finditer(text, start, end):
        spans.append(_strip(text, pos, m.start()))
        pos = m.end()
    spans.append(_strip(text, pos, end))
    return [(s, e) for s, e in spans if s < e]


def _units(
    text: str, block: _Block, count_tokens: Callable[[str], int], max_tokens: int
) -> list[_Unit]:
    """A block as one unit, or as sentences/lines, or as words when it is too long."""
    start, end = _strip(text, block.start, block.end)
    if start == end:
        return []
    n = count_tokens(text[start:end])
    if n <= max_tokens:
        return [_Unit(start, end, n)]
    split_re = _LINE_SPLIT_RE if block.kind == "code" else _SENTENCE_SPLIT_RE
    units: list[_Unit] = []
    for s, e in _pieces(text, start, end, split_re):
        n = count_tokens(text[s:e])
        if n <= max_tokens:
            units.append(_Unit(s, e, n))
            continue
        # Word windows: each word is a unit, packing below rebuilds windows of max_tokens.
        for m in _WORD_RE.finditer(text, s, e):
            units.append(_Unit(m.start(), m.end(), count_tokens(m.group())))
    return units


def _pack(units: list[_Unit], max_tokens: int, overlap_tokens: int) -> list[tuple[int, int]]:
    """Greedily pack units into chunks of <= max_tokens with an overlap of trailing units.

    Example (tokens per unit 2, 2, 2, 2; max 4, overlap 2)::

        chunk 1 = units 0-1, chunk 2 = units 1-2, chunk 3 = units 2-3
    """
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(units):
        j, total = i, 0
        # Always take at least one unit (an unsplittable word may exceed max_tokens alone).
        while j < len(units) and (j == i or total + units[j].tokens <= max_tokens):
            total += units[j].tokens
            j += 1
        spans.append((units[i].start, units[j - 1].end))
        if j == len(units):
            break
        # Carry trailing units into the next chunk while they fit the overlap budget and still
        # leave room for the next new unit; k > i guarantees progress.
        k, carried = j, 0
        while (
            k - 1 > i
            and carried + units[k - 1].tokens <= overlap_tokens
            and carried + units[k - 1].tokens + units[j].tokens <= max_tokens
        ):
            k -= 1
            carried += units[k].tokens
        i = k
    return spans


def _chunk_spans(
    text: str, count_tokens: Callable[[str], int], cfg: ChunkingConfig, markdown: bool
) -> list[tuple[int, int, str]]:
    spans: list[tuple[int, int, str]] = []
    for heading, blocks in _sections(_blocks(text, markdown)):
        units = [u for b in blocks for u in _units(text, b, count_tokens, cfg.max_tokens)]
        spans.extend((s, e, heading) for s, e in _pack(units, cfg.max_tokens, cfg.overlap_tokens))
    return spans


def chunk_text(
    text: str,
    count_tokens: Callable[[str], int],
    cfg: ChunkingConfig = ChunkingConfig(),
    *,
    markdown: bool = True,
) -> list[tuple[int, int]]:
    """Split ``text`` into ``(start, end)`` spans, each ``text[start:end]`` one chunk.

    ``markdown=False`` treats the text as plain (no headings, no code fences).

    Example::

        >>> chunk_text("a b. c d. e f.", whitespace_token_count, ChunkingConfig(4, 2))
        [(0, 9), (5, 14)]
        >>> chunk_text("   \\n", whitespace_token_count)
        []
    """
    return [(s, e) for s, e, _ in _chunk_spans(text, count_tokens, cfg, markdown)]


def chunk_document(
    doc: Document,
    count_tokens: Callable[[str], int],
    cfg: ChunkingConfig = ChunkingConfig(),
) -> list[Chunk]:
    """Chunk one document; ``.md``/``.markdown`` files get heading-aware sections, and every
    chunk the ``line`` and ``column`` of its start, its context (``rag.passage_context``) and
    the note's tags.

    Example::

        >>> doc = Document("ml/adam.md", "# Adam\\n\\nTwo averages.\\n", "", 0.0, 0, tags=("ml",))
        >>> chunk_document(doc, whitespace_token_count)
        [Chunk(source='ml/adam.md', start=0, end=21, text='# Adam\\n\\nTwo averages.', heading='Adam', line=1, column=1, context='Adam', tags=('ml',))]
    """
    markdown = doc.path.lower().endswith(MARKDOWN_EXTENSIONS)
    starts = line_starts(doc.text)
    return [
        Chunk(
            doc.path,
            s,
            e,
            doc.text[s:e],
            heading,
            *position(starts, s),
            context=passage_context(doc.path, doc.title, heading),
            tags=doc.tags,
        )
        for s, e, heading in _chunk_spans(doc.text, count_tokens, cfg, markdown)
    ]
