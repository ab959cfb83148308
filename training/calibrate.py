"""Fit a multi-passage reader's answer confidence, fusion weight and abstention default.

On held-out passage groups (``training.passage_groups``: questions over SQuAD articles the
reader never trained on, some asked without their own article) the reader reads each group once;
then

1. ``mu``, the BERTserini fusion weight ``(1 - mu) * retrieval + mu * log p(span)``, is the value
   of a grid whose top answers score the best F1 on the answerable groups;
2. a ``Calibrator`` (logistic regression) is fitted on the top answers of the *fit* split, the
   label being whether an answer is right (exact match with a gold answer after SQuAD's
   normalisation; every answer to a question without one is wrong);
3. ``min_confidence`` is the threshold whose abstentions give the best SQuAD-v2-style F1 on the
   fit split with answerable and unanswerable questions weighed equally (as SQuAD v2.0 dev);
4. the expected calibration error of the confidence is measured on the *held-out* split.

The result is ``notesqa_calibration.json`` in the reader folder.

Example (needs a trained multi-passage reader and its passage groups):
    >>> report = calibrate_reader("runs/mp-reader", "runs/groups/calibration-groups.jsonl")  # doctest: +SKIP
    >>> report["held_out"]["ece"]                                  # doctest: +SKIP
    0.031
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from rag.answers import SearchHit, check_confidence, rank_joint_answers
from rag.calibration import Calibrator
from rag.metrics import exact_match_score, expected_calibration_error, f1_score
from rag.reader import Reader
from training.passage_groups import read_groups

log = logging.getLogger(__name__)

MU_GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
TOP_ANSWERS = 3

READ_BATCH = 16  # groups read together (about 100 windows)


def group_passages(group: dict) -> list[SearchHit]:
    """The group's passages as search hits, one made-up source each (they never overlap)."""
    scores = group.get("scores") or [0.0] * len(group["passages"])
    return [
        SearchHit(text, float(score), f"passage-{i}", 0, len(text), "")
        for i, (text, score) in enumerate(zip(group["passages"], scores, strict=True))
    ]


def best_match(text: str, golds: list[str]) -> tuple[float, float]:
    """(EM, F1) of ``text`` against the best of ``golds`` (0, 0 without any)."""
    if not golds:
        return 0.0, 0.0
    return max(exact_match_score(text, g) for g in golds), max(f1_score(text, g) for g in golds)


def share_weights(answerable: np.ndarray, no_answer_share: float) -> np.ndarray:
    """Per question, the weight that makes those without an answer ``no_answer_share`` of the
    total (weights sum to 1).

    Example:
        >>> share_weights(np.array([True, True, True, False]), 0.5).round(3).tolist()
        [0.167, 0.167, 0.167, 0.5]
    """
    if not 0.0 < no_answer_share < 1.0:
        raise ValueError(
            f"no_answer_share must be between 0 and 1 (exclusive), got {no_answer_share}"
        )
    answered_weight = (1 - no_answer_share) / max(int(answerable.sum()), 1)
    no_answer_weight = no_answer_share / max(int((~answerable).sum()), 1)
    return np.where(answerable, answered_weight, no_answer_weight)


def choose_min_confidence(
    confidence: np.ndarray, f1: np.ndarray, answerable: np.ndarray, no_answer_share: float = 0.5
) -> float:
    """The threshold (one of the confidences, or 0) with the best F1 when abstaining below it,
    the questions without an answer weighed as ``no_answer_share`` of all (0.5: as many as
    answerable ones, as SQuAD v2.0 dev); an abstention scores 1 on a question without an answer
    and 0 on one with.

    Example (a right answer at 0.9 and two questions without an answer: abstain below 0.9; a
    half-right answer at 0.3 is worth keeping):
        >>> choose_min_confidence(np.array([0.9, 0.2, 0.3]), np.array([1.0, 0.0, 0.0]),
        ...                       np.array([True, False, False]))
        0.9
        >>> choose_min_confidence(np.array([0.9, 0.2, 0.3]), np.array([1.0, 0.0, 0.5]),
        ...                       np.array([True, False, True]))
        0.3
    """
    weight = share_weights(answerable, no_answer_share)
    best, best_score = 0.0, -1.0
    for threshold in np.unique(np.concatenate([[0.0], confidence])):
        answered = confidence >= threshold
        score = np.where(answered, f1, np.where(answerable, 0.0, 1.0))
        total = float(np.sum(weight * score))
        if total > best_score + 1e-12:
            best, best_score = float(threshold), total
    return best


def abstained_by_kind(groups: list[dict], answered: list[bool]) -> dict[str, str]:
    """Per kind of group (``training.passage_groups``): how many of them the reader abstained on.

    Example:
        >>> abstained_by_kind([{"kind": "removed"}, {"kind": "removed"}, {"answers": [[0, 1, 2]]}],
        ...                   [True, False, True])
        {'answerable': '0 of 1', 'removed': '1 of 2'}
    """
    totals: dict[str, list[int]] = {}
    for group, was_answered in zip(groups, answered, strict=True):
        kind = group.get("kind") or ("answerable" if group.get("answers") else "off_topic")
        counts = totals.setdefault(kind, [0, 0])
        counts[0] += not was_answered
        counts[1] += 1
    return {kind: f"{n} of {total}" for kind, (n, total) in sorted(totals.items())}


def calibrate_reader(
    reader_dir: str | Path,
    groups_path: str | Path,
    held_out_share: float = 0.3,
    seed: int = 0,
    no_answer_share: float | None = None,
    min_confidence: float | None = None,
) -> dict:
    """Fit and save the calibration of the multi-passage reader in ``reader_dir``; returns a
    report with the chosen ``mu`` and ``min_confidence`` and the held-out ECE and F1.

    ``no_answer_share``: the share of questions without an answer the product expects; the
    calibrator is fitted, and ``min_confidence`` chosen, with the groups weighed to it (None:
    as they come for the fit, equal halves for the threshold). ``min_confidence``: stored instead
    of the chosen threshold (the report and the held-out numbers use the stored one)."""
    reader = Reader.load(reader_dir, runtime="torch")  # fitted on the logits as trained
    if not reader.settings.multi_passage:
        raise ValueError(
            f"{reader_dir} is not a multi-passage reader; train one with "
            "`notesqa train passage-reader` first"
        )
    groups = read_groups(groups_path)
    random.Random(seed).shuffle(groups)
    readings = []
    with tqdm(total=len(groups), desc="reading", unit="group") as bar:
        for first in range(0, len(groups), READ_BATCH):  # windows batched across groups
            chunk = groups[first : first + READ_BATCH]
            jointly = reader.read_groups([(g["question"], g["passages"]) for g in chunk])
            readings.extend((g, group_passages(g), r) for g, r in zip(chunk, jointly, strict=True))
            bar.update(len(chunk))
    answerable = np.array([bool(g.get("answer_texts")) for g, _, _ in readings])

    def top_f1(mu: float, rows: list) -> float:
        scores = []
        for group, passages, reading in rows:
            ranked, _ = rank_joint_answers(reading, passages, mu, 1)
            if group.get("answer_texts"):
                scores.append(best_match(ranked[0].text, group["answer_texts"])[1] if ranked else 0)
        return float(np.mean(scores)) if scores else 0.0

    cut = int(len(readings) * (1 - held_out_share))
    fit, held_out = readings[:cut], readings[cut:]
    mu_scores = {mu: top_f1(mu, fit) for mu in MU_GRID}
    mu = max(mu_scores, key=lambda m: (mu_scores[m], -abs(m - 0.5)))

    def table(rows: list) -> tuple[np.ndarray, ...]:
        """Features, EM and group (its index in ``rows``) of every shown answer, and the top
        answer's index and F1 per group."""
        features, right, owner, top_index, top_f1s = [], [], [], [], []
        for g, (group, passages, reading) in enumerate(rows):
            ranked, x = rank_joint_answers(reading, passages, mu, TOP_ANSWERS)
            top_index.append(len(features) if ranked else -1)
            golds = group.get("answer_texts") or []
            for rank, answer in enumerate(ranked):
                em, f1 = best_match(answer.text, golds)
                features.append(x[rank])
                right.append(em == 1.0)
                owner.append(g)
                if rank == 0:
                    top_f1s.append(f1)
            if not ranked:
                top_f1s.append(0.0)
        arrays = (features, right, owner, top_index, top_f1s)
        return tuple(np.array(a) for a in arrays)

    x_fit, y_fit, owner_fit, top_fit, f1_fit = table(fit)
    fit_answerable = answerable[:cut]
    weights = None
    if no_answer_share is not None:  # each answer weighs as its group does
        weights = share_weights(fit_answerable, no_answer_share)[owner_fit.astype(int)]
    calibrator = Calibrator.fit(x_fit, y_fit, mu=mu, sample_weight=weights)
    confidence_fit = calibrator.confidence(x_fit)
    top_confidence = np.where(top_fit >= 0, confidence_fit[np.maximum(top_fit, 0)], 0.0)
    calibrator.min_confidence = choose_min_confidence(
        top_confidence, f1_fit, fit_answerable, 0.5 if no_answer_share is None else no_answer_share
    )
    chosen_min_confidence = calibrator.min_confidence
    if min_confidence is not None:
        calibrator.min_confidence = float(check_confidence(min_confidence))
    calibrator.fitted_on = (
        f"{len(fit)} held-out passage groups of {groups_path} ({int(fit_answerable.sum())} with an "
        f"answer), top {TOP_ANSWERS} answers each"
        + ("" if no_answer_share is None else f", weighed to {no_answer_share:.0%} without one")
        + (
            ""
            if min_confidence is None
            else f"; min_confidence {min_confidence:g} given (the groups chose "
            f"{chosen_min_confidence:.3f})"
        )
    )

    x_held, y_held, _, top_held, f1_held = table(held_out)
    confidence_held = calibrator.confidence(x_held)
    held_answerable = answerable[cut:]
    top_conf_held = np.where(top_held >= 0, confidence_held[np.maximum(top_held, 0)], 0.0)
    answered = top_conf_held >= calibrator.min_confidence
    v2_f1 = np.where(answered, f1_held, np.where(held_answerable, 0.0, 1.0))
    top_right = y_held[np.maximum(top_held, 0)] & (top_held >= 0)
    calibrator.save(reader_dir)
    report = {
        "mu": mu,
        "no_answer_share": no_answer_share,
        "mu_f1": {str(m): round(100 * s, 2) for m, s in mu_scores.items()},
        "min_confidence": calibrator.min_confidence,
        "chosen_min_confidence": chosen_min_confidence,
        "fit_groups": len(fit),
        "held_out": {
            "groups": len(held_out),
            "answerable": int(held_answerable.sum()),
            "ece_all_answers": round(
                expected_calibration_error(confidence_held.tolist(), y_held.tolist()), 4
            ),
            "ece": round(expected_calibration_error(top_conf_held.tolist(), top_right.tolist()), 4),
            "f1_has_answer": round(
                100 * float(np.mean(np.where(answered, f1_held, 0)[held_answerable])), 2
            ),
            "abstained_no_answer": round(float(np.mean(~answered[~held_answerable])), 4),
            "abstained_by_kind": abstained_by_kind([g for g, _, _ in held_out], answered.tolist()),
            "answered": round(float(np.mean(answered)), 4),
            "v2_f1_as_made": round(100 * float(np.mean(v2_f1)), 2),
        },
    }
    log.info("calibration: %s", report)
    return report
