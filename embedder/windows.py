"""Token windows of a passage: the extra vectors that let a short window speak for a long passage.

A mean-pooled vector of a long passage averages the sentence a question asks about with the
rest. Cutting the passage into overlapping windows of ``tokens`` word pieces every ``stride``
and keeping one vector per window (plus the whole passage's) lets a search score the passage by
its best window (MaxP, Dai and Callan 2019; the notes index now uses a soft maximum over all of
them, ``rag.window_scores.soft_best``: Recall@5 0.755 against 0.747 for the best alone). Measured with
an earlier shipped embedder on SQuAD dev (``benchmarks/tuning/hybrid_fusion.py``), the best window
alone: dense Recall@5 0.630 for one vector per paragraph, 0.741 with the paragraph's and its
32-token windows' every 16 (the default: about 10 vectors per paragraph,
hybrid Recall@5 0.921 -> 0.924); 16-token windows reach 0.779 at twice the vectors.

Example:
    >>> config = WindowConfig(tokens=3, stride=2)
    >>> window_spans([(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)], config)   # "a b c d e"
    [(0, 5), (4, 9)]
    >>> WindowConfig(tokens=0).enabled        # one vector per passage
    False
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class WindowConfig:
    """Windows of ``tokens`` word pieces every ``stride``; ``tokens`` 0 turns them off.

    A passage of at most ``tokens`` word pieces gets no windows (its own vector is the window).
    ``pooled`` windows are mean-pooled from the passage's own token states, one model run per
    passage (late chunking, ``embedder.pooling``), instead of each window being run alone; it
    needs an embedder trained for it (``pooled_windows`` in its recipe).
    """

    tokens: int = 32
    stride: int = 16
    pooled: bool = False

    def __post_init__(self) -> None:
        if self.tokens < 0:
            raise ValueError(f"window tokens must be >= 0 (0 = no windows), got {self.tokens}")
        if self.tokens and not 0 < self.stride <= self.tokens:
            raise ValueError(
                f"window stride must be between 1 and the window's {self.tokens} tokens, got "
                f"{self.stride}; a larger stride would skip text"
            )

    @classmethod
    def of(cls, tokens: int, stride: int | None = None, pooled: bool = False) -> WindowConfig:
        """Windows of ``tokens`` tokens every ``stride`` (default: half the window).

        Example:
            >>> WindowConfig.of(32)
            WindowConfig(tokens=32, stride=16, pooled=False)
        """
        return cls(tokens=tokens, stride=stride or max(tokens // 2, 1), pooled=pooled)

    @property
    def enabled(self) -> bool:
        return self.tokens > 0

    def to_dict(self) -> dict:
        """What an index's manifest records (``{"tokens": 0, "stride": 0}`` when off; ``pooled``
        only when true, so the manifests written before it compare equal)."""
        if not self.enabled:
            return {"tokens": 0, "stride": 0}
        record = asdict(self)
        if not self.pooled:
            del record["pooled"]
        return record


WINDOWS_RECORD = "notesqa_windows.json"  # in an embedder folder: the windows it was trained for


def trained_windows(folder: str | Path | None = None) -> WindowConfig:
    """The windows a new index with the embedder in ``folder`` (default: the shipped one)
    uses: those its ``notesqa_windows.json`` records (written by ``training.pooled_windows``,
    carried by the later stages), else ``WindowConfig()`` (windows encoded alone); a hub id,
    not a folder, gets the default too.

    Example:
        >>> trained_windows("no/such/folder")
        WindowConfig(tokens=32, stride=16, pooled=False)
    """
    if folder is None:
        from models import default_model_path

        folder = default_model_path("embedder")
    path = Path(folder).expanduser() / WINDOWS_RECORD
    if not path.is_file():
        return WindowConfig()
    try:
        return WindowConfig(**json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"{path} is not a windows record ({error}); remove it to index with the default "
            "windows, or train the embedder again"
        ) from error


def record_trained_windows(folder: str | Path, config: WindowConfig) -> None:
    """Write ``config`` as the windows the embedder in ``folder`` was trained for."""
    text = json.dumps(config.to_dict(), indent=2) + "\n"
    (Path(folder) / WINDOWS_RECORD).write_text(text, encoding="utf-8")


def carry_trained_windows(source: str | Path, target: str | Path) -> None:
    """Copy ``source``'s windows record (if any) into ``target``: a model made from a model
    trained for pooled windows (a later stage, its whitening, its fp16 export) keeps it."""
    path = Path(source) / WINDOWS_RECORD
    if path.is_file():
        (Path(target) / WINDOWS_RECORD).write_bytes(path.read_bytes())


def window_ranges(
    count: int, config: WindowConfig, word_ids: Sequence[int | None] | None = None
) -> list[tuple[int, int]]:
    """``(first, end)`` token ranges (end exclusive) of the windows of a text of ``count`` word
    pieces; ``[]`` when it fits in one window.

    The windows start every ``stride`` tokens and the last one ends with the text, so every
    token is in at least one window of ``tokens`` tokens. With ``word_ids`` (the word of every
    token, as a fast tokenizer's encoding gives them) a window that would cut a word in two
    grows to the whole word, so no window starts or ends with a fragment.

    Example:
        >>> window_ranges(5, WindowConfig(tokens=3, stride=2))
        [(0, 3), (2, 5)]
    """
    if not config.enabled or count <= config.tokens:
        return []
    width, stride = config.tokens, config.stride
    starts = list(range(0, count - width + 1, stride))
    if starts[-1] + width < count:  # the last window ends where the text does
        starts.append(count - width)
    ranges: list[tuple[int, int]] = []
    for first in starts:
        last = first + width - 1
        if word_ids is not None:
            while (
                first > 0 and word_ids[first] is not None and word_ids[first - 1] == word_ids[first]
            ):
                first -= 1
            while (
                last < count - 1
                and word_ids[last] is not None
                and word_ids[last + 1] == word_ids[last]
            ):
                last += 1
        if not ranges or ranges[-1] != (first, last + 1):
            ranges.append((first, last + 1))
    return ranges


def window_spans(
    offsets: Sequence[tuple[int, int]],
    config: WindowConfig,
    word_ids: Sequence[int | None] | None = None,
) -> list[tuple[int, int]]:
    """``(start, end)`` character spans of the windows of a text whose word pieces have the
    character ``offsets`` given (no special tokens); ``[]`` when the text fits in one window.
    The windows are ``window_ranges``'s, widened to whole words when ``word_ids`` are given.
    """
    spans: list[tuple[int, int]] = []
    for first, end in window_ranges(len(offsets), config, word_ids):
        span = (offsets[first][0], offsets[end - 1][1])
        if not spans or spans[-1] != span:
            spans.append(span)
    return spans


def untruncated_tokenizer(tokenizer):
    """A copy of a transformers fast tokenizer's backend (or of a ``tokenizers.Tokenizer``)
    that never truncates or pads; ``None`` for a slow tokenizer. The model's own backend may
    carry the truncation it was trained with (a sentence-transformers save keeps it), which would
    cap every count, and every window, at the model's window."""
    from tokenizers import Tokenizer

    if isinstance(tokenizer, Tokenizer):
        backend = tokenizer
    else:
        backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None

    copy = Tokenizer.from_str(backend.to_str())
    copy.no_truncation()
    copy.no_padding()
    return copy
