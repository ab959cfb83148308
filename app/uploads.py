"""Save files uploaded in the app into the notes folder, safely.

A bad upload (a name that would escape the folder, an unsupported type, a binary or non-UTF-8
file, one that is too large) is refused with a clear message and nothing is written.

Example:
    >>> save_upload(Path("notes"), "../../etc/passwd.md", b"x")
    Traceback (most recent call last):
    ValueError: '../../etc/passwd.md' is not a plain file name; ...
    >>> save_upload(Path("notes"), "week1.md", b"# Week 1").name
    'week1.md'
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

ALLOWED_SUFFIXES = (".md", ".markdown", ".txt")
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
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
            f"{name!r} is {len(data) / 2**20:.1f} MiB; the limit is {MAX_UPLOAD_BYTES // 2**20} MiB, split it"
        )
    if b"\x00" in data[:8192]:
        raise ValueError(f"{name!r} looks binary (NUL bytes); upload text notes")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{name!r} is not UTF-8 text (byte {err.start}); save it as UTF-8 and upload it again"
        ) from err
    return name


def save_upload(notes_dir: Path, name: str, data: bytes) -> Path:
    """Write an upload into ``notes_dir/uploads/`` atomically; returns the new file's path."""
    name = check_upload(name, data)
    folder = (Path(notes_dir) / "uploads").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    target = (folder / name).resolve()
    if target.parent != folder:  # belt and braces against anything check_upload missed
        raise ValueError(f"{name!r} would be written outside the notes folder; rename it")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
