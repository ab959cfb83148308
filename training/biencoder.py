"""Finetune the pretrained BERT as an SBERT-style bi-encoder with in-batch negatives.

The model is ``Transformer -> mean pooling -> normalise`` (sentence-transformers format). It is
trained with ``MultipleNegativesRankingLoss`` on (question, paragraph) pairs from SQuAD train with
the ``NO_DUPLICATES`` batch sampler, so no paragraph is its own negative within a batch.

Example:
    >>> train_embedder(load_recipe("tiny").embedder, "runs/tiny/model", "train-v1.1.json.gz", "runs/emb")
    PosixPath('runs/emb')
    >>> evaluate_retrieval(Embedder.load("runs/emb"), "dev-v1.1.json.gz")["recall@5"]
    0.21
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import tempfile
from pathlib import Path

import faiss
import torch

from embedder import Embedder
from rag.metrics import retrieval_scores
from training.configs import EmbedderConfig
from training.precision import use_bf16
from training.squad import load_squad

try:  # sentence-transformers >= 6
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
except ImportError:  # sentence-transformers 3 - 5
    from sentence_transformers.losses import MultipleNegativesRankingLoss
    from sentence_transformers.models import Normalize, Pooling, Transformer
    from sentence_transformers.training_args import BatchSamplers

log = logging.getLogger(__name__)


def squad_pairs(examples: list[dict]) -> list[tuple[str, str]]:
    """(question, paragraph) pairs of every answerable question."""
    return [(e["question"].strip(), e["context"]) for e in examples if not e["is_impossible"]]


def build_sentence_model(init: str | Path, max_seq_length: int, device: str = "cpu"):
    """A fresh bi-encoder on top of checkpoint ``init`` (its pretraining heads are dropped)."""
    from sentence_transformers import SentenceTransformer

    transformer = Transformer(str(init), max_seq_length=max_seq_length)
    getter = (
        getattr(transformer, "get_embedding_dimension", None)
        or transformer.get_word_embedding_dimension
    )
    dim = getter()
    return SentenceTransformer(
        modules=[transformer, Pooling(dim, pooling_mode="mean"), Normalize()], device=device
    )


def train_embedder(
    cfg: EmbedderConfig,
    init: str | Path,
    train_data: str | Path,
    out_dir: str | Path,
    device: str | None = None,
) -> Path:
    """Train on SQuAD pairs and save (atomically) a sentence-transformers folder at ``out_dir``."""
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )

    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    _, examples = load_squad(train_data)
    pairs = squad_pairs(examples)
    random.Random(cfg.seed).shuffle(pairs)
    if cfg.max_train_pairs:
        pairs = pairs[: cfg.max_train_pairs]
    if len(pairs) < cfg.batch_size:
        raise ValueError(
            f"only {len(pairs)} training pairs for batch_size {cfg.batch_size}; lower batch_size"
        )
    dataset = Dataset.from_dict(
        {"anchor": [q for q, _ in pairs], "positive": [p for _, p in pairs]}
    )
    model = build_sentence_model(init, cfg.max_seq_length, dev)
    loss = MultipleNegativesRankingLoss(model)
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.trainer-") as scratch:
        args = SentenceTransformerTrainingArguments(
            output_dir=scratch,
            num_train_epochs=cfg.epochs,
            per_device_train_batch_size=cfg.batch_size,
            learning_rate=cfg.learning_rate,
            warmup_steps=int(cfg.warmup_ratio * cfg.epochs * (len(pairs) // cfg.batch_size)),
            batch_sampler=BatchSamplers.NO_DUPLICATES,
            bf16=use_bf16(cfg.precision, torch.device(dev)),
            use_cpu=dev == "cpu",
            save_strategy="no",
            report_to="none",
            logging_steps=20,
            seed=cfg.seed,
            dataloader_drop_last=True,
        )
        trainer = SentenceTransformerTrainer(
            model=model, args=args, train_dataset=dataset, loss=loss
        )
        trainer.train()
        staged = Path(scratch) / "model"
        model.save(str(staged))
        old = out.with_name(f".{out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if out.exists():
            os.replace(out, old)
        os.replace(staged, out)
        shutil.rmtree(old, ignore_errors=True)
    log.info("saved embedder to %s", out)
    return out


def evaluate_retrieval(
    embedder: Embedder,
    data_path: str | Path,
    ks: tuple[int, ...] = (1, 5, 20),
    batch_size: int = 64,
) -> dict[str, float]:
    """Find each question's own paragraph among all paragraphs of the file (exact search)."""
    _, examples = load_squad(data_path)
    examples = [e for e in examples if not e["is_impossible"]]
    paragraph_ids: dict[str, int] = {}
    for e in examples:
        paragraph_ids.setdefault(e["context"], len(paragraph_ids))
    paragraphs = list(paragraph_ids)
    passage_vectors = embedder.encode(paragraphs, batch_size=batch_size, show_progress=True)
    query_vectors = embedder.encode(
        [e["question"] for e in examples], batch_size=batch_size, show_progress=True
    )
    index = faiss.IndexFlatIP(passage_vectors.shape[1])
    index.add(passage_vectors)
    _, ranked = index.search(query_vectors, max(max(ks), 10))
    gold = [paragraph_ids[e["context"]] for e in examples]
    scores = retrieval_scores(ranked.tolist(), gold, ks=ks)
    scores["num_questions"] = len(examples)
    scores["num_paragraphs"] = len(paragraphs)
    return scores


__all__ = ["train_embedder", "evaluate_retrieval", "build_sentence_model", "squad_pairs"]
