"""Which files of a notes folder are not indexed: ``.gitignore``, ``.notesqaignore`` and default
skips.

* ``.notesqaignore`` and ``.gitignore`` use gitignore syntax: ``*``, ``?``, ``[a-z]``/``[!a-z]``
  (and ``[[:digit:]]``), ``\\`` escapes, ``**`` for any number of folders, a leading or inner
  ``/`` anchoring a pattern to its file's folder, a trailing ``/`` for folders only, ``!`` to
  bring a path back. Either file may sit in any folder and applies to that folder's subtree,
  with paths relative to it, as git does. A deeper file overrides a shallower one, and every
  ``.notesqaignore`` overrides every ``.gitignore``, so ``!pattern`` in ``.notesqaignore`` can
  bring back a file that git ignores. Within one file the last line matching a path itself
  decides, or if none does, the last line matching a folder above it.
* Patterns are matched in time linear in the pattern and the path, whatever they hold: each
  path segment is matched by placing the pieces between ``*`` leftmost (no backtracking) and
  ``**`` by a set of states over the segments, where a regular expression engine could take
  minutes on ``a*a*a*a*a*a*a*a*a*a*a*a*b`` and a long file name.
* A line that cannot be a pattern (a lone ``!``, ``[z-a]``, an unclosed ``[``, a trailing
  ``\\``, a line over ``MAX_PATTERN_CHARS``) is left out with one warning naming the file and
  line (``notes/.gitignore:2: ignored the pattern '[z-a]' (bad character range z-a); fix or
  remove it``); the other lines still apply.
* Folders named in ``DEFAULT_SKIPPED_DIRS`` (``.git``, ``.obsidian``, ``node_modules``, ...) and
  hidden folders are never entered (the walker in ``rag.documents`` skips them).
* An ignored folder is not descended into, unless an ignore file in force has a ``!`` line, which
  might bring back a file inside it (``drafts/`` then ``!drafts/keep.md``): unlike git, a file can
  be re-included from an ignored folder, because that is what a student writing it means.

Example:
    >>> rules = IgnoreRules.parse(".notesqaignore", "", ["drafts/", "*.tmp", "!drafts/keep.md"])
    >>> rules.reason("drafts/", is_dir=True)
    'ignored by .notesqaignore (line 1: drafts/)'
    >>> rules.reason("drafts/keep.md", is_dir=False) is None
    True
"""

from __future__ import annotations

import logging
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

IGNORE_FILES = (".gitignore", ".notesqaignore")  # in increasing precedence
# never indexed: tool folders, the Obsidian trash, dependency caches, and the default index folder
DEFAULT_SKIPPED_DIRS = frozenset(
    {".git", ".obsidian", ".trash", "node_modules", "__pycache__", ".notesqa"}
)
MAX_PATTERN_CHARS = 4096  # git's own limit on a path; a longer line is left out with a warning
_CACHED_FOLDERS = 4096  # folders whose pattern states an ignore file keeps (walks go deep)
_WARNED_MAX = 10_000  # distinct bad lines remembered, so each is warned about once
_warned: set[tuple[str, int, str]] = set()

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


def _warn_once(where: str, line: int, text: str, why: BadPattern) -> None:
    key = (where, line, text)
    if key in _warned:
        return
    if len(_warned) >= _WARNED_MAX:
        _warned.clear()
    _warned.add(key)
    log.warning("%s:%d: ignored the pattern %r (%s); fix or remove it", where, line, text, why)


@dataclass(frozen=True)
class _IgnoreFile:
    """One ignore file: ``folder`` is its folder relative to the notes root (``""`` or ``"a/b/"``)."""

    name: str  # ".gitignore" or ".notesqaignore"
    folder: str
    lines: tuple[str, ...]
    patterns: tuple[_Pattern, ...]
    # folder parts -> (states, above) of each pattern after them
    _seen: dict = field(default_factory=dict, compare=False, repr=False)

    def _after(self, folders: tuple[str, ...]) -> tuple:
        """Each pattern's ``(states, above)`` after the folder parts ``folders``, from the
        longest leading part already known (a walk asks about one folder's files in a row)."""
        known = len(folders)
        while known and folders[:known] not in self._seen:
            known -= 1
        entry = (
            self._seen[folders[:known]]
            if known
            else tuple((p.closure({0}), 0) for p in self.patterns)
        )
        if len(self._seen) > _CACHED_FOLDERS:
            self._seen.clear()
        for depth in range(known, len(folders)):
            part = folders[depth]
            entry = tuple(
                p.after_folder(states, above, part)
                for p, (states, above) in zip(self.patterns, entry, strict=True)
            )
            self._seen[folders[: depth + 1]] = entry
        return entry

    def check(self, rel: str) -> tuple[bool, int] | None:
        """``(ignored, line index)`` of the line deciding ``rel``, or None if none matches."""
        if not rel.startswith(self.folder):
            return None
        local = rel[len(self.folder) :]
        parts = [part for part in local.split("/") if part]
        if not parts or not self.patterns:
            return None
        entry = self._after(tuple(parts[:-1]))
        decided, best = None, 0
        last, is_dir = parts[-1], local.endswith("/")
        for pattern, (states, above) in zip(self.patterns, entry, strict=True):
            if not states and not above:
                continue  # the folders already ruled it out
            priority = pattern.finish(states, above, last, is_dir)
            # the last line matching the path itself decides, else the last matching a folder
            # above it (so "!drafts/keep.md" brings a file back from an ignored "drafts/")
            if priority and priority >= best:
                decided, best = pattern, priority
        return None if decided is None else (not decided.negated, decided.index)

    def may_reinclude(self, rel_dir: str) -> bool:
        """Whether a ``!`` line of this file may match ``rel_dir`` or something inside it."""
        if not rel_dir.startswith(self.folder):
            return False
        parts = tuple(part for part in rel_dir[len(self.folder) :].split("/") if part)
        entry = self._after(parts)
        return any(
            p.negated and (states or above)
            for p, (states, above) in zip(self.patterns, entry, strict=True)
        )


@dataclass(frozen=True)
class IgnoreRules:
    """The ignore files in force in one folder: its ancestors' and its own.

    Paths given to :meth:`reason` are POSIX, relative to the notes root, with a trailing ``/``
    for a folder.
    """

    files: tuple[_IgnoreFile, ...] = ()

    @staticmethod
    def parse(name: str, folder: str, lines: Sequence[str], where: str = "") -> IgnoreRules:
        """The rules of one ignore file called ``name`` in ``folder`` (``""`` for the root); a
        bad line is left out with a warning naming ``where`` (default ``folder + name``).

        Example:
            >>> rules = IgnoreRules.parse(".gitignore", "", ["[z-a]", "*.log"])
            >>> rules.reason("run.log", is_dir=False)
            'ignored by .gitignore (line 2: *.log)'
        """
        return IgnoreRules()._with(name, folder, lines, where)

    def _with(self, name: str, folder: str, lines: Sequence[str], where: str = "") -> IgnoreRules:
        lines = [line.rstrip("\r\n") for line in lines]
        patterns = []
        for index, line in enumerate(lines):
            try:
                pattern = _Pattern.parse(index, line)
            except BadPattern as why:
                _warn_once(where or folder + name, index + 1, line.strip(), why)
                continue
            if pattern is not None:
                patterns.append(pattern)
        new = _IgnoreFile(name, folder, tuple(lines), tuple(patterns))
        files = sorted(
            (*self.files, new), key=lambda f: (IGNORE_FILES.index(f.name), len(f.folder))
        )
        return IgnoreRules(tuple(files))

    def descend(self, folder: Path, rel_folder: str) -> tuple[IgnoreRules, list[tuple[str, str]]]:
        """The rules in force inside ``folder`` (``rel_folder``: ``""`` or ``"a/b/"``), and the
        ignore files there that could not be read, as ``(path, reason)``."""
        rules, problems = self, []
        for name in IGNORE_FILES:
            path = folder / name
            try:
                if not path.is_file():
                    continue
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError as exc:
                problems.append((rel_folder + name, f"cannot read: {exc.strerror or exc}"))
                continue
            rules = rules._with(name, rel_folder, text.splitlines(), str(path))
        return rules, problems

    def may_reinclude(self, rel_dir: str) -> bool:
        """Whether a ``!pattern`` line in force might bring back something inside the folder
        ``rel_dir`` (so that, ignored, it must still be entered). A pattern without a ``/`` may
        match at any depth; one with a ``/`` only under the folders its first parts match.

        Example:
            >>> rules = IgnoreRules.parse(".notesqaignore", "", ["drafts/", "!drafts/keep.md"])
            >>> rules.may_reinclude("drafts/"), rules.may_reinclude("build/")
            (True, False)
        """
        return any(file.may_reinclude(rel_dir) for file in self.files)

    def reason(self, rel: str, is_dir: bool) -> str | None:
        """Why ``rel`` is ignored (``"ignored by .gitignore (line 2: *.log)"``), or None.

        Example:
            >>> IgnoreRules.parse(".gitignore", "sub/", ["", "*.log"]).reason("sub/x.log", False)
            'ignored by sub/.gitignore (line 2: *.log)'
        """
        if is_dir and not rel.endswith("/"):  # "drafts/" matches a folder only
            rel += "/"
        decided = None
        for file in self.files:  # in increasing precedence: the last decision wins
            result = file.check(rel)
            if result is not None:
                decided = (file, *result)
        if decided is None or not decided[1]:
            return None
        file, _, index = decided
        return (
            f"ignored by {file.folder}{file.name} (line {index + 1}: {file.lines[index].strip()})"
        )


def ignore_reason(root: Path, relative: str, is_dir: bool) -> str | None:
    """Why ``relative`` (a POSIX path under the notes folder ``root``) is left out by the ignore
    files in force there, or None; a path inside an ignored folder is left out with it, as the
    indexer never enters that folder. Reads the ignore files on the way (for one path, as the
    watcher asks about one event).

    Example:
        >>> import tempfile
        >>> notes = Path(tempfile.mkdtemp())
        >>> _ = (notes / ".notesqaignore").write_text("drafts/\\n")
        >>> ignore_reason(notes, "drafts/idea.md", False), ignore_reason(notes, "week1.md", False)
        ('ignored by .notesqaignore (line 1: drafts/)', None)
    """
    parts = [part for part in relative.split("/") if part]
    rules, _ = IgnoreRules().descend(root, "")
    for depth, _part in enumerate(parts):
        rel = "/".join(parts[: depth + 1])
        last = depth == len(parts) - 1
        reason = rules.reason(rel, is_dir or not last)
        if reason and (last or not rules.may_reinclude(rel + "/")):
            return reason
        if not last:
            rules, _ = rules.descend(root / rel, rel + "/")
    return None
