"""Folders notesqa writes whole: staged beside their target, swapped in, and cleaned up by one rule.

Every folder notesqa writes (an index, a training checkpoint or model, an ONNX export) is staged
in a temporary sibling ``.NAME.tmp-XXXXXXXX`` (``new_temp``) whose FIRST file is the marker
``.notesqa-owned``: a small JSON record of the kind of folder and the writer (pid, process start,
host, time). ``swap_in`` then fsyncs it and puts it in place with two renames (old -> ``.NAME.old``,
new -> NAME) and drops the old copy; the marker stays in the folder as the record of who wrote it.

The one rule for deleting: notesqa deletes a folder on its own only if it carries the marker
(``remove_owned``, which deletes the marker last, so a deletion cut short is finished next time).
A temporary folder whose writer is gone (its pid no longer runs on this host, or it is older than
``STALE_SECONDS``) is removed by the next write of the same target, whatever it holds (a SQLite
journal included); a folder without the marker is never deleted, whatever its name: ``swap_in``
refuses to replace an existing, non-empty target without the marker unless the caller's
``may_replace`` recognises it as notesqa's by its content (an index or a model folder written
before markers), and it never writes a marker into a folder it did not stage.

Example:
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "model"
    >>> tmp = new_temp(target, "example")
    >>> _ = (tmp / "config.json").write_text("{}")
    >>> swap_in(tmp, target)
    >>> sorted(p.name for p in target.iterdir()), owner_kind(target)
    (['.notesqa-owned', 'config.json'], 'example')
    >>> remove_owned(target), target.exists()
    (True, False)
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

MARKER = ".notesqa-owned"  # written first into every folder notesqa stages
STALE_SECONDS = 24 * 3600  # a temporary folder this old is a dead writer's, whatever its pid says


def temp_prefix(target: str | Path) -> str:
    """The name every temporary folder of ``target`` starts with.

    Example:
        >>> temp_prefix("notes/.notesqa")
        '..notesqa.tmp-'
    """
    return f".{Path(target).name}.tmp-"


def backup_of(target: str | Path) -> Path:
    """Where ``swap_in`` keeps ``target``'s previous copy between its two renames.

    Example:
        >>> backup_of("runs/emb").as_posix()
        'runs/.emb.old'
    """
    target = Path(target)
    return target.with_name(f".{target.name}.old")


def _process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, Linux), to tell a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]  # field 22: starttime
    except (OSError, IndexError):
        return None


def _record(kind: str) -> dict:
    pid = os.getpid()
    return {
        "notesqa": kind,
        "pid": pid,
        "process_start": _process_start(pid),
        "host": socket.gethostname(),
        "created": time.time(),
    }


def write_marker(folder: str | Path, kind: str) -> None:
    """Mark ``folder`` as written by this process for ``kind`` (the marker is fsynced).

    Example:
        >>> folder = Path(tempfile.mkdtemp())
        >>> write_marker(folder, "index"); owner_kind(folder)
        'index'
    """
    path = Path(folder) / MARKER
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(_record(kind)) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_marker(folder: str | Path) -> dict | None:
    """The marker's record; ``{}`` for a marker that cannot be read (a writer killed while it
    wrote it), ``None`` when ``folder`` carries no marker (or is a link, or not a folder).

    Example:
        >>> read_marker(tempfile.mkdtemp()) is None
        True
    """
    folder = Path(folder)
    path = folder / MARKER
    if folder.is_symlink() or not folder.is_dir() or path.is_symlink() or not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def owner_kind(folder: str | Path) -> str | None:
    """The kind recorded in ``folder``'s marker (``""`` if unreadable), ``None`` without one."""
    record = read_marker(folder)
    if record is None:
        return None
    kind = record.get("notesqa")
    return kind if isinstance(kind, str) else ""


def is_owned(folder: str | Path) -> bool:
    """Whether ``folder`` is a real folder (not a link) that carries notesqa's marker."""
    return read_marker(folder) is not None


def writer_alive(folder: str | Path) -> bool:
    """Whether the process that staged ``folder`` may still be writing it: its pid runs on this
    host (and is the same process, not a reused pid), and the folder is not older than
    ``STALE_SECONDS``. A writer on another host is alive until the age bound."""
    record = read_marker(folder)
    if record is None:
        return False
    try:
        age = time.time() - (Path(folder) / MARKER).stat().st_mtime
    except OSError:
        return False
    if age > STALE_SECONDS:
        return False
    pid = record.get("pid")
    if not isinstance(pid, int) or record.get("host") != socket.gethostname():
        return True  # cannot tell from here: wait for the age bound
    if pid == os.getpid():
        return True  # this process (another thread's write)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # runs, as another user
    started = record.get("process_start")
    return started is None or _process_start(pid) in (None, started)


def remove_owned(folder: str | Path) -> bool:
    """Delete ``folder`` if it carries the marker (everything else first, the marker last, so a
    deletion cut short still carries it); return whether it was deleted. Anything without the
    marker is left alone.

    Example:
        >>> mine, theirs = Path(tempfile.mkdtemp()), Path(tempfile.mkdtemp())
        >>> write_marker(mine, "example")
        >>> remove_owned(mine), remove_owned(theirs), theirs.exists()
        (True, False, True)
    """
    folder = Path(folder)
    if not is_owned(folder):
        return False
    for entry in os.scandir(folder):
        if entry.name == MARKER:
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)
    os.unlink(folder / MARKER)
    folder.rmdir()
    return True


def remove_stale_temps(target: str | Path) -> list[Path]:
    """Delete the temporary folders of ``target`` (``.NAME.tmp-*`` beside it) whose writer is
    gone (``writer_alive``); folders without the marker are kept. Returns what was removed."""
    target = Path(target)
    removed = []
    prefix = temp_prefix(target)
    try:  # compare names, never glob: a target named ``idx[1]`` is not a pattern
        candidates = [p for p in target.parent.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return removed
    for stale in candidates:
        if not is_owned(stale) or writer_alive(stale):
            continue
        try:
            remove_owned(stale)
        except OSError as exc:  # not ours to fix (permissions): try again next time
            log.warning("could not remove %s, left by a killed writer: %s", stale, exc)
            continue
        log.info("removed %s, left by a writer that was killed", stale)
        removed.append(stale)
    return removed


def new_temp(target: str | Path, kind: str) -> Path:
    """A new empty temporary folder beside ``target``, marked as this process's ``kind`` write
    (after removing the temporary folders killed writers left there).

    Example:
        >>> target = Path(tempfile.mkdtemp()) / "index"
        >>> tmp = new_temp(target, "index")
        >>> tmp.name.startswith(".index.tmp-"), [p.name for p in tmp.iterdir()]
        (True, ['.notesqa-owned'])
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(target), dir=target.parent))
    try:
        write_marker(tmp, kind)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # ours: mkdtemp made it a moment ago
        raise
    return tmp


def fsync_path(path: str | Path) -> None:
    """Flush a file or folder to disk (folders cannot be opened on Windows: skipped there)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_tree(folder: str | Path) -> None:
    """Flush every file and folder under ``folder``, then ``folder`` itself."""
    for root, dirs, files in os.walk(folder):
        for name in files + dirs:
            fsync_path(Path(root) / name)
    fsync_path(folder)


def _empty_folder(path: Path) -> bool:
    """Whether ``path`` is a real folder (not a link) with nothing in it."""
    try:
        return path.is_dir() and not path.is_symlink() and not any(path.iterdir())
    except OSError:
        return False


def check_target(target: str | Path, may_replace: Callable[[Path], bool] | None = None) -> None:
    """Raise ``ValueError`` unless ``swap_in`` may put a new folder at ``target``: nothing is
    there, or an empty folder, or a folder carrying the marker, or one ``may_replace`` accepts
    (a folder notesqa wrote before markers, recognised by its content). Nothing is touched.

    Example:
        >>> folder = Path(tempfile.mkdtemp()); _ = (folder / "ch1.md").write_text("hi")
        >>> check_target(folder)
        Traceback (most recent call last):
        ValueError: ... holds files notesqa did not write ...
    """
    target = Path(target)
    if not os.path.lexists(target) or is_owned(target) or _empty_folder(target):
        return
    if may_replace is not None and may_replace(target):
        return
    what = "is a link" if target.is_symlink() else "is a file" if not target.is_dir() else None
    raise ValueError(
        f"{target} {what or 'holds files notesqa did not write'} (it carries no "
        f"{MARKER} record), so it is not replaced; nothing was changed. Pass a new folder or "
        "remove it yourself, then run the command again"
    )


def swap_in(
    tmp: str | Path,
    target: str | Path,
    may_delete: Callable[[Path], bool] | None = None,
    may_replace: Callable[[Path], bool] | None = None,
) -> None:
    """Put the complete folder ``tmp`` in place of ``target``: fsync, old -> ``.NAME.old``,
    ``tmp`` -> ``target``, drop the old copy. Only in the moment between the two renames is
    there no ``target`` (readers fall back to ``backup_of(target)``).

    ``target`` is replaced only if ``check_target`` allows it: absent, empty, marked, or
    accepted by ``may_replace``; anything else (a folder of someone's files) stops the swap with
    a ``ValueError`` before anything moves. A leftover ``.NAME.old`` of an earlier swap is
    deleted only if it carries the marker or ``may_delete`` (default: ``may_replace``) accepts
    it; otherwise ``ValueError`` stops the swap before anything moves. A leftover without a
    ``target`` is the last good copy of an interrupted swap: kept until ``tmp`` is in.
    """
    tmp, target = Path(tmp), Path(target)
    backup = backup_of(target)
    leftover_ok = may_delete if may_delete is not None else may_replace

    def ours(path: Path) -> bool:
        return is_owned(path) or _empty_folder(path) or bool(leftover_ok and leftover_ok(path))

    if os.path.lexists(backup) and not ours(backup):
        raise ValueError(
            f"{backup} is in the way of the update of {target} and was not written by notesqa; "
            "move it elsewhere and run the command again"
        )
    check_target(target, may_replace)
    fsync_tree(tmp)
    had_old = os.path.lexists(target)
    if had_old:
        if os.path.lexists(backup):  # a leftover of an earlier swap, and ours
            _delete(backup)
        os.rename(target, backup)  # marked, empty or accepted: ours to drop once tmp is in
    try:
        os.rename(tmp, target)
    except OSError:
        if had_old:
            os.rename(backup, target)  # put the old copy back
        raise
    fsync_path(target.parent)
    if os.path.lexists(backup):
        _delete(backup)


def discard(tmp: str | Path) -> None:
    """Remove this process's temporary folder after a failed write (if it carries the marker;
    a failure to delete is logged, never raised over the error that stopped the write)."""
    try:
        remove_owned(tmp)
    except OSError as exc:
        log.warning("could not remove the temporary folder %s: %s", tmp, exc)


def _delete(path: Path) -> None:
    """Delete a folder already known to be ours (marked, or accepted by a ``may_delete``)."""
    if not remove_owned(path):
        shutil.rmtree(path)


__all__ = [
    "MARKER",
    "STALE_SECONDS",
    "backup_of",
    "check_target",
    "discard",
    "fsync_path",
    "fsync_tree",
    "is_owned",
    "new_temp",
    "owner_kind",
    "read_marker",
    "remove_owned",
    "remove_stale_temps",
    "swap_in",
    "temp_prefix",
    "writer_alive",
]
