"""Drive the Streamlit app headlessly with streamlit.testing: index a folder, ask, see sources."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from app.passages import inert_line  # noqa: E402

APP = Path(__file__).resolve().parents[2] / "app" / "streamlit_app.py"
NOTES = {
    "ada.md": "# People\n\n## Ada\n\nAda Smithson was born in Oslo in 1850. Ada Smithson worked as a chemist.\n\n#chemists\n",
    "boris.txt": "Boris Kirason was born in Lima in 1901. Boris Kirason collected clocks.\n",
}


@pytest.fixture
def app(tmp_path, monkeypatch, tiny_embedder_dir, tiny_reader_dir) -> tuple[AppTest, Path]:
    notes = tmp_path / "notes"
    notes.mkdir()
    for name, text in NOTES.items():
        (notes / name).write_text(text, encoding="utf-8")
    monkeypatch.setenv("NOTESQA_NOTES", str(notes))
    monkeypatch.setenv("NOTESQA_EMBEDDER", str(tiny_embedder_dir))
    monkeypatch.setenv("NOTESQA_READER", str(tiny_reader_dir))
    return AppTest.from_file(str(APP), default_timeout=180), notes


def _ask(at: AppTest, question: str) -> AppTest:
    at.text_input(key="question").input(question)
    at.button(key="ask").click()
    return at.run()


def test_asking_before_indexing_says_what_to_do(app):
    at, _ = app
    at.run()
    assert not at.exception
    at = _ask(at, "Where was Ada Smithson born?")
    assert any("not indexed yet" in w.value for w in at.warning)


def test_index_then_ask_shows_answers_with_their_source(app):
    at, notes = app
    at.run()
    at.button(key="index").click()
    at.run()
    assert not at.exception
    assert any("Indexed 2 files" in s.value for s in at.sidebar.success)
    assert (notes / ".notesqa" / "manifest.json").exists()
    at = _ask(at, "Where was Ada Smithson born?")
    assert not at.exception
    shown = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    answered = "ada.md" in shown or "boris.txt" in shown
    abstained = any("No answer in your notes" in i.value for i in at.info)
    assert answered or abstained
    if answered:
        assert "<mark" in shown  # the answer is highlighted inside its passage
        # in the plain-text view, as `notesqa ask` prints it: no heading marks
        assert "&#35; People" not in shown and "&#35;&#35; Ada" not in shown


def test_always_show_the_best_span_overrides_a_reader_that_abstains(
    app, tmp_path, monkeypatch, tiny_reader_dir
):
    reader = tmp_path / "abstaining-reader"
    shutil.copytree(tiny_reader_dir, reader)
    settings = json.loads((reader / "notesqa_reader.json").read_text())
    settings["null_threshold"] = -1e9  # prefers "no answer" on every question
    (reader / "notesqa_reader.json").write_text(json.dumps(settings))
    monkeypatch.setenv("NOTESQA_READER", str(reader))
    at, _ = app
    at.run()
    at.button(key="index").click()
    at.run()
    at = _ask(at, "Where was Ada Smithson born?")
    assert any("No answer in your notes" in i.value for i in at.info)
    at.checkbox(key="always_answer").check()
    at = _ask(at.run(), "Where was Ada Smithson born?")
    assert not at.exception
    assert not any("No answer in your notes" in i.value for i in at.info)
    shown = " ".join(c.value for c in at.caption)
    assert "](file://" in shown  # an answer card with its place (path:line:col) linked


def test_the_tag_filter_offers_the_notes_tags_and_keeps_only_tagged_notes(app):
    at, _ = app
    at.run()
    assert at.multiselect(key="tags").disabled  # no index, no tags to offer
    at.button(key="index").click()
    at.run()
    assert at.multiselect(key="tags").options == ["chemists"]
    at.checkbox(key="always_answer").check()
    at.multiselect(key="tags").select("chemists")
    at = _ask(at.run(), "Where was Boris Kirason born?")
    assert not at.exception
    shown = " ".join(c.value for c in at.caption)
    assert "ada.md" in shown and "boris.txt" not in shown  # boris.txt has no tag


def test_the_page_serves_only_the_folders_it_was_started_with(app, tmp_path, monkeypatch):
    at, notes = app
    at.run()
    assert not at.exception
    assert not [t for t in at.text_input if t.key == "folder"]  # no box for a path of one's own
    assert inert_line(str(notes)) in " ".join(c.value for c in at.sidebar.caption)
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.setenv("NOTESQA_NOTES", f"{notes}{os.pathsep}{other}")
    at = AppTest.from_file(str(APP), default_timeout=180)
    at.run()
    assert at.selectbox(key="folder").options == ["notes", "other"]  # their names
    at.selectbox(key="folder").select_index(1).run()
    assert inert_line(str(other)) in " ".join(c.value for c in at.sidebar.caption)


def test_a_damaged_index_is_reported_and_index_notes_repairs_it(app):
    at, notes = app
    at.run()
    at.button(key="index").click()
    at.run()
    (notes / ".notesqa" / "notes.sqlite").write_bytes(b"garbage" * 100)
    at = _ask(at, "Where was Ada Smithson born?")
    assert not at.exception
    assert any("damaged" in e.value for e in at.error)
    at.button(key="index").click()
    at.run()
    assert any("Indexed 2 files" in s.value for s in at.sidebar.success)


def test_the_example_question_comes_from_the_notes(app):
    at, _ = app
    at.run()
    assert "Adam" not in at.text_input(key="question").placeholder  # not another course's notes
    at.button(key="index").click()
    at.run()
    assert at.text_input(key="question").placeholder == "e.g. a question about Ada"


MARKDOWN_NAME = "[click](https:evil.example) ![img](https:evil.example?x.png) **b**.md"


def test_a_skipped_file_name_is_shown_as_text_never_as_markdown(app):
    at, notes = app
    (notes / MARKDOWN_NAME).write_bytes(bytes(range(1, 32)) * 20)  # skipped: binary-looking
    at.run()
    at.button(key="index").click()
    at.run()
    assert not at.exception
    assert any(MARKDOWN_NAME in t.value for t in at.sidebar.text)  # listed, verbatim, as text
    markdown = [m.value for m in (*at.markdown, *at.caption, *at.success, *at.error, *at.info)]
    assert not [m for m in markdown if "](https:evil" in m]  # never a live link or image
