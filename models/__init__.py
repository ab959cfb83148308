"""The shipped default models (tokenizer, reader, embedder), found by editable and normal installs.

Example:
    >>> default_model_path("reader").name
    'reader'
"""

from __future__ import annotations

from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent
KINDS = ("tokenizer", "reader", "embedder")


def default_model_path(kind: str) -> Path:
    """Folder of the shipped model of ``kind``; a clear error if this install lacks it."""
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {KINDS}")
    path = MODELS_DIR / kind
    if not (path / "config.json").exists() and not (path / "tokenizer.json").exists():
        raise FileNotFoundError(
            f"the shipped {kind} is missing from {path}; reinstall notesqa or pass --model DIR "
            f"(train one with `notesqa train {kind if kind != 'tokenizer' else 'tokenizer'}`)"
        )
    return path
