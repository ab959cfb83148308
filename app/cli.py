"""The ``notesqa`` command line: index, ask, search, stats and the app, and the train/eval commands.

Example:
    $ notesqa index ~/notes
    $ notesqa ask "What does Adam keep per parameter?" --index ~/notes/.notesqa --json
    $ notesqa train pretrain --config training/recipes/tiny.json
    $ notesqa eval squad --data dev-v1.1.json.gz --json
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import logging
import math
import os
import sys
import textwrap
from pathlib import Path

from embedder.windows import WindowConfig
from rag.modes import DEFAULT_MODE, HYBRID_DENSE_WEIGHT, MODES

log = logging.getLogger("notesqa")


def _print_json(payload) -> None:
    print(json.dumps(payload, indent=2, ensure_ascii=False))


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1 (``-k``, ``--answers``)."""
    value = _whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def unit_interval(text: str) -> float:
    """argparse type: a number from 0 to 1 (``--min-confidence``)."""
    value = finite_float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must lie between 0 and 1, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: a whole number of at least 0."""
    value = _whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number above 0 (``--max-minutes``)."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text!r}")
    return value


def finite_float(text: str) -> float:
    """argparse type: a finite number (no nan or inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def port_number(text: str) -> int:
    """argparse type: a TCP port, 1 to 65535."""
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a port is 1 to 65535, got {value}")
    return value


def model_folder(text: str) -> str:
    """argparse type for ``--init`` / model paths: an existing local folder, or ``hf:ORG/NAME``
    for a model on the Hugging Face Hub (only then is anything downloaded)."""
    if text.startswith("hf:"):
        if not text[3:].strip():
            raise argparse.ArgumentTypeError("hf: needs a model name, e.g. hf:prajjwal1/bert-mini")
        return text[3:]
    path = Path(text).expanduser()
    if not path.is_dir():
        raise argparse.ArgumentTypeError(
            f"no model folder at {text}; pass a folder made by `notesqa train`, or "
            f"hf:ORG/NAME for a model on the Hugging Face Hub"
        )
    return str(path)


# ---------------------------------------------------------------- notes: index / ask / search


def cmd_index(args) -> int:
    from rag.pipeline import NotesQA

    windows = None  # the existing index's, else the default
    if args.window_tokens is not None:
        windows = WindowConfig.of(args.window_tokens, args.window_stride)
    elif args.window_stride is not None:
        raise ValueError("--window-stride needs --window-tokens: pass both, e.g. 32 and 16")
    qa = NotesQA.open(
        args.notes_dir, args.index, embedder=args.embedder, dim=args.dim, windows=windows
    )
    summary = qa.index(progress=not args.json, rebuild=args.rebuild, index_type=args.index_type)
    if args.json:
        _print_json(summary.to_dict())
        return 0
    if summary.repaired:
        print(f"the index was damaged ({summary.repaired}); rebuilt it from scratch")
    print(
        f"indexed {summary.files} files into {summary.chunks} passages in {summary.seconds:.1f} s "
        f"-> {summary.index_dir}"
    )
    print(
        f"  {len(summary.added)} added, {len(summary.changed)} changed, "
        f"{len(summary.removed)} removed, {summary.unchanged} unchanged; "
        f"{summary.embedded} passages embedded; {summary.vectors} vectors"
    )
    if summary.recall_at_10 is not None:
        print(
            f"  {summary.index_type} index: recall@10 against exact search {summary.recall_at_10:.3f}"
        )
    for path, reason in summary.skipped:
        print(f"  skipped {path}: {reason}")
    for path in summary.decoded_with_fallback:
        print(f"  {path}: not UTF-8, decoded with a fallback encoding")
    return 0


def _questions(path: str, field: str = "question"):
    """``(id, question)`` pairs from a JSONL file of ``{"id", "question"}`` objects; a bad line
    is an error naming ``path:line`` (checked before its question is answered)."""
    source = Path(path).expanduser()
    if source.is_dir():
        raise IsADirectoryError(f"--batch {path} is a folder; pass a JSONL file of questions")
    if not source.is_file():
        raise FileNotFoundError(f"--batch {path} does not exist; pass a JSONL file of questions")
    expected = f"a JSON object with 'id' and '{field}' on each line"
    with open(source, "rb") as handle:
        for line_no, raw in enumerate(handle, 1):
            where = f"{path}:{line_no}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise ValueError(
                    f"{where}: not UTF-8 (byte {err.start}); save the file as UTF-8"
                ) from None
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(
                    f"{where}: not valid JSON ({err.msg}); expected {expected}"
                ) from None
            if not isinstance(item, dict) or "id" not in item or field not in item:
                raise ValueError(f"{where}: expected {expected}")
            text = item[field]
            if not isinstance(text, str):
                raise ValueError(
                    f"{where}: '{field}' must be a string, got {json.dumps(text)}; expected {expected}"
                )
            if not text.strip():
                raise ValueError(f"{where}: '{field}' is empty; write the {field} or drop the line")
            yield item["id"], text


def _run_batch(path: str, answer) -> int:
    """One JSON line per question of ``path``: ``answer(question)`` plus the question's ``id``."""
    list(_questions(path))  # every line checked before the first (slow) answer
    for qid, question in _questions(path):
        print(json.dumps({"id": qid, **answer(question)}, ensure_ascii=False), flush=True)
    return 0


def _search_options(args) -> dict:
    return {"mode": args.mode, "path_glob": args.filter, "heading": args.heading}


def cmd_ask(args) -> int:
    from rag.pipeline import NotesQA

    qa = NotesQA.from_index(args.index, embedder=args.embedder, reader=args.reader)
    options = _search_options(args)
    if args.always_answer:
        options["null_threshold"] = None
        options["min_confidence"] = None
    elif args.null_threshold is not None:
        options["null_threshold"] = args.null_threshold
    if args.min_confidence is not None:
        options["min_confidence"] = args.min_confidence
    if args.batch:
        return _run_batch(
            args.batch,
            lambda q: {
                "question": q,
                "answers": [
                    a.to_dict() for a in qa.ask(q, k=args.k, top_answers=args.answers, **options)
                ],
            },
        )
    if not args.question:
        raise ValueError("no question: pass one, or --batch questions.jsonl")
    answers = qa.ask(args.question, k=args.k, top_answers=args.answers, **options)
    if args.json:
        _print_json({"question": args.question, "answers": [a.to_dict() for a in answers]})
        return 0
    if not answers:
        print("No answer found in your notes (see the closest passages with `notesqa search`).")
        return 0
    for rank, answer in enumerate(answers, 1):
        where = f"{answer.source}:{answer.start}-{answer.end}"
        heading = f" ({answer.heading})" if answer.heading else ""
        sure = (
            f"confidence {answer.confidence:.0%}"
            if answer.confidence is not None
            else f"score {answer.score:.2f}"
        )
        print(f"{rank}. {' '.join(answer.text.split())}   [{sure}]")
        print(f"   source: {where}{heading}")
        snippet = answer.sentence or " ".join(answer.context.split())
        print(textwrap.indent(textwrap.fill(snippet[:300], 96), "   > "))
    return 0


def cmd_search(args) -> int:
    from rag.pipeline import NotesQA

    qa = NotesQA.from_index(args.index, embedder=args.embedder)
    options = _search_options(args)
    if args.batch:
        return _run_batch(
            args.batch,
            lambda q: {
                "query": q,
                "hits": [h.to_dict() for h in qa.search(q, k=args.k, **options)],
            },
        )
    if not args.query:
        raise ValueError("no query: pass one, or --batch questions.jsonl")
    hits = qa.search(args.query, k=args.k, **options)
    if args.json:
        _print_json({"query": args.query, "hits": [h.to_dict() for h in hits]})
        return 0
    for rank, hit in enumerate(hits, 1):
        heading = f" ({hit.heading})" if hit.heading else ""
        print(f"{rank}. [{hit.score:.3f}] {hit.source}:{hit.start}-{hit.end}{heading}")
        print(textwrap.indent(textwrap.fill(" ".join(hit.text.split())[:300], 96), "   "))
    return 0


def _files(count: int) -> str:
    return f"{count} file" if count == 1 else f"{count} files"


def cmd_stats(args) -> int:
    from rag.pipeline import resolve_index_dir
    from rag.store import NotesStore

    with NotesStore.open(resolve_index_dir(args.index)) as store:
        stats = store.stats()
        if args.files:
            indexed = [{"path": d["path"], "passages": d["num_chunks"]} for d in store.documents()]
            skipped = [{"path": p, "reason": r} for p, r in store.skipped()]
    if args.json:
        if args.files:
            stats = {**stats, "indexed_files": indexed, "skipped_files": skipped}
        _print_json(stats)
        return 0
    for key, value in stats.items():
        print(f"{key:>15}: {value}")
    if args.files:
        print(f"\nindexed ({_files(len(indexed))}):")
        for item in indexed:
            print(f"  {item['path']}  ({item['passages']} passages)")
        print(f"skipped ({_files(len(skipped))}):")
        for item in skipped:
            print(f"  {item['path']}: {item['reason']}")
    return 0


# ---------------------------------------------------------------- training


def _recipe(args):
    from training.configs import load_recipe

    return load_recipe(args.config)


def _run_dir(args, recipe_path: str) -> Path:
    return Path(args.out) if args.out else Path("runs") / Path(recipe_path).stem


def cmd_train_tokenizer(args) -> int:
    from training.tokenizer import train_tokenizer

    cfg = _recipe(args).tokenizer
    if args.vocab_size:
        cfg.vocab_size = args.vocab_size
    corpus = args.corpus or _recipe(args).data.corpus
    if not corpus:
        raise ValueError("no corpus: pass --corpus FILES (JSONL(.gz) articles or text files)")
    tok = train_tokenizer(corpus, cfg, args.out)
    print(f"saved a {len(tok)}-token WordPiece tokenizer to {args.out}")
    return 0


def cmd_train_pretrain(args) -> int:
    from training.pretrain import pretrain
    from training.tokenizer import train_tokenizer

    recipe = _recipe(args)
    run = _run_dir(args, args.config)
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
        cfg,
        corpus,
        tokenizer_dir,
        run,
        max_minutes=args.max_minutes,
        device=args.device,
    )
    print(f"checkpoint: {out}")
    return 0


def cmd_train_reader(args) -> int:
    from training.reader import train_reader

    recipe = _recipe(args)
    data = args.data or recipe.data.squad_train
    if not data:
        raise ValueError("no training data: pass --data train-v1.1.json(.gz)")
    out = train_reader(
        recipe.reader, args.init, data, args.out, device=args.device, max_minutes=args.max_minutes
    )
    if Path(out) != Path(args.out):
        print(f"stopped; checkpoint: {out} (run the same command again to resume)")
        return 0
    print(f"reader saved to {out}")
    return 0


def cmd_train_passage_groups(args) -> int:
    import random

    from training.passage_groups import build_groups, write_groups
    from training.squad import read_squad_json

    recipe = _recipe(args)
    cfg = recipe.passage_reader
    data_path = args.data or recipe.data.squad_train
    if not data_path:
        raise ValueError("no SQuAD train data: pass --data train-v1.1.json(.gz)")
    data = read_squad_json(data_path)
    order = list(range(len(data)))
    random.Random(0).shuffle(order)  # the same article split for every recipe
    train = [data[i] for i in order[: cfg.articles]]
    calibration = [data[i] for i in order[cfg.articles : cfg.articles + cfg.calibration_articles]]
    out = Path(args.out)
    for name, articles, questions, seed in (
        ("calibration", calibration, cfg.calibration_questions, cfg.calibration_seed),
        ("train", train, cfg.questions, cfg.seed),
    ):
        groups = build_groups(
            articles, out / f"{name}-notes", cfg.passages, questions, cfg.unanswerable_share,
            seed, embedder=args.embedder,
        )  # fmt: skip
        path = write_groups(groups, out / f"{name}-groups.jsonl")
        print(f"{len(groups)} {name} groups from {len(articles)} articles -> {path}")
    return 0


def cmd_train_passage_reader(args) -> int:
    from training.passage_reader import train_passage_reader

    recipe = _recipe(args)
    out = train_passage_reader(
        recipe.passage_reader, args.init, args.groups, args.out, device=args.device,
        max_minutes=args.max_minutes,
    )  # fmt: skip
    if Path(out) != Path(args.out):
        print(f"stopped; checkpoint: {out} (run the same command again to resume)")
        return 0
    print(f"multi-passage reader saved to {out}")
    return 0


def cmd_train_calibrate(args) -> int:
    from training.calibrate import calibrate_reader

    report = calibrate_reader(args.reader, args.groups)
    if args.json:
        _print_json(report)
        return 0
    held = report["held_out"]
    print(
        f"fusion weight mu {report['mu']}, min_confidence {report['min_confidence']:.3f}; "
        f"held-out ECE {held['ece']:.4f}, answerable F1 {held['f1_has_answer']:.2f}, "
        f"abstained on {held['abstained_no_answer']:.0%} of questions without an answer "
        f"-> {Path(args.reader) / 'notesqa_calibration.json'}"
    )
    return 0


def cmd_train_embedder(args) -> int:
    from training.biencoder import train_embedder

    recipe = _recipe(args)
    data = args.data or recipe.data.squad_train
    if not data:
        raise ValueError("no training data: pass --data train-v1.1.json(.gz)")
    sts = args.sts if args.sts is not None else recipe.data.sts_train
    corpus = args.corpus if args.corpus is not None else recipe.data.corpus
    exclude = []
    if (
        (recipe.embedder.ict_pairs or recipe.embedder.simcse_sentences)
        and recipe.data.squad_dev
        and Path(recipe.data.squad_dev).is_file()
    ):
        from training.squad import load_squad

        # corpus pairs and sentences never come from the articles the dev evaluation asks about
        exclude = sorted({e["title"] for e in load_squad(recipe.data.squad_dev)[1]})
    out = train_embedder(
        recipe.embedder,
        args.init,
        data,
        args.out,
        device=args.device,
        sts_files=sts or None,
        corpus_files=corpus or None,
        exclude_titles=exclude,
        max_minutes=args.max_minutes,
    )
    if Path(out) != Path(args.out):
        print(f"stopped; checkpoint: {out} (run the same command again to resume)")
        return 0
    print(f"embedder saved to {out}")
    return 0


def _gold_sts_files(args, recipe) -> list[str]:
    """``--sts`` or the recipe's data.sts_train without its .jsonl silver files (the files the
    cross-encoder steps make cannot be their own input)."""
    sts = args.sts or [p for p in recipe.data.sts_train if not p.endswith(".jsonl")]
    if not sts:
        raise ValueError(
            "no gold scored pairs: pass --sts sts-train.csv SICK_train.txt, or set the recipe's "
            "data.sts_train"
        )
    return sts


def cmd_train_cross_encoder(args) -> int:
    from training.biencoder import read_scored_pairs
    from training.cross_encoder import train_cross_encoder

    recipe = _recipe(args)
    sts = _gold_sts_files(args, recipe)
    dev_file = args.dev if args.dev is not None else recipe.data.sts_dev
    out = train_cross_encoder(
        recipe.cross_encoder,
        args.init,
        [pair for path in sts for pair in read_scored_pairs(path)],
        args.out,
        dev_pairs=read_scored_pairs(dev_file) if dev_file else None,
        device=args.device,
        max_minutes=args.max_minutes,
    )
    if Path(out) != Path(args.out):
        print(f"stopped; checkpoint: {out} (run the same command again to resume)")
        return 0
    scores = json.loads((Path(out) / "eval_results.json").read_text())
    dev_note = f"; dev Spearman x 100: {scores['dev_spearman']}" if "dev_spearman" in scores else ""
    print(f"cross-encoder saved to {out}{dev_note}")
    return 0


def cmd_train_silver_sts(args) -> int:
    from embedder import Embedder
    from training.biencoder import read_scored_pairs
    from training.cross_encoder import SimilarityCrossEncoder
    from training.silver_pairs import neighbour_pairs, write_silver_pairs

    recipe = _recipe(args)
    cfg = recipe.silver_pairs
    sts = _gold_sts_files(args, recipe)
    teacher = SimilarityCrossEncoder.load(args.cross_encoder, device=args.device)
    embedder = Embedder.load(args.embedder) if cfg.dense_neighbours else None
    gold = [pair for path in sts for pair in read_scored_pairs(path)]
    pairs = neighbour_pairs(gold, cfg, embedder)
    out = write_silver_pairs(teacher, pairs, args.out, cfg.batch_size)
    print(f"wrote {len(pairs)} silver pairs (from {len(gold)} gold) to {out}")
    return 0


def cmd_export(args) -> int:
    from training.export import export_fp16

    export_fp16(args.model, args.out)
    print(f"exported fp16 copy of {args.model} to {args.out}")
    return 0


def cmd_interpolate(args) -> int:
    from training.interpolate import interpolate_models

    out = interpolate_models(args.start, args.end, args.weight, args.out)
    print(f"wrote (1 - {args.weight}) * {args.start} + {args.weight} * {args.end} to {out}")
    return 0


def cmd_whiten(args) -> int:
    from training.squad import load_squad
    from training.whitening import WhiteningSettings, whiten_embedder, whitening_texts

    settings = WhiteningSettings(alpha=args.alpha, centre=args.centre, keep=args.keep)
    texts = whitening_texts(load_squad(args.data)[1], size=args.size)
    out = whiten_embedder(args.model, args.out, texts, settings)
    fitted = sum(len(batch) for batch in texts.values())
    print(f"wrote {args.model} whitened (alpha {settings.alpha}, fit on {fitted} texts) to {out}")
    return 0


# ---------------------------------------------------------------- evaluation


def cmd_eval_squad(args) -> int:
    from rag.reader import Reader
    from training.reader import evaluate_reader

    reader = Reader.load(args.model)
    overrides = {"max_seq_length": args.max_seq_length, "doc_stride": args.doc_stride}
    reader.settings = dataclasses.replace(
        reader.settings, **{k: v for k, v in overrides.items() if v is not None}
    )
    scores = evaluate_reader(reader, args.data, limit=args.limit)
    if args.json:
        _print_json(scores)
    else:
        for key, value in scores.items():
            print(f"{key:>16}: {value:.2f}")
    return 0


def cmd_eval_retrieval(args) -> int:
    from embedder import Embedder
    from training.biencoder import evaluate_retrieval

    scores = evaluate_retrieval(Embedder.load(args.model, truncate_dim=args.dim), args.data)
    if args.json:
        _print_json(scores)
    else:
        for key, value in scores.items():
            print(f"{key:>16}: {value:.4f}" if isinstance(value, float) else f"{key:>16}: {value}")
    return 0


LOCALHOST = "127.0.0.1"


def cmd_app(args) -> int:
    import importlib.util
    import subprocess

    if importlib.util.find_spec("streamlit") is None:
        raise FileNotFoundError("streamlit is not installed; run `pip install 'notesqa[app]'`")
    folders = []
    for given in args.notes_dir:
        notes = Path(given).expanduser().resolve()
        if not notes.is_dir():
            raise NotADirectoryError(f"{given} is not a folder; pass your notes folder")
        folders.append(str(notes))
    script = Path(__file__).resolve().with_name("streamlit_app.py")
    # the app serves these folders and no other: it has no box for a path of the user's choice
    env = {**os.environ, "NOTESQA_NOTES": os.pathsep.join(folders)}
    for key, value in (("NOTESQA_EMBEDDER", args.embedder), ("NOTESQA_READER", args.reader)):
        if value:
            local = Path(value).expanduser()
            env[key] = str(local.resolve()) if local.exists() else value
    if args.host not in (LOCALHOST, "localhost", "::1"):
        print(
            f"notesqa: warning: serving on {args.host}: anyone who can reach this machine on port "
            f"{args.port} can read the notes in {', '.join(folders)}",
            file=sys.stderr,
        )
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(script),
        "--server.address",
        args.host,
        "--server.port",
        str(args.port),
        "--browser.gatherUsageStats",
        "false",
        "--server.maxUploadSize",
        "5",  # MB, as app/uploads.py enforces
    ]
    return subprocess.call(command, env=env)


def cmd_plot(args) -> int:
    from training.plot import plot_run

    print(plot_run(args.run_dir, args.out))
    return 0


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="notesqa",
        description="Answer questions over your own notes with a BERT you trained yourself.",
        epilog='Start with `notesqa index NOTES_DIR`, then `notesqa ask "your question"`.',
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback of an error (for reports)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def index_option(p):
        p.add_argument("--index", help="index folder (default: $NOTESQA_INDEX, then ./.notesqa)")
        p.add_argument(
            "--embedder",
            type=model_folder,
            help="embedder folder, or hf:ORG/NAME (default: the shipped one)",
        )
        p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser(
        "index",
        help="index a notes folder (.md, .txt, .html, .pdf; recursively)",
        description="Read the notes, split them into passages, embed them and save the index.",
    )
    p.add_argument("notes_dir", help="folder of notes")
    p.add_argument("--index", help="index folder (default: NOTES_DIR/.notesqa)")
    p.add_argument(
        "--embedder",
        type=model_folder,
        help="embedder folder, or hf:ORG/NAME (default: the shipped one)",
    )
    p.add_argument(
        "--rebuild",
        action="store_true",
        help="rebuild from scratch (needed after changing the embedder or --dim)",
    )
    p.add_argument(
        "--dim",
        type=positive_int,
        help="keep the first DIM components of each vector (Matryoshka embedders, e.g. 64 for a "
        "4x smaller index; default: the existing index's size, else the model's full size)",
    )
    p.add_argument(
        "--index-type",
        choices=("flat", "hnsw", "ivfpq"),
        default="flat",
        help="flat = exact (default); hnsw / ivfpq = approximate, for large collections "
        "(recall against exact search is printed)",
    )
    p.add_argument(
        "--window-tokens",
        type=non_negative_int,
        metavar="N",
        help="also embed each passage longer than N tokens as windows of N tokens, and score a "
        "passage over all its vectors (default: the existing index's, else "
        f"{WindowConfig().tokens}; "
        "0 = one vector per passage, a smaller index; changing it re-embeds every passage)",
    )
    p.add_argument(
        "--window-stride",
        type=positive_int,
        metavar="N",
        help="a window starts every N tokens (default: half the window)",
    )
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=cmd_index)

    def retrieval_options(p, what: str, default_k: int) -> None:
        p.add_argument(
            "-k",
            type=positive_int,
            default=default_k,
            help=f"passages to {what} (default {default_k})",
        )
        p.add_argument(
            "--mode",
            choices=MODES,
            default=DEFAULT_MODE,
            help=f"retrieval: hybrid (BM25 and the embedder's scores, normalised and weighed "
            f"{1 - HYBRID_DENSE_WEIGHT:.1f}/{HYBRID_DENSE_WEIGHT:.1f}), rrf (the same two rankings "
            f"by reciprocal rank fusion, equal weights), bm25 (keywords) or dense (the embedder "
            f"alone); default {DEFAULT_MODE}",
        )
        p.add_argument(
            "--filter",
            metavar="GLOB",
            help="only files whose path matches, e.g. 'biology/*' (applied inside the search)",
        )
        p.add_argument("--heading", help="only passages whose heading path contains this text")
        p.add_argument(
            "--batch",
            metavar="JSONL",
            help='read {"id", "question"} lines, write one JSON object per line',
        )

    p = sub.add_parser(
        "ask",
        help="answer a question from the indexed notes, with sources",
        description="Retrieve the top passages and extract answer spans with the reader.",
    )
    p.add_argument("question", nargs="?")
    index_option(p)
    retrieval_options(p, "read", 5)
    p.add_argument("--answers", type=positive_int, default=3, help="answers to show (default 3)")
    p.add_argument("--reader", type=model_folder, help="reader folder (default: the shipped one)")
    abstain = p.add_mutually_exclusive_group()
    abstain.add_argument(
        "--null-threshold",
        type=finite_float,
        help="abstain when the reader's no-answer score beats its best span by more than this "
        "(default: the threshold calibrated and stored with the reader; higher abstains less)",
    )
    abstain.add_argument(
        "--min-confidence",
        type=unit_interval,
        metavar="P",
        help="answer only when the top answer's confidence (the calibrated probability that it "
        "is right) is at least P, 0 to 1 (default: the value stored with the reader)",
    )
    abstain.add_argument(
        "--always-answer",
        action="store_true",
        help="never abstain: always show the best span found",
    )
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("search", help="show the passages closest to a query")
    p.add_argument("query", nargs="?")
    index_option(p)
    retrieval_options(p, "show", 5)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("stats", help="files, passages and settings of an index")
    p.add_argument("--index", help="index folder (default: $NOTESQA_INDEX, then ./.notesqa)")
    p.add_argument(
        "--files",
        action="store_true",
        help="also list every indexed file and every skipped one with the reason",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_stats)

    train = sub.add_parser(
        "train", help="train a tokenizer, BERT, reader, embedder or its STS teacher"
    ).add_subparsers(dest="stage", required=True, metavar="STAGE")

    def recipe_option(p, required=False):
        p.add_argument(
            "--config",
            default="tiny",
            help="JSON recipe or a name in training/recipes (default tiny)",
        )
        p.add_argument("--device", help="cpu or cuda (default: cuda when available)")

    p = train.add_parser("tokenizer", help="learn a lower-cased WordPiece vocabulary")
    p.add_argument("--corpus", nargs="+", help="JSONL(.gz) articles or plain-text files")
    p.add_argument(
        "--vocab-size", type=positive_int, help="vocabulary size (default from the recipe)"
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--config", default="tiny", help="recipe for the other settings")
    p.set_defaults(func=cmd_train_tokenizer)

    p = train.add_parser(
        "pretrain",
        help="pretrain BERT from scratch (MLM + NSP); resumable",
        description="Shards the corpus, trains BertForPreTraining and checkpoints. "
        "Run the same command again to resume after a stop. For data "
        "parallelism run it under `torchrun --nproc_per_node N "
        "$(which notesqa) train pretrain ...` (batch_size is global).",
    )
    recipe_option(p)
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
    p.set_defaults(func=cmd_train_pretrain)

    for stage, func, what in (
        ("reader", cmd_train_reader, "SQuAD extractive reader"),
        ("embedder", cmd_train_embedder, "bi-encoder (sentence-transformers)"),
    ):
        p = train.add_parser(stage, help=f"finetune a pretrained checkpoint as a {what}")
        recipe_option(p)
        p.add_argument(
            "--init",
            type=model_folder,
            required=True,
            help="pretrained checkpoint folder (e.g. runs/tiny/model), or hf:ORG/NAME for a Hub model",
        )
        p.add_argument("--data", help="SQuAD v1.1 train JSON(.gz) (default: the recipe's)")
        p.add_argument("--out", required=True, help="output folder")
        p.add_argument(
            "--max-minutes",
            type=positive_float,
            help="checkpoint to OUT.checkpoint and stop after this long; the same command "
            "resumes (so does a rerun after Ctrl-C, SIGTERM or a crash)",
        )
        if stage == "embedder":
            p.add_argument(
                "--sts",
                nargs="*",
                help="scored pairs for a CoSENT loss: STS-B sts-train.csv, SICK_train.txt, "
                "silver pairs from `notesqa train silver-sts` (.jsonl) (default: the recipe's "
                "data.sts_train)",
            )
            p.add_argument(
                "--corpus",
                nargs="*",
                help="text for the recipe's inverse-cloze pairs (embedder.ict_pairs): JSONL(.gz) "
                "articles or plain text (default: the recipe's data.corpus; its data.squad_dev "
                "articles are left out)",
            )
        p.set_defaults(func=func)

    p = train.add_parser(
        "passage-groups",
        help="SQuAD train articles as notes, each question with the passages retrieval returns",
        description="Lays out the recipe's passage_reader.articles SQuAD train articles (and "
        "calibration_articles more) as Markdown notes, indexes them with the embedder and "
        "retrieves the top passages of sampled questions, some asked over the notes without "
        "their own article (no answer). Writes OUT/train-groups.jsonl and "
        "OUT/calibration-groups.jsonl for `notesqa train passage-reader` and calibration.",
    )
    recipe_option(p)
    p.add_argument("--data", help="SQuAD v1.1 train JSON(.gz) (default: the recipe's)")
    p.add_argument("--embedder", type=model_folder, help="embedder (default: the shipped one)")
    p.add_argument("--out", required=True, help="output folder, e.g. runs/passage-groups")
    p.set_defaults(func=cmd_train_passage_groups)

    p = train.add_parser(
        "passage-reader",
        help="finetune a reader over retrieved passages with shared normalisation",
        description="Clark & Gardner (2018): the start and end scores of every passage of a "
        "question, and a no-answer option, share one softmax, so scores compare across "
        "passages. Starts from a reader folder; resumable.",
    )
    recipe_option(p)
    p.add_argument("--init", type=model_folder, required=True, help="reader folder to start from")
    p.add_argument("--groups", required=True, help="train-groups.jsonl of `train passage-groups`")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--max-minutes",
        type=positive_float,
        help="checkpoint to OUT.checkpoint and stop after this long; the same command resumes",
    )
    p.set_defaults(func=cmd_train_passage_reader)

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
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_train_calibrate)

    p = train.add_parser(
        "cross-encoder",
        help="finetune a checkpoint as a sentence-similarity cross-encoder (labels silver pairs)",
        description="Trains BertForSequenceClassification (one logit) on scored pairs, STS-B "
        "and SICK by default, with binary cross entropy against the [0, 1] scores. Its only use "
        "is teaching: `notesqa train silver-sts` labels new pairs with it. The shipped reader was "
        "the better start tried (it already compares two texts). Resumable.",
    )
    recipe_option(p)
    p.add_argument(
        "--init", type=model_folder, required=True, help="checkpoint folder, e.g. models/reader"
    )
    p.add_argument(
        "--sts",
        nargs="*",
        help="scored pairs: STS-B sts-train.csv, SICK_train.txt (default: the recipe's "
        "data.sts_train, its .jsonl silver files left out)",
    )
    p.add_argument(
        "--dev", help="scored pairs to measure on at the end (default: the recipe's data.sts_dev)"
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--max-minutes",
        type=positive_float,
        help="checkpoint to OUT.checkpoint and stop after this long; the same command resumes",
    )
    p.set_defaults(func=cmd_train_cross_encoder)

    p = train.add_parser(
        "silver-sts",
        help="pair up the gold STS sentences anew and label the pairs with the cross-encoder",
        description="Augmented SBERT: each sentence of the gold pairs is paired with its best "
        "BM25 matches and its nearest neighbours under --embedder (recipe section "
        "silver_pairs), the cross-encoder scores every new pair, and the result is a JSONL file "
        "to list in the embedder recipe's data.sts_train beside the gold files.",
    )
    recipe_option(p)
    p.add_argument(
        "--cross-encoder", required=True, help="folder from `notesqa train cross-encoder`"
    )
    p.add_argument(
        "--embedder",
        help="embedder for the nearest-neighbour pairs (default: the shipped one)",
    )
    p.add_argument(
        "--sts",
        nargs="*",
        help="gold scored pairs (default: the recipe's data.sts_train without .jsonl files)",
    )
    p.add_argument("--out", required=True, help="JSONL file to write, e.g. runs/silver-sts.jsonl")
    p.set_defaults(func=cmd_train_silver_sts)

    p = train.add_parser("export", help="write an fp16 safetensors copy of a model folder")
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_export)

    p = train.add_parser(
        "interpolate",
        help="mix two sibling model folders' weights: (1 - weight) * FROM + weight * TO",
        description="Weight-space interpolation (WiSE-FT) of a model and a finetuning of it, e.g. "
        "an embedder and its STS stage; benchmarks/weight_interpolation.py measures the line.",
    )
    p.add_argument(
        "--from", dest="start", metavar="FOLDER", required=True, help="model at weight 0"
    )
    p.add_argument("--to", dest="end", metavar="FOLDER", required=True, help="model at weight 1")
    p.add_argument("--weight", type=finite_float, required=True, help="between 0 and 1")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_interpolate)

    p = train.add_parser(
        "whiten",
        help="append a whitening transform fitted on SQuAD text to an embedder (no training)",
        description="BERT-whitening: fits y = x U diag(s^(-alpha/2)) (x - mean with --centre), "
        "cov = U diag(s) U^T, on the vectors of SQuAD paragraphs and questions and saves it in "
        "the model folder as a Dense + Normalize module; benchmarks/whitening.py measures the "
        "settings on held-out train articles and dev.",
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
    p.set_defaults(func=cmd_whiten)

    p = sub.add_parser(
        "app",
        help="start the Streamlit notes Q&A app in your browser",
        description="Runs `streamlit run` on notesqa's app (needs the `app` extra). It listens "
        "on 127.0.0.1 unless --host says otherwise, and serves only the folders given here.",
    )
    p.add_argument(
        "notes_dir",
        nargs="*",
        default=["."],
        help="notes folder(s) the app serves, and only these (default: the current folder)",
    )
    p.add_argument(
        "--embedder",
        type=model_folder,
        help="embedder folder, or hf:ORG/NAME (default: the shipped one)",
    )
    p.add_argument("--reader", type=model_folder, help="reader folder (default: the shipped one)")
    p.add_argument("--port", type=port_number, default=8501)
    p.add_argument(
        "--host",
        default=LOCALHOST,
        help=f"address to listen on (default {LOCALHOST}: this machine only); 0.0.0.0 opens the "
        "app and your notes to the network",
    )
    p.set_defaults(func=cmd_app)

    p = sub.add_parser("plot", help="draw a pretraining run's loss/accuracy curves into a PNG")
    p.add_argument("run_dir", help="the folder given to `notesqa train pretrain --out`")
    p.add_argument("--out", help="PNG path (default RUN_DIR/curves.png)")
    p.set_defaults(func=cmd_plot)

    evaluate = sub.add_parser(
        "eval", help="evaluate a reader (SQuAD) or an embedder (retrieval)"
    ).add_subparsers(dest="task", required=True, metavar="TASK")
    p = evaluate.add_parser(
        "squad", help="SQuAD EM/F1 with the official rules (v1.1 or v2.0, detected)"
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
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval_squad)
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
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval_retrieval)
    return parser


def _quiet_libraries() -> None:
    """No per-load progress bars or warnings from transformers: the CLI prints its own lines."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def error_message(err: BaseException) -> str:
    """One sentence for an expected error: the problem and the fix.

    Example:
        >>> error_message(OSError(28, "No space left on device", "notes/.notesqa"))
        'no space left on the device while writing notes/.notesqa; free some space and run the command again (an index being updated keeps its previous version)'
    """
    if isinstance(err, PermissionError):
        where = f" on {err.filename}" if err.filename else ""
        return f"permission denied{where}; check the folder's permissions or choose another folder"
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        where = f" while writing {err.filename}" if err.filename else ""
        return (
            f"no space left on the device{where}; free some space and run the command again "
            "(an index being updated keeps its previous version)"
        )
    if isinstance(err, OSError) and err.errno == errno.EROFS:
        return f"{err.filename or 'the folder'} is on a read-only file system; choose a writable folder"
    if isinstance(err, OSError) and err.errno == errno.ENAMETOOLONG:
        return f"a file name is too long: {err.filename}; use a shorter name"
    if isinstance(err, OSError) and type(err) is OSError:
        where = f": {err.filename}" if err.filename else ""
        return f"{err.strerror or err}{where}"
    return str(err)


EXPECTED_ERRORS = (ValueError, OSError, FloatingPointError)  # OSError covers files and TimeoutError


def main(argv: list[str] | None = None) -> int:
    """The ``notesqa`` entry point: expected errors become one line on stderr and exit code 2,
    anything else one line and exit code 1 (its traceback with ``--debug``)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose or args.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not (args.verbose or args.debug):
        _quiet_libraries()
    try:
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler
        return code
    except BrokenPipeError:
        # the reader of our output went away (`| head -1`): stop quietly, as other tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("notesqa: interrupted", file=sys.stderr)
        return 130
    except EXPECTED_ERRORS as err:
        if args.debug:
            raise
        print(f"notesqa: error: {error_message(err)}", file=sys.stderr)
        return 2
    except Exception as err:  # a bug: one line, the traceback behind --debug
        if args.debug:
            raise
        print(
            f"notesqa: unexpected error: {type(err).__name__}: {err} (run again with --debug "
            "for the traceback, and please report it)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
