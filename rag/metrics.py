"""Evaluation metrics in one place: SQuAD v1.1 / v2.0 EM and F1, retrieval Recall@k and MRR@k.

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
