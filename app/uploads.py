"""Save files uploaded in the app into the notes folder, safely.

Every type that ``notesqa index`` reads is accepted (Markdown, text, HTML, PDF). A bad upload (a
name that would escape the folder or is too long, another type, a binary or non-UTF-8 text file,
a PDF that is not one, one that is too large) is refused with a clear message and nothing is
written. An upload never replaces a file: a taken name gets a number (``week1 (2).md``).

Example:
    >>> import tempfile
    >>> notes = Path(tempfile.mkdtemp())
    >>> save_upload(notes, "../../etc/passwd.md", b"x")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: '../../etc/passwd.md' is not a plain file name; ...
    >>> save_upload(notes, "week1.md", b"# Week 1").relative_to(notes).as_posix()
    'uploads/week1.md'
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from rag.documents import DEFAULT_MAX_NOTE_MB, SUPPORTED_EXTENSIONS, control_share
from rag.formats import PDF

ALLOWED_SUFFIXES = SUPPORTED_EXTENSIONS  # what the index reads
MAX_UPLOAD_BYTES = int(DEFAULT_MAX_NOTE_MB * 1_000_000)  # what the index reads: one limit
MAX_NAME_CHARS = 120  # file systems allow 255 bytes; room for a " (2)" suffix and UTF-8
_SAFE_NAME = re.compile(r"^[\w\- .()]+$")


def check_upload(name: str, data: bytes) -> str:
    """The validated file name for an upload, or ``ValueError`` naming the problem and the fix."""
    if (
        not name
        or name != os.path.basename(name)
        or "/" in name
        or "\\" in name
        or name in (".", "..")
    ):
        raise ValueError(f"{name!r} is not a plain file name; upload files, not paths")
    if len(name) > MAX_NAME_CHARS:
        raise ValueError(
            f"{name[:40]!r}... is {len(name)} characters long; rename it to at most "
            f"{MAX_NAME_CHARS} characters and upload it again"
        )
    if name.startswith(".") or not _SAFE_NAME.match(name):
        raise ValueError(
            f"{name!r} has characters notes file names cannot have; rename it (letters, digits, - _ . space)"
        )
    if not name.lower().endswith(ALLOWED_SUFFIXES):
        raise ValueError(
            f"{name!r} is not a notes file; upload {', '.join(ALLOWED_SUFFIXES)} files"
        )
    if len(data) > MAX_UPLOAD_BYTES:
        raise ValueError(
            f"{name!r} is {len(data) / 1e6:.1f} MB; the limit is {MAX_UPLOAD_BYTES / 1e6:g} MB "
            "(notes over it are not indexed), split it"
        )
    if name.lower().endswith(PDF):  # binary by nature: its text is read when it is indexed
        if not data.startswith(b"%PDF-"):
            raise ValueError(f"{name!r} is not a PDF (no %PDF- header); upload the PDF itself")
        return name
    if b"\x00" in data[:8192]:
        raise ValueError(f"{name!r} looks binary (NUL bytes); upload text notes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{name!r} is not UTF-8 text (byte {err.start}); save it as UTF-8 and upload it again"
        ) from err
    if control_share(text) > 0.05:
        raise ValueError(f"{name!r} looks binary (control characters); upload text notes")
    return name


def free_name(folder: Path, name: str) -> str:
    """``name``, or ``stem (2).ext``, ``stem (3).ext``... : the first not taken in ``folder``.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "week1.md").write_text("# Week 1")
        >>> free_name(folder, "week1.md"), free_name(folder, "week2.md")
        ('week1 (2).md', 'week2.md')
    """
    stem, suffix = os.path.splitext(name)
    candidate, n = name, 1
    while (folder / candidate).exists():
        n += 1
        candidate = f"{stem} ({n}){suffix}"
    return candidate


def save_upload(notes_dir: Path, name: str, data: bytes) -> Path:
    """Write an upload into ``notes_dir/uploads/`` atomically; returns the file's path.

    Never overwrites: a file of the same name with other content keeps its name and the upload
    gets a free one (``week1 (2).md``); the same content again returns the existing file.
    """
    name = check_upload(name, data)
    folder = (Path(notes_dir) / "uploads").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    existing = folder / name
    if existing.is_file() and not existing.is_symlink() and existing.read_bytes() == data:
        return existing
    name = free_name(folder, name)
    target = (folder / name).resolve()
    if target.parent != folder:  # belt and braces against anything check_upload missed
        raise ValueError(f"{name!r} would be written outside the notes folder; rename it")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)  # target is a free name (free_name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
