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

from collections.abc import Sequence
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
    return pooling_plans(tokenizer, [text], prompt, config, max_length)[0]


def pooling_plans(
    tokenizer, texts: Sequence[str], prompt: str, config: WindowConfig, max_length: int
) -> list[PoolingPlan]:
    """``pooling_plan`` of every text, tokenised in two batch calls (on the tokenizer's own
    threads: a tenth of indexing's time when done text by text)."""
    wholes = tokenizer.encode_batch([prompt + t for t in texts])  # [CLS] prompt text [SEP]
    plains = tokenizer.encode_batch(list(texts), add_special_tokens=False)
    return [_plan(w, p, prompt, config, max_length) for w, p in zip(wholes, plains, strict=True)]


def _plan(whole, plain, prompt: str, config: WindowConfig, max_length: int) -> PoolingPlan:
    """One text's plan from its encodings with and without the prompt and special tokens."""
    whole_ids, plain_ids = whole.ids, plain.ids
    special = whole.special_tokens_mask
    closing = 0  # special tokens after the text ([SEP])
    while closing < len(special) and special[len(special) - 1 - closing]:
        closing += 1
    count = len(plain_ids)
    first = len(whole_ids) - closing - count  # [CLS] and the prompt come before the text
    if first < 0 or whole_ids[first : first + count] != plain_ids:
        raise ValueError(
            f"the prompt {prompt!r} changes how the text after it is tokenised; pooled windows "
            "need a prompt that ends with a space"
        )
    room = max(max_length - first - closing, 0)  # text tokens that fit in one run
    kept = whole_ids[: first + min(count, room)] + whole_ids[first + count :]
    ids = np.asarray(kept, dtype=np.int64)  # (T,)
    ranges = np.asarray(window_ranges(count, config, plain.word_ids), dtype=np.int64)  # (W', 2)
    ranges = ranges.reshape(-1, 2)
    inside = ranges[:, 1] <= room  # the windows the run holds whole
    positions = np.arange(len(ids))  # (T,)
    starts, ends = ranges[inside, :1] + first, ranges[inside, 1:] + first  # (W, 1) each
    windows = (positions >= starts) & (positions < ends)  # (W, T)
    weights = np.vstack([np.ones((1, len(ids))), windows]).astype(np.float32)  # (1 + W, T)
    offsets = plain.offsets
    spans = [(offsets[a][0], offsets[b - 1][1]) for a, b in ranges.tolist()]
    pooled = [span for span, fits in zip(spans, inside.tolist(), strict=True) if fits]
    tail = [span for span, fits in zip(spans, inside.tolist(), strict=True) if not fits]
    return PoolingPlan(ids, weights, pooled, tail)


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


__all__ = ["PoolingPlan", "pooling_plan", "pooling_plans", "torch_pooled_vectors", "unit_rows"]
