"""Where a passage or an answer sits in its note, in the forms people click: ``path:line:col``,
a ``file://`` URI, and an ``obsidian://`` URI when the notes live in an Obsidian vault.

Lines and columns are 1-based and count characters (code points) of the text the index read: a
document's text has its newlines normalised (``rag.documents``), so ``\\r\\n`` is one break there
as in an editor. They are computed when the index is built (``rag.chunking.chunk_document`` gives
every chunk the line and column of its start), because the file may change afterwards; an
answer's position is its passage's advanced over the passage text before the answer
(``advance``), which is exact because a passage is a slice of the document's text.

Example:
    >>> line_and_column("# Adam\\n\\nAdam keeps two averages.", 13)     # the "k" of "keeps"
    (3, 6)
    >>> clickable("notes/ml/adam.md", 3, 6)
    'notes/ml/adam.md:3:6'
    >>> obsidian_uri("My Vault", "ml/adam and rmsprop.md")
    'obsidian://open?vault=My%20Vault&file=ml%2Fadam%20and%20rmsprop.md'
"""

from __future__ import annotations

import os
import re
from bisect import bisect_right
from pathlib import Path
from urllib.parse import quote

OBSIDIAN_DIR = ".obsidian"  # the settings folder that makes a folder an Obsidian vault
_BREAK_RE = re.compile(r"\r\n|\r|\n")


def line_starts(text: str) -> list[int]:
    """The offset of the first character of every line of ``text`` (``\\n``, ``\\r\\n`` and a
    lone ``\\r`` each end a line).

    Example:
        >>> line_starts("ab\\ncd\\r\\nef")
        [0, 3, 7]
    """
    return [0] + [m.end() for m in _BREAK_RE.finditer(text)]


def position(starts: list[int], offset: int) -> tuple[int, int]:
    """``(line, column)``, both 1-based, of ``offset`` given the ``line_starts`` of its text.

    Example:
        >>> position([0, 3, 7], 8)
        (3, 2)
    """
    index = bisect_right(starts, offset) - 1  # the last line starting at or before offset
    return index + 1, offset - starts[index] + 1


def line_and_column(text: str, offset: int) -> tuple[int, int]:
    """``(line, column)``, both 1-based, of character ``offset`` of ``text`` (``len(text)``: the
    place just after the last character).

    Example:
        >>> line_and_column("first\\nsecond", 0), line_and_column("first\\nsecond", 8)
        ((1, 1), (2, 3))
        >>> line_and_column("a\\r\\nb", 3)
        (2, 1)
    """
    if not 0 <= offset <= len(text):
        raise ValueError(f"offset {offset} is outside the text (0..{len(text)} characters)")
    return position(line_starts(text[:offset]), offset)


def advance(line: int, column: int, text: str) -> tuple[int, int]:
    """The ``(line, column)`` just after ``text`` when ``text`` starts at ``(line, column)``.

    Example:
        >>> advance(3, 5, "two\\nav")
        (4, 3)
        >>> advance(3, 5, "two ")
        (3, 9)
    """
    starts = line_starts(text)
    if len(starts) == 1:  # no line break: same line, further right
        return line, column + len(text)
    return line + len(starts) - 1, len(text) - starts[-1] + 1


def clickable(path: str, line: int | None, column: int | None) -> str:
    """``path:line:column``, the form terminals and editors open at the place; just ``path``
    when the position is unknown (an index built before positions were stored).

    Example:
        >>> clickable("adam.md", 41, 3), clickable("adam.md", None, None)
        ('adam.md:41:3', 'adam.md')
    """
    if line is None or column is None:
        return path
    return f"{path}:{line}:{column}"


def display_path(notes_root: str | Path | None, source: str, cwd: str | Path | None = None) -> str:
    """``source`` (relative to the notes folder) as the user can open it: relative to ``cwd``
    (the current directory by default) when the note is under it, else absolute; ``source``
    itself when the notes folder is unknown.

    Example:
        >>> display_path("/home/ada/notes", "ml/adam.md", cwd="/home/ada")
        'notes/ml/adam.md'
        >>> display_path("/home/ada/notes", "ml/adam.md", cwd="/tmp")
        '/home/ada/notes/ml/adam.md'
    """
    if not notes_root:
        return source
    path = Path(os.path.abspath(Path(notes_root).expanduser() / source))
    here = Path(os.path.abspath(cwd if cwd is not None else Path.cwd()))
    try:
        return str(path.relative_to(here))
    except ValueError:
        return str(path)


def find_vault(folder: str | Path) -> Path | None:
    """The Obsidian vault holding ``folder``: the folder itself or its nearest parent with a
    ``.obsidian/`` folder; ``None`` when there is none."""
    folder = Path(os.path.abspath(Path(folder).expanduser()))
    for candidate in (folder, *folder.parents):
        if (candidate / OBSIDIAN_DIR).is_dir():
            return candidate
    return None


def obsidian_uri(vault: str, file: str) -> str:
    """The ``obsidian://open`` URI of ``file`` (relative to the vault, ``/``-separated) in the
    vault named ``vault``; both are percent-encoded whole, as Obsidian writes them.

    Example:
        >>> obsidian_uri("notes", "ml/adam.md")
        'obsidian://open?vault=notes&file=ml%2Fadam.md'
    """
    return f"obsidian://open?vault={quote(vault, safe='')}&file={quote(file, safe='')}"


def source_links(notes_root: str | Path | None, source: str) -> dict[str, str]:
    """``{"uri": file:// URI}`` of a note, plus ``"obsidian_uri"`` when its notes folder is in an
    Obsidian vault; ``{}`` when the notes folder is unknown.

    Example:
        >>> source_links("/home/ada/notes", "ml/adam.md")   # no .obsidian/ there
        {'uri': 'file:///home/ada/notes/ml/adam.md'}
    """
    if not notes_root:
        return {}
    root = Path(os.path.abspath(Path(notes_root).expanduser()))
    path = root / source
    links = {"uri": path.as_uri()}
    vault = find_vault(root)
    if vault is not None:
        links["obsidian_uri"] = obsidian_uri(vault.name, path.relative_to(vault).as_posix())
    return links


def with_links(record: dict, notes_root: str | Path | None) -> dict:
    """A hit's or answer's ``to_dict()`` with the links of its ``source`` added (``uri``, and
    ``obsidian_uri`` in a vault): what ``notesqa ask/search --json`` print."""
    return {**record, **source_links(notes_root, record["source"])}


def where(
    notes_root: str | Path | None,
    source: str,
    line: int | None,
    column: int | None,
    start: int,
    end: int,
) -> str:
    """How the CLI names a place: ``path:line:col`` (the path as the user can open it), or, from
    an index without positions, the path and the character offsets.

    Example:
        >>> where(None, "ml/adam.md", 41, 3, 1521, 1540)
        'ml/adam.md:41:3'
        >>> where(None, "ml/adam.md", None, None, 1521, 1540)
        'ml/adam.md (characters 1521-1540)'
    """
    path = display_path(notes_root, source)
    if line is None or column is None:
        return f"{path} (characters {start}-{end})"
    return clickable(path, line, column)
