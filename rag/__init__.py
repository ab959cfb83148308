"""notesqa's retrieval-augmented QA over a notes folder.

Example:
    >>> from rag import NotesQA
    >>> qa = NotesQA.open("~/notes"); qa.index()
    >>> qa.ask("What does Adam keep per parameter?")[0].text
    'two moving averages'
"""

from __future__ import annotations

__all__ = ["NotesQA", "Answer", "SearchHit"]


def __getattr__(name: str):  # lazy: `import rag.metrics` must not load torch
    if name in __all__:
        from rag import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'rag' has no attribute {name!r}")
