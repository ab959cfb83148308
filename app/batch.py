"""Questions from a JSONL file (``--batch``), answered one JSON line each, in order.

Example:
    $ notesqa ask --batch questions.jsonl --index ~/notes/.notesqa > answers.jsonl
"""

from __future__ import annotations

import json
from pathlib import Path


def read_questions(path: str, field: str = "question"):
    """``(id, question)`` pairs from a JSONL file of ``{"id", "question"}`` objects; a bad line
    is an error naming ``path:line`` (checked before its question is answered)."""
    source = Path(path).expanduser()
    if source.is_dir():
        raise IsADirectoryError(f"--batch {path} is a folder; pass a JSONL file of questions")
    if not source.is_file():
        raise FileNotFoundError(f"--batch {path} does not exist; pass a JSONL file of questions")
    expected = f"a JSON object with 'id' and '{field}' on each line"
    with open(source, "rb") as handle:
        for line_no, raw in enumerate(handle, 1):
            where = f"{path}:{line_no}"
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
            except json.JSONDecodeError as err:
                raise ValueError(
                    f"{where}: not valid JSON ({err.msg}); expected {expected}"
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


def run_batch(path: str, answer) -> int:
    """One JSON line per question of ``path``: ``answer(question)`` plus the question's ``id``."""
    list(read_questions(path))  # every line checked before the first (slow) answer
    for qid, question in read_questions(path):
        print(json.dumps({"id": qid, **answer(question)}, ensure_ascii=False), flush=True)
    return 0
