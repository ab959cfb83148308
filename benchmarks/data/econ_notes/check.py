#!/usr/bin/env python3
"""Check econ_notes/questions.jsonl against the notes in econ_notes/notes (standard library only).

Rules (any failure -> exit status 1):
  * each line is a JSON object with id ("e" + three digits, unique), question, answers, file and a
    kind from KINDS;
  * answerable (answers non-empty): file names a note under notes/; every answer occurs verbatim
    (case-sensitive) in it; no duplicate answers; answers[0] is the shortest; no answer occurs in
    the question (case-insensitive); evidence is present, occurs in the file once whitespace is
    collapsed, and contains at least one answer;
  * unanswerable (answers == []): file is null; absent_terms is a non-empty list and no term occurs
    in any note (case-insensitive, whole word);
  * paraphrase: no run of RUN consecutive words of a question occurs in its file (any note, for
    unanswerable questions);
  * at least MIN_ANSWERABLE answerable and MIN_UNANSWERABLE unanswerable questions.
Prints counts by kind and by file. Usage: python3 check.py (paths are relative to this file).
"""

from __future__ import annotations

import collections
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
KINDS = ("number", "factoid", "definition", "reason", "how")
RUN = 8
MIN_ANSWERABLE, MIN_UNANSWERABLE = 38, 10
LONG_ANSWER = 8  # words; longer answers[0] are reported, not failed


def collapse(text: str) -> str:
    return " ".join(text.split())


def tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def runs(words: list[str], n: int = RUN) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def whole_word(term: str, text: str) -> bool:
    pattern = r"(?<!\w)" + r"\s+".join(map(re.escape, term.split())) + r"(?!\w)"
    return re.search(pattern, text, re.IGNORECASE) is not None


def check_answerable(q: dict, notes: dict[str, str], grams: dict, errs: list[str]) -> None:
    qid, question, answers, fname = q["id"], q["question"], q["answers"], q["file"]
    if fname not in notes:
        errs.append(f"{qid}: file {fname!r} is not a note")
        return
    text = notes[fname]
    errs += [f"{qid}: answer {a!r} not verbatim in {fname}" for a in answers if a not in text]
    errs += [
        f"{qid}: answer {a!r} occurs in the question"
        for a in answers
        if a.lower() in question.lower()
    ]
    if len(set(answers)) != len(answers):
        errs.append(f"{qid}: duplicate answers")
    if len(answers[0]) > min(map(len, answers)):
        errs.append(f"{qid}: answers[0] is not the shortest answer")
    evidence = q.get("evidence")
    if not isinstance(evidence, str) or collapse(evidence) not in collapse(text):
        errs.append(f"{qid}: evidence missing or not found in {fname}")
    elif not any(a in evidence for a in answers):
        errs.append(f"{qid}: evidence holds none of the answers")
    if runs(tokens(question)) & grams[fname]:
        errs.append(f"{qid}: question shares a run of {RUN} words with {fname}")


def check_unanswerable(q: dict, notes: dict[str, str], grams: dict, errs: list[str]) -> None:
    qid, terms = q["id"], q.get("absent_terms")
    if q["file"] is not None:
        errs.append(f"{qid}: unanswerable question must have file null")
    if not isinstance(terms, list) or not terms or not all(isinstance(t, str) for t in terms):
        errs.append(f"{qid}: absent_terms must be a non-empty list of strings")
        terms = []
    for term in terms:
        hits = [name for name, text in notes.items() if whole_word(term, text)]
        if hits:
            errs.append(f"{qid}: absent term {term!r} occurs in {hits[0]}")
    if runs(tokens(q["question"])) & set().union(*grams.values()):
        errs.append(f"{qid}: question shares a run of {RUN} words with a note")


def main() -> int:
    notes = {
        p.relative_to(HERE / "notes").as_posix(): p.read_text(encoding="utf-8")
        for p in sorted((HERE / "notes").rglob("*.md"))
    }
    if not notes:
        print("no notes under", HERE / "notes")
        return 1
    grams = {name: runs(tokens(text)) for name, text in notes.items()}
    errs: list[str] = []
    seen: set[str] = set()
    table: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    per_file: collections.Counter = collections.Counter()
    long_answers = []
    lines = (HERE / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    for n, line in enumerate(lines, 1):
        try:
            q = json.loads(line)
        except json.JSONDecodeError as e:
            errs.append(f"line {n}: not JSON ({e})")
            continue
        missing = [k for k in ("id", "question", "answers", "file", "kind") if k not in q]
        if missing:
            errs.append(f"line {n}: missing {missing}")
            continue
        qid = q["id"]
        if not re.fullmatch(r"e\d{3}", str(qid)) or qid in seen:
            errs.append(f"line {n}: bad or duplicate id {qid!r}")
        seen.add(qid)
        if q["kind"] not in KINDS:
            errs.append(f"{qid}: kind {q['kind']!r} not in {KINDS}")
        answers = q["answers"]
        if not isinstance(answers, list) or not all(isinstance(a, str) and a for a in answers):
            errs.append(f"{qid}: answers must be a list of non-empty strings")
            continue
        if answers:
            check_answerable(q, notes, grams, errs)
            per_file[q["file"]] += 1
            if len(answers[0].split()) > LONG_ANSWER:
                long_answers.append(qid)
        else:
            check_unanswerable(q, notes, grams, errs)
        table[q["kind"]]["answerable" if answers else "unanswerable"] += 1

    total = collections.Counter()
    print(f"{'kind':<12}{'answerable':>11}{'unanswerable':>13}{'total':>7}")
    for kind in KINDS:
        a, u = table[kind]["answerable"], table[kind]["unanswerable"]
        total.update(answerable=a, unanswerable=u)
        print(f"{kind:<12}{a:>11}{u:>13}{a + u:>7}")
    a, u = total["answerable"], total["unanswerable"]
    print(f"{'all':<12}{a:>11}{u:>13}{a + u:>7}")
    print("answerable per file:")
    for name in notes:
        print(f"  {per_file[name]:>3}  {name}")
    if long_answers:
        print(f"answers[0] longer than {LONG_ANSWER} words: {', '.join(long_answers)}")
    if a < MIN_ANSWERABLE or u < MIN_UNANSWERABLE:
        errs.append(f"need >= {MIN_ANSWERABLE} answerable and >= {MIN_UNANSWERABLE} unanswerable")
    for err in errs:
        print("FAIL", err)
    print("OK" if not errs else f"{len(errs)} failure(s)")
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main())
