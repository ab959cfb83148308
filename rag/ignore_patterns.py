"""Compiled lines of ignore files (gitignore syntax) for ``rag.ignore``: each path segment is
matched by placing the pieces between ``*`` leftmost (no backtracking), ``**`` by a set of states
over the segments, so matching is linear in the pattern and the path.

Example:
    >>> _Pattern.parse(0, "drafts/").dir_only, _Glob.compile("*.md").match("week1.md")
    (True, True)
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

MAX_PATTERN_CHARS = 4096  # git's own limit on a path; a longer line is left out with a warning

_POSIX_CLASSES = {  # git matches these in the C locale
    "alnum": "a-zA-Z0-9",
    "alpha": "a-zA-Z",
    "blank": " \\t",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "\\x21-\\x7e",
    "lower": "a-z",
    "print": "\\x20-\\x7e",
    "punct": "".join(re.escape(c) for c in string.punctuation),
    "space": " \\t\\n\\r\\f\\v",
    "upper": "A-Z",
    "xdigit": "0-9A-Fa-f",
}


class BadPattern(ValueError):
    """An ignore line that is no pattern; the message says why (``bad character range z-a``)."""


@dataclass(frozen=True)
class _Piece:
    """A run of one-character atoms between two ``*``: a literal, or a regular expression of
    fixed width without quantifiers (so a search costs at most its width per position)."""

    width: int
    literal: str | None
    regex: re.Pattern | None

    def at(self, name: str, pos: int) -> bool:
        if self.literal is not None:
            return name.startswith(self.literal, pos)
        return self.regex.match(name, pos) is not None

    def find(self, name: str, pos: int, end: int) -> int:
        """The end of the leftmost occurrence inside ``name[pos:end]``, or -1."""
        if self.literal is not None:
            found = name.find(self.literal, pos, end)
            return -1 if found < 0 else found + self.width
        match = self.regex.search(name, pos, end)
        return -1 if match is None else match.end()


@dataclass(frozen=True)
class _Glob:
    """One path segment of a pattern (``*.md``, ``lecture-?``), without ``/``.

    Example:
        >>> _Glob.compile("a*a*b").match("a" * 200 + "b"), _Glob.compile("[!x]?").match("ab")
        (True, True)
    """

    pieces: tuple[_Piece, ...]  # split at "*": one piece means no star
    plain: tuple[str, ...] | None = None  # the pieces, when all are literal (fast paths)

    @staticmethod
    def compile(glob: str) -> _Glob:
        """The glob of one segment, or :class:`BadPattern`."""
        pieces: list[list[tuple[str, str | None]]] = [[]]  # (regex, character or None) atoms
        i, star = 0, False
        while i < len(glob):
            char = glob[i]
            if char == "*":
                if not star:  # "**" inside a segment is one "*"
                    pieces.append([])
                star, i = True, i + 1
                continue
            star = False
            if char == "\\":
                if i + 1 == len(glob):
                    raise BadPattern("a trailing backslash escapes nothing")
                pieces[-1].append((re.escape(glob[i + 1]), glob[i + 1]))
                i += 2
            elif char == "?":
                pieces[-1].append((".", None))
                i += 1
            elif char == "[":
                atom, i = _char_class(glob, i)
                pieces[-1].append((atom, None))
            else:
                pieces[-1].append((re.escape(char), char))
                i += 1
        out = []
        for atoms in pieces:
            if all(char is not None for _, char in atoms):
                out.append(_Piece(len(atoms), "".join(char for _, char in atoms), None))
            else:
                regex = re.compile("".join(atom for atom, _ in atoms), re.DOTALL)
                out.append(_Piece(len(atoms), None, regex))
        literal = all(piece.literal is not None for piece in out)
        return _Glob(tuple(out), tuple(p.literal for p in out) if literal else None)

    def match(self, name: str) -> bool:
        """Whether ``name`` (one path segment) matches: the first and last pieces are pinned to
        its ends, the others placed leftmost in order, which is right because a ``*`` between
        two pieces takes whatever lies between them."""
        plain = self.plain
        if plain is not None and len(plain) <= 2:  # "name", "*.md", "draft*", "a*b"
            if len(plain) == 1:
                return name == plain[0]
            head, tail = plain
            return (
                len(name) >= len(head) + len(tail) and name.startswith(head) and name.endswith(tail)
            )
        first, last = self.pieces[0], self.pieces[-1]
        if len(self.pieces) == 1:
            return len(name) == first.width and first.at(name, 0)
        end = len(name) - last.width
        if end < first.width or not first.at(name, 0) or not last.at(name, end):
            return False
        pos = first.width
        for piece in self.pieces[1:-1]:
            pos = piece.find(name, pos, end) if piece.width else pos
            if pos < 0:
                return False
        return True


def _char_class(glob: str, i: int) -> tuple[str, int]:
    """The regular expression of the ``[...]`` at ``glob[i]``, and the index after it."""
    j, items = i + 1, []
    negate = j < len(glob) and glob[j] in "!^"
    j += negate
    first = True
    while True:
        if j >= len(glob):
            raise BadPattern("'[' is never closed")
        char = glob[j]
        if char == "]" and not first:
            break
        first = False
        if glob.startswith("[:", j) and (end := glob.find(":]", j + 2)) >= 0:
            name = glob[j + 2 : end]
            if name not in _POSIX_CLASSES:
                raise BadPattern(f"unknown character class [:{name}:]")
            items.append(_POSIX_CLASSES[name])
            j = end + 2
            continue
        if char == "\\":
            j += 1
            if j >= len(glob):
                raise BadPattern("'[' is never closed")
            char = glob[j]
        j += 1
        if glob.startswith("-", j) and j + 1 < len(glob) and glob[j + 1] != "]":
            high, j = glob[j + 1], j + 2
            if high == "\\":
                if j >= len(glob):
                    raise BadPattern("'[' is never closed")
                high, j = glob[j], j + 1
            if high < char:
                raise BadPattern(f"bad character range {char}-{high}")
            items.append(f"{re.escape(char)}-{re.escape(high)}")
        else:
            items.append(re.escape(char))
    return "[" + "^" * negate + "".join(items) + "]", j + 1


@dataclass(frozen=True)
class _Pattern:
    """One line of an ignore file, compiled.

    ``segments`` are globs, ``None`` standing for ``**`` (any number of folders). A path matches
    directly (priority 2) when the segments match all its parts, or through a folder above it
    (priority 1) when they match a leading part of it. ``contents`` (a line ending in ``/**``)
    makes everything inside a matching folder a direct match.
    """

    index: int  # 0-based line number in its file
    negated: bool
    segments: tuple[_Glob | None, ...]
    dir_only: bool  # the line ended with "/"
    contents: bool
    ends: tuple[bool, ...] = ()  # ends[j]: only "**" from segment j on (so state j accepts)

    @staticmethod
    def parse(index: int, line: str) -> _Pattern | None:
        """The pattern of ``line`` (None for a blank line or a comment), or :class:`BadPattern`.

        Example:
            >>> _Pattern.parse(0, "build/").dir_only, _Pattern.parse(0, "# note") is None
            (True, True)
        """
        text = _strip_trailing_spaces(line)
        if not text or text.startswith("#"):
            return None
        if len(text) > MAX_PATTERN_CHARS:
            raise BadPattern(f"longer than {MAX_PATTERN_CHARS} characters")
        negated = text.startswith("!")
        body = text[1:] if negated else text
        dir_only = body.endswith("/")
        core = body[:-1] if dir_only else body  # git takes one "/" off; "a//" never matches
        if not core:
            raise BadPattern("a lone '!' brings back nothing" if negated else "no name to match")
        segments: list[_Glob | None] = [] if "/" in core else [None]  # no "/": at any depth
        parts = core[1:].split("/") if core.startswith("/") else core.split("/")  # "a//b": never
        for part in parts:
            if len(part) < 2 or part.strip("*"):  # "***" is "**"
                segments.append(_Glob.compile(part))
            elif not segments or segments[-1] is not None:  # "**/**" is "**"
                segments.append(None)
        contents = len(segments) > 1 and segments[-1] is None and not dir_only
        if contents:
            segments.pop()
        ends = [all(seg is None for seg in segments[j:]) for j in range(len(segments) + 1)]
        return _Pattern(index, negated, tuple(segments), dir_only, contents, tuple(ends))

    def closure(self, states: set[int]) -> frozenset[int]:
        """``states`` and those a ``**`` reaches without taking a segment (never two in a row)."""
        skip = {j + 1 for j in states if j < len(self.segments) and self.segments[j] is None}
        return frozenset(states | skip)

    def step(self, states: frozenset[int], part: str) -> frozenset[int]:
        """The states after taking the path segment ``part``."""
        after = set()
        for state in states:
            if state < len(self.segments):
                glob = self.segments[state]
                if glob is None:
                    after.add(state)  # "**" takes it and stays
                elif glob.match(part):
                    after.add(state + 1)
        return self.closure(after)

    def finish(self, states: frozenset[int], above: int, last: str, is_dir: bool) -> int:
        """The priority of this pattern's match of a path (0: none), given the ``states`` after
        its folders, the priority ``above`` that a match of one of them gives, and its last
        part."""
        if is_dir or not (self.dir_only or self.contents):
            segments, ends = self.segments, self.ends
            for state in states:  # whether taking ``last`` reaches the end (as step, unrolled)
                if state < len(segments):
                    glob = segments[state]
                    if ends[state] if glob is None else ends[state + 1] and glob.match(last):
                        return 2
        return above

    def after_folder(self, states: frozenset[int], above: int, part: str) -> tuple:
        """``(states, above)`` after one more folder ``part`` of a path."""
        states = self.step(states, part)
        if len(self.segments) in states:
            above = max(above, 2 if self.contents else 1)
        return states, above


def _strip_trailing_spaces(line: str) -> str:
    """``line`` without its newline and unescaped trailing spaces (``"a\\\\ "`` keeps one)."""
    line = line.rstrip("\r\n")
    stripped = line.rstrip(" ")
    if stripped.endswith("\\") and len(stripped) < len(line):
        backslashes = len(stripped) - len(stripped.rstrip("\\"))
        if backslashes % 2:  # an escaped space
            return line[: len(stripped) + 1]
    return stripped
