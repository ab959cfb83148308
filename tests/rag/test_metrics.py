import pytest

from rag.metrics import (
    aurc,
    exact_match_score,
    expected_calibration_error,
    f1_score,
    normalize_answer,
    retrieval_scores,
    risk_coverage,
    squad_question_scores,
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


def test_question_scores_are_what_the_official_scores_average():
    qas = [
        {"id": "a", "answers": [{"text": "Denver Broncos"}, {"text": "Broncos"}]},
        {"id": "b", "answers": [], "is_impossible": True},
        {"id": "c", "answers": [], "is_impossible": True},
        {"id": "d", "answers": [{"text": "1879"}]},
    ]
    predictions = {"a": "Broncos team", "b": "", "c": "red", "d": ""}
    # a: EM 0, F1 max(1/2, 2/3); b: abstained on an unanswerable one (1, 1); c: answered it (0, 0);
    # d: abstained on an answerable one (0, 0)
    per = {
        q["id"]: squad_question_scores(predictions[q["id"]], [a["text"] for a in q["answers"]])
        for q in qas
    }
    assert per["a"] == (0.0, pytest.approx(2 / 3))
    assert per == {"a": per["a"], "b": (1.0, 1.0), "c": (0.0, 0.0), "d": (0.0, 0.0)}
    official = squad_v2_scores(_dataset(qas), predictions)
    assert official["exact"] == pytest.approx(100 * 1 / 4)
    assert official["f1"] == pytest.approx(100 * (2 / 3 + 1) / 4)
    answerable = [q for q in qas if q["answers"]]
    v1 = squad_v1_scores(_dataset(answerable), predictions)
    assert v1["f1"] == pytest.approx(100 * (per["a"][1] + per["d"][1]) / 2)
    assert squad_question_scores(" ", ["."]) == (1.0, 1.0)  # golds that normalise to "": no answer
    assert squad_question_scores("", [".", "x"]) == (0.0, 0.0)  # "." is dropped, "x" remains


def test_risk_coverage_by_hand():
    # by confidence: 0.9 (loss 0), 0.8 (0.5), 0.5 (0), 0.1 (1)
    coverage, risk = risk_coverage([0.1, 0.8, 0.5, 0.9], [1.0, 0.5, 0.0, 0.0])
    assert coverage == [0.25, 0.5, 0.75, 1.0]
    assert risk == pytest.approx([0.0, 0.25, 0.5 / 3, 1.5 / 4])
    assert aurc([0.1, 0.8, 0.5, 0.9], [1.0, 0.5, 0.0, 0.0]) == pytest.approx(
        (0.0 + 0.25 + 0.5 / 3 + 1.5 / 4) / 4
    )


def test_risk_coverage_ties_count_as_their_mean_whatever_the_order():
    # the two 0.7s cannot be separated: each counts as loss 0.5
    for confidences, losses in (([0.7, 0.7, 0.3], [0.0, 1.0, 1.0]), ([0.7, 0.3, 0.7], [1, 1, 0])):
        _, risk = risk_coverage(confidences, losses)
        assert risk == pytest.approx([0.5, 0.5, 2 / 3])
        assert aurc(confidences, losses) == pytest.approx((0.5 + 0.5 + 2 / 3) / 3)


def test_aurc_rewards_putting_the_wrong_answers_last():
    losses = [0.0, 0.0, 1.0, 1.0]
    best = aurc([0.9, 0.8, 0.2, 0.1], losses)  # risks 0, 0, 1/3, 1/2
    worst = aurc([0.1, 0.2, 0.8, 0.9], losses)  # risks 1, 1, 2/3, 1/2
    assert best == pytest.approx((1 / 3 + 1 / 2) / 4)
    assert worst == pytest.approx((1 + 1 + 2 / 3 + 1 / 2) / 4)
    assert aurc([0.5] * 4, losses) == pytest.approx(0.5)  # no order: the overall risk
    # squashing the confidences monotonically changes nothing
    assert aurc([9.0, 8.0, -2.0, -3.0], losses) == pytest.approx(best)


def test_ece_by_hand():
    # bin 0: conf 0.05 vs acc 0; bin 1: conf (0.15 + 0.15) / 2 vs acc 1/2; bin 9: 0.96 vs 1
    ece = expected_calibration_error([0.05, 0.15, 0.15, 1.0, 0.92], [0, 1, 0, 1, 1])
    assert ece == pytest.approx((0.05 + abs(1 - 0.3) + abs(2 - 1.92)) / 5)
    assert expected_calibration_error([0.75] * 4, [1, 1, 1, 0]) == pytest.approx(0.0)
    assert expected_calibration_error([0.9, 0.1], [1, 0], bins=1) == pytest.approx(0.0)


def test_ece_bin_edges():
    # 0.1 opens bin 1 (with 0.19): |1 - 0.29| / 2, not 0.9 / 2 + 0.19 / 2
    assert expected_calibration_error([0.1, 0.19], [1, 0]) == pytest.approx(0.71 / 2)
    # 1.0 closes the last bin (with 0.95): |1 - 1.95| / 2, not 1 / 2 + 0.05 / 2
    assert expected_calibration_error([1.0, 0.95], [0, 1]) == pytest.approx(0.95 / 2)


@pytest.mark.parametrize(
    "call",
    [
        lambda: expected_calibration_error([1.2], [1]),
        lambda: expected_calibration_error([0.5], [1, 0]),
        lambda: expected_calibration_error([], []),
        lambda: expected_calibration_error([0.5], [1], bins=0),
        lambda: risk_coverage([0.5, float("nan")], [0.0, 1.0]),
        lambda: aurc([0.5], [0.0, 1.0]),
    ],
)
def test_selective_metrics_refuse_bad_input(call):
    with pytest.raises(ValueError):
        call()
