"""Span edges: give an answer back what the tokenizer split off its first and last token.

The reader picks a span of WordPiece tokens, and BERT's pre-tokenizer splits every ASCII
punctuation mark into a token of its own: ``-20`` is ``-`` ``20``, ``$?`` is ``$`` ``?``,
``--force`` is ``-`` ``-`` ``force``, ``50%`` is ``50`` ``%``, ``__init__`` is five tokens. A span
that starts at ``20`` reads "20 to 19" where the note says "-20 to 19": the fact changed. And a
span may end inside a word (``10ms`` is ``10`` ``##ms``). ``keep_edges`` widens a span, on the
plain text it was read from, by exactly what belongs to its edge tokens:

* the rest of a word cut by WordPiece (``10ms``, ``20°C``, ``€3``), and the other half of a number
  cut at ``.``, ``,`` or ``:`` between digits (``3.14``, ``1,000``, ``10:30``);
* a sign or ``$`` before a number (``-20``, ``+5``, ``$5``) and the ``$`` of a variable
  (``$HOME``, ``$?``, ``${HOME}``); the ``-``/``--`` of a flag (``-v``, ``--force``); the ``.``
  of a dot file (``.bashrc``), the ``@`` of a decorator; ``%PATH%``;
* ``%`` after a number (``50%``; ``10 ms`` stays ``10``: the unit is not attached), ``+``/``#``
  after a name (``C++``, ``C#``, ``Na+``), a closing bracket the span opened (``${HOME}``);
* the whole of a path or identifier the span is part of (``C:\\Users\\alice``, ``~/.bashrc``,
  ``__init__``, ``max_len``), the ``*`` of ``*args`` and ``**kwargs``.

``trim_edges`` takes leading and trailing punctuation off first (``"in 1989."`` reads
``in 1989``). Both return view offsets, so the offset map stays exact; neither ever crosses a
line break.

Example:
    >>> text = "Niceness goes from -20 to 19; run grep -v to invert."
    >>> start = text.index("20 to")
    >>> s, e = keep_edges(text, start, start + len("20 to 19"))
    >>> text[s:e]
    '-20 to 19'
    >>> s = text.index("v to")
    >>> text[slice(*keep_edges(text, s, s + 1))]
    '-v'
"""

from __future__ import annotations

import re
import unicodedata

_OPENERS = "([{"
_CLOSERS = ")]}"
_PATH_STOP = set(" \t\r\n([{<\"'“‘=,;")  # a path or word run never crosses these
_MARKS = re.compile(r'[()\[\]{}"“”]')
_SIGNS = "-+"
_SHELL_SPECIAL = "?#@!*$"  # $? $# $@ $! $* $$
_LEADING = set(".,;:!?)]}»”’ \t")
_TRAILING = set(".,;:!?([{«“‘ \t")


def is_punctuation(ch: str) -> bool:
    """BERT's rule: every ASCII non-letter non-digit printable, and Unicode punctuation (P*).

    Example:
        >>> [is_punctuation(c) for c in "$-a€"]
        [True, True, False, False]
    """
    code = ord(ch)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0x20000 <= code <= 0x2FA1F
        or 0xF900 <= code <= 0xFAFF
    )


def in_word(ch: str) -> bool:
    """Whether BERT's pre-tokenizer keeps ``ch`` inside a word (WordPiece may still cut there).

    Example:
        >>> [in_word(c) for c in "a5°€ -_文"]
        [True, True, True, True, False, False, False, False]
    """
    return not (ch.isspace() or is_punctuation(ch) or _is_cjk(ch) or not ch.isprintable())


def _boundary(text: str, i: int) -> bool:
    """Whether position ``i`` (just before a sign, flag dash or ``@``) is outside any word."""
    return i < 0 or text[i].isspace() or text[i] in "([{<\"'“‘=,;:"


def _identifier(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def is_path(word: str) -> bool:
    """Whether a run of text is a file path (not "and/or", "TCP/IP", "km/h"): it has a
    backslash, starts at a root (``/``, ``~``, ``.``, a drive ``C:``) or has two slashes.

    Example:
        >>> [is_path(w) for w in ("C:\\\\Users", "/etc", "~/.bashrc", "src/rag/x.py", "and/or")]
        [True, True, True, True, False]
    """
    return (
        "\\" in word
        or word.startswith(("/", "~", "./", "../"))
        or (len(word) > 2 and word[1] == ":" and word[0].isalpha())
        or word.count("/") >= 2
    )


def _grow_left(text: str, s: int, e: int) -> int:
    """One step of widening the start, or ``s`` itself when nothing belongs to it."""
    if s == 0:
        return s
    before, first = text[s - 1], text[s]
    if in_word(before) and in_word(first):
        return s - 1  # a word cut by WordPiece
    if before in ".,:" and first.isdigit() and s >= 2 and text[s - 2].isdigit():
        return s - 2  # 3.14, 1,000, 10:30
    if before == "$":
        return s - 1  # $5, $HOME, $?
    if before == "{" and s >= 2 and text[s - 2] == "$":
        return s - 2  # ${HOME}
    if before == "." and first.isalnum() and (_boundary(text, s - 2) or text[s - 2] in "/\\~"):
        return s - 1  # .bashrc, .5, ~/.config
    if before in _SIGNS and (first.isdigit() or first in "$.") and _boundary(text, s - 2):
        return s - 1  # -20, +5, -$3
    if before == "-" and first.isalpha():  # -v, --force (not well-known)
        if _boundary(text, s - 2):
            return s - 1
        if s >= 2 and text[s - 2] == "-" and _boundary(text, s - 3):
            return s - 2
    if before == "@" and first.isalpha() and _boundary(text, s - 2):
        return s - 1  # @property
    if before == "*" and first.isalpha() and (e == len(text) or text[e] != "*"):
        i = s - 2 if s >= 2 and text[s - 2] == "*" else s - 1
        if _boundary(text, i - 1):
            return i  # *args, **kwargs (not *emphasis*)
    if before == "_":
        i = s - 1
        while i > 0 and _identifier(text[i - 1]):
            i -= 1
        return i  # __init__, max_len
    if before in "/\\":
        i = s - 1
        while i > 0 and text[i - 1] not in _PATH_STOP:
            i -= 1
        if is_path(text[i:e]):
            return i  # C:\Users\alice, ~/notes, /etc
    return s


def _grow_right(text: str, s: int, e: int) -> int:
    """One step of widening the end, or ``e`` itself when nothing belongs to it."""
    if e >= len(text):
        return e
    last, after = text[e - 1], text[e]
    if in_word(last) and in_word(after):
        return e + 1  # a word cut by WordPiece: 10ms, 20°C
    if after in ".,:" and last.isdigit() and e + 1 < len(text) and text[e + 1].isdigit():
        return e + 2  # 3.14, 1,000, 10:30
    if after in "%‰" and last.isdigit():
        return e + 1  # 50%
    if last == "$" and after in _SHELL_SPECIAL:
        return e + 1  # $?, $#
    if after in "+#" and in_word(last):
        j = e
        while j < len(text) and text[j] == after:
            j += 1
        if j == len(text) or not (in_word(text[j]) or text[j] in "+#"):
            return j  # C++, C#, Na+
    opened = _unclosed(text[s:e])
    if opened and after == _CLOSERS[_OPENERS.index(opened[-1])]:
        return e + 1  # ${HOME}, f(x)
    if after == "_" and (_identifier(last) or last == "_"):
        j = e
        while j < len(text) and _identifier(text[j]):
            j += 1
        return j  # __init__
    if after == "." and e + 1 < len(text) and text[e + 1].isalnum() and is_path(text[s:e]):
        return e + 2  # C:\Python312\python.exe
    if after in "/\\" and e + 1 < len(text) and text[e + 1] not in _PATH_STOP:
        j = e
        while j < len(text) and text[j] not in _PATH_STOP:
            j += 1
        while j > e + 1 and text[j - 1] in ".,;:!?)]}\"'”’":
            j -= 1  # the sentence's punctuation after the path is not part of it
        if is_path(text[s:j]):
            return j  # C:\Users\alice, ~/.config/notesqa
    return e


def _unclosed(span: str) -> str:
    """The brackets ``span`` opens and does not close, innermost last."""
    stack: list[str] = []
    for ch in span:
        if ch in _OPENERS:
            stack.append(ch)
        elif ch in _CLOSERS and stack and _OPENERS.index(stack[-1]) == _CLOSERS.index(ch):
            stack.pop()
    return "".join(stack)


def keep_edges(text: str, start: int, end: int) -> tuple[int, int]:
    """``[start, end)`` of ``text`` widened by what belongs to its first and last token (see the
    module); ``(start, end)`` itself when nothing does. Never crosses a line break.

    Example:
        >>> text = "The exit status is in $?, costs $5 or 50%; see C:\\\\Users\\\\alice"
        >>> [text[slice(*keep_edges(text, text.index(w), text.index(w) + len(w)))]
        ...  for w in ("?", "5", "50", "Users")]
        ['$?', '$5', '50%', 'C:\\\\Users\\\\alice']
    """
    if not 0 <= start < end <= len(text):
        raise ValueError(f"span {start}:{end} is not inside a text of {len(text)} characters")
    while True:
        s = _grow_left(text, start, end)
        e = _grow_right(text, s, end)
        if s == start and e == end:
            break
        if "\n" in text[s:start] or "\n" in text[end:e]:
            break
        start, end = s, e
    if start > 0 and end < len(text) and text[start - 1] == text[end] == "%":
        start, end = start - 1, end + 1  # %PATH%
    return start, end


def _closes_first(span: str) -> bool:
    """Whether the bracket ``span`` starts with is closed inside it."""
    opener, closer = span[0], _CLOSERS[_OPENERS.index(span[0])]
    depth = 0
    for ch in span:
        depth += (ch == opener) - (ch == closer)
        if depth == 0:
            return True
    return False


def balanced(span: str) -> bool:
    """No bracket left open or closed without its opener, and ``"``/``“”`` in pairs."""
    depth = {o: 0 for o in _OPENERS}
    for ch in span:
        if ch in _OPENERS:
            depth[ch] += 1
        elif ch in _CLOSERS:
            opener = _OPENERS[_CLOSERS.index(ch)]
            if depth[opener] == 0:
                return False
            depth[opener] -= 1
    return not any(depth.values()) and _balanced_quotes(span)


def _balanced_quotes(span: str) -> bool:
    return span.count('"') % 2 == 0 and span.count("“") == span.count("”")


def trim_edges(text: str, start: int, end: int) -> tuple[int, int]:
    """``[start, end)`` without leading and trailing punctuation and spaces (a sentence's, not
    the answer's: ``keep_edges`` gives back a ``$?``'s ``?`` or a ``.bashrc``'s dot), nor an
    opening bracket or quote it does not close, or a closing one it did not open; the span
    itself when nothing else would be left.

    Example:
        >>> text = 'It was written in 1989. (Later: "Zsh")'
        >>> text[slice(*trim_edges(text, text.index("in 1989"), text.index(" (")))]
        'in 1989'
        >>> text[slice(*trim_edges(text, text.index("(Later"), text.index("Zsh") + 3))]
        'Later: "Zsh'
        >>> text[slice(*trim_edges(text, text.index('"Zsh'), len(text)))]
        '"Zsh"'
    """
    s, e = start, end
    while s < e:
        span = text[s:e]
        if text[s] in _LEADING or (
            (text[s] in _OPENERS and not _closes_first(text[s : e + 1]))  # ")" just after
            or (text[s] in '"“' and not _balanced_quotes(span))
        ):
            s += 1
        elif text[e - 1] in _TRAILING or (
            (text[e - 1] in _CLOSERS and not balanced(span) and balanced(span[:-1] + " "))
            or (text[e - 1] in '"”' and not _balanced_quotes(span))
        ):
            e -= 1
        else:
            break
    return (s, e) if s < e else (start, end)


def well_formed(text: str, start: int, end: int) -> bool:
    """Whether the answer ``answer_edges`` makes of ``[start, end)`` has its brackets and
    quotes balanced (``tensor (from the lab sheet`` has not).

    Example:
        >>> text = "a tensor (from the lab sheet, p. 2) here"
        >>> well_formed(text, 2, text.index(")") + 1), well_formed(text, 2, text.index(","))
        (True, False)
    """
    if not _MARKS.search(text, start, end):
        return True  # nothing to balance (the edges never add an unpaired bracket)
    s, e = answer_edges(text, start, end)
    return balanced(text[s:e])


def answer_edges(text: str, start: int, end: int) -> tuple[int, int]:
    """The span a person would underline: ``trim_edges`` then ``keep_edges``.

    Example:
        >>> text = "The range is -20 to 19."
        >>> text[slice(*answer_edges(text, text.index("20"), len(text)))]
        '-20 to 19'
    """
    return keep_edges(text, *trim_edges(text, start, end))
