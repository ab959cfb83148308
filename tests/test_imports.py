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
