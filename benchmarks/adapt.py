"""What `notesqa adapt` buys: notes QA before and after adapting the reader to the notes, and what
it forgets of SQuAD.

For each notes set in notes_dev's layout (``notes/`` + ``questions.jsonl``: notes_dev, 12 chapters
of Dive into Deep Learning, and ``benchmarks/data/econ_notes``, OpenStax economics, kept out of
every training corpus), the notes are indexed with the shipped models and every question is asked
as the product asks it (``benchmarks/notes_qa.py``'s ``ask_all``), with the shipped reader
(``base=True``), then after ``notesqa adapt`` (``--minutes``; adapting reads only the notes, never
the questions) with the adapted one. Printed per set: answerable F1 never abstaining and with the
default policy, the unanswerable questions abstained on, and the F1 change with a paired
bootstrap 90% interval (10,000 resamples of the answerable questions). Then the reader alone on a
fixed sample of SQuAD v1.1 dev (``--squad-questions``), shipped against each adapted reader: what
adapting forgets.

Example:
    $ python benchmarks/adapt.py --data ../shared/data                   # 5 minutes a set
    $ python benchmarks/adapt.py --data ../shared/data --minutes 2 5 10  # the sweep
    $ python benchmarks/adapt.py --data ../shared/data --replay-groups 0 2 4  # the SQuAD mix
    {"sets": {"notes-dev": {"base": {...}, "adapted": {"5": {...}}}, ...}, "squad": {...}}
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from notes_qa import ask_all, notes_dev_task, sample_squad  # noqa: E402

from rag.adapted import adapted_dir  # noqa: E402
from rag.metrics import squad_question_scores  # noqa: E402
from rag.pipeline import NotesQA  # noqa: E402
from rag.reader import Reader  # noqa: E402
from training.adapt import adapt  # noqa: E402
from training.configs import AdaptConfig  # noqa: E402
from training.squad_eval import evaluate_reader  # noqa: E402

SETS = {"notes-dev": "notes_dev", "econ-notes": ROOT / "benchmarks" / "data" / "econ_notes"}


def paired_bootstrap(before: list[float], after: list[float], rounds: int = 10_000) -> dict:
    """Mean change ``after - before`` (points) and its 90% percentile interval over resamples of
    the same questions.

    Example:
        >>> out = paired_bootstrap([0.0, 0.5, 1.0, 0.0], [1.0, 0.5, 1.0, 0.0])
        >>> out["change"], out["interval_90"][0] >= 0.0
        (25.0, True)
    """
    diffs = np.asarray(after, dtype=float) - np.asarray(before, dtype=float)  # (n,)
    rng = np.random.default_rng(0)
    means = diffs[rng.integers(0, len(diffs), size=(rounds, len(diffs)))].mean(axis=1)
    low, high = np.percentile(means, [5, 95])
    return {
        "change": round(100 * float(diffs.mean()), 2),
        "interval_90": [round(100 * float(low), 2), round(100 * float(high), 2)],
    }


def score(task, asked) -> dict:
    """Answerable F1 (never abstaining, and the default policy), per question too, and the
    unanswerable questions abstained on."""
    always, default, abstained, unanswerable = [], [], 0, 0
    for q, a in zip(task.questions, asked, strict=True):
        if q["answers"]:
            always.append(squad_question_scores(a.always, q["answers"])[1])
            default.append(squad_question_scores(a.prediction, q["answers"])[1])
        else:
            unanswerable += 1
            abstained += not a.prediction
    return {
        "answerable_f1_always": round(100 * float(np.mean(always)), 2),
        "answerable_f1_default": round(100 * float(np.mean(default)), 2),
        "abstained": f"{abstained} of {unanswerable}",
        "_always": always,
        "_default": default,
    }


def public(block: dict) -> dict:
    return {k: v for k, v in block.items() if not k.startswith("_")}


def arm_label(minutes: float, replay_groups: int, every_replay: list[int]) -> str:
    """``"5.0"``, or ``"5.0/replay-2"`` when several replay settings are compared."""
    return f"{minutes}/replay-{replay_groups}" if len(every_replay) > 1 else str(minutes)


def run_set(
    name: str,
    root: Path,
    minutes: list[float],
    k: int,
    work: Path,
    steps_per_minute: float,
    replay_groups: list[int],
    overrides: dict,
) -> dict:
    notes = work / name
    notes.mkdir()
    task = notes_dev_task(root, notes, 0, 0)
    base = NotesQA.open(notes, base=True)
    base.index(progress=False)
    before = score(task, ask_all(base, task.questions, k))
    base.close()
    result = {"questions": len(task.questions), "base": public(before), "adapted": {}}
    readers = {}
    for minute, groups in itertools.product(minutes, replay_groups):
        label = arm_label(minute, groups, replay_groups)
        started = time.perf_counter()
        steps = round(minute * steps_per_minute) if steps_per_minute else 0
        cfg = AdaptConfig(minutes=minute, steps=steps, replay_groups=groups, **overrides)
        adapted = adapt(notes, cfg=cfg)
        seconds = round(time.perf_counter() - started, 1)
        qa = NotesQA.open(notes)
        after = score(task, ask_all(qa, task.questions, k))
        qa.close()
        readers[label] = work / f"{name}-reader-{label}"
        shutil.copytree(adapted.reader, readers[label])
        result["adapted"][label] = {
            **public(after),
            "change_always": paired_bootstrap(before["_always"], after["_always"]),
            "change_default": paired_bootstrap(before["_default"], after["_default"]),
            "steps": adapted.steps,
            "notes_tokens": adapted.notes_tokens,
            "adapt_seconds": seconds,
        }
        shutil.rmtree(adapted_dir(notes / ".notesqa"))  # the next time box starts from the base
    result["_readers"] = readers
    return result


def config_overrides(pairs: list[str]) -> dict:
    """``KEY=VALUE`` strings as ``AdaptConfig`` fields, each value parsed as its field's type.

    Example:
        >>> config_overrides(["learning_rate=3e-5", "nsp=false"])
        {'learning_rate': 3e-05, 'nsp': False}
    """
    types = {f.name: type(getattr(AdaptConfig(), f.name)) for f in dataclasses.fields(AdaptConfig)}
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in types:
            raise SystemExit(f"--set {pair}: {key!r} is not an AdaptConfig setting")
        kind = types[key]
        out[key] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--minutes", nargs="+", type=float, default=[5.0])
    parser.add_argument("--sets", nargs="+", choices=sorted(SETS), default=sorted(SETS))
    parser.add_argument("--squad-questions", type=int, default=1000)
    parser.add_argument(
        "--steps-per-minute",
        type=float,
        default=0.0,
        help="train minutes x this many steps instead of for the minutes (a machine that is "
        "busy with other work; 0: real minutes). Idle 2-core EPYC Zen 4: see the README",
    )
    parser.add_argument(
        "--replay-groups",
        nargs="+",
        type=int,
        default=[AdaptConfig.replay_groups],
        help="SQuAD replay groups per step to compare (0: MLM on the notes alone)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="another AdaptConfig setting for every arm, e.g. --set learning_rate=3e-5",
    )
    parser.add_argument("-k", type=int, default=5, help="passages read per question")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    overrides = config_overrides(args.set)
    data = Path(args.data)
    started = time.time()
    out: dict = {
        "minutes": args.minutes,
        "steps_per_minute": args.steps_per_minute,
        "replay_groups": args.replay_groups,
        "settings": overrides,
        "sets": {},
        "squad": {},
    }
    with tempfile.TemporaryDirectory(prefix="notesqa-adapt-") as tmp:
        work = Path(tmp)
        readers: dict[str, Path | None] = {"shipped": None}
        for name in args.sets:
            root = SETS[name] if isinstance(SETS[name], Path) else data / SETS[name]
            result = run_set(
                name,
                root,
                args.minutes,
                args.k,
                work,
                args.steps_per_minute,
                args.replay_groups,
                overrides,
            )
            for label, folder in result.pop("_readers").items():
                readers[f"{name}-{label}"] = folder
            out["sets"][name] = result
        if args.squad_questions:
            sample = sample_squad(
                data / "squad" / "dev-v1.1.json.gz", args.squad_questions, work / "squad.json"
            )
            for label, folder in readers.items():
                scores = evaluate_reader(Reader.load(folder), sample, always_answer=True)
                out["squad"][label] = {
                    "exact_match": round(scores["exact_match"], 2),
                    "f1": round(scores["f1"], 2),
                }
    out["squad_questions"] = args.squad_questions
    out["wall_seconds"] = round(time.time() - started, 1)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
