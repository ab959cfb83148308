"""Read SQuAD JSON (v1.1 or v2.0, optionally gzipped) into flat question records.

Example:
    >>> data, examples = load_squad("dev-v1.1.json.gz")
    >>> examples[0]["question"], examples[0]["answers"][0]["text"]
    ('Which NFL team represented the AFC at Super Bowl 50?', 'Denver Broncos')
"""

from __future__ import annotations

import gzip
import json
import random
import re
from pathlib import Path


def read_squad_json(path: str | Path) -> list[dict]:
    """The ``data`` list of a SQuAD file, with a clear error for anything else."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"SQuAD file {path} not found; pass --data path/to/dev-v1.1.json(.gz)"
        )
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        try:
            payload = json.load(handle)
        except json.JSONDecodeError as err:
            raise ValueError(
                f"{path} is not valid JSON ({err}); expected the official SQuAD format"
            ) from err
    if not isinstance(payload, dict) or "data" not in payload:
        raise ValueError(f"{path} has no top-level 'data' list; expected the official SQuAD format")
    return payload["data"]


def flatten_squad(data: list[dict]) -> list[dict]:
    """One record per question: id, title, question, context, answers, is_impossible."""
    examples = []
    for article in data:
        for p_index, paragraph in enumerate(article["paragraphs"]):
            for qa in paragraph["qas"]:
                examples.append(
                    {
                        "id": qa["id"],
                        "title": article.get("title", ""),
                        "paragraph_index": p_index,
                        "question": qa["question"],
                        "context": paragraph["context"],
                        "answers": qa.get("answers", []),
                        "is_impossible": bool(qa.get("is_impossible", False)),
                    }
                )
    return examples


def load_squad(path: str | Path) -> tuple[list[dict], list[dict]]:
    """(raw ``data`` list, flat question records) of a SQuAD file."""
    data = read_squad_json(path)
    return data, flatten_squad(data)


UNANSWERABLE_STYLES = ("other_paragraph", "answer_removed", "mixed")
# a sentence ends at . ! or ? followed by space and something that can start a sentence
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])([\"')\]]*)\s+(?=[\"'(\[]?[A-Z0-9])")


def check_unanswerable_style(style: str) -> None:
    """Raise a ValueError naming the valid choices unless ``style`` is one of them."""
    if style not in UNANSWERABLE_STYLES:
        raise ValueError(
            f"unknown unanswerable_style {style!r}; use one of {', '.join(UNANSWERABLE_STYLES)}"
        )


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` character spans of the sentences of ``text``, without the spaces between.

    Example:
        >>> sentence_spans("It rained. Then it snowed!  Cold.")
        [(0, 10), (11, 26), (28, 33)]
    """
    spans, start = [], 0
    for match in _SENTENCE_BREAK.finditer(text):
        spans.append((start, match.end(1)))  # closing quotes stay with their sentence
        start = match.end()
    if start < len(text):
        spans.append((start, len(text.rstrip())))
    return [(a, b) for a, b in spans if b > a]


def remove_answer_sentences(example: dict, min_sentences: int = 2) -> str | None:
    """The context of ``example`` without every sentence an answer overlaps, or None when fewer
    than ``min_sentences`` sentences remain or an answer's text still occurs in what is left.

    The question stays on topic and keeps most of its word overlap with the paragraph, but the
    paragraph no longer says the answer: closer to SQuAD v2.0's unanswerable questions than a
    paragraph from elsewhere in the article.

    Example:
        >>> remove_answer_sentences({"context": "Oslo is in Norway. It is cold. It is big.",
        ...     "answers": [{"text": "Norway", "answer_start": 11}]})
        'It is cold. It is big.'
    """
    context = example["context"]
    answered = [(a["answer_start"], a["answer_start"] + len(a["text"])) for a in example["answers"]]
    if not answered:
        return None
    kept = [
        (start, end)
        for start, end in sentence_spans(context)
        if not any(start < a_end and a_start < end for a_start, a_end in answered)
    ]
    if len(kept) < min_sentences:
        return None
    remaining = " ".join(context[start:end] for start, end in kept)
    lowered = remaining.lower()
    if any(a["text"].lower() in lowered for a in example["answers"]):
        return None
    return remaining


def make_unanswerable(
    examples: list[dict], ratio: float, seed: int = 0, style: str = "other_paragraph"
) -> list[dict]:
    """Unanswerable copies of ``ratio`` of the questions (a standard way to build no-answer
    training data from SQuAD v1.1). ``style`` says how the copy loses its answer:

    * ``other_paragraph``: the question paired with another paragraph of its own article that
      contains none of its answers;
    * ``answer_removed``: its own paragraph without the sentences that hold the answer
      (``remove_answer_sentences``), a harder, on-topic negative;
    * ``mixed``: either, with equal chance (falling back to the other when one is impossible).

    Returned records have ``answers=[]``, ``is_impossible=True`` and the id suffix ``-neg``.

    Example:
        >>> negatives = make_unanswerable(examples, ratio=0.5, style="mixed")
        >>> negatives[0]["is_impossible"], negatives[0]["id"].endswith("-neg")
        (True, True)
    """
    check_unanswerable_style(style)
    if ratio <= 0:
        return []
    paragraphs: dict[str, list[str]] = {}
    for e in examples:
        contexts = paragraphs.setdefault(e["title"], [])
        if e["context"] not in contexts:
            contexts.append(e["context"])
    rng = random.Random(seed)

    def other_paragraph(e: dict) -> str | None:
        answers = [a["text"].lower() for a in e["answers"]]
        others = [
            c
            for c in paragraphs[e["title"]]
            if c != e["context"] and not any(a in c.lower() for a in answers)
        ]
        return rng.choice(others) if others else None

    negatives = []
    for e in examples:
        if rng.random() >= ratio:
            continue
        if style == "other_paragraph":
            context = other_paragraph(e)
        elif style == "answer_removed":
            context = remove_answer_sentences(e)
        else:
            makers = [other_paragraph, remove_answer_sentences]
            if rng.random() < 0.5:
                makers.reverse()
            context = makers[0](e)
            if context is None:
                context = makers[1](e)
        if context is None:
            continue
        negatives.append(
            {
                **e,
                "id": f"{e['id']}-neg",
                "context": context,
                "answers": [],
                "is_impossible": True,
            }
        )
    return negatives
