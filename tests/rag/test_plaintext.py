"""The reader's plain-text view of Markdown and its map back to the source characters."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.answers import SearchHit, View, _answer
from rag.plaintext import plain_view, source_span
from rag.spans import Span

# a busy machine must not fail a property: no per-example deadline
relaxed = settings(deadline=None)

NOTE = """# Optimisers

## Adam

Adam keeps **two moving averages** per parameter: `m` and `v`, see [the paper](https://arxiv.org/abs/1412.6980).
The update is $\\theta_t = \\theta_{t-1} - \\alpha \\hat m_t$ and costs $5 of memory per... no: \\(2n\\) floats.

$$
v_t = \\beta_2 v_{t-1}
$$

```python
# a comment, not a heading
opt = torch.optim.Adam(params, lr=1e-3)  # `lr` stays
```

See [[Momentum|momentum]] and [[SGD]] too.
"""


def test_markup_is_gone_and_code_is_kept():
    text, _ = plain_view(NOTE)
    for markup in ("#", "**", "`", "](", "[[", "]]", "\\(", "$\\theta"):
        assert markup not in text.replace("# a comment", "").replace("# `lr` stays", "")
    assert "Adam keeps two moving averages per parameter: m and v, see the paper." in text
    assert "# a comment, not a heading" in text and "# `lr` stays" in text
    assert "costs $5 of memory" in text  # a price is not math
    assert "See momentum and SGD too." in text


def test_every_view_character_is_its_source_character():
    text, offsets = plain_view(NOTE)
    assert len(offsets) == len(text)
    assert all(NOTE[o] == ch for o, ch in zip(offsets, text, strict=True))
    assert all(a < b for a, b in zip(offsets, offsets[1:], strict=False))


def test_an_answer_in_the_view_is_cited_in_the_source():
    text, offsets = plain_view(NOTE)
    start = text.index("two moving averages")
    s, e = source_span(offsets, start, start + len("two moving averages"))
    assert NOTE[s:e] == "two moving averages"
    start = text.index("m and v")
    s, e = source_span(offsets, start, start + len("m and v"))
    assert NOTE[s:e] == "m` and `v"  # the source characters the answer spans
    with pytest.raises(ValueError):
        source_span(offsets, 5, 5)


@relaxed
@given(st.text(alphabet="ab #`$[]()*_\\\n|!x~", max_size=60))
def test_the_view_is_a_subsequence_of_any_text(markdown):
    text, offsets = plain_view(markdown)
    assert "".join(markdown[o] for o in offsets) == text
    assert all(a < b for a, b in zip(offsets, offsets[1:], strict=False))


def test_blanked_markup_reads_as_single_spaces():
    markdown = "  - see      momentum   too\n```\na   b\n```\n"
    text, offsets = plain_view(markdown)
    assert text == "  - see momentum too\na   b\n"  # indentation and code keep their spaces
    assert all(markdown[o] == ch for o, ch in zip(offsets, text, strict=True))


@pytest.mark.parametrize(
    "markdown, expected",
    [
        # two $ on a line pair up only where they are math (pandoc's tex_math_dollars)
        ("The status is in `$?` and home in `$HOME`.", "The status is in $? and home in $HOME."),
        ("echo $? prints it; $HOME is home", "echo $? prints it; $HOME is home"),
        ("It costs $5, or $10 with tax.", "It costs $5, or $10 with tax."),
        ("At the $ prompt type $ ls.", "At the $ prompt type $ ls."),
        ("export PATH=$HOME/bin:$PATH", "export PATH=$HOME/bin:$PATH"),
        ("Prices from $5-$10.", "Prices from $5-$10."),
        ("So $x$ and $y_1$ are math.", "So x and y_1 are math."),
        ("A price $5 then $x$ math.", "A price $5 then x math."),
        ("Escaped \\$x\\$ is text.", "Escaped $x$ is text."),
        ("`$x$` is code, not math.", "$x$ is code, not math."),
        ("$$ alone is the shell's PID", "$$ alone is the shell's PID"),
        ("$$\na = b\n$$\nafter", "\na = b\n\nafter"),
        ("$$x = 1$$ and $$y$$", "x = 1 and y"),
        ("$$a\n\nb$$", "$$a\n\nb$$"),  # display math never runs over a blank line
    ],
)
def test_dollars_are_math_only_where_they_are_math(markdown, expected):
    assert plain_view(markdown)[0] == expected


@pytest.mark.parametrize(
    "markdown, expected",
    [
        ("`__init__` and `a**b**c`", "__init__ and a**b**c"),  # no emphasis inside code
        ("`[x](y)` is not a link", "[x](y) is not a link"),
        ("`\\\\server\\share` and `a\\*b`", "\\\\server\\share and a\\*b"),  # no escapes in code
        ("`a   b`   c", "a   b c"),  # code keeps its spaces
        ("``a ` b`` and `c`", "a ` b and c"),  # a longer run holds a backtick
        ("\\`not code` here", "`not code` here"),  # an escaped backtick opens nothing
        ("an `unclosed one", "an `unclosed one"),
        ("__bold__ and **bold**", "bold and bold"),
        ("share \\\\server\\course here", "share \\\\server\\course here"),  # a UNC path
        ("a line break\\\\\nnext", "a line break\nnext"),
    ],
)
def test_code_reaches_the_reader_verbatim(markdown, expected):
    text, offsets = plain_view(markdown)
    assert text == expected
    assert all(markdown[o] == ch for o, ch in zip(offsets, text, strict=True))


def test_a_fence_closes_only_with_its_own_kind_and_length():
    markdown = "````md\n```\n$x$ and `y`\n````\n~~~\n# kept\n~~~\n$z$ `w`\n"
    assert plain_view(markdown)[0] == "```\n$x$ and `y`\n# kept\nz w\n"


def test_an_inline_code_line_is_not_a_fence():
    assert plain_view("```x``` then $y$")[0] == "x then y"


# prose without backticks (and never ending in a backslash, which would escape the next one),
# and code span contents, joined
_PROSE = st.text(alphabet="ab $#*_[]()\\\n|!x-", max_size=12).filter(lambda s: not s.endswith("\\"))
_CODE = st.text(alphabet="ab $#*_[]()\\|!x- ~", min_size=1, max_size=8)


@relaxed
@given(st.lists(st.tuples(_PROSE, _CODE), max_size=5), _PROSE)
def test_the_view_never_drops_a_character_of_a_code_span(pieces, tail):
    markdown, code = "", []
    for prose, content in pieces:
        markdown += prose + "`"
        code.append((len(markdown), len(markdown) + len(content)))
        markdown += content + "`"
    markdown += tail
    text, offsets = plain_view(markdown)
    kept = set(offsets)
    for start, end in code:
        assert all(i in kept for i in range(start, end)), (markdown, markdown[start:end])
        assert markdown[start:end] in text


@relaxed
@given(
    st.text(alphabet="ab $`#*_[]()\\\n-?%.x", max_size=50),
    st.integers(0, 60),
    st.integers(1, 12),
)
def test_answer_text_maps_back_to_the_same_characters_of_the_file(markdown, at, length):
    text, offsets = plain_view(markdown)
    if not text:
        return
    start = min(at, len(text) - 1)
    end = min(len(text), start + length)
    hit = SearchHit(markdown, 1.0, "note.md", 100, 100 + len(markdown), "")
    answer = _answer(hit, View(text, offsets), Span(text[start:end], start, end, 0.0), 0.0)
    s, e = answer.start - 100, answer.end - 100
    # the answer's characters are the file's between its offsets, less the markup the view drops
    assert "".join(markdown[o] for o in offsets if s <= o < e) == answer.text
    assert answer.text in text
