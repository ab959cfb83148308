"""Questions from a JSONL file (``--batch``), answered one JSON line each, in order.

A regular file is checked whole before the first (slow) answer; ``-`` (standard input),
``/dev/stdin`` or a named pipe is read as a stream, each line answered as it arrives.

Example:
    $ notesqa ask --batch questions.jsonl --index ~/notes/.notesqa > answers.jsonl
    $ make-questions | notesqa search --batch - --index ~/notes/.notesqa
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from rag.option_types import json_text

MAX_LINE_BYTES = 1 << 20  # a question is short; a longer line is not one


@contextmanager
def _open_lines(path: str) -> Iterator[BinaryIO]:
    """The batch as a binary stream: standard input for ``-``, else the file, pipe or device."""
    if path == "-":
        yield sys.stdin.buffer
        return
    source = Path(path).expanduser()
    if source.is_dir():
        raise IsADirectoryError(f"--batch {path} is a folder; pass a JSONL file of questions")
    if not source.exists():
        raise FileNotFoundError(
            f"--batch {path} does not exist; pass a JSONL file of questions, or - to read them "
            "from standard input"
        )
    with open(source, "rb") as handle:
        yield handle


def read_questions(path: str, field: str = "question") -> Iterator[tuple[object, str]]:
    """``(id, question)`` pairs from a JSONL file of ``{"id", "question"}`` objects; a bad line
    is an error naming ``path:line``.

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        ...     _ = f.write('{"id": 1, "question": "What does Adam keep?"}\\n[[[1]]]\\n')
        >>> pairs = read_questions(f.name)
        >>> next(pairs)
        (1, 'What does Adam keep?')
        >>> next(pairs)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ValueError: ...:2: expected a JSON object with 'id' and 'question' on each line
    """
    expected = f"a JSON object with 'id' and '{field}' on each line"
    with _open_lines(path) as handle:
        line_no = 0
        while raw := handle.readline(MAX_LINE_BYTES + 1):
            line_no += 1
            where = f"{path}:{line_no}"
            if len(raw) > MAX_LINE_BYTES:
                raise ValueError(
                    f"{where}: longer than {MAX_LINE_BYTES // 2**20} MiB; expected {expected}"
                )
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise ValueError(
                    f"{where}: not UTF-8 (byte {err.start}); save the file as UTF-8"
                ) from None
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                json.dumps(item)  # what is answered must be written back out
            except json.JSONDecodeError as err:
                raise ValueError(
                    f"{where}: not valid JSON ({err.msg}); expected {expected}"
                ) from None
            except RecursionError:
                raise ValueError(
                    f"{where}: nested too deeply to read; expected {expected}"
                ) from None
            if not isinstance(item, dict) or "id" not in item or field not in item:
                raise ValueError(f"{where}: expected {expected}")
            text = item[field]
            if not isinstance(text, str):
                raise ValueError(
                    f"{where}: '{field}' must be a string, got {json.dumps(text)}; expected {expected}"
                )
            if not text.strip():
                raise ValueError(f"{where}: '{field}' is empty; write the {field} or drop the line")
            yield item["id"], text


def is_stream(path: str) -> bool:
    """Whether ``--batch path`` can be read only once (standard input, a pipe, a device)."""
    return path == "-" or not Path(path).expanduser().is_file()


def run_batch(path: str, answer: Callable[[str], dict]) -> int:
    """One JSON line per question of ``path``: ``answer(question)`` plus the question's ``id``.

    A file is checked whole before the first answer; a stream line by line as it arrives."""
    if not is_stream(path):
        for _ in read_questions(path):  # every line checked before the first (slow) answer
            pass
    for qid, question in read_questions(path):
        print(json_text({"id": qid, **answer(question)}, indent=None), flush=True)
    return 0
