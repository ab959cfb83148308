import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import BertForPreTraining

from training.checkpoint import find_checkpoint
from training.configs import to_dict
from training.plot import plot_run
from training.pretrain import (
    build_model,
    learning_rate,
    make_optimizer,
    pretrain,
    tile_position_embeddings,
)
from training.pretraining_data import Shards
from training.tokenizer import load_tokenizer


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
    cfg = type(cfg)(
        **{
            **cfg.__dict__,
            "max_steps": 12,
            "save_every": 6,
            "log_every": 2,
            "eval_every": 100,
            "hidden_dropout_prob": 0.1,
        }
    )
    straight = pretrain(cfg, [data_dir / "corpus.jsonl.gz"], tiny_tokenizer_dir, tmp_path / "a")
    pretrain(
        cfg, [data_dir / "corpus.jsonl.gz"], tiny_tokenizer_dir, tmp_path / "b", max_minutes=0.0
    )
    state = json.loads(
        (find_checkpoint(tmp_path / "b" / "checkpoint") / "trainer_state.json").read_text()
    )
    assert state["step"] == 1  # stopped (and checkpointed) after the first step
    resumed = pretrain(cfg, [data_dir / "corpus.jsonl.gz"], tiny_tokenizer_dir, tmp_path / "b")
    a = BertForPreTraining.from_pretrained(str(straight)).state_dict()
    b = BertForPreTraining.from_pretrained(str(resumed)).state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)
    # the loss curve after the interruption is the same (the first window after it is partial)
    losses_a = [
        float(r["loss"]) for r in _rows(tmp_path / "a") if r["loss"] and int(r["step"]) >= 4
    ]
    losses_b = [
        float(r["loss"]) for r in _rows(tmp_path / "b") if r["loss"] and int(r["step"]) >= 4
    ]
    assert len(losses_a) == 5
    # tokens are counted across the resume
    assert _rows(tmp_path / "a")[-1]["tokens"] == _rows(tmp_path / "b")[-1]["tokens"]
    assert pytest.approx(losses_a, rel=1e-4) == losses_b


def test_pretrain_without_corpus_or_shards_is_a_clear_error(
    tmp_path, tiny_tokenizer_dir, tiny_recipe
):
    with pytest.raises(ValueError, match="--corpus"):
        pretrain(tiny_recipe.pretrain, None, tiny_tokenizer_dir, tmp_path / "run")


def _small(cfg, **changes):
    return type(cfg)(**{**cfg.__dict__, **changes})


def _deterministic(cfg, **changes):
    """No dropout, no held-out evaluation and fp32, so two runs can be compared weight for weight.

    (bf16 autocast, chosen by ``precision="auto"`` on an AMX CPU, rounds differently with the
    number of threads, and the killed run is a 1-thread subprocess.)
    """
    quiet = dict(
        log_every=2,
        eval_every=1000,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        precision="fp32",
    )
    return _small(cfg, **{**quiet, **changes})


def test_non_finite_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(
    tmp_path, data_dir, tiny_tokenizer_dir, tiny_recipe, monkeypatch
):
    import training.pretrain as pretrain_module

    real_loss, calls = pretrain_module.pretraining_loss, []

    def loss_that_blows_up_at_step_5(*args, **kwargs):
        out = real_loss(*args, **kwargs)
        calls.append(1)
        if len(calls) == 5:
            nan = torch.tensor(float("nan"))
            out = {**out, "loss": out["loss"] * nan, "mlm_sum": out["mlm_sum"] * nan}
        return out

    monkeypatch.setattr(pretrain_module, "pretraining_loss", loss_that_blows_up_at_step_5)
    cfg = _deterministic(tiny_recipe.pretrain, max_steps=10, save_every=3, grad_accum=1)
    run = tmp_path / "run"
    with pytest.raises(FloatingPointError, match=r"loss became nan at step 5; the last good"):
        pretrain(cfg, [data_dir / "corpus.jsonl.gz"], tiny_tokenizer_dir, run)
    checkpoint = find_checkpoint(run / "checkpoint")
    assert json.loads((checkpoint / "trainer_state.json").read_text())["step"] == 3
    weights = BertForPreTraining.from_pretrained(str(checkpoint)).state_dict()
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_learning_rate_warms_up_then_decays_to_zero(tiny_recipe):
    for schedule in ("linear", "cosine"):
        cfg = _small(tiny_recipe.pretrain, warmup_steps=10, max_steps=100, schedule=schedule)
        rates = [learning_rate(s, cfg) for s in range(101)]
        assert rates[9] == pytest.approx(cfg.learning_rate)
        assert all(a <= b for a, b in zip(rates[:9], rates[1:10], strict=True))
        assert all(a >= b for a, b in zip(rates[10:], rates[11:], strict=False))
        assert rates[100] == pytest.approx(0.0, abs=1e-12)
    assert learning_rate(30, _small(cfg, schedule="cosine")) > learning_rate(
        30, _small(cfg, schedule="linear")
    )


def test_head_transform_and_segment_embeddings_train_slower(tiny_recipe, tiny_tokenizer_dir):
    tokenizer = load_tokenizer(tiny_tokenizer_dir)
    cfg = _small(tiny_recipe.pretrain, slow_lr_scale=0.1, zero_token_type_init=True)
    model = build_model(cfg, tokenizer)
    assert torch.count_nonzero(model.bert.embeddings.token_type_embeddings.weight) == 0
    optimizer = make_optimizer(model, cfg)
    scale_of = {
        id(param): group["lr_scale"]
        for group in optimizer.param_groups
        for param in group["params"]
    }
    named = dict(model.named_parameters())
    assert scale_of[id(named["cls.predictions.transform.dense.weight"])] == 0.1
    assert scale_of[id(named["bert.embeddings.token_type_embeddings.weight"])] == 0.1
    assert scale_of[id(named["bert.embeddings.word_embeddings.weight"])] == 1.0
    assert scale_of[id(named["bert.encoder.layer.0.attention.self.query.weight"])] == 1.0
    assert len(scale_of) == len(named)  # every parameter is in exactly one group
    plain = build_model(_small(cfg, zero_token_type_init=False), tokenizer)
    assert torch.count_nonzero(plain.bert.embeddings.token_type_embeddings.weight) > 0


def test_decoder_bias_starts_at_the_unigram_prior(tiny_pretrain_run):
    # tiny_pretrain_run trains with the default prior_bias_init: the saved bias keeps the prior's
    # ordering, so the most frequent shard token still has the largest bias
    shards = Shards.load(tiny_pretrain_run / "shards")
    bias = BertForPreTraining.from_pretrained(tiny_pretrain_run / "model").cls.predictions.bias
    counts = np.bincount(np.asarray(shards.tokens), minlength=bias.shape[0])
    assert int(bias.argmax()) == int(counts.argmax())
    assert float(bias.detach().min()) < -5  # unseen ids start near log(1 / total), far below zero


def test_plot_writes_a_png(tiny_pretrain_run, tmp_path):
    out = plot_run(tiny_pretrain_run, tmp_path / "curves.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(FileNotFoundError, match="log.csv"):
        plot_run(tmp_path)


def test_tensorboard_events_are_written(tiny_pretrain_run):
    pytest.importorskip("tensorboard")
    assert list((tiny_pretrain_run / "tensorboard").glob("events.out.tfevents.*"))


REPO = Path(__file__).resolve().parents[2]


def _cli(recipe: Path, run: Path, corpus: Path, tokenizer: Path, *extra: str) -> list[str]:
    return [
        "train",
        "pretrain",
        "--config",
        str(recipe),
        "--corpus",
        str(corpus),
        "--tokenizer",
        str(tokenizer),
        "--out",
        str(run),
        "--device",
        "cpu",
        *extra,
    ]


def _write_recipe(path: Path, cfg) -> Path:
    path.write_text(json.dumps({"pretrain": to_dict(cfg)}))
    return path


def _env() -> dict:
    return {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


def test_kill_9_then_resume_matches_an_uninterrupted_run(
    tmp_path, data_dir, tiny_tokenizer_dir, tiny_recipe
):
    """A run killed with SIGKILL resumes from its last complete checkpoint and ends where a straight run does."""
    cfg = _deterministic(tiny_recipe.pretrain, max_steps=30, save_every=2)
    recipe = _write_recipe(tmp_path / "recipe.json", cfg)
    corpus = data_dir / "corpus.jsonl.gz"
    killed = tmp_path / "killed"
    code = "import sys; from app.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *_cli(recipe, killed, corpus, tiny_tokenizer_dir)],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        state = killed / "checkpoint" / "trainer_state.json"
        if state.exists() and json.loads(state.read_text())["step"] >= 6:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    step = json.loads((find_checkpoint(killed / "checkpoint") / "trainer_state.json").read_text())[
        "step"
    ]
    assert 6 <= step < 30, "the run should have been killed part-way"
    resumed = pretrain(cfg, None, tiny_tokenizer_dir, killed)
    straight = pretrain(cfg, [corpus], tiny_tokenizer_dir, tmp_path / "straight")
    a = BertForPreTraining.from_pretrained(str(straight)).state_dict()
    b = BertForPreTraining.from_pretrained(str(resumed)).state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)


def test_two_process_ddp_equals_one_process_with_the_same_global_batch(
    tmp_path, data_dir, tiny_tokenizer_dir, tiny_recipe
):
    cfg = _deterministic(tiny_recipe.pretrain, max_steps=6, batch_size=16, save_every=100)
    recipe = _write_recipe(tmp_path / "recipe.json", cfg)
    corpus = data_dir / "corpus.jsonl.gz"
    single = pretrain(cfg, [corpus], tiny_tokenizer_dir, tmp_path / "single", device="cpu")
    script = tmp_path / "entry.py"
    script.write_text("import sys\nfrom app.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(script),
            *_cli(recipe, tmp_path / "ddp", corpus, tiny_tokenizer_dir),
        ],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    a = BertForPreTraining.from_pretrained(str(single)).state_dict()
    b = BertForPreTraining.from_pretrained(str(tmp_path / "ddp" / "model")).state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-3, atol=1e-4)
    # and training really moved the weights away from their (shared) initialisation
    torch.manual_seed(cfg.seed)
    fresh = build_model(cfg, load_tokenizer(tiny_tokenizer_dir)).state_dict()
    assert max((fresh[k] - a[k]).abs().max().item() for k in fresh) > 1e-3
    # both logged the same global losses
    la = [float(r["loss"]) for r in _rows(tmp_path / "single") if r["loss"]]
    lb = [float(r["loss"]) for r in _rows(tmp_path / "ddp") if r["loss"]]
    assert la == pytest.approx(lb, rel=1e-4)


def test_second_phase_starts_from_the_weights_and_trains_the_later_positions(
    tmp_path, data_dir, tiny_tokenizer_dir, tiny_recipe, tiny_bert_dir
):
    first = tiny_recipe.pretrain
    corpus = [data_dir / "corpus.jsonl.gz"]
    frozen = _deterministic(first, init_from=str(tiny_bert_dir), max_steps=2, learning_rate=0.0)
    same = pretrain(frozen, corpus, tiny_tokenizer_dir, tmp_path / "frozen")
    before = BertForPreTraining.from_pretrained(str(tiny_bert_dir)).state_dict()
    after = BertForPreTraining.from_pretrained(str(same)).state_dict()
    for key in before:  # learning rate 0: the weights are the first phase's, not a fresh init
        torch.testing.assert_close(before[key], after[key])

    longer = _deterministic(
        first,
        init_from=str(tiny_bert_dir),
        max_seq_length=2 * first.max_seq_length,
        max_steps=6,
        warmup_steps=1,
    )
    grown = pretrain(longer, corpus, tiny_tokenizer_dir, tmp_path / "longer")
    key = "bert.embeddings.position_embeddings.weight"  # (max_position_embeddings, H)
    moved = (BertForPreTraining.from_pretrained(str(grown)).state_dict()[key] - before[key]).norm(
        dim=1
    )
    limit = first.max_seq_length
    # positions the first phase never saw now train (the tiny corpus fills the first of them
    # most); positions neither phase uses only feel weight decay
    assert moved[limit : limit + 8].min() > 20 * moved[2 * limit :].max()
    assert moved[limit : 2 * limit].mean() > 20 * moved[2 * limit :].max()


def test_second_phase_from_a_model_of_another_size_is_a_clear_error(
    tmp_path, data_dir, tiny_tokenizer_dir, tiny_recipe, tiny_bert_dir
):
    cfg = _deterministic(
        tiny_recipe.pretrain,
        init_from=str(tiny_bert_dir),
        hidden_size=2 * tiny_recipe.pretrain.hidden_size,
        max_steps=1,
    )
    with pytest.raises(ValueError, match="model sizes"):
        pretrain(cfg, [data_dir / "corpus.jsonl.gz"], tiny_tokenizer_dir, tmp_path / "run")


def test_tile_position_embeddings_copies_the_trained_block_over_the_rest(
    tiny_recipe, tiny_tokenizer_dir
):
    model = build_model(tiny_recipe.pretrain, load_tokenizer(tiny_tokenizer_dir))
    table = model.bert.embeddings.position_embeddings.weight  # (P, H)
    trained = table[:48].detach().clone()
    tile_position_embeddings(model, 48)
    for start in range(0, table.shape[0], 48):
        end = min(start + 48, table.shape[0])
        torch.testing.assert_close(table[start:end].detach(), trained[: end - start])
