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


def build_groups(
    data: list[dict],
    notes_dir: str | Path,
    k: int = 5,
    questions: int = 8000,
    unanswerable_share: float = 0.3,
    seed: int = 0,
    embedder: str | None = None,
) -> list[dict]:
    """Groups for ``questions`` sampled questions of ``data`` (SQuAD v1.1 articles), see above.

    A question whose answer none of its ``k`` passages holds (a retrieval miss) is left out: its
    passages may still answer it in other words, so it is neither a positive nor a clean negative.
    """
    from rag.pipeline import NotesQA
    from rag.retrieve import retrieve

    notes_dir = Path(notes_dir)
    pool = write_squad_notes(data, notes_dir)
    qa = NotesQA.open(notes_dir, embedder=embedder)
    qa.index(progress=True)
    store = qa.store
    chunk_sources = np.asarray([c.source for c in store.chunks()])
    rng = random.Random(seed)
    sample = rng.sample(pool, min(questions, len(pool)))
    groups, misses = [], 0
    for item in tqdm(sample, desc="retrieving", unit="q"):
        unanswerable = rng.random() < unanswerable_share
        question = item["question"]
        allowed = np.flatnonzero(chunk_sources != item["source"]) if unanswerable else None
        hits = retrieve(store, qa.embedder, question, k, allowed=allowed)
        passages = [
            {"source": h.chunk.source, "start": h.chunk.start, "end": h.chunk.end,
             "text": h.chunk.text, "score": h.score}
            for h in hits
        ]  # fmt: skip
        answers = [] if unanswerable else gold_in_passages(
            passages, item["source"], item["answer_spans"]
        )  # fmt: skip
        if not unanswerable and not answers:
            misses += 1
            continue
        groups.append(
            {
                "id": item["id"],
                "question": question,
                "passages": [p["text"] for p in passages],
                "scores": [p["score"] for p in passages],
                "answers": answers,
                "answer_texts": [] if unanswerable else item["answers"],
            }
        )
    qa.close()
    log.info("%d groups (%d retrieval misses left out)", len(groups), misses)
    return groups


def write_groups(groups: list[dict], path: str | Path) -> Path:
    """JSONL, one group per line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for group in groups:
            handle.write(json.dumps(group, ensure_ascii=False) + "\n")
    return path


def read_groups(path: str | Path) -> list[dict]:
    """The groups ``write_groups`` wrote, checked for the fields training reads."""
    groups = []
    with open(path, encoding="utf-8") as handle:
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
