"""Post-hoc whitening of a trained embedder, saved as one more sentence-transformers module.

A contrastively trained bi-encoder spends most of its vectors' variance on a few directions, so
cosine similarity is dominated by them (anisotropy). BERT-whitening (Su et al. 2021) maps every
vector through one linear transform fitted on vectors of unlabelled text: with the SVD
``cov = U diag(s) U^T`` of the fit vectors, ``y = (x - mu) @ U diag(s ** (-alpha / 2))``, then
re-normalised. ``alpha`` 1 is full whitening, 0 a rotation (no change to cosines); ``centre``
subtracts the fit mean ``mu`` first. The transform is appended to the model as a
``Dense`` (identity activation, safetensors weights) and a ``Normalize`` module, so every loader of
the folder (``Embedder``, sentence-transformers, the index) applies it; its output dimensions come
in order of the fit variance, so truncating them (``Embedder.load(..., truncate_dim=64)``) keeps
the strongest. ``benchmarks/tuning/whitening.py`` measures which settings help.

Example (the fit texts of two made-up SQuAD records; whitening needs a trained embedder):
    >>> examples = [{"question": "Who wrote it?", "context": "Ada wrote it."},
    ...             {"question": "When?", "context": "Ada wrote it."}]
    >>> texts = whitening_texts(examples, size=4000)   # train-v1.1.json.gz's records in practice
    >>> texts
    {'passage': ['Ada wrote it.'], 'query': ['When?', 'Who wrote it?']}
    >>> whiten_embedder("runs/embedder", "runs/embedder-white", texts,
    ...                 WhiteningSettings(alpha=0.5))                     # doctest: +SKIP
    PosixPath('runs/embedder-white')
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from embedder.windows import carry_trained_windows
from training.folders import replace_folder, staging_folder

RECORD_FILE = "notesqa_whitening.json"


@dataclass
class WhiteningSettings:
    """How the transform is fitted (stored beside the model as ``notesqa_whitening.json``)."""

    alpha: float = 0.5  # 1 = full whitening, 0 = a rotation (cosines unchanged unless centred)
    centre: bool = False  # subtract the fit vectors' mean first
    keep: int = 0  # output dimensions, largest fit variance first (0 = all)

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be between 0 (no whitening) and 1, not {self.alpha}")
        if self.keep < 0:
            raise ValueError(
                f"keep must be 0 (all dimensions) or a positive count, not {self.keep}"
            )


def fit_whitening(
    vectors: np.ndarray, settings: WhiteningSettings
) -> tuple[np.ndarray, np.ndarray]:
    """``shift`` (d,) and ``weight`` (d, keep), ``y = (x - shift) @ weight``, from (n, d) vectors.

    Example:
        >>> shift, weight = fit_whitening(np.random.randn(500, 8), WhiteningSettings(alpha=1))
        >>> weight.shape
        (8, 8)
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    n, d = vectors.shape
    if n <= d:
        raise ValueError(
            f"whitening {d}-dimensional vectors needs more than {d} fit texts, got {n}: "
            "give it more text (e.g. a larger size)"
        )
    mean = vectors.mean(axis=0)  # (d,)
    u, s, _ = np.linalg.svd(np.cov((vectors - mean).T))  # (d, d), (d,): largest variance first
    keep = settings.keep or d
    if keep > d:
        raise ValueError(f"keep {keep} is more than the model's {d} dimensions")
    weight = u @ np.diag(np.power(s + 1e-9, -settings.alpha / 2))  # (d, d)
    shift = mean if settings.centre else np.zeros(d)
    return shift.astype(np.float32), weight[:, :keep].astype(np.float32)


def whitening_texts(examples: list[dict], size: int = 4000, seed: int = 0) -> dict[str, list[str]]:
    """Up to ``size`` distinct paragraphs and ``size`` questions of SQuAD-style examples, by kind.

    Both kinds go into the fit (each with its own prompt), since a query is scored against
    passages through the same transform.
    """
    rng = random.Random(seed)
    paragraphs = list(dict.fromkeys(e["context"] for e in examples))
    questions = [e["question"] for e in examples]
    return {
        "passage": rng.sample(paragraphs, min(size, len(paragraphs))),
        "query": rng.sample(questions, min(size, len(questions))),
    }


def whiten_embedder(
    model_dir: str | Path,
    out_dir: str | Path,
    texts: dict[str, list[str]],
    settings: WhiteningSettings | None = None,
    batch_size: int = 64,
) -> Path:
    """Fit the transform on ``texts`` (by kind: "query", "passage" or None) and write the model
    with it appended to ``out_dir`` (atomically: the folder appears only when complete)."""
    from embedder import Embedder

    try:  # sentence-transformers >= 6
        from sentence_transformers.base.modules import Dense, Normalize
    except ImportError:  # sentence-transformers 3 - 5
        from sentence_transformers.models import Dense, Normalize

    settings = settings or WhiteningSettings()
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    if (model_dir / RECORD_FILE).exists():
        raise ValueError(
            f"{model_dir} is already whitened ({RECORD_FILE}); whiten the model it was made from"
        )
    embedder = Embedder.load(model_dir, runtime="torch")  # a SentenceTransformer to extend
    vectors = np.concatenate(
        [
            embedder.encode(batch, batch_size=batch_size, show_progress=True, kind=kind)
            for kind, batch in texts.items()
            if batch
        ]
    )  # (n, d) unit vectors
    shift, weight = fit_whitening(vectors, settings)
    dense = Dense(
        weight.shape[0],
        weight.shape[1],
        bias=True,
        activation_function=torch.nn.Identity(),
        init_weight=torch.from_numpy(weight.T.copy()),  # (keep, d): nn.Linear computes x @ W^T
        init_bias=torch.from_numpy(-(shift @ weight)),  # (keep,): (x - shift) @ weight
    )
    model = embedder.model
    model.append(dense)
    model.append(Normalize())
    tmp = staging_folder(out_dir)  # marked; a killed run's leftover is removed
    model.save(str(tmp), safe_serialization=True)
    carry_trained_windows(model_dir, tmp)  # whitened, it pools the windows it was trained for
    record = {
        "from": str(model_dir),
        "fit_texts": {str(kind): len(batch) for kind, batch in texts.items()},
        **asdict(settings),
    }
    (tmp / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return replace_folder(tmp, out_dir)


__all__ = ["WhiteningSettings", "fit_whitening", "whiten_embedder", "whitening_texts"]
