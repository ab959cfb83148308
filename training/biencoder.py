"""Finetune the pretrained BERT as an SBERT-style bi-encoder with in-batch negatives.

The model is ``Transformer -> mean pooling -> normalise`` (sentence-transformers format). It is
trained with ``MultipleNegativesRankingLoss`` on (question, paragraph) pairs from SQuAD train with
the ``NO_DUPLICATES`` batch sampler, so no paragraph is its own negative within a batch, or with
batches filled article by article (``batch_grouping: article``, ``training.batching``);
scored STS-B/SICK pairs (CoSENT, or AnglE / cosine MSE by ``sts_loss``) can join or replace
them in a multi-dataset run, and a share of the paragraphs can be swapped for the token window
that holds the answer (``answer_windows``, ``training.answer_windows``), the unit the notes
index searches. The data come from ``training.embedder_data``.
A few SQuAD train articles are held out: sentence-transformers' ``InformationRetrievalEvaluator``
scores retrieval on them during training, and its final scores are saved as ``eval_results.json``.

Example (needs a pretraining run and SQuAD; ``notesqa train embedder`` runs this):
    >>> from training.configs import load_recipe
    >>> train_embedder(load_recipe("tiny").embedder, "runs/tiny/model", "train-v1.1.json.gz",
    ...                "runs/emb")                                              # doctest: +SKIP
    PosixPath('runs/emb')
    >>> evaluate_retrieval(Embedder.load("runs/emb"), "dev-v1.1.json.gz")["recall@5"]  # doctest: +SKIP
    0.21
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import tempfile
from pathlib import Path

import faiss
import torch

from embedder import Embedder, WindowConfig
from embedder.windows import carry_trained_windows, untruncated_tokenizer
from rag.metrics import retrieval_scores
from training.allocator import retain_freed_memory
from training.answer_windows import answer_window_positives
from training.attention import attention_implementation
from training.batching import GroupedRows, batch_sampler_for, check_grouping
from training.configs import EmbedderConfig, to_dict
from training.embedder_data import (
    paragraphs_with_the_answer,
    read_scored_pairs,
    split_articles,
    squad_pairs,
    squad_triplets,
)
from training.folders import checkpoint_folder, replace_folder
from training.pooled_windows import train_pooled_windows
from training.precision import use_bf16
from training.squad import load_squad

try:  # sentence-transformers >= 6
    from sentence_transformers.sentence_transformer.evaluation import (
        InformationRetrievalEvaluator,
    )
    from sentence_transformers.sentence_transformer.losses import (
        AnglELoss,
        CachedMultipleNegativesRankingLoss,
        CoSENTLoss,
        CosineSimilarityLoss,
        MatryoshkaLoss,
        MultipleNegativesRankingLoss,
    )
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
except ImportError:  # sentence-transformers 3 - 5
    from sentence_transformers.evaluation import InformationRetrievalEvaluator
    from sentence_transformers.losses import (
        AnglELoss,
        CachedMultipleNegativesRankingLoss,
        CoSENTLoss,
        CosineSimilarityLoss,
        MatryoshkaLoss,
        MultipleNegativesRankingLoss,
    )
    from sentence_transformers.models import Normalize, Pooling, Transformer

log = logging.getLogger(__name__)

# the losses a recipe's ``sts_loss`` may name for scored pairs (scores in [0, 1])
SCORED_PAIR_LOSSES = {"cosent": CoSENTLoss, "angle": AnglELoss, "cosine": CosineSimilarityLoss}


def retrieval_evaluator(
    examples: list[dict],
    max_queries: int = 500,
    name: str = "squad-heldout",
    prompts: dict[str, str] | None = None,
):
    """An ``InformationRetrievalEvaluator``: each question must find its paragraph among all of
    the held-out articles' paragraphs."""
    corpus: dict[str, str] = {}
    ids: dict[str, str] = {}
    for e in examples:
        if e["context"] not in ids:
            ids[e["context"]] = f"p{len(ids)}"
            corpus[ids[e["context"]]] = e["context"]
    answerable = [e for e in examples if not e["is_impossible"]][:max_queries]
    queries = {f"q{i}": e["question"].strip() for i, e in enumerate(answerable)}
    relevant = {f"q{i}": {ids[e["context"]]} for i, e in enumerate(answerable)}
    return InformationRetrievalEvaluator(
        queries,
        corpus,
        relevant,
        name=name,
        accuracy_at_k=[1, 5, 20],
        precision_recall_at_k=[5, 20],
        write_csv=False,
        query_prompt=(prompts or {}).get("query"),
        corpus_prompt=(prompts or {}).get("passage"),
    )


def build_sentence_model(
    init: str | Path,
    max_seq_length: int,
    device: str = "cpu",
    dropout: float | None = None,
    attention: str = "auto",
):
    """A fresh bi-encoder on top of checkpoint ``init`` (its pretraining heads are dropped).

    ``dropout`` (when given) replaces the checkpoint's hidden and attention dropout; ``attention``
    picks the kernel as in pretraining (``training.attention``).

    Example (``runs/mini/model``: the BERT a pretraining run saved):
        >>> model = build_sentence_model("runs/mini/model", 192, dropout=0.1)  # doctest: +SKIP
        >>> model.get_sentence_embedding_dimension()                         # doctest: +SKIP
        256
    """
    from sentence_transformers import SentenceTransformer

    config_kwargs = {}
    if dropout is not None:
        config_kwargs = {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout}
    transformer = Transformer(
        str(init),
        max_seq_length=max_seq_length,
        model_kwargs={
            "attn_implementation": attention_implementation(attention, torch.device(device))
        },
        config_kwargs=config_kwargs,
    )
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
    sts_files: list[str | Path] | None = None,
    max_minutes: float | None = None,
) -> Path:
    """Train on SQuAD pairs (+ scored STS pairs) and save a sentence-transformers folder.

    SQuAD (question, paragraph[, hard negative]) pairs use in-batch negatives (MNRL, or its cached
    variant); ``sts_files`` add a loss on scored pairs (``cfg.sts_loss``: CoSENT by default) in
    the same multi-dataset run; ``matryoshka_dims wrap every loss so truncated vectors work too. Saved atomically.

    Every ``cfg.save_every`` steps (and on Ctrl-C / SIGTERM or after ``max_minutes``) the run
    checkpoints to ``OUT.checkpoint`` (pickle-free, ``training.trainer_checkpoints``); calling it
    again with the same arguments resumes there. Returns ``out_dir`` when finished, else the
    checkpoint folder.
    """
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainingArguments

    from training.trainer_checkpoints import (
        PickleFreeTrainer,
        StopCallback,
        claim_run,
        resume_point,
    )

    if cfg.pooled_windows:
        if sts_files:
            raise ValueError(
                "pooled_windows trains on SQuAD pairs alone: set the recipe's data.sts_train to []"
            )
        return train_pooled_windows(cfg, init, train_data, out_dir, device, max_minutes)
    if cfg.sts_only and not sts_files:
        raise ValueError(
            "sts_only trains on scored pairs alone, but none were given: pass --sts "
            "sts-train.csv SICK_train.txt, or set the recipe's data.sts_train"
        )
    if cfg.sts_loss not in SCORED_PAIR_LOSSES:
        raise ValueError(
            f"sts_loss {cfg.sts_loss!r} is not one of {sorted(SCORED_PAIR_LOSSES)}: pick one "
            "(cosent, the default; angle, CoSENT on angle differences; cosine, MSE on cosines)"
        )
    if not cfg.squad and not sts_files:
        raise ValueError("squad is false and no scored pairs are given: set data.sts_train")
    if cfg.separate_answer_paragraphs and (cfg.sts_only or not cfg.squad):
        raise ValueError("separate_answer_paragraphs needs SQuAD pairs: set squad to true")
    if cfg.answer_windows and (cfg.sts_only or not cfg.squad or cfg.hard_negatives):
        raise ValueError(
            "answer_windows replaces SQuAD positives: set squad to true and hard_negatives to "
            "false, or answer_windows to 0"
        )
    check_grouping(cfg.batch_grouping, cfg.separate_answer_paragraphs)
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    out = Path(out_dir)
    checkpoints = checkpoint_folder(out)
    run_state = {
        "init": str(init),
        "train_data": str(train_data),
        "sts_files": [str(p) for p in sts_files or []],
        "config": {k: v for k, v in to_dict(cfg).items() if k != "save_every"},
    }
    resume_point(checkpoints, run_state)  # refuse another run's folder before minutes of loading
    _, examples = load_squad(train_data)
    evaluator, heldout = None, []
    if cfg.eval_articles:
        examples, heldout = split_articles(examples, cfg.eval_articles, cfg.seed)
        evaluator = retrieval_evaluator(heldout, prompts=cfg.prompts)
    if cfg.sts_only or not cfg.squad:
        columns = {}
    elif cfg.hard_negatives:
        triplets = squad_triplets(examples, cfg.seed)
        if cfg.max_train_pairs:
            triplets = triplets[: cfg.max_train_pairs]
        columns = {
            "anchor": [t[0] for t in triplets],
            "positive": [t[1] for t in triplets],
            "negative": [t[2] for t in triplets],
        }
    else:
        pairs = squad_pairs(examples)
        random.Random(cfg.seed).shuffle(pairs)
        if cfg.max_train_pairs:
            pairs = pairs[: cfg.max_train_pairs]
        columns = {"anchor": [q for q, _ in pairs], "positive": [p for _, p in pairs]}
    grouped = []
    if columns:
        article_of = {e["context"]: e["title"] for e in examples}
        apart = None
        if cfg.separate_answer_paragraphs:
            with_answer = paragraphs_with_the_answer(examples)
            apart = [
                with_answer[(q, p)]
                for q, p in zip(columns["anchor"], columns["positive"], strict=True)
            ]
        groups = [article_of[p] for p in columns["positive"]]
        grouped.append(GroupedRows(columns["anchor"], groups, apart))
    batch_sampler = batch_sampler_for(cfg.batch_grouping, grouped)
    if columns and 0 < len(columns["anchor"]) < cfg.batch_size:
        raise ValueError(
            f"only {len(columns['anchor'])} SQuAD training pairs for batch_size "
            f"{cfg.batch_size}; lower batch_size"
        )
    if torch.device(dev).type == "cpu":
        retain_freed_memory()
    model = build_sentence_model(init, cfg.max_seq_length, dev, cfg.dropout, cfg.attention)
    if cfg.answer_windows:  # after the batches were grouped by the paragraphs' articles
        windows = WindowConfig.of(cfg.answer_window_tokens)
        paragraphs, tokenizer = columns["positive"], untruncated_tokenizer(model.tokenizer)
        if tokenizer is None:
            raise ValueError(f"answer_windows needs a fast tokenizer (tokenizer.json) in {init}")
        columns["positive"] = answer_window_positives(
            examples,
            list(zip(columns["anchor"], paragraphs, strict=True)),
            tokenizer,
            windows,
            cfg.answer_windows,
            cfg.seed,
        )
        log.info(
            "%d of %d SQuAD positives are answer windows of %d tokens",
            sum(a != b for a, b in zip(paragraphs, columns["positive"], strict=True)),
            len(paragraphs),
            windows.tokens,
        )
    column_prompts = {}
    if cfg.prompts:
        unknown = set(cfg.prompts) - {"query", "passage"}
        if unknown:
            raise ValueError(f"prompts may name 'query' and 'passage' only, not {sorted(unknown)}")
        model.prompts = dict(cfg.prompts)  # saved in config_sentence_transformers.json
        column_prompts = {
            "anchor": cfg.prompts.get("query", ""),
            "positive": cfg.prompts.get("passage", ""),
            "negative": cfg.prompts.get("passage", ""),
        }

    def matryoshka(loss):
        return MatryoshkaLoss(model, loss, cfg.matryoshka_dims) if cfg.matryoshka_dims else loss

    squad_loss = (
        CachedMultipleNegativesRankingLoss(model, mini_batch_size=cfg.mini_batch_size)
        if cfg.cached_mnrl
        else MultipleNegativesRankingLoss(model)
    )
    datasets, losses = {}, {}
    if columns:
        datasets["squad"], losses["squad"] = Dataset.from_dict(columns), matryoshka(squad_loss)
    if sts_files:
        scored = [pair for path in sts_files for pair in read_scored_pairs(path)]
        random.Random(cfg.seed).shuffle(scored)
        if cfg.max_sts_pairs:
            scored = scored[: cfg.max_sts_pairs]
        datasets["sts"] = Dataset.from_dict(
            {
                "sentence1": [a for a, _, _ in scored],
                "sentence2": [b for _, b, _ in scored],
                "score": [y for _, _, y in scored],
            }
        )
        losses["sts"] = matryoshka(SCORED_PAIR_LOSSES[cfg.sts_loss](model))
    # one dataset trains alone; two make a multi-dataset run (proportional sampling)
    single = len(datasets) == 1
    dataset = next(iter(datasets.values())) if single else datasets
    loss = next(iter(losses.values())) if single else losses
    sizes = {name: len(rows) for name, rows in datasets.items()}
    log.info(
        "training on %d SQuAD examples and %d scored pairs",
        sizes.get("squad", 0),
        sizes.get("sts", 0),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    found = claim_run(checkpoints, run_state)
    if found is not None:
        log.info("resuming the embedder from %s", found)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.trainer-") as scratch:
        args = SentenceTransformerTrainingArguments(
            output_dir=str(checkpoints),
            num_train_epochs=cfg.epochs,
            per_device_train_batch_size=cfg.batch_size,
            learning_rate=cfg.learning_rate,
            warmup_steps=int(
                cfg.warmup_ratio * cfg.epochs * sum(n // cfg.batch_size for n in sizes.values())
            ),
            batch_sampler=batch_sampler,
            # SQuAD columns get the query/passage prompts; STS pairs are symmetric, none
            prompts=_dataset_prompts(column_prompts, list(datasets)),
            bf16=use_bf16(cfg.precision, torch.device(dev)),
            use_cpu=dev == "cpu",
            save_strategy="steps" if cfg.save_every else "no",
            save_steps=cfg.save_every or 500,
            save_total_limit=1,
            eval_strategy="steps" if evaluator else "no",
            eval_steps=cfg.eval_steps if evaluator else None,
            report_to="none",
            logging_steps=20,
            seed=cfg.seed,
            dataloader_drop_last=True,
        )
        trainer = PickleFreeTrainer(
            model=model, args=args, train_dataset=dataset, loss=loss, evaluator=evaluator
        )
        stop = StopCallback(max_minutes)
        trainer.add_callback(stop)
        trainer.train(resume_from_checkpoint=str(found) if found else None)
        if stop.stopped:
            log.warning("embedder stopped; checkpoint in %s: run it again to resume", checkpoints)
            return checkpoints
        staged = Path(scratch) / "model"
        model.save(str(staged))
        carry_trained_windows(init, staged)  # a stage after pooled windows keeps their record
        if evaluator is not None:
            final = {k: round(float(v), 4) for k, v in evaluator(model).items()}
            log.info("held-out retrieval: %s", final)
            (staged / "eval_results.json").write_text(json.dumps(final, indent=2) + "\n")
        replace_folder(staged, out)
    shutil.rmtree(checkpoints, ignore_errors=True)
    log.info("saved embedder to %s", out)
    return out


def _dataset_prompts(column_prompts: dict[str, str], names: list[str]):
    """The trainer's ``prompts``: per column for one dataset, per dataset name for several."""
    asymmetric = [name for name in names if name == "squad"]
    if not column_prompts or not asymmetric:
        return None
    if len(names) == 1:
        return column_prompts
    return {name: column_prompts for name in asymmetric}


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
    passage_vectors = embedder.encode(
        paragraphs, batch_size=batch_size, show_progress=True, kind="passage"
    )
    query_vectors = embedder.encode(
        [e["question"] for e in examples], batch_size=batch_size, show_progress=True, kind="query"
    )
    index = faiss.IndexFlatIP(passage_vectors.shape[1])
    index.add(passage_vectors)
    _, ranked = index.search(query_vectors, max(max(ks), 10))
    gold = [paragraph_ids[e["context"]] for e in examples]
    scores = retrieval_scores(ranked.tolist(), gold, ks=ks)
    scores["num_questions"] = len(examples)
    scores["num_paragraphs"] = len(paragraphs)
    return scores


__all__ = [
    "train_embedder",
    "evaluate_retrieval",
    "build_sentence_model",
    "split_articles",
    "squad_triplets",
    "paragraphs_with_the_answer",
    "read_scored_pairs",
    "squad_pairs",
]
