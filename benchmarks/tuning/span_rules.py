"""How often gold answers break the span rules of ``rag.spans``/``rag.span_edges``: the ceiling
each rule can cost, measured before the rule is tried on the benchmarks.

For every gold answer of SQuAD v1.1 dev (each of its answers, at ``answer_start`` in its
paragraph) and of notes_dev (each answer string, found inside its question's evidence in the
chapter's plain-text view, as the reader reads it), the share that

* ``crosses_sentence_end``: holds a sentence end with text after it (``rag.spans``); a reader
  span like it is skipped when ``ONE_SENTENCE`` is on;
* ``unbalanced``: leaves a bracket or ``"`` open or closes one it did not open; such a span is
  skipped when ``BALANCED`` is on;
* ``leading_punctuation`` / ``trailing_punctuation``: starts or ends with punctuation
  ``trim_edges`` takes off (a sentence's ``.``, ``,``, an unpaired bracket or quote);
* ``widened_by_keep_edges``: is widened by ``keep_edges`` (a reader span exactly on this gold
  would move off it: the edge rules' risk on prose).

``questions_all_golds`` counts the questions whose every gold answer has the property (where a
rule that skips such spans can cost a right answer); ``examples`` shows a few of each.

Example:
    $ python benchmarks/tuning/span_rules.py --data ../shared/data
    {"squad_v1_dev": {"answers": 34726, "questions": 10570, "crosses_sentence_end":
     {"answers": ..., "rate": ..., "questions_all_golds": ..., "examples": [...]}, ...},
     "notes_dev": {...}}
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from rag.plaintext import plain_view  # noqa: E402
from rag.span_edges import balanced, keep_edges, trim_edges  # noqa: E402
from rag.spans import crosses_sentence_end  # noqa: E402

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
EXAMPLES = 4

# (context, start, end) -> whether a gold answer there has the property
RULES: dict[str, Callable[[str, int, int], bool]] = {
    "crosses_sentence_end": crosses_sentence_end,
    "unbalanced": lambda text, s, e: not balanced(text[s:e]),
    "leading_punctuation": lambda text, s, e: trim_edges(text, s, e)[0] != s,
    "trailing_punctuation": lambda text, s, e: trim_edges(text, s, e)[1] != e,
    "widened_by_keep_edges": lambda text, s, e: keep_edges(text, s, e) != (s, e),
}


def squad_golds(path: Path) -> Iterator[tuple[str, list[tuple[str, int, int]]]]:
    """``(question id, [(context, start, end) of each gold answer])`` of a SQuAD file."""
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        data = json.load(handle)["data"]
    for article in data:
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            for qa in paragraph["qas"]:
                golds = [
                    (context, a["answer_start"], a["answer_start"] + len(a["text"]))
                    for a in qa["answers"]
                    if a["text"].strip()
                ]
                if golds:
                    yield qa["id"], golds


def notes_dev_golds(root: Path) -> Iterator[tuple[str, list[tuple[str, int, int]]]]:
    """notes_dev's answers in the plain-text view of their chapter, inside the evidence when
    they are there (else their first occurrence in the view)."""
    views: dict[str, str] = {}
    for line in (root / "questions.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if not row["answers"]:
            continue
        if row["file"] not in views:
            markdown = (root / "notes" / row["file"]).read_text(encoding="utf-8")
            views[row["file"]] = plain_view(markdown)[0]
        view = views[row["file"]]
        words = r"\s+".join(re.escape(w) for w in plain_view(row["evidence"])[0].split())
        evidence = re.search(words, view) if words else None
        low, high = evidence.span() if evidence else (0, len(view))
        golds = []
        for answer in row["answers"]:
            pattern = r"\s+".join(re.escape(w) for w in answer.split())
            found = re.compile(pattern).search(view, low, high) or re.search(pattern, view)
            if found:
                golds.append((view, *found.span()))
        if golds:
            yield row["id"], golds


def measure(golds: Iterator[tuple[str, list[tuple[str, int, int]]]]) -> dict:
    """Counts and rates of each property over the gold answers and their questions."""
    answers = questions = 0
    counts = {name: {"answers": 0, "questions_all_golds": 0, "examples": []} for name in RULES}
    for _, spans in golds:
        questions += 1
        answers += len(spans)
        for name, rule in RULES.items():
            flags = [rule(text, s, e) for text, s, e in spans]
            counts[name]["answers"] += sum(flags)
            counts[name]["questions_all_golds"] += all(flags)
            for flag, (text, s, e) in zip(flags, spans, strict=True):
                if flag and len(counts[name]["examples"]) < EXAMPLES:
                    counts[name]["examples"].append(text[s:e])
    for row in counts.values():
        row["rate"] = round(row["answers"] / max(answers, 1), 4)
    return {"answers": answers, "questions": questions, **counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DATA), help="the shared data folder (%(default)s)")
    data = Path(parser.parse_args().data)
    result = {
        "squad_v1_dev": measure(squad_golds(data / "squad" / "dev-v1.1.json.gz")),
        "notes_dev": measure(notes_dev_golds(data / "notes_dev")),
    }
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
