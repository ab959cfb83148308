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

Every step takes time linear in the note, whatever it holds (a megabyte of ``{%`` or ``[[``
without a closer included): openers are found with ``str.find`` and each closer is looked for
once, never by a regular expression that retries a long span from every opener.

Example:
    >>> text, meta = read_vault("---\\ntags: [bio]\\n---\\nSee [[cell|cells]]. #exam")
    >>> text
    '   \\n           \\n   \\nSee        cells  . #exam'
    >>> meta
    VaultMeta(title='', tags=('bio', 'exam'), aliases=())
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from rag.formats import _FRONT_MATTER

_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_LINE_END = re.compile("\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")  # as splitlines
_TICKS = re.compile(r"`+")
_ROLE = re.compile(r":(?:label|eqref|numref|ref|cite|citet|citep|width|height):`[^`\n]*`")
_TAB_LINE = re.compile(r"^[ \t]*:(?:begin|end)_tab:.*$", re.MULTILINE)  # d2lbook tab lines
_TARGET_END = re.compile(r"[\]|\n]")  # a wikilink target ends at "]", "|" or a new line
_ALIAS_END = re.compile(r"[\]\n]")
_MEDIA = re.compile(r"\.(?:png|jpe?g|gif|svg|webp|bmp|pdf|mp[34]|wav|webm|excalidraw)$", re.I)
# a tag: '#' after whitespace or the start, then letters/digits/_-/, not only digits (#1 is no tag)
_TAG = re.compile(r"(?<!\S)#((?=[\w/-]*[^\W\d])[\w/-]+)")
_KEY = re.compile(r"([A-Za-z_][\w-]*)[ \t]*:")  # then nothing, or a space and the value


@dataclass(frozen=True)
class VaultMeta:
    """What a note says about itself: front matter title, tags (front matter, then inline
    ``#tags``, without ``#``, first spelling of each kept) and aliases."""

    title: str = ""
    tags: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()


def _blank(text: str) -> str:
    """``text`` as spaces, its newlines kept."""
    if "\n" not in text:
        return " " * len(text)
    return "\n".join(" " * len(line) for line in text.split("\n"))


def _between(text: str, pos: int, opener: str, closer: str) -> Iterator[tuple[int, int]]:
    """Spans from each ``opener`` to the first ``closer`` after it, left to right, as
    ``re.finditer(opener + ".*?" + closer, re.DOTALL)`` gives them, in linear time: once no
    closer follows an opener, none follows a later one either.

    Example:
        >>> list(_between("a {% x %} b {% y", 0, "{%", "%}"))
        [(2, 9)]
    """
    while (begin := text.find(opener, pos)) >= 0:
        end = text.find(closer, begin + len(opener))
        if end < 0:
            return
        pos = end + len(closer)
        yield begin, pos


def _liquid_outputs(text: str, pos: int) -> Iterator[tuple[int, int]]:
    """Spans of ``{{ page.title }}`` and Hugo's ``{{< fig >}}`` (a space after ``{{``, so TeX's
    ``{{a}}`` is not one), closed on the same line: ``\\{\\{[-<%]?\\s[^\\n]*?\\}\\}``, with the
    next ``}}`` and the next new line each looked for once per position passed.

    Example:
        >>> list(_liquid_outputs("{{a}} {{ b }} {{ c\\n}}", 0))
        [(6, 13)]
    """
    closer = newline = -1  # where the next "}}" and the next new line are, once looked for
    while (begin := text.find("{{", pos)) >= 0:
        body = begin + 2 + (text[begin + 2 : begin + 3] in ("-", "<", "%"))
        pos = begin + 1
        if not text[body : body + 1].isspace():
            continue
        if closer < body + 1:
            closer = text.find("}}", body + 1) % (len(text) + 1)  # none: len(text)
        if newline < body + 1:
            newline = text.find("\n", body + 1) % (len(text) + 1)
        if closer < newline:
            pos = closer + 2
            yield begin, pos


def _inline_code(text: str, pos: int) -> Iterator[tuple[int, int]]:
    """Spans of inline code as ``re.finditer(r"(`+)[^`\\n]+?\\1", text, pos)`` gives them, in
    linear time: a run of backticks opens, the next run on the same line closes, and the span
    takes as many backticks on each side as both runs have.

    Example:
        >>> list(_inline_code("a `b` ``c` d", 0))
        [(2, 5), (7, 10)]
    """
    newline = -1
    while (begin := text.find("`", pos)) >= 0:
        body = _TICKS.match(text, begin).end()
        close = text.find("`", body)
        if close < 0:
            return
        if newline < body:
            newline = text.find("\n", body) % (len(text) + 1)
        pos = close
        if close == body or newline < close:  # nothing between, or not on this line
            continue
        ticks = min(body - begin, _TICKS.match(text, close).end() - close)
        pos = close + ticks
        yield body - ticks, pos


class _Link(NamedTuple):
    """A wikilink ``[[target|alias]]``: where it, its target and its closing ``]]`` start."""

    start: int  # of "[[" or "![["
    target: int
    target_end: int  # a "|" there when ``alias``
    alias: bool
    close: int  # "]]"

    @property
    def end(self) -> int:
        return self.close + 2


def _wikilinks(text: str, pos: int) -> Iterator[_Link]:
    """``[[target]]``, ``[[target|alias]]``, ``![[embed]]``: a target without ``]``, ``|`` or a
    new line, an alias without ``]`` or a new line, as the regular expression
    ``(!?\\[\\[)([^\\]|\\n]+?)(?:(\\|)([^\\]\\n]*))?(\\]\\])`` finds them, in linear time.

    Example:
        >>> [link.end for link in _wikilinks("[[a]] [[b|c]] [[d", 0)]
        [5, 13]
    """
    target_end = alias_end = -1  # the next end of a target and of an alias, once looked for
    while (begin := text.find("[[", pos)) >= 0:
        start = begin - 1 if begin > pos and text[begin - 1] == "!" else begin
        pos, target = begin + 1, begin + 2
        if target_end < target:
            found = _TARGET_END.search(text, target)
            target_end = found.start() if found else len(text)
        stop = text[target_end : target_end + 1]
        if target_end == target or stop not in ("]", "|"):
            continue
        if stop == "]":
            if text.startswith("]]", target_end):
                pos = target_end + 2
                yield _Link(start, target, target_end, False, target_end)
            continue
        if alias_end <= target_end:
            found = _ALIAS_END.search(text, target_end + 1)
            alias_end = found.start() if found else len(text)
        if text.startswith("]]", alias_end):
            pos = alias_end + 2
            yield _Link(start, target, target_end, True, alias_end)


def _lines(text: str) -> Iterator[str]:
    """``text.splitlines(keepends=True)`` one line at a time (no list of every line).

    Example:
        >>> list(_lines("a\\r\\nb\\nc")) == "a\\r\\nb\\nc".splitlines(keepends=True)
        True
    """
    pos = 0
    for end in _LINE_END.finditer(text):
        yield text[pos : end.end()]
        pos = end.end()
    if pos < len(text):
        yield text[pos:]


def _code_mask(text: str, start: int) -> bytearray:
    """Which characters of ``text`` (from ``start``) are code (1) or not (0): fenced blocks
    (fences included) and inline code spans (except the argument of a d2lbook role like
    ``:label:`x```)."""
    code = bytearray(len(text))
    position, in_fence = 0, False
    for line in _lines(text):
        fence = bool(_FENCE.match(line))
        if position >= start and (in_fence or fence):
            code[position : position + len(line)] = b"\x01" * len(line)
        if fence and position >= start:
            in_fence = not in_fence
        position += len(line)
    for begin, end in _inline_code(text, start):
        if not code[begin] and not text.endswith(":", 0, begin):
            code[begin:end] = b"\x01" * (end - begin)
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
    # one byte a character, not a list of characters (~80 B each outside Latin-1)
    blanked = bytearray(len(markdown))
    blanked[:start] = b"\x01" * start
    skip = _code_mask(markdown, start)  # code, then also what is blanked already

    def blank_span(begin: int, end: int) -> None:
        blanked[begin:end] = b"\x01" * (end - begin)
        skip[begin:end] = b"\x01" * (end - begin)

    directives = (  # each blanked whole
        _between(markdown, start, "<!--", "-->"),  # HTML comments
        _between(markdown, start, "{%", "%}"),  # Liquid tags {% include x.html %}
        _liquid_outputs(markdown, start),  # {{ page.title }}, Hugo {{< fig >}}
        (found.span() for found in _TAB_LINE.finditer(markdown, start)),
        (found.span() for found in _ROLE.finditer(markdown, start)),
    )
    for spans in directives:
        for begin, end in spans:
            if not skip[begin]:
                blank_span(begin, end)
    for link in _wikilinks(markdown, start):
        if skip[link.start]:
            continue
        target = markdown[link.target : link.target_end]
        if markdown[link.start] == "!" and _MEDIA.search(target.strip()):
            blank_span(link.start, link.end)  # an embedded image is no words
            continue
        blank_span(link.start, link.target)
        blank_span(link.close, link.end)
        if link.alias:  # [[target|alias]] reads "alias"
            blank_span(link.target, link.target_end + 1)
        else:  # [[note#Heading]] reads "note Heading"; [[note#^block-id]] reads "note"
            hash_at = target.find("#")
            if hash_at >= 0:
                at = link.target + hash_at
                blank_span(at, link.target_end if target[hash_at:].startswith("#^") else at + 1)
    skip.clear()  # no longer needed: free it before the text is joined
    return _join_blanked(markdown, blanked)


def _join_blanked(text: str, blanked: bytearray) -> str:
    """``text`` with the characters marked in ``blanked`` made spaces (newlines kept), joined
    from slices, so the result costs about its own size.

    Example:
        >>> _join_blanked("ab\\ncd", bytearray(b"\\x00\\x01\\x01\\x01\\x00"))
        'a \\n d'
    """
    joined, pieces, pos = [], [], 0  # pieces joined every few thousand: small slices cost ~60 B
    for run in re.finditer(rb"\x01+", blanked):
        begin, end = run.span()
        pieces += (text[pos:begin], _blank(text[begin:end]))
        pos = end
        if len(pieces) >= 4096:
            joined.append("".join(pieces))
            pieces.clear()
    pieces.append(text[pos:])
    joined.append("".join(pieces))
    del pieces
    return joined[0] if len(joined) == 1 else "".join(joined)


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
        item = line.lstrip(" \t")
        if item[:1] == "-" and item[1:2] in (" ", "\t") and key is not None:  # "  - value"
            fields[key][1].append(item[1:].strip(" \t"))
            continue
        found = _KEY.match(line)
        value = line[found.end() :] if found else ""
        key = found.group(1).lower() if found and value[:1] in ("", " ", "\t") else None
        if key is not None:  # split by hand: a regular expression took seconds on long runs
            fields[key] = (value.strip(" \t") if value else None, [])
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
