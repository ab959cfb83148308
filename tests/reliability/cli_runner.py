"""The one way the reliability tests run ``notesqa``: ``main(argv)`` as the shell sees it."""

from __future__ import annotations

from app.cli import main


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    """``main(argv)`` as the shell sees it: exit code (argparse's SystemExit included), out, err;
    never a traceback on stderr."""
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err
