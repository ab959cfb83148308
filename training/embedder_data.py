"""The embedder's training data: SQuAD (question, paragraph) pairs, BM25-mined hard negatives,
held-out articles, and scored STS-B / SICK sentence pairs.

Example (needs SQuAD train; the functions below show themselves on made-up records):
    >>> from training.squad import load_squad
    >>> _, examples = load_squad("train-v1.1.json.gz")              # doctest: +SKIP
    >>> train, heldout = split_articles(examples, heldout_articles=20)  # doctest: +SKIP
    >>> squad_pairs(train)[0]                                       # doctest: +SKIP
    ('To whom did the Virgin Mary allegedly appear in 1858 in Lourdes France?', 'Architecturally, ...')
"""

from __future__ import annotations

import random
from pathlib import Path


def squad_pairs(examples: list[dict]) -> list[tuple[str, str]]:
    """(question, paragraph) pairs of every answerable question."""
    return [(e["question"].strip(), e["context"]) for e in examples if not e["is_impossible"]]


def squad_triplets(examples: list[dict], seed: int = 0) -> list[tuple[str, str, str]]:
    """(question, paragraph, hard negative): the negative is the paragraph of the same article that
    BM25 ranks highest for the question among those that contain none of its answers.

    Questions whose article has no such paragraph are dropped.
    """
    from rag.keyword_segments import BM25Index

    by_title: dict[str, list[str]] = {}
    for e in examples:
        contexts = by_title.setdefault(e["title"], [])
        if e["context"] not in contexts:
            contexts.append(e["context"])
    # the keyword index as the shipped embedder's recipe mined with it: unstemmed, bm25s' k1
    indexes = {
        title: BM25Index.build(contexts, stemmer=None, k1=1.5)
        for title, contexts in by_title.items()
    }
    with_answer = paragraphs_with_the_answer(examples)
    triplets = []
    for e in examples:
        if e["is_impossible"]:
            continue
        answer_bearing = with_answer[(e["question"].strip(), e["context"])]
        contexts = by_title[e["title"]]
        ranked = [i for i, _ in indexes[e["title"]].search(e["question"], k=len(contexts))]
        # BM25's best first; paragraphs sharing no word with the question after them
        ranked += [i for i in range(len(contexts)) if i not in set(ranked)]
        for i in ranked:
            other = contexts[i]
            if other != e["context"] and other not in answer_bearing:
                triplets.append((e["question"].strip(), e["context"], other))
                break
    random.Random(seed).shuffle(triplets)
    return triplets


def paragraphs_with_the_answer(examples: list[dict]) -> dict[tuple[str, str], frozenset[str]]:
    """For each answerable (question, paragraph): the *other* paragraphs of its article that
    contain one of its answers (case-insensitive), likely false negatives in an article's batch.

    Example (two paragraphs of one article; "Ada" is in both, "1815" only in its own):
        >>> examples = [
        ...     {"title": "Ada", "question": "Who?", "context": "Ada wrote it.",
        ...      "answers": [{"text": "Ada"}], "is_impossible": False},
        ...     {"title": "Ada", "question": "When?", "context": "Ada was born in 1815.",
        ...      "answers": [{"text": "1815"}], "is_impossible": False}]
        >>> found = paragraphs_with_the_answer(examples)
        >>> found[("Who?", "Ada wrote it.")], found[("When?", "Ada was born in 1815.")]
        (frozenset({'Ada was born in 1815.'}), frozenset())
    """
    by_title: dict[str, dict[str, str]] = {}
    for e in examples:
        by_title.setdefault(e["title"], {})[e["context"]] = e["context"].lower()
    found: dict[tuple[str, str], frozenset[str]] = {}
    for e in examples:
        if e["is_impossible"]:
            continue
        answers = {a["text"].lower() for a in e["answers"] if a["text"].strip()}
        others = frozenset(
            context
            for context, lowered in by_title[e["title"]].items()
            if context != e["context"] and any(a in lowered for a in answers)
        )
        key = (e["question"].strip(), e["context"])
        found[key] = found.get(key, frozenset()) | others
    return found


def split_articles(
    examples: list[dict], heldout_articles: int, seed: int = 0
) -> tuple[list[dict], list[dict]]:
    """(train, held-out) examples, whole articles held out so no paragraph is in both.

    Example:
        >>> examples = [{"title": title, "question": f"q{i}"} for i, title in enumerate("AABBBCD")]
        >>> train, heldout = split_articles(examples, heldout_articles=2)
        >>> len(train) + len(heldout), {e["title"] for e in train} & {e["title"] for e in heldout}
        (7, set())
    """
    titles = sorted({e["title"] for e in examples})
    if heldout_articles >= len(titles):
        raise ValueError(
            f"cannot hold out {heldout_articles} of {len(titles)} articles; lower eval_articles"
        )
    heldout = set(random.Random(seed).sample(titles, heldout_articles))
    return (
        [e for e in examples if e["title"] not in heldout],
        [e for e in examples if e["title"] in heldout],
    )


def read_scored_pairs(path: str | Path) -> list[tuple[str, str, float]]:
    """(sentence 1, sentence 2, similarity in [0, 1]) from STS-B ``sts-*.csv`` or SICK
    ``SICK_*.txt``.

    Example (one STS-B row: genre, file, year, id, score 0-5, the two sentences):
        >>> import tempfile
        >>> sts = Path(tempfile.mkdtemp()) / "sts-train.csv"
        >>> row = ["main-captions", "MSRvid", "2012test", "0001", "5.000",
        ...        "A plane is taking off.", "An air plane is taking off."]
        >>> _ = sts.write_text("\\t".join(row) + "\\n", encoding="utf-8")
        >>> read_scored_pairs(sts)
        [('A plane is taking off.', 'An air plane is taking off.', 1.0)]
    """
    import csv

    path = Path(path)
    pairs = []
    with open(path, encoding="utf-8") as handle:
        rows = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        for line_no, row in enumerate(rows, 1):
            try:
                if path.name.startswith("SICK"):  # pair_ID, A, B, relatedness 1-5, label, ...
                    if len(row) >= 4 and row[0] != "pair_ID":
                        pairs.append((row[1], row[2], (float(row[3]) - 1.0) / 4.0))
                elif len(row) >= 7:  # STS-B: genre, file, year, id, score 0-5, s1, s2
                    pairs.append((row[5], row[6], float(row[4]) / 5.0))
            except ValueError:
                raise ValueError(
                    f"{path}:{line_no}: the score column is not a number; expected STS-B csv "
                    "(score in column 5) or SICK txt (relatedness in column 4), tab-separated"
                ) from None
    if not pairs:
        raise ValueError(f"{path} holds no scored sentence pairs (expected STS-B csv or SICK txt)")
    return pairs
