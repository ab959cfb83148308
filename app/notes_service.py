"""One opened index answering other programs: the HTTP API (``notesqa serve``) and the MCP server
(``notesqa mcp``) share it.

Results carry the fields of ``notesqa ask --json`` / ``search --json``: ``text``, ``source`` (the
file, relative to the notes), ``start``/``end``, ``line``/``column``, the ``uri`` (``file://``)
and, for answers, the ``confidence``. Bad arguments raise ``ValueError`` naming the argument and
its range. Nothing here writes anything, and ``passage`` reads only notes the index holds.

Thread-safe: one lock runs one question at a time through the models (on a laptop's cores, one
at a time is also the fastest: the models use every core for each question), and an index that
``notesqa watch`` updates is picked up by the next request.

Example (the demo notes, indexed into a temporary folder):
    >>> import tempfile
    >>> from rag import NotesQA
    >>> index_dir = tempfile.mkdtemp()
    >>> NotesQA.open("examples/notes", index_dir=index_dir).index(progress=False).files
    5
    >>> service = NotesService(index_dir)
    >>> [a["source"] for a in service.ask("What does Adam keep for every parameter?")["answers"]]
    ['optimisers.md']
    >>> service.passage("optimisers.md", 31)["source"]
    'optimisers.md'
    >>> service.passage("../secrets.txt", 1)
    Traceback (most recent call last):
    ValueError: ../secrets.txt is not a note of this index; pass a source as search or ask returned it
"""

from __future__ import annotations

import threading
from pathlib import Path

from rag.arguments import check_count
from rag.arguments import check_text as checked_text
from rag.locations import source_links, with_links
from rag.modes import DEFAULT_MODE, MODES
from rag.pipeline import NotesQA
from rag.reader import STORED

MAX_K = 50  # passages a search returns or an ask reads, at most
MAX_ANSWERS = 10
MAX_TEXT = 2_000  # characters of a question or query
MAX_BATCH = 64  # questions of one batch request


def check_k(name: str, value: int, most: int) -> int:
    """``rag.arguments.check_count`` with an upper bound."""
    if check_count(name, value) > most:
        raise ValueError(f"{name} must be a whole number from 1 to {most}, not {value!r}")
    return value


def check_text(name: str, value: str) -> str:
    """``rag.arguments.check_text`` (a type error read as a bad value) with a length bound."""
    try:
        checked_text(name, value)
    except TypeError as error:
        raise ValueError(str(error)) from None
    if len(value) > MAX_TEXT:
        raise ValueError(f"{name} is {len(value)} characters; at most {MAX_TEXT} are read")
    return value


class NotesService:
    """The notes behind ``index_dir`` (``None``: ``$NOTESQA_INDEX``, then ``./.notesqa``)."""

    def __init__(
        self,
        index_dir: str | Path | None = None,
        embedder: str | None = None,
        reader: str | None = None,
    ) -> None:
        self.qa = NotesQA.from_index(index_dir, embedder=embedder, reader=reader)
        self.lock = threading.Lock()
        with self.lock:
            _ = self.qa.store  # a missing or damaged index fails here, not at the first request

    @property
    def notes_root(self) -> str | None:
        root = self.qa.store.manifest.get("notes_root")
        return root if isinstance(root, str) else None

    def search(
        self,
        query: str,
        k: int = 5,
        mode: str = DEFAULT_MODE,
        tags: list[str] | tuple[str, ...] = (),
        path_glob: str | None = None,
    ) -> dict:
        """The ``k`` passages closest to ``query``, best first."""
        check_text("query", query)
        check_k("k", k, MAX_K)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        with self.lock:
            hits = self.qa.search(query, k=k, mode=mode, tags=tuple(tags), path_glob=path_glob)
            root = self.notes_root
        return {"query": query, "hits": [with_links(h.to_dict(), root) for h in hits]}

    def ask(
        self,
        question: str,
        k: int = 5,
        answers: int = 3,
        min_confidence: float | None = None,
        always_answer: bool = False,
        tags: list[str] | tuple[str, ...] = (),
        path_glob: str | None = None,
    ) -> dict:
        """Answers from the notes, most confident first; ``[]`` when none reaches
        ``min_confidence`` (``None``: the value stored with the reader)."""
        check_text("question", question)
        check_k("k", k, MAX_K)
        check_k("answers", answers, MAX_ANSWERS)
        if min_confidence is not None and not 0.0 <= float(min_confidence) <= 1.0:
            raise ValueError(f"min_confidence must be from 0 to 1, not {min_confidence!r}")
        bar = STORED if min_confidence is None else float(min_confidence)
        with self.lock:
            found = self.qa.ask(
                question,
                k=k,
                top_answers=answers,
                min_confidence=bar,
                always_answer=always_answer,
                tags=tuple(tags),
                path_glob=path_glob,
            )
            root = self.notes_root
        return {"question": question, "answers": [with_links(a.to_dict(), root) for a in found]}

    def ask_batch(self, questions: list[str], **options) -> list[dict]:
        """``ask`` of each question, in order."""
        if not isinstance(questions, list) or not 1 <= len(questions) <= MAX_BATCH:
            raise ValueError(f"questions must be a list of 1 to {MAX_BATCH} questions")
        for question in questions:
            check_text("each question", question)
        return [self.ask(question, **options) for question in questions]

    def files(self) -> list[dict]:
        """Every indexed note: ``source``, ``passages`` and its links."""
        with self.lock:
            documents = self.qa.store.documents()
            root = self.notes_root
        return [
            {"source": d["path"], "passages": d["num_chunks"], **source_links(root, d["path"])}
            for d in documents
        ]

    def passage(self, source: str, line: int) -> dict:
        """The indexed passage of note ``source`` (as search and ask return it) holding ``line``.
        Only the index's notes can be read: any other path is refused, never opened."""
        check_text("source", source)
        if isinstance(line, bool) or not isinstance(line, int) or line < 1:
            raise ValueError(f"line must be a whole number from 1, not {line!r}")
        with self.lock:
            chunk = self.qa.store.passage_at(source, line)
            root = self.notes_root
        if chunk is None:
            raise ValueError(
                f"{source} is not a note of this index; pass a source as search or ask returned it"
            )
        record = {
            "text": chunk.text,
            "source": chunk.source,
            "start": chunk.start,
            "end": chunk.end,
            "heading": chunk.heading,
            "line": chunk.line,
            "column": chunk.column,
        }
        return with_links(record, root)

    def stats(self) -> dict:
        with self.lock:
            return self.qa.stats()
