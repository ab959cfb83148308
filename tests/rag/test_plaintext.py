"""The reader's plain-text view of Markdown and its map back to the source characters."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag.plaintext import plain_view, source_span

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
