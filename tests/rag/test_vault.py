"""Vault conventions: front matter, wikilinks, tool directives and tags, with offsets kept."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag.chunking import ChunkingConfig, chunk_document, whitespace_token_count
from rag.documents import Document
from rag.plaintext import plain_view
from rag.vault import (
    _between,
    _inline_code,
    _liquid_outputs,
    _wikilinks,
    blank_markup,
    inline_tags,
    parse_front_matter,
    read_vault,
)

NOTE = """---
title: "Adam optimiser"
tags:
  - ml
  - "#optim"
aliases: [AdamW, 'Adam (Kingma)']
---
# Adam
:label:`sec_adam`

Adam <!-- TODO: check
the paper --> keeps two averages, see [[Momentum|momentum]] and [[SGD]] (:eqref:`eq_adam`).
{% include figure.html src="adam.png" %}
The page {{ page.title }} is built by Jekyll. #exam #ml

:begin_tab:`pytorch`
PyTorch calls it torch.optim.Adam.
:end_tab:

```liquid
{{ page.title }} #not-a-tag
```
"""


def test_front_matter_gives_title_tags_aliases():
    meta = parse_front_matter(NOTE)
    assert meta.title == "Adam optimiser"
    assert meta.tags == ("ml", "optim")
    assert meta.aliases == ("AdamW", "Adam (Kingma)")
    assert parse_front_matter("# no front matter\n").title == ""
    assert parse_front_matter("---\ntag: a b, c\nalias: One, Two\n---\n").tags == ("a", "b", "c")


def test_markup_is_blanked_and_words_stay_where_they_were():
    text, meta = read_vault(NOTE)
    assert len(text) == len(NOTE) and text.count("\n") == NOTE.count("\n")
    for gone in ("title:", "AdamW", "TODO", "the paper", "[[", "]]", "Momentum", "sec_adam"):
        assert gone not in text, gone
    for gone in ("eq_adam", "{%", "figure.html", "page.title }} is", ":begin_tab:", ":end_tab:"):
        assert gone not in text, gone
    assert "{{ page.title }} #not-a-tag" in text  # code is left alone
    assert " ".join(plain_view(text)[0].split()).startswith("Adam Adam keeps two averages, see")
    assert "momentum and SGD" in " ".join(text.split())
    for word in ("keeps two averages", "PyTorch calls it torch.optim.Adam.", "#exam #ml"):
        assert text.index(word) == NOTE.index(word)  # offsets are those of the file
    assert meta.tags == ("ml", "optim", "exam")  # front matter first, each once


def test_chunks_of_a_blanked_note_are_slices_of_the_file():
    text, _ = read_vault(NOTE)
    doc = Document("adam.md", text, "", 0.0, len(NOTE))
    chunks = chunk_document(doc, whitespace_token_count, ChunkingConfig(12, 3))
    assert chunks and all("title:" not in c.text for c in chunks)
    for chunk in chunks:
        original = NOTE[chunk.start : chunk.end]
        assert len(chunk.text) == len(original)
        # every character is the file's, or a space where markup was blanked
        assert all(a == b or a == " " for a, b in zip(chunk.text, original, strict=True))


def test_wikilink_forms():
    assert blank_markup("[[a/b note#Part]]").split() == ["a/b", "note", "Part"]
    assert blank_markup("[[note#^block1]] x").split() == ["note", "x"]
    assert blank_markup("![[diagram.png]] see ![[Other note]]").split() == ["see", "Other", "note"]
    assert blank_markup("`[[code]]` [[a|b]]").split() == ["`[[code]]`", "b"]


def test_inline_tags():
    note = "# Heading\n## Sub\ntext #bio, #exam/2024/ and#no #123 #a-b_c\n`#code`\n"
    assert inline_tags(note) == ["bio", "exam/2024", "a-b_c"]
    assert inline_tags("```\n#comment\n```\n#yes") == ["yes"]


def test_latex_braces_are_not_liquid():
    note = "$\\frac{{a}}{b}$ and {{x}}"
    assert blank_markup(note) == note


@given(st.text(alphabet="ab -#`[]|!{}%<>:\n", max_size=60))
def test_blanking_keeps_length_and_only_adds_spaces(markdown):
    text = blank_markup(markdown)
    assert len(text) == len(markdown)
    assert all(a == b or a == " " for a, b in zip(text, markdown, strict=True))


MB = 1_000_000
# each family of markup at about a megabyte, opened and never closed (or closed far away)
HOSTILE_NOTES = {
    "liquid tag without %}": "{% " * (MB // 3),
    "html comment without -->": "<!--" * (MB // 4),
    "liquid output without }}": "{{ " * (MB // 3),
    "liquid output closed on the next line": "{{ " + "a" * MB + "\n}}",
    "wikilink without ]]": "[[" * (MB // 2),
    "wikilink alias without ]]": "[[a|" * (MB // 4),
    "embed without ]]": "![[" * (MB // 3),
    "front matter without its closing ---": "---\n" + "key: value\n" * (MB // 11),
    "front matter value with a long run of spaces": "---\ntitle: a" + " " * MB + "b\n---\n",
    "front matter item with a long run of spaces": "---\ntags:\n  - a" + " " * MB + "b\n---\n",
    "backtick runs of growing length": "".join("`" * k + "a" for k in range(1, 1400)),
    "backticks only": "`" * MB,
    "role without its closing backtick": ":label:`" * (MB // 8),
    "a tag of digits": " #" + "1" * MB,
    "tab directives": ":begin_tab:" * (MB // 11),
    "fences": "```\n" * (MB // 4),
}


@pytest.mark.parametrize("family", sorted(HOSTILE_NOTES))
def test_a_megabyte_of_unclosed_markup_is_read_in_linear_time(family):
    note = HOSTILE_NOTES[family]
    started = time.perf_counter()
    text, _ = read_vault(note)
    assert time.perf_counter() - started < 3.0, family  # the regexes took minutes
    assert len(text) == len(note)


# the regular expressions the scanners replace: on short text they must agree exactly
REFERENCE = {
    "comments": (re.compile(r"<!--.*?-->", re.DOTALL), lambda t: _between(t, 0, "<!--", "-->")),
    "tags": (re.compile(r"\{%.*?%\}", re.DOTALL), lambda t: _between(t, 0, "{%", "%}")),
    "outputs": (re.compile(r"\{\{[-<%]?\s[^\n]*?\}\}"), lambda t: _liquid_outputs(t, 0)),
    "code": (re.compile(r"(`+)[^`\n]+?\1"), lambda t: _inline_code(t, 0)),
    "links": (
        re.compile(r"(!?\[\[)([^\]|\n]+?)(?:(\|)([^\]\n]*))?(\]\])"),
        lambda t: ((link.start, link.end) for link in _wikilinks(t, 0)),
    ),
}
PIECES = ["a", " ", "\n", "`", "[[", "]]", "[", "]", "|", "!", "{{", "}}", "{%", "%}", "<!--"]
PIECES += ["-->", "-", "<", "%", "\t"]


@given(st.lists(st.sampled_from(PIECES), max_size=14).map("".join))
def test_the_linear_scanners_find_what_the_regular_expressions_found(text):
    for name, (regex, scan) in REFERENCE.items():
        assert list(scan(text)) == [m.span() for m in regex.finditer(text)], name


@given(st.lists(st.sampled_from(["a", "[[", "]]", "|", "#", "!", "x.png", "\n"]), max_size=12))
def test_wikilink_parts_match_the_regular_expression(pieces):
    text = "".join(pieces)
    regex = REFERENCE["links"][0]
    found = [
        (m.start(), m.start(2), m.end(2), m.group(3) is not None, m.start(5))
        for m in regex.finditer(text)
    ]
    assert [tuple(link) for link in _wikilinks(text, 0)] == found


def test_a_megabyte_note_in_chinese_is_blanked_in_a_few_times_its_size():
    """A list of characters cost ~80 B each outside Latin-1 (30x the note); slices joined do not."""
    import tracemalloc

    line = "学习笔记：细胞的结构与功能 [[细胞|细胞]] <!-- 注释 --> #生物 `代码`\n"
    note = "---\ntitle: 笔记\n---\n" + line * (1_000_000 // len(line.encode()))
    size = len(note.encode())
    tracemalloc.start()
    try:
        text, meta = read_vault(note)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(text) == len(note) and text.count("\n") == note.count("\n")
    assert "细胞" in text and "注释" not in text and "[[" not in text
    assert meta.title == "笔记" and meta.tags == ("生物",)
    assert peak < 4 * size, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.1f} MB note"
