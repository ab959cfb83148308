"""Keep a notes index up to date while the notes change: ``notesqa watch NOTES``.

A watchdog observer reports file events under the notes folder; once the folder has been quiet
for ``debounce`` seconds (or ``MAX_WAIT_SECONDS`` after the first change, however busy it stays),
:class:`NotesWatcher` runs the incremental ``NotesQA.index()``, which
re-embeds only the passages of added and changed files, drops those of deleted ones, and swaps the
new index in atomically under the index lock (killing the watcher at any moment leaves a loadable
index). Events inside the index folder and hidden folders (``.git``, ``.obsidian``, ...), at
files that are not notes and at paths ``.notesqaignore``/``.gitignore`` leave out are ignored, so
the watcher never wakes itself up, nor for a build folder that a compiler rewrites. It never
dies quietly: a failed update, an event it cannot judge or a file watcher thread that died is
reported once per cause and watching goes on.

Example (``notesqa watch NOTES`` prints ``update_line`` until Ctrl-C; here a note is added to a
one-note folder and the first update is awaited):
    >>> import tempfile
    >>> from rag.pipeline import NotesQA
    >>> notes = Path(tempfile.mkdtemp())
    >>> _ = (notes / "adam.md").write_text("Adam keeps two moving averages.")
    >>> qa = NotesQA.open(notes)
    >>> _ = qa.index(progress=False)
    >>> updates = []
    >>> with NotesWatcher(qa, debounce=0.2, on_update=updates.append):
    ...     _ = (notes / "sgd.md").write_text("SGD steps against the gradient.")
    ...     deadline = time.monotonic() + 30
    ...     while not updates and time.monotonic() < deadline:
    ...         time.sleep(0.1)
    >>> update_line(updates[0])[9:]                  # after the time, "12:03:04 "
    'added sgd.md: 2 files, 2 passages, 1 embedded in ... s'
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from rag.documents import SUPPORTED_EXTENSIONS
from rag.ignore import DEFAULT_SKIPPED_DIRS, IGNORE_FILES, ignore_reason

log = logging.getLogger(__name__)

MAX_WAIT_SECONDS = 10.0  # an update runs at most this long after the first change it waits for
_HEALTH_CHECK_SECONDS = 1.0  # how often the worker looks whether the file watcher still runs
_MAX_CAUSES = 1000  # distinct troubles remembered (each is reported once)


def update_line(summary, when: float | None = None) -> str:
    """One log line for an index update: the time, what changed, the passages and the seconds.

    Example:
        >>> from types import SimpleNamespace
        >>> summary = SimpleNamespace(added=[], changed=["a.md"], removed=[], files=3, chunks=40,
        ...                           embedded=2, seconds=0.4)
        >>> update_line(summary)[9:]   # after the time, "12:03:04 "
        'changed a.md: 3 files, 40 passages, 2 embedded in 0.4 s'
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

    An update runs once no event has come for ``debounce`` seconds, and at the latest
    ``max_wait`` seconds (default ``MAX_WAIT_SECONDS``) after the first event it waits for, so a
    note autosaved every few tenths of a second does not hold back the others for ever.

    ``on_update(summary)`` runs after each update that changed something. Nothing stops the
    watching: an update that fails, an event that cannot be judged, a file watcher thread that
    died (it is started again) are each reported once per cause, to ``on_error(error)`` or else
    as one warning in the log, and the next change tries again.
    """

    def __init__(
        self,
        qa,
        debounce: float = 1.0,
        on_update: Callable | None = None,
        on_error: Callable[[Exception], None] | None = None,
        max_wait: float | None = None,
    ) -> None:
        if qa.notes_dir is None:
            raise ValueError("this NotesQA has no notes folder; use NotesQA.open(NOTES_DIR)")
        if not debounce > 0:
            raise ValueError(f"debounce must be above 0 seconds, got {debounce}")
        max_wait = max(MAX_WAIT_SECONDS, debounce) if max_wait is None else max_wait
        if not max_wait >= debounce:
            raise ValueError(
                f"max_wait must be at least debounce ({debounce} s), got {max_wait}; "
                "raise max_wait or lower debounce"
            )
        self.qa = qa
        self.notes_dir = Path(qa.notes_dir).resolve()
        self.index_dir = Path(qa.index_dir).resolve()
        self.debounce = debounce
        self.max_wait = max_wait
        self.on_update = on_update
        self.on_error = on_error
        self._lock = threading.Lock()
        self._first_event: float | None = None  # of the changes the next update waits for
        self._last_event: float | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._observer = None
        self._worker: threading.Thread | None = None
        self._reported: set[str] = set()  # causes of trouble already reported
        self.updates = 0  # index updates that changed something

    def is_relevant(self, path: str, is_dir: bool = False) -> bool:
        """Whether an event at ``path`` may change the index: not inside the index folder, not
        in a hidden file or folder of the notes (lock files, ``.git``, editors' swap files) nor a
        skipped one (``node_modules``), not a file that could never be a note (``.png``,
        ``.swp``) and not left out by ``.notesqaignore``/``.gitignore``; an edited ignore file
        is (new rules change what is indexed)."""
        try:
            resolved = Path(path).resolve()
        except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
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
        """Record an event at ``path`` (the observer calls this; tests may too). An event that
        cannot be judged is reported once and counts as a change: better an update too many."""
        try:
            relevant = self.is_relevant(path, is_dir)
        except Exception as error:
            self._report("cannot judge a file event", error)
            relevant = True
        if relevant:
            self._pending()

    def _pending(self) -> None:
        now = time.monotonic()
        with self._lock:
            if self._first_event is None:
                self._first_event = now
            self._last_event = now
        self._wake.set()

    def start(self) -> NotesWatcher:
        self._observer = self._start_observer()
        self._worker = threading.Thread(target=self._run, name="notesqa-watch", daemon=True)
        self._worker.start()
        return self

    def _start_observer(self):
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

        observer = Observer()
        observer.schedule(Handler(), str(self.notes_dir), recursive=True)
        observer.start()
        return observer

    def _check_observer(self) -> None:
        """Start the file watcher again if its thread (or an emitter's) died; the changes it may
        have missed are caught by an update."""
        observer = self._observer
        if observer is None or self._stopping.is_set():
            return
        if observer.is_alive() and all(emitter.is_alive() for emitter in observer.emitters):
            return
        self._report("the file watcher stopped", RuntimeError("its thread ended"))
        with contextlib.suppress(Exception):
            observer.stop()
        try:
            self._observer = self._start_observer()
        except Exception as error:  # e.g. the notes folder is gone: try again in a moment
            self._report("cannot watch the notes folder again", error)
            return
        self._pending()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(_HEALTH_CHECK_SECONDS)
            if self._stopping.is_set():
                return
            self._check_observer()
            if not self._wake.is_set() or not self._settle():
                continue
            self._wake.clear()
            with self._lock:
                self._first_event = self._last_event = None
            try:
                self.update()
            except Exception as error:  # an on_update callback that failed: keep watching
                self._report("reporting an update failed", error)

    def _settle(self) -> bool:
        """Wait until no event has come for ``debounce`` seconds, or ``max_wait`` seconds have
        passed since the first one; False when the watcher is stopping."""
        while True:
            with self._lock:
                first, last = self._first_event, self._last_event
            if first is None or last is None:
                return True
            now = time.monotonic()
            wait = min(self.debounce - (now - last), self.max_wait - (now - first))
            if wait <= 0:
                return True
            if self._stopping.wait(wait):
                return False

    def update(self):
        """Bring the index up to date now; returns the summary (None when the update failed)."""
        try:
            summary = self.qa.index(progress=False)
        except Exception as error:  # keep watching: the next change tries again
            self._report("index update failed", error)
            return None
        self._reported = {cause for cause in self._reported if not cause.startswith("index")}
        if summary.added or summary.changed or summary.removed:
            self.updates += 1
            if self.on_update is not None:
                self.on_update(summary)
        return summary

    def _report(self, what: str, error: Exception) -> None:
        """Report trouble once per cause (``what`` and the error): to ``on_error`` if given,
        else as a warning in the log. An update that fails again after one that worked is
        reported again."""
        cause = f"{what}: {type(error).__name__}: {error}"
        if cause in self._reported:
            log.debug("%s (again)", cause)
            return
        if len(self._reported) >= _MAX_CAUSES:
            self._reported.clear()
        self._reported.add(cause)
        if self.on_error is None:
            log.warning("%s: %s", what, error)
            return
        try:
            self.on_error(error)
        except Exception:  # a failing error callback must not stop the watcher either
            log.exception("%s: %s (and reporting it failed)", what, error)

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
