"""The training commands of ``notesqa``: ``train ...``, ``eval ...`` and ``plot``.

``app.cli`` mounts them with :func:`add_commands`; each subcommand is one ``_add_*`` function that
declares its options and one ``run_*`` function that does the work. Recipes name their data
relative to a data folder (``--data-dir``, default ``$NOTESQA_DATA`` or ``./data``).

Example:
    $ notesqa train all --data-dir ~/data --out ~/runs/stack        # the whole shipped stack
    $ notesqa train pretrain --config tiny --data-dir ~/data --out runs/tiny
    $ notesqa eval squad --data ~/data/squad/dev-v1.1.json.gz --json
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

from rag.option_types import (
    finite_float,
    model_folder,
    non_negative_int,
    positive_float,
    positive_int,
    print_json,
)

RESUMES = (
    "checkpoint to OUT.checkpoint and stop after this long; the same command resumes (so does "
    "a rerun after Ctrl-C, SIGTERM or a crash)"
)


def default_data_dir() -> str:
    """Where recipes find their data unless ``--data-dir`` says: ``$NOTESQA_DATA``, else ``data``."""
    return os.environ.get("NOTESQA_DATA", "data")


def recipe_of(args):
    """The ``--config`` recipe with its data paths under ``--data-dir``."""
    from training.configs import load_recipe

    recipe = load_recipe(args.config)
    recipe.data = recipe.data.under(args.data_dir)
    return recipe


def _recipe_options(p: argparse.ArgumentParser, device: bool = True) -> None:
    p.add_argument(
        "--config", default="tiny", help="JSON recipe or a name in training/recipes (default tiny)"
    )
    p.add_argument(
        "--data-dir",
        default=default_data_dir(),
        help="folder the recipe's data paths are relative to: squad/, enwiki/, simplewiki/, "
        "stsbenchmark/, sick/ (default: $NOTESQA_DATA, then ./data)",
    )
    if device:
        p.add_argument("--device", help="cpu or cuda (default: cuda when available)")


def _finished(out, wanted, what: str) -> int:
    """Print where a finetuning run ended: the model, or the checkpoint to resume from."""
    if Path(out) != Path(wanted):
        print(f"stopped; checkpoint: {out} (run the same command again to resume)")
    else:
        print(f"{what} saved to {out}")
    return 0


# ---------------------------------------------------------------- train tokenizer


def run_tokenizer(args) -> int:
    from training.tokenizer import train_tokenizer

    recipe = recipe_of(args)
    cfg = recipe.tokenizer
    if args.vocab_size:
        cfg.vocab_size = args.vocab_size
    corpus = args.corpus or recipe.data.corpus
    if not corpus:
        raise ValueError("no corpus: pass --corpus FILES (JSONL(.gz) articles or text files)")
    tok = train_tokenizer(corpus, cfg, args.out)
    print(f"saved a {len(tok)}-token WordPiece tokenizer to {args.out}")
    return 0


def _add_tokenizer(train) -> None:
    p = train.add_parser("tokenizer", help="learn a lower-cased WordPiece vocabulary")
    _recipe_options(p, device=False)
    p.add_argument("--corpus", nargs="+", help="JSONL(.gz) articles or plain-text files")
    p.add_argument(
        "--vocab-size", type=positive_int, help="vocabulary size (default from the recipe)"
    )
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=run_tokenizer)


# ---------------------------------------------------------------- train pretrain


def run_pretrain(args) -> int:
    from training.pretrain import pretrain
    from training.tokenizer import train_tokenizer

    recipe = recipe_of(args)
    run = Path(args.out) if args.out else Path("runs") / Path(args.config).stem
    corpus = args.corpus or recipe.data.corpus
    tokenizer_dir = Path(args.tokenizer) if args.tokenizer else run / "tokenizer"
    if not (tokenizer_dir / "tokenizer.json").exists():
        if args.tokenizer:
            raise FileNotFoundError(
                f"no tokenizer.json in {tokenizer_dir}; train one with `notesqa train tokenizer`"
            )
        if not corpus:
            raise ValueError("no corpus: pass --corpus FILES or set data.corpus in the recipe")
        train_tokenizer(corpus, recipe.tokenizer, tokenizer_dir)
    cfg = recipe.pretrain
    if args.init:
        cfg = dataclasses.replace(cfg, init_from=str(args.init))
    out = pretrain(
        cfg, corpus, tokenizer_dir, run, max_minutes=args.max_minutes, device=args.device
    )
    print(f"checkpoint: {out}")
    return 0


def _add_pretrain(train) -> None:
    p = train.add_parser(
        "pretrain",
        help="pretrain BERT from scratch (MLM + NSP); resumable",
        description="Shards the corpus, trains BertForPreTraining and checkpoints. Run the same "
        "command again to resume after a stop. For data parallelism run it under `torchrun "
        "--nproc_per_node N $(which notesqa) train pretrain ...` (batch_size is global).",
    )
    _recipe_options(p)
    p.add_argument("--corpus", nargs="+", help="text files (default: the recipe's data.corpus)")
    p.add_argument("--tokenizer", help="tokenizer folder (default: train one into OUT/tokenizer)")
    p.add_argument("--out", help="run folder (default runs/RECIPE)")
    p.add_argument(
        "--init",
        type=model_folder,
        help="start from this model folder's weights with a fresh optimizer and schedule, e.g. "
        "a second phase at a longer max_seq_length (default: the recipe's init_from)",
    )
    p.add_argument("--max-minutes", type=positive_float, help="checkpoint and stop after this long")
    p.set_defaults(func=run_pretrain)


# ---------------------------------------------------------------- train reader / embedder


def _squad_train(args, recipe) -> str:
    data = args.data or recipe.data.squad_train
    if not data:
        raise ValueError("no training data: pass --data train-v1.1.json(.gz)")
    return data


def run_reader(args) -> int:
    from training.reader import train_reader

    recipe = recipe_of(args)
    out = train_reader(
        recipe.reader, args.init, _squad_train(args, recipe), args.out, device=args.device,
        max_minutes=args.max_minutes,
    )  # fmt: skip
    return _finished(out, args.out, "reader")


def run_embedder(args) -> int:
    from training.biencoder import train_embedder

    recipe = recipe_of(args)
    sts = args.sts if args.sts is not None else recipe.data.sts_train
    out = train_embedder(
        recipe.embedder, args.init, _squad_train(args, recipe), args.out, device=args.device,
        sts_files=sts or None, max_minutes=args.max_minutes,
    )  # fmt: skip
    return _finished(out, args.out, "embedder")


def _add_finetune(train, stage: str, what: str, func) -> argparse.ArgumentParser:
    p = train.add_parser(stage, help=f"finetune a pretrained checkpoint as a {what}")
    _recipe_options(p)
    p.add_argument(
        "--init",
        type=model_folder,
        required=True,
        help="pretrained checkpoint folder (e.g. runs/tiny/model), or hf:ORG/NAME for a Hub model",
    )
    p.add_argument("--data", help="SQuAD v1.1 train JSON(.gz) (default: the recipe's)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--max-minutes", type=positive_float, help=RESUMES)
    p.set_defaults(func=func)
    return p


def _add_reader(train) -> None:
    _add_finetune(train, "reader", "SQuAD extractive reader", run_reader)


def _add_embedder(train) -> None:
    p = _add_finetune(train, "embedder", "bi-encoder (sentence-transformers)", run_embedder)
    p.add_argument(
        "--sts",
        nargs="*",
        help="scored pairs for a CoSENT loss: STS-B sts-train.csv, SICK_train.txt (default: the "
        "recipe's data.sts_train)",
    )


# ---------------------------------------------------------------- multi-passage reader


def run_passage_groups(args) -> int:
    import random

    from training.negative_groups import confident_mistakes
    from training.passage_groups import build_groups, count_kinds, write_groups
    from training.squad import read_squad_json

    recipe = recipe_of(args)
    cfg = recipe.passage_reader
    data = read_squad_json(_squad_train(args, recipe))
    order = list(range(len(data)))
    random.Random(0).shuffle(order)  # the same article split for every recipe
    train = [data[i] for i in order[: cfg.articles]]
    calibration = [data[i] for i in order[cfg.articles : cfg.articles + cfg.calibration_articles]]
    out = Path(args.out)
    for name, articles, questions, seed, candidates in (
        ("calibration", calibration, cfg.calibration_questions, cfg.calibration_seed, 0),
        ("train", train, cfg.questions, cfg.seed, cfg.mining_candidates),
    ):
        groups, extras = build_groups(
            articles, out / f"{name}-notes", cfg.passages, questions, cfg.unanswerable_share,
            seed, embedder=args.embedder, removed_share=cfg.removed_share,
            edited_share=cfg.edited_share, extra_negatives=candidates,
        )  # fmt: skip
        if extras and cfg.mined_negatives:
            groups += confident_mistakes(extras, args.mine_with, cfg.mined_negatives)
        path = write_groups(groups, out / f"{name}-groups.jsonl")
        kinds = ", ".join(f"{kind} {n}" for kind, n in count_kinds(groups).items())
        print(f"{len(groups)} {name} groups ({kinds}) from {len(articles)} articles -> {path}")
    return 0


def _add_passage_groups(train) -> None:
    p = train.add_parser(
        "passage-groups",
        help="SQuAD train articles as notes, each question with the passages retrieval returns",
        description="Lays out the recipe's passage_reader.articles SQuAD train articles (and "
        "calibration_articles more) as Markdown notes, indexes them with the embedder and "
        "retrieves the top passages of sampled questions. Some have no answer, in the recipe's "
        "shares: asked without their own article (off_topic), over their own passages without "
        "the answer's sentences (removed), or edited as SQuAD v2.0's writers did (edited); "
        "mined_negatives more are the removed/edited ones the current reader answers most "
        "confidently (mined). Writes OUT/train-groups.jsonl and OUT/calibration-groups.jsonl for "
        "`notesqa train passage-reader` and `notesqa train calibrate`.",
    )
    _recipe_options(p, device=False)
    p.add_argument("--data", help="SQuAD v1.1 train JSON(.gz) (default: the recipe's)")
    p.add_argument("--embedder", type=model_folder, help="embedder (default: the shipped one)")
    p.add_argument(
        "--mine-with",
        type=model_folder,
        help="calibrated multi-passage reader whose confident mistakes are mined (default: the "
        "shipped one)",
    )
    p.add_argument("--out", required=True, help="output folder, e.g. runs/passage-groups")
    p.set_defaults(func=run_passage_groups)


def run_passage_reader(args) -> int:
    from training.passage_reader import train_passage_reader

    out = train_passage_reader(
        recipe_of(args).passage_reader, args.init, args.groups, args.out, device=args.device,
        max_minutes=args.max_minutes,
    )  # fmt: skip
    return _finished(out, args.out, "multi-passage reader")


def _add_passage_reader(train) -> None:
    p = train.add_parser(
        "passage-reader",
        help="finetune a reader over retrieved passages with shared normalisation",
        description="Clark & Gardner (2018): the start and end scores of every passage of a "
        "question, and a no-answer option, share one softmax, so scores compare across "
        "passages. Starts from a reader folder; resumable.",
    )
    _recipe_options(p)
    p.add_argument("--init", type=model_folder, required=True, help="reader folder to start from")
    p.add_argument("--groups", required=True, help="train-groups.jsonl of `train passage-groups`")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--max-minutes", type=positive_float, help=RESUMES)
    p.set_defaults(func=run_passage_reader)


def run_calibrate(args) -> int:
    from training.calibrate import calibrate_reader

    report = calibrate_reader(
        args.reader,
        args.groups,
        no_answer_share=args.no_answer_share,
        min_confidence=args.min_confidence,
    )
    if args.json:
        return print_json(report)
    held = report["held_out"]
    print(
        f"fusion weight mu {report['mu']}, min_confidence {report['min_confidence']:.3f}; "
        f"held-out ECE {held['ece']:.4f}, answerable F1 {held['f1_has_answer']:.2f}, "
        f"abstained on {held['abstained_no_answer']:.0%} of questions without an answer "
        f"-> {Path(args.reader) / 'notesqa_calibration.json'}"
    )
    return 0


def _add_calibrate(train) -> None:
    p = train.add_parser(
        "calibrate",
        help="fit a multi-passage reader's answer confidence, fusion weight and abstention",
        description="Reads the held-out calibration groups of `train passage-groups`, picks "
        "the fusion weight mu, fits a logistic calibrator (P(answer is right)) and the default "
        "min_confidence, reports the expected calibration error on a held-out part, and writes "
        "notesqa_calibration.json into the reader folder.",
    )
    p.add_argument("--reader", type=model_folder, required=True, help="multi-passage reader folder")
    p.add_argument("--groups", required=True, help="calibration-groups.jsonl")
    p.add_argument(
        "--no-answer-share",
        type=float,
        help="share of questions without an answer to expect: the groups are weighed to it for "
        "the fit and the default min_confidence (default: as they come; halves for the threshold)",
    )
    p.add_argument(
        "--min-confidence",
        type=float,
        help="store this default min_confidence instead of the one chosen on the groups (e.g. one "
        "chosen on your own development questions); the report shows both",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run_calibrate)


# ---------------------------------------------------------------- model folders


def run_export(args) -> int:
    from training.export import export_fp16

    export_fp16(args.model, args.out)
    print(f"exported fp16 copy of {args.model} to {args.out}")
    return 0


def _add_export(train) -> None:
    p = train.add_parser("export", help="write an fp16 safetensors copy of a model folder")
    p.add_argument("--model", required=True, help="model folder to copy")
    p.add_argument("--out", required=True, help="output folder, e.g. models/reader")
    p.set_defaults(func=run_export)


def run_interpolate(args) -> int:
    from training.interpolate import interpolate_models

    out = interpolate_models(args.start, args.end, args.weight, args.out)
    print(f"wrote (1 - {args.weight}) * {args.start} + {args.weight} * {args.end} to {out}")
    return 0


def _add_interpolate(train) -> None:
    p = train.add_parser(
        "interpolate",
        help="mix two sibling model folders' weights: (1 - weight) * FROM + weight * TO",
        description="Weight-space interpolation (WiSE-FT) of a model and a finetuning of it, e.g. "
        "an embedder and its STS stage; benchmarks/tuning/weight_interpolation.py measures the "
        "line.",
    )
    p.add_argument(
        "--from", dest="start", metavar="FOLDER", required=True, help="model at weight 0"
    )
    p.add_argument("--to", dest="end", metavar="FOLDER", required=True, help="model at weight 1")
    p.add_argument("--weight", type=finite_float, required=True, help="between 0 and 1")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=run_interpolate)


def run_whiten(args) -> int:
    from training.squad import load_squad
    from training.whitening import WhiteningSettings, whiten_embedder, whitening_texts

    settings = WhiteningSettings(alpha=args.alpha, centre=args.centre, keep=args.keep)
    texts = whitening_texts(load_squad(args.data)[1], size=args.size)
    out = whiten_embedder(args.model, args.out, texts, settings)
    fitted = sum(len(batch) for batch in texts.values())
    print(f"wrote {args.model} whitened (alpha {settings.alpha}, fit on {fitted} texts) to {out}")
    return 0


def _add_whiten(train) -> None:
    p = train.add_parser(
        "whiten",
        help="append a whitening transform fitted on SQuAD text to an embedder (no training)",
        description="BERT-whitening: fits y = x U diag(s^(-alpha/2)) (x - mean with --centre), "
        "cov = U diag(s) U^T, on the vectors of SQuAD paragraphs and questions and saves it in "
        "the model folder as a Dense + Normalize module; benchmarks/tuning/whitening.py "
        "measures the settings on held-out train articles and dev.",
    )
    p.add_argument("--model", required=True, help="embedder folder to whiten")
    p.add_argument("--data", required=True, help="SQuAD JSON(.gz) whose text fits the transform")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--alpha", type=finite_float, default=0.5, help="1 = full whitening (default 0.5)"
    )
    p.add_argument("--centre", action="store_true", help="subtract the fit mean first")
    p.add_argument(
        "--keep", type=non_negative_int, default=0, help="output dimensions (default: all)"
    )
    p.add_argument(
        "--size", type=positive_int, default=4000, help="paragraphs and questions (each)"
    )
    p.set_defaults(func=run_whiten)


# ---------------------------------------------------------------- mounting


def add_commands(sub) -> None:
    """Mount ``train``, ``eval`` and ``plot`` on the ``notesqa`` parser's subcommands."""
    from training.eval_cli import add_eval_retrieval, add_eval_squad, add_plot
    from training.stack_cli import add_train_all

    train = sub.add_parser(
        "train",
        help="remake the models: a tokenizer, BERT, the reader, the embedder (or all of them)",
        description="Each stage reads a JSON recipe (training/recipes, docs/TRAINING.md) and "
        "resumes where it stopped when run again. `notesqa train all` runs every stage of the "
        "shipped stack in order.",
    ).add_subparsers(dest="stage", required=True, metavar="STAGE")
    add_train_all(train)
    for add in (
        _add_tokenizer,
        _add_pretrain,
        _add_reader,
        _add_embedder,
        _add_passage_groups,
        _add_passage_reader,
        _add_calibrate,
        _add_interpolate,
        _add_whiten,
        _add_export,
    ):
        add(train)
    evaluate = sub.add_parser(
        "eval", help="evaluate a reader (SQuAD) or an embedder (retrieval)"
    ).add_subparsers(dest="task", required=True, metavar="TASK")
    add_eval_squad(evaluate)
    add_eval_retrieval(evaluate)
    add_plot(sub)


__all__ = ["add_commands", "default_data_dir", "recipe_of"]
