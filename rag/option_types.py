"""argparse types for the command lines' option values: each refuses a bad value with a message
that names the problem (``-k 0``: "must be at least 1, got 0").

Example:
    >>> positive_int("3")
    3
    >>> unit_interval("1.5")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: must lie between 0 and 1, got '1.5'
"""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path

# What json.dumps(ensure_ascii=False) leaves raw (it escapes C0 controls itself) although a
# terminal acts on it or cannot print it: DEL, C1 controls (0x9b is CSI to some terminals), the
# bidi embeddings, overrides and isolates, and lone surrogates (a file name that is not UTF-8).
# They only ever stand inside JSON strings, so a \uXXXX escape is valid JSON that reads back
# the same.
_JSON_UNSAFE = re.compile(r"[\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def json_text(payload, indent: int | None = 2) -> str:
    r"""``payload`` as JSON, non-ASCII kept but nothing a terminal would act on left raw.

    Example:
        >>> json_text({"name": "a\x1b[31m\x9b31m\u202e.md"}, indent=None)
        '{"name": "a\\u001b[31m\\u009b31m\\u202e.md"}'
    """
    text = json.dumps(payload, indent=indent, ensure_ascii=False)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def print_json(payload) -> int:
    """Print ``payload`` as indented JSON (:func:`json_text`); returns 0, a command's exit code."""
    print(json_text(payload))
    return 0


def utf8_text(text: str) -> str:
    r"""argparse type: text that is valid UTF-8 (a question, a filter). Python hands over a byte
    that is not UTF-8 as a lone surrogate, which nothing downstream can encode.

    Example:
        >>> utf8_text("café")
        'café'
        >>> utf8_text("caf\udce9")
        Traceback (most recent call last):
        argparse.ArgumentTypeError: is not valid UTF-8 (byte 0xe9 at character 4); type it again, or set your terminal to UTF-8
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        bad = text[err.start]
        byte = ord(bad) - 0xDC00 if 0xDC80 <= ord(bad) <= 0xDCFF else None
        what = f"byte 0x{byte:02x}" if byte is not None else f"code point U+{ord(bad):04X}"
        raise argparse.ArgumentTypeError(
            f"is not valid UTF-8 ({what} at character {err.start + 1}); type it again, or set "
            "your terminal to UTF-8"
        ) from None
    return text


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1 (``-k``, ``--answers``)."""
    value = _whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def unit_interval(text: str) -> float:
    """argparse type: a number from 0 to 1 (``--min-confidence``)."""
    value = finite_float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must lie between 0 and 1, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: a whole number of at least 0."""
    value = _whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number above 0 (``--max-minutes``)."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text!r}")
    return value


def finite_float(text: str) -> float:
    """argparse type: a finite number (no nan or inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def port_number(text: str) -> int:
    """argparse type: a TCP port, 1 to 65535."""
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a port is 1 to 65535, got {value}")
    return value


def model_folder(text: str) -> str:
    """argparse type for ``--init`` / model paths: an existing local folder, or ``hf:ORG/NAME``
    for a model on the Hugging Face Hub (only then is anything downloaded)."""
    if text.startswith("hf:"):
        if not text[3:].strip():
            raise argparse.ArgumentTypeError("hf: needs a model name, e.g. hf:prajjwal1/bert-mini")
        return text[3:]
    path = Path(text).expanduser()
    if not path.is_dir():
        raise argparse.ArgumentTypeError(
            f"no model folder at {text}; pass a folder made by `notesqa train`, or "
            f"hf:ORG/NAME for a model on the Hugging Face Hub"
        )
    return str(path)
