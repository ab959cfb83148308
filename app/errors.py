"""How the ``notesqa`` command reports trouble: one sentence per expected error (the problem and
the fix), and quiet libraries.

Example:
    >>> error_message(PermissionError(13, "Permission denied", "/notes/.notesqa"))
    'permission denied on /notes/.notesqa; check the folder's permissions or choose another folder'
"""

from __future__ import annotations

import errno
import os
import sys


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
