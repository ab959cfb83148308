"""Pretraining throughput: notesqa's training step against a naive Hugging Face baseline, same run.

Both sides train the same BERT shape on the same synthetic batches (random token ids, 15% of
positions masked, NSP labels) on the same machine, one after the other:

* baseline: ``BertForPreTraining(input_ids, ..., labels=full (B, T) labels, next_sentence_label)``
  in fp32 (the MLM decoder runs at every position), plain ``torch.optim.AdamW``;
* ours: ``training.pretraining_objective.PretrainingHeads`` (decoder only at the masked positions), bf16
  autocast when ``precision="auto"`` finds it faster on this machine, fused AdamW where available,
  the attention kernel ``attention="auto"`` picks (eager on CPU, SDPA on CUDA) and, on CPU, the
  allocator keeping freed memory (``training/allocator.py``; the baseline is timed before it).

Model FLOPs utilisation divides the model's training FLOPs per second (6 x matmul parameters per
token, attention, and the decoder at the predicted positions) by the fastest dense matmul rate
measured in the same run (fp32 always; bf16 where this machine runs it natively, see below). On
a CPU the bf16 matmul rate of one thread is reported too: virtual CPUs that share a physical
core's AMX unit show it (2 threads barely faster than 1), and so does a machine whose absolute
tokens/s is low.

Where bf16 is not native (a CPU without ``amx_bf16`` / ``avx512_bf16``, e.g. AVX2 or plain
AVX-512, where bf16 matmuls are emulated and a 4096-square one takes minutes), the bf16 matmul
probe is skipped (``"bf16": "skipped: no native bf16 on this CPU"``; ``--bf16-probe always``
runs it anyway, at 1024 only). ``--max-seconds`` caps the timed steps: each side stops after a
third of it (at least one timed step), so the whole run stays within a few minutes on 2 cores.

Example:
    $ python benchmarks/pretrain_throughput.py --hidden 256 --layers 4 --steps 8
    {"baseline_tokens_per_s": ..., "ours_tokens_per_s": ..., "ratio": ..., "mfu": ...,
     "bf16": "native (amx_bf16)", ...}
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch
from transformers import BertConfig, BertForPreTraining

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from training.allocator import retain_freed_memory  # noqa: E402
from training.attention import ATTENTIONS, attention_implementation  # noqa: E402
from training.precision import autocast, use_bf16  # noqa: E402
from training.pretraining_objective import PretrainingHeads, pretraining_loss  # noqa: E402


def matmul_flops_per_s(
    dtype: torch.dtype,
    device: torch.device,
    sizes: tuple[int, ...] = (1024, 2048, 4096),
    seconds: float = 1.0,
) -> float:
    """Best sustained dense square-matmul rate (FLOP/s) for ``dtype`` on ``device`` over ``sizes``.

    The peak MFU is measured against: the fastest of a few sizes, each after a warm-up, so that
    the kernel's first-call setup (oneDNN/AMX) does not make the peak look low.
    """
    best = 0.0
    for size in sizes:
        a = torch.randn(size, size, device=device).to(dtype)
        b = torch.randn(size, size, device=device).to(dtype)
        for _ in range(3):  # warm-up
            a @ b
        _sync(device)
        runs, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds or runs < 2:
            a @ b
            runs += 1
        _sync(device)
        best = max(best, 2 * size**3 * runs / (time.perf_counter() - start))
    return best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


# x86 flags (Linux /proc/cpuinfo "flags") and ARM features ("Features") of native bf16 matmuls
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16", "bf16")


def native_bf16(device: torch.device, cpuinfo: str | None = None) -> str | None:
    """Why bf16 matmuls are native on ``device`` (the flag that says so), or None when they are
    emulated or it cannot tell. CUDA asks torch; a CPU is judged by its /proc/cpuinfo flags
    (``cpuinfo`` replaces the file, for tests).

    Example:
        >>> native_bf16(torch.device("cpu"), "flags\t: fpu sse avx2 avx512f amx_bf16 amx_tile")
        'amx_bf16'
        >>> native_bf16(torch.device("cpu"), "flags\t: fpu sse avx2 avx512f") is None
        True
    """
    if device.type == "cuda":
        return "cuda" if torch.cuda.is_bf16_supported() else None
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None  # not Linux: unknown, treated as emulated
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return next((flag for flag in NATIVE_BF16_FLAGS if flag in flags), None)


def make_batches(
    n: int, batch: int, seq: int, vocab: int, mask_prob: float, seed: int
) -> list[dict]:
    """Synthetic pretraining batches: ids, full labels (-100 off mask) and flat masked positions."""
    gen = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n):
        ids = torch.randint(5, vocab, (batch, seq), generator=gen)  # (B, T)
        masked = torch.rand(batch, seq, generator=gen) < mask_prob  # (B, T)
        masked[:, 0] = False
        labels = torch.where(masked, ids, torch.full_like(ids, -100))  # (B, T)
        positions = masked.flatten().nonzero().squeeze(1)  # (M,)
        batches.append(
            {
                "input_ids": torch.where(masked, torch.full_like(ids, 4), ids),
                "attention_mask": torch.ones_like(ids),
                "token_type_ids": (torch.arange(seq) >= seq // 2)
                .long()
                .expand(batch, seq)
                .contiguous(),
                "labels": labels,
                "mlm_positions": positions,
                "mlm_labels": ids.flatten()[positions],
                "nsp_labels": torch.randint(0, 2, (batch,), generator=gen),
            }
        )
    return batches


def benchmark_config(
    vocab: int = 16384,
    hidden: int = 256,
    layers: int = 4,
    heads: int = 0,
    intermediate: int = 0,
    seq: int = 128,
    dropout: float = 0.0,
) -> BertConfig:
    """The benchmarked BERT's shape (heads default to hidden // 64, the FFN to 4 x hidden)."""
    return BertConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads or max(1, hidden // 64),
        intermediate_size=intermediate or 4 * hidden,
        max_position_embeddings=max(512, seq),
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )


def training_step(
    model: BertForPreTraining,
    optimizer: torch.optim.Optimizer,
    bf16: bool,
    device: torch.device,
    mlm_cross_entropy=None,
):
    """The training loop's step (``training.pretrain.pretrain``) as a function of one batch;
    ``mlm_cross_entropy`` replaces the MLM loss (default: the loop's own)."""
    heads = PretrainingHeads(model)
    loss_kwargs = {"mlm_cross_entropy": mlm_cross_entropy} if mlm_cross_entropy else {}

    def step(batch: dict) -> None:
        with autocast(bf16, device):
            out = pretraining_loss(heads, batch, **loss_kwargs)
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def model_flops_per_token(config: BertConfig, seq: int, mask_prob: float) -> float:
    """Training FLOPs per token of *our* step (forward + backward = 3 x forward)."""
    h, layers, inter, vocab = (
        config.hidden_size,
        config.num_hidden_layers,
        config.intermediate_size,
        config.vocab_size,
    )
    encoder = layers * (4 * h * h + 2 * h * inter)  # QKV + output + FFN matmul parameters
    attention = layers * 2 * seq * h  # QK^T and AV per token
    decoder = mask_prob * (
        h * h + h * vocab
    )  # transform + vocabulary projection, masked positions only
    return 6 * (encoder + attention + decoder)


def time_steps(
    step_fn, batches: list[dict], warmup: int, device: torch.device, budget_s: float = 0.0
) -> tuple[float, int]:
    """(seconds per step, steps timed), after ``warmup`` untimed steps; with ``budget_s`` the
    timed steps stop once that many seconds have passed (at least one step is timed)."""
    for batch in batches[:warmup]:
        step_fn(batch)
    _sync(device)
    start, steps = time.perf_counter(), 0
    for batch in batches[warmup:]:
        step_fn(batch)
        steps += 1
        if budget_s:
            _sync(device)
            if time.perf_counter() - start > budget_s:
                break
    _sync(device)
    return (time.perf_counter() - start) / steps, steps


def measure_baseline(
    config: BertConfig,
    batches: list[dict],
    warmup: int,
    device: torch.device,
    budget_s: float = 0.0,
) -> tuple[float, int]:
    """(seconds per step, steps timed) of the naive loop: HF forward with full labels, fp32,
    plain AdamW."""
    torch.manual_seed(0)
    baseline = BertForPreTraining(config).to(device).train()
    optimizer = torch.optim.AdamW(baseline.parameters(), lr=1e-4)

    def step(batch: dict) -> None:
        out = baseline(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            token_type_ids=batch["token_type_ids"],
            labels=batch["labels"],
            next_sentence_label=batch["nsp_labels"],
        )
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return time_steps(step, batches, warmup, device, budget_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=0, help="default hidden // 64")
    parser.add_argument("--intermediate", type=int, default=0, help="default 4 x hidden")
    parser.add_argument("--vocab", type=int, default=16384)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per side")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--precision", default="auto", help="ours: auto | bf16 | fp32")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--attention",
        default="auto",
        choices=ATTENTIONS,
        help="ours: auto (SDPA on CUDA, eager on CPU) | sdpa | eager; the baseline keeps HF's default",
    )
    parser.add_argument(
        "--dropout",
        type=float,
        default=0.0,
        help="hidden and attention dropout of both sides (notesqa's recipes pretrain without "
        "dropout, as short-budget 'cramming' recipes do; BERT used 0.1)",
    )
    parser.add_argument(
        "--bf16-probe",
        default="auto",
        choices=("auto", "always", "never"),
        help="the bf16 matmul probe: auto = only where bf16 is native (see native_bf16); "
        "always = also where it is emulated (at size 1024 only: slow)",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=300.0,
        help="cap on the timed steps: each side stops after a third of this (0 = no cap)",
    )
    parser.add_argument(
        "--keep-allocator",
        action="store_true",
        help="ours: leave glibc's allocator as it is (default: retain freed memory, "
        "training/allocator.py)",
    )
    args = parser.parse_args()

    device = torch.device(args.device)
    config = benchmark_config(
        args.vocab, args.hidden, args.layers, args.heads, args.intermediate, args.seq, args.dropout
    )
    mask_prob = 0.15
    batches = [
        {k: v.to(device) for k, v in b.items()}
        for b in make_batches(
            args.steps + args.warmup, args.batch, args.seq, args.vocab, mask_prob, seed=0
        )
    ]

    native = native_bf16(device)
    probe_bf16 = args.bf16_probe == "always" or (args.bf16_probe == "auto" and native)
    budget_s = args.max_seconds / 3
    baseline_s, baseline_steps = measure_baseline(config, batches, args.warmup, device, budget_s)

    # the baseline ran with the allocator as it was; from here on ours keeps freed memory
    retained = device.type == "cpu" and not args.keep_allocator and retain_freed_memory()
    bf16 = use_bf16(args.precision, device)
    torch.manual_seed(0)
    config._attn_implementation = attention_implementation(args.attention, device)
    model = BertForPreTraining(config).to(device).train()
    try:
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
        fused = True
    except (RuntimeError, TypeError):
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        fused = False

    our_step = training_step(model, optimizer, bf16, device)
    ours_s, ours_steps = time_steps(our_step, batches, args.warmup, device, budget_s)

    tokens = args.batch * args.seq
    peak_fp32 = matmul_flops_per_s(torch.float32, device)
    peak_bf16 = one_thread_bf16 = None
    if probe_bf16:
        # emulated bf16 (probe forced): one modest size, or a 4096-square matmul takes minutes
        sizes = (1024, 2048, 4096) if native else (1024,)
        peak_bf16 = matmul_flops_per_s(torch.bfloat16, device, sizes)
        if device.type == "cpu":  # how much the second thread adds: vCPUs may share one AMX unit
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            one_thread_bf16 = matmul_flops_per_s(torch.bfloat16, device, sizes)
            torch.set_num_threads(threads)
    if native:
        bf16_status = f"native ({native})" + ("" if probe_bf16 else ", probe skipped")
    else:
        what = "GPU" if device.type == "cuda" else "CPU"
        bf16_status = (
            f"{'emulated, probed' if probe_bf16 else 'skipped'}: no native bf16 on this {what}"
        )
    achieved = model_flops_per_token(config, args.seq, mask_prob) * tokens / ours_s

    def tflops(rate: float | None) -> float | None:
        return None if rate is None else round(rate / 1e12, 5)

    result = {
        "baseline_tokens_per_s": round(tokens / baseline_s, 1),
        "ours_tokens_per_s": round(tokens / ours_s, 1),
        "ratio": round(baseline_s / ours_s, 3),
        "mfu": round(achieved / max(peak_bf16 or 0.0, peak_fp32), 4),
        "mfu_vs_bf16_matmul": peak_bf16 and round(achieved / peak_bf16, 4),
        "model_tflops_per_s": round(achieved / 1e12, 5),
        "bf16": bf16_status,
        "matmul_tflops_bf16": tflops(peak_bf16),
        "matmul_tflops_fp32": tflops(peak_fp32),
        "matmul_tflops_bf16_one_thread": tflops(one_thread_bf16),
        "ours_bf16_autocast": bf16,
        "ours_fused_adamw": fused,
        "ours_attention": config._attn_implementation,
        "ours_retain_freed_memory": retained,
        "dropout": args.dropout,
        "model": {
            "hidden": args.hidden,
            "layers": args.layers,
            "heads": config.num_attention_heads,
            "intermediate": config.intermediate_size,
            "vocab": args.vocab,
        },
        "batch": args.batch,
        "seq": args.seq,
        "timed_steps": {"baseline": baseline_steps, "ours": ours_steps},
        "max_seconds": args.max_seconds,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "machine": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "torch": torch.__version__,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
