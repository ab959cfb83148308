import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from embedder import Embedder


@pytest.fixture(scope="module")
def emb(tiny_embedder_dir):
    """The embedder on torch (tests/embedder/test_onnx.py compares the ONNX runtime with it)."""
    return Embedder.load(tiny_embedder_dir, runtime="torch")


def test_encode_gives_float32_unit_vectors(emb):
    vectors = emb.encode(["Where was Ada born?", "Ada was born in Oslo.", "🙂"])
    assert vectors.shape == (3, emb.dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert emb.encode([]).shape == (0, emb.dim)
    with pytest.raises(TypeError, match="list"):
        emb.encode("a bare string")


def test_truncated_vectors_are_the_renormalised_prefix(tiny_embedder_dir, emb):
    texts = ["Where was Ada born?", "Ada was born in Oslo."]
    small = Embedder.load(tiny_embedder_dir, truncate_dim=8, runtime="torch")
    vectors = small.encode(texts)
    assert vectors.shape == (2, 8) and small.dim == 8
    full = emb.encode(texts)[:, :8]
    expected = full / np.linalg.norm(full, axis=1, keepdims=True)
    np.testing.assert_allclose(vectors, expected, atol=1e-5)
    assert small.identity == emb.identity + "/8"  # an index knows the vectors' size
    with pytest.raises(ValueError, match="truncate_dim"):
        Embedder.load(tiny_embedder_dir, truncate_dim=emb.dim + 1)


def test_sentence_transformers_loads_the_folder_directly(tiny_embedder_dir, emb):
    model = SentenceTransformer(str(tiny_embedder_dir), device="cpu")
    direct = model.encode(["Ada was born in Oslo."], normalize_embeddings=True)
    np.testing.assert_allclose(direct, emb.encode(["Ada was born in Oslo."]), atol=1e-5)


def test_identity_changes_with_the_weights(tiny_embedder_dir, emb, copy_dir):
    assert emb.identity.startswith("embedder@")
    other = copy_dir(tiny_embedder_dir)
    from safetensors.torch import load_file, save_file

    weights = load_file(other / "model.safetensors")
    first = sorted(weights)[0]
    weights[first] = weights[first] + 1
    save_file(weights, other / "model.safetensors")
    assert Embedder.load(other).identity != emb.identity


def test_long_texts_are_truncated_with_one_warning(emb, caplog):
    text = "word " * 2000
    with caplog.at_level("WARNING"):
        vectors = emb.encode([text, text])
    assert vectors.shape[0] == 2
    assert sum("truncated" in r.message for r in caplog.records) == 1


def test_count_tokens_measures_long_texts_without_the_length_warning(emb, capsys, caplog):
    piece = "alpha beta, gamma. "
    text = piece * 400  # far longer than the model's window
    # word pieces never cross whitespace, so the count is the piece's count times 400
    expected = 400 * len(emb.tokenizer(piece, add_special_tokens=False)["input_ids"])
    emb.tokenizer.deprecation_warnings.clear()  # transformers warns once per tokenizer
    capsys.readouterr()
    backend = emb.tokenizer.backend_tokenizer
    backend.enable_truncation(emb.max_seq_length)  # as a sentence-transformers save leaves it
    try:
        with caplog.at_level("WARNING"):
            assert emb.count_tokens(text) == expected > emb.max_seq_length
    finally:
        backend.no_truncation()
    assert "sequence length" not in capsys.readouterr().err
    assert not [r for r in caplog.records if "sequence length" in r.getMessage()]


def test_folder_without_tokenizer_fails_loudly(tiny_embedder_dir, copy_dir):
    broken = copy_dir(tiny_embedder_dir)
    for name in ("tokenizer.json", "vocab.txt"):
        (broken / name).unlink(missing_ok=True)
    with pytest.raises(FileNotFoundError, match="no tokenizer"):
        Embedder.load(broken)


def test_kind_changes_nothing_for_a_model_trained_without_prompts(emb):
    assert emb.prompts == {}
    np.testing.assert_array_equal(emb.encode(["a b c"], kind="query"), emb.encode(["a b c"]))
    with pytest.raises(ValueError, match="kind must be"):
        emb.encode(["a"], kind="document")
