"""Late chunking: a passage's own vector and its token windows' from one run over the passage.

Encoding each 32-token window of a passage alone costs about 2.8x the passage's own tokens. With
late chunking (Günther et al. 2024, Jina AI) the passage runs once and every window's vector is
the mean of its tokens' final states, put through the model's layers after pooling (normalise,
whitening). A window's tokens then "see" the whole passage. ``pooling_plan`` says, for one
passage, which token ids run and which rows of weights pool them: row 0 is the passage's own
vector, the others its windows. Windows that run past the model's window (``max_seq_length``)
cannot be pooled from the run; they come back as character spans (``tail``) and are encoded alone,
as before. The windows are cut exactly as ``Embedder.token_windows`` cuts them.

Example (windows of 4 tokens every 2, no prompt):
    >>> from tokenizers import Tokenizer
    >>> tokenizer = Tokenizer.from_file("models/tokenizer/tokenizer.json")
    >>> plan = pooling_plan(tokenizer, "one two three four five six", "", WindowConfig(4, 2), 64)
    >>> plan.weights.shape                   # (1 + pooled windows, tokens with [CLS] and [SEP])
    (3, 8)
    >>> plan.weights[1].astype(int).tolist()  # the first window: "one two three four"
    [0, 1, 1, 1, 1, 0, 0, 0]
    >>> plan.spans, plan.tail
    ([(0, 18), (8, 27)], [])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embedder.windows import WindowConfig, window_ranges


@dataclass(frozen=True)
class PoolingPlan:
    """One passage's run: ``ids`` (T,) int64, ``weights`` (1 + W, T) float32 (row 0 every
    token, the passage's own mean; then one row of ones over each pooled window's tokens),
    ``spans``: the pooled windows' ``(start, end)`` character spans in the text, and ``tail``:
    those of the windows to encode alone."""

    ids: np.ndarray
    weights: np.ndarray
    spans: list[tuple[int, int]]
    tail: list[tuple[int, int]]

    @property
    def windows(self) -> int:
        """Windows pooled from the run (rows of ``weights`` after the first)."""
        return len(self.weights) - 1


def pooling_plan(
    tokenizer, text: str, prompt: str, config: WindowConfig, max_length: int
) -> PoolingPlan:
    """How to run ``prompt + text`` once (at most ``max_length`` tokens with ``[CLS]`` and
    ``[SEP]``) and pool its windows; ``tokenizer`` is a ``tokenizers.Tokenizer`` that neither
    truncates nor pads (``embedder.windows.untruncated_tokenizer``)."""
    whole = tokenizer.encode(prompt + text)  # [CLS] prompt text [SEP], never truncated
    plain = tokenizer.encode(text, add_special_tokens=False)
    special = whole.special_tokens_mask
    first = next(
        (i for i, o in enumerate(whole.offsets) if not special[i] and o[0] >= len(prompt)),
        len(whole.ids),
    )
    count = len(plain.ids)
    if list(whole.ids[first : first + count]) != list(plain.ids):
        raise ValueError(
            f"the prompt {prompt!r} changes how the text after it is tokenised; pooled windows "
            "need a prompt that ends with a space"
        )
    opening = list(whole.ids[:first])  # [CLS] and the prompt
    closing = list(whole.ids[first + count :])  # [SEP]
    room = max(max_length - len(opening) - len(closing), 0)  # text tokens that fit in one run
    ids = np.asarray(opening + list(plain.ids[:room]) + closing, dtype=np.int64)  # (T,)
    rows = [np.ones(len(ids), dtype=np.float32)]
    spans: list[tuple[int, int]] = []
    tail: list[tuple[int, int]] = []
    for start, end in window_ranges(count, config, plain.word_ids):
        span = (plain.offsets[start][0], plain.offsets[end - 1][1])
        if end <= room:
            row = np.zeros(len(ids), dtype=np.float32)
            row[first + start : first + end] = 1.0
            rows.append(row)
            spans.append(span)
        else:
            tail.append(span)
    return PoolingPlan(ids, np.stack(rows), spans, tail)  # weights: (1 + W, T)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """``vectors`` (n, d) with every row scaled to length 1 (zero rows stay zero).

    Example:
        >>> unit_rows(np.array([[3.0, 4.0], [0.0, 0.0]])).tolist()
        [[0.6, 0.8], [0.0, 0.0]]
    """
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def torch_pooled_vectors(model, plan: PoolingPlan) -> np.ndarray:
    """(1 + W, D) vectors of one plan with a ``SentenceTransformer``: row 0 by the model's own
    pooling, the windows' by ``plan.weights``, all through the modules after its pooling."""
    import torch

    modules = list(model)
    pooling_at = next(i for i, m in enumerate(modules) if type(m).__name__ == "Pooling")
    device = next(model.parameters()).device
    ids = torch.from_numpy(plan.ids)[None].to(device)  # (1, T)
    features = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if "token_type_ids" in model.tokenizer.model_input_names:
        features["token_type_ids"] = torch.zeros_like(ids)
    with torch.no_grad():
        for module in modules[:pooling_at]:
            features = module(features)
        own = modules[pooling_at](dict(features))["sentence_embedding"]  # (1, H)
        weights = torch.from_numpy(plan.weights[1:]).to(device, features["token_embeddings"].dtype)
        hidden = features["token_embeddings"][0]  # (T, H)
        windows = weights @ hidden / weights.sum(dim=1, keepdim=True).clamp(min=1e-9)  # (W, H)
        pooled = {"sentence_embedding": torch.cat([own, windows])}  # (1 + W, H)
        for module in modules[pooling_at + 1 :]:
            pooled = module(pooled)
    return pooled["sentence_embedding"].float().cpu().numpy()  # (1 + W, D)


__all__ = ["PoolingPlan", "pooling_plan", "torch_pooled_vectors", "unit_rows"]
