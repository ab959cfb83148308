"""A plain-text view of Markdown for the reader, with a map back to the source characters.

The reader was trained on prose; heading marks, backticks, link syntax and LaTeX delimiters in a
student's notes end up inside its answers (``` `Adam` ```, ``[paper](http://…)``). ``plain_view``
*deletes* that markup and keeps everything else, so every character of the view is a character
of the source and ``offsets[i]`` says which: answers are read from the view and cited in the
source. Fenced code keeps its text verbatim (only the fence lines go), since a ``#`` there is a
comment, not a heading. Elsewhere a run of spaces inside a line reads as one space: the loader
blanks front matter and tool directives with spaces (``rag.vault``).

Example:
    >>> text, offsets = plain_view("## Adam\\nKeeps `m` and $v_t$, see [the paper](http://x).")
    >>> text
    'Adam\\nKeeps m and v_t, see the paper.'
    >>> "## Adam\\nKeeps `m`"[offsets[text.index("m and")]]
    'm'
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_SPACE_RUN = re.compile(r"(?<=\S) {2,}")  # "a  b" reads "a b"
# each pattern's groups: the parts to delete (the rest of the match is kept)
_INLINE_RULES = [
    re.compile(r"^(\s{0,3}#{1,6}\s+)"),  # heading marks
    re.compile(r"^(\s{0,3}>\s?)"),  # block quote marks
    re.compile(r"(!?\[\[)[^\]|\n]+(\|)[^\]\n]+(\]\])"),  # [[note|alias]]: the note's name goes
    re.compile(r"(!?\[\[)[^\]\n]+(\]\])"),  # [[note]]
    re.compile(r"(!?\[)[^\]\n]*(\]\([^)\n]*\))"),  # [text](url) and ![alt](url)
    re.compile(r"(`+)[^`\n]+?(\1)"),  # inline code
    re.compile(r"(\$\$)[^$]+?(\$\$)"),  # display math
    re.compile(r"(?<![\\$\w])(\$)(?=\S)[^$\n]+?(?<=\S)(\$)(?![\w$])"),  # inline math, not $5
    re.compile(r"(\\\(|\\\[)"),  # \( \[ math delimiters
    re.compile(r"(\\\)|\\\])"),  # \) \]
    re.compile(r"(\*\*|__)(?=\S)[^\n]+?(?<=\S)(\1)"),  # strong emphasis
    re.compile(r"(\\\\)"),  # a LaTeX or Markdown line break
    re.compile(r"(\\)[!-/:-@\[-`{-~]"),  # a Markdown backslash escape keeps its character
]


def _deleted(line: str) -> list[bool]:
    """Which characters of one (non-fenced) line are markup."""
    drop = [False] * len(line)
    for rule in _INLINE_RULES:
        for match in rule.finditer(line):
            groups = match.groups()
            for g in range(1, len(groups) + 1):
                start, end = match.span(g)
                if start < 0 or any(drop[start:end]):
                    continue
                for i in range(start, end):
                    drop[i] = True
    # a deleted alias separator takes the note's name with it: [[note|alias]] reads "alias"
    for match in re.finditer(r"\[\[([^\]|\n]+)\|", line):
        if drop[match.start()]:
            for i in range(match.start(1), match.end(1)):
                drop[i] = True
    # a run of spaces inside a line (blanked front matter, directives or wikilinks, rag.vault)
    # keeps one; the indentation at the start of a line stays
    for match in _SPACE_RUN.finditer(line):
        for i in range(match.start() + 1, match.end()):
            drop[i] = True
    return drop


def plain_view(markdown: str) -> tuple[str, list[int]]:
    """``(text, offsets)``: ``markdown`` without its markup, and the source index of each kept
    character (``len(offsets) == len(text)``, strictly increasing).

    Example:
        >>> plain_view("```python\\nx = 1  # one\\n```\\n")
        ('x = 1  # one\\n', [10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22])
    """
    out: list[str] = []
    offsets: list[int] = []
    position = 0
    in_fence = False
    for line in markdown.splitlines(keepends=True):
        if _FENCE.match(line):
            in_fence = not in_fence
            position += len(line)
            continue
        drop = [False] * len(line) if in_fence else _deleted(line)
        for i, ch in enumerate(line):
            if not drop[i]:
                out.append(ch)
                offsets.append(position + i)
        position += len(line)
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
