"""``notesqa eval squad|retrieval`` and ``notesqa plot``: measure a reader or an embedder, draw a
pretraining run's curves.

Example:
    $ notesqa eval squad --model models/reader --data dev-v1.1.json.gz --limit 2000 --json
    $ notesqa eval squad --data dev-v2.0.json.gz --always-answer     # never abstain
    $ notesqa eval retrieval --data dev-v1.1.json.gz
"""

from __future__ import annotations

import dataclasses

from embedder.onnx_runtime import RUNTIMES
from rag.option_types import (
    model_folder,
    non_negative_int,
    positive_int,
    print_json,
    unit_interval,
)


def _add_runtime_option(p) -> None:
    p.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default="torch",
        help="what runs the model: torch (default: the model as trained, as the model card "
        "measured it) or the ONNX runtimes that notesqa ask uses (embedder.onnx_runtime)",
    )


def run_eval_squad(args) -> int:
    from rag.reader import STORED, Reader
    from training.squad_eval import evaluate_reader

    reader = Reader.load(args.model, runtime=args.runtime)
    overrides = {"max_seq_length": args.max_seq_length, "doc_stride": args.doc_stride}
    reader.settings = dataclasses.replace(
        reader.settings, **{k: v for k, v in overrides.items() if v is not None}
    )
    scores = evaluate_reader(
        reader,
        args.data,
        limit=args.limit,
        min_confidence=STORED if args.min_confidence is None else args.min_confidence,
        always_answer=args.always_answer,
    )
    if args.json:
        return print_json(scores)
    policy = scores.pop("policy")
    for key, value in scores.items():
        print(f"{key:>16}: {value:.2f}")
    print(f"{'policy':>16}: {', '.join(f'{k} {v}' for k, v in policy.items())}")
    return 0


def add_eval_squad(evaluate) -> None:
    p = evaluate.add_parser(
        "squad",
        help="SQuAD EM/F1 with the official rules (v1.1 or v2.0, detected), the reader run as "
        "notesqa ask runs it",
        description="A multi-passage reader reads each question's paragraph as a group of one "
        "passage, answers with its most confident answer and, on v2.0, abstains below the "
        "min_confidence stored with it (v1.1: never, every question has an answer). A "
        "single-passage reader reads each paragraph alone and abstains on v2.0 by its stored "
        "null threshold. The output names the policy that ran.",
    )
    p.add_argument("--model", type=model_folder, help="reader folder (default: the shipped reader)")
    p.add_argument("--data", required=True, help="SQuAD JSON(.gz)")
    p.add_argument(
        "--limit", type=non_negative_int, default=0, help="evaluate only the first N questions"
    )
    p.add_argument(
        "--max-seq-length",
        type=positive_int,
        help="read through windows of this many tokens instead of the reader's own setting",
    )
    p.add_argument(
        "--doc-stride",
        type=positive_int,
        help="overlap of those windows, in tokens (default: the reader's)",
    )
    abstain = p.add_mutually_exclusive_group()
    abstain.add_argument(
        "--min-confidence",
        type=unit_interval,
        metavar="P",
        help="abstain when the most confident answer's confidence is below P, 0 to 1, on v1.1 "
        "too (a calibrated multi-passage reader; default: the value stored with it, on v2.0)",
    )
    abstain.add_argument(
        "--always-answer",
        action="store_true",
        help="never abstain: score the best answer of every question",
    )
    _add_runtime_option(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_eval_squad)


def run_eval_retrieval(args) -> int:
    from embedder import Embedder
    from training.biencoder import evaluate_retrieval

    embedder = Embedder.load(args.model, truncate_dim=args.dim, runtime=args.runtime)
    scores = evaluate_retrieval(embedder, args.data)
    if args.json:
        return print_json(scores)
    for key, value in scores.items():
        print(f"{key:>16}: {value:.4f}" if isinstance(value, float) else f"{key:>16}: {value}")
    return 0


def add_eval_retrieval(evaluate) -> None:
    p = evaluate.add_parser("retrieval", help="find each question's paragraph among all paragraphs")
    p.add_argument(
        "--model", type=model_folder, help="embedder folder (default: the shipped embedder)"
    )
    p.add_argument("--data", required=True, help="SQuAD JSON(.gz)")
    p.add_argument(
        "--dim",
        type=positive_int,
        help="keep the first DIM components of each vector (Matryoshka-trained embedders)",
    )
    _add_runtime_option(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_eval_retrieval)


def run_plot(args) -> int:
    from training.plot import plot_run

    print(plot_run(args.run_dir, args.out))
    return 0


def add_plot(sub) -> None:
    p = sub.add_parser("plot", help="draw a pretraining run's loss/accuracy curves into a PNG")
    p.add_argument("run_dir", help="the folder given to `notesqa train pretrain --out`")
    p.add_argument("--out", help="PNG path (default RUN_DIR/curves.png)")
    p.set_defaults(func=run_plot)
