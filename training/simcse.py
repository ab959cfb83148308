"""Sentences from the pretraining corpus for unsupervised SimCSE (Gao et al., 2021).

SimCSE pairs each sentence with itself under the in-batch-negatives loss: the two encodings
differ only by dropout, so the loss spreads unrelated sentences apart while keeping a sentence
close to a lightly perturbed copy of itself, the property STS measures. The sentences come from
the same Wikipedia text the base was pretrained on; documents whose title is in
``exclude_titles`` (SQuAD dev's articles, the held-out train articles) are skipped.

Example:
    >>> sentences = corpus_sentences(["enwiki-2015-00.jsonl.gz"], max_sentences=1000)
    >>> len(sentences), min(len(s.split()) for s in sentences) >= 6
    (1000, True)
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path

from training.corpus import iter_titled_documents, split_sentences
from training.inverse_cloze import normalise_title


def corpus_sentences(
    paths: Iterable[str | Path],
    max_sentences: int,
    seed: int = 0,
    per_document: int = 8,
    min_words: int = 6,
    max_words: int = 48,
    exclude_titles: Iterable[str] = (),
) -> list[str]:
    """Up to ``max_sentences`` distinct sentences of ``min_words`` to ``max_words`` words, at most
    ``per_document`` (a seeded sample) from each document, read from the files in order."""
    if max_sentences <= 0:
        raise ValueError(f"max_sentences must be positive, not {max_sentences}")
    excluded = {normalise_title(t) for t in exclude_titles}
    rng = random.Random(seed)
    chosen: list[str] = []
    seen: set[str] = set()
    for title, paragraphs in iter_titled_documents(paths):
        if title and normalise_title(title) in excluded:
            continue
        candidates = [
            s.strip()
            for p in paragraphs
            for s in split_sentences(p)
            if min_words <= len(s.split()) <= max_words and s.strip() not in seen
        ]
        for sentence in rng.sample(candidates, min(per_document, len(candidates))):
            if sentence not in seen:
                seen.add(sentence)
                chosen.append(sentence)
                if len(chosen) >= max_sentences:
                    return chosen
    if not chosen:
        raise ValueError(
            f"the corpus gave no sentences of {min_words}-{max_words} words for SimCSE "
            "(check data.corpus)"
        )
    return chosen


__all__ = ["corpus_sentences"]
