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
from pathlib import Path
from typing import TYPE_CHECKING

from app.errors import for_terminal
from rag.answers import Answer
from rag.locations import clickable, source_links, where

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


def answer_bounds(answer: Answer) -> tuple[int, int] | None:
    """Where the answer lies in its passage (``answer.context``): its offsets when they fall in
    the passage, else the first occurrence of its text; ``None`` when neither finds it.

    The offsets are of the source characters and are trusted as they are: the answer's text is
    read from the plain-text view (no backticks or link marks), so it may differ from
    ``context[start:end]`` (`` `m` and `v` `` read as ``m and v``) and a text search would miss.
    """
    start = answer.start - answer.context_start
    end = answer.end - answer.context_start
    if 0 <= start < end <= len(answer.context):
        return start, end
    found = answer.context.find(answer.text) if answer.text else -1
    return (found, found + len(answer.text)) if found >= 0 else None


def highlighted_passage(answer: Answer) -> str:
    """The answer's passage as inert HTML at body size, the answer's characters in ``<mark>``
    (chosen on the raw text, escaped after).

    Example:
        >>> a = Answer("m and v", 1.0, "a.md", 12, 21, "Adam keeps `m` and `v`.")
        >>> highlighted_passage(a)     # the style attributes shortened to ...
        "<div ...>Adam keeps &#96;<mark ...>m&#96; and &#96;v</mark>&#96;&#46;</div>"
    """
    context = answer.context
    bounds = answer_bounds(answer)
    if bounds is None:
        body = inert(context)
    else:
        start, end = bounds
        body = (
            inert(context[:start])
            + f"<mark style='{MARK_STYLE}'>{inert(context[start:end])}</mark>"
            + inert(context[end:])
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
