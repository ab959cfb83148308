"""Batch samplers for the bi-encoder: in-batch negatives drawn from the same article.

With ``MultipleNegativesRankingLoss`` every other paragraph in a batch is a negative. Random
batches from SQuAD's 442 train articles make those negatives easy (a question about Beyoncé
against paragraphs about Oxygen); the notes a user searches, like SQuAD dev's 2,067 paragraphs,
mostly confuse paragraphs *on the same subject*. ``ArticleBatchSampler`` fills batches article by
article (topic-aware sampling, as TAS-B), so most in-batch negatives are paragraphs of the
question's own article, at no extra encoding cost, while still keeping every text unique within a
batch (as sentence-transformers' ``NO_DUPLICATES``). Optionally (``apart``) it also keeps a
question out of any batch holding another paragraph that contains its answer: with batches made of
one article, such paragraphs (30% of SQuAD train questions have one) are often not negatives at all.
(Measured: the batches then mix more articles and retrieval ends slightly worse; see the model card.)

Example (8 question-paragraph rows from two articles, batches of 4):
    >>> from datasets import Dataset
    >>> dataset = Dataset.from_dict({"anchor": [f"q{i}" for i in range(8)],
    ...                              "positive": [f"p{i}" for i in range(8)]})
    >>> titles = ["Oxygen"] * 4 + ["Beyonce"] * 4
    >>> sampler = ArticleBatchSampler(dataset, batch_size=4, drop_last=True, groups=titles)
    >>> [sorted({titles[row] for row in batch}) for batch in sampler]   # one article per batch
    [['Oxygen'], ['Beyonce']]
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

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
    ``apart[i]`` (optional) names texts row ``i`` must not share a batch with (the paragraphs that
    also contain its answer): a row that would meet one, either way round, waits too.
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
        apart: Sequence[frozenset[str]] | None = None,
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
        if apart is not None and len(apart) != len(dataset):
            raise ValueError(f"{len(apart)} apart sets for a dataset of {len(dataset)} rows")
        text_columns = [c for c in dataset.column_names if c not in set(valid_label_columns or [])]
        columns = [dataset[c] for c in text_columns]
        self.row_texts = [frozenset(values) for values in zip(*columns, strict=True)]
        self.row_apart = list(apart) if apart is not None else [frozenset()] * len(dataset)
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
            batch, seen, barred, skipped = [], set(), set(), []
            while pending and len(batch) < self.batch_size:
                row = pending.popleft()
                texts, apart = self.row_texts[row], self.row_apart[row]
                if texts & seen or texts & barred or apart & seen:
                    skipped.append(row)  # it would repeat or meet a barred text: next batch
                    continue
                batch.append(row)
                seen |= texts
                barred |= apart
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


def check_grouping(grouping: str, separate_answer_paragraphs: bool = False) -> None:
    """Refuse an unknown ``batch_grouping``, or answer paragraphs kept apart without article
    batches, before any data is read."""
    if grouping not in GROUPINGS:
        raise ValueError(f"batch_grouping must be one of {', '.join(GROUPINGS)}, not {grouping!r}")
    if separate_answer_paragraphs and grouping != "article":
        raise ValueError(
            "separate_answer_paragraphs works on article-grouped batches: set batch_grouping "
            "to 'article' or separate_answer_paragraphs to false"
        )


@dataclass(frozen=True)
class GroupedRows:
    """One dataset's rows for article batches: its ``anchors`` column (which names the dataset
    to the sampler factory), each row's article (``groups``) and optional ``apart`` texts."""

    anchors: Sequence[str]
    groups: Sequence[str]
    apart: Sequence[frozenset[str]] | None = None

    def __post_init__(self) -> None:
        if len(self.groups) != len(self.anchors):
            raise ValueError(f"{len(self.groups)} groups for {len(self.anchors)} rows")
        if self.apart is not None and len(self.apart) != len(self.groups):
            raise ValueError(f"{len(self.apart)} apart sets for {len(self.groups)} rows")


def batch_sampler_for(grouping: str, grouped: Sequence[GroupedRows] = ()) -> Callable | str:
    """The trainer's ``batch_sampler`` for ``grouping`` (``none`` | ``article``).

    ``article`` gives a factory that samples each dataset listed in ``grouped`` (SQuAD pairs,
    found by their ``anchor`` column) by article, keeping each row away from its ``apart`` texts
    when given, and any other dataset of a multi-dataset run (STS pairs) without duplicates.

    Example:
        >>> batch_sampler_for("none")
        'no_duplicates'
    """
    check_grouping(grouping, any(rows.apart is not None for rows in grouped))
    if grouping == "none":
        return "no_duplicates"
    if grouping == "article" and not grouped:
        raise ValueError("batch_grouping 'article' needs each training row's article")

    def sampler(dataset, **kwargs):
        if "anchor" in dataset.column_names:
            anchors = dataset["anchor"]
            for rows in grouped:
                if len(rows.anchors) == len(dataset) and list(rows.anchors) == list(anchors):
                    return ArticleBatchSampler(
                        dataset, groups=rows.groups, apart=rows.apart, **kwargs
                    )
        return NoDuplicatesBatchSampler(dataset, **kwargs)

    return sampler


__all__ = ["ArticleBatchSampler", "GroupedRows", "batch_sampler_for", "check_grouping", "GROUPINGS"]
