"""The MCP server, started as a subprocess and driven by the official SDK's client over stdio."""

import json
import os
import sys
from pathlib import Path

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from rag.pipeline import NotesQA

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def index(tmp_path, tiny_embedder_dir):
    notes = tmp_path / "notes"
    (notes / "sub").mkdir(parents=True)
    (notes / "sub" / "ada.md").write_text("# Ada\n\nAda Smithson was born in Oslo in 1850.\n")
    (notes / "plain.txt").write_text("Boris Kirason collected clocks from every country.\n")
    (tmp_path / "secret.txt").write_text("not a note")
    NotesQA.open(notes, embedder=tiny_embedder_dir).index(progress=False)
    return notes / ".notesqa"


def _json(result) -> dict:
    assert not result.is_error, result.content
    return result.structured_content or json.loads(result.content[0].text)


async def test_the_tools_answer_with_sources_and_refuse_what_is_not_a_note(
    index, tiny_embedder_dir, tiny_reader_dir
):
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "app.cli", "mcp", "--index", str(index), "--embedder",
              str(tiny_embedder_dir), "--reader", str(tiny_reader_dir)],
        cwd=str(ROOT),
        env=dict(os.environ),  # the SDK passes only a few variables by default
    )  # fmt: skip
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = {t.name: t for t in (await session.list_tools()).tools}
        assert set(tools) == {"search_notes", "ask_notes", "note_passage"}
        assert "abstains" in tools["ask_notes"].description.lower()

        hits = _json(await session.call_tool("search_notes", {"query": "clocks", "k": 2}))["hits"]
        assert {h["source"] for h in hits} == {"plain.txt", "sub/ada.md"}
        asked = _json(
            await session.call_tool(
                "ask_notes", {"question": "Where was Ada Smithson born?", "always_answer": True}
            )
        )
        answer = asked["answers"][0]
        assert {"text", "confidence", "source", "line", "uri"} <= set(answer)
        passage = _json(
            await session.call_tool("note_passage", {"source": answer["source"], "line": 1})
        )
        assert answer["text"] in passage["text"] and passage["source"] == answer["source"]

        outside = await session.call_tool("note_passage", {"source": "../secret.txt", "line": 1})
        assert outside.is_error and "not a note of this index" in outside.content[0].text
        bad = await session.call_tool("search_notes", {"query": "clocks", "k": 500})
        assert bad.is_error and "k must be" in bad.content[0].text
        wrong_type = await session.call_tool("note_passage", {"source": "plain.txt", "line": "x"})
        assert wrong_type.is_error

        listed = (await session.list_resources()).resources
        assert [r.uri for r in listed] == ["notes://files"]
        read = await session.read_resource("notes://files")
        files = json.loads(read.contents[0].text)
        assert sorted(f["source"] for f in files) == ["plain.txt", "sub/ada.md"]
