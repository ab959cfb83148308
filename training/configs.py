"""Dataclass configs for every training stage, loaded from JSON recipes.

A recipe is one JSON object with a section per stage (``tokenizer``, ``pretrain``, ``reader``,
``embedder``, ``cross_encoder``, ``silver_pairs``); each section maps onto one dataclass below.
Unknown keys are an error, so a typo in a recipe never silently falls back to a default.

Example:
    >>> cfg = load_recipe("training/recipes/tiny.json")
    >>> cfg.pretrain.hidden_size
    64
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

RECIPES_DIR = Path(__file__).parent / "recipes"


@dataclass
class TokenizerConfig:
    vocab_size: int = field(default=16384, metadata={"help": "WordPiece vocabulary size."})
    min_frequency: int = field(default=2, metadata={"help": "Ignore pieces seen fewer times."})
    max_chars: int = field(
        default=50_000_000, metadata={"help": "Characters of corpus to learn from."}
    )


@dataclass
class PretrainConfig:
    # model (BERT sizes)
    hidden_size: int = 256
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int = 1024
    max_position_embeddings: int = 512
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    # data (as in BERT's create_pretraining_data.py)
    max_seq_length: int = field(
        default=128, metadata={"help": "Tokens per example, specials included."}
    )
    short_seq_prob: float = field(default=0.1, metadata={"help": "Share of shorter examples."})
    masked_lm_prob: float = field(default=0.15, metadata={"help": "Share of tokens masked."})
    max_predictions_per_seq: int = field(default=20, metadata={"help": "Cap on masked tokens."})
    whole_word_masking: bool = field(
        default=False, metadata={"help": "Mask all WordPiece pieces of a word together."}
    )
    max_docs: int = field(default=0, metadata={"help": "Documents to shard (0 = all)."})
    max_chars: int = field(default=0, metadata={"help": "Characters to shard (0 = all)."})
    heldout_docs: int = field(default=200, metadata={"help": "Documents kept out for evaluation."})
    # optimisation
    batch_size: int = field(
        default=64, metadata={"help": "Global batch per micro-step (split across ranks)."}
    )
    grad_accum: int = field(default=1, metadata={"help": "Micro-steps per optimizer step."})
    learning_rate: float = 1e-3
    slow_lr_scale: float = field(
        default=1.0,
        metadata={
            "help": "Learning-rate factor for the MLM head transform and the token-type "
            "embeddings (1 = plain BERT); 0.1 lets word-order attention form on "
            "benchmarks/positional_toy.py, not yet shown on text (models/MODEL_CARD.md)."
        },
    )
    zero_token_type_init: bool = field(
        default=False,
        metadata={
            "help": "Start the token-type (segment) embeddings at zero instead of N(0, 0.02)."
        },
    )
    prior_bias_init: bool = field(
        default=False,
        metadata={
            "help": "Start the MLM decoder bias at the log unigram frequencies of the shards "
            "(with a zero bias a small BERT can stall at the unigram plateau: "
            "benchmarks/positional_toy.py --zipf)."
        },
    )
    weight_decay: float = 0.01
    warmup_steps: int = 200
    max_steps: int = 2000
    schedule: str = field(
        default="linear", metadata={"help": "Decay after warm-up: linear | cosine (one-cycle)."}
    )
    max_grad_norm: float = 1.0
    precision: str = field(default="auto", metadata={"help": "auto | bf16 | fp32 (auto measures)."})
    attention: str = field(
        default="auto",
        metadata={
            "help": "auto | sdpa | eager. auto: SDPA on CUDA, eager on CPU, where PyTorch's fused "
            "SDPA backward is slower at BERT's sequence lengths "
            "(benchmarks/pretrain_throughput.py --attention)."
        },
    )
    retain_freed_memory: bool = field(
        default=True,
        metadata={
            "help": "On CPU, keep freed blocks for reuse instead of returning them to the OS "
            "every step (glibc; see training/allocator.py)."
        },
    )
    init_from: str = field(
        default="",
        metadata={
            "help": "Start from this model folder's weights (a pretraining run's model/) with a "
            "fresh optimizer and schedule: BERT's second phase, which pretrained most steps at "
            "sequence 128 and the last ones at 512 so the later position embeddings are "
            "trained. Ignored when the run folder already has a checkpoint (resume)."
        },
    )
    tile_positions: int = field(
        default=0,
        metadata={
            "help": "With init_from: copy its first N position embeddings over all later ones "
            "(Longformer's initialisation; N = the first phase's max_seq_length). A "
            "128-trained base predicts masked tokens past 128 at 11% with untrained positions, "
            "31% tiled (benchmarks/mlm_by_position.py)."
        },
    )
    seed: int = 0
    # bookkeeping
    log_every: int = 20
    eval_every: int = 200
    save_every: int = 200
    eval_batches: int = 10


@dataclass
class ReaderConfig:
    max_seq_length: int = 384
    doc_stride: int = 128
    max_query_length: int = 64
    batch_size: int = 32
    learning_rate: float = 3e-4
    weight_decay: float = 0.01
    epochs: float = 1.0
    warmup_ratio: float = 0.1
    max_train_examples: int = field(
        default=0, metadata={"help": "Questions to train on (0 = all)."}
    )
    skip_train_examples: int = field(
        default=0,
        metadata={
            "help": "Skip this many of the shuffled training questions (after the held-out ones) "
            "first, e.g. the max_train_examples an earlier round trained on."
        },
    )
    unanswerable_ratio: float = field(
        default=0.0,
        metadata={
            "help": "Extra no-answer questions (see unanswerable_style), as a share of the "
            "training questions."
        },
    )
    unanswerable_style: str = field(
        default="other_paragraph",
        metadata={
            "help": "How no-answer copies lose their answer: other_paragraph (another paragraph "
            "of the article), answer_removed (own paragraph minus the answer's sentences), "
            "entity_swap (own paragraph, a name or number of the question swapped for another "
            "of the article), antonym (own paragraph, a word of the question turned into its "
            "opposite, first -> last), question_edit (an entity swap or an antonym), mixed (the "
            "first two), all (the first three) or mined (of the four single-rule copies, the one "
            "the --init reader answers most confidently; needs a reader as --init). Used for "
            "training and for the held-out calibration questions (mined there with the trained "
            "reader)."
        },
    )
    calibration_examples: int = field(
        default=0,
        metadata={"help": "Train questions held out to choose the no-answer threshold (0 = none)."},
    )
    calibration_no_answer_share: float = field(
        default=0.0,
        metadata={
            "help": "Weigh the held-out calibration questions so that the unanswerable ones count "
            "as this share of them (0 = as made; SQuAD v2.0 dev has 0.5)."
        },
    )
    calibration_min_gain: float = field(
        default=1.0,
        metadata={
            "help": "Store the threshold only if its held-out F1 beats always abstaining by this "
            "many points; otherwise the null score carries no usable signal and the reader "
            "always answers."
        },
    )
    dropout: float = field(
        default=0.1,
        metadata={
            "help": "Hidden and attention dropout while finetuning (the base may have been "
            "pretrained without)."
        },
    )
    precision: str = "auto"
    attention: str = field(
        default="auto", metadata={"help": "auto | sdpa | eager, as pretraining."}
    )
    seed: int = 0
    save_every: int = field(
        default=200,
        metadata={
            "help": "Steps between resumable checkpoints in OUT.checkpoint (0 = only on a stop "
            "and at the end); rerun the same command to resume."
        },
    )
    log_every: int = 20


@dataclass
class PassageReaderConfig:
    """Shared-normalisation finetuning of a reader over retrieved passages
    (``training.passage_reader``); its data come from ``training.passage_groups``."""

    articles: int = field(
        default=100, metadata={"help": "SQuAD train articles laid out as notes for training."}
    )
    calibration_articles: int = field(
        default=40,
        metadata={"help": "Further articles (never trained on) for fusion and calibration."},
    )
    questions: int = field(default=12000, metadata={"help": "Training questions sampled."})
    calibration_questions: int = field(default=3000, metadata={"help": "Calibration questions."})
    passages: int = field(default=5, metadata={"help": "Retrieved passages per question (k)."})
    unanswerable_share: float = field(
        default=0.3,
        metadata={"help": "Share of questions asked over the notes without their own article."},
    )
    groups_per_batch: int = 4
    learning_rate: float = 3e-5
    weight_decay: float = 0.01
    epochs: float = 1.0
    warmup_ratio: float = 0.1
    max_groups: int = field(default=0, metadata={"help": "Train on the first N groups (0 = all)."})
    dropout: float = 0.1
    seed: int = field(default=0, metadata={"help": "Sampling of the training questions."})
    calibration_seed: int = field(default=1, metadata={"help": "Sampling of calibration ones."})
    save_every: int = 200
    log_every: int = 20


@dataclass
class EmbedderConfig:
    max_seq_length: int = 256
    batch_size: int = 64
    learning_rate: float = 2e-4
    epochs: float = 1.0
    warmup_ratio: float = 0.1
    max_train_pairs: int = field(
        default=0, metadata={"help": "(question, paragraph) pairs (0 = all)."}
    )
    hard_negatives: bool = field(
        default=False,
        metadata={"help": "Add a BM25-mined paragraph of the same article without the answer."},
    )
    batch_grouping: str = field(
        default="none",
        metadata={
            "help": "none | article: fill SQuAD batches article by article (topic-aware "
            "sampling), so most in-batch negatives are paragraphs on the question's own subject."
        },
    )
    separate_answer_paragraphs: bool = field(
        default=False,
        metadata={
            "help": "With batch_grouping article: a question never shares a batch with another "
            "paragraph of its article that contains its answer (a likely false negative; measured "
            "slightly worse, so off by default)."
        },
    )
    cached_mnrl: bool = field(
        default=False,
        metadata={"help": "CachedMultipleNegativesRankingLoss: large batches in small memory."},
    )
    mini_batch_size: int = field(default=32, metadata={"help": "Chunk size of the cached loss."})
    matryoshka_dims: list[int] = field(
        default_factory=list,
        metadata={"help": "Also train truncated vectors of these sizes (e.g. [256, 128, 64])."},
    )
    max_sts_pairs: int = field(
        default=0,
        metadata={
            "help": "Scored pairs for the CoSENT loss, gold and silver each (0 = all given)."
        },
    )
    sts_loss: str = field(
        default="cosent",
        metadata={
            "help": "Loss on the scored pairs: cosent (ranks every pair of a batch by its "
            "score) | angle (AnglE: the same ranking on angle differences) | cosine (MSE between "
            "cosine and score)."
        },
    )
    sts_only: bool = field(
        default=False,
        metadata={
            "help": "Train on the scored STS-B/SICK pairs alone: a second stage from a trained "
            "embedder, as SBERT's NLI -> STS-B recipe (the held-out retrieval evaluator still runs)."
        },
    )
    squad: bool = field(
        default=True,
        metadata={
            "help": "Train on SQuAD (question, paragraph) pairs; false for a stage on the other "
            "data alone (inverse-cloze pairs, STS pairs, reader margins)."
        },
    )
    ict_pairs: int = field(
        default=0,
        metadata={
            "help": "Inverse-cloze (sentence, its paragraph) pairs from data.corpus, trained with "
            "the same in-batch-negatives loss and batch grouping as SQuAD (0 = none)."
        },
    )
    ict_keep_sentence: float = field(
        default=0.1,
        metadata={"help": "Share of inverse-cloze passages that keep their query sentence."},
    )
    margin_triplets: int = field(
        default=0,
        metadata={
            "help": "SQuAD (question, paragraph, BM25 hard negative) triplets whose margin the "
            "reader of margin_teacher scores, for a MarginMSE loss (0 = none)."
        },
    )
    margin_teacher: str = field(
        default="", metadata={"help": "Reader folder that scores the margins, e.g. models/reader."}
    )
    margin_scale: float = field(
        default=0.02,
        metadata={"help": "Multiplies the reader's margins (span logits) into cosine units."},
    )
    simcse_sentences: int = field(
        default=0,
        metadata={
            "help": "Unsupervised SimCSE: this many data.corpus sentences, each its own positive "
            "under the in-batch loss, dropout the only difference between the views (0 = none)."
        },
    )
    answer_windows: float = field(
        default=0.0,
        metadata={
            "help": "Share of SQuAD positives replaced by a token window of the paragraph that "
            "holds the answer, cut as the notes index cuts passages (training.answer_windows)."
        },
    )
    answer_window_tokens: int = field(
        default=32, metadata={"help": "Those windows' size in tokens (stride: half of it)."}
    )
    prompts: dict[str, str] = field(
        default_factory=dict,
        metadata={
            "help": 'Prepended when training and encoding, e.g. {"query": "query: ", "passage": '
            '"passage: "}; saved with the model and used by Embedder.encode(kind=...).'
        },
    )
    eval_articles: int = field(
        default=20,
        metadata={
            "help": "SQuAD train articles held out of training for the retrieval evaluator (0 = none)."
        },
    )
    eval_steps: int = field(
        default=100, metadata={"help": "Run the held-out evaluator every this many steps."}
    )
    dropout: float = field(
        default=0.1, metadata={"help": "Hidden and attention dropout while finetuning."}
    )
    precision: str = "auto"
    attention: str = field(
        default="auto", metadata={"help": "auto | sdpa | eager, as pretraining."}
    )
    seed: int = 0
    save_every: int = field(
        default=200,
        metadata={
            "help": "Steps between resumable checkpoints in OUT.checkpoint (0 = only on a stop); "
            "rerun the same command to resume."
        },
    )


@dataclass
class CrossEncoderConfig:
    """The similarity cross-encoder that labels silver STS pairs (``training.cross_encoder``)."""

    max_seq_length: int = field(
        default=128, metadata={"help": "Tokens of both sentences together, specials included."}
    )
    batch_size: int = 32
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    epochs: float = 4.0
    warmup_ratio: float = field(default=0.1, metadata={"help": "Share of steps warming up."})
    dropout: float = field(
        default=0.1, metadata={"help": "Hidden and attention dropout while finetuning."}
    )
    precision: str = "auto"
    attention: str = field(
        default="auto", metadata={"help": "auto | sdpa | eager, as pretraining."}
    )
    seed: int = 0
    log_every: int = 20
    save_every: int = field(
        default=200,
        metadata={"help": "Steps between resumable checkpoints in OUT.checkpoint (0 = on a stop)."},
    )


@dataclass
class SilverPairsConfig:
    """New sentence pairs, labelled by the cross-encoder (``training.silver_pairs``)."""

    bm25_neighbours: int = field(
        default=3,
        metadata={"help": "Pair each gold sentence with its top BM25 matches among the others."},
    )
    dense_neighbours: int = field(
        default=3,
        metadata={"help": "... and with its nearest neighbours under the embedder (0 = none)."},
    )
    batch_size: int = field(default=256, metadata={"help": "Pairs per cross-encoder batch."})


@dataclass
class DataConfig:
    """Where a recipe's data lives (paths relative to the working directory); CLI flags override."""

    corpus: list[str] = field(default_factory=list, metadata={"help": "Pretraining text files."})
    squad_train: str = field(default="", metadata={"help": "SQuAD v1.1 train JSON(.gz)."})
    squad_dev: str = field(default="", metadata={"help": "SQuAD v1.1 dev JSON(.gz)."})
    sts_train: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Scored sentence pairs for the embedder: STS-B sts-train.csv, SICK_train.txt."
        },
    )
    sts_dev: str = field(
        default="",
        metadata={"help": "Scored pairs the cross-encoder is measured on (sts-dev.csv)."},
    )


@dataclass
class Recipe:
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    reader: ReaderConfig = field(default_factory=ReaderConfig)
    passage_reader: PassageReaderConfig = field(default_factory=PassageReaderConfig)
    embedder: EmbedderConfig = field(default_factory=EmbedderConfig)
    cross_encoder: CrossEncoderConfig = field(default_factory=CrossEncoderConfig)
    silver_pairs: SilverPairsConfig = field(default_factory=SilverPairsConfig)


T = TypeVar("T")


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys with a clear message."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys {unknown}; valid keys are {sorted(names)}")
    return cls(**data)


def load_recipe(path: str | Path) -> Recipe:
    """Read a JSON recipe; a bare name such as ``tiny`` means ``training/recipes/tiny.json``."""
    path = Path(path)
    if not path.is_file() and (RECIPES_DIR / f"{path.name}.json").exists():
        path = RECIPES_DIR / f"{path.name}.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"recipe {path} not found; pass a JSON file or one of "
            f"{sorted(p.stem for p in RECIPES_DIR.glob('*.json'))}"
        )
    data = json.loads(path.read_text())
    sections = {
        "data": DataConfig,
        "tokenizer": TokenizerConfig,
        "pretrain": PretrainConfig,
        "reader": ReaderConfig,
        "passage_reader": PassageReaderConfig,
        "embedder": EmbedderConfig,
        "cross_encoder": CrossEncoderConfig,
        "silver_pairs": SilverPairsConfig,
    }
    unknown = sorted(set(data) - set(sections) - {"description"})
    if unknown:
        raise ValueError(f"unknown recipe sections {unknown} in {path}; valid: {sorted(sections)}")
    return Recipe(**{k: from_dict(cls, data.get(k, {})) for k, cls in sections.items()})


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)
