"""Settings for the docstring examples that ``pytest`` runs as doctests (``--doctest-modules``).

The examples read as a user would run them from a clone: the repository root is the working
folder (so ``examples/notes`` and ``models/`` are found), ``tempfile`` makes its folders inside the
test's own ``tmp_path`` (so an example that writes files writes nowhere else), and the shipped
models' ONNX exports go to ``build/doctest-cache`` (made once per clone, never the user's
``~/.cache``); ``NOTESQA_INDEX`` and ``NOTESQA_RUNTIME`` are unset, so the defaults are shown. The
fixtures of the tests themselves live in ``tests/conftest.py``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest
from _pytest.doctest import DoctestItem

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:  # tests import their shared helpers as tests.* (importlib mode)
    sys.path.insert(0, str(ROOT))

# Streamlit's script runs its whole page when imported, so it has no examples to collect.
collect_ignore = ["app/streamlit_app.py"]


@pytest.fixture(autouse=True)
def _doctest_setting(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run each docstring example from the repository root, with temp folders under its
    ``tmp_path`` and the ONNX cache in ``build/doctest-cache``; other tests are left alone."""
    if not isinstance(request.node, DoctestItem):
        return
    tmp_path = request.getfixturevalue("tmp_path")
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("NOTESQA_CACHE", str(ROOT / "build" / "doctest-cache"))
    for name in ("NOTESQA_INDEX", "NOTESQA_RUNTIME"):  # the defaults the examples show
        monkeypatch.delenv(name, raising=False)
