"""The pretraining objective: MLM at the masked positions only, plus NSP, and its held-out evaluation.

The full-vocabulary projection over every position is most of a small model's work; running it on
the M masked positions alone (M ~ 15% of B*T) gives the same loss and gradients.

Example (a BERT of 8 tokens, one row of 6 positions, 2 of them masked):
    >>> from transformers import BertConfig
    >>> model = BertForPreTraining(BertConfig(vocab_size=8, hidden_size=16, num_hidden_layers=1,
    ...                                       num_attention_heads=2, intermediate_size=32))
    >>> batch = {"input_ids": torch.tensor([[2, 5, 4, 6, 4, 3]]), "attention_mask": torch.ones(1, 6, dtype=torch.long),
    ...          "token_type_ids": torch.zeros(1, 6, dtype=torch.long), "mlm_positions": torch.tensor([2, 4]),
    ...          "mlm_labels": torch.tensor([7, 5]), "nsp_labels": torch.tensor([0])}
    >>> out = pretraining_loss(model, batch)
    >>> out["mlm_logits"].shape, out["nsp_logits"].shape     # (M, V), (B, 2)
    (torch.Size([2, 8]), torch.Size([1, 2]))
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import BertForPreTraining

from training.cross_entropy import vocab_cross_entropy
from training.precision import autocast


class PretrainingHeads(nn.Module):
    """BERT encoder + MLM head at the masked positions only + NSP head, as one module for DDP.

    The full-vocabulary projection over every position is most of a small model's work; running it
    on the M masked positions alone (M ~ 15% of B*T) gives the same loss and gradients.
    """

    def __init__(self, model: BertForPreTraining) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor,
        mlm_positions: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model.bert(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        )
        hidden = out.last_hidden_state  # (B, T, H)
        masked = hidden.flatten(0, 1).index_select(0, mlm_positions)  # (M, H)
        mlm_logits = self.model.cls.predictions(masked)  # (M, V)
        nsp_logits = self.model.cls.seq_relationship(out.pooler_output)  # (B, 2)
        return mlm_logits, nsp_logits


def pretraining_loss(
    heads: nn.Module,
    batch: dict[str, torch.Tensor],
    mlm_count: float | None = None,
    nsp_count: float | None = None,
    mlm_cross_entropy=vocab_cross_entropy,
) -> dict[str, torch.Tensor]:
    """MLM + NSP loss; sums are divided by the (global) counts, defaulting to this batch's.

    ``mlm_cross_entropy(logits (M, V), labels (M,))`` returns the summed MLM loss.

    Under DDP pass the global masked-token and example counts times ``1 / world_size``'s inverse
    (see ``pretrain``), so that DDP's gradient averaging yields exactly the single-process mean.
    """
    if isinstance(heads, BertForPreTraining):
        heads = PretrainingHeads(heads)
    mlm_logits, nsp_logits = heads(
        batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], batch["mlm_positions"]
    )
    mlm_sum = mlm_cross_entropy(mlm_logits, batch["mlm_labels"])  # fp32, no (M, V) fp32 copies
    nsp_sum = F.cross_entropy(nsp_logits.float(), batch["nsp_labels"], reduction="sum")
    mlm_loss = mlm_sum / (mlm_count or batch["mlm_labels"].numel())
    nsp_loss = nsp_sum / (nsp_count or batch["nsp_labels"].numel())
    return {
        "loss": mlm_loss + nsp_loss,
        "mlm_loss": mlm_loss,
        "nsp_loss": nsp_loss,
        "mlm_sum": mlm_sum.detach(),
        "nsp_sum": nsp_sum.detach(),
        "mlm_logits": mlm_logits,
        "nsp_logits": nsp_logits,
    }


@torch.no_grad()
def evaluate(
    model, batches: list[dict[str, torch.Tensor]], bf16: bool, device: torch.device
) -> dict[str, float]:
    """MLM loss/accuracy and NSP accuracy on fixed held-out batches."""
    model.eval()
    totals = {
        "mlm_loss": 0.0,
        "nsp_loss": 0.0,
        "mlm_correct": 0,
        "mlm_count": 0,
        "nsp_correct": 0,
        "nsp_count": 0,
    }
    for batch in batches:
        batch = {k: v.to(device) for k, v in batch.items()}
        with autocast(bf16, device):
            out = pretraining_loss(model, batch)
        totals["mlm_loss"] += out["mlm_loss"].item()
        totals["nsp_loss"] += out["nsp_loss"].item()
        totals["mlm_correct"] += (out["mlm_logits"].argmax(-1) == batch["mlm_labels"]).sum().item()
        totals["mlm_count"] += batch["mlm_labels"].numel()
        totals["nsp_correct"] += (out["nsp_logits"].argmax(-1) == batch["nsp_labels"]).sum().item()
        totals["nsp_count"] += batch["nsp_labels"].numel()
    model.train()
    n = max(1, len(batches))
    return {
        "eval_mlm_loss": totals["mlm_loss"] / n,
        "eval_nsp_loss": totals["nsp_loss"] / n,
        "eval_mlm_acc": totals["mlm_correct"] / max(1, totals["mlm_count"]),
        "eval_nsp_acc": totals["nsp_correct"] / max(1, totals["nsp_count"]),
    }
