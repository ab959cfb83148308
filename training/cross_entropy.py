"""Cross-entropy over a large vocabulary without the fp32 copies of the logits.

``F.cross_entropy(logits.float(), labels)`` on the MLM head's (M, V) bf16 logits allocates an
fp32 copy of them, an fp32 log-softmax, a zero-filled (M, V) gradient that the NLL scatters into
and an fp32 log-softmax gradient before casting it back: four (M, V) fp32 tensors on top of the
logits. ``vocab_cross_entropy`` computes the same loss and gradient in fp32 a few rows at a time:
the forward keeps only the per-row log-sum-exp, the backward writes ``softmax - onehot`` straight
into one gradient tensor in the logits' dtype. ``benchmarks/mlm_loss.py`` (commit e0833ed) on a 2-core CPU, M =
2,500 and V = 30,522 (BERT-base's vocabulary) in bf16: peak extra memory of the loss's forward
and backward 877 MB with the reference, 409-470 MB with this (about 2x less). Speed is a wash
there (the 4 x 256 pretraining step in alternating rounds: 0.98x and 1.03x the reference's
tokens/s in two runs), because ``training/allocator.py`` already spares the reference its page
faults; the point is the memory a larger batch or vocabulary can use instead.
The result equals the reference up to float rounding (``tests/training/test_cross_entropy.py``).

Example:
    >>> logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.bfloat16, requires_grad=True)
    >>> vocab_cross_entropy(logits, torch.tensor([0, 2]))  # F.cross_entropy(..., reduction="sum") gives the same
    tensor(1.3382, grad_fn=<VocabCrossEntropyBackward>)
"""

from __future__ import annotations

import torch

ROWS_PER_CHUNK = 256  # a (256, V) fp32 chunk is 16 MiB at V = 16,384, reused from chunk to chunk


class VocabCrossEntropy(torch.autograd.Function):
    """Summed cross-entropy of (M, V) logits against (M,) class ids, fp32 inside, chunked."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        compute = torch.promote_types(logits.dtype, torch.float32)  # fp32, or fp64 for fp64 logits
        log_sum_exp = torch.empty(logits.shape[0], dtype=compute, device=logits.device)
        for start in range(0, logits.shape[0], ROWS_PER_CHUNK):
            rows = slice(start, start + ROWS_PER_CHUNK)
            chunk = logits[rows].to(compute, copy=True)  # (m, V); edited in place below
            peak = chunk.amax(dim=-1, keepdim=True)  # (m, 1)
            log_sum_exp[rows] = chunk.sub_(peak).exp_().sum(dim=-1).log_().add_(peak.squeeze(1))
        target = logits.gather(1, labels.unsqueeze(1)).squeeze(1).to(compute)  # (M,)
        ctx.save_for_backward(logits, labels)
        ctx.compute = compute
        return (log_sum_exp - target).sum()

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        logits, labels = ctx.saved_tensors
        grad = torch.empty_like(logits)  # (M, V), the logits' dtype
        compute = ctx.compute
        scale = grad_output.to(compute)
        for start in range(0, logits.shape[0], ROWS_PER_CHUNK):
            rows = slice(start, start + ROWS_PER_CHUNK)
            probs = torch.softmax(logits[rows], dim=-1, dtype=compute)  # (m, V)
            probs.scatter_add_(
                1, labels[rows].unsqueeze(1), torch.full_like(probs[:, :1], -1.0)
            )  # softmax - onehot
            grad[rows] = probs.mul_(scale)
        return grad, None


def vocab_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed cross-entropy of ``logits`` (M, V), any float dtype, against class ids ``labels``
    (M,); the loss is fp32 (fp64 for fp64 logits). Every label must be a valid class id: there is
    no ``ignore_index`` (the MLM labels are gathered at the masked positions only).

    Example:
        >>> vocab_cross_entropy(torch.zeros(2, 4), torch.tensor([0, 3]))   # 2 * log(4)
        tensor(2.7726)
    """
    if logits.dim() != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(
            f"vocab_cross_entropy takes (M, V) logits and (M,) labels, got {tuple(logits.shape)} "
            f"and {tuple(labels.shape)}"
        )
    return VocabCrossEntropy.apply(logits, labels)
