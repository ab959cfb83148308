"""The pretraining section of a recipe: BERT's sizes, its data, its optimisation.

Example:
    >>> cfg = PretrainConfig(token_budget=200_000_000, schedule="triangle", batch_ramp=0.6)
    >>> cfg.hidden_size, cfg.num_hidden_layers
    (256, 4)
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
    max_tokens_per_char: float = field(
        default=0.0,
        metadata={
            "help": "Train only on documents the tokenizer compresses to at most this many tokens "
            "per character (Cramming drops text above 0.3: tables, lists, foreign scripts); "
            "0 = all. The held-out documents are never filtered, so MLM scores compare."
        },
    )
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
            "benchmarks/positional_toy.py of commit e0833ed, not yet shown on text (models/MODEL_CARD.md)."
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
            "benchmarks/positional_toy.py --zipf, commit e0833ed)."
        },
    )
    weight_decay: float = 0.01
    warmup_steps: int = 200
    max_steps: int = 2000
    schedule: str = field(
        default="linear",
        metadata={
            "help": "linear | cosine: warm-up, then decay to 0; triangle (with token_budget): "
            "Cramming's one cycle, from a quarter of learning_rate up to it at 75% of the "
            "budget, then down to 0 at its end."
        },
    )
    token_budget: int = field(
        default=0,
        metadata={
            "help": "Tokens (not counting padding) to pretrain on; when set, the run ends there "
            "instead of at max_steps, and the learning-rate schedule and the batch ramp follow "
            "the share of the budget seen, so a budget means the same on every machine."
        },
    )
    batch_ramp: float = field(
        default=0.0,
        metadata={
            "help": "With token_budget: grow the accumulation from 1 micro-batch to grad_accum "
            "over this share of the budget (Cramming reaches its full batch at 0.6); 0 = "
            "grad_accum from the start."
        },
    )
    snapshot_tokens: list[int] = field(
        default_factory=list,
        metadata={
            "help": "Keep a copy of the model (with its held-out MLM scores) in "
            "RUN/snapshots/tokens-N when the run passes each of these token counts."
        },
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
            "31% tiled (benchmarks/tuning/mlm_by_position.py)."
        },
    )
    seed: int = 0
    # bookkeeping
    log_every: int = 20
    eval_every: int = 200
    save_every: int = 200
    eval_batches: int = 10
