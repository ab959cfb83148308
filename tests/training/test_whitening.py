import json

import numpy as np
import pytest

from training.whitening import (
    RECORD_FILE,
    WhiteningSettings,
    fit_whitening,
    whiten_embedder,
    whitening_texts,
)


def skewed_vectors(n: int = 2000, d: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(d, d)) * np.array([5.0, 2.0, 1.0, 0.5, 0.2, 0.1])[:, None]
    return rng.normal(size=(n, d)) @ mixing + 3.0  # (n, d): unequal variances, off-centre


def test_full_whitening_gives_unit_covariance_and_keeps_the_strongest_directions():
    x = skewed_vectors()
    shift, weight = fit_whitening(x, WhiteningSettings(alpha=1.0, centre=True))
    y = (x - shift) @ weight  # (n, d)
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(np.cov(y.T), np.eye(6), atol=1e-3)
    _, half = fit_whitening(x, WhiteningSettings(alpha=0.5, keep=3))
    assert half.shape == (6, 3)
    kept = np.var(x @ half, axis=0)  # alpha 0.5 leaves variance s ** 0.5, largest first
    assert kept[0] > kept[1] > kept[2]


def test_alpha_zero_without_centring_is_a_rotation_that_keeps_every_cosine():
    x = skewed_vectors()
    shift, weight = fit_whitening(x, WhiteningSettings(alpha=0.0))
    assert not shift.any()
    y = x @ weight

    def cosines(v):
        v = v / np.linalg.norm(v, axis=1, keepdims=True)
        return v[:50] @ v[50:100].T

    np.testing.assert_allclose(cosines(y), cosines(x), atol=1e-5)


def test_bad_settings_and_too_little_text_are_refused():
    with pytest.raises(ValueError, match="alpha must be between 0"):
        WhiteningSettings(alpha=1.5)
    with pytest.raises(ValueError, match="keep must be 0"):
        WhiteningSettings(keep=-1)
    with pytest.raises(ValueError, match="needs more than 6 fit texts, got 5"):
        fit_whitening(skewed_vectors(n=5), WhiteningSettings())
    with pytest.raises(ValueError, match="keep 9 is more than the model's 6"):
        fit_whitening(skewed_vectors(), WhiteningSettings(keep=9))


def test_fit_texts_are_distinct_paragraphs_and_questions_by_kind():
    examples = [{"context": f"p{i // 3}", "question": f"q{i}"} for i in range(30)]
    texts = whitening_texts(examples, size=4)
    assert sorted(texts) == ["passage", "query"]
    assert len(set(texts["passage"])) == 4 and set(texts["passage"]) <= {f"p{i}" for i in range(10)}
    assert len(texts["query"]) == 4
    assert len(whitening_texts(examples, size=100)["passage"]) == 10  # all there are


def test_a_whitened_embedder_applies_the_transform_wherever_it_is_loaded(
    tmp_path, tiny_embedder_dir, data_dir
):
    from embedder import Embedder
    from training.squad import load_squad

    texts = whitening_texts(load_squad(data_dir / "squad-train.json")[1], size=200)
    settings = WhiteningSettings(alpha=0.5, keep=16)
    out = whiten_embedder(tiny_embedder_dir, tmp_path / "white", texts, settings)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["white"]  # no temp folder left
    record = json.loads((out / RECORD_FILE).read_text())
    assert record["alpha"] == 0.5 and record["keep"] == 16
    assert record["fit_texts"] == {k: len(v) for k, v in texts.items()}

    # torch: the transform's arithmetic to 1e-4 (int8 ONNX vectors are within ~1e-3)
    plain = Embedder.load(tiny_embedder_dir, runtime="torch")
    white = Embedder.load(out, runtime="torch")
    assert white.dim == 16 and white.fingerprint != plain.fingerprint
    fit = np.concatenate([plain.encode(batch, kind=kind) for kind, batch in texts.items()])
    shift, weight = fit_whitening(fit, settings)
    sample = ["Where was Ada born?", "Ada was born in Oslo in 1850."]
    expected = (plain.encode(sample) - shift) @ weight
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(white.encode(sample), expected, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(white.encode(sample), axis=1), 1.0, atol=1e-5)

    with pytest.raises(ValueError, match="already whitened"):
        whiten_embedder(out, tmp_path / "twice", texts, settings)
    assert not (tmp_path / "twice").exists()


def test_whitening_keeps_the_windows_the_embedder_was_trained_for(
    tmp_path, tiny_embedder_dir, data_dir, copy_dir
):
    from embedder import WindowConfig, trained_windows
    from embedder.windows import record_trained_windows
    from training.squad import load_squad

    trained = copy_dir(tiny_embedder_dir)
    record_trained_windows(trained, WindowConfig(tokens=8, stride=4, pooled=True))
    texts = whitening_texts(load_squad(data_dir / "squad-train.json")[1], size=100)
    out = whiten_embedder(trained, tmp_path / "white", texts, WhiteningSettings(keep=16))
    assert trained_windows(out) == WindowConfig(tokens=8, stride=4, pooled=True)
