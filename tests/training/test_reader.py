import dataclasses
import json
import math
import random

import pytest
import torch
from safetensors.torch import load_file

from rag.reader import Reader
from training.configs import ReaderConfig
from training.hard_negatives import negative_candidates
from training.reader import (
    calibrate_null_threshold,
    check_reader_style,
    choose_threshold,
    class_weights,
    no_answer_copies,
    null_margins,
    reader_checkpoint_dir,
    train_features,
    train_reader,
    useful_threshold,
    v2_f1_at,
)
from training.squad import load_squad, make_unanswerable
from training.squad_eval import evaluate_reader, predict_squad
from training.tokenizer import load_tokenizer


def test_features_point_at_the_answer_or_cls(data_dir, tiny_tokenizer_dir):
    tok = load_tokenizer(tiny_tokenizer_dir)
    _, examples = load_squad(data_dir / "squad-train.json")
    cfg = ReaderConfig(max_seq_length=40, doc_stride=16)
    features = train_features(examples[:20], tok, cfg)
    assert len(features) > 20  # long contexts are cut into several windows
    inside = [f for f in features if f["start_positions"] > 0]
    assert inside and len(inside) < len(features)
    for f in inside:
        text = tok.decode(f["input_ids"][f["start_positions"] : f["end_positions"] + 1])
        assert text.replace(" ", "") in {
            a["text"].lower().replace(" ", "") for e in examples[:20] for a in e["answers"]
        }


def test_trained_reader_beats_chance_and_saves_settings(tiny_reader_dir, data_dir):
    settings = json.loads((tiny_reader_dir / "notesqa_reader.json").read_text())
    assert settings["max_seq_length"] == 128
    scores = evaluate_reader(Reader.load(tiny_reader_dir), data_dir / "squad-dev.json")
    assert set(scores) == {"exact_match", "f1", "examples_per_s", "policy"}
    assert scores["policy"]["name"] == "always-answer"  # v1.1: every question has an answer
    # templated questions are easy: a trained reader is far above the ~0 of a random one
    assert scores["f1"] > 20.0, scores


def test_squad_v1_evaluation_always_answers_even_with_a_null_threshold(tiny_reader_dir, data_dir):
    reader = Reader.load(tiny_reader_dir)
    reader.settings.null_threshold = -1e9  # prefers "no answer" on every question
    _, examples = load_squad(data_dir / "squad-dev.json")
    assert set(predict_squad(reader, examples[:10]).values()) == {""}
    # v1.1 has no unanswerable questions: its official script scores an answer for every one
    assert all(predict_squad(reader, examples[:10], allow_abstain=False).values())
    assert evaluate_reader(reader, data_dir / "squad-dev.json")["f1"] > 20.0


def test_unanswerable_copies_use_another_paragraph_without_the_answer():
    examples = [
        {
            "id": "a",
            "title": "T",
            "question": "Where?",
            "context": "Ada lived in Oslo.",
            "answers": [{"text": "Oslo", "answer_start": 13}],
            "is_impossible": False,
        },
        {
            "id": "b",
            "title": "T",
            "question": "When?",
            "context": "Oslo is cold in 1850.",
            "answers": [{"text": "1850", "answer_start": 16}],
            "is_impossible": False,
        },
        {
            "id": "c",
            "title": "T",
            "question": "Who?",
            "context": "Boris sang songs.",
            "answers": [{"text": "Boris", "answer_start": 0}],
            "is_impossible": False,
        },
        {
            "id": "d",
            "title": "U",
            "question": "Alone?",
            "context": "Only paragraph of U.",
            "answers": [{"text": "Only", "answer_start": 0}],
            "is_impossible": False,
        },
    ]
    negatives = {n["id"]: n for n in make_unanswerable(examples, ratio=1.0, seed=0)}
    assert set(negatives) == {"a-neg", "b-neg", "c-neg"}  # U has no other paragraph
    assert (
        negatives["a-neg"]["context"] == "Boris sang songs."
    )  # the Oslo paragraph contains "Oslo"
    for n in negatives.values():
        assert n["is_impossible"] and n["answers"] == []
    assert make_unanswerable(examples, ratio=0.0) == []


def test_threshold_maximises_v2_f1_on_held_out_questions():
    # answerable questions have a low null-minus-best margin, unanswerable ones a high one
    diffs = [-4.0, -2.0, 1.0, 3.0, 5.0]
    f1s = [1.0, 0.5, 0.0, 0.0, 0.0]
    answerable = [True, True, False, False, True]
    threshold, best = choose_threshold(diffs, f1s, answerable)
    assert threshold == -2.0  # answer the first two, abstain on the rest
    assert best == pytest.approx(100 * (1 + 0.5 + 1 + 1 + 0) / 5)
    # abstaining on everything is chosen when answers are all wrong
    threshold, best = choose_threshold([0.0, 1.0], [0.0, 0.0], [False, True])
    assert threshold < 0.0 and best == pytest.approx(50.0)


def test_a_no_answer_share_reweighs_the_questions_and_moves_the_threshold():
    # one unanswerable question among four answerable ones, each half right
    diffs = [-3.0, -2.0, -1.0, 0.0, -2.5]
    f1s = [0.5, 0.5, 0.5, 0.5, 0.0]
    answerable = [True, True, True, True, False]
    threshold, best = choose_threshold(diffs, f1s, answerable)
    assert threshold == 0.0 and best == pytest.approx(100 * 2.0 / 5)  # answering all wins
    # counted as half of the questions, abstaining on it pays, even at the cost of three answers
    threshold, best = choose_threshold(diffs, f1s, answerable, no_answer_share=0.5)
    has, no = class_weights(answerable, 0.5)
    assert (has, no) == (pytest.approx(5 / 8), pytest.approx(2.5))
    assert threshold == -3.0
    assert best == pytest.approx(100 * (has * 0.5 + no) / 5)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        class_weights(answerable, 1.0)
    with pytest.raises(ValueError, match="both answerable and unanswerable"):
        class_weights([True, True], 0.5)
    assert class_weights(answerable, None) == (1.0, 1.0)


def test_train_reader_refuses_a_bad_no_answer_share_before_loading_anything(tmp_path):
    cfg = ReaderConfig(calibration_no_answer_share=1.5)
    with pytest.raises(ValueError, match="calibration_no_answer_share"):
        train_reader(
            cfg, init=tmp_path / "missing", train_data=tmp_path / "missing.json", out_dir=tmp_path
        )


def test_v2_f1_at_the_chosen_threshold_is_the_best_score():
    diffs = [-2.0, -1.0, 0.5, 1.5, 3.0, float("inf")]
    f1s = [1.0, 0.5, 0.0, 0.8, 0.0, 0.0]
    answerable = [True, True, False, True, False, True]
    threshold, best = choose_threshold(diffs, f1s, answerable)
    assert v2_f1_at(threshold, diffs, f1s, answerable) == best
    for other in (-3.0, -1.5, 0.0, 1.0, 2.0, 5.0, None):
        assert v2_f1_at(other, diffs, f1s, answerable) <= best
    assert v2_f1_at(float("-inf"), diffs, f1s, answerable) == 100.0 * 2 / 6  # abstain everywhere
    # never abstaining still abstains where no span was found (inf): 0 for that answerable one
    assert v2_f1_at(None, diffs, f1s, answerable) == 100.0 * (1.0 + 0.5 + 0.8) / 6


def test_a_threshold_no_better_than_abstaining_everywhere_is_not_stored():
    scores = {"held_out_f1_with_threshold": 49.31, "always_abstain_f1": 49.2}
    assert useful_threshold(0.45, scores, min_gain=1.0) is None
    scores = {"held_out_f1_with_threshold": 56.0, "always_abstain_f1": 49.2}
    assert useful_threshold(-1.5, scores, min_gain=1.0) == -1.5


def test_calibration_on_held_out_questions_beats_always_answering(tiny_reader_dir, data_dir):
    _, examples = load_squad(data_dir / "squad-dev.json")
    examples = examples[:30]
    # unanswerable versions: each question against the paragraph of a different person
    shifted = examples[10:] + examples[:10]
    negatives = [
        {
            **e,
            "id": e["id"] + "-neg",
            "context": other["context"],
            "answers": [],
            "is_impossible": True,
        }
        for e, other in zip(examples, shifted, strict=True)
    ]
    reader = Reader.load(tiny_reader_dir)
    threshold, scores = calibrate_null_threshold(reader, examples + negatives)
    always_answer = scores["held_out_has_answer_f1_always_answering"] / 2  # half are unanswerable
    assert scores["held_out_f1_with_threshold"] >= always_answer
    assert scores["held_out_f1_with_threshold"] >= 50.0  # never worse than abstaining everywhere
    assert scores["held_out_no_answer_share"] == 0.5
    assert math.isfinite(threshold)


def test_reader_training_resumes_exactly_after_a_stop(
    tmp_path, data_dir, tiny_bert_dir, tiny_recipe
):
    cfg = dataclasses.replace(
        tiny_recipe.reader,
        max_train_examples=96,
        calibration_examples=0,
        precision="fp32",
        dropout=0.1,  # the resumed run must also restore the dropout RNG
        save_every=0,
    )
    train = data_dir / "squad-train.json"
    straight = train_reader(cfg, tiny_bert_dir, train, tmp_path / "a")
    stopped = train_reader(cfg, tiny_bert_dir, train, tmp_path / "b", max_minutes=0.0)
    assert stopped == reader_checkpoint_dir(tmp_path / "b") and not (tmp_path / "b").exists()
    assert json.loads((stopped / "trainer_state.json").read_text())["step"] == 1
    other = dataclasses.replace(cfg, learning_rate=cfg.learning_rate / 2)
    with pytest.raises(ValueError, match="other settings"):
        train_reader(other, tiny_bert_dir, train, tmp_path / "b")
    resumed = train_reader(cfg, tiny_bert_dir, train, tmp_path / "b")
    assert resumed == tmp_path / "b" and not stopped.exists()
    a = load_file(straight / "model.safetensors")
    b = load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)


def test_mined_style_needs_a_reader_as_init_and_refuses_before_loading(tmp_path, tiny_bert_dir):
    cfg = ReaderConfig(unanswerable_style="mined", unanswerable_ratio=0.5)
    with pytest.raises(ValueError, match="not a reader"):
        train_reader(cfg, tiny_bert_dir, tmp_path / "missing.json", tmp_path / "out")
    with pytest.raises(ValueError, match="mined"):
        check_reader_style("minted")


def test_mined_copies_are_each_questions_most_confidently_answered_candidate(
    tiny_reader_dir, data_dir
):
    _, examples = load_squad(data_dir / "squad-train.json")
    examples = examples[:24]
    reader = Reader.load(tiny_reader_dir)
    mined = no_answer_copies(examples, 1.0, seed=4, style="mined", reader=reader)
    candidates = negative_candidates(examples, 1.0, seed=4)
    margins = null_margins(reader, candidates)[0]
    lowest: dict[str, float] = {}
    for c, m in zip(candidates, margins, strict=True):
        lowest[c["id"]] = min(m, lowest.get(c["id"], float("inf")))
    assert len(mined) == len(lowest) > 0
    mined_margins = null_margins(reader, mined)[0]
    assert [c["id"] for c in mined] == list(lowest)
    for c, m in zip(mined, mined_margins, strict=True):
        assert c["is_impossible"] and m == pytest.approx(lowest[c["id"]], abs=1e-4)
    with pytest.raises(ValueError, match="needs a reader"):
        no_answer_copies(examples, 1.0, seed=4, style="mined")


def test_a_mined_round_skips_earlier_questions_caches_its_negatives_and_resumes(
    tmp_path, data_dir, tiny_reader_dir, tiny_recipe, caplog
):
    cfg = dataclasses.replace(
        tiny_recipe.reader,
        max_train_examples=40,
        skip_train_examples=30,
        calibration_examples=0,
        unanswerable_style="mined",
        unanswerable_ratio=0.5,
        save_every=0,
    )
    train = data_dir / "squad-train.json"
    stopped = train_reader(cfg, tiny_reader_dir, train, tmp_path / "r", max_minutes=0.0)
    cache = tmp_path / ".r.mined-negatives.json"
    assert stopped == reader_checkpoint_dir(tmp_path / "r") and cache.exists()
    _, examples = load_squad(train)
    random.Random(cfg.seed).shuffle(examples)  # the order train_reader uses
    trained_on = {e["id"] for e in examples[30:70]}
    negatives = json.loads(cache.read_text())["negatives"]
    assert negatives and all(n["id"][: -len("-neg")] in trained_on for n in negatives)
    with caplog.at_level("INFO", logger="training.reader"):
        assert train_reader(cfg, tiny_reader_dir, train, tmp_path / "r") == tmp_path / "r"
    assert f"reusing {len(negatives)} mined negatives" in caplog.text  # not mined again
    assert not cache.exists() and not stopped.exists()


def test_a_question_longer_than_max_query_length_is_cut_not_a_crash(tiny_tokenizer_dir):
    from training.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(tiny_tokenizer_dir)
    cfg = ReaderConfig(max_seq_length=64, doc_stride=24, max_query_length=16)
    context = "Ada Smithson was born in Oslo. " * 10
    example = {
        "question": "where " * 80 + "was Ada born?",  # hundreds of tokens
        "context": context,
        "answers": [{"text": "Oslo", "answer_start": context.index("Oslo")}],
        "is_impossible": False,
    }
    features = train_features([example], tokenizer, cfg)
    assert features and all(len(f["input_ids"]) <= 64 for f in features)
    assert any(f["start_positions"] > 0 for f in features)  # the answer is still labelled
