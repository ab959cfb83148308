"""Which files of a notes folder are not indexed: ``.gitignore``, ``.notesqaignore`` and default
skips.

* ``.notesqaignore`` and ``.gitignore`` use gitignore syntax (matched by ``pathspec``'s
  ``GitIgnoreSpec``). Either may sit in any folder and applies to that folder's subtree, with
  paths relative to it, as git does. A deeper file overrides a shallower one, and every
  ``.notesqaignore`` overrides every ``.gitignore``, so ``!pattern`` in ``.notesqaignore`` can
  bring back a file that git ignores. Within one file the last matching line wins.
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

from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from pathspec import GitIgnoreSpec

IGNORE_FILES = (".gitignore", ".notesqaignore")  # in increasing precedence
# never indexed: tool folders, the Obsidian trash, dependency caches, and the default index folder
DEFAULT_SKIPPED_DIRS = frozenset(
    {".git", ".obsidian", ".trash", "node_modules", "__pycache__", ".notesqa"}
)


@dataclass(frozen=True)
class _IgnoreFile:
    """One ignore file: ``folder`` is its folder relative to the notes root (``""`` or ``"a/b/"``)."""

    name: str  # ".gitignore" or ".notesqaignore"
    folder: str
    lines: tuple[str, ...]
    spec: GitIgnoreSpec
    negations: tuple[tuple[str, ...], ...]  # each "!pattern" line, split at "/"

    def check(self, rel: str) -> tuple[bool, int] | None:
        """``(ignored, line index)`` of the last line matching ``rel``, or None if none does."""
        if not rel.startswith(self.folder):
            return None
        result = self.spec.check_file(rel[len(self.folder) :])
        if result.include is None:
            return None
        return bool(result.include), result.index


@dataclass(frozen=True)
class IgnoreRules:
    """The ignore files in force in one folder: its ancestors' and its own.

    Paths given to :meth:`reason` are POSIX, relative to the notes root, with a trailing ``/``
    for a folder.
    """

    files: tuple[_IgnoreFile, ...] = ()

    @staticmethod
    def parse(name: str, folder: str, lines: list[str]) -> IgnoreRules:
        """The rules of one ignore file called ``name`` in ``folder`` (``""`` for the root)."""
        return IgnoreRules()._with(name, folder, lines)

    def _with(self, name: str, folder: str, lines: list[str]) -> IgnoreRules:
        lines = [line.rstrip("\n") for line in lines]
        # a blank line would give no pattern; a comment keeps pattern index == line index
        spec = GitIgnoreSpec.from_lines(line if line.strip() else "#" for line in lines)
        negations = tuple(
            tuple(line[1:].strip().strip("/").split("/")) for line in lines if line.startswith("!")
        )
        new = _IgnoreFile(name, folder, tuple(lines), spec, negations)
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
            rules = rules._with(name, rel_folder, text.splitlines())
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
        for file in self.files:
            if not rel_dir.startswith(file.folder):
                continue
            parts = rel_dir[len(file.folder) :].strip("/").split("/")
            for negation in file.negations:
                if len(negation) == 1 or _prefix_may_match(parts, negation):
                    return True
        return False

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
        >>> ignore_reason(Path("notes"), "drafts/idea.md", False)   # doctest: +SKIP
        'ignored by .notesqaignore (line 1: drafts/)'
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


def _prefix_may_match(parts: list[str], pattern: tuple[str, ...]) -> bool:
    """Whether the folder ``parts`` could lie on the way to (or under) what ``pattern`` matches."""
    for part, glob in zip(parts, pattern, strict=False):
        if glob == "**":
            return True
        if not fnmatchcase(part, glob):
            return False
    return True
