"""Batch samplers for the bi-encoder: in-batch negatives drawn from the same article.

With ``MultipleNegativesRankingLoss`` every other paragraph in a batch is a negative. Random
batches from SQuAD's 442 train articles make those negatives easy (a question about Beyoncé
against paragraphs about Oxygen); the notes a user searches, like SQuAD dev's 2,067 paragraphs,
mostly confuse paragraphs *on the same subject*. ``ArticleBatchSampler`` fills batches article by
article (topic-aware sampling, as TAS-B), so most in-batch negatives are paragraphs of the
question's own article, at no extra encoding cost, while still keeping every text unique within a
batch (as sentence-transformers' ``NO_DUPLICATES``).

Example:
    >>> sampler = ArticleBatchSampler(dataset, batch_size=64, drop_last=True, groups=titles)
    >>> batch = next(iter(sampler))  # 64 row indices, mostly from one or two articles
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterator, Sequence

try:  # sentence-transformers >= 6
    from sentence_transformers.base.sampler import DefaultBatchSampler, NoDuplicatesBatchSampler
except ImportError:  # sentence-transformers 3 - 5
    from sentence_transformers.sampler import DefaultBatchSampler, NoDuplicatesBatchSampler

GROUPINGS = ("none", "article")


class ArticleBatchSampler(DefaultBatchSampler):
    """Batches of unique texts filled group by group (``groups[i]`` names row ``i``'s article).

    Each epoch (seeded by ``seed + epoch``) shuffles the articles and the rows within each article,
    then fills a batch from that stream; a row whose text is already in the batch waits for the
    next one, so a batch holds one article's distinct paragraphs and then the next article's.
    The batches are shuffled at the end so consecutive steps do not walk the articles in order.
    """

    def __init__(
        self,
        dataset,
        batch_size: int,
        drop_last: bool,
        valid_label_columns: list[str] | None = None,
        generator=None,
        seed: int = 0,
        *,
        groups: Sequence[str],
    ) -> None:
        super().__init__(
            dataset,
            batch_size=batch_size,
            drop_last=drop_last,
            valid_label_columns=valid_label_columns,
            generator=generator,
            seed=seed,
        )
        if len(groups) != len(dataset):
            raise ValueError(f"{len(groups)} groups for a dataset of {len(dataset)} rows")
        text_columns = [c for c in dataset.column_names if c not in set(valid_label_columns or [])]
        columns = [dataset[c] for c in text_columns]
        self.row_texts = [frozenset(values) for values in zip(*columns, strict=True)]
        self.rows_by_group: dict[str, list[int]] = {}
        for row, group in enumerate(groups):
            self.rows_by_group.setdefault(group, []).append(row)
        self._cached: tuple[int, list[list[int]]] | None = None

    def _batches(self, epoch: int) -> list[list[int]]:
        if self._cached is not None and self._cached[0] == epoch:
            return self._cached[1]
        rng = random.Random(self.seed + epoch)
        order = list(self.rows_by_group)
        rng.shuffle(order)
        stream: list[int] = []
        for group in order:
            rows = list(self.rows_by_group[group])
            rng.shuffle(rows)
            stream.extend(rows)
        pending = deque(stream)  # rows not yet in a batch, in stream order
        batches = []
        while pending:
            batch, seen, skipped = [], set(), []
            while pending and len(batch) < self.batch_size:
                row = pending.popleft()
                if self.row_texts[row] & seen:
                    skipped.append(row)  # its text is in this batch already: next batch
                    continue
                batch.append(row)
                seen |= self.row_texts[row]
            pending.extendleft(reversed(skipped))
            if len(batch) < self.batch_size and self.drop_last:
                break  # the rest repeat texts of this last, short batch
            batches.append(batch)
        rng.shuffle(batches)
        self._cached = (epoch, batches)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        yield from self._batches(getattr(self, "epoch", 0))

    def __len__(self) -> int:
        return len(self._batches(getattr(self, "epoch", 0)))


def check_grouping(grouping: str) -> None:
    """Refuse an unknown ``batch_grouping`` before any data is read."""
    if grouping not in GROUPINGS:
        raise ValueError(f"batch_grouping must be one of {', '.join(GROUPINGS)}, not {grouping!r}")


def batch_sampler_for(grouping: str, groups: Sequence[str] | None = None) -> Callable | str:
    """The trainer's ``batch_sampler`` for ``grouping`` (``none`` | ``article``).

    ``article`` gives a factory that samples the SQuAD dataset (the one with ``len(groups)`` rows
    and an ``anchor`` column) by article, and any other dataset of a multi-dataset run (STS pairs)
    without duplicates.

    Example:
        >>> batch_sampler_for("none")
        'no_duplicates'
    """
    check_grouping(grouping)
    if grouping == "none":
        return "no_duplicates"
    if groups is None:
        raise ValueError("batch_grouping 'article' needs each training row's article")

    def sampler(dataset, **kwargs):
        if "anchor" in dataset.column_names and len(dataset) == len(groups):
            return ArticleBatchSampler(dataset, groups=groups, **kwargs)
        return NoDuplicatesBatchSampler(dataset, **kwargs)

    return sampler


__all__ = ["ArticleBatchSampler", "batch_sampler_for", "check_grouping", "GROUPINGS"]
