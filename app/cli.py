"""The ``notesqa`` command line: index, ask, search, stats, the app, the HTTP API and the MCP
server (``app.api_commands``); the train, eval and plot commands are mounted from
``training.cli``.

Example:
    $ notesqa index ~/notes
    $ notesqa ask "What does Adam keep per parameter?" --index ~/notes/.notesqa --json
    $ notesqa train pretrain --config training/recipes/tiny.json
    $ notesqa eval squad --data dev-v1.1.json.gz --json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import replace

from app.api_commands import add_api_commands
from app.ask_options import abstention, add_reader_options
from app.batch import run_batch
from app.errors import (
    EXPECTED_ERRORS,
    TerminalFormatter,
    count,
    error_message,
    for_terminal,
    quiet_libraries,
    where_to_find_the_index,
)
from app.serve import add_app_command
from app.stats import cmd_stats
from embedder.windows import WindowConfig, trained_windows
from rag.documents import DEFAULT_MAX_NOTE_MB
from rag.modes import DEFAULT_MODE, HYBRID_DENSE_WEIGHT, MODES
from rag.option_types import (
    finite_float,
    model_folder,
    non_negative_int,
    positive_float,
    positive_int,
    print_json,
    unit_interval,
    utf8_text,
)

log = logging.getLogger("notesqa")


# ---------------------------------------------------------------- notes: index / ask / search


def cmd_index(args) -> int:
    from rag.pipeline import NotesQA

    windows = None  # the existing index's, else those the embedder was trained for
    if args.window_stride is not None and args.window_tokens is None:
        raise ValueError("--window-stride needs --window-tokens: pass both, e.g. 32 and 16")
    if args.window_tokens is not None or args.window_vectors:
        trained = trained_windows(args.embedder)
        if args.window_tokens is not None:
            trained = WindowConfig.of(args.window_tokens, args.window_stride, trained.pooled)
        pooled = args.window_vectors == "pooled" if args.window_vectors else trained.pooled
        windows = replace(trained, pooled=pooled)
    qa = NotesQA.open(
        args.notes_dir,
        args.index,
        embedder=args.embedder,
        dim=args.dim,
        windows=windows,
        max_note_mb=args.max_note_mb,
    )
    summary = qa.index(
        progress=not args.json,
        rebuild=args.rebuild,
        index_type=args.index_type,
        optimize=args.optimize,
    )
    if args.json:
        print_json(summary.to_dict())
        return 0
    if summary.repaired:
        print(f"the index was damaged ({for_terminal(summary.repaired)}); rebuilt it from scratch")
    print(
        f"indexed {count(summary.files, 'file')} into {count(summary.chunks, 'passage')} in "
        f"{summary.seconds:.1f} s -> {for_terminal(summary.index_dir)}"
    )
    print(
        f"  {len(summary.added)} added, {len(summary.changed)} changed, "
        f"{len(summary.removed)} removed, {summary.unchanged} unchanged; "
        f"{count(summary.embedded, 'passage')} embedded; {count(summary.vectors, 'vector')}"
    )
    if summary.recall_at_10 is not None:
        print(
            f"  {summary.index_type} index: recall@10 against exact search {summary.recall_at_10:.3f}"
        )
    for path, reason in summary.skipped:
        print(f"  skipped {for_terminal(path)}: {for_terminal(reason)}")
    for path in summary.decoded_with_fallback:
        print(f"  {for_terminal(path)}: not UTF-8, decoded with a fallback encoding")
    return 0


def cmd_watch(args) -> int:
    import threading

    from rag.pipeline import NotesQA
    from rag.watch import NotesWatcher, update_line

    qa = NotesQA.open(
        args.notes_dir, args.index, embedder=args.embedder, max_note_mb=args.max_note_mb
    )
    first = qa.index(progress=not args.json)

    def report(summary) -> None:
        if args.json:
            print(json.dumps({"event": "update", **summary.to_dict()}), flush=True)
        else:
            print(for_terminal(update_line(summary)), flush=True)

    def failed(error: Exception) -> None:
        message = for_terminal(error_message(error))
        print(f"notesqa: warning: index update failed: {message}", file=sys.stderr)

    if args.json:
        print(json.dumps({"event": "ready", **first.to_dict()}), flush=True)
    else:
        print(
            f"watching {for_terminal(qa.notes_dir)} ({count(first.files, 'file')}, "
            f"{count(first.chunks, 'passage')} -> {for_terminal(first.index_dir)}); Ctrl-C stops",
            flush=True,
        )
    with NotesWatcher(qa, debounce=args.debounce, on_update=report, on_error=failed):
        stop = threading.Event()
        try:
            stop.wait(args.seconds)  # None: until Ctrl-C
        except KeyboardInterrupt:
            pass
    return 0


def _search_options(args) -> dict:
    return {
        "mode": args.mode,
        "path_glob": args.filter,
        "heading": args.heading,
        "tags": tuple(args.tag),
    }


def _notes_root(qa) -> str | None:
    """The indexed notes folder (the manifest's ``notes_root``), for paths and links."""
    root = qa.store.manifest.get("notes_root")
    return root if isinstance(root, str) else None


def cmd_ask(args) -> int:
    from app.passages import answer_for_terminal
    from rag.locations import with_links
    from rag.pipeline import NotesQA

    qa = NotesQA.from_index(args.index, embedder=args.embedder, reader=args.reader)
    options = {
        **_search_options(args),
        **abstention(args.min_confidence, args.null_threshold, args.always_answer),
    }
    if args.batch:
        return run_batch(
            args.batch,
            lambda q: {
                "question": q,
                "answers": [
                    with_links(a.to_dict(), _notes_root(qa))
                    for a in qa.ask(q, k=args.k, top_answers=args.answers, **options)
                ],
            },
        )
    if not args.question:
        raise ValueError("no question: pass one, or --batch questions.jsonl")
    answers = qa.ask(args.question, k=args.k, top_answers=args.answers, **options)
    root = _notes_root(qa)
    if args.json:
        records = [with_links(a.to_dict(), root) for a in answers]
        print_json({"question": args.question, "answers": records})
        return 0
    if not answers:
        print("No answer found in your notes (see the closest passages with `notesqa search`).")
        return 0
    for rank, answer in enumerate(answers, 1):
        print(answer_for_terminal(rank, answer, root))
    return 0


def cmd_search(args) -> int:
    from app.passages import hit_for_terminal
    from rag.locations import with_links
    from rag.pipeline import NotesQA

    qa = NotesQA.from_index(args.index, embedder=args.embedder)
    options = _search_options(args)
    if args.batch:
        return run_batch(
            args.batch,
            lambda q: {
                "query": q,
                "hits": [
                    with_links(h.to_dict(), _notes_root(qa))
                    for h in qa.search(q, k=args.k, **options)
                ],
            },
        )
    if not args.query:
        raise ValueError("no query: pass one, or --batch questions.jsonl")
    hits = qa.search(args.query, k=args.k, **options)
    root = _notes_root(qa)
    if args.json:
        print_json({"query": args.query, "hits": [with_links(h.to_dict(), root) for h in hits]})
        return 0
    for rank, hit in enumerate(hits, 1):
        print(hit_for_terminal(rank, hit, root))
    return 0


# ---------------------------------------------------------------- parser


class Parser(argparse.ArgumentParser):
    """argparse, its error lines made inert (they quote the value given, e.g. a file name)."""

    def error(self, message: str):
        super().error(for_terminal(message))


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
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

    def notes_folder_options(p):
        p.add_argument("notes_dir", help="folder of notes")
        p.add_argument("--index", help="index folder (default: NOTES_DIR/.notesqa)")
        p.add_argument(
            "--embedder",
            type=model_folder,
            help="embedder folder, or hf:ORG/NAME (default: the shipped one)",
        )
        p.add_argument(
            "--max-note-mb",
            type=positive_float,
            default=DEFAULT_MAX_NOTE_MB,
            help=f"skip (and list in stats --files) a note over this size in MB (default "
            f"{DEFAULT_MAX_NOTE_MB:g}; a note's text is held whole while it is cut into passages)",
        )

    p = sub.add_parser(
        "index",
        help="index a notes folder (.md, .txt, .html, .pdf; recursively)",
        description="Read the notes, split them into passages, embed them and save the index.",
    )
    notes_folder_options(p)
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
        choices=("auto", "flat", "ivf"),
        help="auto = exact search up to 50,000 vectors (about 7,000 passages) and an inverted "
        "file (IVF) above, whose recall against exact search is printed; flat = always exact; "
        "ivf = always an IVF (default: the index's own, auto for a new one)",
    )
    p.add_argument(
        "--optimize",
        action="store_true",
        help="merge the index's segments into one after updating it (updates add a segment "
        "each; up to 8 are merged as they come, so this is rarely needed)",
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
    p.add_argument(
        "--window-vectors",
        choices=["pooled", "encoded"],
        help="pooled: each passage runs through the embedder once and its windows' vectors are "
        "pooled from that run (late chunking: a third of the embedding work; needs an "
        "embedder trained for it); encoded: each window runs alone (default: the existing index's, else "
        "what the embedder was trained for; changing it re-embeds every passage)",
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
            type=utf8_text,
            metavar="GLOB",
            help="only files whose path matches, e.g. 'biology/*' (applied inside the search)",
        )
        p.add_argument(
            "--heading", type=utf8_text, help="only passages whose heading path contains this text"
        )
        p.add_argument(
            "--tag",
            type=utf8_text,
            action="append",
            default=[],
            metavar="TAG",
            help="only notes with this tag (front matter `tags:` or an inline #tag; `ml` also "
            "matches `ml/optim`); repeat for notes with all of them",
        )
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
    p.add_argument("question", nargs="?", type=utf8_text)
    index_option(p)
    retrieval_options(p, "read", 5)
    p.add_argument("--answers", type=positive_int, default=3, help="answers to show (default 3)")
    add_reader_options(p)
    abstain = p.add_mutually_exclusive_group()
    abstain.add_argument(
        "--null-threshold",
        type=finite_float,
        help="an older single-passage reader: show an answer only when the no-answer score of "
        "its passage beats it by at most this (default: the threshold stored with the reader; "
        "higher abstains less)",
    )
    abstain.add_argument(
        "--min-confidence",
        type=unit_interval,
        metavar="P",
        help="show only answers whose confidence (the calibrated probability that the answer is "
        "right) is at least P, 0 to 1; answers are listed most confident first (default: the "
        "value stored with the reader)",
    )
    abstain.add_argument(
        "--always-answer",
        action="store_true",
        help="never abstain: show the best answers found, however unsure",
    )
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser(
        "watch",
        help="keep a notes folder's index up to date while you edit (Ctrl-C stops)",
        description="Indexes the folder, then re-indexes a moment after files are added, "
        "changed or deleted: only the changed files are re-embedded, and the index is swapped in "
        "atomically, so stopping the watcher at any moment is safe. One line per update.",
    )
    notes_folder_options(p)
    p.add_argument(
        "--debounce",
        type=positive_float,
        default=1.0,
        help="seconds of quiet after a change before re-indexing (default 1)",
    )
    p.add_argument(
        "--seconds", type=positive_float, help="stop after this long (default: run until Ctrl-C)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line, per update")
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser("search", help="show the passages closest to a query")
    p.add_argument("query", nargs="?", type=utf8_text)
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

    add_app_command(sub)
    add_api_commands(sub)

    from training.cli import add_commands

    add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """The ``notesqa`` entry point: expected errors become one line on stderr and exit code 2,
    anything else one line and exit code 1 (its traceback with ``--debug``)."""
    args = build_parser().parse_args(argv)
    handler = logging.StreamHandler()  # used unless logging is set up already (tests, embedding)
    handler.setFormatter(TerminalFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(
        level=logging.INFO if args.verbose or args.debug else logging.WARNING, handlers=[handler]
    )
    if not (args.verbose or args.debug):
        quiet_libraries()
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
        message = error_message(err) + where_to_find_the_index(args, err)
        print(f"notesqa: error: {for_terminal(message)}", file=sys.stderr)
        return 2
    except Exception as err:  # a bug: one line, the traceback behind --debug
        if args.debug:
            raise
        print(
            f"notesqa: unexpected error: {type(err).__name__}: {for_terminal(err)} (run again "
            "with --debug for the traceback, and please report it)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
