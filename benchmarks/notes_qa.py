"""End-to-end notes QA benchmark: a folder of notes indexed and asked through ``NotesQA``.

Every question takes the product path: ``NotesQA.open(folder).index()``, then ``NotesQA.ask``
(the default retrieval mode, ``-k`` passages, the reader's stored ``min_confidence`` or null
threshold, the default 3 answers of which the first, the most confident, is scored). Three data
sets:

``--squad v1`` (the default)
    SQuAD v1.1 dev, one Markdown file per article (``# title`` then the paragraphs). Every
    question has an answer in the notes: official v1.1 EM/F1, an abstention scores 0.
``--squad v2``
    SQuAD v2.0 dev written the same way. About half the questions are unanswerable
    (``is_impossible``) although their article is in the notes: official v2.0 EM/F1 overall,
    ``has_ans`` and ``no_ans``; an abstention is the prediction "".
``--notes-dev``
    ``notes_dev`` (12 D2L chapters; 75 answerable questions, 15 unanswerable ones marked by
    ``"answers": []``): ``has_ans`` is the answerable EM/F1 (max over ``answers``, an abstention
    scores 0), ``unanswerable_abstained`` the correct abstentions, ``answerable_abstained`` the
    false ones, and ``exact_match``/``f1`` the README's SQuAD-2.0-style score over all questions.
``--notes-set DIR``
    Another set in notes_dev's layout, scored the same way: ``benchmarks/data/econ_notes`` (15
    notes from OpenStax *Principles of Economics 3e*; 62 answerable questions, 14 unanswerable).

Every mode prints one JSON object with

* ``answered``: the share of questions answered. ``always_answer``: the same scores when never
  abstaining (``always_answer=True``; where the reader answered, its top answer does not depend
  on the threshold, so only the questions it abstained on are asked again);
* ``selective``: how well a confidence orders the always-answer predictions. ``aurc`` is the
  area under the risk-coverage curve with risk = 1 - F1 of the most confident answers, averaged
  over coverage 1/n .. 1 (``aurc_em``: risk = 1 - EM; ``aurc_oracle``: the best possible order;
  ``aurc_random``: no order, the overall risk). ``ece``: the expected calibration error of the
  confidence against correct = exact match (EM 1), 10 equal-width bins. The confidence is
  ``answer.confidence`` where answers carry one; else sigmoid(score - the no-answer score of the
  answer's own passage), the margin the stored null threshold is applied to; else
  sigmoid(score). ``confidence_source`` counts which was used. ``operating_point`` is the
  stored threshold's (coverage, risk). ``by_confidence``: the always-answer predictions with a
  confidence of at least 0.5 (``above``) and below it (``below``), each with its ``answers``
  count and the share that is right (``right_f1``: F1 >= 0.5; ``right_em``: EM 1). The
  risk-coverage curve is saved as a PNG (``--plot``);
* ``ask_latency_ms``: p50/p95 of ``NotesQA.ask`` with the stored threshold, warm, one question at
  a time;
* ``retrieval`` (``--no-retrieval`` skips it; ``--no-reader`` keeps only it, the questions
  searched but not asked): Recall@1/5/20 and MRR@10 of each mode (dense, bm25, hybrid) over the
  answerable questions. SQuAD: a passage is relevant when it overlaps the
  question's paragraph in its file. notes_dev, as its README defines them: ``lenient``, a passage
  of the question's file that contains one of the answers; ``strict``, one that contains the
  evidence, or contains an answer and overlaps the evidence's span in the file (whitespace
  collapsed before comparing).

``--limit N`` samples N questions (``--seed``; asked in dataset order). Every article is still
indexed, unless ``--distractors D`` asks for only the sampled questions' articles plus D others;
articles are always whole, so an unanswerable question's article is in the notes. ``indexed``
says what was indexed.

Example:
    $ python benchmarks/notes_qa.py --data ../shared/data --squad v2 --limit 1000
    {"mode": "squad-v2", "exact_match": ..., "f1": ..., "has_ans": {...}, "no_ans": {...},
     "answered": ..., "always_answer": {...}, "selective": {"confidence_source": {...},
     "aurc": ..., "ece": ..., ...}, "ask_latency_ms": {"p50": ..., "p95": ...},
     "retrieval": {"dense": {...}, "bm25": {...}, "hybrid": {...}}, "indexed": {...}, ...}
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"  # the shared data folder beside the repository
sys.path.insert(0, str(ROOT))
from benchmarks.retrieval import add_window_options, window_options  # noqa: E402
from rag.metrics import (  # noqa: E402
    aurc,
    expected_calibration_error,
    retrieval_scores,
    risk_coverage,
    squad_question_scores,
    squad_v1_scores,
    squad_v2_scores,
)
from rag.pipeline import Answer, NotesQA  # noqa: E402
from training.squad import read_squad_json  # noqa: E402


@dataclass
class Task:
    """What one mode asks: the notes folder written, its questions and how to score them.

    Each question is a dict with ``id``, ``question``, ``answers`` (gold strings, ``[]`` when
    unanswerable), ``source`` (its file, relative to the notes) and ``span`` (the characters
    that make a passage relevant; ``None`` when unanswerable in notes_dev)."""

    mode: str
    questions: list[dict]
    dataset: list[dict]  # SQuAD-shaped, only the asked questions, for the official scorers
    version: str  # "v1" or "v2": the official scorer
    indexed: dict  # what the notes folder holds


def write_notes(data: list[dict], folder: Path, keep: set[int] | None = None) -> list[dict]:
    """One Markdown file per article (those in ``keep``, default all); returns their questions
    with their file, paragraph span and gold answer texts (``[]`` for an unanswerable one)."""
    questions = []
    for n, article in enumerate(data):
        if keep is not None and n not in keep:
            continue
        name = f"{n:02d}-{''.join(c if c.isalnum() else '-' for c in article['title'])[:40]}.md"
        text = f"# {article['title'].replace('_', ' ')}\n\n"
        for paragraph in article["paragraphs"]:
            start = len(text)
            text += paragraph["context"].strip() + "\n\n"
            for qa in paragraph["qas"]:
                questions.append(
                    {
                        "id": qa["id"],
                        "question": qa["question"],
                        "answers": [a["text"] for a in qa["answers"]],
                        "source": name,
                        "span": (start, len(text) - 2),
                    }
                )
        (folder / name).write_text(text, encoding="utf-8")
    return questions


def sample_ids(ids: list[str], limit: int, rng: random.Random) -> set[str]:
    """``limit`` of ``ids`` drawn by ``rng`` (all of them when ``limit`` is 0 or too large)."""
    return set(rng.sample(ids, limit)) if 0 < limit < len(ids) else set(ids)


def sample_squad(source: Path, count: int, out: Path, answerable_only: bool = True) -> Path:
    """Write ``count`` seeded questions of SQuAD file ``source`` to ``out`` (v1.1 layout): the
    same questions every run (the pretraining proxy's sample)."""
    data = read_squad_json(source)
    ids = [
        q["id"]
        for article in data
        for paragraph in article["paragraphs"]
        for q in paragraph["qas"]
        if q.get("answers") or not answerable_only
    ]
    if count > len(ids):
        raise ValueError(f"{source} has {len(ids)} questions; asked for {count}")
    keep = set(random.Random(0).sample(ids, count))  # the same sample every run
    sampled = [
        {
            **article,
            "paragraphs": [
                {**p, "qas": [q for q in p["qas"] if q["id"] in keep]}
                for p in article["paragraphs"]
                if any(q["id"] in keep for q in p["qas"])
            ],
        }
        for article in data
    ]
    sampled = [a for a in sampled if a["paragraphs"]]
    out.write_text(json.dumps({"version": "1.1", "data": sampled}))
    return out


def squad_task(
    path: Path, folder: Path, version: str, limit: int, seed: int, distractors: int | None
) -> Task:
    """SQuAD dev written as notes (whole articles), ``limit`` questions sampled with ``seed``."""
    data = read_squad_json(path)
    article_of = {
        qa["id"]: n for n, a in enumerate(data) for p in a["paragraphs"] for qa in p["qas"]
    }
    rng = random.Random(seed)
    chosen = sample_ids(list(article_of), limit, rng)
    asked_articles = {article_of[i] for i in chosen}
    others = [n for n in range(len(data)) if n not in asked_articles]
    if distractors is not None:
        others = sorted(rng.sample(others, min(distractors, len(others))))
    questions = [
        q for q in write_notes(data, folder, asked_articles | set(others)) if q["id"] in chosen
    ]
    dataset = [
        {
            **article,
            "paragraphs": [
                {**p, "qas": [qa for qa in p["qas"] if qa["id"] in chosen]}
                for p in article["paragraphs"]
            ],
        }
        for article in data
    ]
    indexed = {
        "articles": len(asked_articles) + len(others),
        "of": len(data),
        "with_asked_questions": len(asked_articles),
        "distractors": len(others),
        "whole_articles": True,
    }
    return Task(f"squad-{version}", questions, dataset, version, indexed)


def evidence_span(text: str, evidence: str) -> tuple[int, int] | None:
    """Where ``evidence`` is in ``text``, any run of whitespace matching any other.

    Example:
        >>> evidence_span("a  b\\nc d", "b c")
        (3, 6)
    """
    match = re.search(r"\s+".join(re.escape(word) for word in evidence.split()), text)
    return match.span() if match else None


def notes_dev_task(
    root: Path, folder: Path, limit: int, seed: int, mode: str = "notes-dev"
) -> Task:
    """notes_dev's chapters (or another set in its layout at ``root``) copied to ``folder`` (all
    indexed), ``limit`` questions sampled."""
    shutil.copytree(root / "notes", folder, dirs_exist_ok=True)
    rows = [json.loads(line) for line in (root / "questions.jsonl").read_text().splitlines()]
    chosen = sample_ids([r["id"] for r in rows], limit, random.Random(seed))
    questions = []
    for row in rows:
        if row["id"] not in chosen:
            continue
        span = None
        if row["answers"]:
            text = (folder / row["file"]).read_text(encoding="utf-8")  # newlines as indexed
            span = evidence_span(text, row["evidence"])
            if span is None:
                raise ValueError(
                    f"{row['id']}: its evidence is not in {row['file']}; run the set's checker "
                    f"in {root} (verify.py or check.py)"
                )
        questions.append({**row, "source": row["file"], "span": span})
    dataset = [
        {
            "title": mode,
            "paragraphs": [
                {
                    "context": "",
                    "qas": [
                        {
                            "id": q["id"],
                            "answers": [{"text": a} for a in q["answers"]],
                            "is_impossible": not q["answers"],
                        }
                        for q in questions
                    ],
                }
            ],
        }
    ]
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.md"))
    indexed = {"files": files, "whole_files": True}
    return Task(mode, questions, dataset, "v2", indexed)


def collapse(text: str) -> str:
    return " ".join(text.split())


def paragraph_flags(hits, q: dict) -> list[int]:
    """SQuAD: 1 where a hit overlaps the question's paragraph in its file (in rank order)."""
    lo, hi = q["span"]
    return [int(h.source == q["source"] and h.start < hi and h.end > lo) for h in hits]


def lenient_flags(hits, q: dict) -> list[int]:
    """notes_dev: 1 where a hit of the question's file contains one of the answers."""
    answers = [collapse(a) for a in q["answers"]]
    return [
        int(h.source == q["source"] and any(a in collapse(h.text) for a in answers)) for h in hits
    ]


def strict_flags(hits, q: dict) -> list[int]:
    """notes_dev: 1 where a hit of the question's file contains the evidence, or contains an
    answer and overlaps the evidence's span (a chunk boundary can split the evidence)."""
    lo, hi = q["span"]
    evidence = collapse(q["evidence"])
    return [
        int(bool(found) and (evidence in collapse(h.text) or (h.start < hi and h.end > lo)))
        for h, found in zip(hits, lenient_flags(hits, q), strict=True)
    ]


def retrieval_block(
    qa: NotesQA, questions: list[dict], criteria: dict[str, Callable], depth: int = 20
) -> dict:
    """Recall@1/5/20 and MRR@10 per retrieval mode over ``questions``, for each relevance
    criterion (the scores themselves when there is only one)."""
    result = {}
    for mode in ("dense", "bm25", "hybrid"):
        rankings: dict[str, list[list[int]]] = {name: [] for name in criteria}
        for q in questions:
            hits = qa.search(q["question"], k=depth, mode=mode)
            for name, flags_of in criteria.items():
                # retrieval_scores wants ids: relevant hits are id 0, others their rank
                rankings[name].append([0 if f else r + 1 for r, f in enumerate(flags_of(hits, q))])
        scores = {
            name: {
                key: round(value, 4)
                for key, value in retrieval_scores(
                    ranked, [0] * len(ranked), ks=(1, 5, 20), mrr_at=10
                ).items()
            }
            for name, ranked in rankings.items()
        }
        result[mode] = scores if len(scores) > 1 else next(iter(scores.values()))
    return result


class ReadRecorder:
    """Keeps the last ``reader.read`` call's contexts and (spans, null score) results, so the
    benchmark can find the no-answer score of the passage a top answer came from. It only
    listens: the reader's results pass through unchanged."""

    def __init__(self, reader) -> None:
        self.reader, self.inner = reader, reader.read
        self.last: tuple[list[str], list] | None = None
        reader.read = self

    def __call__(self, question: str, contexts):
        results = self.inner(question, contexts)
        self.last = (list(contexts), results)
        return results

    def null_of(self, answer: Answer) -> float | None:
        """The no-answer score of ``answer``'s passage in the last read, if it was recorded."""
        if self.last is None:
            return None
        for context, (_, null) in zip(*self.last, strict=True):
            if context == answer.context:
                return float(null)
        return None

    def detach(self) -> None:
        del self.reader.read  # the class's method again


def sigmoid(x: float) -> float:
    """Logistic squashing, safe for large ``|x|``.

    Example:
        >>> sigmoid(0.0), round(sigmoid(-1000.0), 3)
        (0.5, 0.0)
    """
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def confidence_of(answer: Answer, null: float | None) -> tuple[float, str]:
    """The top answer's confidence for AURC/ECE, and which one it is (see the module doc)."""
    value = getattr(answer, "confidence", None)
    if value is not None:
        return float(value), "answer.confidence"
    if null is not None:
        return sigmoid(answer.score - null), "sigmoid(score - null)"
    return sigmoid(answer.score), "sigmoid(score)"


@dataclass
class Asked:
    prediction: str  # the top answer with the stored threshold, "" when the reader abstained
    always: str  # the top answer never abstaining ("" only when no span was found at all)
    confidence: float  # of ``always`` (0 when no span was found)
    source: str  # which confidence
    ms: float  # latency of the default ask


def ask_all(qa: NotesQA, questions: list[dict], k: int) -> list[Asked]:
    """Every question asked as the product does; the ones it abstained on asked again never
    abstaining. Only the first ask of each question is timed."""
    recorder = ReadRecorder(qa.reader)
    qa.ask(questions[0]["question"], k=k)  # warm-up, not timed
    out = []
    for q in questions:
        recorder.last = None
        start = time.perf_counter()
        # the default mode, threshold and number of answers: the first is the most confident
        answers = qa.ask(q["question"], k=k)
        ms = (time.perf_counter() - start) * 1000
        prediction = answers[0].text if answers else ""
        if not answers:
            recorder.last = None
            answers = qa.ask(q["question"], k=k, always_answer=True)
        if answers:
            confidence, source = confidence_of(answers[0], recorder.null_of(answers[0]))
        else:
            confidence, source = 0.0, "no span found"
        out.append(Asked(prediction, answers[0].text if answers else "", confidence, source, ms))
    recorder.detach()
    return out


def official_scores(task: Task, predictions: dict[str, str]) -> dict:
    """EM/F1 by the task's official rules (v2: also has_ans and no_ans), rounded."""
    if task.version == "v1":
        s = squad_v1_scores(task.dataset, predictions)
        return {"exact_match": round(s["exact_match"], 2), "f1": round(s["f1"], 2)}
    s = squad_v2_scores(task.dataset, predictions)
    result = {"exact_match": round(s["exact"], 2), "f1": round(s["f1"], 2)}
    for part, key in (("HasAns", "has_ans"), ("NoAns", "no_ans")):
        if f"{part}_total" in s:
            result[key] = {
                "exact_match": round(s[f"{part}_exact"], 2),
                "f1": round(s[f"{part}_f1"], 2),
                "total": s[f"{part}_total"],
            }
    return result


def by_confidence(
    conf: list[float], scored: list[tuple[float, float]], at: float = 0.5
) -> dict[str, dict]:
    """The answers at or above confidence ``at`` and those below it: how many, and the share
    right (F1 >= 0.5; and EM 1). ``scored``: (EM, F1) of each answer.

    Example:
        >>> by_confidence([0.9, 0.7, 0.2], [(1.0, 1.0), (0.0, 0.4), (0.0, 0.6)])["above"]
        {'answers': 2, 'right_f1': 0.5, 'right_em': 0.5}
    """
    block: dict[str, dict] = {}
    for part, keep in (("above", lambda c: c >= at), ("below", lambda c: c < at)):
        rows = [(em, f1) for c, (em, f1) in zip(conf, scored, strict=True) if keep(c)]
        block[part] = {
            "answers": len(rows),
            "right_f1": round(sum(f1 >= 0.5 for _, f1 in rows) / len(rows), 4) if rows else None,
            "right_em": round(sum(em == 1.0 for em, _ in rows) / len(rows), 4) if rows else None,
        }
    return {**block, "at": at, "right": "F1 >= 0.5 (right_f1) or EM (right_em)"}


def selective_block(task: Task, asked: list[Asked], plot: Path) -> dict:
    """AURC, ECE and the risk-coverage plot of the always-answer predictions' confidences."""
    pairs = list(zip(task.questions, asked, strict=True))
    scored = [squad_question_scores(a.always, q["answers"]) for q, a in pairs]
    em = [e for e, _ in scored]
    risk_f1 = [1.0 - f for _, f in scored]
    conf = [a.confidence for a in asked]
    answered = [
        squad_question_scores(a.prediction, q["answers"])[1] for q, a in pairs if a.prediction
    ]
    point = (len(answered) / len(asked), 1.0 - sum(answered) / len(answered) if answered else 0.0)
    sources = Counter(a.source for a in asked)
    block = {
        "confidence_source": dict(sources),
        "aurc": round(aurc(conf, risk_f1), 4),
        "aurc_risk": "1 - F1",
        "aurc_em": round(aurc(conf, [1.0 - e for e in em]), 4),
        "aurc_oracle": round(aurc([-r for r in risk_f1], risk_f1), 4),
        "aurc_random": round(sum(risk_f1) / len(risk_f1), 4),
        "ece": round(expected_calibration_error(conf, em, bins=10), 4),
        "ece_correct": "EM",
        "ece_bins": 10,
        "mean_confidence": round(sum(conf) / len(conf), 4),
        "accuracy_em": round(sum(em) / len(em), 4),
        "operating_point": {"coverage": round(point[0], 4), "risk": round(point[1], 4)},
        "by_confidence": by_confidence(conf, scored),
        "over": "the always-answer predictions of all asked questions",
        "plot": str(plot),
    }
    label = "/".join(sources)
    save_plot(plot, task.mode, conf, risk_f1, point, label, block)
    return block


def save_plot(
    path: Path,
    mode: str,
    conf: list[float],
    risk: list[float],
    point: tuple[float, float],
    label: str,
    block: dict,
) -> None:
    """The risk-coverage curve of ``conf`` against the oracle order and the stored threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot(*risk_coverage(conf, risk), label=f"{label}: AURC {block['aurc']:.3f}")
    oracle = risk_coverage([-r for r in risk], risk)
    ax.plot(*oracle, "--", label=f"oracle order: AURC {block['aurc_oracle']:.3f}")
    ax.axhline(block["aurc_random"], ls=":", c="gray", label="no order (overall risk)")
    ax.plot(*point, "o", c="red", label="stored null threshold")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="coverage (share of questions answered, most confident first)",
        ylabel="risk (1 - F1 of the answered)",
        title=f"notes_qa {mode}: {len(conf)} questions, ECE {block['ece']:.3f} (EM)",
    )
    ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def threshold_sweep(task: Task, asked: list[Asked], thresholds: list[float]) -> dict:
    """The official scores had the product abstained below each of ``thresholds`` (answers'
    ``confidence``), from the same never-abstaining answers: the trade ``--min-confidence``
    moves, without asking again."""
    sweep = {}
    for threshold in thresholds:
        predictions = {
            q["id"]: (a.always if a.confidence >= threshold else "")
            for q, a in zip(task.questions, asked, strict=True)
        }
        scores = official_scores(task, predictions)
        scores["answered"] = round(sum(map(bool, predictions.values())) / len(predictions), 4)
        if not task.mode.startswith("squad"):
            unanswerable = [q for q in task.questions if not q["answers"]]
            scores["unanswerable_abstained"] = sum(not predictions[q["id"]] for q in unanswerable)
        sweep[f"{threshold:g}"] = scores
    return sweep


def reader_block(
    qa: NotesQA, task: Task, answerable: list[dict], k: int, plot: Path, sweep: list[float]
) -> dict:
    """Every question asked: official scores, abstentions, always-answer scores, the selective
    block, the latency of ``ask`` and the scores at each ``sweep`` threshold (``--sweep``)."""
    result: dict = {}
    asked = ask_all(qa, task.questions, k)
    predictions = {q["id"]: a.prediction for q, a in zip(task.questions, asked, strict=True)}
    result.update(official_scores(task, predictions))
    if not task.mode.startswith("squad"):
        unanswerable = [q for q in task.questions if not q["answers"]]
        result["unanswerable_abstained"] = {
            "correct": sum(not predictions[q["id"]] for q in unanswerable),
            "of": len(unanswerable),
        }
        result["answerable_abstained"] = {
            "count": sum(not predictions[q["id"]] for q in answerable),
            "of": len(answerable),
        }
    result["answered"] = round(sum(bool(a.prediction) for a in asked) / len(asked), 4)
    always = {q["id"]: a.always for q, a in zip(task.questions, asked, strict=True)}
    result["always_answer"] = official_scores(task, always)
    result["selective"] = selective_block(task, asked, plot)
    if sweep:
        result["by_min_confidence"] = threshold_sweep(task, asked, sweep)
    latencies = [a.ms for a in asked]
    result["ask_latency_ms"] = {
        "p50": round(float(np.percentile(latencies, 50)), 1),
        "p95": round(float(np.percentile(latencies, 95)), 1),
    }
    return result


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DATA), help="the shared data folder (%(default)s)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--squad", choices=("v1", "v2"), help="SQuAD dev as notes (default v1)")
    which.add_argument("--notes-dev", action="store_true", help="notes_dev's D2L chapters")
    which.add_argument(
        "--notes-set",
        type=Path,
        help="another set in notes_dev's layout (notes/, questions.jsonl), e.g. "
        "benchmarks/data/econ_notes",
    )
    parser.add_argument("--limit", type=int, default=0, help="sample N questions (0: all)")
    parser.add_argument("--seed", type=int, default=0, help="of the --limit sample")
    parser.add_argument(
        "--distractors",
        type=int,
        help="SQuAD: index the sampled questions' articles plus this many others (default: all)",
    )
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--no-retrieval", action="store_true", help="skip retrieval recall")
    only.add_argument("--no-reader", action="store_true", help="retrieval recall only: ask nothing")
    parser.add_argument("--plot", type=Path, help="default: build/risk_coverage_<mode>.png")
    parser.add_argument("--embedder", help="default: the shipped one")
    parser.add_argument("--reader", help="default: the shipped one")
    parser.add_argument("-k", type=int, default=5, help="passages the reader reads per question")
    add_window_options(parser, "every passage")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--sweep",
        type=float,
        nargs="+",
        default=[],
        metavar="P",
        help="also score abstaining below each confidence P (by_min_confidence), e.g. 0.1 0.2 0.3",
    )
    args = parser.parse_args()
    if args.limit < 0 or (args.distractors is not None and args.distractors < 0):
        parser.error("--limit and --distractors must be 0 or more")
    return args


def main() -> None:
    args = parse_args()
    started = time.time()
    torch.set_num_threads(args.threads)
    windows = window_options(args)
    data = Path(args.data)
    with tempfile.TemporaryDirectory(prefix="notesqa-bench-") as tmp:
        notes = Path(tmp) / "notes"
        notes.mkdir()
        if args.notes_dev:
            task = notes_dev_task(data / "notes_dev", notes, args.limit, args.seed)
        elif args.notes_set:
            mode = args.notes_set.resolve().name.replace("_", "-")
            task = notes_dev_task(args.notes_set, notes, args.limit, args.seed, mode)
        else:
            version = args.squad or "v1"
            name = "dev-v1.1.json.gz" if version == "v1" else "dev-v2.0.json.gz"
            path = data / "squad" / name
            task = squad_task(path, notes, version, args.limit, args.seed, args.distractors)
        plot = args.plot or ROOT / "build" / f"risk_coverage_{task.mode}.png"
        qa = NotesQA.open(notes, embedder=args.embedder, reader=args.reader, windows=windows)
        _ = (qa.embedder, qa.reader)  # load the models before timing
        summary = qa.index(progress=False)
        task.indexed["chunking"] = qa.stats().get("chunking")

        result: dict = {"mode": task.mode}
        answerable = [q for q in task.questions if q["answers"]]
        seconds = {"index": round(summary.seconds, 1)}
        if not args.no_reader:
            start = time.perf_counter()
            result.update(reader_block(qa, task, answerable, args.k, plot, args.sweep))
            seconds["ask"] = round(time.perf_counter() - start, 1)
        if not args.no_retrieval:
            start = time.perf_counter()
            if not task.mode.startswith("squad"):
                criteria = {"lenient": lenient_flags, "strict": strict_flags}
            else:
                criteria = {"paragraph": paragraph_flags}
            result["retrieval"] = retrieval_block(qa, answerable, criteria)
            result["retrieval_over"] = len(answerable)
            seconds["retrieval"] = round(time.perf_counter() - start, 1)
        qa.close()
        result.update(
            {
                "questions": len(task.questions),
                "answerable": len(answerable),
                "limit": args.limit,
                "seed": args.seed,
                "indexed": task.indexed,
                "files": summary.files,
                "passages": summary.chunks,
                "vectors": summary.vectors,
                "index_seconds": round(summary.seconds, 1),
                "index_passages_per_s": round(summary.chunks / summary.seconds, 1),
                "windows": windows.to_dict(),
                "k": args.k,
                "threads": args.threads,
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "seconds": seconds,
                "wall_seconds": round(time.time() - started, 1),
            }
        )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
