"""How ``notesqa app`` starts its children: isolated, on a path without the current folder."""

from __future__ import annotations

import os
import subprocess

from app.serve import import_path, python_module_command


def test_the_import_path_adds_back_pythonpath_but_not_the_current_folder(tmp_path, monkeypatch):
    notes = tmp_path / "notes"
    (notes / "lib").mkdir(parents=True)
    monkeypatch.chdir(notes)
    given = ["", ".", "lib", str(notes), str(notes / "lib"), "/usr/x", "/usr/x"]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(given))
    assert import_path(exclude=[notes])["path"] == ["/usr/x"]
    monkeypatch.chdir(tmp_path)
    assert import_path()["path"] == [str(notes), str(notes / "lib"), "/usr/x"]
    monkeypatch.delenv("PYTHONPATH")
    assert import_path()["path"] == []


def test_a_child_runs_the_installed_notesqa_not_the_current_folders(tmp_path):
    """Run from a folder holding its own ``app`` package, without PYTHONPATH (as a user's shell
    has it): the child still finds the installed notesqa (``-I`` keeps site-packages and the
    editable install's finder) and never the folder's package."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("raise SystemExit('the folder app ran')\n")
    (tmp_path / "app" / "cli.py").write_text("raise SystemExit('the folder cli ran')\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    command = python_module_command("app.cli", ["--help"], exclude=[tmp_path])
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "usage: notesqa" in done.stdout and "folder" not in done.stderr


def test_a_child_still_imports_from_the_users_pythonpath(tmp_path, monkeypatch):
    """``-I`` ignores PYTHONPATH; the folders it named (not the current one) are added back."""
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "my_plugin.py").write_text("print('plugin ran')\n")
    monkeypatch.setenv("PYTHONPATH", str(lib))
    command = python_module_command("my_plugin", [])
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "plugin ran" in done.stdout, done.stderr
