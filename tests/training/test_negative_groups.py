"""On-topic negatives: answer sentences removed from retrieved passages, confident mistakes mined."""

from __future__ import annotations

import pytest

from models import default_model_path
from training.negative_groups import confident_mistakes, without_answer_sentences

PASSAGES = [
    {"source": "a.md", "start": 100, "end": 160,
     "text": "Ada Lovelace was born in London. She wrote the first program."},
    {"source": "a.md", "start": 133, "end": 194,
     "text": "She wrote the first program. It ran on the Analytical Engine."},
    {"source": "b.md", "start": 0, "end": 30, "text": "Babbage designed the engine."},
]  # fmt: skip


def test_every_passage_that_holds_the_answer_loses_its_sentence():
    # "the first program" lies in both overlapping passages of a.md (the second starts at 133)
    spans = [[100 + 43, 100 + 60]]
    texts = without_answer_sentences(PASSAGES, "a.md", spans, ["the first program"])
    assert texts == [
        "Ada Lovelace was born in London.",
        "It ran on the Analytical Engine.",
        "Babbage designed the engine.",
    ]


def test_a_question_whose_answer_was_not_retrieved_is_no_removed_negative():
    assert without_answer_sentences(PASSAGES, "c.md", [[0, 5]], ["x"]) is None


def test_a_passage_left_empty_or_an_answer_said_again_refuses_the_question():
    assert without_answer_sentences(PASSAGES[2:], "b.md", [[0, 7]], ["Babbage"]) is None
    # a.md's "Engine" goes with its sentence, but b.md still says "engine"
    start = 133 + PASSAGES[1]["text"].index("Engine")
    assert without_answer_sentences(PASSAGES, "a.md", [[start, start + 6]], ["engine"]) is None


@pytest.mark.parametrize("keep", [1, 2])
def test_mining_keeps_the_most_confident_answers_first(keep):
    shipped = default_model_path("reader")  # a calibrated multi-passage reader
    groups = [
        {"question": "Who designed the engine?", "passages": ["Babbage designed the engine."],
         "answers": [], "kind": "removed"},
        {"question": "Where was Ada born?", "passages": ["Ada was born in London."],
         "answers": [], "kind": "edited"},
        {"question": "What ran?", "passages": ["It ran on the engine."], "answers": [],
         "kind": "removed"},
    ]  # fmt: skip
    mined = confident_mistakes(groups, shipped, keep, min_confidence=0.0)
    assert len(mined) == keep
    assert all(g["kind"] == "mined" for g in mined)
    confidences = [g["mined_confidence"] for g in mined]
    assert confidences == sorted(confidences, reverse=True)
    # a bar above every confidence mines nothing
    assert confident_mistakes(groups, shipped, keep, min_confidence=1.01) == []
