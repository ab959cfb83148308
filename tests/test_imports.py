"""Imports point one way (DESIGN.md): app -> training -> rag -> embedder -> models; and modules
stay short enough to read (500 lines at most outside tests/ and benchmarks/)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "embedder": {"rag", "training", "app"},
    "rag": {"training", "app"},
    "training": {"app"},
}


def imported_packages(path: Path) -> set[str]:
    """Top-level package names imported anywhere in ``path`` (functions included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_module_imports_a_layer_above_it(package):
    wrong = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in (ROOT / package).rglob("*.py")
        for name in imported_packages(path) & FORBIDDEN[package]
    }
    assert not wrong, sorted(wrong)


def test_the_check_sees_an_import_inside_a_function(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from training.tokenizer import load_tokenizer\n")
    assert "training" in imported_packages(module)


def test_no_product_module_is_over_500_lines():
    long = {
        f"{path.relative_to(ROOT)}: {lines}"
        for package in ("app", "embedder", "rag", "training", "models")
        for path in (ROOT / package).rglob("*.py")
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > 500
    }
    assert not long, sorted(long)


HEAVY = (
    "torch",
    "transformers",
    "sentence_transformers",
    "streamlit",
    "langchain_core",
    "matplotlib",
)
PROBE = """
import sys
from app.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print("HEAVY", ",".join(heavy), "CODE", code, file=sys.stderr)
"""


def heavy_imports(*args: str) -> tuple[str, int]:
    """The heavy packages a ``notesqa`` command imports in a fresh process, and its exit code."""
    import subprocess
    import sys

    probe = PROBE.format(heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", probe, *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    line = next(x for x in done.stderr.splitlines() if x.startswith("HEAVY"))
    _, heavy, _, code = line.split(" ")
    return heavy, int(code)


def test_help_imports_no_heavy_package():
    assert heavy_imports("--help") == ("", 0)


def test_index_ask_and_search_import_no_torch(tmp_path, tiny_embedder_dir, tiny_reader_dir):
    from embedder import Embedder
    from rag.reader import Reader

    Embedder.load(tiny_embedder_dir, runtime="onnx")  # the exports exist, as after a first use
    Reader.load(tiny_reader_dir, runtime="onnx")
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "ada.md").write_text("# Ada\n\nAda Smithson was born in Oslo in 1850.\n")
    index = ["--index", str(tmp_path / "index"), "--embedder", str(tiny_embedder_dir)]
    assert heavy_imports("index", str(notes), *index) == ("", 0)
    ask = ["ask", "Where was Ada born?", *index, "--reader", str(tiny_reader_dir)]
    assert heavy_imports(*ask) == ("", 0)
    assert heavy_imports("search", "Oslo", *index) == ("", 0)
