"""``notesqa mcp``: your notes as Model Context Protocol tools, over stdio, for assistant apps and
editors (the official ``mcp`` SDK's ``MCPServer``).

Tools: ``search_notes``, ``ask_notes`` and ``note_passage``; a resource, ``notes://files``, lists
the indexed notes. Results carry the fields of ``notesqa ask --json``. No tool writes anything,
and ``note_passage`` reads only notes the index holds: any other path is refused. A refused
argument comes back as a tool error naming it, never a crash.

Example (an assistant app's config, e.g. Claude Desktop's ``claude_desktop_config.json``):
    {"mcpServers": {"notes": {"command": "notesqa",
                              "args": ["mcp", "--index", "/home/ada/notes/.notesqa"]}}}
"""

from __future__ import annotations

import json

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from app.notes_service import NotesService
from rag.modes import DEFAULT_MODE

INSTRUCTIONS = (
    "Answers and passages from the user's own study notes, each with its source file and line. "
    "Use ask_notes for a question whose answer is a short span of the notes; it abstains (no "
    "answers) when no span is likely enough to be right, which means the notes probably do not "
    "say it. Use search_notes to read the passages themselves, and note_passage to read more "
    "around a source and line a result gave."
)


def refused(call, *args, **kwargs):
    """The service's answer, or its refusal of an argument as a tool error naming it."""
    try:
        return call(*args, **kwargs)
    except ValueError as error:
        raise ToolError(str(error)) from None


def build_server(service: NotesService) -> MCPServer:
    """The MCP server over ``service`` (one index, opened once)."""
    server = MCPServer("notesqa", instructions=INSTRUCTIONS)

    @server.tool()
    def search_notes(
        query: str,
        k: int = 5,
        mode: str = DEFAULT_MODE,
        tags: list[str] | None = None,
        path_glob: str | None = None,
    ) -> dict:
        """The k (1 to 50) passages of the notes closest to the query, best first, each with its
        text, source file, line and column and file:// uri. mode: hybrid (the default: keywords
        and meaning), rrf, bm25 (keywords) or dense (meaning). tags: only notes with every one
        of these tags; path_glob: only notes whose path matches, e.g. "biology/*"."""
        return refused(service.search, query, k=k, mode=mode, tags=tags or [], path_glob=path_glob)

    @server.tool()
    def ask_notes(
        question: str, min_confidence: float | None = None, always_answer: bool = False
    ) -> dict:
        """Extract answers to the question from the notes, most confident first, each with its
        confidence (the calibrated probability that it is right), source file, line and the
        passage it came from. Abstains, returning no answers, when none reaches min_confidence
        (0 to 1; default: the value stored with the reader): the notes probably do not say it.
        always_answer=true returns the best guesses however unsure."""
        return refused(
            service.ask, question, min_confidence=min_confidence, always_answer=always_answer
        )

    @server.tool()
    def note_passage(source: str, line: int) -> dict:
        """The passage of an indexed note around a line: source as search_notes or ask_notes
        returned it (a path relative to the notes folder), line from 1. Reads only notes of
        the index; any other path is refused."""
        return refused(service.passage, source, line)

    @server.resource(
        "notes://files",
        name="indexed-notes",
        description="Every indexed note: source path, passages and file:// uri.",
        mime_type="application/json",
    )
    def files() -> str:
        return json.dumps(service.files())

    return server
