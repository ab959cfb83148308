"""notesqa's retrieval-augmented QA over a notes folder.

Example (the demo notes of this repository; the index goes to ``NOTES/.notesqa`` by default):
    >>> import tempfile
    >>> from rag import NotesQA
    >>> qa = NotesQA.open("examples/notes", index_dir=tempfile.mkdtemp())
    >>> qa.index(progress=False).files
    5
    >>> qa.ask("What does Adam keep for every parameter?")[0].text
    'two moving averages'
"""

from __future__ import annotations

__all__ = ["NotesQA", "Answer", "SearchHit"]


def __getattr__(name: str):  # lazy: `import rag.metrics` must not load torch
    if name in __all__:
        from rag import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'rag' has no attribute {name!r}")
