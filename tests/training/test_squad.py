import pytest

from training.configs import ReaderConfig
from training.reader import train_reader
from training.squad import (
    make_unanswerable,
    remove_answer_sentences,
    sentence_spans,
)


def test_sentence_spans_are_the_sentences_without_the_spaces_between():
    text = 'Dr. Ada went to Oslo in 1990. She said "Hello."  Then (in 1991) she left!'
    pieces = [text[start:end] for start, end in sentence_spans(text)]
    # "Dr." is split off: a regex splitter is approximate, which only costs a negative example
    assert pieces == [
        "Dr.",
        "Ada went to Oslo in 1990.",
        'She said "Hello."',
        "Then (in 1991) she left!",
    ]
    assert sentence_spans("no final stop here") == [(0, 18)]
    assert sentence_spans("") == []


def _example(context: str, answer: str, occurrence: int = 0) -> dict:
    start = -1
    for _ in range(occurrence + 1):
        start = context.index(answer, start + 1)
    return {
        "id": "q1",
        "title": "T",
        "question": "Where did Ada live?",
        "context": context,
        "answers": [{"text": answer, "answer_start": start}],
        "is_impossible": False,
    }


def test_removing_the_answer_sentence_keeps_the_rest_of_the_paragraph():
    example = _example(
        "Ada was born in 1815. Ada lived in Oslo. She wrote notes. She died young.", "Oslo"
    )
    assert (
        remove_answer_sentences(example) == "Ada was born in 1815. She wrote notes. She died young."
    )


def test_no_negative_when_the_answer_survives_elsewhere_or_too_little_is_left():
    repeated = _example("Ada lived in Oslo. Oslo is cold. She wrote notes.", "Oslo")
    assert remove_answer_sentences(repeated) is None  # "Oslo is cold." still says it
    short = _example("Ada lived in Oslo. She wrote notes.", "Oslo")
    assert remove_answer_sentences(short) is None  # one sentence left is not a paragraph
    assert remove_answer_sentences(short, min_sentences=1) == "She wrote notes."
    spanning = _example(
        "Ada lived in Oslo. Then Bergen. She wrote notes. She died young.", "Oslo. Then Bergen"
    )
    assert remove_answer_sentences(spanning) == "She wrote notes. She died young."


def _article() -> list[dict]:
    contexts = [
        "Ada was born in 1815. Ada lived in Oslo. She wrote notes. She died young.",
        "Boris sang songs. He lived in Rome. He had a cat.",
        "Clara painted. She lived in Lima. Her paintings were large.",
    ]
    answers = ["Oslo", "Rome", "Lima"]
    examples = []
    for i, (context, answer) in enumerate(zip(contexts, answers, strict=True)):
        e = _example(context, answer)
        e["id"] = f"q{i}"
        examples.append(e)
    return examples


def test_answer_removed_negatives_stay_on_their_own_paragraph():
    examples = _article()
    negatives = make_unanswerable(examples, ratio=1.0, style="answer_removed")
    assert [n["id"] for n in negatives] == ["q0-neg", "q1-neg", "q2-neg"]
    for original, negative in zip(examples, negatives, strict=True):
        assert negative["is_impossible"] and negative["answers"] == []
        assert original["answers"][0]["text"] not in negative["context"]
        # every remaining sentence comes from the question's own paragraph
        for start, end in sentence_spans(negative["context"]):
            assert negative["context"][start:end] in original["context"]


def test_mixed_negatives_use_both_styles_and_unknown_styles_are_refused():
    examples = [dict(e, id=f"q{i}") for i, e in enumerate(_article() * 20)]
    paragraphs = {e["context"] for e in examples}
    negatives = make_unanswerable(examples, ratio=1.0, seed=3, style="mixed")
    assert len(negatives) == len(examples)  # every question has both kinds available
    from_other_paragraph = sum(n["context"] in paragraphs for n in negatives)
    assert 0.3 < from_other_paragraph / len(negatives) < 0.7  # the rest lost their answer sentence
    with pytest.raises(ValueError, match="answer_removed"):
        make_unanswerable(examples, ratio=1.0, style="same_paragraph")


def test_train_reader_refuses_an_unknown_style_before_loading_anything(tmp_path):
    cfg = ReaderConfig(unanswerable_style="nonsense")
    with pytest.raises(ValueError, match="unanswerable_style"):
        train_reader(
            cfg, init=tmp_path / "missing", train_data=tmp_path / "missing.json", out_dir=tmp_path
        )
