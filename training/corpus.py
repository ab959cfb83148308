"""Read pretraining text: JSONL(.gz) articles or plain-text files, one document at a time.

A document is a list of paragraphs. JSONL lines look like ``{"title": ..., "text": ...}`` with
paragraphs separated by newlines (the Wikipedia dumps in this project's data); a plain-text file
is one document whose paragraphs are its non-empty lines.

Example:
    >>> import tempfile
    >>> notes = Path(tempfile.mkdtemp()) / "notes.txt"
    >>> _ = notes.write_text("First para.\\n\\nSecond.\\n")
    >>> list(iter_documents([notes]))
    [['First para.', 'Second.']]
"""

from __future__ import annotations

import gzip
import io
import json
import re
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(\s+)(?=[\"'(\[]?[A-Z0-9])")


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="strict")
    return open(path, encoding="utf-8", errors="strict")


def iter_documents(paths: Iterable[str | Path], max_chars: int = 0) -> Iterator[list[str]]:
    """Yield each document as a list of non-empty paragraphs, stopping after ``max_chars``."""
    for _, paragraphs in iter_titled_documents(paths, max_chars):
        yield paragraphs


def iter_titled_documents(
    paths: Iterable[str | Path], max_chars: int = 0
) -> Iterator[tuple[str, list[str]]]:
    """Yield ``(title, paragraphs)`` per document, as ``iter_documents``.

    The title is the JSONL line's ``title`` (empty when it has none), a plain-text file's name.

    Example:
        >>> import tempfile
        >>> wiki = Path(tempfile.mkdtemp()) / "wiki.jsonl"
        >>> _ = wiki.write_text(json.dumps({"title": "Anarchism", "text": "A philosophy.\\nNo rulers."}))
        >>> list(iter_titled_documents([wiki]))
        [('Anarchism', ['A philosophy.', 'No rulers.'])]
    """
    seen = 0
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            raise IsADirectoryError(f"corpus {path} is a folder; pass the files in it")
        if not path.is_file():
            raise FileNotFoundError(
                f"corpus file {path} does not exist; pass existing files to --corpus"
            )
        is_jsonl = ".jsonl" in path.suffixes or ".json" in path.suffixes
        try:
            with _open_text(path) as handle:
                if is_jsonl:
                    for line_no, line in enumerate(handle, 1):
                        if not line.strip():
                            continue
                        try:
                            record = json.loads(line)
                            text = record["text"]
                        except (json.JSONDecodeError, KeyError, TypeError) as err:
                            raise ValueError(
                                f"{path}:{line_no}: expected a JSON object with a 'text' field ({err})"
                            ) from err
                        paragraphs = [p.strip() for p in text.split("\n") if p.strip()]
                        if paragraphs:
                            yield str(record.get("title") or ""), paragraphs
                            seen += len(text)
                            if max_chars and seen >= max_chars:
                                return
                else:
                    text = handle.read()
                    paragraphs = [p.strip() for p in text.split("\n") if p.strip()]
                    if paragraphs:
                        yield path.name, paragraphs
                        seen += len(text)
                        if max_chars and seen >= max_chars:
                            return
        except UnicodeDecodeError as err:
            raise ValueError(
                f"corpus file {path} is not UTF-8 ({err.reason} at byte {err.start}); "
                "re-encode it with `iconv -t UTF-8`"
            ) from err
        except (EOFError, gzip.BadGzipFile, zlib.error) as err:  # truncated or not gzip
            raise ValueError(
                f"corpus file {path} cannot be decompressed ({err}); copy or download it again"
            ) from err


def split_sentences(paragraph: str) -> list[str]:
    """Split a paragraph into sentences at ., ! or ? followed by a capital or digit.

    Example:
        >>> split_sentences("It rained. Then it stopped! Why? 3 reasons.")
        ['It rained.', 'Then it stopped!', 'Why?', '3 reasons.']
    """
    sentences, start = [], 0
    for match in _SENTENCE_END.finditer(paragraph):
        sentences.append(paragraph[start : match.start(1)])
        start = match.end(1)
    sentences.append(paragraph[start:])
    return [s for s in sentences if s.strip()]
