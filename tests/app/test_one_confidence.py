"""One setting means one thing (#42): ``NotesQA.ask``, the LangChain ``NotesReader``,
``notesqa ask --json`` and the app give the same answers with the same confidences, most confident
first, for the stored threshold, a threshold given and never abstaining (the shipped models)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from app.cli import main  # noqa: E402
from rag.langchain_plugin import NotesReader, NotesRetriever  # noqa: E402
from rag.pipeline import NotesQA  # noqa: E402

APP = Path(__file__).resolve().parents[2] / "app" / "streamlit_app.py"
NOTES = {
    "ada.md": "# Ada\n\nAda Smithson was born in Oslo in 1850. She worked as a chemist.\n",
    "boris.md": "# Boris\n\nBoris Kirason was born in Lima in 1901. Boris Kirason collected "
    "clocks.\n",
    "places.txt": "Lisbon is a city by the sea.\n\nCairo is a city on the Nile.\n",
}
QUESTION = "What was Ada Smithson's job?"
# (NotesQA.ask / NotesReader keywords, notesqa ask flags, the app's widgets)
POLICIES = {
    "stored": ({}, [], {}),
    "given": ({"min_confidence": 0.5}, ["--min-confidence", "0.5"], {"slider": 0.5}),
    "never": ({"always_answer": True}, ["--always-answer"], {"always": True}),
}


@pytest.fixture(scope="module")
def notes(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("one-confidence") / "notes"
    folder.mkdir()
    for name, text in NOTES.items():
        (folder / name).write_text(text, encoding="utf-8")
    NotesQA.open(folder).index(progress=False)  # the shipped embedder
    return folder


def shown(answers: list[dict]) -> list[tuple[str, str, int, float]]:
    return [(a["text"], a["source"], a["start"], a["confidence"]) for a in answers]


def from_cli(notes: Path, flags: list[str], capsys) -> list[dict]:
    capsys.readouterr()
    assert main(["ask", QUESTION, "--index", str(notes / ".notesqa"), "--json", *flags]) == 0
    return json.loads(capsys.readouterr().out)["answers"]


def from_app(notes: Path, widgets: dict, monkeypatch) -> list[tuple[str, str]]:
    """(text, "confidence NN%") of each answer card the app shows."""
    monkeypatch.setenv("NOTESQA_NOTES", str(notes))
    monkeypatch.delenv("NOTESQA_EMBEDDER", raising=False)
    monkeypatch.delenv("NOTESQA_READER", raising=False)
    at = AppTest.from_file(str(APP), default_timeout=300)
    at.run()
    if "slider" in widgets:
        at.slider(key="min_confidence").set_value(widgets["slider"])
    if widgets.get("always"):
        at.checkbox(key="always_answer").check()
    at.text_input(key="question").input(QUESTION)
    at.button(key="ask").click()
    at.run()
    assert not at.exception
    titles = [m.value for m in at.markdown if m.value.startswith("### ")]
    sure = [c.value.rsplit(" · ", 1)[-1] for c in at.caption if " · confidence " in c.value]
    return [(t.split(". ", 1)[1], s) for t, s in zip(titles, sure, strict=True)]


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_every_front_door_gives_the_same_answers_and_confidences(
    policy, notes, capsys, monkeypatch
):
    keywords, flags, widgets = POLICIES[policy]
    qa = NotesQA.from_index(notes / ".notesqa")
    by_ask = shown([a.to_dict() for a in qa.ask(QUESTION, **keywords)])
    documents = NotesRetriever(index_dir=str(notes / ".notesqa"), k=5).invoke(QUESTION)
    by_reader = shown(
        NotesReader(**keywords).invoke({"question": QUESTION, "documents": documents})
    )
    by_cli = shown(from_cli(notes, flags, capsys))
    assert by_ask, "the question should have an answer under every policy"
    assert by_reader == by_ask
    assert by_cli == by_ask
    assert from_app(notes, widgets, monkeypatch) == [
        (text, f"confidence {confidence:.0%}") for text, _, _, confidence in by_ask
    ]
    confidences = [confidence for *_, confidence in by_ask]
    assert confidences == sorted(confidences, reverse=True)  # most confident first
    bar = {"stored": qa.reader.calibrator.min_confidence, "given": 0.5, "never": 0.0}[policy]
    assert all(confidence >= bar for confidence in confidences)  # every answer, not the first


def test_the_policies_differ_on_this_question(notes):
    """The test above is worth something only if the three policies show different lists."""
    qa = NotesQA.from_index(notes / ".notesqa")
    counts = [len(qa.ask(QUESTION, **POLICIES[p][0])) for p in ("given", "stored", "never")]
    assert counts[0] < counts[1] < counts[2], counts
