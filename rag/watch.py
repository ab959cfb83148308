"""Keep a notes index up to date while the notes change: ``notesqa watch NOTES``.

A watchdog observer reports file events under the notes folder; once the folder has been quiet
for ``debounce`` seconds, :class:`NotesWatcher` runs the incremental ``NotesQA.index()``, which
re-embeds only the passages of added and changed files, drops those of deleted ones, and swaps the
new index in atomically under the index lock (killing the watcher at any moment leaves a loadable
index). Events inside the index folder and hidden folders (``.git``, ``.obsidian``, ...), at
files that are not notes and at paths ``.notesqaignore``/``.gitignore`` leave out are ignored, so
the watcher never wakes itself up, nor for a build folder that a compiler rewrites.

Example:
    >>> qa = NotesQA.open("~/notes")
    >>> with NotesWatcher(qa, on_update=lambda s: print(update_line(s))):
    ...     input()         # edit a note: "12:03:04 changed lecture-3.md: 231 passages, 2 embedded"
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from rag.documents import SUPPORTED_EXTENSIONS
from rag.ignore import DEFAULT_SKIPPED_DIRS, ignore_reason

log = logging.getLogger(__name__)

IGNORE_FILES = (".notesqaignore", ".gitignore")


def update_line(summary, when: float | None = None) -> str:
    """One log line for an index update: the time, what changed, the passages and the seconds.

    Example:
        >>> update_line(IndexSummary(files=3, chunks=40, changed=["a.md"], embedded=2, seconds=0.4))
        '12:03:04 changed a.md: 3 files, 40 passages, 2 embedded in 0.4 s'
    """
    parts = []
    for what, files in (
        ("added", summary.added),
        ("changed", summary.changed),
        ("removed", summary.removed),
    ):
        if files:
            shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
            parts.append(f"{what} {shown}")
    stamp = datetime.fromtimestamp(when or time.time()).strftime("%H:%M:%S")
    return (
        f"{stamp} {'; '.join(parts) or 'no note changed'}: {summary.files} files, "
        f"{summary.chunks} passages, {summary.embedded} embedded in {summary.seconds:.1f} s"
    )


class NotesWatcher:
    """Re-index ``qa``'s notes folder a moment after its files change, until stopped.

    ``on_update(summary)`` runs after each update that changed something; ``on_error(error)``
    when an update fails (the watcher keeps watching: the next change tries again).
    """

    def __init__(
        self,
        qa,
        debounce: float = 1.0,
        on_update: Callable | None = None,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        if qa.notes_dir is None:
            raise ValueError("this NotesQA has no notes folder; use NotesQA.open(NOTES_DIR)")
        if not debounce > 0:
            raise ValueError(f"debounce must be above 0 seconds, got {debounce}")
        self.qa = qa
        self.notes_dir = Path(qa.notes_dir).resolve()
        self.index_dir = Path(qa.index_dir).resolve()
        self.debounce = debounce
        self.on_update = on_update
        self.on_error = on_error
        self._last_event: float | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._observer = None
        self._worker: threading.Thread | None = None
        self.updates = 0  # index updates that changed something

    def is_relevant(self, path: str, is_dir: bool = False) -> bool:
        """Whether an event at ``path`` may change the index: not inside the index folder, not
        in a hidden file or folder of the notes (lock files, ``.git``, editors' swap files) nor a
        skipped one (``node_modules``), not a file that could never be a note (``.png``,
        ``.swp``) and not left out by ``.notesqaignore``/``.gitignore``; an edited ignore file
        is (new rules change what is indexed)."""
        try:
            resolved = Path(path).resolve()
        except OSError:
            return False
        if resolved == self.index_dir or self.index_dir in resolved.parents:
            return False
        try:
            relative = resolved.relative_to(self.notes_dir)
        except ValueError:
            return False
        if relative.name in IGNORE_FILES:  # new ignore rules change what is indexed
            return True
        if any(
            part.startswith(".") or part.endswith("~") or part in DEFAULT_SKIPPED_DIRS
            for part in relative.parts
        ):
            return False
        if not is_dir and relative.suffix.lower() not in SUPPORTED_EXTENSIONS:
            return False
        return ignore_reason(self.notes_dir, relative.as_posix(), is_dir) is None

    def notice(self, path: str, is_dir: bool = False) -> None:
        """Record an event at ``path`` (the observer calls this; tests may too)."""
        if self.is_relevant(path, is_dir):
            self._last_event = time.monotonic()
            self._wake.set()

    def start(self) -> NotesWatcher:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event) -> None:
                if event.event_type in ("opened", "closed_no_write"):
                    return  # reads do not change notes
                watcher.notice(event.src_path, event.is_directory)
                if getattr(event, "dest_path", ""):
                    watcher.notice(event.dest_path, event.is_directory)

        self._observer = Observer()
        self._observer.schedule(Handler(), str(self.notes_dir), recursive=True)
        self._observer.start()
        self._worker = threading.Thread(target=self._run, name="notesqa-watch", daemon=True)
        self._worker.start()
        return self

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait()
            if self._stopping.is_set():
                return
            # debounce: wait until no event has arrived for `debounce` seconds
            while self._last_event is not None:
                quiet = time.monotonic() - self._last_event
                if quiet >= self.debounce:
                    break
                if self._stopping.wait(self.debounce - quiet):
                    return
            self._wake.clear()
            self._last_event = None
            self.update()

    def update(self):
        """Bring the index up to date now; returns the summary (None when the update failed)."""
        try:
            summary = self.qa.index(progress=False)
        except Exception as error:  # keep watching: the next change tries again
            log.warning("index update failed: %s", error)
            if self.on_error is not None:
                self.on_error(error)
            return None
        if summary.added or summary.changed or summary.removed:
            self.updates += 1
            if self.on_update is not None:
                self.on_update(summary)
        return summary

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
        if self._worker is not None:
            self._worker.join(timeout=60)  # an update in flight finishes (or its swap never ran)

    def __enter__(self) -> NotesWatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["NotesWatcher", "update_line"]
