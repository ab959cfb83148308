import json
import random

import numpy as np
import pytest

from training.pretraining_data import (
    PretrainingStream,
    Shards,
    build_shards,
    continuation_mask,
    special_token_ids,
    truncate_pair,
)
from training.tokenizer import load_tokenizer


@pytest.fixture(scope="module")
def shards(tmp_path_factory, data_dir, tiny_tokenizer_dir):
    tok = load_tokenizer(tiny_tokenizer_dir)
    return build_shards(
        [data_dir / "corpus.jsonl.gz"], tok, tmp_path_factory.mktemp("s") / "shards"
    ), tok


def test_shards_hold_every_sentence(shards):
    shards, tok = shards
    assert shards.num_documents == 160
    first = shards.document(0)
    assert len(first) == 5  # five sentences per templated biography
    assert all(len(s) > 0 for s in first)
    assert shards.tokens.dtype == np.uint16


def test_log_unigram_prior_orders_tokens_by_frequency(shards):
    shards, tok = shards
    prior = shards.log_unigram_prior(len(tok))
    assert prior.shape == (len(tok),) and prior.dtype == np.float32
    assert np.exp(prior.astype(np.float64)).sum() == pytest.approx(1.0)
    counts = np.bincount(np.asarray(shards.tokens), minlength=len(tok))
    frequent, unseen = int(counts.argmax()), int(np.flatnonzero(counts == 0)[0])
    assert prior[frequent] == prior.max() > prior[unseen] == prior.min()


def test_stream_builds_bert_examples(shards):
    shards, tok = shards
    ids = special_token_ids(tok)
    stream = PretrainingStream(
        shards, max_seq_length=48, special_ids=ids, seed=3, max_predictions_per_seq=10
    )
    batch = next(stream.batches(16))
    input_ids, types, mask = batch["input_ids"], batch["token_type_ids"], batch["attention_mask"]
    assert input_ids.shape[1] <= 48
    assert (input_ids[:, 0] == ids["cls"]).all()
    for row in range(16):
        n = int(mask[row].sum())
        assert input_ids[row, n - 1] == ids["sep"]
        assert types[row, n - 1] == 1 and types[row, 1] == 0
    flat = input_ids.flatten()
    positions, labels = batch["mlm_positions"], batch["mlm_labels"]
    # specials are never chosen, labels are real tokens, and at most max_predictions per row
    assert not np.isin(labels.numpy(), [ids["cls"], ids["sep"], ids["pad"]]).any()
    assert np.bincount((positions // input_ids.shape[1]).numpy()).max() <= 10
    assert (flat[positions] == ids["mask"]).float().mean() > 0.5
    assert set(batch["nsp_labels"].tolist()) <= {0, 1}


def test_masking_is_80_10_10(shards):
    shards, tok = shards
    stream = PretrainingStream(
        shards, max_seq_length=64, special_ids=special_token_ids(tok), seed=0
    )
    masked = replaced = kept = total = 0
    for _index, batch in zip(range(30), stream.batches(32), strict=False):
        original = batch["mlm_labels"]
        now = batch["input_ids"].flatten()[batch["mlm_positions"]]
        masked += int((now == tok.mask_token_id).sum())
        kept += int((now == original).sum())
        total += len(original)
    replaced = total - masked - kept
    assert 0.75 < masked / total < 0.85
    assert 0.06 < kept / total < 0.14
    assert 0.06 < replaced / total < 0.14


def test_nsp_is_balanced_and_true_pairs_are_consecutive(shards):
    shards, tok = shards
    stream = PretrainingStream(
        shards, max_seq_length=64, special_ids=special_token_ids(tok), seed=1
    )
    labels = [r for _, _, r in stream.pairs(0)]
    assert 0.35 < sum(labels) / len(labels) < 0.65
    text = shards.tokens.tolist()
    for a, b, is_random in list(stream.pairs(0))[:200]:
        if not is_random:  # B continues A in the same document: their join occurs in the corpus
            joined = a[-2:] + b[:2]
            assert any(text[i : i + 4] == joined for i in range(len(text) - 3))


def test_stream_is_deterministic_and_resumable(shards):
    shards, tok = shards

    def make():
        return PretrainingStream(
            shards, max_seq_length=64, special_ids=special_token_ids(tok), seed=7
        )

    straight = [b for _, b in zip(range(6), make().batches(8), strict=False)]
    resumed = [b for _, b in zip(range(2), make().batches(8, start_batch=4), strict=False)]
    for a, b in zip(straight[4:], resumed, strict=False):
        for key in a:
            assert (a[key] == b[key]).all()
    assert not (
        straight[0]["mlm_positions"].shape == straight[1]["mlm_positions"].shape
        and (straight[0]["input_ids"] == straight[1]["input_ids"]).all()
    )


def test_truncate_pair_trims_the_longer_side():
    a, b = list(range(10)), list(range(3))
    truncate_pair(a, b, 8, random.Random(0))
    assert len(a) + len(b) == 8 and len(b) == 3


def test_too_small_corpus_is_a_clear_error(shards):
    shards, tok = shards
    stream = PretrainingStream(shards, np.arange(3), special_ids=special_token_ids(tok))
    with pytest.raises(ValueError, match="fewer than one batch"):
        next(stream.batches(10_000))
    with pytest.raises(ValueError, match="at least 2 documents"):
        PretrainingStream(shards, np.arange(1))


def test_missing_shards(tmp_path):
    with pytest.raises(FileNotFoundError, match="no pretraining shards"):
        Shards.load(tmp_path)


def test_ranks_together_see_exactly_the_single_process_batch(shards):
    shards, tok = shards

    def make():
        return PretrainingStream(
            shards, max_seq_length=64, special_ids=special_token_ids(tok), seed=5
        )

    whole = next(make().batches(8, start_batch=3))
    parts = [next(make().batches(8, start_batch=3, rank=r, world_size=2)) for r in range(2)]
    width = whole["input_ids"].shape[1]
    for rank, part in enumerate(parts):
        rows = slice(4 * rank, 4 * rank + 4)
        w = part["input_ids"].shape[1]
        assert (whole["input_ids"][rows, :w] == part["input_ids"]).all()  # same tokens and masks
        assert (whole["nsp_labels"][rows] == part["nsp_labels"]).all()
        # masked positions map back to the same rows/columns of the global batch
        row, col = part["mlm_positions"] // w, part["mlm_positions"] % w
        in_whole = (row + 4 * rank) * width + col
        assert set(in_whole.tolist()) <= set(whole["mlm_positions"].tolist())
    assert sum(len(p["mlm_labels"]) for p in parts) == len(whole["mlm_labels"])
    with pytest.raises(ValueError, match="not divisible"):
        next(make().batches(9, world_size=2))


def test_whole_word_masking_masks_every_piece_of_a_word(shards):
    shards, tok = shards
    continuation = continuation_mask(tok)
    assert continuation.any(), "the tiny vocabulary should have ## pieces"
    stream = PretrainingStream(
        shards,
        max_seq_length=64,
        special_ids=special_token_ids(tok),
        seed=2,
        continuation=continuation,
    )
    whole_words = 0
    for _, batch in zip(range(10), stream.batches(16), strict=False):
        width = batch["input_ids"].shape[1]
        chosen = set(batch["mlm_positions"].tolist())
        original = batch["input_ids"].flatten().clone()
        original[batch["mlm_positions"]] = batch["mlm_labels"]
        for position in chosen:
            if position % width + 1 < width:
                nxt = position + 1
                # a masked word's continuation piece is masked too
                if continuation[int(original[nxt])] and batch["attention_mask"].flatten()[nxt]:
                    assert nxt in chosen
                    whole_words += 1
    assert whole_words > 0


def test_shards_keep_whole_sentences_with_a_reader_tokenizer_that_truncates(tmp_path):
    from embedder.tokenizer_files import load_tokenizer

    tokenizer = load_tokenizer("models/reader")  # truncates (question, passage) pairs to windows
    sentence = " ".join(f"word{i}" for i in range(150)) + "."
    corpus = tmp_path / "notes.jsonl"
    corpus.write_text(
        "\n".join(json.dumps({"title": t, "text": f"{sentence}\nA short one."}) for t in "ab")
    )
    shards = build_shards([corpus], tokenizer, tmp_path / "shards")
    first = shards.document(0)[0]
    assert len(first) > 150  # not cut to the reader's 128-token windows
