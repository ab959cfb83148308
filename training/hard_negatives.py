"""No-answer negatives mined from a reader's own confident mistakes.

SQuAD v2.0's writers were asked for unanswerable questions with a *plausible* answer in the
paragraph. Rule-made copies (``training.squad.make_unanswerable``) are mostly easier than that:
a reader abstains on many of them at once. Mining keeps, for each question, the one copy among
several kinds that the reader answers most confidently, the copy closest to a v2.0 question.
Both functions here are pure; running the reader is the caller's (``training.reader``).

Example (two questions of a made-up article; the shipped reader reads the copies):
    >>> texts = ["Ada Lovelace was born in London in 1815. She wrote a program. She died in 1852.",
    ...          "Charles Babbage designed the Analytical Engine in Cambridge."]
    >>> qas = [("When was Ada Lovelace first born in London?", "1815"),
    ...        ("Who designed the Analytical Engine?", "Charles Babbage")]
    >>> examples = [{"id": f"q{i}", "title": "Ada", "question": q, "context": c,
    ...              "answers": [{"text": a, "answer_start": c.index(a)}], "is_impossible": False}
    ...             for i, (c, (q, a)) in enumerate(zip(texts, qas))]
    >>> from rag.reader import Reader
    >>> from training.reader import null_margins
    >>> candidates = negative_candidates(examples, ratio=1.0, seed=0)
    >>> margins = null_margins(Reader.load(), candidates)[0]  # null score minus best span score
    >>> [(n["id"], n["answers"]) for n in hardest_per_question(candidates, margins)]
    [('q0-neg', []), ('q1-neg', [])]
"""

from __future__ import annotations

import random

from training.squad import make_unanswerable

# every rule that keeps a question's article; question edits first (v2.0's commonest kinds)
CANDIDATE_STYLES = ("antonym", "entity_swap", "answer_removed", "other_paragraph")
MINED = "mined"


def negative_candidates(
    examples: list[dict],
    ratio: float,
    seed: int = 0,
    styles: tuple[str, ...] = CANDIDATE_STYLES,
) -> list[dict]:
    """Up to one unanswerable copy per style of each of ``ratio`` of the questions (fewer where
    a rule does not apply), each tagged with ``negative_style``; the copies of one question share
    its id plus ``-neg``.

    Example (the second question's paragraph has one sentence and no name to swap: one copy):
        >>> texts = ["Ada Lovelace was born in London in 1815. She wrote a program. She died in 1852.",
        ...          "Charles Babbage designed the Analytical Engine in Cambridge."]
        >>> qas = [("When was Ada Lovelace first born in London?", "1815"),
        ...        ("Who designed the Analytical Engine?", "Charles Babbage")]
        >>> examples = [{"id": f"q{i}", "title": "Ada", "question": q, "context": c,
        ...              "answers": [{"text": a, "answer_start": c.index(a)}], "is_impossible": False}
        ...             for i, (c, (q, a)) in enumerate(zip(texts, qas))]
        >>> copies = negative_candidates(examples, ratio=1.0)
        >>> [(c["id"], c["negative_style"]) for c in copies]  # doctest: +NORMALIZE_WHITESPACE
        [('q0-neg', 'antonym'), ('q0-neg', 'entity_swap'), ('q0-neg', 'answer_removed'),
         ('q0-neg', 'other_paragraph'), ('q1-neg', 'other_paragraph')]
    """
    rng = random.Random(seed)
    chosen = [e for e in examples if rng.random() < ratio]
    candidates = []
    for offset, style in enumerate(styles):
        for copy in make_unanswerable(chosen, 1.0, seed + 1 + offset, style=style):
            candidates.append({**copy, "negative_style": style})
    return candidates


def hardest_per_question(candidates: list[dict], null_minus_best: list[float]) -> list[dict]:
    """For each question id, the candidate with the lowest null-minus-best-span margin (the
    one the reader most wants to answer), in the order the ids first appear.

    Example:
        >>> hardest_per_question(
        ...     [{"id": "q-neg", "negative_style": "antonym"},
        ...      {"id": "q-neg", "negative_style": "entity_swap"}], [1.5, -2.0])
        [{'id': 'q-neg', 'negative_style': 'entity_swap'}]
    """
    if len(candidates) != len(null_minus_best):
        raise ValueError(f"{len(candidates)} candidates but {len(null_minus_best)} margins")
    best: dict[str, tuple[float, dict]] = {}
    for candidate, margin in zip(candidates, null_minus_best, strict=True):
        kept = best.get(candidate["id"])
        if kept is None or margin < kept[0]:
            best[candidate["id"]] = (margin, candidate)
    return [candidate for _, candidate in best.values()]
