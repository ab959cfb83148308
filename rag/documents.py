"""Load a folder of study notes into :class:`Document` objects.

The loader is forgiving: a strange file (binary, empty, too large, unreadable, an unsupported
extension) is skipped and reported in a :class:`LoadReport`, never raised. Only a bad *root*
raises, because then nothing sensible can be done.

Line endings are normalised (``"\\r\\n"`` and lone ``"\\r"`` become ``"\\n"``) *before*
anything else, so every character offset used later (chunks, answers) refers to
``Document.text`` exactly as stored here, not to the raw bytes on disk.

Example::

    >>> docs, report = load_notes("examples/notes")        # the demo notes of this repository
    >>> docs[0].path, report.skipped
    ('biology/photosynthesis.md', [])
"""

from __future__ import annotations

import codecs
import hashlib
import logging
import os
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rag.formats import HTML, MARKDOWN, PDF, html_to_text, pdf_to_text
from rag.ignore import DEFAULT_SKIPPED_DIRS, IgnoreRules
from rag.vault import VaultMeta, read_vault

logger = logging.getLogger(__name__)

SUPPORTED_EXTENSIONS = (".md", ".markdown", ".txt", ".html", ".htm", ".pdf")
DEFAULT_MAX_NOTE_MB = 5.0  # a bigger note is skipped and listed, unless the limit is raised
_BINARY_SNIFF_BYTES = 8192
_MAX_CONTROL_SHARE = 0.05  # text with more control characters than this is not a note
_FALLBACK_ENCODINGS = ("cp1252", "latin-1")  # latin-1 decodes any byte string
# a byte-order mark says the encoding for sure (UTF-32 first: its LE mark starts like UTF-16's)
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


@dataclass(frozen=True)
class Document:
    """One note file, decoded and normalised.

    ``path`` is POSIX and relative to the notes root (``"ml/adam.md"``), so an index stays
    valid when the whole folder moves. ``text`` is what all offsets refer to.
    """

    path: str
    text: str
    sha256: str  # hex digest of the raw bytes on disk (before decoding)
    mtime: float
    size: int  # bytes on disk
    title: str = ""  # Markdown front matter ``title`` (rag.vault)
    tags: tuple[str, ...] = ()  # front matter tags, then inline #tags, without "#"
    aliases: tuple[str, ...] = ()  # front matter ``aliases``


@dataclass
class LoadReport:
    """What :func:`load_notes` did with each file it saw (hidden files are not listed)."""

    loaded: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relative path, reason)
    decoded_with_fallback: list[str] = field(default_factory=list)  # not valid UTF-8


def _check_root(root: str | Path) -> Path:
    path = Path(root).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"notes folder {str(path)!r} does not exist; pass the path of an existing folder "
            "that contains your .md/.markdown/.txt notes"
        )
    if not path.is_dir():
        raise NotADirectoryError(
            f"{str(path)!r} is a file, not a folder; pass the folder that contains your notes "
            f"(e.g. {str(path.parent)!r})"
        )
    return path


def _walk(
    root: Path,
    folder: Path | None = None,
    skipped: list[tuple[str, str]] | None = None,
    index_dir: Path | None = None,
) -> Iterator[Path]:
    """Yield every non-hidden, non-ignored file under ``folder`` (default ``root``), depth first,
    by name.

    Iterative (a folder nested thousands deep is no problem) and confined to ``root``: symlinked
    folders are never followed (that also keeps a link loop from hanging), a symlinked file only
    when it resolves to a file inside ``root``. Hidden entries, ``DEFAULT_SKIPPED_DIRS`` and
    ``index_dir`` are passed over; files and folders ignored by ``.gitignore``/``.notesqaignore``
    (``rag.ignore``) too, and an ignored folder is not entered. Ignored paths, links not followed
    and unreadable folders are appended to ``skipped`` (paths relative to ``root``; a folder once,
    with a trailing ``/``) when given; hidden and tool folders are skipped silently.
    """
    real_root = root.resolve()
    start = root if folder is None else folder
    index_rel = None  # the index folder's path relative to root, when it lies inside
    if index_dir is not None and _inside(Path(index_dir), real_root):
        index_rel = Path(index_dir).resolve().relative_to(real_root).as_posix()

    def note(path: Path, reason: str, suffix: str = "") -> None:
        if skipped is not None:
            skipped.append((display_path(path.relative_to(root)) + suffix, reason))

    def listing(current: Path) -> Iterator[os.DirEntry]:
        try:
            return iter(sorted(os.scandir(current), key=lambda e: e.name))
        except OSError as exc:
            note(current, f"cannot list folder: {exc.strerror or exc}")
            return iter(())

    def rules_in(current: Path, rules: IgnoreRules) -> IgnoreRules:
        rel = current.relative_to(root).as_posix()
        rules, problems = rules.descend(current, "" if rel == "." else rel + "/")
        for path, reason in problems:
            note(root / path, reason)
        return rules

    rules = IgnoreRules()
    for ancestor in reversed(start.relative_to(root).parents):
        rules = rules_in(root / ancestor, rules)  # the ignore files above ``folder``
    rules = rules_in(start, rules)
    stack = [(listing(start), rules)]  # one open listing per level, with its ignore rules
    while stack:
        entry = next(stack[-1][0], None)
        if entry is None:  # this folder is done: back up one level
            stack.pop()
            continue
        rules = stack[-1][1]
        if entry.name.startswith("."):  # hidden files/folders, including the .notesqa index
            continue
        path = Path(entry.path)
        rel = path.relative_to(root).as_posix()
        try:
            if entry.is_dir(follow_symlinks=False):
                if entry.name in DEFAULT_SKIPPED_DIRS:
                    note(path, f"{entry.name}/ folders are never indexed", "/")
                elif rel == index_rel:
                    continue  # the index itself, wherever it was put
                elif (reason := rules.reason(rel, True)) and not rules.may_reinclude(rel + "/"):
                    note(path, reason, "/")  # once for the whole folder, which is not entered
                else:  # depth first, entries in name order
                    stack.append((listing(path), rules_in(path, rules)))
            elif reason := rules.reason(rel, is_dir=False):
                note(path, reason)
            elif entry.is_symlink() and entry.is_dir():
                note(path, "symlinked folder not followed")
            elif entry.is_symlink() and not _inside(path, real_root):
                note(path, "symlink to a file outside the notes folder, not followed")
            elif entry.is_file():  # a pipe would block read_bytes()
                yield path
            else:
                note(path, "not a regular file (broken link, pipe or device)")
        except OSError as exc:  # e.g. a permission error while stat-ing
            note(path, f"cannot read: {exc.strerror or exc}")


def _inside(link: Path, root: Path) -> bool:
    """Whether the symlink ``link`` resolves to a path inside ``root`` (a loop is not)."""
    try:
        path = link.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return False
    return path == root or root in path.parents


def display_path(relative: Path) -> str:
    """A relative path as POSIX text that can always be printed and stored: bytes of a file name
    that are not UTF-8 are shown as ``\\xNN`` escapes."""
    text = relative.as_posix()
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text


def iter_note_files(root: str | Path) -> Iterator[Path]:
    """Yield the note files under ``root`` (supported extension, not hidden), sorted.

    Recursive and deterministic: entries are visited depth first in name order. Symlinked
    folders are not followed; hidden files and folders (``.git``, ``.notesqa``) are ignored.

    Example::

        >>> [p.name for p in iter_note_files("examples/notes")]
        ['photosynthesis.md', 'french-revolution.md', 'transformers.md', 'optimisers.md', ...]
    """
    base = _check_root(root)  # checked now, not on the first next()
    return (path for path in _walk(base) if path.suffix.lower() in SUPPORTED_EXTENSIONS)


def control_share(text: str, sample: int = _BINARY_SNIFF_BYTES) -> float:
    """The share of control characters (other than tab, newline, form feed) and U+FFFD in the
    first ``sample`` characters of ``text``: near 0 for notes in any script, about a quarter for
    binary data decoded as text.

    Example:
        >>> control_share("plain text\\n"), control_share("ab\\x01\\x02")
        (0.0, 0.5)
    """
    head = text[:sample]
    if not head:
        return 0.0
    bad = sum(
        1
        for ch in head
        if ch == "\ufffd" or (unicodedata.category(ch) == "Cc" and ch not in "\t\n\f\v\r")
    )
    return bad / len(head)


def _byte_order_mark(raw: bytes) -> tuple[bytes, str] | None:
    """The byte-order mark ``raw`` starts with and the encoding it names, or None."""
    return next(((bom, name) for bom, name in _BOMS if raw.startswith(bom)), None)


def decode_bytes(raw: bytes) -> tuple[str, str]:
    """Decode note bytes: by their byte-order mark (UTF-8, UTF-16 or UTF-32; the mark stripped),
    else UTF-8, else cp1252, else latin-1; normalise newlines.

    Returns ``(text, encoding)``; after a byte-order mark, bytes its encoding cannot decode
    become U+FFFD.

    Example::

        >>> decode_bytes(b"\\xef\\xbb\\xbfcaf\\xc3\\xa9\\r\\n")
        ('café\\n', 'utf-8')
        >>> decode_bytes(codecs.BOM_UTF16_BE + "café\\r\\n".encode("utf-16-be"))
        ('café\\n', 'utf-16-be')
        >>> decode_bytes(b"caf\\xe9 \\x93quoted\\x94")
        ('café “quoted”', 'cp1252')
    """
    marked = _byte_order_mark(raw)
    if marked is not None:
        bom, encoding = marked
        text = raw[len(bom) :].decode(encoding, errors="replace")
    else:
        try:
            text, encoding = raw.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            for encoding in _FALLBACK_ENCODINGS:
                try:
                    text = raw.decode(encoding)
                    break
                except UnicodeDecodeError:
                    continue
    # Normalise first: every offset downstream refers to this text.
    return text.replace("\r\n", "\n").replace("\r", "\n"), encoding


def load_notes(
    root: str | Path, max_file_bytes: int = 5_000_000, *, index_dir: str | Path | None = None
) -> tuple[list[Document], LoadReport]:
    """Load every note under ``root``; skip (and report) what cannot be used.

    Skipped with a reason: unsupported extensions, files over ``max_file_bytes``, binary files
    (a NUL byte in the first 8 KB without a UTF-16/32 byte-order mark, or more than 5% control
    characters), files that are empty after stripping whitespace, unreadable files, file names
    that are not UTF-8, symlinked folders and symlinks to files outside ``root``, paths ignored
    by ``.gitignore`` or ``.notesqaignore`` (``rag.ignore``). Hidden files and folders, tool
    folders (``.git``, ``.obsidian``, ``node_modules``, ...) and ``index_dir`` are passed over.
    Never raises for a single bad file.

    Markdown is read through ``rag.vault.read_vault``: front matter and tool directives are
    blanked (same length, so offsets stay those of the file) and title, tags and aliases kept on
    the :class:`Document`. :func:`iter_notes` gives the same notes one at a time.

    Example::

        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "week1.md").write_text("# Week 1")
        >>> _ = (folder / "diagram.png").write_bytes(b"\\x89PNG")
        >>> docs, report = load_notes(folder)
        >>> [d.path for d in docs], report.skipped
        (['week1.md'], [('diagram.png', 'unsupported extension .png')])
    """
    notes, report = iter_notes(root, max_file_bytes, index_dir=index_dir)
    return list(notes), report


UNCHANGED = "unchanged"  # the sha256 of a note iter_notes did not read again (see stat_cache)


def iter_notes(
    root: str | Path,
    max_file_bytes: int = 5_000_000,
    *,
    index_dir: str | Path | None = None,
    stat_cache: dict[str, tuple[float, int]] | None = None,
) -> tuple[Iterator[Document], LoadReport]:
    """``(notes, report)``: the notes :func:`load_notes` gives, read one file at a time as
    ``notes`` is iterated (only one note's bytes and text in memory), and the report, complete
    once ``notes`` is exhausted. A bad ``root`` raises at once.

    ``stat_cache`` maps a note's path to the ``(mtime, size)`` it had when last read: a file
    that still has them is not read again and comes back with empty text and ``sha256`` set to
    ``UNCHANGED`` (an update in place skips it, as git's index does).

    Example::

        >>> notes, report = iter_notes("examples/notes")
        >>> len(report.loaded)                      # nothing read yet
        0
        >>> sum(len(doc.text) for doc in notes), len(report.loaded)
        (16461, 5)
    """
    base = _check_root(root)
    report = LoadReport()
    index = Path(index_dir).expanduser() if index_dir is not None else None
    return _read_notes(base, max_file_bytes, index, report, stat_cache or {}), report


def _read_notes(
    base: Path,
    max_file_bytes: int,
    index: Path | None,
    report: LoadReport,
    stat_cache: dict[str, tuple[float, int]],
) -> Iterator[Document]:
    for path in _walk(base, skipped=report.skipped, index_dir=index):
        rel = display_path(path.relative_to(base))
        if rel in stat_cache:
            try:
                stat = path.stat()
            except OSError:
                stat = None
            if stat is not None and (stat.st_mtime, stat.st_size) == stat_cache[rel]:
                report.loaded.append(rel)
                yield Document(rel, "", UNCHANGED, stat.st_mtime, stat.st_size)
                continue
        if rel != path.relative_to(base).as_posix():
            doc, reason = None, "file name is not valid UTF-8; rename the file"
        else:
            doc, reason = _read_note(path, rel, max_file_bytes, report)
        if doc is None:
            report.skipped.append((rel, reason))
            continue
        report.loaded.append(rel)
        yield doc
    for rel, reason in report.skipped:
        logger.debug("skipped %s: %s", rel, reason)
    logger.info(
        "loaded %d notes from %s (%d skipped)", len(report.loaded), base, len(report.skipped)
    )


def _read_note(
    path: Path, rel: str, max_file_bytes: int, report: LoadReport
) -> tuple[Document | None, str]:
    """``(note, "")`` for the file at ``path`` (``rel`` in the notes), or ``(None, why it is
    skipped)``."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        return None, f"unsupported extension {suffix}" if suffix else "no file extension"
    try:
        stat = path.stat()
        if stat.st_size > max_file_bytes:
            return None, (
                f"note too large ({stat.st_size / 1e6:.1f} MB, over the limit of "
                f"{max_file_bytes / 1e6:g} MB); raise it with --max-note-mb to read it"
            )
        raw = path.read_bytes()
    except OSError as exc:  # broken symlink, permission denied, vanished file
        return None, f"cannot read: {exc.strerror or exc}"
    meta = VaultMeta()
    if suffix in PDF:
        try:
            text, encoding = pdf_to_text(raw), "utf-8"
        except Exception as exc:  # a damaged or encrypted PDF must not stop the others
            return None, f"unreadable PDF ({type(exc).__name__}: {exc})"
    elif b"\x00" in raw[:_BINARY_SNIFF_BYTES] and _byte_order_mark(raw) is None:
        return None, "binary file (NUL byte in first 8 KB)"  # UTF-16 and -32 text has NULs
    else:
        text, encoding = decode_bytes(raw)
        if suffix in HTML:
            text = html_to_text(text)
        elif suffix in MARKDOWN:
            text, meta = read_vault(text)
    if not text.strip():
        return None, "empty file"
    share = control_share(text)
    if share > _MAX_CONTROL_SHARE:
        return None, f"binary-looking file ({share:.0%} control characters), not text notes"
    if encoding in _FALLBACK_ENCODINGS:
        report.decoded_with_fallback.append(rel)
        logger.warning("%s is not valid UTF-8; decoded it as %s", rel, encoding)
    document = Document(
        path=rel,
        text=text,
        sha256=hashlib.sha256(raw).hexdigest(),
        mtime=stat.st_mtime,
        size=len(raw),
        title=meta.title,
        tags=meta.tags,
        aliases=meta.aliases,
    )
    return document, ""
