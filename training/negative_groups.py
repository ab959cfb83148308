"""On-topic "no answer" passage groups: the kinds of negative a student's notes really produce.

A question asked over notes that never mention its subject is easy to abstain on (the
*off-topic* groups of ``training.passage_groups``). The hard kind keeps the topic: the notes
talk about exactly this, but do not say the answer. Three ways to make such groups from SQuAD
questions laid out as notes:

* **removed**: the question's own retrieved passages with every sentence that holds its answer
  taken out (``without_answer_sentences``), so the rest of the passage still matches it;
* **edited**: the question with a name, number or date swapped for another of its article, or a
  word turned into its opposite (``edited_questions``), asked over all the notes: SQuAD v2.0's
  commonest kinds of unanswerable question;
* **mined**: more of both, kept only where the current reader answers them confidently
  (``confident_mistakes``): the mistakes it makes today.

Example (the answer's sentence goes; the other stays):
    >>> passages = [{"source": "a.md", "start": 0, "end": 36,
    ...              "text": "Ada was born in London. She wrote."}]
    >>> without_answer_sentences(passages, "a.md", [[16, 22]], ["London"])
    ['She wrote.']
"""

from __future__ import annotations

import logging
from pathlib import Path

from tqdm.auto import tqdm

log = logging.getLogger(__name__)

NEGATIVE_KINDS = ("off_topic", "removed", "edited", "mined")


def without_answer_sentences(
    passages: list[dict], source: str, spans: list[list[int]], answer_texts: list[str]
) -> list[str] | None:
    """The texts of ``passages`` with every sentence that overlaps a gold span of ``source`` (file
    offsets ``[start, end]``) removed; None when no passage held the answer, a changed passage
    would be left empty, or an answer's words still occur in any passage.

    Example (a passage of another file stays as it is, so one that still says "London" makes
    the question useless as a negative):
        >>> ps = [{"source": "a.md", "start": 0, "end": 23, "text": "Born in London. Wrote."},
        ...       {"source": "b.md", "start": 0, "end": 9, "text": "Paris is."}]
        >>> without_answer_sentences(ps, "a.md", [[8, 14]], ["London"])
        ['Wrote.', 'Paris is.']
        >>> ps[1]["text"] = "London is big."
        >>> without_answer_sentences(ps, "a.md", [[8, 14]], ["London"]) is None
        True
    """
    from training.squad import sentence_spans

    texts, changed = [], False
    for passage in passages:
        text = passage["text"]
        if passage["source"] == source:
            local = [
                (start - passage["start"], end - passage["start"])
                for start, end in spans
                if start < passage["end"] and passage["start"] < end
            ]
            if local:
                kept = [
                    (a, b)
                    for a, b in sentence_spans(text)
                    if not any(a < end and start < b for start, end in local)
                ]
                if not kept:
                    return None
                text = " ".join(text[a:b] for a, b in kept)
                changed = True
        texts.append(text)
    if not changed:
        return None
    lowered = [t.lower() for t in texts]
    if any(answer.lower() in t for answer in answer_texts if answer for t in lowered):
        return None
    return texts


def edited_questions(data: list[dict], seed: int) -> dict[str, str]:
    """``{question id: edited question}`` for every question of ``data`` (SQuAD articles) that
    can be edited so that its paragraph no longer answers it (``training.squad.make_unanswerable``,
    style ``question_edit``: an entity or a word swapped)."""
    from training.squad import flatten_squad, make_unanswerable

    negatives = make_unanswerable(flatten_squad(data), 1.0, seed, style="question_edit")
    return {n["id"].removesuffix("-neg"): n["question"] for n in negatives}


def confident_mistakes(
    candidates: list[dict], reader_dir: str | Path, keep: int, min_confidence: float | None = None
) -> list[dict]:
    """The ``keep`` no-answer ``candidates`` (groups) that the reader in ``reader_dir`` answers
    most confidently, among those it answers at or above ``min_confidence`` (its stored default
    unless given), relabelled kind ``mined`` with the confidence it gave.

    Example (needs a multi-passage reader with a calibrator):
        >>> mined = confident_mistakes(groups, "models/reader", keep=1000)  # doctest: +SKIP
        >>> mined[0]["kind"], mined[0]["mined_confidence"] > 0.5                # doctest: +SKIP
        ('mined', True)
    """
    from rag.answers import extract_joint_answers
    from rag.reader import Reader
    from training.calibrate import group_passages

    reader = Reader.load(reader_dir, runtime="torch")
    if reader.calibrator is None:
        raise ValueError(
            f"{reader_dir} has no notesqa_calibration.json; mining needs a calibrated "
            "multi-passage reader (`notesqa train calibrate`)"
        )
    bar = reader.calibrator.min_confidence if min_confidence is None else min_confidence
    scored = []
    for group in tqdm(candidates, desc="mining", unit="group"):
        answers = extract_joint_answers(
            reader, group["question"], group_passages(group), 1, min_confidence=None
        )
        if answers and answers[0].confidence >= bar:
            scored.append((answers[0].confidence, group))
    scored.sort(key=lambda pair: -pair[0])
    log.info("%d of %d candidates answered at or above %.3f", len(scored), len(candidates), bar)
    return [
        {**group, "kind": "mined", "mined_confidence": round(confidence, 4)}
        for confidence, group in scored[:keep]
    ]
