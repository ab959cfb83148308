"""The MLM loss, ``training.cross_entropy.vocab_cross_entropy`` against ``F.cross_entropy(logits.float())``.

Two measurements in one run, same machine:

* memory: peak extra resident memory of one forward + backward of the loss on (M, V) bf16
  logits, each implementation in a fresh subprocess (``ru_maxrss`` only grows, so one process
  could not measure both);
* speed: the 4 x 256 pretraining step (``training.pretrain.pretraining_loss``, bf16 autocast,
  fused AdamW, freed memory retained as in training) with either loss, alternating rounds of a few
  steps in one process so that a host whose speed drifts affects both sides alike; the median of
  the per-round ratios is reported.

Example:
    $ python benchmarks/mlm_loss.py --masked 2500 --vocab 30522
    {"memory_mb": {"reference": 877.5, "ours": 425.0, "ratio": 2.06},
     "step_tokens_per_s": {"reference": ..., "ours": ..., "median_ratio": ...}}
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from transformers import BertForPreTraining  # noqa: E402

from benchmarks.pretrain_throughput import (  # noqa: E402
    benchmark_config,
    make_batches,
    training_step,
)
from training.allocator import retain_freed_memory  # noqa: E402
from training.cross_entropy import vocab_cross_entropy  # noqa: E402


def reference_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """What ``pretraining_loss`` computed before: an fp32 copy, then PyTorch's cross-entropy."""
    return F.cross_entropy(logits.float(), labels, reduction="sum")


LOSSES = {"reference": reference_loss, "ours": vocab_cross_entropy}


def peak_loss_memory_mb(loss: str, masked: int, vocab: int) -> float:
    """Peak extra resident MB of one forward + backward of ``loss`` (run in this process)."""
    # drawn in bf16 directly: an fp32 draw would set a peak of its own before the measurement
    logits = torch.empty(masked, vocab, dtype=torch.bfloat16).normal_().requires_grad_()  # (M, V)
    labels = torch.randint(0, vocab, (masked,))  # (M,)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    torch.autograd.grad(LOSSES[loss](logits, labels), logits)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024


def paired_step_rates(rounds: int, steps: int, batch: int) -> dict[str, list[float]]:
    """Tokens/s of the pretraining step with each loss, ``rounds`` alternating rounds."""
    retain_freed_memory()
    config = benchmark_config()
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    model = BertForPreTraining(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    batches = make_batches(steps, batch, 128, config.vocab_size, 0.15, seed=0)
    cpu = torch.device("cpu")
    step_with = {
        name: training_step(model, optimizer, True, cpu, loss) for name, loss in LOSSES.items()
    }
    rates: dict[str, list[float]] = {name: [] for name in LOSSES}
    for _ in range(rounds):
        for name, step in step_with.items():
            step(batches[0])  # warm-up after the switch
            start = time.perf_counter()
            for b in batches:
                step(b)
            rates[name].append(len(batches) * batch * 128 / (time.perf_counter() - start))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--masked", type=int, default=2500, help="M, masked positions")
    parser.add_argument("--vocab", type=int, default=30522, help="V (BERT-base's by default)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=4, help="steps per side in each round")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-of", choices=sorted(LOSSES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_of:  # the subprocess side of the memory measurement
        print(peak_loss_memory_mb(args.memory_of, args.masked, args.vocab))
        return

    memory = {}
    for name in LOSSES:
        out = subprocess.run(
            [sys.executable, __file__, "--memory-of", name, "--masked", str(args.masked)]
            + ["--vocab", str(args.vocab), "--threads", str(args.threads)],
            check=True,
            capture_output=True,
            text=True,
        )
        memory[name] = round(float(out.stdout.strip().splitlines()[-1]), 1)
    rates = paired_step_rates(args.rounds, args.steps, args.batch)
    ratios = [o / r for o, r in zip(rates["ours"], rates["reference"], strict=True)]
    result = {
        "memory_mb": {**memory, "ratio": round(memory["reference"] / max(memory["ours"], 0.1), 2)},
        "logits_mb": round(args.masked * args.vocab * 2 / 2**20, 1),
        "step_tokens_per_s": {
            "reference": round(statistics.median(rates["reference"]), 1),
            "ours": round(statistics.median(rates["ours"]), 1),
            "median_ratio": round(statistics.median(ratios), 3),
            "rounds": args.rounds,
            "steps_per_round": args.steps,
        },
        "masked": args.masked,
        "vocab": args.vocab,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
