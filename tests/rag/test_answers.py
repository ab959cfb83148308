"""From passages to answers: overlap merging, fusion, calibrated abstention, Markdown views."""

from __future__ import annotations

import numpy as np
import pytest

from rag.answers import Answer, SearchHit, extract_answers, merge_overlapping
from rag.calibration import FEATURES, Calibrator
from rag.reader import JointReading, Reader, ReaderSettings
from rag.spans import Span


def test_overlapping_spans_of_one_file_are_merged_keeping_the_best():
    ranked = [
        Answer("two moving averages", 9.0, "a.md", 10, 29, ""),
        Answer("moving averages", 8.0, "a.md", 14, 29, ""),
        Answer("two moving averages per", 7.5, "a.md", 10, 33, ""),
        Answer("two moving averages", 7.0, "b.md", 10, 29, ""),  # another file: kept
        Answer("Adam", 6.0, "a.md", 0, 4, ""),
    ]
    kept = merge_overlapping(ranked)
    assert [(a.source, a.start, a.score) for a in kept] == [
        ("a.md", 10, 9.0),
        ("b.md", 10, 7.0),
        ("a.md", 0, 6.0),
    ]


class FakeJointReader:
    """A multi-passage reader whose reading is given: passage i's spans and a null score."""

    def __init__(self, spans, null_score, calibrator=None):
        self.settings = ReaderSettings(multi_passage=True)
        self.calibrator = calibrator
        self.spans, self.null_score = spans, null_score
        self.read_texts = None

    def read_jointly(self, question, texts):
        self.read_texts = list(texts)
        scores = [s.score for spans in self.spans for s in spans] + [self.null_score]
        return JointReading(self.spans, self.null_score, float(np.log(np.sum(np.exp(scores)))))


PASSAGES = [
    SearchHit("Adam keeps two moving averages.", 0.9, "ml.txt", 100, 131, "Adam"),
    SearchHit("SGD keeps nothing extra.", 0.2, "ml.txt", 200, 224, "SGD"),
]


def test_joint_answers_are_ranked_by_fusion_and_carry_offsets_in_the_file():
    reader = FakeJointReader(
        [[Span("two moving averages", 11, 30, 6.0)], [Span("nothing extra", 10, 23, 6.5)]], 0.0
    )
    answers = extract_answers(reader, "What does Adam keep?", PASSAGES)
    # the span scores are close: retrieval decides (mu 0.5 without a calibrator)
    assert [a.text for a in answers] == ["two moving averages", "nothing extra"]
    assert (answers[0].start, answers[0].end) == (111, 130)
    assert 0 < answers[0].confidence < 1


def test_the_calibrated_confidence_decides_when_to_abstain():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, len(FEATURES)))
    x[:, 0] = rng.uniform(-10, 0, size=200)  # log p(span)
    right = x[:, 0] > -3  # right when the span is likely
    calibrator = Calibrator.fit(x, right, min_confidence=0.5)
    sure = FakeJointReader([[Span("two moving averages", 11, 30, 9.0)], []], -5.0, calibrator)
    unsure = FakeJointReader([[Span("two moving averages", 11, 30, -5.0)], []], 9.0, calibrator)
    assert extract_answers(sure, "q?", PASSAGES)[0].confidence > 0.5
    assert extract_answers(unsure, "q?", PASSAGES) == []
    kept = extract_answers(unsure, "q?", PASSAGES, min_confidence=None)
    assert kept and kept[0].confidence < 0.5


def test_a_markdown_passage_is_read_without_markup_and_cited_in_the_source():
    note = SearchHit("## Adam\n\nAdam keeps `m` and `v`.", 1.0, "ml/adam.md", 50, 81, "Adam")
    view = "Adam\n\nAdam keeps m and v."
    at = view.index("m and v")
    reader = FakeJointReader([[Span("m and v", at, at + 7, 5.0)]], -5.0)
    answers = extract_answers(reader, "What does Adam keep?", [note])
    assert reader.read_texts == [view]
    assert answers[0].text == "m and v"
    assert note.text[answers[0].start - 50 : answers[0].end - 50] == "m` and `v"


@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan"), "high"])
def test_min_confidence_outside_zero_to_one_is_refused(value):
    from rag.answers import check_confidence

    with pytest.raises(ValueError, match="min_confidence"):
        check_confidence(value)


def test_answers_below_the_bar_do_not_follow_one_above_it():
    # make demo once printed "two moving averages 47%" and then a 1% guess under it
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, len(FEATURES)))
    x[:, 0] = rng.uniform(-10, 0, size=200)
    calibrator = Calibrator.fit(x, x[:, 0] > -3, min_confidence=0.5)
    spans = [[Span("two moving averages", 11, 30, 9.0)], [Span("nothing extra", 10, 23, -4.0)]]
    reader = FakeJointReader(spans, -5.0, calibrator)
    shown = extract_answers(reader, "q?", PASSAGES)
    assert [a.text for a in shown] == ["two moving averages"]
    every = extract_answers(reader, "q?", PASSAGES, min_confidence=None)
    assert [a.text for a in every] == ["two moving averages", "nothing extra"]
    assert every[1].confidence < 0.5


def test_calibrated_answers_are_listed_by_confidence_not_by_the_fused_score():
    # mu 0: the fused score is the retrieval score alone, so the well-retrieved passage's
    # unlikely span ranks first by fusion; the confidence (of the span probability) says otherwise
    calibrator = Calibrator([1.0, 0, 0, 0, 0, 0], 2.0, [0.0] * 6, [1.0] * 6, mu=0.0)
    spans = [[Span("moving averages", 15, 30, 1.0)], [Span("nothing extra", 10, 23, 6.0)]]
    reader = FakeJointReader(spans, 0.0, calibrator)
    every = extract_answers(reader, "q?", PASSAGES, min_confidence=None)
    assert [a.text for a in every] == ["nothing extra", "moving averages"]
    assert every[0].confidence > every[1].confidence
    assert every[0].score < every[1].score  # the fused score ranked them the other way


class FakeSinglePassageReader:
    """An older reader: each passage read alone, with its own no-answer score."""

    abstains = Reader.abstains

    def __init__(self, results, null_threshold=0.0):
        self.settings = ReaderSettings(null_threshold=null_threshold)
        self.calibrator, self.name, self.results = None, "old-reader", results

    def read(self, question, texts):
        return self.results


def test_a_single_passage_reader_holds_every_answer_listed_to_the_null_threshold():
    results = [
        ([Span("two moving averages", 11, 30, 6.0)], 1.0),  # 5 above its passage's null score
        ([Span("nothing extra", 10, 23, 4.0)], 7.0),  # 3 below its own: not an answer
    ]
    reader = FakeSinglePassageReader(results)
    assert [a.text for a in extract_answers(reader, "q?", PASSAGES)] == ["two moving averages"]
    every = extract_answers(reader, "q?", PASSAGES, null_threshold=None)
    assert [a.text for a in every] == ["two moving averages", "nothing extra"]
    assert extract_answers(reader, "q?", PASSAGES, null_threshold=-10.0) == []


def test_a_confidence_bar_for_a_reader_without_confidence_is_refused():
    reader = FakeSinglePassageReader([([Span("nothing extra", 10, 23, 4.0)], 0.0)] * 2)
    with pytest.raises(ValueError, match="min_confidence=0.5 needs a calibrated.*null_threshold"):
        extract_answers(reader, "q?", PASSAGES, min_confidence=0.5)
    assert extract_answers(reader, "q?", PASSAGES, min_confidence=None)  # never abstain: fine
