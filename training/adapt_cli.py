"""``notesqa adapt`` and ``notesqa train replay-sample`` on the command line (torch is imported
only when one of them runs).

Example:
    $ notesqa adapt ~/notes --minutes 5
    $ notesqa ask "What does Adam keep per parameter?" --index ~/notes/.notesqa   # adapted reader
    $ notesqa ask "What does Adam keep per parameter?" --index ~/notes/.notesqa --base
"""

from __future__ import annotations

import json
from pathlib import Path


def run_adapt(args) -> int:
    from training.adapt import adapt
    from training.configs import AdaptConfig, load_recipe

    cfg = load_recipe(args.config).adapt if args.config else AdaptConfig()
    if args.minutes is not None:
        cfg.minutes = args.minutes
    result = adapt(args.notes_dir, args.index, cfg, base_reader=args.reader, device=args.device)
    if result is None:
        print("stopped; run the same command again to resume where it stopped")
        return 130
    summary = {
        "reader": str(result.reader),
        "steps": result.steps,
        "minutes": result.minutes,
        "notes_tokens": result.notes_tokens,
        "min_confidence": result.calibration.get("min_confidence"),
        "heldout_ece": result.calibration.get("heldout", {}).get("ece"),
        "reindex_needed": False,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(
        f"adapted the reader to {result.notes_tokens:,} tokens of notes in {result.steps} steps "
        f"({result.minutes} min): {result.reader}\n"
        "`notesqa ask`, the app and the LangChain plugin use it from now on (--base: the shipped "
        "one); the embedder is unchanged, so the index needs no re-indexing"
    )
    return 0


def run_replay_sample(args) -> int:
    from training.replay_sample import write_replay_sample

    report = write_replay_sample(
        args.train_groups, args.calibration_groups, args.out, args.train, args.calibration
    )
    print(json.dumps(report, indent=2))
    return 0


def add_adapt(sub) -> None:
    """Mount ``notesqa adapt`` on the ``notesqa`` parser's subcommands."""
    from rag.option_types import model_folder, positive_float

    p = sub.add_parser(
        "adapt",
        help="adapt the reader to your notes' own text in a few minutes (no labels needed)",
        description="Continues the reader's pretraining (masked words and next sentences) on the "
        "notes' text, beside a small replay of SQuAD questions so it keeps answering, then "
        "recalibrates its confidence; stores the adapted reader inside the index, where ask, "
        "the app and the LangChain plugin find it (--base on ask and app uses the shipped one; "
        "deleting INDEX/adapted goes back). Time-boxed, with a progress bar; Ctrl-C stops it "
        "safely and the same command resumes.",
    )
    p.add_argument("notes_dir", help="the notes folder (adapting reads only its notes)")
    p.add_argument("--index", help="its index folder (default: NOTES_DIR/.notesqa)")
    p.add_argument(
        "--minutes", type=positive_float, help="training time box (default 5; 2-10 is typical)"
    )
    p.add_argument("--reader", type=model_folder, help="reader to adapt (default: the shipped one)")
    p.add_argument("--config", help="JSON recipe whose `adapt` section sets the other settings")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run_adapt)


def add_replay_sample(train) -> None:
    """Mount ``notesqa train replay-sample``."""
    p = train.add_parser(
        "replay-sample",
        help="make the SQuAD replay sample `notesqa adapt` ships with (models/replay)",
    )
    p.add_argument("--train-groups", required=True, type=Path, help="groups to train beside notes")
    p.add_argument("--calibration-groups", required=True, type=Path, help="held-out groups")
    p.add_argument("--out", default="models/replay", type=Path)
    p.add_argument("--train", type=int, default=800, help="training groups (default 800)")
    p.add_argument("--calibration", type=int, default=400, help="calibration groups (default 400)")
    p.set_defaults(func=run_replay_sample)
