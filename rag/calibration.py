"""Answer confidence: the probability that an answer is right, from a small logistic model.

A multi-passage reader scores spans on one scale (shared normalisation), but a raw score is not a
probability a user can read. ``Calibrator`` maps a few features of an answer (its span
probability, the no-answer probability, how much of the probability mass agrees on its text, its
passage's retrieval score and rank, its rank among the answers) to ``P(right)``, fitted by
logistic regression on held-out questions (some without an answer) and stored as JSON beside the
reader, never pickled. The same file holds the BERTserini fusion weight ``mu`` that ranks answers
by ``(1 - mu) * retrieval + mu * span`` and the default ``min_confidence`` below which the product
says "no answer".

Example (the shipped reader's calibrator; ``Calibrator.fit`` shows a fit):
    >>> cal = Calibrator.load("models/reader")
    >>> cal.mu, round(cal.min_confidence, 2)
    (0.2, 0.1)
    >>> likely = answer_features(-0.1, -5.0, -0.05, 0.9, passage_rank=0, answer_rank=0)
    >>> unlikely = answer_features(-6.0, -0.2, -5.0, 0.2, passage_rank=3, answer_rank=2)
    >>> cal.confidence(np.array([likely, unlikely])).round(2)
    array([0.64, 0.03])
    >>> import tempfile
    >>> Calibrator.load(cal.save(tempfile.mkdtemp()).parent) == cal   # JSON, never pickled
    True
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

CALIBRATION_FILE = "notesqa_calibration.json"
FEATURES = (
    "log_span_probability",  # log p(span) under the shared softmax
    "log_null_probability",  # log p(no answer)
    "log_agreement",  # log of the probability of every span with the same words
    "retrieval_score",  # the passage's score in the retrieval mode used
    "passage_rank",  # 0 = the best retrieved passage
    "answer_rank",  # 0 = the top answer
)


@dataclass
class Calibrator:
    """Logistic regression over standardised ``FEATURES``; see the module docstring."""

    weights: list[float]
    bias: float
    mean: list[float]
    scale: list[float]
    mu: float = 0.5  # fusion weight of the span score against the retrieval score
    min_confidence: float = 0.5  # abstain when the top answer's confidence is below this
    features: list[str] = field(default_factory=lambda: list(FEATURES))
    fitted_on: str = ""  # what the fit saw, for the model card

    @classmethod
    def fit(
        cls,
        x: np.ndarray,
        right: np.ndarray,
        l2: float = 1e-2,
        iterations: int = 50,
        sample_weight: np.ndarray | None = None,
        **kwargs,
    ) -> Calibrator:
        """Newton's method on the L2-regularised logistic loss; ``x`` is ``(n, len(FEATURES))``,
        ``sample_weight`` ``(n,)`` (default all 1) weighs each answer in the loss.

        Example:
            >>> x = np.array([[0.0] * 6, [1.0] * 6, [2.0] * 6, [3.0] * 6])
            >>> cal = Calibrator.fit(x, np.array([False, False, True, True]))
            >>> bool(cal.confidence(x)[3] > 0.5 > cal.confidence(x)[0])
            True
        """
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(right, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(FEATURES) or len(x) != len(y) or not len(x):
            raise ValueError(
                f"fit needs an (n, {len(FEATURES)}) feature array and n labels, got {x.shape} "
                f"and {y.shape}"
            )
        weight = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
        weight = weight / weight.mean()
        mean, scale = x.mean(axis=0), x.std(axis=0)
        scale[scale == 0] = 1.0
        z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])  # (n, d + 1)
        w = np.zeros(z.shape[1])
        penalty = np.full(z.shape[1], l2)
        penalty[-1] = 0.0  # the bias is not shrunk
        for _ in range(iterations):
            p = 1.0 / (1.0 + np.exp(-(z @ w)))
            gradient = z.T @ (weight * (p - y)) / len(y) + penalty * w
            hessian = (z.T * (weight * p * (1 - p))) @ z / len(y) + np.diag(penalty)
            step = np.linalg.solve(hessian, gradient)
            w -= step
            if np.max(np.abs(step)) < 1e-8:
                break
        return cls(
            weights=w[:-1].tolist(),
            bias=float(w[-1]),
            mean=mean.tolist(),
            scale=scale.tolist(),
            **kwargs,
        )

    def confidence(self, x: np.ndarray) -> np.ndarray:
        """``(n,)`` probabilities that the answers with features ``x`` ``(n, d)`` are right."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        z = (x - np.asarray(self.mean)) / np.asarray(self.scale)
        logits = z @ np.asarray(self.weights) + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(logits, -50, 50)))

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / CALIBRATION_FILE
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, folder: str | Path) -> Calibrator | None:
        """The calibrator stored in ``folder``, or ``None`` when there is none."""
        path = Path(folder) / CALIBRATION_FILE
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            calibrator = cls(**data)
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"{path} is not a notesqa calibration file ({exc}); remake it with "
                "`notesqa train calibrate`"
            ) from exc
        if calibrator.features != list(FEATURES) or len(calibrator.weights) != len(FEATURES):
            raise ValueError(
                f"{path} was fitted on features {calibrator.features}, this notesqa computes "
                f"{list(FEATURES)}; remake it with `notesqa train calibrate`"
            )
        return calibrator


def answer_features(
    log_span_probability: float,
    log_null_probability: float,
    log_agreement: float,
    retrieval_score: float,
    passage_rank: int,
    answer_rank: int,
) -> list[float]:
    """One row of ``FEATURES`` (in their order), log-probabilities floored at -30."""
    return [
        max(log_span_probability, -30.0),
        max(log_null_probability, -30.0),
        max(log_agreement, -30.0),
        float(retrieval_score),
        float(passage_rank),
        float(answer_rank),
    ]


def safe_log(p: float) -> float:
    return math.log(p) if p > 0 else -30.0
