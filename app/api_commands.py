"""``notesqa serve`` (the local HTTP API) and ``notesqa mcp`` (the MCP server) on the command line;
their packages (the ``serve`` and ``mcp`` extras) are imported only when one of them runs.

Example:
    $ notesqa serve --index ~/notes/.notesqa            # http://127.0.0.1:8765/docs
    $ curl -s localhost:8765/ask -H 'content-type: application/json' \\
        -d '{"question": "What does Adam keep for every parameter?"}'
    $ notesqa mcp --index ~/notes/.notesqa              # MCP over stdio, for an assistant app
"""

from __future__ import annotations

import importlib.util
import sys

from app.ask_options import add_reader_options
from app.serve import LOCALHOST, warn_if_exposed
from rag.option_types import model_folder, port_number


def need(module: str, extra: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise FileNotFoundError(f"{module} is not installed; run `pip install 'notesqa[{extra}]'`")


def open_service(args):
    from app.notes_service import NotesService

    return NotesService(args.index, embedder=args.embedder, reader=args.reader)


def cmd_serve(args) -> int:
    need("fastapi", "serve")
    need("uvicorn", "serve")
    import uvicorn

    from app.http_api import create_app

    warn_if_exposed(args.host, args.port, "the notes of this index")
    api = create_app(open_service(args))
    print(f"notesqa: serving on http://{args.host}:{args.port} (the API at /docs)", file=sys.stderr)
    uvicorn.run(api, host=args.host, port=args.port, log_level="warning")
    return 0


def cmd_mcp(args) -> int:
    need("mcp", "mcp")
    from app.mcp_server import build_server

    build_server(open_service(args)).run("stdio")  # stdout is the protocol's: nothing else
    return 0


def common_options(p) -> None:
    p.add_argument("--index", help="index folder (default: $NOTESQA_INDEX, then ./.notesqa)")
    p.add_argument(
        "--embedder", type=model_folder, help="embedder folder (default: the shipped one)"
    )
    add_reader_options(p)


def add_api_commands(sub) -> None:
    """Mount ``notesqa serve`` and ``notesqa mcp``."""
    p = sub.add_parser(
        "serve",
        help="a local JSON HTTP API over an index (search, ask, stats) for plugins and scripts",
        description="GET /search, POST /ask, POST /ask/batch, GET /stats, GET /health; the "
        "OpenAPI page at /docs. Listens on 127.0.0.1 unless --host says otherwise; needs the "
        "`serve` extra.",
    )
    common_options(p)
    p.add_argument("--host", default=LOCALHOST, help=f"address to listen on (default {LOCALHOST})")
    p.add_argument("--port", type=port_number, default=8765, help="port (default 8765)")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser(
        "mcp",
        help="your notes as MCP tools over stdio, for assistant apps and editors",
        description="Tools search_notes, ask_notes and note_passage, and the resource "
        "notes://files. Register it in the assistant's config as the command `notesqa mcp "
        "--index YOUR_NOTES/.notesqa`; needs the `mcp` extra.",
    )
    common_options(p)
    p.set_defaults(func=cmd_mcp)
