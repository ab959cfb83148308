"""``notesqa eval squad`` runs the reader as the product does (#42 part 5): the shipped
multi-passage reader abstains on SQuAD v2.0 through its calibrated confidence."""

from __future__ import annotations

import json

import pytest

from app.cli import main
from rag.answers import extract_joint_answers
from rag.reader import Reader, ReaderSettings
from training.calibrate import group_passages
from training.squad_eval import answer_policy, predict_jointly

ADA = "Ada Smithson was born in Oslo in 1850. She worked as a chemist in Bergen until 1901."
QUESTIONS = [
    ("answerable", "Where was Ada Smithson born?", ["Oslo"]),
    # on topic, but the paragraph does not say: SQuAD v2.0's kind of unanswerable question
    ("unanswerable", "What did Ada Smithson's father sell in Stockholm?", []),
]


@pytest.fixture(scope="module")
def v2_file(tmp_path_factory):
    qas = [
        {
            "id": qid,
            "question": question,
            "is_impossible": not answers,
            "answers": [{"text": a, "answer_start": ADA.index(a)} for a in answers],
        }
        for qid, question, answers in QUESTIONS
    ]
    data = {
        "version": "v2.0",
        "data": [{"title": "Ada", "paragraphs": [{"context": ADA, "qas": qas}]}],
    }
    path = tmp_path_factory.mktemp("squad") / "dev-v2.0.json"
    path.write_text(json.dumps(data))
    return path


def evaluate(path, *flags, capsys) -> dict:
    capsys.readouterr()
    assert main(["eval", "squad", "--data", str(path), "--json", *flags]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_shipped_reader_abstains_on_v2_as_the_product_does(v2_file, capsys):
    default = evaluate(v2_file, capsys=capsys)
    assert default["policy"]["name"] == "calibrated"
    assert default["policy"]["min_confidence"] == Reader.load().calibrator.min_confidence
    assert default["policy"]["min_confidence_from"] == "stored with the reader"
    assert default["HasAns_f1"] == 100.0  # "Oslo"

    sure = evaluate(v2_file, "--min-confidence", "0.95", capsys=capsys)
    assert sure["NoAns_f1"] == 100.0  # the paragraph does not say: it abstains
    assert sure["policy"]["min_confidence_from"] == "given"

    always = evaluate(v2_file, "--always-answer", capsys=capsys)
    assert always["policy"] == {
        "name": "always-answer",
        "reading": always["policy"]["reading"],
        "min_confidence": None,
        "answered": 1.0,
    }
    assert always["NoAns_f1"] == 0.0 and always["HasAns_f1"] == 100.0  # it answers both
    with pytest.raises(SystemExit):  # one or the other
        main(["eval", "squad", "--data", str(v2_file), "--always-answer", "--min-confidence", "0"])


def test_the_evaluation_answers_what_notesqa_ask_would_show_first(v2_file):
    """Batched reading gives each question the answers ``extract_joint_answers`` gives it alone."""
    reader = Reader.load(runtime="torch")
    examples = [{"id": qid, "question": question, "context": ADA} for qid, question, _ in QUESTIONS]
    batched = predict_jointly(reader, examples, min_confidence=None, batch_questions=2)
    for example in examples:
        alone = extract_joint_answers(
            reader, example["question"], group_passages({"passages": [ADA]}), 3, None
        )
        assert batched[example["id"]] == alone[0].text


class SinglePassageReader:
    """What ``answer_policy`` looks at of an older reader: no calibrator, a null threshold."""

    settings, calibrator, name = ReaderSettings(null_threshold=-1.5), None, "old-reader"


def test_a_reader_without_confidence_is_evaluated_by_its_null_threshold():
    reader = SinglePassageReader()
    policy = answer_policy(reader, v2=True)
    assert (policy["name"], policy["null_threshold"]) == ("null-threshold", -1.5)
    assert answer_policy(reader, v2=False)["name"] == "always-answer"
    assert answer_policy(reader, v2=True, always_answer=True)["name"] == "always-answer"
    with pytest.raises(ValueError, match="--min-confidence 0.5 needs a calibrated"):
        answer_policy(reader, v2=True, min_confidence=0.5)


def test_v1_is_answered_in_full_unless_a_bar_is_given():
    reader = Reader.load()
    assert answer_policy(reader, v2=False)["name"] == "always-answer"
    given = answer_policy(reader, v2=False, min_confidence=0.4)
    assert (given["name"], given["min_confidence"]) == ("calibrated", 0.4)
