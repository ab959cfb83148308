"""Training's output folders through the real ``notesqa`` entry point: a folder of someone's
files passed as ``--out`` is refused with a clear error and kept byte for byte; an empty folder,
one notesqa wrote (marked) or a model folder an older notesqa wrote is replaced."""

from __future__ import annotations

from pathlib import Path

import pytest

from embedder.owned_folder import MARKER, owner_kind
from tests.reliability.cli_runner import run


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _write(root: Path, files: dict[str, str]) -> Path:
    root.mkdir()
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


REFUSED = {
    "a thesis folder": {"ch1.md": "hi"},
    "a model folder plus a note": {"config.json": "{}", "model.safetensors": "w", "todo.md": "x"},
    "a config without weights": {"config.json": '{"my": "app"}'},
}


@pytest.mark.parametrize("files", REFUSED.values(), ids=list(REFUSED))
def test_train_export_into_a_folder_of_someones_files_is_refused(
    tmp_path, tiny_embedder_dir, capsys, files
):
    out = _write(tmp_path / "thesis", files)
    before = snapshot(out)
    code, stdout, err = run(
        ["train", "export", "--model", str(tiny_embedder_dir), "--out", str(out)], capsys
    )
    assert code == 2 and "exported" not in stdout
    assert "notesqa did not write" in err and "remove it yourself" in err and str(out) in err
    assert snapshot(out) == before  # every file kept, no marker written into it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis"]  # no temp, no backup


REPLACED = {
    "nothing there": None,
    "an empty folder": {},
    "a model folder from an older notesqa": {
        "config.json": "{}",
        "model.safetensors": "old weights",
        "tokenizer.json": "{}",
        "1_Pooling/config.json": "{}",
    },
}


@pytest.mark.parametrize("files", REPLACED.values(), ids=list(REPLACED))
def test_train_export_replaces_an_empty_or_notesqa_folder(
    tmp_path, tiny_embedder_dir, capsys, files
):
    out = tmp_path / "model"
    if files is not None:
        _write(out, files)
    argv = ["train", "export", "--model", str(tiny_embedder_dir), "--out", str(out)]
    code, stdout, _ = run(argv, capsys)
    assert code == 0 and "exported" in stdout
    assert owner_kind(out) == "training" and (out / "config.json").is_file()
    assert (out / "model.safetensors").read_bytes() != b"old weights"
    code, stdout, _ = run(argv, capsys)  # again: its own marked output is replaced
    assert code == 0 and (out / MARKER).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
