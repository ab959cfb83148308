"""Note text as the Streamlit app and the terminal show it: inert (no HTML or Markdown from a
note is ever interpreted, no escape sequence reaches the terminal), with the answer marked and its
source linked (on the page) or named as ``path:line:col`` (on the terminal).

Pure functions, so that they are tested without running the app (``app/streamlit_app.py``
renders the page when it is imported).

Example:
    >>> inert("# Adam <b>`m`</b>")
    '&#35; Adam &#60;b&#62;&#96;m&#96;&#60;/b&#62;'
"""

from __future__ import annotations

import textwrap
from bisect import bisect_left
from pathlib import Path
from typing import TYPE_CHECKING

from app.errors import for_terminal
from rag.answers import Answer
from rag.locations import clickable, source_links, where
from rag.plaintext import is_markdown, plain_view

if TYPE_CHECKING:
    from rag.store import Hit

# Every character that HTML or Streamlit's Markdown gives a meaning to (tags, entities, emphasis,
# code, headings, lists, links, tables, math, emoji and colour shortcodes), written as a numeric
# character reference: the browser shows the character, and neither parser acts on it.
_SPECIAL = set("&<>\"'`*_~#+-=|!.:[](){}\\$^%@")
MARK_STYLE = "background:#ffe58a;padding:0 2px;border-radius:3px"


def inert(text: str) -> str:
    """``text`` as HTML that shows it verbatim inside ``st.markdown(..., unsafe_allow_html=True)``:
    special characters as character references and line breaks as ``<br>`` (so the HTML is one
    line, which Markdown never splits into blocks)."""
    out = []
    for ch in text:
        if ch == "\n":
            out.append("<br>")
        elif ch in _SPECIAL:
            out.append(f"&#{ord(ch)};")
        else:
            out.append(ch)
    return "".join(out)


def inert_line(text: str) -> str:
    r"""A message that names files or quotes notes, for Streamlit's Markdown (``st.error``,
    ``st.success``...): :func:`inert`, on one line.

    Example:
        >>> inert_line("bad name '![x](http://evil/x.png)'\n")
        'bad name &#39;&#33;&#91;x&#93;&#40;http&#58;//evil/x&#46;png&#41;&#39;'
    """
    return inert(" ".join(text.split()))


def passage_view(source: str, text: str) -> tuple[str, list[int] | None]:
    r"""A passage as the page shows it: a Markdown note's plain-text view (no heading marks,
    backticks or link syntax, as the reader reads it and ``notesqa ask`` prints it) with the source
    index of each character, else the text itself (``None``: the same characters).

    Example:
        >>> passage_view("a.md", "## Adam\nKeeps `m`.")[0], passage_view("a.txt", "`m`")
        ('Adam\nKeeps m.', ('`m`', None))
    """
    if is_markdown(source):
        return plain_view(text)
    return text, None


def answer_bounds(answer: Answer, view: str, offsets: list[int] | None) -> tuple[int, int] | None:
    """Where the answer lies in ``view`` (:func:`passage_view` of its passage): its source
    offsets mapped into the view when they fall in the passage, else the first occurrence of its
    text; ``None`` when neither finds it.

    The offsets are trusted first: the answer's text was read from the plain-text view, so it is
    found there too, but an earlier occurrence of the same words would be marked instead.

    Example:
        >>> a = Answer("m and v", 1.0, "a.md", 12, 21, "Adam keeps `m` and `v`.")
        >>> answer_bounds(a, *passage_view(a.source, a.context))
        (11, 18)
    """
    start = answer.start - answer.context_start
    end = answer.end - answer.context_start
    if 0 <= start < end <= len(answer.context):
        if offsets is None:
            return start, end
        # the view's characters whose source characters lie in [start, end)
        first, last = bisect_left(offsets, start), bisect_left(offsets, end)
        if first < last:
            return first, last
    found = view.find(answer.text) if answer.text else -1
    return (found, found + len(answer.text)) if found >= 0 else None


def highlighted_passage(answer: Answer) -> str:
    """The answer's passage as inert HTML at body size, in its plain-text view
    (:func:`passage_view`), the answer's characters in ``<mark>`` (chosen on the text, escaped
    after).

    Example:
        >>> a = Answer("m and v", 1.0, "a.md", 12, 21, "Adam keeps `m` and `v`.")
        >>> highlighted_passage(a)  # doctest: +ELLIPSIS
        "<div ...>Adam keeps <mark ...>m and v</mark>&#46;</div>"
    """
    view, offsets = passage_view(answer.source, answer.context)
    bounds = answer_bounds(answer, view, offsets)
    if bounds is None:
        body = inert(view)
    else:
        start, end = bounds
        body = (
            inert(view[:start])
            + f"<mark style='{MARK_STYLE}'>{inert(view[start:end])}</mark>"
            + inert(view[end:])
        )
    return f"<div style='white-space:pre-wrap;font-size:1rem;font-weight:normal'>{body}</div>"


def source_link(
    notes_root: str | Path | None,
    source: str,
    line: int | None,
    column: int | None,
) -> str:
    """``source:line:col`` as a Markdown link to the note (its ``obsidian://`` URI in a vault,
    else its ``file://`` URI); the text alone when the notes folder is unknown.

    Example:
        >>> source_link("/home/ada/notes", "ml/adam.md", 3, 5)
        '[ml/adam&#46;md&#58;3&#58;5](file:///home/ada/notes/ml/adam.md)'
    """
    label = inert(clickable(source, line, column))
    links = source_links(notes_root, source)
    uri = links.get("obsidian_uri") or links.get("uri")
    if uri is None:
        return label
    return f"[{label}]({uri})"  # percent-encoded: no space, parenthesis or angle bracket left


def _one_line(text: str, limit: int | None = 300) -> str:
    return for_terminal(" ".join(text.split())[:limit])


def answer_for_terminal(rank: int, answer: Answer, notes_root: str | None) -> str:
    r"""An answer as ``notesqa ask`` prints it: the answer and how sure, its place, its sentence.

    Example:
        >>> a = Answer("m and v", 1.0, "ml/ad\x1b[2Jam.md", 12, 21, "Adam keeps `m` and `v`.")
        >>> print(answer_for_terminal(1, a, None))
        1. m and v   [score 1.00]
           source: ml/ad\x1b[2Jam.md (characters 12-21)
           > Adam keeps `m` and `v`.
    """
    place = where(notes_root, answer.source, answer.line, answer.column, answer.start, answer.end)
    heading = f" ({answer.heading})" if answer.heading else ""
    sure = (
        f"confidence {answer.confidence:.0%}"
        if answer.confidence is not None
        else f"score {answer.score:.2f}"
    )
    snippet = textwrap.fill(_one_line(answer.sentence or answer.context), 96)
    return (
        f"{rank}. {_one_line(answer.text, None)}   [{sure}]\n"
        f"   source: {for_terminal(place + heading)}\n" + textwrap.indent(snippet, "   > ")
    )


def hit_for_terminal(rank: int, hit: Hit, notes_root: str | None) -> str:
    """A passage as ``notesqa search`` prints it: score, place, heading and tags, then its text."""
    heading = f" ({hit.heading})" if hit.heading else ""
    tags = "".join(f" #{tag}" for tag in hit.tags)
    place = where(notes_root, hit.source, hit.line, hit.column, hit.start, hit.end)
    text = textwrap.indent(textwrap.fill(_one_line(hit.text), 96), "   ")
    return f"{rank}. [{hit.score:.3f}] {for_terminal(place + heading + tags)}\n{text}"
