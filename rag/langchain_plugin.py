"""LangChain integration: notesqa's index as a retriever, its embedder as ``Embeddings``, its reader as a runnable.

Needs the ``langchain`` extra (``pip install 'notesqa[langchain]'``, i.e. langchain-core).

Example (the demo notes, indexed into a temporary folder):
    >>> import tempfile
    >>> from langchain_core.runnables import RunnablePassthrough
    >>> from rag import NotesQA
    >>> from rag.langchain_plugin import NotesRetriever, NotesReader
    >>> index_dir = tempfile.mkdtemp()
    >>> NotesQA.open("examples/notes", index_dir=index_dir).index(progress=False).files
    5
    >>> retriever = NotesRetriever(index_dir=index_dir, k=4)
    >>> [d.metadata["source"] for d in retriever.invoke("What does Adam keep for every parameter?")]
    ['optimisers.md', 'optimisers.md', 'optimisers.md', 'optimisers.md']
    >>> chain = {"question": RunnablePassthrough(), "documents": retriever} | NotesReader()
    >>> chain.invoke("What does Adam keep for every parameter?")[0]["text"]
    'two moving averages'
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableConfig, RunnableSerializable
from pydantic import ConfigDict, Field, PrivateAttr, field_validator

from rag.arguments import check_count, check_text
from rag.modes import DEFAULT_MODE


class NotesRetriever(BaseRetriever):
    """The ``k`` passages of an indexed notes folder closest to the query, as ``Document``s.

    ``page_content`` is the passage text; ``metadata`` holds ``source`` (path relative to the notes
    folder), ``start``/``end`` (character offsets of the passage in that file), ``line`` and
    ``column`` (1-based, of ``start``; absent for an index written before positions), ``heading``,
    ``tags`` (the note's front matter and inline ``#tags``) and ``score`` (see ``rag.retrieve``
    for what it means in each mode). ``invoke(query, k=2)`` overrides ``k`` for one call and
    ``invoke(query, note_tags=["exam"])`` the tag filter. (The filter is ``note_tags``, not
    ``tags``: LangChain's own ``tags`` label a run for callbacks and tracing.)

    Example:
        >>> import tempfile
        >>> from rag import NotesQA
        >>> index_dir = tempfile.mkdtemp()
        >>> NotesQA.open("examples/notes", index_dir=index_dir).index(progress=False).files
        5
        >>> exam = NotesRetriever(index_dir=index_dir, note_tags=["exam"])
        >>> sorted({tag for d in exam.invoke("light reactions") for tag in d.metadata["tags"]})
        ['biology', 'exam']
        >>> [d.metadata["line"] for d in exam.invoke("light reactions", k=2)]   # k for one call
        [28, 42]
    """

    index_dir: str | None = None
    """Index folder (default: ``$NOTESQA_INDEX``, then ``./.notesqa``)."""
    embedder: str | None = None
    """Embedder folder (default: the shipped one); must be the one that built the index."""
    k: int = Field(default=4, ge=1)
    """Passages to return (at least 1)."""
    mode: str = DEFAULT_MODE
    """Retrieval: ``hybrid`` (default, see ``rag.modes``), ``rrf``, ``bm25`` or ``dense``."""
    filter: str | None = None
    """Only files whose path matches this glob (e.g. ``"biology/*"``), applied inside the search."""
    note_tags: list[str] = Field(default_factory=list)
    """Only notes with every one of these tags (``"ml"`` also matches ``"ml/optim"``), applied
    inside the search."""

    _qa: Any = PrivateAttr(default=None)

    def _notes(self):
        if self._qa is None:
            from rag.pipeline import NotesQA

            self._qa = NotesQA.from_index(self.index_dir, embedder=self.embedder)
        return self._qa

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
        note_tags: list[str] | None = None,
        **_: Any,
    ) -> list[Document]:
        check_text("query", query)
        k = self.k if k is None else check_count("k", k)
        tags = self.note_tags if note_tags is None else note_tags
        hits = self._notes().search(query, k=k, mode=self.mode, path_glob=self.filter, tags=tags)
        return [
            Document(
                page_content=hit.text,
                metadata={
                    "source": hit.source,
                    "start": hit.start,
                    "end": hit.end,
                    "heading": hit.heading,
                    "tags": list(hit.tags),
                    "score": hit.score,
                    # 1-based position of start in the file; left out for an older index
                    **({"line": hit.line, "column": hit.column} if hit.line is not None else {}),
                },
            )
            for hit in hits
        ]


class NotesEmbeddings(Embeddings):
    """notesqa's bi-encoder behind LangChain's ``Embeddings`` interface (unit-length vectors).

    Example:
        >>> vector = NotesEmbeddings().embed_query("momentum")
        >>> len(vector), round(sum(x * x for x in vector), 4)
        (256, 1.0)
    """

    def __init__(self, model: str | None = None, batch_size: int = 64) -> None:
        from embedder import Embedder

        self.model_path = model
        self.batch_size = batch_size
        self._embedder = Embedder.load(model)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        return self._embedder.encode(
            list(texts), batch_size=self.batch_size, kind="passage"
        ).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self._embedder.encode([text], kind="query")[0].tolist()


class NotesReader(RunnableSerializable[dict, list[dict]]):
    """Extract answer spans from retrieved documents: ``{"question", "documents"} -> [answer dicts]``.

    Each answer: ``text``, ``score``, ``source`` and ``start``/``end`` as character offsets in the
    source file (when the documents came from ``NotesRetriever``, else in the document), its
    ``line`` and ``column`` there (when the documents carry theirs, else ``None``), and the
    ``context`` passage and ``confidence`` (``Answer.to_dict()``, shared with ``NotesQA.ask``),
    most confident first. An empty list means the reader found no answer it trusts: lower
    ``min_confidence``, or set ``always_answer=True`` to see its best guess.

    ``min_confidence`` and ``always_answer`` mean what they mean in ``NotesQA.ask``,
    ``notesqa ask`` and the app: left at ``"stored"`` (``rag.reader.STORED``), the value stored
    with the reader; a number in [0, 1] overrides it; ``None`` lists every answer found. (``None``
    once meant the stored value here.)

    Example (two passages as plain strings; the shipped reader stores ``min_confidence`` 0.1):
        >>> docs = ["Ada Smithson was born in Oslo in 1850. She worked as a chemist.",
        ...         "Boris Kirason collected clocks."]
        >>> ask = {"question": "What was Ada Smithson's job?", "documents": docs}
        >>> [(a["text"], round(a["confidence"], 2)) for a in NotesReader().invoke(ask)]
        [('chemist', 0.55), ('born in Oslo', 0.29)]
        >>> [a["text"] for a in NotesReader(min_confidence=None).invoke(ask)]  # every answer
        ['chemist', 'born in Oslo', 'Boris Kirason']
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    reader: str | None = None
    """Reader folder (default: the shipped one)."""
    top_answers: int = Field(default=3, ge=1)
    min_confidence: float | None | str = "stored"
    """List only answers whose confidence (P(right)) reaches this: ``"stored"`` (default), the
    value stored with the reader; a number in [0, 1]; ``None``: every answer found."""
    always_answer: bool = False
    """Never abstain, whichever the reader (an older single-passage reader's null threshold
    too)."""

    @field_validator("min_confidence")
    @classmethod
    def _check_min_confidence(cls, value: float | None | str) -> float | None | str:
        from rag.answers import check_confidence

        return check_confidence(value)

    _reader: Any = PrivateAttr(default=None)

    def invoke(
        self, input: dict, config: RunnableConfig | None = None, **kwargs: Any
    ) -> list[dict]:
        return self._call_with_config(self._read, input, config, **kwargs)

    def _read(self, input: dict) -> list[dict]:
        from rag.answers import SearchHit, extract_answers
        from rag.reader import Reader

        question, documents = _reader_input(input)
        if not documents:  # nothing retrieved: nothing to read (and no model to load)
            return []
        if self._reader is None:
            self._reader = Reader.load(self.reader)
        passages = [
            SearchHit(
                d.page_content,
                float(d.metadata.get("score", 0.0)),
                d.metadata.get("source", ""),
                int(d.metadata.get("start", 0)),
                int(d.metadata.get("end", len(d.page_content))),
                d.metadata.get("heading", ""),
                d.metadata.get("line"),
                d.metadata.get("column"),
            )
            for d in documents
        ]
        never = {"null_threshold": None, "min_confidence": None} if self.always_answer else {}
        options = never or {"min_confidence": self.min_confidence}
        answers = extract_answers(self._reader, question, passages, self.top_answers, **options)
        return [a.to_dict() for a in answers]


def _reader_input(given: Any) -> tuple[str, list[Document]]:
    """``NotesReader``'s input checked: ``(question, documents)``; a plain string in
    ``documents`` is read as a document with that text.

    Example:
        >>> _reader_input({"question": "Why?", "documents": ["Because."]})[1][0].page_content
        'Because.'
    """
    shape = '{"question": "...", "documents": [Document, ...]}'
    if not isinstance(given, dict) or "question" not in given or "documents" not in given:
        raise ValueError(
            f"NotesReader takes {shape} (e.g. from a NotesRetriever), not {type(given).__name__} "
            f"{sorted(given) if isinstance(given, dict) else ''}".rstrip()
        )
    question, documents = given["question"], given["documents"]
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"NotesReader needs a question (a non-empty string), not {question!r}")
    if isinstance(documents, (str, Document)) or not isinstance(documents, (list, tuple)):
        raise ValueError(f"NotesReader's documents must be a list, as in {shape}")
    checked = []
    for i, doc in enumerate(documents):
        if isinstance(doc, str):
            doc = Document(page_content=doc)
        if not isinstance(doc, Document):
            raise ValueError(
                f"NotesReader's documents[{i}] is a {type(doc).__name__}, not a LangChain "
                "Document or a string"
            )
        checked.append(doc)
    return question, checked
