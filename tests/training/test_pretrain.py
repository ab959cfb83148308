import csv
import json

import pytest
import torch
from transformers import BertForPreTraining

from training.checkpoint import find_checkpoint
from training.pretrain import pretrain


def _rows(run):
    with open(run / "log.csv") as handle:
        return list(csv.DictReader(handle))


def test_pretraining_learns_and_logs_both_losses(tiny_pretrain_run):
    rows = [r for r in _rows(tiny_pretrain_run) if r["loss"]]
    assert float(rows[-1]["mlm_loss"]) < float(rows[0]["mlm_loss"])
    assert all(float(r["nsp_loss"]) > 0 for r in rows)
    evals = [r for r in _rows(tiny_pretrain_run) if r["eval_mlm_acc"]]
    assert evals and 0.0 <= float(evals[-1]["eval_nsp_acc"]) <= 1.0


def test_checkpoint_is_a_standard_bert_with_tied_decoder(tiny_bert_dir):
    model = BertForPreTraining.from_pretrained(str(tiny_bert_dir))
    decoder = model.cls.predictions.decoder.weight
    assert decoder.data_ptr() == model.bert.embeddings.word_embeddings.weight.data_ptr()
    assert (tiny_bert_dir / "tokenizer.json").exists()
    assert not list(tiny_bert_dir.glob("*.bin")) and not list(tiny_bert_dir.glob("*.pt"))


def test_resume_matches_an_uninterrupted_run(tmp_path, data_dir, tiny_tokenizer_dir, tiny_recipe):
    cfg = tiny_recipe.pretrain
    cfg = type(cfg)(**{**cfg.__dict__, "max_steps": 12, "save_every": 6, "log_every": 2, "eval_every": 100,
                       "hidden_dropout_prob": 0.1})
    straight = pretrain(cfg, [data_dir / "corpus.jsonl.gz"], tiny_tokenizer_dir, tmp_path / "a")
    pretrain(cfg, [data_dir / "corpus.jsonl.gz"], tiny_tokenizer_dir, tmp_path / "b", max_minutes=0.0)
    state = json.loads((find_checkpoint(tmp_path / "b" / "checkpoint") / "trainer_state.json").read_text())
    assert state["step"] == 1  # stopped (and checkpointed) after the first step
    resumed = pretrain(cfg, [data_dir / "corpus.jsonl.gz"], tiny_tokenizer_dir, tmp_path / "b")
    a = BertForPreTraining.from_pretrained(str(straight)).state_dict()
    b = BertForPreTraining.from_pretrained(str(resumed)).state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)
    # the loss curve after the interruption is the same (the first window after it is partial)
    losses_a = [float(r["loss"]) for r in _rows(tmp_path / "a") if r["loss"] and int(r["step"]) >= 4]
    losses_b = [float(r["loss"]) for r in _rows(tmp_path / "b") if r["loss"] and int(r["step"]) >= 4]
    assert len(losses_a) == 5
    assert pytest.approx(losses_a, rel=1e-4) == losses_b


def test_pretrain_without_corpus_or_shards_is_a_clear_error(tmp_path, tiny_tokenizer_dir, tiny_recipe):
    with pytest.raises(ValueError, match="--corpus"):
        pretrain(tiny_recipe.pretrain, None, tiny_tokenizer_dir, tmp_path / "run")
