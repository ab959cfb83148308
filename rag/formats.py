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
from html.parser import HTMLParser

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


class _VisibleText(HTMLParser):
    BLOCKS = {
        "p",
        "div",
        "br",
        "li",
        "ul",
        "ol",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "tr",
        "table",
        "section",
        "article",
        "pre",
        "blockquote",
        "header",
        "footer",
        "title",
    }
    HIDDEN = {"script", "style", "noscript", "template", "head"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag, attrs) -> None:
        if tag in self.HIDDEN and tag != "head":
            self.hidden += 1
        if tag in self.BLOCKS:
            self.parts.append("\n\n")
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self.parts.append("#" * int(tag[1]) + " ")  # headings become Markdown headings

    def handle_endtag(self, tag) -> None:
        if tag in self.HIDDEN and tag != "head" and self.hidden:
            self.hidden -= 1
        if tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data) -> None:
        if not self.hidden:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Visible text of an HTML page, one block per paragraph (``<h2>`` -> ``## ``).

    Example:
        >>> html_to_text("<h1>Cells</h1><p>Mitochondria <b>make</b> ATP.</p><script>x()</script>")
        '# Cells\\n\\nMitochondria make ATP.'
    """
    parser = _VisibleText()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    blocks = [" ".join(block.split()) for block in re.split(r"\n\s*\n", text)]
    return "\n\n".join(b for b in blocks if b)


def pdf_to_text(raw: bytes) -> str:
    """Text of every page (pypdf), pages separated by blank lines."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(raw))
    pages = [(page.extract_text() or "").strip() for page in reader.pages]
    return "\n\n".join(p for p in pages if p)
