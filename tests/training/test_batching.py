import pytest
from datasets import Dataset

from training.batching import ArticleBatchSampler, GroupedRows, batch_sampler_for


def squad_like(articles: int = 4, paragraphs: int = 10, questions: int = 3):
    """Rows (question, paragraph) with each paragraph asked `questions` times, and their articles."""
    rows, groups = [], []
    for a in range(articles):
        for p in range(paragraphs):
            for q in range(questions):
                rows.append(
                    (f"question {q} on paragraph {p} of article {a}?", f"A{a} paragraph {p}.")
                )
                groups.append(f"A{a}")
    data = Dataset.from_dict({"anchor": [r[0] for r in rows], "positive": [r[1] for r in rows]})
    return data, groups


def test_batches_hold_unique_texts_and_mostly_one_article():
    data, groups = squad_like()
    sampler = ArticleBatchSampler(data, batch_size=8, drop_last=True, seed=1, groups=groups)
    batches = list(sampler)
    assert len(batches) == len(sampler) and all(len(b) == 8 for b in batches)
    used = [row for batch in batches for row in batch]
    assert len(used) == len(set(used))  # no row twice in an epoch
    assert len(used) >= len(data) - 2 * 10 * 3  # at most the last articles' leftovers are dropped
    for batch in batches:
        paragraphs = [data[row]["positive"] for row in batch]
        assert len(set(paragraphs)) == len(paragraphs)  # no paragraph is its own negative
        # filled article by article: a batch spans at most two of the four articles
        assert len({groups[row] for row in batch}) <= 2


def test_article_order_is_seeded_and_changes_with_the_epoch():
    data, groups = squad_like()

    def batches(seed, epoch=0):
        sampler = ArticleBatchSampler(data, batch_size=8, drop_last=True, seed=seed, groups=groups)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert batches(3) == batches(3)
    assert batches(3) != batches(3, epoch=1)


def test_without_drop_last_every_row_is_used_once():
    data, groups = squad_like(articles=2, paragraphs=3, questions=4)
    batches = list(ArticleBatchSampler(data, batch_size=4, drop_last=False, groups=groups))
    used = sorted(row for batch in batches for row in batch)
    assert used == list(range(len(data)))
    for batch in batches:  # even the short batches made of the repeated paragraphs' questions
        assert len({data[row]["positive"] for row in batch}) == len(batch)


def test_rows_are_kept_apart_from_paragraphs_that_hold_their_answer():
    data, groups = squad_like(articles=2, paragraphs=6, questions=3)
    # each question's answer is also in the next paragraph of its article
    apart = [
        frozenset({data[row]["positive"].replace(f"paragraph {p}.", f"paragraph {(p + 1) % 6}.")})
        for row in range(len(data))
        for p in [int(data[row]["positive"].split()[-1].rstrip("."))]
    ]
    assert apart[0] == frozenset({"A0 paragraph 1."}) and data[0]["positive"] == "A0 paragraph 0."
    for drop_last in (True, False):
        sampler = ArticleBatchSampler(
            data, batch_size=4, drop_last=drop_last, seed=2, groups=groups, apart=apart
        )
        batches = list(sampler)
        for batch in batches:
            in_batch = {data[row]["positive"] for row in batch}
            assert len(in_batch) == len(batch)
            assert not any(apart[row] & in_batch for row in batch)  # no known false negative
    used = sorted(row for batch in batches for row in batch)
    assert used == list(range(len(data)))  # without drop_last nothing is lost to the rule
    with pytest.raises(ValueError, match="2 apart sets for a dataset of 36 rows"):
        ArticleBatchSampler(data, 4, True, groups=groups, apart=apart[:2])


def test_sampler_choice_by_grouping():
    assert batch_sampler_for("none") == "no_duplicates"
    with pytest.raises(ValueError, match="batch_grouping must be one of none, article"):
        batch_sampler_for("topic")
    data, groups = squad_like()
    factory = batch_sampler_for("article", [GroupedRows(data["anchor"], groups)])
    assert isinstance(factory(data, batch_size=8, drop_last=True), ArticleBatchSampler)
    sts = Dataset.from_dict({"sentence1": ["a"] * 4, "sentence2": ["b"] * 4, "score": [1.0] * 4})
    assert not isinstance(factory(sts, batch_size=2, drop_last=True), ArticleBatchSampler)
    with pytest.raises(ValueError, match="needs each training row's article"):
        batch_sampler_for("article")
    apart = [frozenset()] * len(data)
    assert factory(data, batch_size=8, drop_last=True).row_apart == apart
    with pytest.raises(ValueError, match="separate_answer_paragraphs works on article-grouped"):
        batch_sampler_for("none", [GroupedRows(data["anchor"], groups, apart)])
    with pytest.raises(ValueError, match="2 apart sets for 120 rows"):
        GroupedRows(data["anchor"], groups, apart[:2])


def test_each_grouped_dataset_gets_its_own_articles():
    data, groups = squad_like()
    cloze = Dataset.from_dict(
        {"anchor": [f"sentence {i}" for i in range(12)], "positive": [f"p{i}" for i in range(12)]}
    )
    cloze_groups = [f"doc{i // 4}" for i in range(12)]
    factory = batch_sampler_for(
        "article",
        [GroupedRows(data["anchor"], groups), GroupedRows(cloze["anchor"], cloze_groups)],
    )
    squad_sampler = factory(data, batch_size=8, drop_last=True)
    cloze_sampler = factory(cloze, batch_size=4, drop_last=True)
    assert set(squad_sampler.rows_by_group) == set(groups)
    assert set(cloze_sampler.rows_by_group) == set(cloze_groups)
    for batch in cloze_sampler:  # 4 rows per document and batches of 4: one document each
        assert len({cloze_groups[row] for row in batch}) == 1
    stranger = Dataset.from_dict({"anchor": ["x"] * 12, "positive": [f"q{i}" for i in range(12)]})
    assert not isinstance(factory(stranger, batch_size=4, drop_last=True), ArticleBatchSampler)
