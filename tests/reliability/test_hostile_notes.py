"""Hostile notes and ignore files, through the real ``notesqa`` entry point: ``index`` finishes in
seconds with exit code 0, a bad ignore line is one warning naming its file and line (the other
lines still apply), and exactly the notes that should be are searchable by their words.

Each row builds a fresh notes folder, runs ``notesqa index`` (timed), then ``notesqa search``
for every note's own word. The warning is read from the log records (pytest holds the log
handlers); the last test runs ``notesqa`` as a process to see it on stderr.
"""

from __future__ import annotations

import codecs
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.reliability.cli_runner import run

KB = 1000
LONG = "a" * 200  # a file name that a backtracking pattern retries at every "a"


@dataclass(frozen=True)
class Hostile:
    """A notes folder (path -> text or bytes), the notes that must be found by their word (each
    note's word is its ``word``), those that must not, and a phrase stderr must say once."""

    files: dict[str, str | bytes]
    found: tuple[str, ...]
    not_found: tuple[str, ...] = ()
    warning: str = ""
    words: dict[str, str] = field(default_factory=dict)  # note -> the word that finds it


def utf(encoding: str, bom: bytes, text: str) -> bytes:
    return bom + text.encode(encoding)


CASES = {
    "a backtracking .gitignore line and a long file name": Hostile(
        {
            ".gitignore": "a*a*a*a*a*a*a*a*a*a*a*a*b\na*a*a*a*a*a*a*a*a*a*a*a*c.md\n",
            f"{LONG}.md": "Kept: the walrus lives here.\n",
            f"{LONG}c.md": "Ignored: the narwhal lives here.\n",
        },
        found=(f"{LONG}.md",),
        not_found=(f"{LONG}c.md",),
        words={f"{LONG}.md": "walrus", f"{LONG}c.md": "narwhal"},
    ),
    "a half-typed .notesqaignore (a lone !)": Hostile(
        {
            ".notesqaignore": "drafts/\n!\n",
            "drafts/idea.md": "A draft about the narwhal.\n",
            "lecture.md": "A lecture about the walrus.\n",
        },
        found=("lecture.md",),
        not_found=("drafts/idea.md",),
        warning=".notesqaignore:2: ignored the pattern '!' (a lone '!' brings back nothing); "
        "fix or remove it",
        words={"lecture.md": "walrus", "drafts/idea.md": "narwhal"},
    ),
    "a bad range in the top .gitignore": Hostile(
        {
            ".gitignore": "[z-a]\n*.tmp.md\n",
            "scratch.tmp.md": "Scratch about the narwhal.\n",
            "lecture.md": "A lecture about the walrus.\n",
        },
        found=("lecture.md",),
        not_found=("scratch.tmp.md",),
        warning=".gitignore:1: ignored the pattern '[z-a]' (bad character range z-a); "
        "fix or remove it",
        words={"lecture.md": "walrus", "scratch.tmp.md": "narwhal"},
    ),
    "a bad range in a nested .gitignore": Hostile(
        {
            "course/.gitignore": "# generated\n[z-a]\nscratch.md\n",
            "course/scratch.md": "Scratch about the narwhal.\n",
            "course/week1.md": "Week one: the walrus.\n",
        },
        found=("course/week1.md",),
        not_found=("course/scratch.md",),
        warning="course/.gitignore:2: ignored the pattern '[z-a]' (bad character range z-a)",
        words={"course/week1.md": "walrus", "course/scratch.md": "narwhal"},
    ),
    "an unclosed [ in .notesqaignore": Hostile(
        {
            ".notesqaignore": "notes[ab\nold/\n",
            "old/a.md": "Old notes about the narwhal.\n",
            "new.md": "New notes about the walrus.\n",
        },
        found=("new.md",),
        not_found=("old/a.md",),
        warning=".notesqaignore:1: ignored the pattern 'notes[ab' ('[' is never closed)",
        words={"new.md": "walrus", "old/a.md": "narwhal"},
    ),
    "a folder line after a ! line (git keeps the folder out)": Hostile(
        {
            ".gitignore": "*.tmp.md\n!slides.tmp.md\nprivate/\n",
            "slides.tmp.md": "Slides about the walrus.\n",
            "private/slides.tmp.md": "Private slides about the narwhal.\n",
        },
        found=("slides.tmp.md",),
        not_found=("private/slides.tmp.md",),
        words={"slides.tmp.md": "walrus", "private/slides.tmp.md": "narwhal"},
    ),
    "a .gitignore of 2,000 lines over 300 folders": Hostile(
        {
            ".gitignore": "".join(f"p{i}*q.md\n" for i in range(2000)),
            **{f"d{i}/n.md": f"Note {i}.\n" for i in range(300)},
            "d1/kept.md": "Kept: the walrus.\n",
            "d1/p7xq.md": "Ignored: the narwhal.\n",
        },
        found=("d1/kept.md",),
        not_found=("d1/p7xq.md",),
        words={"d1/kept.md": "walrus", "d1/p7xq.md": "narwhal"},
    ),
    "a .gitignore over 10,000 lines": Hostile(
        {
            ".gitignore": "scratch.md\n" + "x*y\n" * 10_000 + "late.md\n",
            "scratch.md": "Scratch about the narwhal.\n",
            "late.md": "Late notes about the walrus.\n",
        },
        found=("late.md",),
        not_found=("scratch.md",),
        warning=".gitignore is over 1 MB or 10000 lines: only its first 10000 lines apply",
        words={"late.md": "walrus", "scratch.md": "narwhal"},
    ),
    "UTF-16 and UTF-32 notes with a byte-order mark": Hostile(
        {
            "le.md": utf("utf-16-le", codecs.BOM_UTF16_LE, "# Seals\r\n\r\nThe walrus rests.\r\n"),
            "be.txt": utf("utf-16-be", codecs.BOM_UTF16_BE, "The narwhal dives.\n"),
            "wide.md": utf("utf-32-le", codecs.BOM_UTF32_LE, "The dugong grazes.\n"),
        },
        found=("le.md", "be.txt", "wide.md"),
        words={"le.md": "walrus", "be.txt": "narwhal", "wide.md": "dugong"},
    ),
    "Liquid tags that never close": Hostile(
        {"liquid.md": "The walrus rests.\n" + "{% " * (100 * KB // 3)},
        found=("liquid.md",),
        words={"liquid.md": "walrus"},
    ),
    "HTML comments that never close": Hostile(
        {"comments.md": "The walrus rests.\n" + "<!--" * (100 * KB // 4)},
        found=("comments.md",),
        words={"comments.md": "walrus"},
    ),
    "wikilinks that never close": Hostile(
        {"links.md": "The walrus rests.\n" + "[[a|" * (100 * KB // 4)},
        found=("links.md",),
        words={"links.md": "walrus"},
    ),
    "front matter that never closes": Hostile(
        {"front.md": "---\ntitle: The walrus\n" + "key: value\n" * (100 * KB // 11)},
        found=("front.md",),
        words={"front.md": "walrus"},
    ),
    "an HTML page of unclosed tags": Hostile(
        {"page.html": "<p>The walrus rests.</p>" + "<a " * (100 * KB // 3)},
        found=("page.html",),
        words={"page.html": "walrus"},
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_notes_are_indexed_in_seconds(name, tmp_path, capsys, caplog, tiny_embedder_dir):
    case = CASES[name]
    notes = tmp_path / "notes"
    for rel, data in case.files.items():
        path = notes / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    models = ["--embedder", str(tiny_embedder_dir)]
    started = time.perf_counter()
    code, _, err = run(["index", str(notes), *models], capsys)
    took = time.perf_counter() - started
    assert code == 0, err
    assert took < 60, f"notesqa index took {took:.0f} s"  # backtracking took many minutes
    warnings = [r.getMessage() for r in caplog.records if r.name == "rag.ignore"]
    if case.warning:  # on stderr as "WARNING rag.ignore: <message>" (see the test below)
        assert len(warnings) == 1 and case.warning in warnings[0], warnings
        assert warnings[0].startswith(str(notes))  # the ignore file's path as the user gave it
    else:
        assert warnings == []
    index = ["--index", str(notes / ".notesqa"), *models]
    for rel, word in case.words.items():
        code, out, err = run(
            ["search", word, "--mode", "bm25", "--json", "-k", "3", *index], capsys
        )
        assert code == 0, err
        sources = {hit["source"] for hit in json.loads(out)["hits"]}
        assert (rel in sources) == (rel in case.found), (rel, sources)


def test_the_warning_reaches_stderr_of_a_real_process(tmp_path, tiny_embedder_dir):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / ".notesqaignore").write_text("drafts/\n!\n")
    (notes / "lecture.md").write_text("A lecture about the walrus.\n")
    command = [sys.executable, "-c", "import sys; from app.cli import main; sys.exit(main())"]
    done = subprocess.run(
        [*command, "index", str(notes), "--embedder", str(tiny_embedder_dir)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    expected = (
        f"WARNING rag.ignore: {notes / '.notesqaignore'}:2: ignored the pattern '!' "
        "(a lone '!' brings back nothing); fix or remove it"
    )
    assert done.stderr.count(expected) == 1, done.stderr
    assert "Traceback" not in done.stderr
