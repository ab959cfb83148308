"""The reader on onnxruntime: its exported graph, and question + context windows cut by the
``tokenizers`` package, so answering a question imports neither torch nor transformers.

The reader folder is exported once (``embedder.onnx_runtime.cached_export``: int8 matrix
products, the span head kept in float) and its windows are cut by the same Rust tokenizer that
transformers wraps, with the same settings (``only_second`` truncation, ``doc_stride`` overlap),
so ``featurize_native`` gives the features ``Reader.featurize`` gives with a transformers
tokenizer (the tests compare them).

Example (the shipped reader; ``rag.reader.Reader`` turns the logits into spans):
    >>> model, tokenizer = load_onnx_reader(Path("models/reader"))
    >>> windows = window_tokenizer(tokenizer, max_seq_length=384, doc_stride=128)
    >>> features = featurize_native(tokenizer, windows, [("Who wrote it?", "Ada wrote it.")], 64)
    >>> ids = np.array(features["input_ids"])                    # (B, T): one window here
    >>> tokenizer.decode(ids[0].tolist())
    'who wrote it? ada wrote it.'
    >>> start, end = model(ids, np.array(features["token_type_ids"]), np.ones_like(ids))
    >>> start.shape == end.shape == ids.shape, start.dtype       # (B, T) float32 each
    (True, dtype('float32'))
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from embedder.onnx_runtime import (
    MODEL_FILE,
    TOKENIZER_FILE,
    cached_export,
    load_tokenizer_file,
    read_info,
    session,
)


class OnnxQAModel:
    """An exported ``BertForQuestionAnswering``: (ids, types, mask) -> (start, end) logits."""

    def __init__(self, export: Path) -> None:
        info = read_info(export)
        self.session = session(export / MODEL_FILE)
        self.pad_token_id = int(info.get("pad_token_id", 0))
        self.precision = info.get("precision", "int8")
        self._inputs = {i.name for i in self.session.get_inputs()}

    def __call__(
        self, ids: np.ndarray, types: np.ndarray, mask: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Start and end logits, (B, T) float32 each, for (B, T) int64 inputs."""
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        start, end = self.session.run(None, {k: v for k, v in feed.items() if k in self._inputs})
        return start, end


def _write_export(folder: Path, out: Path, quantize: bool) -> dict:
    """Export the reader in ``folder`` (imports torch and transformers: first load only)."""
    import torch
    from transformers import AutoModelForQuestionAnswering

    from embedder.onnx_export import eager_attention, save_graph
    from embedder.tokenizer_files import load_tokenizer

    class Logits(torch.nn.Module):
        def __init__(self, model) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.start_logits, out.end_logits  # (B, T) each

    tokenizer = load_tokenizer(folder)
    model = AutoModelForQuestionAnswering.from_pretrained(str(folder), dtype=torch.float32)
    eager_attention(model)
    vocab = int(model.config.vocab_size)
    save_graph(Logits(model), out, ["start_logits", "end_logits"], vocab, True, quantize)
    (out / TOKENIZER_FILE).write_text(tokenizer.backend_tokenizer.to_str())
    return {"pad_token_id": int(tokenizer.pad_token_id or 0)}


def load_onnx_reader(folder: Path, quantize: bool = True):
    """``(OnnxQAModel, tokenizers.Tokenizer)`` for the reader in ``folder``, exported on first
    use (``quantize``: int8 weights, else float)."""
    export = cached_export(Path(folder), "reader", _write_export, quantize=quantize)
    return OnnxQAModel(export), load_tokenizer_file(export / TOKENIZER_FILE)


def truncate_question_native(tokenizer, question: str, limit: int) -> str:
    """``question`` cut after its first ``limit`` tokens (``rag.reader.truncate_question`` for a
    ``tokenizers.Tokenizer`` that does not truncate).

    Example:
        >>> from tokenizers import Tokenizer
        >>> tokenizer = Tokenizer.from_file("models/reader/tokenizer.json")
        >>> truncate_question_native(tokenizer, "where was ada born", 2)
        'where was'
    """
    encoding = tokenizer.encode(question, add_special_tokens=False)
    if len(encoding.ids) <= limit:
        return question
    return question[: encoding.offsets[limit - 1][1]]


def window_tokenizer(tokenizer, max_seq_length: int, doc_stride: int):
    """A copy of ``tokenizer`` that cuts a (question, context) pair into windows of
    ``max_seq_length`` tokens, the context overlapping by ``doc_stride``."""
    from tokenizers import Tokenizer

    windows = Tokenizer.from_str(tokenizer.to_str())
    windows.no_padding()
    windows.enable_truncation(
        max_seq_length, stride=doc_stride, strategy="only_second", direction="right"
    )
    return windows


def featurize_native(
    tokenizer, windows, pairs: Sequence[tuple[str, str]], question_limit: int
) -> dict:
    """``Reader.featurize`` with ``tokenizers``: ``tokenizer`` (no truncation) cuts questions,
    ``windows`` (``window_tokenizer``) cuts the pairs; each pair's first window, then its
    overflowing ones, as transformers orders them."""
    questions = [truncate_question_native(tokenizer, q, question_limit) for q, _ in pairs]
    encodings = windows.encode_batch(list(zip(questions, [c for _, c in pairs], strict=True)))
    features: dict = {"input_ids": [], "token_type_ids": [], "pair_index": [], "offsets": []}
    for p, first in enumerate(encodings):
        for window in [first, *first.overflowing]:
            sequence = window.sequence_ids
            features["input_ids"].append(list(window.ids))
            features["token_type_ids"].append(list(window.type_ids))
            features["pair_index"].append(p)
            # only tokens of the context (sequence 1) may start or end an answer
            features["offsets"].append(
                [tuple(o) if sequence[t] == 1 else None for t, o in enumerate(window.offsets)]
            )
    return features
