"""Where a passage sits, as words: its note's title and heading path, put in front of the passage
in the keyword (BM25) index.

A passage cut from the middle of a long section no longer holds the heading that says what it is
about ("the from-scratch ``adam`` function" is under "Adam > Implementation"); a list item or a
one-line fact is all detail and no topic. Prefixing the note title and heading path, as
LlamaIndex's metadata templates and contextual-retrieval write-ups do, gives every passage its
topic back. Only the *indexed* text changes: the passage's own text, offsets and the reader's
input stay those of the file.

Measured on notes_dev (``benchmarks/notes_qa.py --notes-dev --no-reader``, 75 questions): the
context lifts BM25 Recall@5 from 0.787 to 0.800 (Recall@1 0.507 -> 0.573), but embedding it costs
the shipped embedder 8 points (dense Recall@5 0.680 -> 0.600; with the context on the token
windows only, 0.653), and the hybrid gains nothing from it. So the keyword index gets the context
and the embedder the passage alone (docs/EXPERIMENTS.md).

The title is the front matter ``title``, else the file name made readable (``linear-regression.md``
-> ``linear regression``); it is left out when the heading path already starts with it. Heading
markup (``**``, backticks, d2lbook's ``(**...**)`` wrappers) is dropped.

Example:
    >>> passage_context("ml/linear-regression.md", "", "Linear Regression > Basics")
    'Linear Regression > Basics'
    >>> passage_context("ml/optim.md", "Optimisers", "Adam")
    'Optimisers > Adam'
    >>> keyword_text("Optimisers > Adam", "It keeps two moving averages.")
    'Optimisers > Adam\\n\\nIt keeps two moving averages.'
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

SEPARATOR = " > "  # between heading levels, as rag.chunking writes heading paths
_EMPHASIS = re.compile(r"\*+|`+|(?<!\w)_+|_+(?!\w)")
_WRAPPED = re.compile(r"^[\[(](.*)[\])]$")  # d2lbook "(**Implementation**)", "[**Concise**]"
_NOT_WORD = re.compile(r"[\W_]+")


def clean_heading(title: str) -> str:
    """A heading's words without emphasis markup or a wrapping pair of brackets.

    Example:
        >>> clean_heading("(**Implementation from Scratch**)"), clean_heading("The `adam` step")
        ('Implementation from Scratch', 'The adam step')
    """
    text = _EMPHASIS.sub("", title).strip()
    while match := _WRAPPED.match(text):
        text = match.group(1).strip()
    return " ".join(text.split())


def note_title(path: str, title: str = "") -> str:
    """The front matter ``title``, else the file name without extension, dashes and underscores
    read as spaces.

    Example:
        >>> note_title("ml/linear-regression.md"), note_title("a.md", "Adam")
        ('linear regression', 'Adam')
    """
    if title.strip():
        return " ".join(title.split())
    return " ".join(re.sub(r"[-_]+", " ", PurePosixPath(path).stem).split())


def _key(text: str) -> str:
    return _NOT_WORD.sub(" ", text).strip().lower()


def passage_context(path: str, title: str, heading: str) -> str:
    """``title > heading path`` of a passage of the note at ``path`` (see the module docstring).

    Example:
        >>> passage_context("notes/adam.md", "", "")
        'adam'
    """
    parts = [clean_heading(part) for part in heading.split(SEPARATOR)] if heading else []
    parts = [part for part in parts if part]
    name = note_title(path, title)
    if name and not (parts and _key(parts[0]) == _key(name)):
        parts.insert(0, name)
    return SEPARATOR.join(parts)


def keyword_text(context: str, text: str) -> str:
    """The text a passage is keyword-indexed as: context, a blank line, the text."""
    return f"{context}\n\n{text}" if context else text
