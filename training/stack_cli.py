"""``notesqa train all``: remake the shipped stack (tokenizer -> pretraining -> reader ->
embedder -> calibration -> models/) from the data folder, one resumable stage at a time.

Example:
    $ notesqa train all --data-dir ~/data --out ~/runs/stack --dry-run   # stages and estimates
    $ notesqa train all --data-dir ~/data --out ~/runs/stack             # run (rerun resumes)
    $ notesqa train all --smoke --data-dir ~/data --out /tmp/smoke       # the same path, minutes
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from training.stack import Stack, finished, human_minutes, load_stack, mark_finished


def _stage_list(stack: Stack) -> str:
    return "\n".join(
        f"  {i:2d}. {stage.name:<18} {stage.what} (~{human_minutes(stage.reference_minutes)})"
        for i, stage in enumerate(stack.stages, 1)
    )


def run_all(args) -> int:
    from tqdm.auto import tqdm

    from training.cli import add_commands, default_data_dir
    from training.folders import checkpoint_folder
    from training.stack import probe_tokens_per_second

    stack = load_stack(args.stack or ("smoke" if args.smoke else "shipped"))
    runs = Path(args.out)
    models = Path(args.models) if args.models else runs / "models"
    data = Path(args.data_dir or default_data_dir())
    if not data.is_dir():
        raise FileNotFoundError(
            f"no data folder at {data}; pass --data-dir DIR holding squad/, enwiki/, simplewiki/, "
            "stsbenchmark/ and sick/ (or set $NOTESQA_DATA)"
        )
    speed = probe_tokens_per_second(stack.probe_recipe, device=args.device)
    scale = stack.reference_tokens_per_second / speed
    print(
        f"this machine pretrains at {speed:,.0f} tokens/s ({1 / scale:.2f}x the reference: "
        f"{stack.reference_machine}); estimates below are scaled by that"
    )
    folders = {stage.name: stage.folder(runs) for stage in stack.stages}
    folders["models"] = models
    todo = [stage for stage in stack.stages if not finished(runs, stage)]
    for stage in stack.stages:
        done = finished(runs, stage)
        state = (
            f"done in {human_minutes(done['seconds'] / 60)}"
            if done
            else f"~{human_minutes(stage.reference_minutes * scale)}"
        )
        print(f"  {stage.name:<18} {state:<14} {stage.what}")
    left = sum(stage.reference_minutes for stage in todo) * scale
    print(f"{len(todo)} of {len(stack.stages)} stages to run, about {human_minutes(left)} in all")
    if args.dry_run or not todo:
        return 0
    parser = argparse.ArgumentParser(prog="notesqa")
    add_commands(parser.add_subparsers(dest="command"))
    bar = tqdm(total=len(stack.stages), initial=len(stack.stages) - len(todo), unit="stage")
    for stage in todo:
        command = stage.command(data, runs, folders)
        bar.set_description(stage.name)
        bar.write(
            f"== {stage.name}: {stage.what} (~{human_minutes(stage.reference_minutes * scale)})"
            f"\n   notesqa train {' '.join(command)}"
        )
        stage_args = parser.parse_args(["train", *command])
        if hasattr(stage_args, "data_dir"):
            stage_args.data_dir = str(data)
        if getattr(stage_args, "device", "absent") is None:
            stage_args.device = args.device
        started = time.time()
        code = stage_args.func(stage_args)
        if code != 0 or checkpoint_folder(stage.folder(runs)).exists():  # stopped before its end
            bar.close()
            print(f"stage {stage.name} stopped; run the same command again to resume it")
            return code or 3
        mark_finished(runs, stage, time.time() - started, command)
        bar.update(1)
    bar.close()
    print(f"the stack is made; its models are in {models}")
    return 0


def add_train_all(train) -> None:
    """Mount ``notesqa train all``; its --help lists the stages of the shipped stack."""
    shipped = load_stack("shipped")
    p = train.add_parser(
        "all",
        help="remake the whole shipped stack: tokenizer, BERT, reader, embedder, calibration",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=f"{shipped.description}\n\nThe stages, with their time on the reference "
        f"machine ({shipped.reference_machine}); a few seconds of pretraining steps measure "
        "this machine first and scale each estimate:\n"
        f"{_stage_list(shipped)}\n\n"
        "Each stage writes OUT/STAGE and, when it has finished, OUT/.stages/STAGE.json; run "
        "the same command again after a stop and it skips finished stages and resumes the cut-off "
        "one from its checkpoint. The models land in --models (default OUT/models); pass "
        "--models models to replace the shipped ones. --smoke runs the same stages at toy "
        "sizes in a few minutes, to check a machine and the data before a long run.",
    )
    p.add_argument("--out", required=True, help="folder for every stage's run, e.g. ~/runs/stack")
    p.add_argument(
        "--data-dir",
        default=None,
        help="folder holding squad/, enwiki/, simplewiki/, stsbenchmark/, sick/ "
        "(default: $NOTESQA_DATA, then ./data)",
    )
    p.add_argument("--models", help="where the finished models go (default OUT/models)")
    p.add_argument("--smoke", action="store_true", help="toy sizes: the whole path in minutes")
    p.add_argument("--stack", help="another stack file (JSON) instead of the shipped one")
    p.add_argument(
        "--dry-run", action="store_true", help="list the stages and estimates; run nothing"
    )
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.set_defaults(func=run_all)


__all__ = ["add_train_all", "run_all"]
