"""Pretraining to a token budget: Cramming's one-cycle, the batch ramp, snapshots, the filter."""

import csv
import json
import os
import signal

import pytest
import torch
from transformers import BertForPreTraining

from training.checkpoint import find_checkpoint
from training.pretrain import pretrain
from training.pretraining_data import Shards


def _rows(run):
    with open(run / "log.csv") as handle:
        return [r for r in csv.DictReader(handle) if r.get("lr")]


def _budget(cfg, **changes):
    settings = dict(
        token_budget=12_000,
        schedule="triangle",
        grad_accum=3,
        batch_ramp=0.5,
        max_grad_norm=0.5,
        snapshot_tokens=[4_000, 8_000],
        log_every=1,
        eval_every=1000,
        save_every=4,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        precision="fp32",
    )
    return type(cfg)(**{**cfg.__dict__, **settings, **changes})


def test_a_token_budget_run_ramps_the_batch_keeps_snapshots_and_stops_at_the_budget(
    tmp_path, data_dir, tiny_tokenizer_dir, tiny_recipe
):
    cfg = _budget(tiny_recipe.pretrain)
    run = tmp_path / "run"
    model = pretrain(cfg, [data_dir / "corpus.jsonl.gz"], tiny_tokenizer_dir, run)
    rows = _rows(run)
    tokens = [int(r["tokens"]) for r in rows]
    assert tokens[-2] < cfg.token_budget <= tokens[-1]  # stops at the first step past it
    batches = [int(r["batch"]) for r in rows]
    assert batches[0] == cfg.batch_size and batches[-1] == 3 * cfg.batch_size
    assert batches == sorted(batches)
    rates = [float(r["lr"]) for r in rows]
    top = rates.index(max(rates))
    assert rates[0] == pytest.approx(cfg.learning_rate / 4, rel=0.05)
    assert 0 < top < len(rates) - 1 and rates[-1] < rates[top] / 2
    for target in cfg.snapshot_tokens:
        state = json.loads(
            (run / "snapshots" / f"tokens-{target}" / "trainer_state.json").read_text()
        )
        assert target <= state["tokens"] < target + 3 * cfg.batch_size * cfg.max_seq_length
        assert 0 < state["eval_mlm_acc"] <= 1 and state["eval_mlm_loss"] > 0
        BertForPreTraining.from_pretrained(str(run / "snapshots" / f"tokens-{target}"))
    assert json.loads((model / "trainer_state.json").read_text())["tokens"] == tokens[-1]


def test_a_budget_run_stopped_mid_ramp_resumes_exactly(
    tmp_path, data_dir, tiny_tokenizer_dir, tiny_recipe, monkeypatch
):
    import training.pretrain as pretrain_module

    cfg = _budget(tiny_recipe.pretrain, snapshot_tokens=[])
    corpus = [data_dir / "corpus.jsonl.gz"]
    straight = pretrain(cfg, corpus, tiny_tokenizer_dir, tmp_path / "a")
    real_loss, calls = pretrain_module.pretraining_loss, []

    def loss_then_ctrl_c_at_the_eighth_micro_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 8:
            os.kill(os.getpid(), signal.SIGINT)  # caught: the step finishes, then it checkpoints
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(
        pretrain_module, "pretraining_loss", loss_then_ctrl_c_at_the_eighth_micro_batch
    )
    pretrain(cfg, corpus, tiny_tokenizer_dir, tmp_path / "b")
    monkeypatch.undo()
    checkpoint = find_checkpoint(tmp_path / "b" / "checkpoint")
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    assert 1 < state["micro_batches"] / state["step"] < 3  # stopped inside the ramp
    resumed = pretrain(cfg, corpus, tiny_tokenizer_dir, tmp_path / "b")
    a = BertForPreTraining.from_pretrained(str(straight)).state_dict()
    b = BertForPreTraining.from_pretrained(str(resumed)).state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)
    assert _rows(tmp_path / "a")[-1]["tokens"] == _rows(tmp_path / "b")[-1]["tokens"]


def test_the_compression_filter_drops_poorly_compressed_training_documents_only(
    tmp_path, data_dir, tiny_tokenizer_dir, tiny_recipe, caplog
):
    cfg = _budget(tiny_recipe.pretrain, token_budget=2_000, snapshot_tokens=[])
    run = tmp_path / "run"
    pretrain(cfg, [data_dir / "corpus.jsonl.gz"], tiny_tokenizer_dir, run)
    ratios = Shards.load(run / "shards").tokens_per_char()
    assert ratios.min() > 0.05 and ratios.max() < 1.0
    bar = float(sorted(ratios)[len(ratios) // 2])
    filtered = type(cfg)(**{**cfg.__dict__, "max_tokens_per_char": bar})
    (run / "checkpoint").rename(run / "old-checkpoint")
    with caplog.at_level("INFO", logger="training.pretrain"):
        pretrain(filtered, None, tiny_tokenizer_dir, run)
    kept = [m for m in caplog.messages if m.startswith("training on ")]
    kept_docs, all_docs = (int(w) for w in kept[0].split()[2:5:2])
    assert 0 < kept_docs < all_docs


def test_budget_only_settings_without_a_budget_are_refused(
    tmp_path, data_dir, tiny_tokenizer_dir, tiny_recipe
):
    cfg = type(tiny_recipe.pretrain)(**{**tiny_recipe.pretrain.__dict__, "schedule": "triangle"})
    with pytest.raises(ValueError, match="set token_budget"):
        pretrain(cfg, [data_dir / "corpus.jsonl.gz"], tiny_tokenizer_dir, tmp_path / "run")


def test_old_shards_without_character_counts_say_how_to_rebuild(tmp_path):
    import numpy as np

    shards = Shards(np.zeros(4, np.uint16), np.array([0, 2, 4]), np.array([0, 1, 2]), {})
    with pytest.raises(ValueError, match="delete the run's shards folder"):
        shards.tokens_per_char()
