"""Token windows: spans that cover the text, cut at word pieces, embedded beside the passage."""

from __future__ import annotations

import numpy as np
import pytest

from embedder import Embedder, WindowConfig
from embedder.windows import (
    carry_trained_windows,
    record_trained_windows,
    trained_windows,
    window_ranges,
    window_spans,
)

TEXT = (
    "Ada Smithson was born in Oslo in 1850. She worked as a chemist for many years and wrote "
    "three books about dyes. Her second book was translated into French and German."
)


def offsets_of_words(text: str) -> list[tuple[int, int]]:
    spans, start = [], None
    for i, ch in enumerate(text + " "):
        if ch != " " and start is None:
            start = i
        elif ch == " " and start is not None:
            spans.append((start, i))
            start = None
    return spans


@pytest.mark.parametrize("n, tokens, stride", [(5, 3, 2), (10, 4, 4), (10, 4, 1), (7, 6, 3)])
def test_windows_cover_every_token_and_end_with_the_text(n, tokens, stride):
    text = " ".join(f"w{i}" for i in range(n))
    offsets = offsets_of_words(text)
    spans = window_spans(offsets, WindowConfig(tokens=tokens, stride=stride))
    words = [text[a:b].split() for a, b in spans]
    assert all(len(w) == tokens for w in words)  # every window is full
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    covered = {w for window in words for w in window}
    assert covered == set(text.split())
    starts = [a for a, _ in spans]
    assert starts == sorted(set(starts))  # no window twice


def test_no_windows_for_a_text_that_fits_or_when_off():
    offsets = offsets_of_words("a b c")
    assert window_spans(offsets, WindowConfig(tokens=3, stride=1)) == []
    assert window_spans(offsets, WindowConfig(tokens=0)) == []
    assert WindowConfig(tokens=0, stride=99).to_dict() == {"tokens": 0, "stride": 0}
    assert WindowConfig().to_dict() == {"tokens": 32, "stride": 16}


def test_bad_window_settings_name_the_fix():
    with pytest.raises(ValueError, match="tokens must be >= 0"):
        WindowConfig(tokens=-1)
    with pytest.raises(ValueError, match="would skip text"):
        WindowConfig(tokens=8, stride=9)
    with pytest.raises(ValueError, match="stride"):
        WindowConfig(tokens=8, stride=0)


@pytest.fixture(scope="module")
def emb(tiny_embedder_dir):
    return Embedder.load(tiny_embedder_dir)


def test_a_window_grows_to_whole_words():
    # "ab ##cd ef ##gh": pieces of two words; a 1-token window never holds half a word
    offsets = [(0, 2), (2, 4), (5, 7), (7, 9)]
    spans = window_spans(offsets, WindowConfig(tokens=1, stride=1), word_ids=[0, 0, 1, 1])
    assert spans == [(0, 4), (5, 9)]


def test_token_windows_hold_whole_words_of_the_model(emb):
    config = WindowConfig(tokens=8, stride=4)
    windows = emb.token_windows(TEXT, config)
    assert len(windows) > 2
    assert all(w in TEXT for w in windows)
    for window in windows:  # whole words only, at least a window's worth of pieces
        start = TEXT.index(window)
        end = start + len(window)
        assert start == 0 or not TEXT[start - 1].isalnum()
        assert end == len(TEXT) or not TEXT[end].isalnum()
        assert emb.count_tokens(window) >= 8
    assert TEXT.startswith(windows[0]) and TEXT.endswith(windows[-1])
    assert emb.token_windows("Ada was born.", config) == []


def test_encode_with_windows_puts_each_passage_before_its_windows(emb):
    config = WindowConfig(tokens=8, stride=4)
    texts = ["Ada was born.", TEXT, "Oslo."]
    vectors, owners = emb.encode_with_windows(texts, config)
    n_windows = len(emb.token_windows(TEXT, config))
    assert owners.tolist() == [0] + [1] * (1 + n_windows) + [2]
    assert vectors.shape == (len(owners), emb.dim) and vectors.dtype == np.float32
    whole = emb.encode(texts, kind="passage")
    firsts = [owners.tolist().index(i) for i in range(3)]
    np.testing.assert_allclose(vectors[firsts], whole, atol=1e-5)
    pieces = emb.token_windows(TEXT, config)
    # a passage's windows run as one group (one batch on ONNX): exactly as encoded together ...
    together = emb.encode(pieces, kind="passage", groups=[0] * len(pieces))
    np.testing.assert_allclose(vectors[firsts[1] + 1 : firsts[2]], together, atol=1e-5)
    # ... and, int8 activations aside, as encoded one by one
    alone = emb.encode(pieces, kind="passage")
    assert np.min(np.sum(vectors[firsts[1] + 1 : firsts[2]] * alone, axis=1)) > 0.99
    plain, one_each = emb.encode_with_windows(texts, WindowConfig(tokens=0))
    assert one_each.tolist() == [0, 1, 2]
    np.testing.assert_allclose(plain, whole, atol=1e-5)


def test_a_passages_vectors_do_not_depend_on_the_other_passages(emb):
    """Incremental indexing keeps unchanged passages' stored vectors: they must be what a full
    rebuild would compute, whatever else is embedded beside them (int8 runs included)."""
    config = WindowConfig(tokens=8, stride=4)
    alone, _ = emb.encode_with_windows([TEXT], config)
    mixed, owners = emb.encode_with_windows(["Oslo is a city.", TEXT, TEXT[::-1]], config)
    np.testing.assert_array_equal(mixed[owners == 1], alone)


def test_window_spans_are_the_ranges_characters():
    offsets = offsets_of_words(TEXT)
    config = WindowConfig(tokens=5, stride=3)
    ranges = window_ranges(len(offsets), config)
    assert window_spans(offsets, config) == [(offsets[a][0], offsets[b - 1][1]) for a, b in ranges]


def test_pooled_windows_are_recorded_only_when_on():
    assert WindowConfig().to_dict() == {"tokens": 32, "stride": 16}  # as manifests always were
    assert WindowConfig(pooled=True).to_dict() == {"tokens": 32, "stride": 16, "pooled": True}
    assert WindowConfig(**WindowConfig(pooled=True).to_dict()).pooled


def test_an_embedders_trained_windows_are_recorded_and_carried(tmp_path):
    trained, made_from_it = tmp_path / "trained", tmp_path / "later"
    trained.mkdir()
    made_from_it.mkdir()
    assert trained_windows(trained) == WindowConfig()  # no record: windows encoded alone
    record_trained_windows(trained, WindowConfig(tokens=16, stride=8, pooled=True))
    carry_trained_windows(trained, made_from_it)
    assert trained_windows(made_from_it) == WindowConfig(tokens=16, stride=8, pooled=True)
    assert trained_windows("sentence-transformers/all-MiniLM-L6-v2") == WindowConfig()  # a hub id
    (made_from_it / "notesqa_windows.json").write_text('{"tokens": -1}')
    with pytest.raises(ValueError, match="remove it"):
        trained_windows(made_from_it)
