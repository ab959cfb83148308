"""Train a lower-cased BERT WordPiece tokenizer with `tokenizers` and save it for `transformers`.

Example (a three-line corpus; real ones are JSONL articles and 16,384 pieces):
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "notes.txt").write_text("Hello world. The world says hello.\\n" * 3)
    >>> tok = train_tokenizer([folder / "notes.txt"], TokenizerConfig(vocab_size=50), folder / "tok")
    >>> tok.convert_ids_to_tokens(tok("Hello worlds")["input_ids"])
    ['[CLS]', 'hello', 'world', '##s', '[SEP]']
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

from tokenizers import (
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)
from transformers import BertTokenizerFast, PreTrainedTokenizerFast

from embedder.tokenizer_files import load_tokenizer  # noqa: F401  (re-exported for training)
from training.configs import TokenizerConfig
from training.corpus import iter_documents

log = logging.getLogger(__name__)

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _paragraphs(paths: Iterable[str | Path], max_chars: int) -> Iterator[str]:
    for doc in iter_documents(paths, max_chars=max_chars):
        yield from doc


def build_wordpiece(cfg: TokenizerConfig, texts: Iterable[str]) -> Tokenizer:
    """Learn a WordPiece vocabulary from ``texts`` with BERT's uncased normalisation."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=True, lowercase=True
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.WordPieceTrainer(
        vocab_size=cfg.vocab_size,
        min_frequency=cfg.min_frequency,
        special_tokens=SPECIAL_TOKENS,
        continuing_subword_prefix="##",
        show_progress=True,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return tok


def wrap_fast(tok: Tokenizer, model_max_length: int = 512) -> PreTrainedTokenizerFast:
    """Wrap a raw `tokenizers.Tokenizer` as a BERT `transformers` tokenizer (with token_type_ids)."""
    return BertTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
        model_max_length=model_max_length,
        do_lower_case=True,
    )


def save_tokenizer(fast: PreTrainedTokenizerFast, out_dir: str | Path) -> None:
    """Save ``tokenizer.json`` + config, and a ``vocab.txt`` (ids in order) for other tools."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out)
    vocab = fast.get_vocab()
    (out / "vocab.txt").write_text(
        "".join(t + "\n" for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])), encoding="utf-8"
    )


MIN_VOCAB_SHARE = 0.5  # a vocabulary below half the asked size means the corpus is not text


def train_tokenizer(
    corpus: Iterable[str | Path], cfg: TokenizerConfig, out_dir: str | Path
) -> PreTrainedTokenizerFast:
    """Train on ``corpus`` files (JSONL(.gz) articles or text) and save to ``out_dir``."""
    paths = list(corpus)
    texts = _paragraphs(paths, cfg.max_chars)
    first = next(texts, None)
    if first is None:
        raise ValueError(
            f"corpus {paths} holds no text; pass JSONL articles or non-empty text files"
        )

    def chained() -> Iterator[str]:
        yield first
        yield from texts

    tok = build_wordpiece(cfg, chained())
    if tok.get_vocab_size() < cfg.vocab_size * MIN_VOCAB_SHARE:
        raise ValueError(
            f"the corpus {', '.join(map(str, paths))} gave only {tok.get_vocab_size()} tokens of "
            f"the {cfg.vocab_size} asked for: too little text to learn a vocabulary from. Pass "
            "more text (JSONL(.gz) articles or plain-text files) or a smaller --vocab-size"
        )
    fast = wrap_fast(tok)
    save_tokenizer(fast, out_dir)
    log.info("saved a %d-piece WordPiece tokenizer to %s", tok.get_vocab_size(), out_dir)
    return fast
