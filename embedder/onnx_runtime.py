"""Which runtime runs a shipped model, and the ONNX cache both the embedder and the reader use.

``NOTESQA_RUNTIME`` picks the runtime: ``onnx`` (the default when onnxruntime is installed: each
model exported once to ONNX with dynamic int8 weights; ``INT8_BY_DEFAULT`` can keep one in
float), ``onnx-int8`` (both int8 whatever that says), ``onnx-fp32`` (neither) or ``torch`` (the
models as trained; training uses it). An exported model lives in
``$NOTESQA_CACHE`` (default ``$XDG_CACHE_HOME/notesqa/onnx``, else ``~/.cache/notesqa/onnx``), in
a folder named after the model and a hash of every file of its folder, so a retrained model gets a
new export and an unchanged one is exported only once. The folder is built under a temporary name
and renamed into place: a reader never sees half an export. Nothing here imports torch.

Example:
    >>> os.environ["NOTESQA_RUNTIME"] = "onnx"
    >>> runtime()                                     # "torch" without onnxruntime installed
    'onnx'
    >>> cached_export(Path("models/reader"), "reader", write_export).name   # doctest: +SKIP
    'reader-int8-3f2a9c1b7d4e'
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

RUNTIMES = ("onnx", "onnx-int8", "onnx-fp32", "torch")
# int8 weights on the ``onnx`` runtime, by model kind (benchmarks/speed.py measures the cost)
INT8_BY_DEFAULT = {"embedder": True, "reader": True}
EXPORT_FORMAT = 1  # bump when an export's files or graph change: old exports are then ignored
EXPORT_INFO = "notesqa_onnx.json"  # written last into an export: its settings and provenance
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"


@functools.cache
def _warn_fallback() -> None:
    log.warning("onnxruntime is not installed: running the models with torch (slower)")


def runtime(asked: str | None = None) -> str:
    """The runtime asked for (else ``NOTESQA_RUNTIME``, else ``onnx``); ``torch`` when
    onnxruntime is missing (logged once)."""
    if asked is None:
        asked = os.environ.get("NOTESQA_RUNTIME", "onnx")
    asked = asked.strip().lower() or "onnx"
    if asked not in RUNTIMES:
        raise ValueError(f"NOTESQA_RUNTIME must be one of {', '.join(RUNTIMES)}, not {asked!r}")
    if asked != "torch" and importlib.util.find_spec("onnxruntime") is None:
        _warn_fallback()
        return "torch"
    return asked


def quantized(kind: str, chosen: str) -> bool:
    """Whether a model of ``kind`` (``embedder`` or ``reader``) runs with int8 weights on the
    ``chosen`` ONNX runtime.

    Example:
        >>> quantized("reader", "onnx"), quantized("embedder", "onnx-fp32")
        (True, False)
    """
    return {"onnx": INT8_BY_DEFAULT[kind], "onnx-int8": True}.get(chosen, False)


def cache_root() -> Path:
    """Where exports live: ``$NOTESQA_CACHE``, else ``$XDG_CACHE_HOME/notesqa/onnx``, else
    ``~/.cache/notesqa/onnx``."""
    if os.environ.get("NOTESQA_CACHE"):
        return Path(os.environ["NOTESQA_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "notesqa" / "onnx"


def folder_hash(folder: Path) -> str:
    """Short hash of every file in a model folder (names and bytes; hidden files and training
    checkpoints left out): weights, tokenizer and settings all change an export's name."""
    digest = hashlib.sha256(f"format {EXPORT_FORMAT}".encode())
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    for path in files:
        name = path.relative_to(folder).as_posix()
        if name.startswith((".", "checkpoint-")):
            continue
        digest.update(name.encode() + b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:12]


def _fsync_tree(folder: Path) -> None:
    for path in folder.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())


STALE_EXPORT_SECONDS = 3600  # a temporary export folder this old belongs to a killed export


def _remove_stale_exports(final: Path) -> None:
    """Delete the temporary folders (``.NAME-*`` beside ``final``) that exports killed before
    their rename left behind; a recent one may be another process's export in progress."""
    now = time.time()
    for stale in final.parent.glob(f".{final.name}-*"):
        try:
            old = now - stale.stat().st_mtime > STALE_EXPORT_SECONDS
        except OSError:
            continue
        if old and stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)


def cached_export(
    folder: Path, kind: str, write: Callable[[Path, Path, bool], dict], quantize: bool = True
) -> Path:
    """The export folder of the model in ``folder``, made by ``write(folder, out, quantize)``
    the first time (it writes ``model.onnx`` and ``tokenizer.json`` into ``out`` and returns the
    settings recorded in ``notesqa_onnx.json``). Built in a temporary folder and renamed into
    place; when two processes export at once, the first rename wins and both use it."""
    precision = "int8" if quantize else "fp32"
    final = cache_root() / f"{kind}-{precision}-{folder_hash(folder)}"
    if (final / EXPORT_INFO).exists():
        return final
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    except OSError as exc:
        raise OSError(
            exc.errno,
            f"cannot write the ONNX cache at {final.parent} ({exc.strerror or exc}); set "
            "NOTESQA_CACHE to a folder you can write, or NOTESQA_RUNTIME=torch to run without it",
        ) from exc
    _remove_stale_exports(final)
    log.warning("exporting the %s to ONNX (%s) once, into %s", kind, precision, final)
    try:
        settings = write(folder, tmp, quantize)
        info = {"format": EXPORT_FORMAT, "source": str(folder), "precision": precision, **settings}
        (tmp / EXPORT_INFO).write_text(json.dumps(info, indent=2))
        _fsync_tree(tmp)
        try:
            os.rename(tmp, final)
        except OSError:  # another process got there first (or a stale, incomplete folder)
            if not (final / EXPORT_INFO).exists():
                shutil.rmtree(final, ignore_errors=True)
                os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def read_info(export: Path) -> dict:
    """The settings an export recorded (``notesqa_onnx.json``)."""
    return json.loads((export / EXPORT_INFO).read_text())


def threads() -> int:
    """Threads per model: ``$NOTESQA_THREADS``, else the cores this process may use."""
    if os.environ.get("NOTESQA_THREADS"):
        try:
            return max(1, int(os.environ["NOTESQA_THREADS"]))
        except ValueError:
            raise ValueError(
                f"NOTESQA_THREADS must be a whole number of threads, not "
                f"{os.environ['NOTESQA_THREADS']!r}; unset it to use every core"
            ) from None
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def session(model_path: Path, num_threads: int | None = None):
    """An onnxruntime CPU session with every graph optimisation and ``num_threads`` threads
    (default one per core, ``threads()``), whose idle threads sleep."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = num_threads or threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only
    # idle threads sleep instead of spinning: between model runs the process tokenises, searches
    # and post-processes on the same cores (a warm ask on 2 busy cores: p50 44 ms, 112 spinning)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])


def load_tokenizer_file(path: Path):
    """A ``tokenizers.Tokenizer`` from a ``tokenizer.json``, with no truncation and no padding."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer
