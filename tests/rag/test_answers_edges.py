"""Answers keep what belongs to their edge tokens, cite the right characters of the note, and
the same answer found in two places is listed once."""

from __future__ import annotations

import numpy as np

from rag.answers import SearchHit, rank_joint_answers, reader_view
from rag.reader import JointReading
from rag.spans import Span

NOTE = "## Niceness\nNiceness ranges from **-20** to 19; the status is in `$?`."


def joint(spans: list[list[Span]]) -> JointReading:
    scores = [s.score for found in spans for s in found] + [0.0]
    return JointReading(spans, 0.0, float(np.log(np.sum(np.exp(scores)))))


def test_an_answer_gets_back_its_sign_and_cites_the_source_characters():
    hit = SearchHit(NOTE, 1.0, "shell.md", 500, 500 + len(NOTE), "Niceness")
    view = reader_view(hit)
    start = view.text.index("20 to 19")  # the reader's span starts after the "-" token
    status = view.text.index("?")
    reading = joint([[Span("20 to 19", start, start + 8, 5.0), Span("?", status, status + 1, 4.0)]])
    answers, _ = rank_joint_answers(reading, [hit], 0.5, 3, [view])
    assert [a.text for a in answers] == ["-20 to 19", "$?"]
    # offsets in the file: the markup between the answer's characters is the note's
    assert NOTE[answers[0].start - 500 : answers[0].end - 500] == "-20** to 19"
    assert NOTE[answers[1].start - 500 : answers[1].end - 500] == "$?"
    assert answers[0].sentence.endswith("Niceness ranges from -20 to 19; the status is in $?.")


def test_the_same_words_in_two_places_are_one_answer():
    first = SearchHit("Niceness goes from -20 to 19.", 0.9, "a.md", 0, 29, "")
    second = SearchHit("As said, -20 to 19 is the range.", 0.5, "b.md", 0, 32, "")
    reading = joint(
        [
            [Span("-20 to 19", 19, 28, 6.0)],
            [Span("-20 to 19", 9, 18, 5.0), Span("the range", 22, 31, 1.0)],
        ]
    )
    answers, rows = rank_joint_answers(reading, [first, second], 0.5, 3)
    assert [(a.text, a.source) for a in answers] == [("-20 to 19", "a.md"), ("the range", "b.md")]
    assert rows.shape[0] == 2


def test_answers_without_words_are_told_apart_by_their_characters():
    hit = SearchHit("Use $? for the status and $! for the job.", 1.0, "a.txt", 0, 41, "")
    q, b = hit.text.index("$?"), hit.text.index("$!")
    reading = joint([[Span("$?", q, q + 2, 5.0), Span("$!", b, b + 2, 4.0)]])
    answers, _ = rank_joint_answers(reading, [hit], 0.5, 3)
    assert [a.text for a in answers] == ["$?", "$!"]
