"""Late chunking: a passage runs once and its windows are pooled from that run, on both runtimes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from embedder import Embedder, WindowConfig
from embedder.pooling import pooling_plan
from embedder.windows import untruncated_tokenizer, window_spans

TEXT = (
    "Ada Smithson was born in Oslo in 1850. She worked as a chemist for many years and wrote "
    "three books about dyes. Her second book was translated into French and German. She died "
    "in Bergen in 1921, where a street now carries her name."
)
CONFIG = WindowConfig(tokens=8, stride=4, pooled=True)


@pytest.fixture(scope="module")
def tokenizer(tiny_embedder_dir):
    return untruncated_tokenizer(Embedder.load(tiny_embedder_dir).tokenizer)


def _load(folder, kind: str, monkeypatch) -> Embedder:
    monkeypatch.setenv("NOTESQA_RUNTIME", kind)
    return Embedder.load(folder)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_a_plan_pools_exactly_the_windows_the_index_cuts(tokenizer):
    plan = pooling_plan(tokenizer, TEXT, "", CONFIG, max_length=512)
    encoding = tokenizer.encode(TEXT, add_special_tokens=False)
    assert plan.spans == window_spans(encoding.offsets, CONFIG, encoding.word_ids)
    assert plan.tail == [] and plan.windows == len(plan.spans)
    assert plan.weights.shape == (1 + plan.windows, len(encoding.ids) + 2)  # [CLS] text [SEP]
    assert plan.weights[0].tolist() == [1.0] * len(plan.ids)  # the passage's own mean
    for row, (start, end) in zip(plan.weights[1:], plan.spans, strict=True):
        pooled = [i for i in np.flatnonzero(row)]
        assert pooled == list(range(pooled[0], pooled[-1] + 1))  # one run of tokens
        first, last = encoding.offsets[pooled[0] - 1], encoding.offsets[pooled[-1] - 1]
        assert (first[0], last[1]) == (start, end)  # [CLS] shifts tokens by one


def test_the_prompt_runs_with_the_passage_but_is_in_no_window(tokenizer):
    plain = pooling_plan(tokenizer, TEXT, "", CONFIG, max_length=512)
    prompted = pooling_plan(tokenizer, TEXT, "passage: ", CONFIG, max_length=512)
    extra = len(prompted.ids) - len(plain.ids)
    assert extra > 0 and prompted.spans == plain.spans
    np.testing.assert_array_equal(prompted.weights[1:, 1 + extra :], plain.weights[1:, 1:])
    assert not prompted.weights[1:, 1 : 1 + extra].any()


def test_windows_past_the_models_window_are_left_to_encode_alone(tokenizer):
    whole = pooling_plan(tokenizer, TEXT, "", CONFIG, max_length=512)
    cut = pooling_plan(tokenizer, TEXT, "", CONFIG, max_length=20)  # 18 text tokens fit
    assert len(cut.ids) == 20 and cut.ids[-1] == whole.ids[-1]  # still ends with [SEP]
    assert cut.spans + cut.tail == whole.spans
    assert cut.tail and cut.spans
    np.testing.assert_array_equal(cut.weights[1:, :-1], whole.weights[1 : 1 + cut.windows, :19])


def test_a_prompt_that_changes_the_texts_tokens_is_refused(tokenizer):
    with pytest.raises(ValueError, match="ends with a space"):
        pooling_plan(tokenizer, "smithson was born", "ada", CONFIG, max_length=512)


@pytest.mark.parametrize("kind", ["torch", "onnx", "onnx-fp32"])
def test_pooled_windows_keep_the_passages_own_vector_and_the_encoded_tail(
    tiny_embedder_dir, kind, monkeypatch
):
    emb = _load(tiny_embedder_dir, kind, monkeypatch)
    texts = [TEXT[:150], "short", TEXT * 3]
    encoded, owners = emb.encode_with_windows(texts, WindowConfig(8, 4))
    pooled, pooled_owners = emb.encode_with_windows(texts, CONFIG)
    np.testing.assert_array_equal(pooled_owners, owners)  # the same windows, in order
    assert pooled.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(pooled, axis=1), 1.0, rtol=1e-5)
    cosines = _cosines(pooled, encoded)
    tokenizer = untruncated_tokenizer(emb.tokenizer)
    plans = [pooling_plan(tokenizer, t, "", CONFIG, emb.max_seq_length) for t in texts]
    assert plans[2].tail  # the third runs past the model's window
    kinds = np.concatenate(
        [["own"] + ["pooled"] * plan.windows + ["tail"] * len(plan.tail) for plan in plans]
    )  # what each row should be, passage by passage
    assert cosines[kinds == "own"].min() > 0.9999  # each passage's own vector is unchanged
    assert cosines[kinds == "tail"].min() > 0.9999  # encoded alone, as before
    assert cosines[kinds == "pooled"].max() < 0.9999  # pooled windows are new vectors


def test_pooled_windows_agree_on_both_runtimes_and_depend_on_their_passage_alone(
    tiny_embedder_dir, monkeypatch
):
    want, _ = _load(tiny_embedder_dir, "torch", monkeypatch).encode_with_windows([TEXT], CONFIG)
    onnx = _load(tiny_embedder_dir, "onnx", monkeypatch)
    alone, _ = onnx.encode_with_windows([TEXT], CONFIG)
    assert _cosines(alone, want).min() > 0.99
    beside, owners = onnx.encode_with_windows(["another passage, " * 20, TEXT], CONFIG)
    np.testing.assert_array_equal(beside[owners == 1], alone)


def test_prompted_models_pool_with_the_passage_prompt(tiny_embedder_dir, copy_dir, monkeypatch):
    folder = copy_dir(tiny_embedder_dir)
    path = folder / "config_sentence_transformers.json"
    config = json.loads(path.read_text()) if path.exists() else {}
    config["prompts"] = {"query": "query: ", "passage": "passage: "}
    path.write_text(json.dumps(config))
    emb = _load(folder, "onnx-fp32", monkeypatch)
    pooled, _ = emb.encode_with_windows([TEXT], CONFIG)
    assert _cosines(pooled[:1], emb.encode([TEXT], kind="passage")).min() > 0.9999
    torch_pooled, _ = _load(folder, "torch", monkeypatch).encode_with_windows([TEXT], CONFIG)
    assert _cosines(pooled, torch_pooled).min() > 0.9999
