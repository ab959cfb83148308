"""Training data for a reader that reads many passages at once: SQuAD articles laid out as notes,
each question paired with the passages the product's own retriever returns for it.

The articles become one Markdown file each (``# title``, then the paragraphs), are indexed by the
real pipeline (``rag.pipeline.NotesQA``: chunking, embedder, FAISS + BM25) and every sampled
question is retrieved in hybrid mode, as ``notesqa ask`` does. A *group* is the question, its top
``k`` passages and where the gold answer lies in them (every passage that holds the answer's
characters; overlapping passages can both hold it). A share of the questions is asked again over
the notes *without its own article* (its passages left out of the search): those groups have no
answer, the way a student's question about a lecture they never wrote up has none.

Example:
    >>> groups = build_groups(data, "runs/passage-notes", k=5, questions=8000)  # doctest: +SKIP
    >>> groups[0]["question"], len(groups[0]["passages"]), groups[0]["answers"]  # doctest: +SKIP
    ('When did Beyonce start becoming popular?', 5, [[0, 269, 286]])
"""

from __future__ import annotations

import gzip
import json
import logging
import random
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

log = logging.getLogger(__name__)


def note_name(index: int, title: str) -> str:
    """The Markdown file name of article ``index``.

    Example:
        >>> note_name(3, "Super_Bowl_50")
        '003-Super-Bowl-50.md'
    """
    return f"{index:03d}-{''.join(c if c.isalnum() else '-' for c in title)[:40]}.md"


def write_squad_notes(data: list[dict], folder: str | Path) -> list[dict]:
    """One Markdown file per SQuAD article in ``folder``; returns every question with its file,
    its answers' character spans in that file and ``is_impossible``.

    Example (the note is ``# T``, a blank line, then the paragraph):
        >>> import tempfile
        >>> qs = write_squad_notes([{"title": "T", "paragraphs": [{"context": "Ada was born.",
        ...     "qas": [{"id": "q", "question": "Who?", "answers": [{"text": "Ada",
        ...     "answer_start": 0}]}]}]}], tempfile.mkdtemp())
        >>> qs[0]["source"], qs[0]["answer_spans"]
        ('000-T.md', [[5, 8]])
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    questions = []
    for n, article in enumerate(data):
        name = note_name(n, article.get("title", f"article {n}"))
        text = f"# {article.get('title', '').replace('_', ' ')}\n\n"
        for paragraph in article["paragraphs"]:
            start = len(text)
            text += paragraph["context"] + "\n\n"
            for qa in paragraph["qas"]:
                answers = qa.get("answers", [])
                questions.append(
                    {
                        "id": qa["id"],
                        "question": qa["question"],
                        "source": name,
                        "answers": [a["text"] for a in answers],
                        "answer_spans": [
                            [start + a["answer_start"], start + a["answer_start"] + len(a["text"])]
                            for a in answers
                        ],
                        "paragraph_span": [start, start + len(paragraph["context"])],
                        "is_impossible": bool(qa.get("is_impossible", False)),
                    }
                )
        (folder / name).write_text(text, encoding="utf-8")
    return questions


def gold_in_passages(passages: list[dict], source: str, spans: list[list[int]]) -> list[list[int]]:
    """``[passage index, start, end]`` (offsets in the passage text) of every gold span that lies
    wholly inside a retrieved passage of its file.

    Example:
        >>> gold_in_passages([{"source": "a.md", "start": 10, "end": 40}], "a.md", [[12, 15]])
        [[0, 2, 5]]
    """
    found = []
    for index, passage in enumerate(passages):
        if passage["source"] != source:
            continue
        for start, end in spans:
            if passage["start"] <= start and end <= passage["end"]:
                found.append([index, start - passage["start"], end - passage["start"]])
    return found


MAX_TRIES_PER_KIND = 50  # questions tried in a row for one drawn kind of group


def draw_kind(draw: float, shares: dict[str, float]) -> str:
    """The kind of group a uniform ``draw`` in [0, 1) picks: the negative kinds take their
    ``shares`` in order, the rest is ``answerable``.

    Example:
        >>> [draw_kind(d, {"off_topic": 0.2, "removed": 0.3}) for d in (0.1, 0.4, 0.9)]
        ['off_topic', 'removed', 'answerable']
    """
    edge = 0.0
    for kind, share in shares.items():
        edge += share
        if draw < edge:
            return kind
    return "answerable"


def build_groups(
    data: list[dict],
    notes_dir: str | Path,
    k: int = 5,
    questions: int = 8000,
    unanswerable_share: float = 0.3,
    seed: int = 0,
    embedder: str | None = None,
    removed_share: float = 0.0,
    edited_share: float = 0.0,
    extra_negatives: int = 0,
) -> tuple[list[dict], list[dict]]:
    """Groups for ``questions`` sampled questions of ``data`` (SQuAD v1.1 articles), see above,
    each with its ``kind``: ``answerable``; ``off_topic`` (``unanswerable_share``: asked without
    its own article); ``removed`` (``removed_share``: its own passages without the answer's
    sentences) or ``edited`` (``edited_share``: an entity or word of the question swapped, over
    all the notes); the last two are ``training.negative_groups``'s on-topic negatives. A question
    that cannot be made into its drawn kind is left out and the kind goes to the next question, so
    the kinds keep their shares.

    Also returns up to ``extra_negatives`` more removed/edited groups from questions outside the
    sample, as candidates for mining the reader's confident mistakes.

    A question whose answer none of its ``k`` passages holds (a retrieval miss) is left out: its
    passages may still answer it in other words, so it is neither a positive nor a clean negative.
    """
    from rag.pipeline import NotesQA
    from rag.retrieve import retrieve
    from training.negative_groups import edited_questions, without_answer_sentences

    notes_dir = Path(notes_dir)
    pool = write_squad_notes(data, notes_dir)
    qa = NotesQA.open(notes_dir, embedder=embedder)
    qa.index(progress=True)
    store = qa.store
    chunk_sources = np.asarray([c.source for c in store.chunks()])
    rng = random.Random(seed)
    rng.shuffle(pool)
    edited = edited_questions(data, seed) if (edited_share > 0 or extra_negatives) else {}
    shares = {"off_topic": unanswerable_share, "removed": removed_share, "edited": edited_share}
    extra_shares = {"removed": 0.5, "edited": 0.5}
    groups, extras, skipped = [], [], {"miss": 0, "removed": 0, "edited": 0}
    progress = tqdm(total=questions + extra_negatives, desc="retrieving", unit="q")
    if not edited:
        shares.pop("edited")  # no question of these articles can be edited
        extra_shares = {"removed": 1.0}
    # a kind drawn stays drawn until a question fills it, so the shares hold; after
    # MAX_TRIES_PER_KIND questions in a row that cannot be made into it, another is drawn
    kind, tries = None, 0
    for item in pool:
        sampled = len(groups) < questions
        if not sampled and len(extras) >= extra_negatives:
            break
        if (
            kind is None
            or tries >= MAX_TRIES_PER_KIND
            or (not sampled and kind not in extra_shares)
        ):
            kind, tries = draw_kind(rng.random(), shares if sampled else extra_shares), 0
        tries += 1
        question = item["question"]
        if kind == "edited":
            if item["id"] not in edited:
                skipped["edited"] += 1
                continue
            question = edited[item["id"]]
        allowed = np.flatnonzero(chunk_sources != item["source"]) if kind == "off_topic" else None
        hits = retrieve(store, qa.embedder, question, k, allowed=allowed)
        passages = [
            {"source": h.chunk.source, "start": h.chunk.start, "end": h.chunk.end,
             "text": h.chunk.text, "score": h.score}
            for h in hits
        ]  # fmt: skip
        texts = [p["text"] for p in passages]
        answers = []
        if kind in ("answerable", "removed"):
            answers = gold_in_passages(passages, item["source"], item["answer_spans"])
            if not answers:
                skipped["miss"] += 1
                continue
        if kind == "removed":
            texts = without_answer_sentences(
                passages, item["source"], item["answer_spans"], item["answers"]
            )
            if texts is None:
                skipped["removed"] += 1
                continue
            answers = []
        group = {
            "id": item["id"],
            "kind": kind,
            "question": question,
            "passages": texts,
            "scores": [p["score"] for p in passages],
            "answers": answers,
            "answer_texts": item["answers"] if kind == "answerable" else [],
        }
        if kind == "removed":
            group["removed_answers"] = item["answers"]  # what the passages no longer say
        elif kind == "edited":
            group["original_question"] = item["question"]
        (groups if sampled else extras).append(group)
        kind = None
        progress.update()
    progress.close()
    qa.close()
    log.info(
        "%d groups and %d mining candidates (left out: %d retrieval misses, %d without a removable "
        "answer sentence, %d not editable)",
        len(groups), len(extras), skipped["miss"], skipped["removed"], skipped["edited"],
    )  # fmt: skip
    return groups, extras


def count_kinds(groups: list[dict]) -> dict[str, int]:
    """How many groups of each kind (groups written before kinds existed count as
    ``answerable`` or ``off_topic`` by whether they have an answer).

    Example:
        >>> count_kinds([{"kind": "removed"}, {"answers": [[0, 1, 2]]}, {"answers": []}])
        {'answerable': 1, 'off_topic': 1, 'removed': 1}
    """
    counts: dict[str, int] = {}
    for group in groups:
        kind = group.get("kind") or ("answerable" if group.get("answers") else "off_topic")
        counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items()))


def write_groups(groups: list[dict], path: str | Path) -> Path:
    """JSONL, one group per line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for group in groups:
            handle.write(json.dumps(group, ensure_ascii=False) + "\n")
    return path


def read_groups(path: str | Path) -> list[dict]:
    """The groups ``write_groups`` wrote (gzipped too: ``.gz``), checked for the fields training
    reads."""
    groups = []
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            group = json.loads(line)
            if not {"question", "passages", "answers"} <= set(group):
                raise ValueError(
                    f"{path}:{line_no}: a passage group needs 'question', 'passages' and "
                    "'answers'; write the file with `notesqa train passage-groups`"
                )
            groups.append(group)
    return groups
