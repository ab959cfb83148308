"""Answer windows: SQuAD positives swapped for the paragraph window that holds the answer."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from embedder import Embedder, WindowConfig
from embedder.windows import untruncated_tokenizer
from training.answer_windows import answer_spans, answer_window_positives

PARAGRAPH = (
    "Ada Smithson was born in Oslo in 1850. She worked as a chemist for many years and wrote "
    "three books about dyes. Her second book was translated into French and German. She died "
    "in Bergen in 1921, where a street now carries her name."
)
QUESTIONS = [("Where did Ada die?", "Bergen"), ("Into what was it translated?", "French")]


def examples() -> list[dict]:
    return [
        {
            "title": "Ada",
            "question": question,
            "context": PARAGRAPH,
            "answers": [{"text": answer, "answer_start": PARAGRAPH.index(answer)}],
            "is_impossible": False,
        }
        for question, answer in QUESTIONS
    ]


@pytest.fixture(scope="module")
def tokenizer(tiny_embedder_dir):
    return untruncated_tokenizer(Embedder.load(tiny_embedder_dir).tokenizer)


def test_every_swapped_positive_is_a_window_holding_the_answer(tokenizer):
    pairs = [(q, PARAGRAPH) for q, _ in QUESTIONS]
    config = WindowConfig(tokens=8, stride=4)
    positives = answer_window_positives(examples(), pairs, tokenizer, config, share=1.0)
    for positive, (_, answer) in zip(positives, QUESTIONS, strict=True):
        assert answer in positive and positive in PARAGRAPH and len(positive) < len(PARAGRAPH)
        assert len(tokenizer.encode(positive, add_special_tokens=False).ids) >= 8
    again = answer_window_positives(examples(), pairs, tokenizer, config, share=1.0)
    assert again == positives  # seeded
    assert (
        answer_window_positives(examples(), pairs, tokenizer, config, share=0.0) == [PARAGRAPH] * 2
    )


def test_paragraphs_stay_when_no_window_holds_the_answer(tokenizer):
    pairs = [(q, PARAGRAPH) for q, _ in QUESTIONS]
    whole = WindowConfig(tokens=500, stride=250)  # the paragraph fits in one window
    assert answer_window_positives(examples(), pairs, tokenizer, whole, 1.0) == [PARAGRAPH] * 2
    long_answer = examples()
    long_answer[0]["answers"] = [{"text": PARAGRAPH[:120], "answer_start": 0}]
    tiny = WindowConfig(tokens=4, stride=2)
    positives = answer_window_positives(long_answer, pairs, tokenizer, tiny, 1.0)
    assert positives[0] == PARAGRAPH and "French" in positives[1] != PARAGRAPH
    assert answer_spans(examples())[(QUESTIONS[0][0], PARAGRAPH)] == [
        (PARAGRAPH.index("Bergen"), PARAGRAPH.index("Bergen") + len("Bergen"))
    ]


def test_bad_settings_name_the_fix(tokenizer):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        answer_window_positives(examples(), [], tokenizer, WindowConfig(), share=1.5)
    with pytest.raises(ValueError, match="window tokens > 0"):
        answer_window_positives(examples(), [], tokenizer, WindowConfig(tokens=0), share=0.5)


def test_an_embedder_trains_on_answer_windows(
    tmp_path, data_dir, tiny_bert_dir, tiny_recipe, caplog
):
    from training.biencoder import train_embedder

    cfg = dataclasses.replace(
        tiny_recipe.embedder, max_train_pairs=64, answer_windows=1.0, answer_window_tokens=8
    )
    with pytest.raises(ValueError, match="hard_negatives to false"):
        bad = dataclasses.replace(cfg, hard_negatives=True)
        train_embedder(bad, tiny_bert_dir, data_dir / "squad-train.json", tmp_path / "bad")
    with caplog.at_level(logging.INFO, logger="training.biencoder"):
        out = train_embedder(cfg, tiny_bert_dir, data_dir / "squad-train.json", tmp_path / "emb")
    swapped = [r.getMessage() for r in caplog.records if "answer windows" in r.getMessage()]
    assert swapped and not swapped[0].startswith("0 of")
    assert Embedder.load(out).encode(["Where was Ada born?"]).shape[0] == 1
