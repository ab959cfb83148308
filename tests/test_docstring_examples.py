"""The docstring examples are part of the suite (#41): ``pytest`` collects every package's
examples as doctests (``conftest.py`` at the root sets them up), and a docstring names only
benchmark scripts that exist, or the commit that still has a deleted one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("embedder", "rag", "training", "app", "models", "benchmarks")
CITED_SCRIPT = re.compile(r"benchmarks/[\w/]+\.py")
COMMIT = re.compile(r"commit [0-9a-f]{7,40}")


def pytest_setting(name: str) -> str:
    """The value text of ``name`` in pyproject's ``[tool.pytest.ini_options]``."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    section = text.split("[tool.pytest.ini_options]", 1)[1].split("\n[", 1)[0]
    found = re.search(rf"^{name}\s*=\s*(.+)$", section, re.MULTILINE)
    assert found, f"{name} missing from [tool.pytest.ini_options]"
    return found.group(1)


def test_pytest_collects_the_examples_of_every_package():
    assert "--doctest-modules" in pytest_setting("addopts")
    testpaths = set(re.findall(r'"([^"]+)"', pytest_setting("testpaths")))
    assert {"tests", *PACKAGES} <= testpaths
    assert "ELLIPSIS" in pytest_setting("doctest_optionflags")


def test_the_root_conftest_keeps_streamlits_script_out_of_collection():
    conftest = (ROOT / "conftest.py").read_text(encoding="utf-8")
    assert "app/streamlit_app.py" in conftest and (ROOT / "app/streamlit_app.py").is_file()


def cited_missing_scripts(text: str) -> list[str]:
    """Benchmark scripts named in ``text`` that do not exist, unless the commit that has them is
    named within the next 120 characters."""
    missing = []
    for match in CITED_SCRIPT.finditer(text):
        if (ROOT / match.group()).is_file():
            continue
        if not COMMIT.search(text, match.end(), match.end() + 120):
            missing.append(match.group())
    return missing


def test_the_check_catches_a_deleted_script_and_accepts_a_named_commit():
    assert cited_missing_scripts("measured by ``benchmarks/no_such.py``.") == [
        "benchmarks/no_such.py"
    ]
    assert cited_missing_scripts("``benchmarks/no_such.py`` (commit e0833ed) measured it") == []
    assert cited_missing_scripts("``benchmarks/retrieval.py`` measures it") == []


@pytest.mark.parametrize("package", PACKAGES)
def test_docstrings_cite_only_benchmarks_that_exist(package):
    wrong = {
        f"{path.relative_to(ROOT)}: {script}"
        for path in (ROOT / package).rglob("*.py")
        for script in cited_missing_scripts(path.read_text(encoding="utf-8"))
    }
    assert not wrong, sorted(wrong)
