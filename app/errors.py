r"""How the ``notesqa`` command speaks on the terminal: one sentence per expected error (the
problem and the fix), untrusted text (file names, note text, questions) made inert, counts in
words, and quiet libraries.

Example:
    >>> error_message(PermissionError(13, "Permission denied", "/notes/.notesqa"))
    "permission denied on /notes/.notesqa; check the folder's permissions or choose another folder"
    >>> for_terminal("evil\x1b]0;title\x07.md")
    'evil\\x1b]0;title\\x07.md'
"""

from __future__ import annotations

import errno
import logging
import os
import re
import sys

from rag.index_folder import NoIndex

# Characters a terminal acts on instead of showing: C0 controls (colours, "set window title",
# cursor moves, a carriage return that overprints), DEL, C1 controls (0x9b is CSI to some
# terminals), the bidi embeddings, overrides and isolates (they reorder what is shown), and lone
# surrogates (a name that is not UTF-8, which cannot even be printed). Tab and newline are kept
# in multi-line text only.
_UNSAFE = r"\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_UNSAFE_LINE = re.compile(rf"[{_UNSAFE}\t\n]")
_UNSAFE_TEXT = re.compile(f"[{_UNSAFE}]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    named = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}.get(match.group())
    return named or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def for_terminal(text: object, multiline: bool = False) -> str:
    r"""``text`` as it is safe to print: every character a terminal would act on written as its
    Python escape (``\x1b``), so a file name or a note cannot colour the screen, set the window
    title or reorder a line; one line unless ``multiline`` (then tab and newline are kept).

    Example:
        >>> for_terminal("a\tb\nc\u202e\udcff")
        'a\\tb\\nc\\u202e\\udcff'
        >>> for_terminal("a\tb\nc", multiline=True)
        'a\tb\nc'
    """
    return (_UNSAFE_TEXT if multiline else _UNSAFE_LINE).sub(_escape, str(text))


def count(n: int, noun: str) -> str:
    """``n`` and the noun, plural unless ``n`` is one.

    Example:
        >>> count(1, "passage"), count(3, "file")
        ('1 passage', '3 files')
    """
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


class TerminalFormatter(logging.Formatter):
    r"""Log lines with :func:`for_terminal` applied: a warning that names a file shows it inert,
    on one line (a newline in a file name cannot start a forged log line of its own).

    Example:
        >>> record = logging.makeLogRecord({"msg": "skipped %s", "args": ("a\nERROR fake",)})
        >>> TerminalFormatter("%(message)s").format(record)
        'skipped a\\nERROR fake'
    """

    def format(self, record: logging.LogRecord) -> str:
        if isinstance(record.args, tuple) and record.args:
            inert = tuple(
                for_terminal(a) if isinstance(a, (str, os.PathLike, BaseException)) else a
                for a in record.args
            )  # each value on one line; the message itself may span lines
            record = logging.makeLogRecord({**record.__dict__, "args": inert})
        return for_terminal(super().format(record), multiline=True)


def quiet_libraries() -> None:
    """No per-load progress bars or warnings from transformers: the CLI prints its own lines.

    Said through the environment, which transformers reads when it is imported, so a command
    that never needs transformers (``ask`` on the ONNX runtime) does not import it to quiet it.
    """
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if "transformers" in sys.modules:  # already imported: tell it directly
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()


def error_message(err: BaseException) -> str:
    """One sentence for an expected error: the problem and the fix.

    Example:
        >>> error_message(OSError(28, "No space left on device", "notes/.notesqa"))
        'no space left on the device while writing notes/.notesqa; free some space and run the command again (an index being updated keeps its previous version)'
    """
    if isinstance(err, PermissionError):
        where = f" on {err.filename}" if err.filename else ""
        return f"permission denied{where}; check the folder's permissions or choose another folder"
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        where = f" while writing {err.filename}" if err.filename else ""
        return (
            f"no space left on the device{where}; free some space and run the command again "
            "(an index being updated keeps its previous version)"
        )
    if isinstance(err, OSError) and err.errno == errno.EROFS:
        return f"{err.filename or 'the folder'} is on a read-only file system; choose a writable folder"
    if isinstance(err, OSError) and err.errno == errno.ENAMETOOLONG:
        return f"a file name is too long: {err.filename}; use a shorter name"
    if isinstance(err, OSError) and type(err) is OSError:
        where = f": {err.filename}" if err.filename else ""
        return f"{err.strerror or err}{where}"
    return str(err)


EXPECTED_ERRORS = (ValueError, OSError, FloatingPointError)  # OSError covers files and TimeoutError


def where_to_find_the_index(args, err: BaseException) -> str:
    """For ``ask``, ``search`` and ``stats`` finding no index: how to name the one made (what
    to add to the error line; ``""`` for any other error).

    Example:
        >>> import argparse
        >>> from pathlib import Path
        >>> err = NoIndex(Path("/home/me/.notesqa"))
        >>> where_to_find_the_index(argparse.Namespace(index="/tmp/x"), err)
        ' (the folder given with --index)'
    """
    if not isinstance(err, NoIndex):
        return ""
    if getattr(args, "index", None):
        return " (the folder given with --index)"
    if os.environ.get("NOTESQA_INDEX"):
        return " (the folder NOTESQA_INDEX names)"
    return (
        " (the current folder's); to use an index made elsewhere, pass --index "
        "NOTES_DIR/.notesqa or set NOTESQA_INDEX=NOTES_DIR/.notesqa"
    )
