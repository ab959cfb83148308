"""Ignore files: gitignore semantics, matching in linear time, and bad lines left out with a
warning naming the file and line."""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.documents import iter_note_files, load_notes
from rag.ignore import MAX_IGNORE_LINES, IgnoreRules, ignore_reason

# (lines of a root .gitignore, path, is a folder, 1-based line that ignores it or None)
SEMANTICS = [
    (["*.tmp"], "a/b/x.tmp", False, 1),  # no "/": at any depth
    (["/x.md"], "x.md", False, 1),  # a leading "/" anchors to the file's folder
    (["/x.md"], "sub/x.md", False, None),
    (["a/x.md"], "sub/a/x.md", False, None),  # an inner "/" anchors too
    (["build/"], "build", True, 1),  # a trailing "/" matches folders only
    (["build/"], "build", False, None),
    (["build/"], "src/build/out.md", False, 1),  # and what is inside them
    (["**/cache"], "a/b/cache", True, 1),
    (["a/**/b.md"], "a/b.md", False, 1),  # "/**/" is zero or more folders
    (["a/**/b.md"], "a/x/y/b.md", False, 1),
    (["a/**"], "a/x/y.md", False, 1),  # "/**" is everything inside
    (["a/**"], "a", False, None),
    (["**"], "any/thing.md", False, 1),
    (["lecture-?.md"], "lecture-3.md", False, 1),
    (["lecture-?.md"], "lecture-10.md", False, None),
    (["week[0-9].md"], "week7.md", False, 1),
    (["week[!0-9].md"], "week7.md", False, None),
    (["week[^0-9].md"], "weekx.md", False, 1),
    (["[[:digit:]]*.md"], "2024.md", False, 1),
    (["\\#hash.md"], "#hash.md", False, 1),  # escaped "#" is no comment
    (["\\!bang.md"], "!bang.md", False, 1),
    (["trailing.md   "], "trailing.md", False, 1),  # trailing spaces are dropped
    (["*.md", "!keep.md"], "keep.md", False, None),  # "!" brings back
    (["!keep.md", "*.md"], "keep.md", False, 2),  # the last matching line wins
    (["drafts/", "!drafts/keep.md"], "drafts/keep.md", False, None),  # out of an ignored folder
    (["drafts/", "!drafts/keep.md"], "drafts/wip.md", False, 1),
    (["*.md", "!drafts/"], "drafts/x.md", False, 1),  # a "!" folder does not undo the file's line
    # a "!" line re-includes from an ignored folder only when it comes after the folder's line
    (["*.pdf", "!slides.pdf", "private/"], "private/slides.pdf", False, 3),  # as git says
    (["private/", "*.pdf", "!slides.pdf"], "private/slides.pdf", False, None),
    (["private/", "!private/"], "private/x.md", False, None),
    (["a*a*a*a*a*a*a*a*a*a*a*a*b"], "a" * 250 + "b", False, 1),
    (["a*a*a*a*a*a*a*a*a*a*a*a*b"], "a" * 250 + ".md", False, None),
]


@pytest.mark.parametrize(("lines", "path", "is_dir", "line"), SEMANTICS)
def test_gitignore_semantics(lines, path, is_dir, line):
    reason = IgnoreRules.parse(".gitignore", "", lines).reason(path, is_dir)
    assert reason == (
        None if line is None else f"ignored by .gitignore (line {line}: {lines[line - 1].strip()})"
    )


# patterns whose regular expressions backtrack, each with a long name it nearly matches
HOSTILE = [
    ("a*a*a*a*a*a*a*a*a*a*a*a*b", "a" * 300 + ".md"),
    ("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*c", "a" * 300),
    ("**/a*a*a*a*a*a*a*a*a*a*a*b/**/x", "/".join(["a" * 200] * 12)),
    ("**/**/**/**/**/**/**/**/**/**/**/**/**/z", "/".join(["d"] * 200)),
    ("a?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*b", "a" * 300),
    ("[a-z]*[a-z]*[a-z]*[a-z]*[a-z]*[a-z]*[a-z]*[a-z]*[a-z]*[a-z]*9", "q" * 300),
    ("*[!b]*[!b]*[!b]*[!b]*[!b]*[!b]*[!b]*[!b]*[!b]*[!b]*b", "a" * 300 + "c"),
]


@pytest.mark.parametrize(("pattern", "path"), HOSTILE)
def test_hostile_patterns_match_in_linear_time(pattern, path):
    rules = IgnoreRules.parse(".gitignore", "", [pattern] * 20)
    started = time.perf_counter()
    for suffix in range(50):
        rules.reason(f"{path}{suffix}", is_dir=False)
        rules.reason(f"{path}{suffix}", is_dir=True)
    assert time.perf_counter() - started < 2.0


def test_ten_thousand_paths_under_twenty_patterns_are_matched_in_seconds():
    lines = ["*.tmp", "build/", "/private/", "drafts/**", "!drafts/keep.md", "*.log.md"]
    lines += ["secret*.md", "**/cache/", "[Tt]emp*", "docs/**/x.md", "lecture-[0-9][0-9].md"]
    rules = IgnoreRules.parse(".gitignore", "", lines + [f"old-{i}.md" for i in range(9)])
    started = time.perf_counter()
    for course in range(100):
        for note in range(100):
            rules.reason(f"course{course}/week{note % 10}/lecture-{note}.md", False)
    assert time.perf_counter() - started < 3.0


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("!", "a lone '!' brings back nothing"),
        ("[z-a]", "bad character range z-a"),
        ("notes[ab", "'[' is never closed"),
        ("trailing\\", "a trailing backslash escapes nothing"),
        ("[[:nope:]]", "unknown character class [:nope:]"),
        ("x" * 5000, "longer than 4096 characters"),
    ],
)
def test_a_bad_line_is_left_out_with_one_warning_and_the_others_apply(tmp_path, caplog, line, why):
    (tmp_path / ".gitignore").write_text(f"drafts/\n{line}\n*.log.md\n")
    for name in ("a.md", "drafts/b.md", "run.log.md"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("words\n")
    with caplog.at_level(logging.WARNING, logger="rag.ignore"):
        docs, report = load_notes(tmp_path)
        load_notes(tmp_path)  # read again (as the watcher does): no second warning
    assert [d.path for d in docs] == ["a.md"]
    assert {path for path, _ in report.skipped} == {"drafts/", "run.log.md"}
    where = str(tmp_path / ".gitignore")
    assert [r.getMessage() for r in caplog.records] == [
        f"{where}:2: ignored the pattern {line.strip()!r} ({why}); fix or remove it"
    ]


def test_a_bad_line_in_a_nested_ignore_file_is_named_with_its_path(tmp_path, caplog):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".gitignore").write_text("# scratch\n[z-a]\n*.tmp.md\n")
    (tmp_path / "sub" / "x.tmp.md").write_text("scratch\n")
    (tmp_path / "sub" / "z.md").write_text("kept\n")
    with caplog.at_level(logging.WARNING, logger="rag.ignore"):
        docs, _ = load_notes(tmp_path)
        assert ignore_reason(tmp_path, "sub/x.tmp.md", False) == (
            "ignored by sub/.gitignore (line 3: *.tmp.md)"
        )
    assert [d.path for d in docs] == ["sub/z.md"]
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path / 'sub' / '.gitignore'}:2: ignored the pattern '[z-a]' "
        "(bad character range z-a); fix or remove it"
    ]


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.lists(
            st.sampled_from(["a", "b", "*", "?", "[ab]", "[!a]", "**", "/"]), min_size=1, max_size=5
        ).map("".join),
        min_size=1,
        max_size=3,
    )
)
def test_files_ignored_as_git_check_ignore_says(tmp_path_factory, lines):
    """Without "!" lines (where notesqa lets a file out of an ignored folder and git does not),
    a file is ignored exactly when git says so. Patterns where ``**`` follows a character
    (``a**/``) are left out: git's own matching of those depends on how it splits them."""
    lines = [
        line for line in lines if "a**" not in line and "b**" not in line and "]**" not in line
    ]
    root = tmp_path_factory.mktemp("repo")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    files = ["a", "ab/b", "b/a/ba", "aa/bb/ab", "ba/b/a/b"]
    for rel in files:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x")
    (root / ".gitignore").write_text("\n".join(lines) + "\n")
    git = subprocess.run(
        ["git", "-C", str(root), "check-ignore", "--no-index", *files],
        capture_output=True,
        text=True,
    ).stdout.split()
    rules = IgnoreRules.parse(".gitignore", "", lines)
    for rel in files:
        parts = rel.split("/")
        ours = any(
            rules.reason("/".join(parts[:k]), is_dir=k < len(parts))
            for k in range(1, len(parts) + 1)
        )
        assert ours == (rel in git), (lines, rel)


def test_may_reinclude_follows_the_negated_patterns_folders(tmp_path: Path):
    rules = IgnoreRules.parse(".notesqaignore", "", ["drafts/", "!drafts/*/keep.md", "!**/x.md"])
    assert rules.may_reinclude("drafts/")
    assert rules.may_reinclude("drafts/2024/")
    assert rules.may_reinclude("other/")  # "**/x.md" may be anywhere
    only_anchored = IgnoreRules.parse(".notesqaignore", "", ["drafts/", "!drafts/*/keep.md"])
    assert not only_anchored.may_reinclude("build/")


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_a_folder_line_after_a_bang_line_keeps_the_folder_out_as_git_does(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("*.md\n!slides.md\nprivate/\n")
    for rel in ("slides.md", "private/slides.md", "week1.md"):
        (tmp_path / rel).parent.mkdir(exist_ok=True)
        (tmp_path / rel).write_text("words\n")
    git = subprocess.run(
        ["git", "-C", str(tmp_path), "check-ignore", "--no-index", "private/slides.md", "week1.md"],
        capture_output=True,
        text=True,
    ).stdout.split()
    docs, _ = load_notes(tmp_path)
    assert git == ["private/slides.md", "week1.md"]
    assert [d.path for d in docs] == ["slides.md"]
    assert ignore_reason(tmp_path, "private/slides.md", False) == (
        "ignored by .gitignore (line 3: private/)"
    )


def test_many_lines_and_many_folders_are_walked_in_little_time_and_memory(tmp_path):
    """2,000 lines x 2,000 folders: the per-folder state of every line took 19 s and 1.2 GB."""
    (tmp_path / ".gitignore").write_text("".join(f"p{i}*q.md\n" for i in range(2000)) + "d7/\n")
    for folder in range(2000):
        (tmp_path / f"d{folder}").mkdir()
        (tmp_path / f"d{folder}" / "n.md").write_text("x")
    (tmp_path / "d5" / "p5xq.md").write_text("x")
    tracemalloc.start()
    try:
        started = time.perf_counter()
        notes = list(iter_note_files(tmp_path))
        took = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(notes) == 1999 and tmp_path / "d5" / "p5xq.md" not in notes
    assert took < 5.0, f"{took:.1f} s"
    assert peak < 20_000_000, f"peak {peak / 1e6:.0f} MB"  # 4M states would be over 1 GB


@pytest.mark.parametrize(
    ("line", "count"),
    [("x*y\n", MAX_IGNORE_LINES + 2), ("z" * 149 + "\n", 7000)],  # 10,002 lines; 1.05 MB
)
def test_an_oversized_ignore_file_applies_its_first_lines_with_one_warning(
    tmp_path, caplog, line, count
):
    lines = ["scratch.md\n", *[line] * (count - 1)]
    lines[-1] = "late.md\n"  # past the limit: left out
    (tmp_path / ".gitignore").write_text("".join(lines))
    for name in ("scratch.md", "late.md", "kept.md"):
        (tmp_path / name).write_text("words\n")
    with caplog.at_level(logging.WARNING, logger="rag.ignore"):
        docs, _ = load_notes(tmp_path)
        load_notes(tmp_path)
    assert [d.path for d in docs] == ["kept.md", "late.md"]
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning.startswith(f"{tmp_path / '.gitignore'} is over 1 MB or 10000 lines: only")


def test_an_ignore_file_linked_from_outside_the_notes_is_not_read(tmp_path):
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("*.md\n")
    notes = tmp_path / "notes"
    (notes / "sub").mkdir(parents=True)
    (notes / "sub" / ".gitignore").symlink_to(outside)
    (notes / "sub" / "a.md").write_text("words\n")
    (notes / "rules.txt").write_text("*.txt\n")
    (notes / ".notesqaignore").symlink_to(notes / "rules.txt")  # inside the notes: followed
    docs, report = load_notes(notes)
    assert [d.path for d in docs] == ["sub/a.md"]
    assert ("sub/.gitignore", "a link out of the notes folder; not followed") in report.skipped
