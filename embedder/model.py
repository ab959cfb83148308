"""Load and describe a sentence-transformers bi-encoder (Transformer + mean pooling + normalise).

Models trained with query/passage prompts (``prompts`` in ``config_sentence_transformers.json``,
as ``notesqa train embedder`` writes them when its recipe sets ``prompts``) get them prepended by
``encode(..., kind="query" | "passage")``; for other models ``kind`` changes nothing.

Models trained with Matryoshka dims (``matryoshka_dims`` in the recipe) can be loaded with
``truncate_dim``: vectors keep their first ``truncate_dim`` components and are renormalised, so a
large collection's index shrinks (256 -> 64 dims is 4x smaller); the identity records the size.

Passages longer than a short window can also get one vector per token window besides their own
(``encode_with_windows``, see ``embedder.windows``), so a search can score a passage by its
windows as well as by its own vector.

Example:
    >>> emb = Embedder.load()                     # the shipped default
    >>> emb.encode(["a sentence", "another one"]).shape
    (2, 256)
    >>> emb.encode(["who wrote it?"], kind="query").shape
    (1, 256)
    >>> Embedder.load(truncate_dim=64).encode(["a sentence"]).shape
    (1, 64)
    >>> config = WindowConfig(tokens=4, stride=2)    # the default is 32 every 16
    >>> vectors, owners = emb.encode_with_windows(["short", "one two three four five six"], config)
    >>> owners                                    # whole passages first, then their windows
    array([0, 1, 1, 1])
"""

from __future__ import annotations

import functools
import hashlib
import logging
from pathlib import Path

import numpy as np

from embedder.onnx_runtime import quantized
from embedder.onnx_runtime import runtime as choose_runtime
from embedder.pooling import pooling_plans, torch_pooled_vectors, unit_rows
from embedder.windows import WindowConfig, untruncated_tokenizer, window_spans

# at import, not when first needed: an ONNX export appends onnxruntime's folder, which holds a
# `models` package of its own, to sys.path (in an editable install that one would be found)
from models import default_model_path

log = logging.getLogger(__name__)


def _fingerprint(folder: Path) -> str:
    """Short content hash of the weights, so an index knows exactly which model built it."""
    digest = hashlib.sha256()
    # module folders' weights too (a whitening Dense): a model with only top-level weights hashes
    # as it always did
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.safetensors"))
    for name in (n for n in names if not n.startswith((".", "checkpoint-"))):
        with open(folder / name, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:12]


class Embedder:
    """Turns texts into float32 unit vectors with a sentence-transformers model."""

    def __init__(
        self,
        model,
        name: str = "embedder",
        fingerprint: str = "",
        truncate_dim: int | None = None,
    ) -> None:
        self.model = model
        self.name = name
        self.fingerprint = fingerprint
        full = self._model_dim()
        if truncate_dim is not None and not 0 < truncate_dim <= full:
            raise ValueError(
                f"truncate_dim must be between 1 and the model's {full} dimensions, "
                f"not {truncate_dim}"
            )
        self.truncate_dim = truncate_dim if truncate_dim != full else None
        self._warned_long = False

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        device: str | None = None,
        truncate_dim: int | None = None,
        runtime: str | None = None,
    ) -> Embedder:
        """Load a sentence-transformers folder (``None`` = the shipped default embedder).

        A local folder runs on ``runtime`` (default ``NOTESQA_RUNTIME``, else ONNX: exported
        once into a cache, see ``embedder.onnx_runtime``); a hub id, or a ``device`` other than
        the CPU, on torch. Code that changes the model (``training.whitening``) asks for
        ``runtime="torch"``: only then is ``model`` a ``SentenceTransformer``.
        """
        if path is None:
            path = default_model_path("embedder")
        folder = Path(path).expanduser()
        if folder.exists():
            if not (folder / "modules.json").exists():
                raise FileNotFoundError(
                    f"{folder} is not a sentence-transformers model (modules.json missing); "
                    "train one with `notesqa train embedder` or pass its folder"
                )
            if not (folder / "tokenizer.json").exists() and not (folder / "vocab.txt").exists():
                raise FileNotFoundError(
                    f"{folder} has no tokenizer (tokenizer.json or vocab.txt); copy the tokenizer the "
                    "model was trained with into it"
                )
            kind = choose_runtime(runtime) if device in (None, "cpu") else "torch"
            if kind == "torch":
                from sentence_transformers import SentenceTransformer

                model = SentenceTransformer(str(folder), device=device or "cpu")
                model.float()
            else:
                from embedder.onnx_encoder import OnnxSentenceEncoder

                model = OnnxSentenceEncoder.load(folder, quantize=quantized("embedder", kind))
            return cls(
                model, name=folder.name, fingerprint=_fingerprint(folder), truncate_dim=truncate_dim
            )
        # not a local folder: a hub id such as "sentence-transformers/all-MiniLM-L6-v2"
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(path), device=device or "cpu")
        return cls(model, name=str(path), fingerprint="hub", truncate_dim=truncate_dim)

    @property
    def identity(self) -> str:
        """``name@fingerprint`` (``/dim`` when truncated): stored in an index's manifest."""
        suffix = f"/{self.truncate_dim}" if self.truncate_dim else ""
        return f"{self.name}@{self.fingerprint}{suffix}"

    def _model_dim(self) -> int:
        getter = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        return int(getter())

    @property
    def dim(self) -> int:
        """Size of the vectors ``encode`` returns."""
        return self.truncate_dim or self._model_dim()

    @property
    def runtime(self) -> str:
        """What runs the model: ``torch``, or ``onnx-int8`` / ``onnx-fp32``."""
        precision = getattr(self.model, "precision", None)
        return f"onnx-{precision}" if precision else "torch"

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length)

    @property
    def tokenizer(self):
        return self.model.tokenizer

    def count_tokens(self, text: str) -> int:
        """Word-piece tokens of ``text`` (no special tokens), for any length of text.

        A fast tokenizer's Rust backend counts without transformers' "longer than the maximum
        sequence length" warning (a chunker measures whole paragraphs on purpose).
        """
        counter = self._token_counter
        if counter is not None:
            return len(counter.encode(text, add_special_tokens=False).ids)
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    @functools.cached_property
    def _token_counter(self):
        """The model's fast tokenizer without truncation (``None`` for a slow tokenizer)."""
        return untruncated_tokenizer(self.tokenizer)

    @property
    def prompts(self) -> dict[str, str]:
        """The prompts the model was trained with, by kind (``{}`` when none)."""
        return {k: v for k, v in (getattr(self.model, "prompts", None) or {}).items() if v}

    def encode(
        self,
        texts: list[str],
        batch_size: int = 64,
        show_progress: bool = False,
        kind: str | None = None,
        groups: list[int] | None = None,
    ) -> np.ndarray:
        """(n, d) float32 unit vectors; on torch in batches sorted by length (sentence-transformers),
        on ONNX one text per run, or with ``groups`` (a group id per text) the same-length texts of
        a group per run (``embedder.onnx_encoder`` says why).

        ``kind`` is ``"query"`` or ``"passage"``: its prompt is prepended if the model was trained
        with one. Texts longer than the model's window (``max_seq_length`` tokens) are truncated;
        a warning is logged once per embedder.
        """
        if isinstance(texts, str):
            raise TypeError("encode() takes a list of texts; wrap a single text in a list")
        if kind not in (None, "query", "passage"):
            raise ValueError(f"kind must be 'query', 'passage' or None, not {kind!r}")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if not self._warned_long:
            limit = self.max_seq_length - 2
            if any(self.count_tokens(t) > limit for t in texts[:256]):
                log.warning("some texts exceed %d tokens and are truncated when embedded", limit)
                self._warned_long = True
        grouping = {"groups": groups} if groups is not None and self.runtime != "torch" else {}
        vectors = self.model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
            prompt_name=kind if kind in self.prompts else None,
            **grouping,
        )  # (n, full dim)
        return self._sized(vectors)

    def _sized(self, vectors: np.ndarray) -> np.ndarray:
        """(n, full dim) unit rows as this embedder returns them: cut to ``truncate_dim`` and
        renormalised when it is set, contiguous float32."""
        if self.truncate_dim:
            vectors = vectors[:, : self.truncate_dim]  # (n, truncate_dim)
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def token_windows(self, text: str, config: WindowConfig) -> list[str]:
        """The token windows of ``text`` as ``config`` cuts them (``[]`` when it fits in one),
        counted in this model's word pieces and widened to whole words."""
        if not config.enabled:
            return []
        counter = self._token_counter
        if counter is None:
            raise ValueError(
                f"token windows need a fast tokenizer (tokenizer.json) in {self.name}; save "
                "the model with its tokenizer.json or index with windows off (0 tokens)"
            )
        encoding = counter.encode(text, add_special_tokens=False)
        spans = window_spans(encoding.offsets, config, encoding.word_ids)
        return [text[start:end] for start, end in spans]

    def encode_with_windows(
        self,
        texts: list[str],
        config: WindowConfig,
        batch_size: int = 64,
        show_progress: bool = False,
        kind: str | None = "passage",
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(vectors, owners)``: each text's own vector followed by its token windows' vectors,
        text by text; ``owners[i]`` is the index of the text that vector ``i`` belongs to.

        ``vectors`` is ``(N, d)`` float32 unit rows, ``owners`` ``(N,)`` int64, non-decreasing,
        with every text present (N = len(texts) when no text is longer than a window).
        ``config.pooled`` windows are pooled from one run over each text (``embedder.pooling``).
        """
        if config.pooled and config.enabled:
            return self._pooled_with_windows(texts, config, kind)
        rows: list[str] = []
        owners: list[int] = []
        for i, text in enumerate(texts):
            pieces = [text, *self.token_windows(text, config)]
            rows.extend(pieces)
            owners.extend([i] * len(pieces))
        vectors = self.encode(
            rows, batch_size=batch_size, show_progress=show_progress, kind=kind, groups=owners
        )  # a passage's windows run together on ONNX
        return vectors, np.asarray(owners, dtype=np.int64)

    def _pooled_with_windows(
        self, texts: list[str], config: WindowConfig, kind: str | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``encode_with_windows`` by late chunking: each text runs once and its windows are
        pooled from that run; windows past the model's window are encoded alone."""
        tokenizer = self._token_counter
        if tokenizer is None:
            raise ValueError(
                f"pooled windows need a fast tokenizer (tokenizer.json) in {self.name}"
            )
        prompt = self.prompts.get(kind or "", "")
        plans = pooling_plans(tokenizer, texts, prompt, config, self.max_seq_length)
        if self.runtime == "torch":
            pooled = [unit_rows(torch_pooled_vectors(self.model, plan)) for plan in plans]
        else:
            pooled = self.model.encode_pooled(plans)  # [(1 + W_i, full dim)]
        tails = [(i, texts[i][a:b]) for i, plan in enumerate(plans) for a, b in plan.tail]
        tail_vectors = self.encode(
            [t for _, t in tails], kind=kind, groups=[i for i, _ in tails]
        )  # (tails, d)
        parts, owners, used = [], [], 0
        for i, (rows, plan) in enumerate(zip(pooled, plans, strict=True)):
            extra = len(plan.tail)  # its tail windows, encoded alone, follow its pooled ones
            parts.extend([self._sized(rows), tail_vectors[used : used + extra]])
            owners.extend([i] * (len(rows) + extra))
            used += extra
        vectors = np.concatenate(parts) if parts else np.zeros((0, self.dim), np.float32)
        return np.ascontiguousarray(vectors), np.asarray(owners, dtype=np.int64)
