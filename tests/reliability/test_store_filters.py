"""Tags, headings and the LangChain reader with odd input, through the real ``notesqa`` entry
point: the right passages come back, whole, and nothing raises a traceback (#41 part 7).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.reliability.cli_runner import run

NOTES = {
    # a tag holding the character the store once joined tags with, and a colon
    "odd.md": '---\ntags: [a\x1fb, "x:1"]\n---\n# Oddities\n\nQuokkas smile in photos.\n',
    "energy.md": "# Énergie libre\n\nGibbs energy decides whether a reaction runs.\n",
    "omega.md": "# Ωmega notes\n\nOmega is the last Greek letter.\n",
    "percent.md": "# 50% rule\n\nHalf of the marks come from the exam.\n",
}


@pytest.fixture(scope="module")
def notes(tmp_path_factory, tiny_embedder_dir) -> Path:
    from rag.pipeline import NotesQA

    root = tmp_path_factory.mktemp("filters") / "notes"
    for rel, text in NOTES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    NotesQA.open(root, embedder=tiny_embedder_dir).index(progress=False)
    return root


@pytest.mark.parametrize(
    ("options", "sources"),
    [
        (["--tag", "a\x1fb"], {"odd.md"}),  # broke every search that met the note, --rebuild too
        (["--tag", "x:1"], {"odd.md"}),
        (["--heading", "énergie"], {"energy.md"}),  # SQLite's LIKE folds ASCII only
        (["--heading", "ÉNERGIE LIBRE"], {"energy.md"}),
        (["--heading", "ωmega"], {"omega.md"}),
        (["--heading", "50%"], {"percent.md"}),  # "%" is itself, no wildcard
        (["--heading", "5_"], set()),  # "_" is itself too
    ],
    ids=repr,
)
def test_tags_and_headings_filter_with_any_character(
    notes, capsys, tiny_embedder_dir, options, sources
):
    index = str(notes / ".notesqa")
    argv = ["search", "anything", "-k", "10", "--json", "--index", index]
    code, out, err = run([*argv, "--embedder", str(tiny_embedder_dir), *options], capsys)
    assert code == 0, err
    hits = json.loads(out)["hits"]
    assert {h["source"] for h in hits} == sources
    for hit in hits:
        if hit["source"] == "odd.md":
            assert hit["tags"] == ["a\x1fb", "x:1"]  # whole, in the note's order


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"question": "Who?", "documents": []}, []),  # nothing retrieved: no answer, no error
        ({"documents": []}, ValueError),
        ({"question": "q", "documents": [object()]}, ValueError),
    ],
    ids=["no documents", "no question", "not a document"],
)
def test_the_langchain_reader_with_odd_input(tiny_reader_dir, given, expected):
    pytest.importorskip("langchain_core")
    from rag.langchain_plugin import NotesReader

    reader = NotesReader(reader=str(tiny_reader_dir))
    if expected is ValueError:
        with pytest.raises(ValueError, match="NotesReader"):
            reader.invoke(given)
    else:
        assert reader.invoke(given) == expected


def test_a_note_over_the_size_limit_is_skipped_with_the_fix_and_read_when_raised(
    tmp_path, capsys, tiny_embedder_dir
):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "small.md").write_text("# Small\n\nQuokkas smile in photos.\n")
    paragraph = "Capybaras are the largest rodents and like warm water. "
    (notes / "big.md").write_text("# Big\n\n" + paragraph * 2_000)  # 110 KB
    models = ["--embedder", str(tiny_embedder_dir)]
    code, out, err = run(["index", str(notes), "--json", "--max-note-mb", "0.1", *models], capsys)
    assert code == 0, err
    skipped = dict(json.loads(out)["skipped"])
    assert "too large" in skipped["big.md"] and "--max-note-mb" in skipped["big.md"]
    code, out, err = run(["index", str(notes), "--json", "--max-note-mb", "1", *models], capsys)
    assert code == 0 and json.loads(out)["added"] == ["big.md"], err
    code, _, err = run(["index", str(notes), "--max-note-mb", "0", *models], capsys)
    assert code == 2 and "--max-note-mb" in err
