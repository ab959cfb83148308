"""Vault conventions of Markdown notes (Obsidian, Jekyll, d2lbook): what a note *says* about
itself, and the tool syntax that is not words.

``read_vault`` parses YAML front matter (``title``, ``tags``, ``aliases``) and collects inline
``#tags``; ``blank_markup`` blanks what a reader should not see: front matter, HTML comments,
Liquid ``{% ... %}`` / ``{{ ... }}``, d2lbook ``:begin_tab:``/``:end_tab:`` lines and
``:label:``/``:eqref:``/``:numref:`` roles, and the brackets and targets of wikilinks
(``[[note|alias]]`` reads ``alias``). Blanking replaces characters by spaces and keeps newlines,
so the text keeps its length and every offset (and line and column) is still one of the file.
Fenced code is left as written: a ``{{ }}`` there is an example, not a directive.

Front matter is read by hand, not with a YAML library: only ``key: value``, ``key: [a, b]`` and
``- item`` lists, which is what note tools write.

Example:
    >>> text, meta = read_vault("---\\ntags: [bio]\\n---\\nSee [[cell|cells]]. #exam")
    >>> text
    '   \\n           \\n   \\nSee        cells  . #exam'
    >>> meta
    VaultMeta(title='', tags=('bio', 'exam'), aliases=())
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.formats import _FRONT_MATTER

_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_INLINE_CODE = re.compile(r"(`+)[^`\n]+?\1")
_ROLE = re.compile(r":(?:label|eqref|numref|ref|cite|citet|citep|width|height):`[^`\n]*`")
# each directive is blanked whole
_DIRECTIVES = [
    re.compile(r"<!--.*?-->", re.DOTALL),  # HTML comments
    re.compile(r"\{%.*?%\}", re.DOTALL),  # Liquid tags {% include x.html %}
    re.compile(r"\{\{[-<%]?\s[^\n]*?\}\}"),  # {{ page.title }}, Hugo {{< fig >}}; not {{a}} TeX
    re.compile(r"^[ \t]*:(?:begin|end)_tab:.*$", re.MULTILINE),  # d2lbook tab lines
    _ROLE,
]
# [[target]], [[target|alias]], [[target#heading]], ![[embed]]
_WIKILINK = re.compile(r"(!?\[\[)([^\]|\n]+?)(?:(\|)([^\]\n]*))?(\]\])")
_MEDIA = re.compile(r"\.(?:png|jpe?g|gif|svg|webp|bmp|pdf|mp[34]|wav|webm|excalidraw)$", re.I)
# a tag: '#' after whitespace or the start, then letters/digits/_-/, not only digits (#1 is no tag)
_TAG = re.compile(r"(?<!\S)#((?=[\w/-]*[^\W\d])[\w/-]+)")
_KEY = re.compile(r"^([A-Za-z_][\w-]*)[ \t]*:(?:[ \t]+(.*?))?[ \t]*$")
_ITEM = re.compile(r"^[ \t]*-[ \t]+(.*?)[ \t]*$")


@dataclass(frozen=True)
class VaultMeta:
    """What a note says about itself: front matter title, tags (front matter, then inline
    ``#tags``, without ``#``, first spelling of each kept) and aliases."""

    title: str = ""
    tags: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()


def _blank(text: str) -> str:
    return re.sub(r"[^\n]", " ", text)


def _code_mask(text: str, start: int) -> list[bool]:
    """Which characters of ``text`` (from ``start``) are code: fenced blocks (fences included)
    and inline code spans (except the argument of a d2lbook role like ``:label:`x```)."""
    code = [False] * len(text)
    position, in_fence = 0, False
    for line in text.splitlines(keepends=True):
        fence = bool(_FENCE.match(line))
        if position >= start and (in_fence or fence):
            code[position : position + len(line)] = [True] * len(line)
        if fence and position >= start:
            in_fence = not in_fence
        position += len(line)
    for match in _INLINE_CODE.finditer(text, start):
        if not code[match.start()] and not text.endswith(":", 0, match.start()):
            code[match.start() : match.end()] = [True] * (match.end() - match.start())
    return code


def blank_markup(markdown: str) -> str:
    """``markdown`` with front matter, tool directives and wikilink syntax blanked (same length).

    Example:
        >>> note = "A <!-- todo --> [[Adam optimiser|Adam]] :label:`sec_adam`"
        >>> blank_markup(note).split(), len(blank_markup(note)) == len(note)
        (['A', 'Adam'], True)
        >>> blank_markup("```\\n{{ kept }}\\n```\\n[[Cells]]")
        '```\\n{{ kept }}\\n```\\n  Cells  '
    """
    match = _FRONT_MATTER.match(markdown)
    start = match.end() if match else 0
    out = list(markdown)
    if start:
        out[:start] = _blank(markdown[:start])
    skip = _code_mask(markdown, start)  # code, then also what is blanked already

    def blank_span(begin: int, end: int) -> None:
        out[begin:end] = _blank(markdown[begin:end])
        skip[begin:end] = [True] * (end - begin)

    for pattern in _DIRECTIVES:
        for found in pattern.finditer(markdown, start):
            if not skip[found.start()]:
                blank_span(*found.span())
    for found in _WIKILINK.finditer(markdown, start):
        if skip[found.start()]:
            continue
        target = found.group(2)
        if found.group(1).startswith("!") and _MEDIA.search(target.strip()):
            blank_span(*found.span())  # an embedded image is no words
            continue
        blank_span(*found.span(1))
        blank_span(*found.span(5))
        if found.group(3):  # [[target|alias]] reads "alias"
            blank_span(found.start(2), found.end(3))
        else:  # [[note#Heading]] reads "note Heading"; [[note#^block-id]] reads "note"
            hash_at = target.find("#")
            if hash_at >= 0:
                at = found.start(2) + hash_at
                blank_span(at, found.end(2) if target[hash_at:].startswith("#^") else at + 1)
    return "".join(out)


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _values(inline: str | None, items: list[str], split_spaces: bool) -> list[str]:
    """A front matter value as a list: ``[a, b]``, ``a, b`` (tags also ``a b``) or ``- a`` items."""
    if inline:
        inline = inline.strip()
        if inline.startswith("[") and inline.endswith("]"):
            parts = inline[1:-1].split(",")
        else:
            parts = re.split(r"[,\s]+" if split_spaces else ",", inline)
        return [_unquote(p) for p in parts if _unquote(p)]
    return [_unquote(item) for item in items if _unquote(item)]


def parse_front_matter(markdown: str) -> VaultMeta:
    """The ``title``, ``tags`` (or ``tag``) and ``aliases`` (or ``alias``) of a note's front matter.

    Example:
        >>> parse_front_matter("---\\ntitle: 'Adam'\\ntags: ml, optim\\naliases:\\n  - AdamW\\n---\\n")
        VaultMeta(title='Adam', tags=('ml', 'optim'), aliases=('AdamW',))
    """
    match = _FRONT_MATTER.match(markdown)
    if not match:
        return VaultMeta()
    fields: dict[str, tuple[str | None, list[str]]] = {}
    key = None
    for line in match.group(0).split("\n")[1:]:
        if line.lstrip().startswith("#") or not line.strip():
            continue
        item = _ITEM.match(line)
        if item and key is not None:
            fields[key][1].append(item.group(1))
            continue
        found = _KEY.match(line)
        key = found.group(1).lower() if found else None
        if key is not None:
            fields[key] = (found.group(2), [])
    title = _unquote(fields.get("title", (None, []))[0] or "")
    tags = [
        t.lstrip("#") for k in ("tags", "tag") for t in _values(*fields.get(k, (None, [])), True)
    ]
    aliases = [a for k in ("aliases", "alias") for a in _values(*fields.get(k, (None, [])), False)]
    return VaultMeta(title, tuple(_unique(t for t in tags if t)), tuple(_unique(aliases)))


def inline_tags(text: str) -> list[str]:
    """``#tags`` written in the text (not in code; ``# Heading`` is no tag), in order, once each.

    Example:
        >>> inline_tags("# Cells\\n#bio and #exam/2024, not #1 or a#b or `#code`")
        ['bio', 'exam/2024']
    """
    code = _code_mask(text, 0)
    found = (m.group(1).rstrip("/") for m in _TAG.finditer(text) if not code[m.start()])
    return _unique(found)


def _unique(values) -> list[str]:
    seen: set[str] = set()
    out = []
    for value in values:
        if value.casefold() not in seen:
            seen.add(value.casefold())
            out.append(value)
    return out


def read_vault(markdown: str) -> tuple[str, VaultMeta]:
    """``(text, meta)``: the note blanked by ``blank_markup`` (same length as ``markdown``), and
    its front matter with the inline tags added."""
    text = blank_markup(markdown)
    meta = parse_front_matter(markdown)
    tags = tuple(_unique([*meta.tags, *inline_tags(text)]))
    return text, VaultMeta(meta.title, tags, meta.aliases)
