"""Inverse-cloze pairs from the pretraining corpus: unsupervised retrieval data for the embedder.

The inverse cloze task (ICT; Lee et al. 2019, ORQA) turns plain text into (query, passage) pairs:
one sentence of a paragraph is the pseudo-question and the paragraph is the passage it must find.
The sentence is removed from its passage most of the time (``keep_sentence`` keeps it in 10% of
pairs, as ORQA), so the pair teaches topical, not only lexical, matching. Pairs are taken from
documents with several long paragraphs, so article-grouped batches (``training.batching``) give
each sentence in-batch negatives from its own article, as SQuAD's questions get.

Documents whose title is in ``exclude_titles`` (SQuAD dev's articles, the held-out train articles)
are skipped, so evaluation never scores passages the embedder was trained to find.

Example:
    >>> pairs = inverse_cloze_pairs(["enwiki-2015-00.jsonl.gz"], max_pairs=1000)
    >>> pairs[0].sentence in pairs[0].passage  # True for about 10% of pairs
    False
"""

from __future__ import annotations

import random
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from training.corpus import iter_titled_documents, split_sentences


@dataclass(frozen=True)
class ClozePair:
    """One training pair: ``sentence`` should retrieve ``passage``; ``article`` groups batches."""

    sentence: str
    passage: str
    article: str


def normalise_title(title: str) -> str:
    """Compare Wikipedia and SQuAD titles: SQuAD's ``Beyonc%C3%A9`` / ``Super_Bowl_50`` match
    the dump's ``Beyoncé`` / ``Super Bowl 50``.

    Example:
        >>> normalise_title("Super_Bowl_50") == normalise_title("Super Bowl 50")
        True
    """
    return " ".join(urllib.parse.unquote(title).replace("_", " ").split()).casefold()


def inverse_cloze_pairs(
    paths: Iterable[str | Path],
    max_pairs: int,
    seed: int = 0,
    keep_sentence: float = 0.1,
    per_document: int = 16,
    min_paragraphs: int = 4,
    min_sentences: int = 3,
    min_paragraph_chars: int = 200,
    min_sentence_words: int = 5,
    exclude_titles: Iterable[str] = (),
) -> list[ClozePair]:
    """Up to ``max_pairs`` inverse-cloze pairs, read from the corpus files in order.

    A paragraph qualifies with at least ``min_sentences`` sentences and ``min_paragraph_chars``
    characters (section titles and list items do not); a document gives pairs only when it has
    ``min_paragraphs`` qualifying paragraphs, and at most ``per_document`` of them (a seeded
    sample), one random sentence of ``min_sentence_words`` words or more from each.
    """
    if max_pairs <= 0:
        raise ValueError(f"max_pairs must be positive, not {max_pairs}")
    if not 0.0 <= keep_sentence <= 1.0:
        raise ValueError(f"keep_sentence is a probability in [0, 1], not {keep_sentence}")
    excluded = {normalise_title(t) for t in exclude_titles}
    rng = random.Random(seed)
    pairs: list[ClozePair] = []
    for number, (title, paragraphs) in enumerate(iter_titled_documents(paths)):
        if title and normalise_title(title) in excluded:
            continue
        split = [split_sentences(p) for p in paragraphs if len(p) >= min_paragraph_chars]
        split = [s for s in split if len(s) >= min_sentences]
        if len(split) < min_paragraphs:
            continue
        rng.shuffle(split)
        article = f"{number}:{title}"
        for sentences in split[:per_document]:
            long_enough = [
                i for i, s in enumerate(sentences) if len(s.split()) >= min_sentence_words
            ]
            if not long_enough:
                continue
            chosen = rng.choice(long_enough)
            kept = rng.random() < keep_sentence
            passage = " ".join(s for i, s in enumerate(sentences) if kept or i != chosen)
            pairs.append(ClozePair(sentences[chosen], passage, article))
            if len(pairs) >= max_pairs:
                return pairs
    if not pairs:
        raise ValueError(
            "the corpus gave no inverse-cloze pairs: it needs documents with "
            f"{min_paragraphs}+ paragraphs of {min_sentences}+ sentences (check data.corpus)"
        )
    return pairs


__all__ = ["ClozePair", "inverse_cloze_pairs", "normalise_title"]
