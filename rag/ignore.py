"""Which files of a notes folder are not indexed: ``.gitignore``, ``.notesqaignore`` and default
skips.

* ``.notesqaignore`` and ``.gitignore`` use gitignore syntax: ``*``, ``?``, ``[a-z]``/``[!a-z]``
  (and ``[[:digit:]]``), ``\\`` escapes, ``**`` for any number of folders, a leading or inner
  ``/`` anchoring a pattern to its file's folder, a trailing ``/`` for folders only, ``!`` to
  bring a path back. Either file may sit in any folder and applies to that folder's subtree,
  with paths relative to it, as git does. A deeper file overrides a shallower one, and every
  ``.notesqaignore`` overrides every ``.gitignore``, so ``!pattern`` in ``.notesqaignore`` can
  bring back a file that git ignores. Within one file the last line matching a path decides,
  itself or a folder above it; only a ``!`` line matching a folder above never undoes a line
  matching the path itself (``*.md`` then ``!drafts/`` still ignores ``drafts/x.md``).
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
  be re-included from an ignored folder, because that is what a student writing it means, but
  only by a line after the one ignoring the folder (``!slides.pdf`` then ``private/`` keeps
  ``private/slides.pdf`` out, as git does).
* An ignore file is read up to ``MAX_IGNORE_BYTES`` (1 MB) and ``MAX_IGNORE_LINES`` (10,000):
  the lines after that are left out, with one warning naming the file. An ignore file that is a
  link out of the notes folder is not read (reported like an unreadable one).

Example:
    >>> rules = IgnoreRules.parse(".notesqaignore", "", ["drafts/", "*.tmp", "!drafts/keep.md"])
    >>> rules.reason("drafts/", is_dir=True)
    'ignored by .notesqaignore (line 1: drafts/)'
    >>> rules.reason("drafts/keep.md", is_dir=False) is None
    True
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rag.ignore_patterns import BadPattern, _Glob, _Pattern

log = logging.getLogger(__name__)

IGNORE_FILES = (".gitignore", ".notesqaignore")  # in increasing precedence
# never indexed: tool folders, the Obsidian trash, dependency caches, and the default index folder
DEFAULT_SKIPPED_DIRS = frozenset(
    {".git", ".obsidian", ".trash", "node_modules", "__pycache__", ".notesqa"}
)
_CACHED_FOLDERS = 64  # folders whose pattern states an ignore file keeps: a walk's path
MAX_IGNORE_BYTES = 1_000_000  # a longer ignore file is read only this far (with a warning)
MAX_IGNORE_LINES = 10_000  # and only its first lines this many
_WARNED_MAX = 10_000  # distinct bad lines remembered, so each is warned about once
_warned: set[tuple[str, int, str]] = set()


def _read_capped(path: Path) -> list[str]:
    """The lines of the ignore file ``path``: its first ``MAX_IGNORE_LINES`` lines within its
    first ``MAX_IGNORE_BYTES``, with one warning naming the file if it is longer.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / ".gitignore"
        >>> _ = path.write_text("*.tmp\\r\\ndrafts/\\n")
        >>> _read_capped(path)
        ['*.tmp\\r', 'drafts/']
    """
    with path.open("rb") as handle:
        data = handle.read(MAX_IGNORE_BYTES + 1)
    cut = len(data) > MAX_IGNORE_BYTES
    if cut:  # whole lines only
        data = data[: data.rfind(b"\n", 0, MAX_IGNORE_BYTES) + 1]
    lines = data.decode("utf-8", errors="replace").split("\n", MAX_IGNORE_LINES)
    if lines and not lines[-1]:
        lines.pop()
    if len(lines) > MAX_IGNORE_LINES:
        lines, cut = lines[:MAX_IGNORE_LINES], True
    key = (str(path), 0, "longer than the limit")
    if cut and key not in _warned:
        _warned.add(key)
        log.warning(
            "%s is over %d MB or %d lines: only its first %d lines apply; shorten it",
            path,
            MAX_IGNORE_BYTES // 1_000_000,
            MAX_IGNORE_LINES,
            len(lines),
        )
    return lines


def _warn_once(where: str, line: int, text: str, why: BadPattern) -> None:
    key = (where, line, text)
    if key in _warned:
        return
    if len(_warned) >= _WARNED_MAX:
        _warned.clear()
    _warned.add(key)
    log.warning("%s:%d: ignored the pattern %r (%s); fix or remove it", where, line, text, why)


class _NameIndex:
    """The patterns without a ``/`` (``*.md``, ``build/``), found by the name they match in a few
    dictionary look-ups, not one match per pattern: ``head*tail`` by its head (or, without one,
    its tail), a name by itself; other globs are tried one by one.

    Example:
        >>> index = _NameIndex([(0, _Glob.compile("p1*q")), (1, _Glob.compile("*.md"))])
        >>> sorted(index.matching("p1xq")), sorted(index.matching("a.md")), index.matching("b")
        ([0], [1], [])
    """

    def __init__(self, globs: Sequence[tuple[int, _Glob]]) -> None:
        self.exact: dict[str, list[int]] = {}
        self.by_head: dict[str, list[tuple[str, int]]] = {}
        self.by_tail: dict[str, list[int]] = {}
        self.other: list[tuple[int, _Glob]] = []
        for i, glob in globs:
            plain = glob.plain
            if plain is not None and len(plain) == 1:
                self.exact.setdefault(plain[0], []).append(i)
            elif plain is not None and len(plain) == 2 and plain[0]:
                self.by_head.setdefault(plain[0], []).append((plain[1], i))
            elif plain is not None and len(plain) == 2:
                self.by_tail.setdefault(plain[1], []).append(i)
            else:
                self.other.append((i, glob))
        self.head_lengths = sorted({len(head) for head in self.by_head})
        self.tail_lengths = sorted({len(tail) for tail in self.by_tail})

    def matching(self, name: str) -> list[int]:
        """The indices of the patterns whose glob matches ``name`` (in no particular order)."""
        found = list(self.exact.get(name, ()))
        for length in self.head_lengths:
            if length > len(name):
                break
            for tail, i in self.by_head.get(name[:length], ()):
                if len(name) >= length + len(tail) and name.endswith(tail):
                    found.append(i)
        for length in self.tail_lengths:
            if length > len(name):
                break
            found.extend(self.by_tail.get(name[len(name) - length :], ()))
        found.extend(i for i, glob in self.other if glob.match(name))
        return found


def _floating(pattern: _Pattern) -> bool:
    """Whether ``pattern`` is one glob at any depth (``*.md``, ``**/cache``), whose state after
    any folders is only whether one of them matched."""
    segments = pattern.segments
    return len(segments) == 2 and segments[0] is None and segments[1] is not None


@dataclass(frozen=True)
class _IgnoreFile:
    """One ignore file: ``folder`` is its folder relative to the notes root (``""`` or ``"a/b/"``).

    After some folders, a pattern is in one of two sparse tables or in neither: ``live`` holds
    the ``(states, above)`` of the patterns with a ``/`` that may still match, ``raised`` the
    ``above`` of the patterns without one that matched a folder; the others are dead (with a
    ``/``) or unchanged (without). Only the folders of a walk's current path are kept
    (``_CACHED_FOLDERS``, least recently used first out), so memory does not grow with the
    number of folders times the number of lines.
    """

    name: str  # ".gitignore" or ".notesqaignore"
    folder: str
    lines: tuple[str, ...]
    patterns: tuple[_Pattern, ...]
    # folder parts -> (live, raised) after them
    _seen: OrderedDict = field(default_factory=OrderedDict, compare=False, repr=False)
    _index: _NameIndex = field(init=False, compare=False, repr=False)
    _reincludes_anywhere: bool = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        floating = [(i, p.segments[1]) for i, p in enumerate(self.patterns) if _floating(p)]
        object.__setattr__(self, "_index", _NameIndex(floating))
        anywhere = any(self.patterns[i].negated for i, _ in floating)
        object.__setattr__(self, "_reincludes_anywhere", anywhere)
        live = {i: (p.closure({0}), 0) for i, p in enumerate(self.patterns) if not _floating(p)}
        self._seen[()] = (live, {})

    def _after(self, folders: tuple[str, ...]) -> tuple[dict, dict]:
        """``(live, raised)`` after the folder parts ``folders``, from the longest leading part
        already known (a walk asks about one folder's files in a row)."""
        known = len(folders)
        while folders[:known] not in self._seen:
            known -= 1
        live, raised = self._seen[folders[:known]]
        self._seen.move_to_end(folders[:known])
        for depth in range(known, len(folders)):
            part = folders[depth]
            after = {}
            for i, state in live.items():
                new = self.patterns[i].after_folder(*state, part)
                if new[0] or new[1]:
                    after[i] = state if new == state else new  # "**/x": shared, not copied
            matched = self._index.matching(part)
            if matched:  # otherwise the same table is shared
                raised = dict(raised)
                for i in matched:
                    raised[i] = max(raised.get(i, 0), 2 if self.patterns[i].contents else 1)
            live = after
            self._seen[folders[: depth + 1]] = (live, raised)
            if len(self._seen) > _CACHED_FOLDERS:
                self._seen.popitem(last=False)
        return live, raised

    def check(self, rel: str) -> tuple[bool, int] | None:
        """``(ignored, line index)`` of the line deciding ``rel``, or None if none matches.

        The last line matching ``rel`` itself decides, unless a line ignoring a folder above it
        comes later; a ``!`` line matching only a folder above never undoes a line matching
        ``rel`` itself (as in git). So ``drafts/`` then ``!drafts/keep.md`` brings keep.md back,
        and ``!slides.pdf`` then ``private/`` does not bring ``private/slides.pdf`` back.
        """
        if not rel.startswith(self.folder):
            return None
        local = rel[len(self.folder) :]
        parts = [part for part in local.split("/") if part]
        if not parts or not self.patterns:
            return None
        live, raised = self._after(tuple(parts[:-1]))
        last, is_dir = parts[-1], local.endswith("/")
        priorities = dict(raised)
        for i in self._index.matching(last):
            pattern = self.patterns[i]
            if is_dir or not (pattern.dir_only or pattern.contents):
                priorities[i] = 2
        for i, (states, above) in live.items():
            priority = self.patterns[i].finish(states, above, last, is_dir)
            if priority:
                priorities[i] = priority
        direct = folder = None
        for i in sorted(priorities):
            if priorities[i] == 2:
                direct = self.patterns[i]
            else:
                folder = self.patterns[i]
        if folder is not None and not folder.negated:
            if direct is None or folder.index > direct.index:
                return True, folder.index
        decided = direct or folder
        return None if decided is None else (not decided.negated, decided.index)

    def may_reinclude(self, rel_dir: str) -> bool:
        """Whether a ``!`` line of this file may match ``rel_dir`` or something inside it."""
        if not rel_dir.startswith(self.folder):
            return False
        if self._reincludes_anywhere:
            return True
        parts = tuple(part for part in rel_dir[len(self.folder) :].split("/") if part)
        live, raised = self._after(parts)
        return any(self.patterns[i].negated for i in (*live, *raised))


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
        root = folder
        for _ in rel_folder.split("/")[:-1]:  # "a/b/": two folders up
            root = root.parent
        for name in IGNORE_FILES:
            path = folder / name
            try:
                if path.is_symlink() and not path.resolve().is_relative_to(root.resolve()):
                    problems.append(
                        (rel_folder + name, "a link out of the notes folder; not followed")
                    )
                    continue
                if not path.is_file():
                    continue
                lines = _read_capped(path)
            except OSError as exc:
                problems.append((rel_folder + name, f"cannot read: {exc.strerror or exc}"))
                continue
            rules = rules._with(name, rel_folder, lines, str(path))
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
