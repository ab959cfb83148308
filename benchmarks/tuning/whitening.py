"""Post-hoc whitening of an embedder's vectors: STS-B and SQuAD dev retrieval, with and without.

BERT-whitening (Su et al. 2021) maps every sentence vector through one linear transform,
``y = (x - mu) @ W`` with ``W = U diag(s ** -alpha / 2)`` from the SVD ``cov = U diag(s) U^T`` of
vectors of unlabelled text, then re-normalises. On raw BERT it lifts STS-B by many points; on a
contrastively trained bi-encoder it may help, do nothing or hurt. This benchmark answers that for
one embedder, with no training: it encodes the fit texts, the STS-B test pairs and SQuAD v1.1
dev (all 2,067 paragraphs, all 10,570 questions, one vector per paragraph, exact search) once,
then scores the plain vectors (the baseline, same run) and each transform; ``heldout_*`` keys
are the same retrieval among the paragraphs of the 20 held-out SQuAD train articles (the
embedder recipes' ``eval_articles`` split), where a setting should be chosen before dev.

Fit sets (text only, no labels are read): ``sts`` = the sentences of STS-B train; ``squad`` =
SQuAD v1.1 train paragraphs and questions sampled as ``notesqa train whiten`` samples them
(``--fit-size`` of each, queries and passages each with their own prompt); ``both`` = the two
together. ``alpha`` 1 is full whitening, 0.5 a half step, 0 a rotation (no change) or, centred,
centring alone; every setting runs as it is and centred (the fit mean subtracted first); ``k``
keeps the first k whitened directions (the largest variance). The transform itself is
``training.whitening.fit_whitening``.

Example:
    $ python benchmarks/tuning/whitening.py --data ../shared/data --model models/embedder
    {"model": "embedder", "baseline": {"stsb_test_spearman": 70.19, "recall@5": 0.633, ...},
     "whitened": {"sts alpha=1 k=256": {...}, "sts centred alpha=1 k=256": {...}, ...}}
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import faiss
import numpy as np
import torch
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.retrieval import read_sts  # noqa: E402
from embedder import Embedder  # noqa: E402
from rag.metrics import retrieval_scores  # noqa: E402
from training.embedder_data import split_articles  # noqa: E402
from training.squad import load_squad  # noqa: E402
from training.whitening import WhiteningSettings, fit_whitening, whitening_texts  # noqa: E402


def transform(vectors: np.ndarray, mu: np.ndarray, w: np.ndarray) -> np.ndarray:
    out = (vectors - mu) @ w  # (n, keep)
    return np.ascontiguousarray(out / np.linalg.norm(out, axis=1, keepdims=True), dtype=np.float32)


def transform_pair(vectors: tuple, mu: np.ndarray, w: np.ndarray) -> tuple:
    """(left, right, labels) with both vector sets mapped: STS pairs or SQuAD passages/queries."""
    left, right, labels = vectors
    return transform(left, mu, w), transform(right, mu, w), labels


def retrieval(squad: tuple, prefix: str = "") -> dict[str, float]:
    """One-vector retrieval (exact search) for already mapped (passages, queries, gold ids)."""
    passages, queries, gold_ids = squad
    index = faiss.IndexFlatIP(passages.shape[1])
    index.add(passages)
    _, ranked = index.search(queries, 20)  # (questions, 20)
    scores = retrieval_scores(ranked.tolist(), gold_ids, ks=(1, 5, 20))
    return {f"{prefix}{k}": round(v, 4) for k, v in scores.items()}


def score(sts: tuple, squad: tuple) -> dict[str, float]:
    """STS-B test Spearman x 100 and one-vector SQuAD dev retrieval for already mapped vectors."""
    left, right, gold = sts
    spearman = spearmanr((left * right).sum(axis=1), gold).statistic * 100
    return {"stsb_test_spearman": round(float(spearman), 2)} | retrieval(squad)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder")
    parser.add_argument("--model", type=Path, default=None, help="embedder (default: shipped)")
    parser.add_argument("--fit-size", type=int, default=4000, help="SQuAD train texts per kind")
    parser.add_argument(
        "--fit", nargs="+", default=["sts", "squad", "both"], choices=["sts", "squad", "both"]
    )
    parser.add_argument(
        "--alphas", type=float, nargs="+", default=[1.0, 0.75, 0.6, 0.5, 0.4, 0.25, 0.0]
    )
    parser.add_argument("--keep", type=int, nargs="+", default=[0, 128], help="0 keeps all")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    embedder = Embedder.load(args.model)

    def encode(texts: list[str], kind: str | None) -> np.ndarray:
        return embedder.encode(texts, batch_size=64, show_progress=True, kind=kind)

    sts_left, sts_right, sts_gold = read_sts(args.data / "stsbenchmark" / "sts-test.csv")
    sts = (encode(sts_left, None), encode(sts_right, None), sts_gold)

    def squad_vectors(examples: list[dict]) -> tuple:
        """(paragraph vectors, question vectors, each question's paragraph id)."""
        ids: dict[str, int] = {}
        for e in examples:
            ids.setdefault(e["context"], len(ids))
        questions = encode([e["question"] for e in examples], "query")
        return encode(list(ids), "passage"), questions, [ids[e["context"]] for e in examples]

    squad = squad_vectors(load_squad(args.data / "squad" / "dev-v1.1.json.gz")[1])
    train_left, train_right, _ = read_sts(args.data / "stsbenchmark" / "sts-train.csv")
    _, train = load_squad(args.data / "squad" / "train-v1.1.json.gz")
    # the settings are chosen on the 20 held-out train articles the embedder never trained on
    # (its recipe's eval_articles split); the fit reads only the other articles
    train, heldout = split_articles(train, heldout_articles=20, seed=0)
    heldout_squad = squad_vectors(heldout)
    fit_texts = whitening_texts(train, size=args.fit_size)  # as `notesqa train whiten` fits
    fit_sets = {
        "sts": encode(sorted(set(train_left + train_right)), None),
        "squad": np.concatenate([encode(batch, kind) for kind, batch in fit_texts.items()]),
    }
    fit_sets["both"] = np.concatenate([fit_sets["sts"], fit_sets["squad"]])
    fit_sets = {name: fit_sets[name] for name in args.fit}
    report = {
        "model": (args.model or Path("models/embedder")).name,
        "baseline": score(sts, squad) | retrieval(heldout_squad, "heldout_"),
    }
    print(json.dumps({"baseline": report["baseline"]}), file=sys.stderr)
    whitened = {}
    grid = [
        (fit_name, WhiteningSettings(alpha=alpha, centre=centre, keep=keep))
        for fit_name in fit_sets
        for centre in (False, True)
        for alpha in args.alphas
        for keep in args.keep
    ]
    for fit_name, settings in grid:
        mu, w = fit_whitening(fit_sets[fit_name], settings)
        mapped_sts, mapped_squad = transform_pair(sts, mu, w), transform_pair(squad, mu, w)
        centred = " centred" if settings.centre else ""
        name = f"{fit_name}{centred} alpha={settings.alpha:g} k={w.shape[1]}"
        mapped_heldout = transform_pair(heldout_squad, mu, w)
        whitened[name] = score(mapped_sts, mapped_squad) | retrieval(mapped_heldout, "heldout_")
        print(json.dumps({name: whitened[name]}), file=sys.stderr)
    report["whitened"] = whitened
    report["fit_texts"] = {name: len(v) for name, v in fit_sets.items()}
    report["threads"] = args.threads
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
