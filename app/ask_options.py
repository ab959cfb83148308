"""The abstention options of the front doors (``notesqa ask`` and the app) as ``NotesQA.ask``
arguments, so that one setting means one thing everywhere.

``NotesQA.ask``, ``NotesReader``, ``notesqa ask`` and the app agree: left out, ``min_confidence``
and ``null_threshold`` are the values stored with the reader; a number overrides them;
``always_answer`` never abstains. Here, as in argparse, ``None`` means "not given".

Example:
    >>> abstention()
    {'always_answer': False}
    >>> abstention(min_confidence=0.5), abstention(always_answer=True)
    ({'always_answer': False, 'min_confidence': 0.5}, {'always_answer': True})
"""

from __future__ import annotations


def abstention(
    min_confidence: float | None = None,
    null_threshold: float | None = None,
    always_answer: bool = False,
) -> dict:
    """``NotesQA.ask``'s keyword arguments for the options given (``None``: not given, so the
    reader's stored value holds)."""
    options: dict = {"always_answer": bool(always_answer)}
    if always_answer:
        return options
    if min_confidence is not None:
        options["min_confidence"] = min_confidence
    if null_threshold is not None:
        options["null_threshold"] = null_threshold
    return options


def add_reader_options(parser) -> None:
    """``--reader FOLDER``: which reader answers (left out, the shipped one)."""
    from rag.option_types import model_folder

    parser.add_argument(
        "--reader", type=model_folder, help="reader folder (default: the shipped one)"
    )


def slider_confidence(chosen: float, stored: float, step: float = 0.01) -> float | None:
    """The ``min_confidence`` a slider set to ``chosen`` asks for: ``None`` (the stored value,
    exactly) while it still shows the stored value rounded to its ``step``, else ``chosen``.

    Example (a reader that stores 0.2813: its slider starts at 0.28):
        >>> slider_confidence(0.28, 0.2813) is None, slider_confidence(0.5, 0.2813)
        (True, 0.5)
    """
    return None if abs(chosen - round(stored / step) * step) < step / 2 else chosen
