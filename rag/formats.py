"""Turn a note file's bytes into the text that gets indexed, by file type.

* Markdown: the text as written, except YAML front matter (``---`` … ``---`` at the top), which
  is blanked with spaces so that every later character keeps its offset in the file.
* Plain text: as written.
* HTML: the visible text (no scripts, styles or tags), blocks separated by blank lines.
* PDF (pypdf): the text of each page, pages separated by blank lines.

For Markdown and text files, answer offsets are offsets in the file; for HTML and PDF they are
offsets in the extracted text (a file's bytes have no character offsets to point at).

Example:
    >>> blank_front_matter("---\\ntitle: x\\n---\\n# Notes")
    '   \\n        \\n   \\n# Notes'
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from html import unescape

MARKDOWN = (".md", ".markdown")
TEXT = (".txt",)
HTML = (".html", ".htm")
PDF = (".pdf",)
EXTRACTED = HTML + PDF  # offsets refer to extracted text, not to the file

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n.*?\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)


def blank_front_matter(text: str) -> str:
    """Replace YAML front matter by spaces (newlines kept), so offsets stay those of the file."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return text
    head = re.sub(r"[^\n]", " ", match.group(0))
    return head + text[match.end() :]


_BLOCKS = frozenset(
    "p div br li ul ol h1 h2 h3 h4 h5 h6 tr table section article pre blockquote header footer "
    "title".split()
)
_HIDDEN = frozenset({"noscript", "template"})  # their text is not shown; nested ones counted
_RAW_TEXT = {  # their text is not HTML: it runs to the closing tag
    name: re.compile(rf"</{name}[\s/>]", re.IGNORECASE) for name in ("script", "style")
}
_OPEN = re.compile(r"<(?:[A-Za-z!?]|/[A-Za-z])")  # a "<" before anything else is text
_TAG_NAME = re.compile(r"<(/?)([A-Za-z][^\s/>]*)")
_IN_TAG = re.compile(r"[^>=]*")  # up to the end of a tag or an attribute's "="
_SPACE = re.compile(r"[ \t\n\r\f]*")


def _tag_end(html: str, pos: int) -> int:
    """The index after the ``>`` that ends the tag whose attributes start at ``pos`` (a ``>``
    inside a quoted attribute value does not), or -1 when the tag never ends."""
    while True:
        pos = _IN_TAG.match(html, pos).end()
        if pos >= len(html):
            return -1
        if html[pos] == ">":
            return pos + 1
        pos = _SPACE.match(html, pos + 1).end()  # after "="
        if html[pos : pos + 1] in ("'", '"'):
            close = html.find(html[pos], pos + 1)
            if close < 0:
                return -1
            pos = close + 1


def _visible_parts(html: str) -> Iterator[str]:
    """The text of ``html`` in pieces, ``"\\n\\n"`` around blocks and ``"## "`` before an
    ``<h2>``, in one pass: each ``<`` is looked at once, and a comment or tag that never ends
    ends the page (as in a browser), so no input makes it slow (``html.parser`` took seconds
    on a few kilobytes of ``<a <a <a``)."""
    pos, hidden = 0, 0
    while found := _OPEN.search(html, pos):
        lt = found.start()
        if not hidden:
            yield unescape(html[pos:lt])
        if html.startswith("<!--", lt):
            end = html.find("-->", lt + 4)
            pos = end + 3
        elif html.startswith(("<!", "<?"), lt):  # doctype, CDATA, processing instruction
            end = html.find(">", lt + 2)
            pos = end + 1
        else:
            tag = _TAG_NAME.match(html, lt)
            end = pos = _tag_end(html, tag.end())
            name, closing = tag.group(2).lower(), bool(tag.group(1))
            if end >= 0 and not closing and name in _RAW_TEXT:
                found = _RAW_TEXT[name].search(html, end)
                end = pos = found.start() if found else -1
            elif name in _HIDDEN:
                hidden = max(0, hidden - 1) if closing else hidden + 1
            if name in _BLOCKS:
                yield "\n\n"
            if name in ("h1", "h2", "h3", "h4", "h5", "h6") and not closing:
                yield "#" * int(name[1]) + " "  # headings become Markdown headings
        if end < 0:
            return
    if not hidden:
        yield unescape(html[pos:])


def html_to_text(html: str) -> str:
    """Visible text of an HTML page, one block per paragraph (``<h2>`` -> ``## ``).

    Example:
        >>> html_to_text("<h1>Cells</h1><p>Mitochondria <b>make</b> ATP.</p><script>x()</script>")
        '# Cells\\n\\nMitochondria make ATP.'
    """
    text = "".join(_visible_parts(html))
    blocks = [" ".join(block.split()) for block in re.split(r"\n\s*\n", text)]
    return "\n\n".join(b for b in blocks if b)


def pdf_to_text(raw: bytes) -> str:
    """Text of every page (pypdf), pages separated by blank lines."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(raw))
    pages = [(page.extract_text() or "").strip() for page in reader.pages]
    return "\n\n".join(p for p in pages if p)
