"""The app's rendering of note text: inert HTML, the answer marked, the source linked."""

from __future__ import annotations

from app.passages import highlighted_passage, inert, source_link
from rag.answers import Answer


def test_note_text_is_never_interpreted_as_html_or_markdown() -> None:
    shown = inert("# Big heading\n<script>alert('x')</script> **bold** `code` :smile: $x$")
    assert "<script" not in shown and "</script" not in shown
    assert "&#60;script&#62;" in shown
    for markup in ("#", "*", "`", ":", "$"):
        assert markup not in shown.replace("&#", "")  # every one a character reference
    assert "<br>" in shown and "\n" not in shown  # one line: Markdown cannot split it


def test_the_answer_is_marked_in_the_plain_text_view_as_the_cli_shows_it() -> None:
    context = "## Adam\n\nAdam keeps `m` and `v` <b>per</b> [parameter](http://x.org)."
    start, end = context.index("m` and `v"), context.index("v`") + 1
    # the reader reads "m and v" (no backticks) and cites the source characters
    answer = Answer("m and v", 1.0, "adam.md", 100 + start, 100 + end, context, context_start=100)
    html = highlighted_passage(answer)
    marked = html.split("<mark", 1)[1].split(">", 1)[1].split("</mark>")[0]
    assert marked == "m and v"  # no backticks: the plain-text view, marked where the answer is
    assert html.count("<mark") == 1 and "<b>" not in html and "&#60;b&#62;" in html
    assert "&#35;" not in html and "http" not in html  # no heading or link marks
    assert "Adam<br><br>Adam keeps" in html  # the heading shown as text, at body size
    assert html.startswith("<div ") and "font-size:1rem" in html


def test_a_text_note_is_shown_as_written() -> None:
    context = "Adam keeps `m` and `v`."
    answer = Answer("m` and `v", 1.0, "adam.txt", 12, 21, context)
    html = highlighted_passage(answer)
    assert "&#96;<mark" in html and "m&#96; and &#96;v</mark>" in html


def test_an_answer_outside_its_passage_is_found_by_its_text_or_left_unmarked() -> None:
    context = "Ada was born in Oslo."
    found = Answer("Oslo", 1.0, "a.md", 500, 504, context)  # offsets out of the passage
    assert "<mark" in highlighted_passage(found) and "Oslo</mark>" in highlighted_passage(found)
    missing = Answer("Lima", 1.0, "a.md", 500, 504, context)
    assert "<mark" not in highlighted_passage(missing)


def test_the_source_links_to_the_note(tmp_path) -> None:
    link = source_link(tmp_path, "ml/adam.md", 3, 5)
    assert link == f"[ml/adam&#46;md&#58;3&#58;5]({(tmp_path / 'ml' / 'adam.md').as_uri()})"
    (tmp_path / ".obsidian").mkdir()
    assert f"(obsidian://open?vault={tmp_path.name}&file=ml%2Fadam.md)" in source_link(
        tmp_path, "ml/adam.md", 3, 5
    )
    assert source_link(None, "adam.md", None, None) == "adam&#46;md"
