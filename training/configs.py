"""Dataclass configs for every training stage, loaded from JSON recipes.

A recipe is one JSON object with a section per stage (``data``, ``tokenizer``, ``pretrain``,
``reader``, ``passage_reader``, ``embedder``); each section maps onto one dataclass below.
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

from training.pretrain_config import PretrainConfig

RECIPES_DIR = Path(__file__).parent / "recipes"


@dataclass
class TokenizerConfig:
    vocab_size: int = field(default=16384, metadata={"help": "WordPiece vocabulary size."})
    min_frequency: int = field(default=2, metadata={"help": "Ignore pieces seen fewer times."})
    max_chars: int = field(
        default=50_000_000, metadata={"help": "Characters of corpus to learn from."}
    )


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
    # on-topic "no answer" (training.negative_groups): the share of questions asked over their
    # own passages without the answer's sentences, and of questions edited as SQuAD v2.0's
    # writers did (an entity or word swapped); of mining_candidates more of those kinds, the
    # mined_negatives the current reader answers most confidently are kept
    removed_share: float = 0.0
    edited_share: float = 0.0
    mining_candidates: int = 0
    mined_negatives: int = 0
    groups_per_batch: int = 4
    learning_rate: float = 3e-5
    weight_decay: float = 0.01
    epochs: float = 1.0
    warmup_ratio: float = 0.1
    max_groups: int = field(default=0, metadata={"help": "Train on the first N groups (0 = all)."})
    dropout: float = 0.1
    precision: str = "auto"  # bf16 autocast where fast (training.precision), or bf16, fp32
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
            "data alone (the STS pairs)."
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
    pooled_windows: bool = field(
        default=False,
        metadata={
            "help": "Train for late chunking (training.pooled_windows): each paragraph runs once "
            "and a window that holds the answer is mean-pooled from its token states, as an "
            "index with pooled windows computes it (answer_window_tokens wide)."
        },
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
class DataConfig:
    """Where a recipe's data lives: paths relative to the data folder (``notesqa train --data
    DIR``, which holds ``squad/``, ``enwiki/``, ``simplewiki/``, ``stsbenchmark/`` and ``sick/``);
    CLI flags override."""

    corpus: list[str] = field(default_factory=list, metadata={"help": "Pretraining text files."})
    squad_train: str = field(default="", metadata={"help": "SQuAD v1.1 train JSON(.gz)."})
    squad_dev: str = field(default="", metadata={"help": "SQuAD v1.1 dev JSON(.gz)."})
    sts_train: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Scored sentence pairs for the embedder: STS-B sts-train.csv, SICK_train.txt."
        },
    )

    def under(self, root: str | Path) -> DataConfig:
        """This config with every relative path joined onto the data folder ``root``.

        Example:
            >>> DataConfig(squad_train="squad/train-v1.1.json.gz").under("/data").squad_train
            '/data/squad/train-v1.1.json.gz'
        """

        def join(path: str) -> str:
            return path if not path or Path(path).is_absolute() else str(Path(root) / path)

        return DataConfig(
            corpus=[join(p) for p in self.corpus],
            squad_train=join(self.squad_train),
            squad_dev=join(self.squad_dev),
            sts_train=[join(p) for p in self.sts_train],
        )


@dataclass
class Recipe:
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    reader: ReaderConfig = field(default_factory=ReaderConfig)
    passage_reader: PassageReaderConfig = field(default_factory=PassageReaderConfig)
    embedder: EmbedderConfig = field(default_factory=EmbedderConfig)


T = TypeVar("T")


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys with a clear message."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys {unknown}; valid keys are {sorted(names)}")
    return cls(**data)


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "tokenizer": TokenizerConfig,
    "pretrain": PretrainConfig,
    "reader": ReaderConfig,
    "passage_reader": PassageReaderConfig,
    "embedder": EmbedderConfig,
}


def recipe_path(name: str | Path, next_to: Path | None = None) -> Path:
    """The file behind a recipe name: a JSON path, a file beside ``next_to`` (for ``extends``),
    or a bare name such as ``tiny`` for ``training/recipes/tiny.json``."""
    path = Path(name)
    for candidate in (
        path,
        *([next_to / path, next_to / f"{path.name}.json"] if next_to else []),
        RECIPES_DIR / f"{path.name}.json",
    ):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"recipe {name} not found; pass a JSON file or one of "
        f"{sorted(p.stem for p in RECIPES_DIR.glob('*.json'))}"
    )


def merge_sections(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` on top, one section at a time: a key the override names
    replaces the base's value (a list as a whole), the rest of the section is inherited.

    Example:
        >>> merge_sections({"reader": {"epochs": 1.0, "seed": 0}}, {"reader": {"epochs": 2.0}})
        {'reader': {'epochs': 2.0, 'seed': 0}}
    """
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def read_recipe_json(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A recipe file as one dict, its ``extends`` chain merged in (base first)."""
    path = recipe_path(path).resolve()
    if path in _seen:
        chain = " -> ".join(p.stem for p in (*_seen, path))
        raise ValueError(f"recipes extend each other in a circle: {chain}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"recipe {path} is not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise ValueError(f"recipe {path} must be a JSON object of sections")
    parent = data.pop("extends", None)
    if parent is None:
        return data
    base = read_recipe_json(recipe_path(parent, next_to=path.parent), (*_seen, path))
    base.pop("description", None)  # a description speaks for its own file only
    return merge_sections(base, data)


def load_recipe(path: str | Path) -> Recipe:
    """Read a JSON recipe; a bare name such as ``tiny`` means ``training/recipes/tiny.json``.

    A recipe may name another in ``"extends"`` and hold only what differs from it.
    """
    data = read_recipe_json(path)
    unknown = sorted(set(data) - set(SECTIONS) - {"description"})
    if unknown:
        raise ValueError(f"unknown recipe sections {unknown} in {path}; valid: {sorted(SECTIONS)}")
    return Recipe(**{k: from_dict(cls, data.get(k, {})) for k, cls in SECTIONS.items()})


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)
