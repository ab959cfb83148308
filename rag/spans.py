"""Turn a reader's start/end logits into ranked answer spans with exact character offsets.

A pure function shared by SQuAD evaluation and by the notes pipeline. One context may be cut into
several overlapping windows ("features"); spans from every window are scored, mapped back to the
original text, and merged (the same characters found in two windows keep their best score).

Example:
    >>> start = np.array([[0.0, 5.0, 0.0]]); end = np.array([[0.0, 0.0, 4.0]])
    >>> offsets = [[None, (0, 5), (6, 11)]]
    >>> spans, null = extract_spans(start, end, offsets, "hello world")
    >>> spans[0], null
    (Span(text='hello world', start=0, end=11, score=9.0), 0.0)
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.span_edges import well_formed

Offsets = Sequence[Sequence[tuple[int, int] | None]]
ONE_SENTENCE = True  # skip spans across a sentence end (benchmarks/tuning/span_rules.py)
BALANCED = True  # skip spans with a bracket or quote left open (the same)


@dataclass(frozen=True)
class Span:
    text: str
    start: int  # character offset in the context
    end: int  # exclusive
    score: float  # start logit + end logit


def extract_spans(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    offsets: Offsets,
    context: str,
    n_best_size: int = 20,
    max_answer_length: int = 30,
    one_sentence: bool | None = None,
    balanced: bool | None = None,
) -> tuple[list[Span], float]:
    """Best spans over all windows of one context, best first, and the null (no-answer) score.

    ``start_logits``/``end_logits`` are (F, T) for F windows of T tokens; ``offsets[f][t]`` is the
    token's ``(char_start, char_end)`` in ``context``, or None for question, special and padding
    tokens. The null score is the lowest [CLS] score over the windows (position 0).
    ``one_sentence``: skip spans that run over a sentence end (``crosses_sentence_end``);
    ``balanced``: skip spans whose answer leaves a bracket or quote open
    (``rag.span_edges.well_formed``); None: ``ONE_SENTENCE``/``BALANCED``.
    """
    one_sentence = ONE_SENTENCE if one_sentence is None else one_sentence
    balanced = BALANCED if balanced is None else balanced
    null_score = float(min(start_logits[f][0] + end_logits[f][0] for f in range(len(offsets))))
    stops = sentence_ends(context) if one_sentence else []  # none: no limit
    # every (window, start, end) among each window's n best starts and ends that lies in the
    # context (question, [CLS]/[SEP] and padding have no offsets), in order and not too long
    scores, picks = [], []
    for f, window in enumerate(offsets):
        in_context = np.array([o is not None for o in window], dtype=bool)  # (T,)
        starts = np.argsort(start_logits[f])[::-1][:n_best_size]
        ends = np.argsort(end_logits[f])[::-1][:n_best_size]
        s, e = (a.ravel() for a in np.meshgrid(starts, ends, indexing="ij"))  # start-major
        ok = (s < len(window)) & (e < len(window)) & (e >= s) & (e - s + 1 <= max_answer_length)
        s, e = s[ok], e[ok]
        keep = in_context[s] & in_context[e]
        s, e = s[keep], e[keep]
        scores.append(start_logits[f][s] + end_logits[f][e])
        picks.extend((f, int(a), int(b)) for a, b in zip(s, e, strict=True))
    if not picks:
        return [], null_score
    every = np.concatenate(scores)  # (C,)
    best: dict[tuple[int, int], float] = {}
    refused: set[tuple[int, int]] = set()
    for i in np.argsort(-every, kind="stable"):  # best first: a span's first sighting is its best
        f, start, end = picks[i]
        key = (offsets[f][start][0], offsets[f][end][1])  # the characters, over all windows
        if key in best or key in refused:
            continue
        char_start, char_end = key
        limit = next_sentence(stops, char_start)
        # an answer never runs across a paragraph break (a heading and the text below it), nor
        # over a sentence end ("... in 1989. Zsh was written by ..."), and one a person would
        # underline closes what it opens ("tensor (from the")
        if (
            "\n\n" in context[char_start:char_end]
            or char_end > limit
            or (balanced and not well_formed(context, char_start, char_end))
        ):
            refused.add(key)
            continue
        best[key] = float(every[i])
        if len(best) == n_best_size:
            break
    spans = [Span(context[s:e], s, e, score) for (s, e), score in best.items()]
    return spans, null_score


_SENTENCE_END = re.compile(r"[.!?](?=\s)|\n\s*\n")
# a sentence end inside a span: . ! or ? (closing quotes or brackets may follow), spaces, then
# what starts a sentence (a capital or a digit, perhaps after an opening quote or bracket)
_INSIDE_END = re.compile(r"(\w*)([.!?])[\"'”’)\]]*\s+(?=[\"'“‘(\[]*[A-Z0-9])")
# words a period follows without ending the sentence ("Dr. Smith", "e.g. This")
ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st jr sr vs etc eg ie cf al no nos fig figs eq eqs approx ca inc ltd co "
    "corp gen gov sen rep rev mt ft jan feb mar apr jun jul aug sep sept oct nov dec op vol".split()
)


def sentence_ends(context: str) -> list[tuple[int, int]]:
    """``(index of the end mark, index of the next sentence's first character)`` of each
    sentence end of ``context``. A period after an initial ("J. K. Rowling", "U.S. Army") or a
    known abbreviation ("Dr. Smith", "e.g. This") does not end a sentence: its tokens say so.

    Example:
        >>> sentence_ends("Ada came. Dr. Smith left in the U.S. Army. Then")
        [(8, 10), (41, 43)]
    """
    ends = []
    for match in _INSIDE_END.finditer(context):
        word = match.group(1)
        if match.group(2) == "." and (len(word) == 1 or word.lower() in ABBREVIATIONS):
            continue  # an initial, "U.S.", "e.g." (one letter before the period) or "Dr."
        ends.append((match.start(2), match.end()))
    return ends


def crosses_sentence_end(
    context: str, start: int, end: int, ends: list[tuple[int, int]] | None = None
) -> bool:
    """Whether ``context[start:end]`` holds a sentence end with text after it (a period at its
    end is trailing punctuation, not a crossing). ``ends``: ``sentence_ends(context)``, when
    many spans of one context are asked about.

    Example:
        >>> text = "Bash was written by Brian Fox in 1989. Zsh was written by Paul Falstad."
        >>> crosses_sentence_end(text, 20, 48), crosses_sentence_end(text, 20, 38)
        (True, False)
        >>> crosses_sentence_end("Written by J. K. Rowling in the U.S. Army.", 11, 24)
        False
    """
    ends = sentence_ends(context) if ends is None else ends
    return next_sentence(ends, start) < end


def next_sentence(ends: list[tuple[int, int]], start: int) -> float:
    """Where the first sentence after the one at ``start`` begins (``ends``:
    ``sentence_ends``); infinity when none does.

    Example:
        >>> next_sentence([(8, 10), (41, 43)], 9), next_sentence([(8, 10)], 9)
        (43, inf)
    """
    first = bisect_left(ends, (start, -1))  # the first sentence end at or after the start
    return ends[first][1] if first < len(ends) else math.inf


def surrounding_sentence(context: str, start: int, end: int) -> str:
    """The sentence of ``context`` that holds ``context[start:end]`` (it may run over several).

    Example:
        >>> surrounding_sentence("Rome fell. Adam keeps two averages. Done.", 16, 20)
        'Adam keeps two averages.'
    """
    left = 0
    for match in _SENTENCE_END.finditer(context, 0, start):
        left = match.end()
    after = _SENTENCE_END.search(context, end)
    right = after.end() if after else len(context)
    return " ".join(context[left:right].split())
