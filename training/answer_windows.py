"""Answer windows: train the bi-encoder on the short passages the notes index searches.

The notes index gives each passage a vector per token window as well as its own
(``embedder.windows``) and scores it by the best; SQuAD pairs teach the embedder to match a
question with a whole paragraph only. ``answer_window_positives`` swaps a share of the positives
for one of the paragraph's own windows (cut exactly as the index cuts them) that contains the
answer, so the model also learns the question -> window match it is asked for at search time.

Example (windows of 4 tokens every 2; the second question has no answer record, so it keeps
the paragraph):
    >>> from tokenizers import Tokenizer
    >>> tokenizer = Tokenizer.from_file("models/tokenizer/tokenizer.json")
    >>> paragraph = "Ada Lovelace was born in London. She wrote the first program."
    >>> examples = [{"question": "Where was Ada born?", "context": paragraph,
    ...              "answers": [{"text": "London", "answer_start": 25}]}]
    >>> pairs = [("Where was Ada born?", paragraph), ("Who wrote it?", paragraph)]
    >>> answer_window_positives(examples, pairs, tokenizer, WindowConfig(4, 2), share=1.0)
    ['in London. She', 'Ada Lovelace was born in London. She wrote the first program.']
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from embedder.windows import WindowConfig, window_spans


def answer_spans(examples: list[dict]) -> dict[tuple[str, str], list[tuple[int, int]]]:
    """``{(question, paragraph): [(answer start, end) in characters, ...]}`` of the answerable
    examples (the question stripped, as ``squad_pairs`` gives it)."""
    spans: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for e in examples:
        if e.get("is_impossible"):
            continue
        key = (e["question"].strip(), e["context"])
        for answer in e["answers"]:
            start = int(answer["answer_start"])
            spans.setdefault(key, []).append((start, start + len(answer["text"])))
    return spans


def answer_window_positives(
    examples: list[dict],
    pairs: Sequence[tuple[str, str]],
    tokenizer,
    config: WindowConfig,
    share: float,
    seed: int = 0,
) -> list[str]:
    """The positive of every ``(question, paragraph)`` pair: for a random ``share`` of them, a
    window of the paragraph (``config``, whole words, as ``Embedder.token_windows`` cuts it) that
    holds the first answer, chosen at random among those that do; otherwise the paragraph.

    ``tokenizer`` is a ``tokenizers.Tokenizer`` without truncation. Paragraphs that fit in one
    window, and answers no window holds whole, keep the paragraph.
    """
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"answer window share must lie in [0, 1], got {share}")
    if share and not config.enabled:
        raise ValueError("answer windows need window tokens > 0 (answer_window_tokens)")
    rng = random.Random(seed)
    spans = answer_spans(examples)
    cut: dict[str, list[tuple[int, int]]] = {}  # windows of each paragraph, cut once
    positives = []
    for question, paragraph in pairs:
        answers = spans.get((question, paragraph))
        if not answers or rng.random() >= share:
            positives.append(paragraph)
            continue
        if paragraph not in cut:
            encoding = tokenizer.encode(paragraph, add_special_tokens=False)
            cut[paragraph] = window_spans(encoding.offsets, config, encoding.word_ids)
        start, end = answers[0]
        holding = [(a, b) for a, b in cut[paragraph] if a <= start and end <= b]
        if holding:
            a, b = rng.choice(holding)
            positives.append(paragraph[a:b])
        else:
            positives.append(paragraph)
    return positives
