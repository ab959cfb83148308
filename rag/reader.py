"""Extractive reader: find answer spans for a question in one or more contexts.

Wraps a standard `BertForQuestionAnswering` checkpoint, run by torch or, by default, by
onnxruntime (``rag.reader_runtime``; ``NOTESQA_RUNTIME`` picks, see ``embedder.onnx_runtime``).
Long contexts are cut into overlapping windows (``doc_stride``), windows are batched sorted by
length, and spans are post-processed by ``rag.spans.extract_spans`` into exact character offsets.

Example:
    >>> reader = Reader.load()                       # the shipped reader
    >>> spans, null = reader.read("Who wrote it?", ["It was written by Ada Lovelace."])[0]
    >>> spans[0].text
    'Ada Lovelace'
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from embedder.onnx_runtime import quantized
from embedder.onnx_runtime import runtime as choose_runtime

# at import, not when first needed: an ONNX export appends onnxruntime's folder, which holds a
# `models` package of its own, to sys.path (in an editable install that one would be found)
from models import default_model_path
from rag.calibration import Calibrator
from rag.reader_runtime import (
    OnnxQAModel,
    featurize_native,
    load_onnx_reader,
    window_tokenizer,
)
from rag.spans import Span, extract_spans

log = logging.getLogger(__name__)

READER_SETTINGS = "notesqa_reader.json"


def log_mean_exp(values: np.ndarray) -> float:
    """``log(mean(exp(values)))``, computed stably: the null logit of several windows.

    Example:
        >>> round(log_mean_exp(np.array([0.0, 0.0])), 4), round(log_mean_exp(np.array([2.0])), 4)
        (0.0, 2.0)
    """
    values = np.asarray(values, dtype=np.float64)
    top = float(values.max())
    return top + float(np.log(np.mean(np.exp(values - top))))


def log_sum_exp(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=np.float64)
    top = float(values.max())
    return top + float(np.log(np.sum(np.exp(values - top))))


@dataclass
class JointReading:
    """A question read over several passages at once (a multi-passage reader).

    ``spans[i]`` are passage ``i``'s ranked spans (score = start + end logit), ``null_score`` the
    question's one no-answer score (log-mean-exp of the [CLS] start logits of every window, plus
    the same of the end logits, as the reader was trained), ``log_norm`` the log of the shared
    softmax normaliser, so that ``probability(score)`` is a span's probability among all spans of
    all passages and "no answer".
    """

    spans: list[list[Span]]
    null_score: float
    log_norm: float

    def probability(self, score: float) -> float:
        return float(np.exp(min(0.0, score - self.log_norm)))

    @property
    def null_probability(self) -> float:
        return self.probability(self.null_score)


def encode_windows(
    tokenizer, questions: list[str], contexts: list[str], max_seq_length: int, doc_stride: int
):
    """Question + context windows (context split with ``doc_stride`` overlap) with offsets.

    One definition for training features and inference, so both see the same windows.
    """
    return tokenizer(
        questions,
        contexts,
        truncation="only_second",
        max_length=max_seq_length,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=False,
    )


def question_limit(settings: ReaderSettings) -> int:
    """Tokens a question may keep: ``max_query_length``, or fewer when a window would then
    hold no more context than ``doc_stride`` (the tokenizer cannot slide such a window).

    Example:
        >>> question_limit(ReaderSettings(max_seq_length=128, doc_stride=64))
        60
    """
    s = settings
    room = s.max_seq_length - s.doc_stride - 4  # [CLS] q [SEP] context [SEP], > stride left
    if room < 1:
        raise ValueError(
            f"doc_stride {s.doc_stride} leaves no room for a question in windows of "
            f"{s.max_seq_length} tokens; lower doc_stride in {READER_SETTINGS}"
        )
    return min(s.max_query_length, room)


def truncate_question(tokenizer, question: str, limit: int) -> str:
    """``question`` cut after its first ``limit`` tokens (training and inference alike)."""
    enc = tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)
    if len(enc["input_ids"]) <= limit:
        return question
    return question[: enc["offset_mapping"][limit - 1][1]]


# ``threshold`` value meaning "the null threshold stored with the reader" (the default)
STORED = "stored"


@dataclass
class ReaderSettings:
    """Inference settings saved beside a reader checkpoint (``notesqa_reader.json``)."""

    max_seq_length: int = 384
    doc_stride: int = 128
    max_query_length: int = 64
    n_best_size: int = 20
    max_answer_length: int = 30
    batch_size: int = 32
    null_threshold: float | None = None  # abstain when null score - best span score > this
    # trained with its scores normalised jointly over all passages of a question (shared
    # normalisation): span scores compare across passages and there is one null score per question
    multi_passage: bool = False

    @classmethod
    def load(cls, folder: Path) -> ReaderSettings:
        path = folder / READER_SETTINGS
        if not path.exists():
            return cls()
        data = json.loads(path.read_text())
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def save(self, folder: Path) -> None:
        (folder / READER_SETTINGS).write_text(json.dumps(asdict(self), indent=2))


class Reader:
    """A question-answering model plus its tokenizer and window settings.

    ``model`` is a torch ``BertForQuestionAnswering`` with a transformers tokenizer, or an
    ``OnnxQAModel`` with a ``tokenizers.Tokenizer`` (as ``Reader.load`` gives on ONNX).
    """

    def __init__(
        self, model, tokenizer, settings: ReaderSettings | None = None, name: str = "reader"
    ):
        native = isinstance(model, OnnxQAModel)
        self.model = model if native else model.eval()
        self.tokenizer = tokenizer
        self.settings = settings or ReaderSettings()
        self.name = name
        self.calibrator: Calibrator | None = None  # answer confidence, if fitted
        self.device = "cpu" if native else next(model.parameters()).device
        self.pad_token_id = model.pad_token_id if native else tokenizer.pad_token_id
        self._windows: dict[tuple[int, int], Tokenizer] = {}  # window tokenizers by settings

    @property
    def runtime(self) -> str:
        """What runs the model: ``torch``, or ``onnx-int8`` / ``onnx-fp32``."""
        return f"onnx-{self.model.precision}" if isinstance(self.model, OnnxQAModel) else "torch"

    @classmethod
    def load(
        cls, path: str | Path | None = None, device: str | None = None, runtime: str | None = None
    ) -> Reader:
        """Load a reader folder (``None`` = the shipped default) on ``runtime`` (default
        ``NOTESQA_RUNTIME``, else ONNX with int8 weights; torch for a ``device`` other than the
        CPU, see ``embedder.onnx_runtime``)."""
        if path is None:
            path = default_model_path("reader")
        folder = Path(path).expanduser()
        if not (folder / "config.json").exists():
            raise FileNotFoundError(
                f"no reader checkpoint at {folder} (config.json missing); pass --model DIR"
            )
        kind = choose_runtime(runtime) if device in (None, "cpu") else "torch"
        if kind == "torch":
            import torch
            from transformers import AutoModelForQuestionAnswering

            from embedder.tokenizer_files import load_tokenizer

            tokenizer = load_tokenizer(folder)
            model = AutoModelForQuestionAnswering.from_pretrained(str(folder), dtype=torch.float32)
            model.to(device or "cpu")
        else:
            model, tokenizer = load_onnx_reader(folder, quantize=quantized("reader", kind))
        reader = cls(model, tokenizer, ReaderSettings.load(folder), name=folder.name)
        reader.calibrator = Calibrator.load(folder)
        return reader

    def question_limit(self) -> int:
        """Tokens a question may keep (``question_limit`` of this reader's settings)."""
        return question_limit(self.settings)

    def _truncate_question(self, question: str) -> str:
        return truncate_question(self.tokenizer, question, self.question_limit())

    def featurize(self, pairs: Sequence[tuple[str, str]]) -> dict:
        """Tokenise (question, context) pairs into windows with context-only offsets."""
        s = self.settings
        if isinstance(self.tokenizer, Tokenizer):
            key = (s.max_seq_length, s.doc_stride)
            if key not in self._windows:
                self._windows[key] = window_tokenizer(self.tokenizer, *key)
            return featurize_native(
                self.tokenizer, self._windows[key], pairs, self.question_limit()
            )
        enc = encode_windows(
            self.tokenizer,
            [self._truncate_question(q) for q, _ in pairs],
            [c for _, c in pairs],
            s.max_seq_length,
            s.doc_stride,
        )
        offsets = []
        for i in range(len(enc["input_ids"])):
            seq_ids = enc.sequence_ids(i)
            # only tokens of the context (sequence 1) may start or end an answer
            offsets.append(
                [
                    tuple(o) if seq_ids[t] == 1 else None
                    for t, o in enumerate(enc["offset_mapping"][i])
                ]
            )
        return {
            "input_ids": enc["input_ids"],
            "token_type_ids": enc["token_type_ids"],
            "pair_index": list(enc["overflow_to_sample_mapping"]),
            "offsets": offsets,
        }

    def _forward(
        self, ids: np.ndarray, types: np.ndarray, mask: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(B, T) start and end logits of (B, T) int64 inputs, on either runtime."""
        if isinstance(self.model, OnnxQAModel):
            return self.model(ids, types, mask)
        import torch

        with torch.no_grad():
            out = self.model(
                input_ids=torch.from_numpy(ids).to(self.device),
                token_type_ids=torch.from_numpy(types).to(self.device),
                attention_mask=torch.from_numpy(mask).to(self.device),
            )
        return out.start_logits.float().cpu().numpy(), out.end_logits.float().cpu().numpy()

    def logits(self, features: dict) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Start/end logits per window, batched by length (longest first) for speed.

        On ONNX int8 each run quantises its activations with one scale, so a window's logits
        move a little with the windows batched beside it (unlike the embedder, whose vectors are
        stored and must not, the reader's scores are read once per question): on 1,000 SQuAD
        questions that cost 0.18 F1 against torch (``benchmarks/speed.py``)."""
        n = len(features["input_ids"])
        order = sorted(range(n), key=lambda i: -len(features["input_ids"][i]))
        starts: list[np.ndarray] = [None] * n  # type: ignore[list-item]
        ends: list[np.ndarray] = [None] * n  # type: ignore[list-item]
        for b in range(0, n, self.settings.batch_size):
            idx = order[b : b + self.settings.batch_size]
            width = max(len(features["input_ids"][i]) for i in idx)
            ids = np.full((len(idx), width), self.pad_token_id, dtype=np.int64)  # (B, T)
            types = np.zeros((len(idx), width), dtype=np.int64)  # (B, T)
            mask = np.zeros((len(idx), width), dtype=np.int64)  # (B, T)
            for row, i in enumerate(idx):
                length = len(features["input_ids"][i])
                ids[row, :length] = features["input_ids"][i]
                types[row, :length] = features["token_type_ids"][i]
                mask[row, :length] = 1
            start_logits, end_logits = self._forward(ids, types, mask)  # (B, T) each
            for row, i in enumerate(idx):
                length = len(features["input_ids"][i])
                starts[i] = start_logits[row, :length]
                ends[i] = end_logits[row, :length]
        return starts, ends

    def read_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[list[Span], float]]:
        """For each (question, context): ranked spans and the null score."""
        if not pairs:
            return []
        features = self.featurize(pairs)
        starts, ends = self.logits(features)
        return self._spans_per_context(features, starts, ends, [c for _, c in pairs])

    def _spans_per_context(
        self, features: dict, starts: list, ends: list, contexts: Sequence[str]
    ) -> list[tuple[list[Span], float]]:
        """Ranked spans and the null score of each context, from its windows' logits."""
        by_pair: dict[int, list[int]] = {}
        for f, p in enumerate(features["pair_index"]):
            by_pair.setdefault(int(p), []).append(f)
        results = []
        for p, context in enumerate(contexts):
            fs = by_pair.get(p, [])
            if not fs:
                results.append(([], 0.0))
                continue
            width = max(len(starts[f]) for f in fs)
            start = np.full((len(fs), width), -1e4, dtype=np.float32)  # (F, T)
            end = np.full((len(fs), width), -1e4, dtype=np.float32)  # (F, T)
            for row, f in enumerate(fs):
                start[row, : len(starts[f])] = starts[f]
                end[row, : len(ends[f])] = ends[f]
            offsets = [features["offsets"][f] for f in fs]
            results.append(
                extract_spans(
                    start,
                    end,
                    offsets,
                    context,
                    self.settings.n_best_size,
                    self.settings.max_answer_length,
                )
            )
        return results

    def read_jointly(self, question: str, contexts: Sequence[str]) -> JointReading:
        """Spans for one question over all ``contexts`` at once, with one null score and the
        shared normaliser (see ``JointReading``); meaningful for a ``multi_passage`` reader."""
        return self.read_groups([(question, contexts)])[0]

    def read_groups(self, groups: Sequence[tuple[str, Sequence[str]]]) -> list[JointReading]:
        """``read_jointly`` of each ``(question, contexts)``, all their windows batched together
        (evaluations read thousands of questions; one at a time is several times slower)."""
        pairs = [(question, c) for question, contexts in groups for c in contexts]
        if not pairs:
            return [JointReading([], 0.0, 0.0) for _ in groups]
        features = self.featurize(pairs)
        starts, ends = self.logits(features)
        found = self._spans_per_context(features, starts, ends, [c for _, c in pairs])
        windows_of: dict[int, list[int]] = {}
        for f, p in enumerate(features["pair_index"]):
            windows_of.setdefault(int(p), []).append(f)
        readings, first = [], 0
        for _, contexts in groups:
            last = first + len(contexts)
            windows = [f for p in range(first, last) for f in windows_of.get(p, [])]
            spans = [spans for spans, _ in found[first:last]]
            first = last
            if not windows:
                readings.append(JointReading(spans, 0.0, 0.0))
                continue
            null_start = log_mean_exp(np.array([starts[f][0] for f in windows]))
            null_end = log_mean_exp(np.array([ends[f][0] for f in windows]))
            # the shared softmax runs over every context token of every window, and "no answer"
            context = [[o is not None for o in features["offsets"][f]] for f in windows]
            context_start = [starts[f][keep] for f, keep in zip(windows, context, strict=True)]
            context_end = [ends[f][keep] for f, keep in zip(windows, context, strict=True)]
            log_norm = log_sum_exp(np.concatenate([*context_start, [null_start]])) + log_sum_exp(
                np.concatenate([*context_end, [null_end]])
            )
            readings.append(JointReading(spans, null_start + null_end, log_norm))
        return readings

    def relevance(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """(len(pairs),) float32: how strongly each context answers its question, the best span's
        score minus the null score (the reader's own no-answer evidence); -inf where no span fits.

        Example:
            >>> reader = Reader.load()                       # the shipped reader
            >>> scores = reader.relevance([("Who wrote it?", "It was written by Ada Lovelace."),
            ...                            ("Who wrote it?", "It rained all day.")])
            >>> scores.shape, bool(scores[0] > scores[1])   # the first context answers it
            ((2,), True)
        """
        scores = [
            spans[0].score - null if spans else -np.inf for spans, null in self.read_pairs(pairs)
        ]
        return np.asarray(scores, dtype=np.float32)

    def read(self, question: str, contexts: Sequence[str]) -> list[tuple[list[Span], float]]:
        """Spans for one question in each of ``contexts``."""
        return self.read_pairs([(question, c) for c in contexts])

    def abstains(
        self, best: Span | None, null_score: float, threshold: float | None | str = STORED
    ) -> bool:
        """True when the model prefers "no answer" by more than ``threshold``: by default the
        one stored with the reader; a number overrides it; None never abstains on a span."""
        if best is None:
            return True
        if threshold == STORED:
            threshold = self.settings.null_threshold
        return threshold is not None and null_score - best.score > threshold
