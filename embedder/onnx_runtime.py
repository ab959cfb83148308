"""Which runtime runs a shipped model, and the ONNX cache both the embedder and the reader use.

``NOTESQA_RUNTIME`` picks the runtime: ``onnx`` (the default when onnxruntime is installed: each
model exported once to ONNX with dynamic int8 weights; ``INT8_BY_DEFAULT`` can keep one in
float), ``onnx-int8`` (both int8 whatever that says), ``onnx-fp32`` (neither) or ``torch`` (the
models as trained; training uses it). An exported model lives in
``$NOTESQA_CACHE`` (default ``$XDG_CACHE_HOME/notesqa/onnx``, else ``~/.cache/notesqa/onnx``), in
a folder named after the model and a hash of every file of its folder, so a retrained model gets a
new export and an unchanged one is exported only once. The folder is built under a temporary name
and swapped into place (``embedder.owned_folder``): a reader never sees half an export. Its info
file records the sha256 of every file; an export is checked against them once per process
(``export_problem``), and a damaged one (a truncated or garbage model, a missing tokenizer, an
edited info file) is removed, with one warning, and exported again. Nothing here imports torch.

Example (``NOTESQA_RUNTIME`` unset; the first export of a model takes seconds, later ones none):
    >>> runtime()                                     # "torch" without onnxruntime installed
    'onnx'
    >>> from embedder.onnx_export import write_embedder_export
    >>> cached_export(Path("models/embedder"), "embedder", write_embedder_export).name
    'embedder-int8-...'
"""

from __future__ import annotations

import errno
import functools
import hashlib
import importlib.util
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

from embedder.owned_folder import MARKER, discard, fsync_path, fsync_tree, new_temp, remove_owned

log = logging.getLogger(__name__)

RUNTIMES = ("onnx", "onnx-int8", "onnx-fp32", "torch")
# int8 weights on the ``onnx`` runtime, by model kind (benchmarks/speed.py measures the cost)
INT8_BY_DEFAULT = {"embedder": True, "reader": True}
EXPORT_FORMAT = 3  # bump when an export's files or graph change: old exports are then ignored
# (2: the info file records every file's sha256 and its own checksum; the folder is marked;
# 3: the embedder's graph also pools rows of token weights, for late chunking)
EXPORT_INFO = "notesqa_onnx.json"  # written last into an export: its settings and provenance
MODEL_FILE = "model.onnx"
POOL_INPUT = "pool_weights"  # the embedder graph's (B, W, T) rows of token weights to pool
TOKENIZER_FILE = "tokenizer.json"
INFO_KEYS = ("format", "source", "precision", "files", "checksum")  # in every info file
OWNED_KIND = "onnx export"  # the kind in an export folder's .notesqa-owned record


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
    """Short hash of every file in a model folder (names and bytes; hidden files and folders,
    such as notesqa's marker, and training checkpoints left out): weights, tokenizer and
    settings all change an export's name."""
    digest = hashlib.sha256(f"format {EXPORT_FORMAT}".encode())
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    for path in files:
        parts = path.relative_to(folder).parts
        if parts[0].startswith("checkpoint-") or any(part.startswith(".") for part in parts):
            continue
        name = "/".join(parts)
        digest.update(name.encode() + b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:12]


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_hashes(export: Path) -> dict[str, str]:
    """``{name: sha256}`` of every file of an export but its info file and marker."""
    return {
        path.relative_to(export).as_posix(): _file_sha256(path)
        for path in sorted(export.rglob("*"))
        if path.is_file() and path.name not in (EXPORT_INFO, MARKER)
    }


def _checksum(info: dict) -> str:
    """sha256 of the info file's content but its own checksum (a key removed or edited shows)."""
    rest = {k: v for k, v in info.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(rest, sort_keys=True).encode()).hexdigest()


def _stamp(export: Path) -> tuple:
    """What the files of an export look like to ``stat`` (cheap): a change means hash again."""
    try:
        return tuple(
            (p.name, p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_ino)
            for p in sorted(export.iterdir())
        )
    except OSError:
        return ()


_VERIFIED: dict[Path, tuple] = {}  # export folder -> its _stamp when its hashes last matched


def export_problem(export: Path) -> str | None:
    """What is wrong with the export in ``export`` (its info file unreadable or missing a key,
    a file missing or not matching the sha256 it recorded), or ``None`` when it is whole. The
    files are hashed once per process (about 15 ms for an int8 model); later calls compare
    ``stat`` results only.

    Example:
        >>> export_problem(Path("/nonexistent"))
        'notesqa_onnx.json is missing or not a JSON object'
    """
    stamp = _stamp(export)
    if stamp and _VERIFIED.get(export) == stamp:
        return None
    try:
        info = json.loads((export / EXPORT_INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        info = None
    if not isinstance(info, dict):
        return f"{EXPORT_INFO} is missing or not a JSON object"
    missing = [key for key in INFO_KEYS if key not in info]
    if missing:
        return f"{EXPORT_INFO} lacks {', '.join(missing)}"
    if info["checksum"] != _checksum(info) or not isinstance(info["files"], dict):
        return f"{EXPORT_INFO} was changed after the export (a key missing or edited)"
    if info["format"] != EXPORT_FORMAT:
        return f"it has format {info['format']!r}, not {EXPORT_FORMAT}"
    for name in (MODEL_FILE, TOKENIZER_FILE):
        if name not in info["files"]:
            return f"{EXPORT_INFO} records no {name}"
    for name, digest in info["files"].items():
        path = export / name
        if not path.is_file():
            return f"{name} is missing"
        if _file_sha256(path) != digest:
            return f"{name} does not match its recorded sha256 (truncated or overwritten)"
    _VERIFIED[export] = stamp
    return None


def _export_error(final: Path, what: str, exc: BaseException | None = None) -> ValueError:
    cause = f": {type(exc).__name__}: {exc}" if exc is not None else ""
    return ValueError(
        f"the ONNX export at {final} {what}{cause}; delete that folder and run again, set "
        "NOTESQA_CACHE to another folder, or NOTESQA_RUNTIME=torch to run without the cache"
    )


def _repaired_meanwhile(final: Path) -> bool:
    """After a damaged export could not be removed: whether another process removed it (or
    removed it and exported again) meanwhile, so this one may go on."""
    return not os.path.lexists(final) or export_problem(final) is None


def _move_into_place(tmp: Path, final: Path) -> bool:
    """Rename the finished export ``tmp`` to ``final`` with one plain rename, never over an
    export another process already put there (which it may be loading). Returns ``False`` when
    ``final`` appeared meanwhile (the rename fails with ENOTEMPTY/EEXIST): the caller discards
    ``tmp`` and uses ``final``."""
    fsync_tree(tmp)
    try:
        os.rename(tmp, final)
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            return False
        raise
    fsync_path(final.parent)
    return True


def cached_export(
    folder: Path, kind: str, write: Callable[[Path, Path, bool], dict], quantize: bool = True
) -> Path:
    """The export folder of the model in ``folder``, made by ``write(folder, out, quantize)``
    the first time (it writes ``model.onnx`` and ``tokenizer.json`` into ``out`` and returns the
    settings recorded in ``notesqa_onnx.json``, with the sha256 of every file). Built in a
    marked temporary folder and renamed into place with one plain rename; when two processes
    export at once, the first one in wins and both use it (the later one's rename fails, never
    replacing an export the first may be loading). An export that fails its check (``export_problem``) is
    removed with one warning and made again; if that fails, one ``ValueError`` names the
    folder, ``NOTESQA_CACHE`` and ``NOTESQA_RUNTIME=torch``."""
    precision = "int8" if quantize else "fp32"
    final = cache_root() / f"{kind}-{precision}-{folder_hash(folder)}"
    damage = None
    if os.path.lexists(final):
        damage = export_problem(final)
        if damage is None:
            return final
        log.warning("the ONNX export at %s is damaged (%s): exporting it again", final, damage)
        try:
            removed = remove_owned(final)
        except OSError as exc:
            if not _repaired_meanwhile(final):
                raise _export_error(
                    final, f"is damaged ({damage}) and cannot be removed", exc
                ) from exc
            removed = True
        if not removed and not _repaired_meanwhile(final):
            raise _export_error(final, f"is damaged ({damage}) and was not written by notesqa")
        if os.path.lexists(final) and export_problem(final) is None:
            return final  # another process exported it again meanwhile: use that
    try:
        tmp = new_temp(final, OWNED_KIND)  # (the leftovers of killed exports are removed)
    except OSError as exc:
        raise OSError(
            exc.errno,
            f"cannot write the ONNX cache at {final.parent} ({exc.strerror or exc}); set "
            "NOTESQA_CACHE to a folder you can write, or NOTESQA_RUNTIME=torch to run without it",
        ) from exc
    if damage is None:
        log.warning("exporting the %s to ONNX (%s) once, into %s", kind, precision, final)
    try:
        settings = write(folder, tmp, quantize)
        info = {"format": EXPORT_FORMAT, "source": str(folder), "precision": precision, **settings}
        info["files"] = file_hashes(tmp)
        info["checksum"] = _checksum(info)
        (tmp / EXPORT_INFO).write_text(json.dumps(info, indent=2))
        if export_problem(final) is None:  # another process got there first: use its export
            discard(tmp)
            return final
        if not _move_into_place(tmp, final):  # lost the race to another process
            discard(tmp)
            problem = export_problem(final)
            if problem is not None:
                raise _export_error(final, f"was written meanwhile by another process ({problem})")
            return final
    except Exception as exc:
        discard(tmp)
        if damage is None:
            raise
        raise _export_error(
            final, f"was damaged ({damage}) and exporting again failed", exc
        ) from exc
    except BaseException:
        discard(tmp)
        raise
    _VERIFIED[final] = _stamp(final)
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
