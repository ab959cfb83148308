"""The multi-passage reader: groups from notes, shared normalisation, training, joint reading."""

from __future__ import annotations

import json
import math

import pytest
import torch

from rag.reader import Reader
from training.configs import PassageReaderConfig
from training.passage_groups import gold_in_passages, read_groups, write_groups
from training.passage_reader import (
    collate_groups,
    group_features,
    shared_norm_loss,
    train_passage_reader,
)


def test_the_softmax_is_shared_by_every_window_of_a_group():
    start = torch.tensor([[0.0, 5.0, 0.0], [0.0, 0.0, 5.0]])  # (W=2, T=3)
    end = torch.tensor([[0.0, 0.0, 4.0], [0.0, 4.0, 0.0]])
    context = torch.tensor([[False, True, True], [False, True, True]])
    # one group of two windows, the answer in window 0 only
    joint = shared_norm_loss(start, end, context, [range(2)], [[(1, 2)], []])
    # by hand: null = log-mean-exp of the [CLS] logits = 0; Z over 4 tokens + null
    z_start = math.log(math.exp(5) + 1 + 1 + math.exp(5) + 1)
    z_end = math.log(1 + math.exp(4) + math.exp(4) + 1 + 1)
    assert joint.item() == pytest.approx((z_start - 5) + (z_end - 4), abs=1e-5)
    # the same windows as two groups normalise separately: a lower loss for the answer
    apart = shared_norm_loss(start, end, context, [range(1), range(1, 2)], [[(1, 2)], []])
    assert apart.item() != pytest.approx(joint.item())


def test_a_group_without_an_answer_is_trained_towards_no_answer():
    start = torch.tensor([[3.0, 0.0, 0.0]])
    end = torch.tensor([[3.0, 0.0, 0.0]])
    context = torch.tensor([[False, True, True]])
    loss = shared_norm_loss(start, end, context, [range(1)], [[]])
    expected = 2 * (math.log(math.exp(3) + 2) - 3)
    assert loss.item() == pytest.approx(expected, abs=1e-5)
    # the gradient raises the [CLS] logit
    start.requires_grad_(True)
    shared_norm_loss(start, end, context, [range(1)], [[]]).backward()
    assert start.grad[0, 0] < 0 < start.grad[0, 1]


def test_gold_spans_are_found_in_every_passage_that_holds_them():
    passages = [
        {"source": "a.md", "start": 0, "end": 50},
        {"source": "b.md", "start": 0, "end": 50},
        {"source": "a.md", "start": 30, "end": 90},  # overlaps the first
    ]
    assert gold_in_passages(passages, "a.md", [[35, 40]]) == [[0, 35, 40], [2, 5, 10]]
    assert gold_in_passages(passages, "a.md", [[45, 60]]) == [[2, 15, 30]]


@pytest.fixture
def groups_file(tmp_path):
    groups = [
        {
            "question": f"Where was {name} born?",
            "passages": [f"{name} was born in {city} in 1850.", "Boris collected clocks."],
            "answers": [[0, len(f"{name} was born in "), len(f"{name} was born in {city}")]],
        }
        for name, city in [("Ada", "Oslo"), ("Hugo", "Lima"), ("Ines", "Cairo")]
    ]
    groups.append(
        {"question": "Who painted maps?", "passages": ["Boris collected clocks."], "answers": []}
    )
    return write_groups(groups, tmp_path / "groups.jsonl")


def test_windows_know_where_the_answer_is(groups_file, tiny_reader_dir):
    reader = Reader.load(tiny_reader_dir)
    group = read_groups(groups_file)[0]
    features = group_features(group, reader)
    (start, end), *_ = features["gold"][0]
    ids = features["input_ids"][0][start : end + 1]
    assert reader.tokenizer.decode(ids).strip() == "oslo"
    assert features["gold"][1] == []  # the other passage does not hold it
    batch = collate_groups([features, group_features(read_groups(groups_file)[3], reader)], 0)
    assert [len(r) for r in batch["windows_of"]] == [2, 1]


def test_training_saves_a_multi_passage_reader_that_reads_jointly(
    groups_file, tiny_reader_dir, tmp_path
):
    cfg = PassageReaderConfig(groups_per_batch=2, epochs=2.0, learning_rate=1e-4, save_every=0)
    out = train_passage_reader(cfg, tiny_reader_dir, groups_file, tmp_path / "mp")
    settings = json.loads((out / "notesqa_reader.json").read_text())
    assert settings["multi_passage"] is True and settings["null_threshold"] is None
    reader = Reader.load(out)
    reading = reader.read_jointly("Where was Ada born?", ["Ada was born in Oslo.", "Rain fell."])
    assert len(reading.spans) == 2 and reading.spans[0]
    total = reading.null_probability + sum(
        reading.probability(s.score) for spans in reading.spans for s in spans
    )
    assert 0 < total <= 1.0 + 1e-6  # spans are a subset of the shared distribution


def test_groups_file_of_the_wrong_shape_is_named(tmp_path):
    bad = tmp_path / "g.jsonl"
    bad.write_text(json.dumps({"question": "q"}) + "\n")
    with pytest.raises(ValueError, match="g.jsonl:1"):
        read_groups(bad)


def test_the_cli_makes_groups_trains_and_calibrates(
    tmp_path, data_dir, tiny_embedder_dir, tiny_reader_dir, capsys
):
    from app.cli import main

    recipe = tmp_path / "recipe.json"
    recipe.write_text(
        json.dumps(
            {
                "data": {"squad_train": str(data_dir / "squad-train.json")},
                "passage_reader": {
                    "articles": 40, "calibration_articles": 30, "questions": 60,
                    "calibration_questions": 60, "passages": 3, "unanswerable_share": 0.2,
                    "removed_share": 0.2, "edited_share": 0.2, "groups_per_batch": 4,
                    "save_every": 0,
                },
            }
        )
    )  # fmt: skip
    groups = tmp_path / "groups"
    common = ["--config", str(recipe)]
    assert main(["train", "passage-groups", *common, "--embedder", str(tiny_embedder_dir),
                 "--out", str(groups)]) == 0  # fmt: skip
    train = read_groups(groups / "train-groups.jsonl")
    assert train and any(g["answers"] for g in train) and any(not g["answers"] for g in train)
    assert all(len(g["passages"]) <= 3 for g in train)
    kinds = {g["kind"] for g in train}
    assert {"answerable", "off_topic", "removed"} <= kinds
    for group in train:
        assert bool(group["answers"]) == (group["kind"] == "answerable")
        if group["kind"] == "removed":  # on topic, but no passage says the answer any more
            assert group["removed_answers"]
            text = " ".join(group["passages"]).lower()
            assert not any(answer.lower() in text for answer in group["removed_answers"])
        if group["kind"] == "edited":
            assert group["question"] != group["original_question"]
    out = tmp_path / "reader"
    assert main(["train", "passage-reader", *common, "--init", str(tiny_reader_dir),
                 "--groups", str(groups / "train-groups.jsonl"), "--out", str(out)]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["train", "calibrate", "--reader", str(out), "--groups",
                 str(groups / "calibration-groups.jsonl"), "--json"]) == 0  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert 0.0 <= report["min_confidence"] <= 1.0 and report["mu"] in [i / 10 for i in range(11)]
    assert (out / "notesqa_calibration.json").is_file()
