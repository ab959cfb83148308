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


def make_unanswerable(examples: list[dict], ratio: float, seed: int = 0) -> list[dict]:
    """Unanswerable copies of ``ratio`` of the questions: each paired with another paragraph of
    its own article that contains none of its answers (a standard way to build no-answer
    training data from SQuAD v1.1). Returned records have ``answers=[]``, ``is_impossible=True``.

    Example:
        >>> negatives = make_unanswerable(examples, ratio=0.5)
        >>> negatives[0]["is_impossible"], negatives[0]["id"].endswith("-neg")
        (True, True)
    """
    if ratio <= 0:
        return []
    paragraphs: dict[str, list[str]] = {}
    for e in examples:
        contexts = paragraphs.setdefault(e["title"], [])
        if e["context"] not in contexts:
            contexts.append(e["context"])
    rng = random.Random(seed)
    negatives = []
    for e in examples:
        if rng.random() >= ratio:
            continue
        answers = [a["text"].lower() for a in e["answers"]]
        others = [
            c
            for c in paragraphs[e["title"]]
            if c != e["context"] and not any(a in c.lower() for a in answers)
        ]
        if not others:
            continue
        negatives.append(
            {
                **e,
                "id": f"{e['id']}-neg",
                "context": rng.choice(others),
                "answers": [],
                "is_impossible": True,
            }
        )
    return negatives
