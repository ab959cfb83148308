"""A plain-text view of Markdown for the reader, with a map back to the source characters.

The reader was trained on prose; heading marks, backticks, link syntax and LaTeX delimiters in a
student's notes end up inside its answers (``` `Adam` ```, ``[paper](http://…)``). ``plain_view``
*deletes* that markup and keeps everything else, so every character of the view is a character
of the source and ``offsets[i]`` says which: answers are read from the view and cited in the
source. Code reaches the reader verbatim: fenced code loses only its fence lines (a ``#`` there
is a comment, not a heading) and an inline code span only its backticks (``$?``, ``__init__``,
``\\\\server`` and runs of spaces inside it stay). Elsewhere a run of spaces inside a line reads
as one space: the loader blanks front matter and tool directives with spaces (``rag.vault``).

``$`` is math only where pandoc's ``tex_math_dollars`` (and markdown-it's dollarmath) say so: an
opening ``$`` is followed by a non-space, the closing one is the next ``$``, preceded by a
non-space and not followed by a digit; here also not preceded/followed by a letter or digit (so
``$HOME/bin:$PATH`` stays). Nothing inside backticks is math; ``$$...$$`` is display math and may
span lines of one paragraph. So a price (``$5 and $10``), a shell prompt (``$ ls``) and shell
variables (``$?``, ``$HOME``) stay in the view.

Example:
    >>> text, offsets = plain_view("## Adam\\nKeeps `m` and $v_t$, see [the paper](http://x).")
    >>> text
    'Adam\\nKeeps m and v_t, see the paper.'
    >>> "## Adam\\nKeeps `m`"[offsets[text.index("m and")]]
    'm'
    >>> plain_view("Exit status: `$?`; costs $5 to $10; $x$ is math.")[0]
    'Exit status: $?; costs $5 to $10; x is math.'
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_FENCE_CLOSE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*$")
_BLANK = re.compile(r"^\s*$")
_TICKS = re.compile(r"`+")
_DISPLAY = re.compile(r"\$\$")
_SPACE_RUN = re.compile(r"(?<=\S) {2,}")  # "a  b" reads "a b"
_MASK = "\x00"  # stands for a code character while the markup rules run: no rule matches it
# each pattern's groups: the parts to delete (the rest of the match is kept); code spans and
# math are found by the scanners below, not by these
_INLINE_RULES = [
    re.compile(r"^(\s{0,3}#{1,6}\s+)"),  # heading marks
    re.compile(r"^(\s{0,3}>\s?)"),  # block quote marks
    # (no "[" inside a name or a link's text: "[[[[..." would take quadratic time)
    re.compile(r"(!?\[\[)[^\[\]|\n]+(\|)[^\[\]\n]+(\]\])"),  # [[note|alias]]: the name goes
    re.compile(r"(!?\[\[)[^\[\]\n]+(\]\])"),  # [[note]]
    re.compile(r"(!?\[)[^\[\]\n]*(\]\([^)\n]*\))"),  # [text](url) and ![alt](url)
    re.compile(r"(\\\(|\\\[)"),  # \( \[ math delimiters
    re.compile(r"(\\\)|\\\])"),  # \) \]
    re.compile(r"(\*\*|__)(?=\S)[^\n]+?(?<=\S)(\1)"),  # strong emphasis
    re.compile(r"(\\\\)(?!\w)"),  # a LaTeX or Markdown line break (not \\server: a path)
    re.compile(r"(?<!\\)(\\)(?!\\\w)[!-/:-@\[-`{-~]"),  # a backslash escape keeps its character
]


@dataclass
class _Line:
    """One source line and what the scanners found in it (indices in the line)."""

    text: str
    start: int  # index of the line's first character in the whole text
    fenced: bool = False  # a line of fenced code (kept verbatim) or a fence line (dropped)
    fence_mark: bool = False
    drop: list[bool] = field(default_factory=list)
    code: list[bool] = field(default_factory=list)  # inside an inline code span (verbatim)
    math: list[bool] = field(default_factory=list)  # inside display math: no inline $ there


def code_spans(line: str) -> list[tuple[int, int, int]]:
    """``(open, content_start, content_end)`` of each inline code span of one line, by
    CommonMark's rule: a run of N backticks opens, the next run of exactly N closes, an unmatched
    run is literal; ``\\``` is a literal backtick. The closing run is
    ``line[content_end:content_end + content_start - open]``.

    Example:
        >>> code_spans("run `ls -l` or ``a ` b`` and ` alone")
        [(4, 5, 10), (15, 17, 22)]
    """
    runs = [(m.start(), m.end()) for m in _TICKS.finditer(line)]
    by_length: dict[int, list[int]] = {}
    for index, (a, b) in enumerate(runs):
        by_length.setdefault(b - a, []).append(index)
    spans = []
    index = 0
    while index < len(runs):
        a, b = runs[index]
        if a > 0 and line[a - 1] == "\\":  # an escaped backtick is text; the rest may open
            a += 1
        later = by_length.get(b - a, [])
        after = bisect_right(later, index)
        if b > a and after < len(later):
            close = later[after]
            spans.append((a, b, runs[close][0]))
            index = close + 1
        else:
            index += 1
    return spans


def _scan_lines(markdown: str) -> list[_Line]:
    """Split into lines; mark fences (a closing fence: the same character, at least as long) and
    inline code spans."""
    lines = []
    position = 0
    fence = ""  # the open fence's run of backticks or tildes
    for raw in markdown.splitlines(keepends=True):
        line = _Line(raw, position)
        position += len(raw)
        lines.append(line)
        opening = _FENCE.match(raw)
        closing = _FENCE_CLOSE.match(raw)
        if fence:
            line.fenced = True
            run = closing.group(1) if closing else ""
            if run[:1] == fence[:1] and len(run) >= len(fence):
                line.fence_mark, fence = True, ""
            continue
        if opening and not (opening.group(1)[0] == "`" and "`" in raw[opening.end() :]):
            line.fenced = line.fence_mark = True
            fence = opening.group(1)
            continue
        line.drop = [False] * len(raw)
        line.code = [False] * len(raw)
        line.math = [False] * len(raw)
        for opened, content, closed in code_spans(raw):
            ticks = content - opened
            for i in range(opened, content):
                line.drop[i] = True
            for i in range(closed, closed + ticks):
                line.drop[i] = True
            for i in range(content, closed):
                line.code[i] = True
    return lines


def _display_math(lines: list[_Line]) -> None:
    """Delete the ``$$`` pairs of each paragraph (outside code) and mark what they enclose."""
    opened: tuple[int, int] | None = None  # (line number, index) of an unpaired $$
    for number, line in enumerate(lines):
        if line.fenced or _BLANK.match(line.text):
            opened = None  # display math does not run over a paragraph's end
            continue
        for match in _DISPLAY.finditer(line.text):
            i = match.start()
            if line.code[i] or line.code[i + 1] or (i > 0 and line.text[i - 1] == "\\"):
                continue
            if opened is None:
                opened = (number, i)
                continue
            first_number, j = opened
            first = lines[first_number]
            first.drop[j] = first.drop[j + 1] = line.drop[i] = line.drop[i + 1] = True
            for inside in lines[first_number : number + 1]:
                low = j + 2 if inside is first else 0
                high = i if inside is line else len(inside.text)
                for k in range(low, high):
                    inside.math[k] = True
            opened = None


def _inline_math(line: _Line) -> None:
    """Delete the ``$`` pairs of inline math in one line (pandoc's rules, see the module)."""
    text = line.text
    dollars = [
        i
        for i, ch in enumerate(text)
        if ch == "$"
        and not (line.code[i] or line.math[i] or line.drop[i])
        and not (i > 0 and text[i - 1] in "\\$")
        and not (i + 1 < len(text) and text[i + 1] == "$")
    ]
    k = 0
    while k + 1 < len(dollars):
        o, c = dollars[k], dollars[k + 1]
        opens = not text[o + 1].isspace() and not (o > 0 and text[o - 1].isalnum())
        closes = (
            c > o + 1
            and not text[c - 1].isspace()
            and not (c + 1 < len(text) and (text[c + 1].isalnum() or text[c + 1] == "_"))
            and not any(line.code[o:c])
        )
        if opens and closes:
            line.drop[o] = line.drop[c] = True
            k += 2
        else:
            k += 1


def _markup_rules(line: _Line) -> None:
    """Delete the markup the regular rules find, and runs of spaces, outside code."""
    text = line.text
    masked = "".join(_MASK if line.code[i] else ch for i, ch in enumerate(text))
    drop = line.drop
    for rule in _INLINE_RULES:
        for match in rule.finditer(masked):
            for g in range(1, len(match.groups()) + 1):
                start, end = match.span(g)
                if start < 0 or any(drop[start:end]):
                    continue
                for i in range(start, end):
                    drop[i] = True
    # a deleted alias separator takes the note's name with it: [[note|alias]] reads "alias"
    for match in re.finditer(r"\[\[([^\[\]|\n]+)\|", masked):
        if drop[match.start()]:
            for i in range(match.start(1), match.end(1)):
                drop[i] = True
    # a run of spaces inside a line (blanked front matter, directives or wikilinks, rag.vault)
    # keeps one; the indentation at the start of a line and code keep theirs
    for match in _SPACE_RUN.finditer(masked):
        for i in range(match.start() + 1, match.end()):
            drop[i] = True


def plain_view(markdown: str) -> tuple[str, list[int]]:
    """``(text, offsets)``: ``markdown`` without its markup, and the source index of each kept
    character (``len(offsets) == len(text)``, strictly increasing).

    Example:
        >>> plain_view("```python\\nx = 1  # one\\n```\\n")
        ('x = 1  # one\\n', [10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22])
        >>> plain_view("$$\\nE = mc^2\\n$$\\nRun `echo  $HOME` at the $ prompt.")[0]
        '\\nE = mc^2\\n\\nRun echo  $HOME at the $ prompt.'
    """
    lines = _scan_lines(markdown)
    _display_math(lines)
    out: list[str] = []
    offsets: list[int] = []
    for line in lines:
        if line.fence_mark:
            continue
        if not line.fenced:
            _inline_math(line)
            _markup_rules(line)
        for i, ch in enumerate(line.text):
            if line.fenced or not line.drop[i]:
                out.append(ch)
                offsets.append(line.start + i)
    return "".join(out), offsets


def source_span(offsets: list[int], start: int, end: int) -> tuple[int, int]:
    """The source characters ``[start, end)`` of the view cover: from the first one's source
    index to just after the last one's.

    Example:
        >>> source_span([2, 3, 7, 8], 1, 3)
        (3, 8)
    """
    if not offsets or not 0 <= start < end <= len(offsets):
        raise ValueError(f"span {start}:{end} is not inside a view of {len(offsets)} characters")
    return offsets[start], offsets[end - 1] + 1


def is_markdown(path: str) -> bool:
    return path.lower().endswith((".md", ".markdown"))
