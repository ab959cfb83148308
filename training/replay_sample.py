"""The SQuAD replay sample that ships in ``models/replay`` for ``notesqa adapt``: passage groups
(a question with the passages the product's retriever found for it, ``training.passage_groups``)
for training beside the notes, and held-out ones to recalibrate the confidence on.

Seeded samples of the groups the shipped reader's last stage trained and was calibrated on, with
every kind kept in its share, gzipped; small enough for git (the issue allows 2 MB).

Example (from the groups of `notesqa train passage-groups`):
    $ notesqa train replay-sample --train-groups runs/ontopic-groups/train-groups.jsonl \\
        --calibration-groups runs/ontopic-groups/calibration-groups.jsonl --out models/replay
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

from training.passage_groups import count_kinds, read_groups

LICENCE = """# SQuAD replay sample

Used by `notesqa adapt` so the reader keeps answering while it learns the notes' text.

- `train-groups.jsonl.gz`: {train} passage groups ({train_kinds}).
- `calibration-groups.jsonl.gz`: {calibration} held-out groups ({calibration_kinds}).

Each line: a SQuAD v1.1 training question, the passages notesqa's retriever found for it among
its Wikipedia article's paragraphs (some groups have the answer's sentences removed, the question
edited, or another article's passages: questions without an answer), and the answer offsets.
Remade with `notesqa train replay-sample` (docs/TRAINING.md).

Attribution and licence: questions and answers from SQuAD (Rajpurkar, Zhang, Lopyrev and Liang,
"SQuAD: 100,000+ Questions for Machine Comprehension of Text", EMNLP 2016,
https://rajpurkar.github.io/SQuAD-explorer/), licensed CC BY-SA 4.0; passages from Wikipedia,
CC BY-SA. This sample is shared under the same licence, CC BY-SA 4.0.
"""


def sample_groups(groups: list[dict], count: int, seed: int) -> list[dict]:
    """``count`` groups drawn without replacement, seeded (all of them if fewer)."""
    if count >= len(groups):
        return list(groups)
    return random.Random(seed).sample(groups, count)


def in_words(kinds: dict[str, int]) -> str:
    """Example:
    >>> in_words({"answerable": 3, "removed": 1})
    '3 answerable, 1 removed'
    """
    return ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in kinds.items())


def write_gz(groups: list[dict], path: Path) -> int:
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=9) as handle:
        for group in groups:
            handle.write(json.dumps(group, ensure_ascii=False) + "\n")
    return path.stat().st_size


def write_replay_sample(
    train_groups: str | Path,
    calibration_groups: str | Path,
    out_dir: str | Path,
    train_count: int = 800,
    calibration_count: int = 400,
    seed: int = 0,
) -> dict:
    """Write both samples and their README (licence, attribution) to ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train = sample_groups(read_groups(train_groups), train_count, seed)
    calibration = sample_groups(read_groups(calibration_groups), calibration_count, seed)
    sizes = {
        "train": write_gz(train, out / "train-groups.jsonl.gz"),
        "calibration": write_gz(calibration, out / "calibration-groups.jsonl.gz"),
    }
    (out / "README.md").write_text(
        LICENCE.format(
            train=len(train),
            calibration=len(calibration),
            train_kinds=in_words(count_kinds(train)),
            calibration_kinds=in_words(count_kinds(calibration)),
        )
    )
    return {"groups": {"train": len(train), "calibration": len(calibration)}, "bytes": sizes}
