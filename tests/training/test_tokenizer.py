import pytest
from transformers import AutoTokenizer

from training.tokenizer import load_tokenizer


def test_tokenizer_is_lowercased_wordpiece_with_pairs(tiny_tokenizer_dir):
    tok = AutoTokenizer.from_pretrained(str(tiny_tokenizer_dir))
    assert (tiny_tokenizer_dir / "vocab.txt").read_text().split("\n")[:5] == [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
    ]
    enc = tok("Where was Ada born?", "Ada was born in Paris.")
    tokens = tok.convert_ids_to_tokens(enc["input_ids"])
    assert tokens[0] == "[CLS]" and tokens.count("[SEP]") == 2
    assert enc["token_type_ids"][-1] == 1 and enc["token_type_ids"][0] == 0
    assert tok.decode(tok("PARIS Was")["input_ids"], skip_special_tokens=True) == "paris was"


@pytest.mark.parametrize("text", ["", "🙂 emoji", "naïve café", "a\nb\tc", "x" * 300])
def test_round_trip_tricky_strings(tiny_tokenizer_dir, text):
    tok = load_tokenizer(tiny_tokenizer_dir)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    decoded = tok.decode(ids)
    if text.strip():
        assert ids
    assert "[UNK]" in decoded or decoded.replace(
        " ", ""
    ) == tok.backend_tokenizer.normalizer.normalize_str(text).replace(" ", "").replace(
        "\n", ""
    ).replace("\t", "")


def test_missing_tokenizer_fails_loudly(tmp_path, tiny_bert_dir):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text((tiny_bert_dir / "config.json").read_text())
    with pytest.raises(FileNotFoundError, match="no tokenizer"):
        load_tokenizer(folder)
