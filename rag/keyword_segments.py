"""BM25 over an index kept in segments: each segment stores its passages' postings, and the
collection statistics (passages, average length, how many passages hold a word) are computed at
query time over the passages still alive, so deleting a passage (a tombstone) or adding a
segment changes every score exactly as rebuilding the whole keyword index would.

This is the Lucene design (``docs/EXPERIMENTS.md`` I17 says why not SQLite FTS5: its ``bm25()``
fixes k1 at 1.2 and its own tokenizer, where ours is tuned at 2.0 with Snowball stems). Words are
made by ``rag.sparse``'s tokenizer and scored as ``bm25s`` scores them (the Lucene variant:
``idf = ln(1 + (N - df + 0.5) / (df + 0.5))``, ``tf / (tf + k1 (1 - b + b len / avglen))``), so
one segment with every passage alive gives bm25s's scores.

A segment on disk (``KeywordSegment.save``; JSON and ``.npy``, no pickle)::

    words.json     the segment's words, in postings order
    starts.npy     (V + 1,) int64: word w's postings are rows starts[w]:starts[w + 1]
    passages.npy   (P,) int32: the passage (its row in the segment) of each posting
    counts.npy     (P,) uint16: how often the word occurs in that passage
    lengths.npy    (D,) int32: words in each passage

Example (two segments; the first passage of the first segment deleted):
    >>> first = KeywordSegment.build([["adam", "keep"], ["sgd", "momentum"]])
    >>> second = KeywordSegment.build([["adam", "adam", "averag"]])
    >>> live = [np.array([False, True]), np.array([True])]
    >>> [(segment, row) for segment, row, _ in search([first, second], live, ["adam"], k=3)]
    [(1, 0)]
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.sparse import K1, STEMMER, tokenize

B = 0.75  # length normalisation, bm25s's default
BLOCK = 1 << 20  # occurrences gathered in a Python list before they become an array
MAX_COUNT = np.iinfo(np.uint16).max  # a word's count in one passage is stored up to this


def pair_keys(word_ids: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``(n,)`` int64: each ``(word id, row)`` pair as one number that sorts by word, then row."""
    return (np.asarray(word_ids, dtype=np.int64) << 32) | np.asarray(rows, dtype=np.int64)


def run_starts(values: np.ndarray) -> np.ndarray:
    """Where each run of equal numbers in ``values`` (sorted) begins."""
    change = np.empty(len(values), dtype=bool)  # (n,): one byte a value, no copy of them
    change[:1] = True
    np.not_equal(values[1:], values[:-1], out=change[1:])
    return np.flatnonzero(change)


@dataclass
class KeywordSegment:
    """The postings of one segment's passages (rows ``0..D-1``, in the segment's order)."""

    words: dict[str, int]  # word -> its row in ``starts``
    starts: np.ndarray  # (V + 1,) int64
    passages: np.ndarray  # (P,) int32
    counts: np.ndarray  # (P,) uint16
    lengths: np.ndarray  # (D,) int32

    @classmethod
    def build(cls, tokens: Iterable[Sequence[str]]) -> KeywordSegment:
        """Postings of passages given as their words (``rag.sparse``'s tokenizer's output),
        gathered a block at a time into arrays (a big vault's words are never Python lists).

        Example:
            >>> segment = KeywordSegment.build([["adam", "adam"], ["sgd"]])
            >>> segment.postings("adam")
            (array([0], dtype=int32), array([2], dtype=uint16))
        """
        vocabulary: dict[str, int] = {}
        key_blocks, lengths = [], []
        words_now: list[int] = []
        rows_now: list[int] = []
        for row, words in enumerate(tokens):
            lengths.append(len(words))
            words_now.extend(vocabulary.setdefault(word, len(vocabulary)) for word in words)
            rows_now.extend([row] * len(words))
            if len(words_now) >= BLOCK:
                key_blocks.append(pair_keys(np.asarray(words_now), np.asarray(rows_now)))
                words_now, rows_now = [], []
        key_blocks.append(pair_keys(np.asarray(words_now), np.asarray(rows_now)))
        keys = np.concatenate(key_blocks)  # (occurrences,) int64
        del key_blocks
        return cls.from_keys(vocabulary, keys, np.asarray(lengths, dtype=np.int32))

    @classmethod
    def from_pairs(
        cls,
        vocabulary: dict[str, int],
        word_ids: np.ndarray,
        rows: np.ndarray,
        lengths: np.ndarray,
        counts: np.ndarray | None = None,
    ) -> KeywordSegment:
        """Postings from ``(word id, passage row)`` pairs, each one occurrence (or ``counts``
        occurrences). Words without a pair are left out and the rest numbered in sorted order,
        so two builds of the same passages are equal file for file."""
        return cls.from_keys(vocabulary, pair_keys(word_ids, rows), lengths, counts)

    @classmethod
    def from_keys(
        cls,
        vocabulary: dict[str, int],
        keys: np.ndarray,
        lengths: np.ndarray,
        counts: np.ndarray | None = None,
    ) -> KeywordSegment:
        """``from_pairs`` of pairs packed by ``pair_keys`` (``keys`` is sorted in place). Works
        on a few arrays of one number per occurrence: 100k Wikipedia passages' postings build
        in a few hundred MB."""
        names = sorted(vocabulary, key=vocabulary.__getitem__)  # by id
        if counts is None:
            keys.sort()
            weights = None
        else:
            order = np.argsort(keys, kind="stable")
            keys, weights = keys[order], np.asarray(counts, dtype=np.int64)[order]
            del order
        firsts = run_starts(keys)  # (U,) first of each (word, row)
        unique = keys[firsts]  # (U,) sorted: by word id, then row
        if weights is None:
            summed = np.diff(np.append(firsts, len(keys)))  # (U,) occurrences of each
        else:
            summed = np.add.reduceat(weights, firsts) if len(firsts) else weights[:0]
        del keys, weights, firsts
        old_word, row = unique >> 32, (unique & 0xFFFFFFFF).astype(np.int32)  # (U,) each
        del unique
        group_first = run_starts(old_word)  # (G,) each word's first posting
        present = old_word[group_first]  # (G,) old ids of the words that occur, ascending
        sizes = np.diff(np.append(group_first, len(old_word)))  # (G,) postings of each
        alphabetical = sorted(range(len(present)), key=lambda i: names[present[i]])
        new_id = np.empty(len(present), dtype=np.int64)
        new_id[alphabetical] = np.arange(len(present))
        new_starts = np.zeros(len(present) + 1, dtype=np.int64)
        new_starts[1:] = np.cumsum(sizes[alphabetical])  # (G + 1,) in alphabetical order
        group = np.repeat(np.arange(len(present)), sizes)  # (U,) each posting's word group
        position = new_starts[new_id[group]] + np.arange(len(group)) - group_first[group]
        del group, old_word
        passages = np.empty(len(row), dtype=np.int32)
        passages[position] = row
        stored = np.empty(len(row), dtype=np.uint16)
        stored[position] = np.minimum(summed, MAX_COUNT)
        return cls(
            words={names[present[i]]: n for n, i in enumerate(alphabetical)},
            starts=new_starts,
            passages=passages,
            counts=stored,
            lengths=np.asarray(lengths, dtype=np.int32),
        )

    def __len__(self) -> int:
        return len(self.lengths)

    def postings(self, word: str) -> tuple[np.ndarray, np.ndarray]:
        """``(passage rows, counts)`` of ``word`` (empty when the segment lacks it)."""
        w = self.words.get(word)
        if w is None:
            return np.zeros(0, np.int32), np.zeros(0, np.uint16)
        first, end = self.starts[w], self.starts[w + 1]
        return self.passages[first:end], self.counts[first:end]

    def keep(self, alive: np.ndarray) -> tuple[dict[str, int], np.ndarray, np.ndarray, np.ndarray]:
        """``(words, word ids, new rows, counts)`` of the postings of the ``alive`` passages,
        rows renumbered ``0..alive.sum()-1`` in order: what a merge concatenates."""
        new_row = np.cumsum(alive) - 1  # (D,)
        word_of = np.repeat(np.arange(len(self.words)), np.diff(self.starts))  # (P,)
        kept = alive[self.passages]  # (P,)
        return self.words, word_of[kept], new_row[self.passages[kept]], self.counts[kept]

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        names = sorted(self.words, key=self.words.__getitem__)
        (folder / "words.json").write_text(json.dumps(names, ensure_ascii=False), "utf-8")
        for name in ("starts", "passages", "counts", "lengths"):
            np.save(folder / f"{name}.npy", getattr(self, name), allow_pickle=False)

    @classmethod
    def load(cls, folder: str | Path) -> KeywordSegment:
        folder = Path(folder)
        names = json.loads((folder / "words.json").read_text("utf-8"))
        arrays = {
            name: np.load(folder / f"{name}.npy", allow_pickle=False)
            for name in ("starts", "passages", "counts", "lengths")
        }
        segment = cls(words={n: i for i, n in enumerate(names)}, **arrays)
        if len(segment.starts) != len(names) + 1 or len(segment.passages) != len(segment.counts):
            raise ValueError(f"the keyword postings in {folder} do not fit together")
        return segment


def merge(segments: Sequence[KeywordSegment], alive: Sequence[np.ndarray]) -> KeywordSegment:
    """One segment of the ``alive`` passages of ``segments``, in order (segment 0's first).

    Example:
        >>> a, b = KeywordSegment.build([["x"], ["y"]]), KeywordSegment.build([["x", "z"]])
        >>> merged = merge([a, b], [np.array([True, False]), np.array([True])])
        >>> len(merged), merged.postings("x")[0].tolist(), "y" in merged.words
        (2, [0, 1], False)
    """
    vocabulary: dict[str, int] = {}
    word_ids, rows, counts, lengths = [], [], [], []
    offset = 0
    for segment, keep in zip(segments, alive, strict=True):
        words, word_of, new_rows, kept_counts = segment.keep(np.asarray(keep, dtype=bool))
        names = sorted(words, key=words.__getitem__)
        remap = np.asarray([vocabulary.setdefault(n, len(vocabulary)) for n in names], np.int64)
        word_ids.append(remap[word_of] if len(names) else word_of)
        rows.append(new_rows + offset)
        counts.append(kept_counts)
        lengths.append(segment.lengths[np.asarray(keep, dtype=bool)])
        offset += int(np.count_nonzero(keep))
    merged = KeywordSegment.from_pairs(
        vocabulary,
        np.concatenate(word_ids) if word_ids else np.zeros(0, np.int64),
        np.concatenate(rows) if rows else np.zeros(0, np.int64),
        np.concatenate(lengths) if lengths else np.zeros(0, np.int32),
        np.concatenate(counts) if counts else np.zeros(0, np.int64),
    )
    return merged  # (words only dead passages held are gone)


def search(
    segments: Sequence[KeywordSegment],
    live: Sequence[np.ndarray],
    words: Sequence[str],
    k: int,
    allowed: Sequence[np.ndarray] | None = None,
) -> list[tuple[int, int, float]]:
    """``(segment, passage row, score)`` of the ``k`` best passages for the query's ``words``,
    best first, among the ``live`` ones (a bool mask per segment) or, when given, the
    ``allowed`` ones (a filter's; the statistics still count every live passage, as a filter
    inside one index does); passages scoring 0 (no query word) are left out."""
    return Statistics.of(segments, live).search(segments, allowed or live, words, k)


@dataclass
class Statistics:
    """Collection statistics over the live passages: their number and average length, and
    (per query) each word's document frequency."""

    live: list[np.ndarray]
    num_passages: int
    average_length: float

    @classmethod
    def of(cls, segments: Sequence[KeywordSegment], live: Sequence[np.ndarray]) -> Statistics:
        live = [np.asarray(m, dtype=bool) for m in live]
        total = sum(int(np.count_nonzero(m)) for m in live)
        length = sum(int(s.lengths[m].sum()) for s, m in zip(segments, live, strict=True))
        return cls(live, total, length / total if total else 0.0)

    def search(
        self,
        segments: Sequence[KeywordSegment],
        allowed: Sequence[np.ndarray],
        words: Sequence[str],
        k: int,
        k1: float = K1,
        b: float = B,
    ) -> list[tuple[int, int, float]]:
        """As the module's ``search``, with these statistics and ``allowed`` (per segment, a
        subset of the live passages) choosing which passages may be returned."""
        if k <= 0 or not self.num_passages or not words:
            return []
        postings = [[s.postings(w) for s in segments] for w in words]  # [word][segment]
        scores = [np.zeros(len(s), dtype=np.float64) for s in segments]  # (D_s,) each
        for per_segment in postings:
            df = sum(
                int(np.count_nonzero(live[rows]))
                for (rows, _), live in zip(per_segment, self.live, strict=True)
            )
            if not df:
                continue
            idf = np.log(1 + (self.num_passages - df + 0.5) / (df + 0.5))
            for (rows, counts), segment, score in zip(per_segment, segments, scores, strict=True):
                if not len(rows):
                    continue
                tf = counts.astype(np.float64)
                norm = k1 * ((1 - b) + b * segment.lengths[rows] / self.average_length)
                score[rows] += idf * tf / (tf + norm)  # a word's rows are distinct
        found: list[tuple[int, int, float]] = []
        for index, (score, mask) in enumerate(zip(scores, allowed, strict=True)):
            score = np.where(np.asarray(mask, dtype=bool), score, 0.0)
            rows = np.flatnonzero(score > 0)
            if len(rows) > k:
                rows = rows[np.argpartition(-score[rows], k - 1)[:k]]
            found.extend((index, int(r), float(score[r])) for r in rows)
        found.sort(key=lambda hit: (-hit[2], hit[0], hit[1]))
        return found[:k]


class BM25Index:
    """BM25 over a list of texts held in memory (one segment, every passage alive): what the
    benchmarks and the embedder's hard-negative mining rank with.

    Example:
        >>> bm25 = BM25Index.build(["Adam keeps two moving averages", "Photosynthesis makes sugar"])
        >>> [(i, round(score, 2)) for i, score in bm25.search("what does adam keep", k=2)]
        [(0, 0.41)]
    """

    def __init__(self, segment: KeywordSegment, stemmer: str | None, k1: float) -> None:
        self.segment, self.stemmer, self.k1 = segment, stemmer, k1
        self.alive = [np.ones(len(segment), dtype=bool)]
        self.stats = Statistics.of([segment], self.alive)

    @classmethod
    def build(cls, texts: Sequence[str], stemmer: str | None = STEMMER, k1: float = K1):
        return cls(KeywordSegment.build(tokenize(list(texts), stemmer)), stemmer, k1)

    def search(
        self, query: str, k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """Top ``k`` texts with a positive score, best first; ``allowed`` (indexes) filters."""
        mask = self.alive[0]
        if allowed is not None:
            mask = np.zeros(len(self.segment), dtype=bool)
            mask[np.asarray(allowed, dtype=np.int64)] = True
        words = tokenize([query], self.stemmer)[0]
        hits = self.stats.search([self.segment], [mask], words, k, k1=self.k1)
        return [(row, score) for _, row, score in hits]
