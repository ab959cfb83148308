"""``notesqa eval squad``: a reader's SQuAD EM/F1, run as the product runs it.

The answer policy follows the reader, as ``notesqa ask`` does:

* a **multi-passage** reader reads each question's paragraph as a group of one passage
  (``rag.answers.extract_joint_answers``, the retrieval score fixed as
  ``training.calibrate.group_passages`` fixes a missing one); the answer is the most confident of
  its top answers, and it abstains below ``min_confidence``: the calibrator's stored value on
  SQuAD v2.0 (policy ``calibrated``), a number given, or ``None`` never (``always-answer``, the
  default on v1.1, whose every question has an answer and whose official scorer expects one);
* a **single-passage** reader reads each paragraph alone and abstains on v2.0 by its stored
  ``null_threshold`` (``null-threshold``), never on v1.1; it has no confidence to set a bar on.

``always_answer=True`` never abstains. The scores name the policy that ran.

Example (a tiny v2.0-shaped file; the shipped multi-passage reader):
    >>> import json, tempfile
    >>> paragraph = {"context": "Ada Smithson was born in Oslo in 1850.", "qas": [
    ...     {"id": "q1", "question": "When was Ada Smithson born?", "is_impossible": False,
    ...      "answers": [{"text": "1850", "answer_start": 33}]},
    ...     {"id": "q2", "question": "Why did the Roman Empire fall?", "is_impossible": True,
    ...      "answers": []}]}
    >>> path = tempfile.mkdtemp() + "/dev-v2.json"
    >>> _ = open(path, "w").write(json.dumps({"version": "v2.0", "data": [
    ...     {"title": "Ada", "paragraphs": [paragraph]}]}))
    >>> reader = Reader.load()
    >>> scores = evaluate_reader(reader, path, min_confidence=0.9)
    >>> scores["policy"]["name"], scores["policy"]["answered"], scores["NoAns_f1"]
    ('calibrated', 0.0, 100.0)
    >>> evaluate_reader(reader, path, always_answer=True)["policy"]["answered"]
    1.0
"""

from __future__ import annotations

import time
from pathlib import Path

from tqdm.auto import tqdm

from rag.answers import check_confidence, extract_joint_answers
from rag.metrics import is_squad_v2, squad_v1_scores, squad_v2_scores
from rag.reader import STORED, Reader
from training.calibrate import TOP_ANSWERS, group_passages
from training.squad import load_squad

JOINT = "each paragraph read jointly as a group of one passage, as notesqa ask reads passages"
ALONE = "each paragraph read alone (a single-passage reader)"


def predict_squad(
    reader: Reader, examples: list[dict], batch_questions: int = 256, allow_abstain: bool = True
) -> dict[str, str]:
    """A single-passage reader's best answer text per question id ('' when it abstains by its
    stored null threshold; ``allow_abstain=False`` never abstains, as SQuAD v1.1's official
    script expects an answer for every question)."""
    predictions = {}
    for b in tqdm(range(0, len(examples), batch_questions), desc="eval", unit="batch"):
        chunk = examples[b : b + batch_questions]
        for example, (spans, null) in zip(
            chunk, reader.read_pairs([(e["question"], e["context"]) for e in chunk]), strict=True
        ):
            best = spans[0] if spans else None
            abstain = best is None or (allow_abstain and reader.abstains(best, null))
            predictions[example["id"]] = "" if abstain else best.text
    return predictions


def predict_jointly(
    reader: Reader,
    examples: list[dict],
    min_confidence: float | None | str = STORED,
    batch_questions: int = 64,
) -> dict[str, str]:
    """A multi-passage reader's answer per question id as the product gives it: its paragraph a
    group of one passage, the most confident of the top answers, '' below ``min_confidence``."""
    predictions = {}
    for b in tqdm(range(0, len(examples), batch_questions), desc="eval", unit="batch"):
        chunk = examples[b : b + batch_questions]
        groups = [(e["question"], [e["context"]]) for e in chunk]
        for example, reading in zip(chunk, reader.read_groups(groups), strict=True):
            passages = group_passages({"passages": [example["context"]]})
            answers = extract_joint_answers(
                reader, example["question"], passages, TOP_ANSWERS, min_confidence, reading
            )
            predictions[example["id"]] = answers[0].text if answers else ""
    return predictions


def answer_policy(
    reader: Reader,
    v2: bool,
    min_confidence: float | None | str = STORED,
    always_answer: bool = False,
) -> dict:
    """What ``evaluate_reader`` runs: ``name``, ``reading`` and the bar that applies.

    Example (a single-passage reader has no confidence to set a bar on):
        >>> from rag.reader import ReaderSettings
        >>> class Old:
        ...     settings, calibrator, name = ReaderSettings(null_threshold=-1.5), None, "old"
        >>> answer_policy(Old(), v2=True)["null_threshold"]
        -1.5
        >>> answer_policy(Old(), v2=True, min_confidence=0.5)
        Traceback (most recent call last):
        ValueError: --min-confidence 0.5 needs a calibrated multi-passage reader; old is a single-passage one (use --always-answer, or evaluate it by its stored null threshold)
    """
    min_confidence = check_confidence(min_confidence)
    if not reader.settings.multi_passage:
        if min_confidence not in (STORED, None):
            raise ValueError(
                f"--min-confidence {min_confidence:g} needs a calibrated multi-passage reader; "
                f"{reader.name} is a single-passage one (use --always-answer, or evaluate it by "
                "its stored null threshold)"
            )
        if always_answer or min_confidence is None or not v2:
            return {"name": "always-answer", "reading": ALONE}
        return {
            "name": "null-threshold",
            "reading": ALONE,
            "null_threshold": reader.settings.null_threshold,
        }
    calibrator = reader.calibrator
    if min_confidence == STORED:
        stored = calibrator.min_confidence if calibrator is not None else None
        min_confidence = stored if v2 and not always_answer else None
        given = "stored with the reader"
    else:
        given = "given"
    if always_answer or min_confidence is None:
        return {"name": "always-answer", "reading": JOINT, "min_confidence": None}
    return {
        "name": "calibrated" if calibrator is not None else "span-probability",
        "reading": JOINT,
        "min_confidence": min_confidence,
        "min_confidence_from": given,
    }


def evaluate_reader(
    reader: Reader,
    data_path: str | Path,
    limit: int = 0,
    min_confidence: float | None | str = STORED,
    always_answer: bool = False,
) -> dict:
    """Official-style SQuAD scores (v1.1 or v2.0, detected) of ``reader`` under the answer
    policy ``answer_policy`` picks, plus ``examples_per_s`` and ``policy`` (what ran and the
    share of questions ``answered``)."""
    data, examples = load_squad(data_path)
    if limit:
        examples = examples[:limit]
        keep = {e["id"] for e in examples}
        data = [
            {
                **a,
                "paragraphs": [
                    {**p, "qas": [q for q in p["qas"] if q["id"] in keep]} for p in a["paragraphs"]
                ],
            }
            for a in data
        ]
    v2 = is_squad_v2(data)
    policy = answer_policy(reader, v2, min_confidence, always_answer)
    started = time.time()
    if policy["reading"] == JOINT:
        predictions = predict_jointly(reader, examples, policy["min_confidence"])
    else:
        predictions = predict_squad(
            reader, examples, allow_abstain=policy["name"] != "always-answer"
        )
    elapsed = time.time() - started
    scores: dict = squad_v2_scores(data, predictions) if v2 else squad_v1_scores(data, predictions)
    scores["examples_per_s"] = len(examples) / max(elapsed, 1e-9)
    answered = sum(bool(p) for p in predictions.values()) / max(len(predictions), 1)
    scores["policy"] = {**policy, "answered": round(answered, 4)}
    return scores
