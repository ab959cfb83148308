"""The ONNX runtime of the embedder: same vectors as torch, one cached export, clean fallbacks."""

import json
import logging
import os
import shutil
import time

import numpy as np
import pytest

from embedder import Embedder, WindowConfig, onnx_runtime
from embedder.onnx_encoder import OnnxSentenceEncoder
from embedder.onnx_runtime import EXPORT_INFO, cached_export, runtime, threads
from embedder.owned_folder import MARKER, STALE_SECONDS, new_temp

TEXTS = [
    "Where was Ada born?",
    "Ada Smithson was born in Oslo in 1850 and worked as a chemist for many years.",
    "🙂",
    "Zoë Müller collected clocks, maps and violins from every country she visited. " * 6,
]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh, empty export cache for one test."""
    monkeypatch.setenv("NOTESQA_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def torch_emb(tiny_embedder_dir):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NOTESQA_RUNTIME", "torch")
        return Embedder.load(tiny_embedder_dir)


def _load(folder, kind: str, monkeypatch) -> Embedder:
    monkeypatch.setenv("NOTESQA_RUNTIME", kind)
    return Embedder.load(folder)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.mark.parametrize(
    "kind, floor, name", [("onnx", 0.99, "onnx-int8"), ("onnx-fp32", 0.9999, "onnx-fp32")]
)
def test_onnx_vectors_match_torch(tiny_embedder_dir, torch_emb, kind, floor, name, monkeypatch):
    emb = _load(tiny_embedder_dir, kind, monkeypatch)
    assert emb.runtime == name
    assert torch_emb.runtime == "torch"
    assert emb.identity == torch_emb.identity  # an index built by either serves both
    assert (emb.dim, emb.max_seq_length) == (torch_emb.dim, torch_emb.max_seq_length)
    vectors = emb.encode(TEXTS, batch_size=2)  # one text per run
    assert vectors.shape == (len(TEXTS), emb.dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert _cosines(vectors, torch_emb.encode(TEXTS)).min() > floor
    assert emb.encode([]).shape == (0, emb.dim)


def test_tokens_and_windows_are_the_same_on_both_runtimes(
    tiny_embedder_dir, torch_emb, monkeypatch
):
    emb = _load(tiny_embedder_dir, "onnx", monkeypatch)
    for text in TEXTS:
        assert emb.count_tokens(text) == torch_emb.count_tokens(text)
    config = WindowConfig(tokens=8, stride=4)
    assert emb.token_windows(TEXTS[3], config) == torch_emb.token_windows(TEXTS[3], config)
    vectors, owners = emb.encode_with_windows(TEXTS, config)
    expected, expected_owners = torch_emb.encode_with_windows(TEXTS, config)
    np.testing.assert_array_equal(owners, expected_owners)
    assert _cosines(vectors, expected).min() > 0.99


def test_prompts_are_prepended_as_sentence_transformers_does(
    tiny_embedder_dir, copy_dir, monkeypatch
):
    folder = copy_dir(tiny_embedder_dir)
    config_path = folder / "config_sentence_transformers.json"
    config = json.loads(config_path.read_text()) if config_path.exists() else {}
    config["prompts"] = {"query": "query: ", "passage": "passage: "}
    config_path.write_text(json.dumps(config))
    want = _load(folder, "torch", monkeypatch)
    got = _load(folder, "onnx-fp32", monkeypatch)
    assert got.prompts == want.prompts == config["prompts"]
    for kind in ("query", "passage", None):
        cosines = _cosines(got.encode(TEXTS, kind=kind), want.encode(TEXTS, kind=kind))
        assert cosines.min() > 0.9999
    assert not np.allclose(got.encode(TEXTS[:1], kind="query"), got.encode(TEXTS[:1]))


def test_the_export_is_made_once_and_reused(tiny_embedder_dir, cache, monkeypatch):
    first = _load(tiny_embedder_dir, "onnx", monkeypatch)
    exports = [p for p in cache.iterdir()]
    assert [p.name.startswith("embedder-int8-") for p in exports] == [True]
    assert sorted(p.name for p in exports[0].iterdir()) == [
        ".notesqa-owned",
        "model.onnx",
        "notesqa_onnx.json",
        "tokenizer.json",
    ]

    def no_second_export(*args):
        raise AssertionError("exported twice")

    monkeypatch.setattr("embedder.onnx_encoder._write_export", no_second_export)
    again = _load(tiny_embedder_dir, "onnx", monkeypatch)
    np.testing.assert_allclose(again.encode(TEXTS), first.encode(TEXTS), atol=1e-6)
    assert [p for p in cache.iterdir()] == exports


def test_a_changed_model_gets_its_own_export(tiny_embedder_dir, copy_dir, cache, monkeypatch):
    _load(tiny_embedder_dir, "onnx", monkeypatch)
    other = copy_dir(tiny_embedder_dir)
    (other / "tokenizer_config.json").write_text(
        (other / "tokenizer_config.json").read_text() + "\n"
    )
    _load(other, "onnx", monkeypatch)
    assert len(list(cache.iterdir())) == 2


def test_a_failed_export_leaves_nothing_behind(tmp_path, cache):
    def broken(folder, out, quantize):
        (out / "model.onnx").write_bytes(b"half a model")
        raise RuntimeError("the export broke")

    with pytest.raises(RuntimeError, match="broke"):
        cached_export(tmp_path, "embedder", broken)
    assert list(cache.iterdir()) == []  # no final folder, no temporary one


def test_two_processes_exporting_at_once_share_the_first_export(tmp_path, cache):
    def write(folder, out, quantize):
        (out / "model.onnx").write_bytes(b"mine")
        return {}

    def slower(folder, out, quantize):
        # another process finishes its export while this one is still writing
        cached_export(tmp_path, "embedder", write)
        (out / "model.onnx").write_bytes(b"slower")
        return {}

    final = cached_export(tmp_path, "embedder", slower)
    assert (final / "model.onnx").read_bytes() == b"mine"
    assert [p.name for p in cache.iterdir()] == [final.name]


def test_runtime_torch_still_works(tiny_embedder_dir, monkeypatch):
    from sentence_transformers import SentenceTransformer

    emb = _load(tiny_embedder_dir, "torch", monkeypatch)
    assert isinstance(emb.model, SentenceTransformer) and emb.runtime == "torch"
    with pytest.raises(ValueError, match="NOTESQA_RUNTIME"):
        _load(tiny_embedder_dir, "tensorflow", monkeypatch)


def test_without_onnxruntime_torch_runs_with_one_log_line(tiny_embedder_dir, monkeypatch, caplog):
    real = onnx_runtime.importlib.util.find_spec
    monkeypatch.setattr(
        onnx_runtime.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "onnxruntime" else real(name, *a),
    )
    onnx_runtime._warn_fallback.cache_clear()
    monkeypatch.delenv("NOTESQA_RUNTIME", raising=False)
    with caplog.at_level(logging.WARNING):
        assert runtime() == "torch"
        emb = Embedder.load(tiny_embedder_dir)
    assert emb.runtime == "torch"
    assert sum("onnxruntime is not installed" in r.getMessage() for r in caplog.records) == 1
    onnx_runtime._warn_fallback.cache_clear()


def test_cache_location_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("NOTESQA_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert onnx_runtime.cache_root() == tmp_path / "notesqa" / "onnx"
    monkeypatch.setenv("NOTESQA_CACHE", str(tmp_path / "mine"))
    assert onnx_runtime.cache_root() == tmp_path / "mine"


@pytest.mark.parametrize("quantize", [True, False])
def test_a_vector_depends_on_its_text_alone(tiny_embedder_dir, quantize):
    # int8 quantises activations per run: the encoder runs one text at a time, so the vectors
    # are the same whatever else is encoded with them (an incremental index equals a rebuild)
    encoder = OnnxSentenceEncoder.load(tiny_embedder_dir, quantize=quantize)
    together = encoder.encode(TEXTS, batch_size=2, show_progress_bar=True)
    alone = np.concatenate([encoder.encode([t]) for t in TEXTS])
    np.testing.assert_array_equal(together, alone)


def test_an_unwritable_cache_says_how_to_go_on(tiny_embedder_dir, tmp_path, monkeypatch):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("NOTESQA_CACHE", str(blocked / "onnx"))
    with pytest.raises(OSError, match="NOTESQA_CACHE to a folder you can write.*NOTESQA_RUNTIME"):
        _load(tiny_embedder_dir, "onnx", monkeypatch)
    monkeypatch.setenv("NOTESQA_THREADS", "two")
    with pytest.raises(ValueError, match="NOTESQA_THREADS must be a whole number"):
        threads()


@pytest.fixture
def model(tmp_path):
    """A model folder for the stand-in export (beside the cache, not holding it)."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    return folder


def test_a_killed_exports_leftovers_are_removed_but_a_fresh_one_is_kept(model, cache):
    final = cached_export(model, "embedder", _fake_export)
    stale, fresh = new_temp(final, "onnx export"), new_temp(final, "onnx export")
    foreign = final.with_name(f".{final.name}.tmp-mine")  # no marker: never removed
    for folder in (stale, fresh, foreign):
        folder.mkdir(exist_ok=True)
        (folder / "model.onnx").write_bytes(b"half")
    old = time.time() - STALE_SECONDS - 60  # (its writer is gone: here, past the age bound)
    os.utime(stale / MARKER, (old, old))
    os.utime(foreign, (old, old))
    shutil.rmtree(final)  # the next load exports again, and tidies up on the way
    cached_export(model, "embedder", _fake_export)
    assert not stale.exists() and fresh.exists() and foreign.exists()


def _fake_export(folder, out, quantize):
    """A stand-in for the torch export: a model file, a tokenizer and one setting."""
    (out / "model.onnx").write_bytes(b"onnx graph " * 100)
    (out / "tokenizer.json").write_text('{"model": {}}')
    return {"dim": 4}


def _truncate(export):
    model = export / "model.onnx"
    model.write_bytes(model.read_bytes()[:50])


def _drop_key(export):
    info = json.loads((export / EXPORT_INFO).read_text())
    del info["dim"]
    (export / EXPORT_INFO).write_text(json.dumps(info))


def _drop_hashes(export):
    info = json.loads((export / EXPORT_INFO).read_text())
    del info["files"], info["checksum"]
    (export / EXPORT_INFO).write_text(json.dumps(info))


DAMAGE = {
    "garbage model": lambda e: (e / "model.onnx").write_bytes(os.urandom(1100)),
    "truncated model": _truncate,
    "empty model": lambda e: (e / "model.onnx").write_bytes(b""),
    "no model": lambda e: (e / "model.onnx").unlink(),
    "no tokenizer": lambda e: (e / "tokenizer.json").unlink(),
    "info missing a key": _drop_key,
    "info without hashes": _drop_hashes,
    "info not an object": lambda e: (e / EXPORT_INFO).write_text("[]"),
    "info empty": lambda e: (e / EXPORT_INFO).write_text(""),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_export_is_exported_again_with_one_warning(
    model, cache, damage, monkeypatch, caplog
):
    final = cached_export(model, "embedder", _fake_export)
    good = {p.name: p.read_bytes() for p in final.iterdir() if p.name != MARKER}
    DAMAGE[damage](final)
    onnx_runtime._VERIFIED.clear()  # as in the next process
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="embedder.onnx_runtime"):
        assert cached_export(model, "embedder", _fake_export) == final
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "damaged" in warnings[0] and str(final) in warnings[0]
    again = {p.name: p.read_bytes() for p in final.iterdir() if p.name != MARKER}
    assert {k: v for k, v in again.items() if k != EXPORT_INFO} == {
        k: v for k, v in good.items() if k != EXPORT_INFO
    }
    assert onnx_runtime.export_problem(final) is None
    assert [p.name for p in cache.iterdir()] == [final.name]  # no temp, no backup left


def test_a_failed_re_export_names_the_folder_and_the_ways_out(model, cache):
    final = cached_export(model, "embedder", _fake_export)
    (final / "model.onnx").write_bytes(b"")
    onnx_runtime._VERIFIED.clear()

    def broken(folder, out, quantize):
        raise RuntimeError("torch is not installed")

    with pytest.raises(ValueError) as caught:
        cached_export(model, "embedder", broken)
    message = str(caught.value)
    for part in (
        str(final),
        "damaged",
        "torch is not installed",
        "NOTESQA_CACHE",
        "NOTESQA_RUNTIME=torch",
    ):
        assert part in message
    assert list(cache.iterdir()) == []  # the broken export is gone; no temp left either


def test_a_damaged_export_notesqa_did_not_write_is_left_alone(model, cache):
    final = cached_export(model, "embedder", _fake_export)
    (final / MARKER).unlink()
    (final / "model.onnx").write_bytes(b"")
    onnx_runtime._VERIFIED.clear()
    with pytest.raises(ValueError, match="not written by notesqa.*NOTESQA_CACHE"):
        cached_export(model, "embedder", _fake_export)
    assert (final / "tokenizer.json").is_file()


def test_an_export_is_hashed_once_per_process(model, cache, monkeypatch):
    final = cached_export(model, "embedder", _fake_export)  # hashed as it is written
    onnx_runtime._VERIFIED.clear()
    hashed = []
    real = onnx_runtime._file_sha256
    monkeypatch.setattr(onnx_runtime, "_file_sha256", lambda p: hashed.append(p.name) or real(p))
    for _ in range(3):
        assert cached_export(model, "embedder", _fake_export) == final
    assert sorted(hashed) == ["model.onnx", "tokenizer.json"]
    (final / "model.onnx").write_bytes(b"changed under a running process")  # noticed
    assert onnx_runtime.export_problem(final) is not None


def test_a_garbage_model_in_the_cache_is_repaired_on_the_next_load(
    tiny_embedder_dir, cache, monkeypatch
):
    first = _load(tiny_embedder_dir, "onnx", monkeypatch)
    expected = first.encode(TEXTS)
    export = first.model.export
    (export / "model.onnx").write_bytes(b"\x08\x07garbage" * 64)
    onnx_runtime._VERIFIED.clear()
    again = _load(tiny_embedder_dir, "onnx", monkeypatch)
    np.testing.assert_allclose(again.encode(TEXTS), expected, atol=1e-6)


def test_an_export_put_in_place_meanwhile_is_used_never_replaced(model, cache, monkeypatch):
    """The other process renames its export into place between this one's last check and its
    rename: this one's rename fails, it discards its copy and uses the other's, untouched."""
    real_fsync_tree = onnx_runtime.fsync_tree
    theirs = {}

    def other_process_finishes_first(folder):
        if not theirs:
            theirs["started"] = True  # (its own rename goes through this too)
            theirs["final"] = cached_export(model, "embedder", _fake_export)
            theirs["inode"] = theirs["final"].stat().st_ino  # it may be loading this now
        real_fsync_tree(folder)

    monkeypatch.setattr(onnx_runtime, "fsync_tree", other_process_finishes_first)
    final = cached_export(model, "embedder", _fake_export)
    assert final == theirs["final"] and final.stat().st_ino == theirs["inode"]
    assert onnx_runtime.export_problem(final) is None
    assert [p.name for p in cache.iterdir()] == [final.name]  # this one's copy discarded


def test_two_threads_exporting_at_once_both_get_a_working_export(model, cache):
    import threading

    both_writing = threading.Barrier(2, timeout=30)

    def slow(folder, out, quantize):
        both_writing.wait()  # neither finishes before the other has started
        time.sleep(0.05)
        return _fake_export(folder, out, quantize)

    results, errors = [], []

    def export():
        try:
            results.append(cached_export(model, "embedder", slow))
        except Exception as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)

    threads_ = [threading.Thread(target=export) for _ in range(2)]
    for thread in threads_:
        thread.start()
    for thread in threads_:
        thread.join(60)
    assert errors == [] and len(results) == 2 and results[0] == results[1]
    onnx_runtime._VERIFIED.clear()
    assert onnx_runtime.export_problem(results[0]) is None
    assert [p.name for p in cache.iterdir()] == [results[0].name]


@pytest.mark.parametrize("re_exported", [False, True], ids=["removed", "removed and exported"])
def test_a_damaged_export_another_process_repairs_first_raises_nothing(
    model, cache, monkeypatch, re_exported
):
    final = cached_export(model, "embedder", _fake_export)
    (final / "model.onnx").write_bytes(b"")
    onnx_runtime._VERIFIED.clear()
    real_remove = onnx_runtime.remove_owned

    def the_other_process_was_faster(folder):
        real_remove(folder)  # the other process removes the damaged export first ...
        if re_exported:  # ... and perhaps exports it again
            cached_export(model, "embedder", _fake_export)
        return False  # so this one finds nothing of notesqa's to remove

    monkeypatch.setattr(onnx_runtime, "remove_owned", the_other_process_was_faster)
    assert cached_export(model, "embedder", _fake_export) == final
    onnx_runtime._VERIFIED.clear()
    assert onnx_runtime.export_problem(final) is None
    assert [p.name for p in cache.iterdir()] == [final.name]
