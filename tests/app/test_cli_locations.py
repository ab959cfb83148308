"""`notesqa ask/search` name each source as path:line:col, and --json carries the links."""

from __future__ import annotations

import json
import re

from app.cli import main
from rag.locations import line_and_column

ADA = "# People\n\n## Ada\n\nAda Smithson was born in Oslo in 1850.\n"


def test_search_and_ask_print_clickable_places(
    tmp_path, tiny_embedder_dir, tiny_reader_dir, capsys, monkeypatch
):
    notes = tmp_path / "vault" / "notes"
    (notes / "sub").mkdir(parents=True)
    (notes / "sub" / "ada.md").write_text(ADA)
    (notes / "plain.txt").write_text("Boris Kirason collected clocks from every country.\n")
    models = ["--embedder", str(tiny_embedder_dir)]
    assert main(["index", str(notes), *models, "--json"]) == 0
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)  # the notes are under the current folder: paths relative to it
    index = ["--index", str(notes / ".notesqa")]

    assert main(["search", "Where was Ada born?", "-k", "2", "--json", *index, *models]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert len(hits) == 2
    for hit in hits:
        text = (notes / hit["source"]).read_text()
        assert (hit["line"], hit["column"]) == line_and_column(text, hit["start"])
        assert hit["uri"] == (notes / hit["source"]).as_uri()
        assert "obsidian_uri" not in hit

    assert main(["search", "Where was Ada born?", "-k", "2", *index, *models]) == 0
    printed = re.findall(r"^\d+\. \[[\d.-]+\] (\S+)", capsys.readouterr().out, re.M)
    assert printed == [f"vault/notes/{h['source']}:{h['line']}:{h['column']}" for h in hits]

    (tmp_path / "vault" / ".obsidian").mkdir()  # now the notes are in a vault
    reader = ["--reader", str(tiny_reader_dir), "--always-answer"]
    assert main(["ask", "Where was Ada born?", "--json", *index, *models, *reader]) == 0
    answers = json.loads(capsys.readouterr().out)["answers"]
    assert answers
    for answer in answers:
        text = (notes / answer["source"]).read_text()
        assert (answer["line"], answer["column"]) == line_and_column(text, answer["start"])
        assert answer["obsidian_uri"].startswith("obsidian://open?vault=vault&file=notes%2F")

    assert main(["ask", "Where was Ada born?", *index, *models, *reader]) == 0
    out = capsys.readouterr().out
    assert re.search(r"source: vault/notes/\S+:\d+:\d+", out), out
