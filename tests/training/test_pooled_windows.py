"""Pooled answer windows: the late-chunking training stage of the bi-encoder."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest
import torch
import torch.nn.functional as F

from embedder import Embedder, WindowConfig, trained_windows
from embedder.windows import untruncated_tokenizer
from training.pooled_windows import in_batch_loss, pooled_pairs

PARAGRAPH = (
    "Ada Smithson was born in Oslo in 1850. She worked as a chemist for many years and wrote "
    "three books about dyes. Her second book was translated into French and German. She died "
    "in Bergen in 1921, where a street now carries her name."
)
QUESTIONS = [
    ("Where did Ada die?", "Bergen"),
    ("Into what was it translated?", "French"),
    ("Who was she?", "Ada Smithson was born in Oslo in 1850. She worked as a chemist"),
]
WINDOWS = WindowConfig(tokens=8, stride=4, pooled=True)


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


def test_each_question_pools_a_window_that_holds_its_answer(tokenizer):
    pairs = [(q, PARAGRAPH) for q, _ in QUESTIONS]
    plans, rows = pooled_pairs(examples(), pairs, tokenizer, "passage: ", WINDOWS, 512)
    assert len(plans) == 1  # one run per distinct paragraph
    assert [r.paragraph for r in rows] == [0, 0, 0]
    for row, (_, answer) in zip(rows[:2], QUESTIONS, strict=False):
        start, end = plans[0].spans[row.window - 1]
        assert answer in PARAGRAPH[start:end]
    assert rows[2].window == 0  # no 8-token window holds the long answer: the paragraph itself


def test_an_answer_past_the_models_window_falls_back_to_the_paragraph(tokenizer):
    pairs = [("Where did Ada die?", PARAGRAPH)]
    plans, rows = pooled_pairs(examples(), pairs, tokenizer, "", WINDOWS, max_length=24)
    assert plans[0].tail and rows[0].window == 0


def test_the_loss_prefers_each_questions_own_window_and_paragraph():
    torch.manual_seed(0)
    questions = F.normalize(torch.randn(4, 16), dim=1)
    near = F.normalize(questions + 0.1 * torch.randn(4, 16), dim=1)
    matched = in_batch_loss(questions, near, near)
    shuffled = in_batch_loss(questions, near.roll(1, 0), near.roll(1, 0))
    assert matched < 0.1 < shuffled
    # the other candidate of a question's own paragraph is masked, never a negative
    assert in_batch_loss(questions, near, questions) < in_batch_loss(questions, near, -near)


def test_an_embedder_trains_on_pooled_windows(
    tmp_path, data_dir, tiny_embedder_dir, tiny_recipe, caplog
):
    from training.biencoder import train_embedder

    cfg = dataclasses.replace(
        tiny_recipe.embedder,
        max_train_pairs=64,
        batch_size=8,
        pooled_windows=True,
        answer_window_tokens=8,
        eval_articles=0,
    )
    with pytest.raises(ValueError, match="sts_train"):
        train_embedder(
            cfg, tiny_embedder_dir, data_dir / "squad-train.json", tmp_path / "bad",
            sts_files=[tmp_path / "sts-train.csv"],
        )  # fmt: skip
    with caplog.at_level(logging.INFO, logger="training.pooled_windows"):
        out = train_embedder(cfg, tiny_embedder_dir, data_dir / "squad-train.json", tmp_path / "e")
    logged = [r.getMessage() for r in caplog.records if "pooled answer window" in r.getMessage()]
    assert logged and " 0 with" not in logged[0]
    assert trained_windows(out) == WINDOWS  # a new index with it pools its windows
    record = json.loads((out / "eval_results.json").read_text())
    assert record["pooled_windows"] == WINDOWS.to_dict() and record["pairs"] == 64
    before = Embedder.load(tiny_embedder_dir).encode([PARAGRAPH])
    after = Embedder.load(out)
    assert (after.encode([PARAGRAPH]) * before).sum() < 0.99999  # the weights moved
    vectors, owners = after.encode_with_windows([PARAGRAPH], WINDOWS)
    assert len(vectors) == len(owners) > 1
