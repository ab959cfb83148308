"""Evaluation metrics in one place: SQuAD v1.1 / v2.0 EM and F1, retrieval Recall@k and MRR@k,
and selective QA (risk-coverage curve, AURC, expected calibration error).

The SQuAD functions follow the official evaluation scripts (``evaluate-v1.1.py`` and
``evaluate-v2.0.py``): answers are normalised by lower-casing and removing punctuation, the
articles a/an/the and extra whitespace; each prediction takes the max over the gold answers.

Example:
    >>> normalize_answer("The  Eiffel-Tower!")
    'eiffeltower'
    >>> round(f1_score("the big cat", "a big dog"), 3)
    0.5
    >>> retrieval_scores([[3, 1, 2]], [1], ks=(1, 5))
    {'recall@1': 0.0, 'recall@5': 1.0, 'mrr@10': 0.5}
    >>> round(aurc([0.9, 0.6, 0.2], [0.0, 1.0, 1.0]), 4)
    0.3889
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation and articles, collapse whitespace (official SQuAD rule)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def f1_score(prediction: str, ground_truth: str) -> float:
    """Token-overlap F1 of normalised answers (v1.1 rule: 0 when either side is empty)."""
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(ground_truth).split()
    common = Counter(pred_tokens) & Counter(gold_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def exact_match_score(prediction: str, ground_truth: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(ground_truth))


def _f1_v2(prediction: str, gold: str) -> float:
    """v2.0 rule: if either answer is empty (no-answer), F1 is 1 when both are empty, else 0."""
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    return f1_score(prediction, gold)


def squad_question_scores(prediction: str, golds: Sequence[str]) -> tuple[float, float]:
    """(EM, F1) of one prediction, each the max over ``golds``, by the official v2.0 rules: no
    gold (or only golds that normalise to "") means unanswerable, where only an empty prediction
    (an abstention) scores. For an answerable question this is the v1.1 rule (an abstention
    scores 0), so ``squad_v1_scores`` and ``squad_v2_scores`` are means of these.

    Example:
        >>> squad_question_scores("the big cat", ["big dog", "a big cat"])
        (1.0, 1.0)
        >>> squad_question_scores("", []), squad_question_scores("red", [])
        ((1.0, 1.0), (0.0, 0.0))
    """
    golds = [g for g in golds if normalize_answer(g)] or [""]
    em = max(float(normalize_answer(g) == normalize_answer(prediction)) for g in golds)
    return em, max(_f1_v2(prediction, g) for g in golds)


def squad_v1_scores(dataset: Iterable[dict], predictions: dict[str, str]) -> dict[str, float]:
    """Official v1.1 scores; ``dataset`` is the JSON's ``data`` list. Missing ids score 0."""
    total = em = f1 = 0.0
    for article in dataset:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                total += 1
                if qa["id"] not in predictions:
                    continue
                golds = [a["text"] for a in qa["answers"]]
                pred = predictions[qa["id"]]
                em += max(exact_match_score(pred, g) for g in golds)
                f1 += max(f1_score(pred, g) for g in golds)
    return {"exact_match": 100.0 * em / max(total, 1), "f1": 100.0 * f1 / max(total, 1)}


def squad_v2_scores(dataset: Iterable[dict], predictions: dict[str, str]) -> dict[str, float]:
    """Official v2.0 scores; an empty prediction string means "no answer"."""
    exact: dict[str, float] = {}
    f1: dict[str, float] = {}
    has_answer: dict[str, bool] = {}
    for article in dataset:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                qid = qa["id"]
                golds = [a["text"] for a in qa["answers"] if normalize_answer(a["text"])] or [""]
                has_answer[qid] = golds != [""]
                if qid not in predictions:
                    continue
                pred = predictions[qid]
                exact[qid] = max(
                    float(normalize_answer(g) == normalize_answer(pred)) for g in golds
                )
                f1[qid] = max(_f1_v2(pred, g) for g in golds)

    def mean(ids: list[str], table: dict[str, float]) -> float:
        return 100.0 * sum(table.get(i, 0.0) for i in ids) / max(len(ids), 1)

    all_ids = list(has_answer)
    has_ids = [i for i in all_ids if has_answer[i]]
    no_ids = [i for i in all_ids if not has_answer[i]]
    scores = {"exact": mean(all_ids, exact), "f1": mean(all_ids, f1), "total": len(all_ids)}
    if has_ids:
        scores.update(
            HasAns_exact=mean(has_ids, exact),
            HasAns_f1=mean(has_ids, f1),
            HasAns_total=len(has_ids),
        )
    if no_ids:
        scores.update(
            NoAns_exact=mean(no_ids, exact), NoAns_f1=mean(no_ids, f1), NoAns_total=len(no_ids)
        )
    return scores


def is_squad_v2(dataset: Iterable[dict]) -> bool:
    """True when any question carries ``is_impossible`` (the v2.0 schema)."""
    return any(
        "is_impossible" in qa
        for article in dataset
        for p in article["paragraphs"]
        for qa in p["qas"]
    )


def retrieval_scores(
    rankings: Sequence[Sequence[int]],
    gold: Sequence[int],
    ks: Sequence[int] = (1, 5, 20),
    mrr_at: int = 10,
) -> dict[str, float]:
    """Recall@k (gold id in the top k) and MRR@``mrr_at``, as fractions, over all queries."""
    if len(rankings) != len(gold):
        raise ValueError(f"{len(rankings)} rankings for {len(gold)} gold ids")
    n = max(len(gold), 1)
    scores = {}
    for k in ks:
        scores[f"recall@{k}"] = (
            sum(g in list(r[:k]) for r, g in zip(rankings, gold, strict=True)) / n
        )
    reciprocal = 0.0
    for ranking, g in zip(rankings, gold, strict=True):
        top = list(ranking[:mrr_at])
        if g in top:
            reciprocal += 1.0 / (top.index(g) + 1)
    scores[f"mrr@{mrr_at}"] = reciprocal / n
    return scores


def _check_pairs(confidences: Sequence[float], other: Sequence[float], name: str) -> None:
    """One ``name`` per confidence, at least one of each, and no NaN confidence."""
    if len(confidences) != len(other):
        raise ValueError(f"{len(confidences)} confidences for {len(other)} {name}")
    if not confidences:
        raise ValueError(f"no predictions to score: pass one confidence and one of {name} each")
    if any(c != c for c in confidences):
        raise ValueError("a confidence is NaN; give every prediction a number")


def risk_coverage(
    confidences: Sequence[float], losses: Sequence[float]
) -> tuple[list[float], list[float]]:
    """The risk-coverage curve of answering only the most confident predictions.

    Point ``i`` (1..n) keeps the ``i`` most confident predictions: coverage ``i / n``, risk the
    mean loss (e.g. ``1 - F1``) of those kept. Predictions with equal confidence cannot be told
    apart by any threshold, so ties are broken in expectation: each tied group's losses count as
    the group's mean (the expected risk of a random order), and the curve does not depend on the
    order of the input.

    Example:
        >>> risk_coverage([0.2, 0.9, 0.6], [1.0, 0.0, 1.0])
        ([0.3333333333333333, 0.6666666666666666, 1.0], [0.0, 0.5, 0.6666666666666666])
        >>> risk_coverage([0.5, 0.5], [1.0, 0.0])  # a tie: each counts as 0.5
        ([0.5, 1.0], [0.5, 0.5])
    """
    _check_pairs(confidences, losses, "losses")
    order = sorted(range(len(confidences)), key=lambda i: -confidences[i])
    ranked: list[float] = []  # losses in confidence order, ties replaced by their group's mean
    group: list[float] = []
    for pos, i in enumerate(order):
        group.append(float(losses[i]))
        last = pos + 1 == len(order) or confidences[order[pos + 1]] != confidences[i]
        if last:
            ranked.extend([sum(group) / len(group)] * len(group))
            group = []
    n = len(ranked)
    coverage, risk, total = [], [], 0.0
    for kept, loss in enumerate(ranked, start=1):
        total += loss
        coverage.append(kept / n)
        risk.append(total / kept)
    return coverage, risk


def aurc(confidences: Sequence[float], losses: Sequence[float]) -> float:
    """Area under the risk-coverage curve: the selective risk averaged over the coverages
    1/n, 2/n, ..., 1 (lower is better). Only the order of the confidences matters; a perfect
    order (all wrong ones last) gives the lowest value the losses allow.

    Example:
        >>> round(aurc([0.9, 0.6, 0.2], [0.0, 1.0, 1.0]), 4)  # (0 + 1/2 + 2/3) / 3
        0.3889
        >>> round(aurc([0.2, 0.6, 0.9], [0.0, 1.0, 1.0]), 4)  # worst order: (1 + 1 + 2/3) / 3
        0.8889
    """
    return sum(risk_coverage(confidences, losses)[1]) / len(confidences)


def expected_calibration_error(
    confidences: Sequence[float], correct: Sequence[float], bins: int = 10
) -> float:
    """ECE: the gap between confidence and accuracy, averaged over ``bins`` equal-width bins of
    confidence on [0, 1] weighted by how many predictions fall in each. Bin ``b`` holds
    confidences in ``[b / bins, (b + 1) / bins)``, the last one also 1.0. ``correct`` is 1 for a
    right prediction, 0 for a wrong one.

    Example:
        >>> # bin 9: confidence 0.95, accuracy 1/2; bin 2: 0.25 against 0 -> (0.45 + 0.25) / 2
        >>> round(expected_calibration_error([0.95, 0.95, 0.25, 0.25], [1, 0, 0, 0]), 4)
        0.35
    """
    _check_pairs(confidences, correct, "correctness labels")
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    bad = [c for c in confidences if not 0.0 <= c <= 1.0]
    if bad:
        raise ValueError(f"confidences must lie in [0, 1], got {bad[0]!r}; squash scores first")
    sums = [[0, 0.0, 0.0] for _ in range(bins)]  # per bin: count, confidence sum, correct sum
    for c, ok in zip(confidences, correct, strict=True):
        b = min(int(c * bins), bins - 1)
        sums[b][0] += 1
        sums[b][1] += c
        sums[b][2] += float(ok)
    n = len(confidences)
    return sum(abs(acc - conf) / n for count, conf, acc in sums if count)
