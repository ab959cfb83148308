"""Broken state notesqa owns is repaired by the next ordinary command (#41 part 5), through the
real ``notesqa`` entry point: a damaged manifest in an index folder of notesqa's own files, the
temporary folder of an indexer killed mid-write (a SQLite journal in it), and a damaged ONNX
export in the cache. Whatever does not carry notesqa's marker is left as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from embedder import onnx_runtime
from embedder.owned_folder import MARKER
from tests.reliability.cli_runner import run

NOTES = {
    "people/ada.md": "# Ada\n\nAda Smithson was born in Oslo in 1850. She worked as a chemist.\n",
    "boris.txt": "Boris Kirason collected clocks from every country he visited.\n",
}
QUESTION = "Where was Ada born?"


@pytest.fixture(scope="module")
def built_index(tmp_path_factory, tiny_embedder_dir) -> Path:
    """A notes folder indexed once per module; each test works on a copy."""
    from rag.pipeline import NotesQA

    notes = tmp_path_factory.mktemp("owned") / "notes"
    for rel, text in NOTES.items():
        (notes / rel).parent.mkdir(parents=True, exist_ok=True)
        (notes / rel).write_text(text, encoding="utf-8")
    NotesQA.open(notes, embedder=tiny_embedder_dir).index(progress=False)
    return notes


@pytest.fixture
def notes(tmp_path, built_index) -> Path:
    return Path(shutil.copytree(built_index, tmp_path / "notes"))


@pytest.fixture
def models(tiny_embedder_dir) -> list[str]:
    return ["--embedder", str(tiny_embedder_dir)]


@pytest.fixture
def reader(tiny_reader_dir) -> list[str]:
    return ["--reader", str(tiny_reader_dir)]


def _ask(notes: Path, models: list[str], capsys) -> tuple[int, str, str]:
    """``notesqa ask`` over the index in ``notes`` (``models``: embedder and reader options)."""
    return run(["ask", QUESTION, "--index", str(notes / ".notesqa"), *models], capsys)


# ---------------------------------------------------------------- a damaged manifest


def _unmarked(index: Path) -> None:  # an index written before notesqa marked its folders
    (index / MARKER).unlink()  # (format 2: vectors.faiss and bm25/, no segments)
    shutil.rmtree(index / "segments")
    (index / "vectors.faiss").write_bytes(b"")


MANIFESTS = {
    "empty": "",
    "truncated": '{"dim": 64, "embedder": "mod',
    "a list": "[1, 2, 3]",
    "a string": '"notesqa index"',
    "garbage bytes": "\x00\x01\x02not json",
}


@pytest.mark.parametrize("rebuild", [[], ["--rebuild"]], ids=["index", "index --rebuild"])
@pytest.mark.parametrize("legacy", [False, True], ids=["marked", "written before markers"])
@pytest.mark.parametrize("damage", sorted(MANIFESTS))
def test_a_damaged_manifest_is_reported_and_a_plain_index_repairs_it(
    notes, models, reader, capsys, damage, legacy, rebuild
):
    index = notes / ".notesqa"
    (index / "manifest.json").write_text(MANIFESTS[damage])
    if legacy:
        _unmarked(index)
    code, _, err = _ask(notes, models + reader, capsys)
    assert code == 2 and "damaged" in err and "notesqa index" in err, err
    code, out, err = run(["index", str(notes), "--json", *rebuild, *models], capsys)
    assert code == 0, err
    assert json.loads(out)["files"] == len(NOTES)
    code, out, err = _ask(notes, models + reader, capsys)
    assert code == 0 and out.strip(), err
    assert json.loads((index / "manifest.json").read_text())["notesqa"] == "index"


def test_a_damaged_manifest_beside_a_users_file_is_never_replaced(notes, models, capsys):
    index = notes / ".notesqa"
    (index / "manifest.json").write_text("")
    (index / "todo.txt").write_text("a user's file")
    code, _, err = run(["index", str(notes), *models], capsys)
    assert code == 2 and "not a notesqa index" in err
    assert (index / "todo.txt").read_text() == "a user's file"


# ---------------------------------------------------------------- a killed indexer's leftovers

KILLED_WRITER = """
import importlib.util, os, signal, sys
from pathlib import Path
spec = importlib.util.spec_from_file_location("owned_folder", sys.argv[1])
owned = importlib.util.module_from_spec(spec); spec.loader.exec_module(owned)
tmp = owned.new_temp(Path(sys.argv[2]), "index")
(tmp / "vectors.faiss").write_bytes(b"half")
(tmp / "notes.sqlite").write_bytes(b"SQLite format 3\\0half")
(tmp / "notes.sqlite-journal").write_bytes(b"\\xd9\\xd5\\x05\\xf9 journal")
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("command", ["index", "index --rebuild"])
def test_a_killed_indexers_temp_folder_is_removed_by_the_next_index(notes, models, capsys, command):
    import embedder.owned_folder

    index = notes / ".notesqa"
    subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, embedder.owned_folder.__file__, str(index)],
        check=False,
    )
    (killed,) = notes.glob("..notesqa.tmp-*")
    assert (killed / "notes.sqlite-journal").is_file()
    lookalike = notes / "..notesqa.tmp-drafts"  # a user's folder with a temp-like name
    lookalike.mkdir()
    (lookalike / "draft.md").write_text("keep me")
    code, _, err = run([*command.split(), str(notes), *models], capsys)
    assert code == 0, err
    assert not killed.exists() and (lookalike / "draft.md").read_text() == "keep me"


# ---------------------------------------------------------------- a damaged ONNX export


@pytest.fixture
def cache(tmp_path, monkeypatch, onnx_cache) -> Path:
    """A copy of the session's export cache (the tiny models already exported), this test's own."""
    copy = Path(shutil.copytree(onnx_cache, tmp_path / "cache"))
    monkeypatch.setenv("NOTESQA_CACHE", str(copy))
    monkeypatch.setenv("NOTESQA_RUNTIME", "onnx")
    monkeypatch.setattr(onnx_runtime, "_VERIFIED", {})  # as in a new process
    return copy


def _export(folder: Path, kind: str) -> Path:
    """Where the int8 export of the model in ``folder`` lives (``cached_export``'s name)."""
    return onnx_runtime.cache_root() / f"{kind}-int8-{onnx_runtime.folder_hash(folder)}"


def _drop_info_key(export: Path) -> None:
    info = json.loads((export / onnx_runtime.EXPORT_INFO).read_text())
    info.pop("pad_token_id")
    (export / onnx_runtime.EXPORT_INFO).write_text(json.dumps(info))


EXPORT_DAMAGE = {
    "garbage model": lambda e: (e / "model.onnx").write_bytes(os.urandom(4096)),
    "truncated model": lambda e: (e / "model.onnx").write_bytes(
        (e / "model.onnx").read_bytes()[:2000]
    ),
    "empty model": lambda e: (e / "model.onnx").write_bytes(b""),
    "no tokenizer": lambda e: (e / "tokenizer.json").unlink(),
    "info missing a key": _drop_info_key,
}


@pytest.mark.parametrize("kind", ["embedder", "reader"])
@pytest.mark.parametrize("damage", sorted(EXPORT_DAMAGE))
def test_a_damaged_onnx_export_is_exported_again(
    notes, models, reader, capsys, cache, damage, kind, tiny_embedder_dir, tiny_reader_dir
):
    assert _ask(notes, models + reader, capsys)[0] == 0  # both exports in the cache, whole
    export = _export(tiny_embedder_dir if kind == "embedder" else tiny_reader_dir, kind)
    assert (export / "model.onnx").is_file()
    EXPORT_DAMAGE[damage](export)
    onnx_runtime._VERIFIED.clear()
    code, out, err = _ask(notes, models + reader, capsys)
    assert code == 0 and out.strip(), err
    assert onnx_runtime.export_problem(export) is None
    assert sorted(p.name for p in cache.iterdir() if p.name.startswith(".")) == []


def test_a_failed_re_export_is_one_clear_line(
    notes, models, reader, capsys, cache, tiny_reader_dir, monkeypatch
):
    import rag.reader_runtime

    assert _ask(notes, models + reader, capsys)[0] == 0
    export = _export(tiny_reader_dir, "reader")
    (export / "model.onnx").write_bytes(b"")
    onnx_runtime._VERIFIED.clear()

    def no_torch(*_):
        raise ImportError("No module named 'torch'")

    monkeypatch.setattr(rag.reader_runtime, "_write_export", no_torch)
    code, _, err = _ask(notes, models + reader, capsys)
    assert code == 2, err
    last = err.strip().splitlines()[-1]  # (after the one warning that it is exported again)
    for part in (
        str(export),
        "damaged",
        "No module named 'torch'",
        "NOTESQA_CACHE",
        "NOTESQA_RUNTIME=torch",
    ):
        assert part in last, err
