"""What the terminal is shown: untrusted text inert, counts in words, JSON escaped."""

from __future__ import annotations

import json
import logging

import pytest

from app.errors import TerminalFormatter, count, for_terminal
from rag.option_types import json_text

HOSTILE = [
    "\x1b[31mred",  # colour
    "\x1b]0;title\x07",  # set the window title
    "a\rb",  # overprint the line
    "\x9b2J",  # C1 CSI: clear the screen on some terminals
    "abc\u202edcba",  # right-to-left override
    "\udcff",  # a byte that is not UTF-8 (cannot even be printed)
    "\x7f",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_for_terminal_leaves_nothing_a_terminal_acts_on(text):
    shown = for_terminal(text)
    assert all(ch.isprintable() for ch in shown), repr(shown)
    shown.encode("utf-8")  # printable on any UTF-8 terminal


def test_multiline_text_keeps_its_lines_and_tabs_only():
    assert for_terminal("a\tb\nc\x1b", multiline=True) == "a\tb\nc\\x1b"
    assert for_terminal("a\nb") == "a\\nb"  # a name cannot forge a line of output


@pytest.mark.parametrize("text", HOSTILE)
def test_json_text_escapes_what_json_dumps_leaves_raw_and_reads_back(text):
    out = json_text({"source": text}, indent=None)
    assert all(ch.isprintable() or ch == " " for ch in out), repr(out)
    assert json.loads(out) == {"source": text}


def test_log_lines_are_inert():
    record = logging.LogRecord("rag", logging.WARNING, "x", 1, "skipped %s", ("a\x1b[2J.md",), None)
    line = TerminalFormatter("%(levelname)s %(name)s: %(message)s").format(record)
    assert line == "WARNING rag: skipped a\\x1b[2J.md"


def test_counts_read_as_words():
    assert [count(n, "passage") for n in (0, 1, 2)] == ["0 passages", "1 passage", "2 passages"]
