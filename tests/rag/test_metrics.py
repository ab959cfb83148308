import pytest

from rag.metrics import (
    exact_match_score,
    f1_score,
    normalize_answer,
    retrieval_scores,
    squad_v1_scores,
    squad_v2_scores,
)


def _dataset(qas):
    return [{"title": "t", "paragraphs": [{"context": "c", "qas": qas}]}]


def test_normalisation_follows_the_official_script():
    assert normalize_answer("The Cat!") == "cat"
    assert normalize_answer("  an apple,  a pear ") == "apple pear"
    assert normalize_answer("theatre") == "theatre"  # articles only as whole words


def test_hand_computed_em_and_f1():
    assert exact_match_score("Denver Broncos", "the denver broncos.") == 1.0
    # pred tokens: [denver, broncos, team]; gold: [denver, broncos] -> P=2/3, R=1, F1=0.8
    assert f1_score("Denver Broncos team", "Denver Broncos") == pytest.approx(0.8)
    assert f1_score("", "Denver") == 0.0
    scores = squad_v1_scores(
        _dataset(
            [
                {"id": "1", "answers": [{"text": "Denver Broncos"}, {"text": "Broncos"}]},
                {"id": "2", "answers": [{"text": "1879"}]},
                {"id": "3", "answers": [{"text": "Paris"}]},  # no prediction: counts as 0
            ]
        ),
        {"1": "Broncos team", "2": "1879"},
    )
    # q1: EM 0, F1 = max(F1 vs "denver broncos" = 0.5, vs "broncos" = 2/3) = 2/3
    assert scores["exact_match"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(100 * (2 / 3 + 1) / 3)


def test_v2_no_answer_rules():
    data = _dataset(
        [
            {"id": "a", "answers": [{"text": "blue"}]},
            {"id": "b", "answers": [], "is_impossible": True},
            {"id": "c", "answers": [], "is_impossible": True},
        ]
    )
    scores = squad_v2_scores(data, {"a": "blue", "b": "", "c": "red"})
    assert scores["HasAns_exact"] == 100.0 and scores["HasAns_total"] == 1
    assert scores["NoAns_exact"] == 50.0 and scores["NoAns_f1"] == 50.0
    assert scores["exact"] == pytest.approx(200 / 3)


def test_retrieval_scores():
    rankings = [[5, 1, 2], [1, 2, 3], [7, 8, 9]]
    scores = retrieval_scores(rankings, [1, 1, 4], ks=(1, 2))
    assert scores == {
        "recall@1": pytest.approx(1 / 3),
        "recall@2": pytest.approx(2 / 3),
        "mrr@10": pytest.approx((0.5 + 1.0) / 3),
    }
    with pytest.raises(ValueError):
        retrieval_scores([[1]], [1, 2])
