"""Read SQuAD JSON (v1.1 or v2.0, optionally gzipped) into flat question records.

Example:
    >>> data, examples = load_squad("dev-v1.1.json.gz")
    >>> examples[0]["question"], examples[0]["answers"][0]["text"]
    ('Which NFL team represented the AFC at Super Bowl 50?', 'Denver Broncos')
"""

from __future__ import annotations

import gzip
import json
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
