"""Checks on the arguments a caller passes to ``NotesQA`` and the LangChain retriever: each
returns the value or raises an error that names the argument, what it got and the fix.

Example:
    >>> check_count("k", 3)
    3
    >>> check_text("query", "  ")
    Traceback (most recent call last):
    ValueError: query is empty; type a query about your notes
"""

from __future__ import annotations

import numpy as np


def check_count(name: str, value: object) -> int:
    """``value`` as a count of at least 1, or ``ValueError`` naming ``name`` and the fix.

    Example:
        >>> check_count("k", 3)
        3
        >>> check_count("k", 0)
        Traceback (most recent call last):
        ValueError: k must be a whole number of at least 1, got 0
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")
    return int(value)


def check_text(name: str, value: object) -> str:
    """``value`` if it is a string with something besides whitespace, else an error."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__} {value!r}")
    if not value.strip():
        raise ValueError(f"{name} is empty; type a {name} about your notes")
    return value
