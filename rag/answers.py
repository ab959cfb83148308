"""From retrieved passages to the answers a user sees: read, fuse, merge, calibrate, abstain.

Two readers are served:

* a **multi-passage** reader (``ReaderSettings.multi_passage``), trained with one softmax over all
  passages of a question: every candidate span is ranked by the BERTserini fusion
  ``(1 - mu) * retrieval + mu * log p(span)`` (retrieval min-max normalised over the passages,
  so every mode is on one scale), spans that overlap in the source are merged (the best kept),
  and each answer gets ``confidence`` = P(right) from the reader's ``Calibrator``; the product
  abstains when the top answer's confidence is below ``min_confidence``;
* a single-passage reader (older checkpoints): spans ranked by score and the stored per-passage
  no-answer threshold, as before.

Either reads a Markdown passage's plain-text view (``rag.plaintext``: no heading marks,
backticks, link or math delimiters) and cites the answer in the source characters.

Example (one retrieved passage, at character 120 of its note; the shipped reader):
    >>> from rag.reader import Reader
    >>> text = "Adam keeps two moving averages for every parameter. Momentum adds a velocity term."
    >>> hits = [SearchHit(text, 1.0, "optimisers.md", 120, 120 + len(text), heading="Adam")]
    >>> answer = extract_answers(Reader.load(), "What does Adam keep for every parameter?", hits)[0]
    >>> answer.text, answer.source, answer.start, answer.end      # offsets in the note
    ('two moving averages', 'optimisers.md', 131, 150)
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass

import numpy as np

from rag.calibration import FEATURES, answer_features, safe_log
from rag.chunking import Chunk
from rag.locations import advance
from rag.metrics import normalize_answer
from rag.plaintext import is_markdown, plain_view, source_span
from rag.reader import STORED, JointReading, Reader
from rag.span_edges import answer_edges
from rag.spans import Span, surrounding_sentence

SPANS_PER_PASSAGE = 5  # candidates read from each passage before fusion and merging
DEFAULT_MU = 0.5  # fusion weight without a calibrator (the calibrator stores a tuned one)


@dataclass
class SearchHit:
    text: str
    score: float  # depends on the retrieval mode: see rag.retrieve
    source: str  # file path relative to the notes folder
    start: int  # character offsets of the passage in that file
    end: int
    heading: str
    # 1-based line and column of ``start`` in the file (``rag.locations``); None when the index
    # predates stored positions
    line: int | None = None
    column: int | None = None
    tags: tuple[str, ...] = ()  # the note's tags (front matter and inline #tags)

    def to_dict(self) -> dict:
        return {**asdict(self), "tags": list(self.tags)}

    @classmethod
    def from_chunk(cls, chunk: Chunk, score: float) -> SearchHit:
        """The hit of a stored passage (``rag.chunking.Chunk``), its position included."""
        return cls(
            chunk.text,
            score,
            chunk.source,
            chunk.start,
            chunk.end,
            chunk.heading,
            chunk.line,
            chunk.column,
            chunk.tags,
        )


@dataclass
class Answer:
    text: str
    score: float  # ranking score: the fused score (multi-passage reader) or start + end logit
    source: str
    start: int  # character offsets of the answer in the source file
    end: int
    context: str  # the passage the answer was read from
    heading: str = ""
    # character offset of ``context`` in the file (the answer is at start - context_start)
    context_start: int = 0
    sentence: str = ""  # the sentence around the answer, whitespace collapsed
    confidence: float | None = None  # P(right), with a calibrated multi-passage reader
    # 1-based line and column of ``start`` in the file; None when its passage's are unknown
    line: int | None = None
    column: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def overlaps(a: Answer, b: Answer) -> bool:
    """Whether two answers share characters of the same file.

    Example:
        >>> x = Answer("two moving averages", 1.0, "a.md", 10, 29, "")
        >>> overlaps(x, Answer("moving averages", 0.5, "a.md", 14, 29, "")), overlaps(
        ...     x, Answer("Adam", 0.5, "a.md", 0, 4, ""))
        (True, False)
    """
    return a.source == b.source and a.start < b.end and b.start < a.end


def merge_overlapping(ranked: list[Answer]) -> list[Answer]:
    """``ranked`` (best first) without any answer that overlaps a better one in its file:
    overlapping windows and passages find the same span several times."""
    kept: list[Answer] = []
    for answer in ranked:
        if not any(overlaps(answer, better) for better in kept):
            kept.append(answer)
    return kept


def min_max(values: list[float]) -> list[float]:
    top, bottom = max(values), min(values)
    if top == bottom:
        return [1.0] * len(values)
    return [(v - bottom) / (top - bottom) for v in values]


@dataclass
class View:
    """What the reader reads of a passage: its plain-text view (Markdown) or the text itself."""

    text: str
    offsets: list[int] | None  # source index of each view character; None: the text itself


def reader_view(passage: SearchHit) -> View:
    if is_markdown(passage.source):
        return View(*plain_view(passage.text))
    return View(passage.text, None)


def _answer(passage: SearchHit, view: View, span: Span, score: float) -> Answer:
    """An answer in the passage's file: the span's words as read (no markup), with what the
    tokenizer split off its edges given back and a sentence's punctuation taken off
    (``rag.span_edges``: "-20", "$?", "--force"), its offsets in the source characters they came
    from."""
    view_start, view_end = answer_edges(view.text, span.start, span.end)
    start, end = view_start, view_end
    if view.offsets is not None:
        start, end = source_span(view.offsets, view_start, view_end)
    line = column = None
    if passage.line is not None and passage.column is not None:
        # the passage is a slice of the file's text, so its characters before the answer are
        # the file's: count their line breaks from the passage's own position
        line, column = advance(passage.line, passage.column, passage.text[:start])
    return Answer(
        view.text[view_start:view_end],
        score,
        passage.source,
        passage.start + start,
        passage.start + end,
        passage.text,
        passage.heading,
        passage.start,
        surrounding_sentence(view.text, view_start, view_end),
        line=line,
        column=column,
    )


def rank_joint_answers(
    reading: JointReading,
    passages: list[SearchHit],
    mu: float,
    top_answers: int,
    views: list[View] | None = None,
) -> tuple[list[Answer], np.ndarray]:
    """The ``top_answers`` best answers of a joint reading under fusion weight ``mu``, overlaps
    and answers of the same normalised words merged (the best kept), and their ``(n, len(FEATURES))`` calibration features (``confidence``: the span's
    probability until a calibrator says better). ``views``: what was read of each passage."""
    views = views or [View(p.text, None) for p in passages]
    retrieval = min_max([p.score for p in passages])
    candidates = []  # (fused score, passage index, span, probability)
    mass: dict[str, float] = defaultdict(float)  # probability of each answer's words
    for i, spans in enumerate(reading.spans):
        for span in spans[:SPANS_PER_PASSAGE]:
            probability = reading.probability(span.score)
            mass[normalize_answer(span.text)] += probability
            fused = (1 - mu) * retrieval[i] + mu * safe_log(probability)
            candidates.append((fused, i, span, probability))
    candidates.sort(key=lambda c: -c[0])
    ranked: list[Answer] = []
    rows = []
    null_log = safe_log(reading.null_probability)
    said: set[str] = set()  # the normalised words of the answers kept
    for fused, i, span, probability in candidates:
        answer = _answer(passages[i], views[i], span, fused)
        # the same characters (overlapping windows, passages or spans) or the same words found
        # elsewhere ("-20 to 19" in two notes) are one answer: the better one is kept
        words = normalize_answer(answer.text) or answer.text  # "$?" has no words
        if words in said or any(overlaps(answer, better) for better in ranked):
            continue
        said.add(words)
        answer.confidence = probability  # until a calibrator says better
        ranked.append(answer)
        agreement = safe_log(mass[normalize_answer(span.text)])
        rows.append(
            answer_features(safe_log(probability), null_log, agreement, retrieval[i], i, len(rows))
        )
        if len(ranked) == top_answers:
            break
    return ranked, np.asarray(rows, dtype=np.float64).reshape(len(rows), len(FEATURES))


def extract_joint_answers(
    reader: Reader,
    question: str,
    passages: list[SearchHit],
    top_answers: int = 3,
    min_confidence: float | None | str = STORED,
    reading: JointReading | None = None,
) -> list[Answer]:
    """Answers of a multi-passage reader, most confident first, each with its ``confidence``;
    [] when it abstains. ``reading``: the passages' views already read (``Reader.read_groups``
    reads many questions at once), else they are read now.

    ``min_confidence`` is the bar every answer listed must reach: the calibrator's stored
    default (``STORED``), a number in [0, 1], or ``None`` never to abstain (every answer found
    is listed). Without a calibrator the fusion weight is 0.5, answers are ranked by the fused
    score and carry the shared-softmax probability of their span as confidence, and ``STORED``
    never abstains (there is no stored bar).

    Example (a reader whose reading is given; its confidence is sigmoid(log p(span) + 2)):
        >>> from rag.calibration import Calibrator
        >>> from rag.reader import ReaderSettings
        >>> class Given:
        ...     settings = ReaderSettings(multi_passage=True)
        ...     calibrator = Calibrator([1, 0, 0, 0, 0, 0], 2.0, [0] * 6, [1] * 6, min_confidence=0.5)
        ...     def read_jointly(self, question, texts):  # spans of each passage, null score
        ...         spans = [[Span("Oslo", 25, 29, 6.0)], [Span("Lima", 26, 30, 1.0)]]
        ...         return JointReading(spans, 0.0, float(np.log(np.exp([6.0, 1.0, 0.0]).sum())))
        >>> hits = [SearchHit("Ada Smithson was born in Oslo.", 0.9, "ada.md", 0, 30, ""),
        ...         SearchHit("Boris Kirason was born in Lima.", 0.2, "boris.md", 0, 31, "")]
        >>> [(a.text, round(a.confidence, 2)) for a in extract_joint_answers(Given(), "Where?", hits)]
        [('Oslo', 0.88)]
        >>> [a.text for a in extract_joint_answers(Given(), "Where?", hits, min_confidence=None)]
        ['Oslo', 'Lima']
    """
    if not passages:
        return []
    views = [reader_view(p) for p in passages]
    if reading is None:
        reading = reader.read_jointly(question, [v.text for v in views])
    calibrator = reader.calibrator
    mu = calibrator.mu if calibrator is not None else DEFAULT_MU
    ranked, rows = rank_joint_answers(reading, passages, mu, top_answers, views)
    if not ranked:
        return []
    if calibrator is not None:
        for answer, confidence in zip(ranked, calibrator.confidence(rows), strict=True):
            answer.confidence = float(confidence)
        # listed by the number shown beside them: a 6% answer is never above a 15% one (the
        # features were computed in fused order, as the calibrator was fitted)
        ranked.sort(key=lambda answer: -answer.confidence)
    if min_confidence == STORED:
        min_confidence = calibrator.min_confidence if calibrator is not None else None
    if min_confidence is None:
        return ranked
    # the bar an answer must clear to be given at all holds for every answer shown: a 47% answer
    # is not followed by 1% guesses (``--always-answer``/``None`` shows them)
    return [answer for answer in ranked if answer.confidence >= min_confidence]


def extract_answers(
    reader: Reader,
    question: str,
    passages: list[SearchHit],
    top_answers: int = 3,
    null_threshold: float | None | str = STORED,
    min_confidence: float | None | str = STORED,
) -> list[Answer]:
    """Answers read from ``passages``, best first, overlaps merged; [] when the reader abstains.

    One meaning everywhere (``NotesQA.ask``, ``NotesReader``, ``notesqa ask``, the app): each
    setting's default (``STORED``) is the value stored with the reader, a number overrides it,
    and ``None`` never abstains on it.

    A multi-passage reader: ``extract_joint_answers``, by ``min_confidence`` (``null_threshold``
    does not apply). A single-passage reader (no calibrated confidence; a number as
    ``min_confidence`` is refused): ``null_threshold``, higher abstains less, and an answer is
    listed only when its own passage's no-answer score does not beat it by more than the
    threshold (the top answer's passage failing it means no answer at all).

    Offsets are in the passage's file (``passage.start`` + offset in the passage). Shared by
    ``NotesQA.ask`` and the LangChain ``NotesReader``.
    """
    if reader.settings.multi_passage:
        return extract_joint_answers(reader, question, passages, top_answers, min_confidence)
    if min_confidence is not None and min_confidence != STORED:
        raise ValueError(
            f"min_confidence={min_confidence!r} needs a calibrated multi-passage reader, and "
            f"{getattr(reader, 'name', 'this reader')} is a single-passage one; use "
            "null_threshold (--null-threshold) with it, or always_answer (--always-answer)"
        )
    if not passages:
        return []
    views = [reader_view(p) for p in passages]
    results = reader.read(question, [v.text for v in views])
    candidates = []
    for passage, view, (spans, null) in zip(passages, views, results, strict=True):
        for span in spans[:top_answers]:
            candidates.append((_answer(passage, view, span, span.score), null))
    candidates.sort(key=lambda c: -c[0].score)

    # The best span against the no-answer score of *its own* passage, as the threshold was
    # calibrated (one question, one paragraph). The other retrieved passages do not hold the
    # answer, so their null scores are high by design; comparing against their maximum made
    # the reader abstain on 85% of answerable questions (benchmarks/notes_qa.py). The same bar
    # holds for every answer listed after it.
    def passes(answer: Answer, null: float) -> bool:
        span = Span(answer.text, answer.start, answer.end, answer.score)
        return not reader.abstains(span, null, null_threshold)

    if not candidates or not passes(*candidates[0]):
        return []
    kept = [answer for answer, null in candidates if passes(answer, null)]
    return merge_overlapping(kept)[:top_answers]


def check_setting(
    name: str, value: float | None | str, low: float = -math.inf, high: float = math.inf
) -> float | None | str:
    """``STORED``, ``None`` or a finite number in ``[low, high]``, else ``ValueError``.

    Example:
        >>> check_setting("min_confidence", 2.0, 0.0, 1.0)
        Traceback (most recent call last):
        ValueError: min_confidence must be a number in [0, 1], None or STORED, got 2.0
    """
    if value is None or (isinstance(value, str) and value == STORED):
        return value
    number = not isinstance(value, bool) and isinstance(value, (int, float, np.floating))
    if not (number and math.isfinite(value) and low <= value <= high):
        bounds = "a finite number" if math.isinf(low) else f"a number in [{low:g}, {high:g}]"
        raise ValueError(f"{name} must be {bounds}, None or STORED, got {value!r}")
    return float(value)


def check_confidence(value: float | None | str) -> float | None | str:
    """``STORED``, ``None`` (never abstain) or a number in [0, 1]."""
    return check_setting("min_confidence", value, 0.0, 1.0)


def check_null_threshold(value: float | None | str) -> float | None | str:
    """``STORED``, ``None`` (always answer) or a finite number."""
    return check_setting("null_threshold", value)
