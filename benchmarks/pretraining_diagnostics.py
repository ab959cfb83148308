"""Does a pretrained checkpoint use word order yet? MLM on ordered vs shuffled text, and attention.

A BERT on the early MLM plateau predicts from the bag of words around a mask: its loss hardly
changes when the words of the text are shuffled, and its attention is close to uniform. One that
has left the plateau loses much more on shuffled text and has heads that attend to neighbours.
For each checkpoint, on the same Simple Wikipedia passages (not in the pretraining shards), with
the same masked positions (15%, seeded):

* ``mlm_loss_ordered`` / ``mlm_loss_shuffled`` and the accuracies; ``order_gain`` is the loss
  difference (shuffled - ordered): about 0 for a bag-of-words model;
* ``attention_entropy_ratio``: mean attention entropy over heads and layers / that of uniform
  attention (1.0 = uniform); ``previous_token_attention``: the mean weight given to the previous
  token by, in each layer, the head that gives it most, averaged over layers and passages
  (``uniform_attention``, 1 / length, is what uniform attention would give).

Example:
    $ python benchmarks/pretraining_diagnostics.py --data ../shared/data \\
        --checkpoints runs/mini/model runs/mini-long/model
    {"checkpoints": [{"checkpoint": "runs/mini/model", "order_gain": ..., ...}, ...]}
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoTokenizer, BertForPreTraining

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from training.corpus import iter_documents  # noqa: E402


def passages(path: Path, count: int, skip: int = 1000, chars: int = 700) -> list[str]:
    """``count`` passages (first ``chars`` characters) of long articles after the first ``skip``."""
    out = []
    for i, paragraphs in enumerate(iter_documents([path])):
        text = "\n".join(paragraphs)
        if i >= skip and len(text) > 2 * chars:
            out.append(text[:chars])
        if len(out) >= count:
            break
    return out


def masked_scores(model, ids: torch.Tensor, positions: np.ndarray, mask_id: int):
    """(summed loss, correct) of predicting ``ids`` at ``positions`` with those masked."""
    labels = ids[0, positions].clone()  # (M,)
    inputs = ids.clone()
    inputs[0, positions] = mask_id
    with torch.no_grad():
        logits = model(input_ids=inputs, attention_mask=torch.ones_like(inputs)).prediction_logits
    logits = logits[0, positions]  # (M, V)
    loss = F.cross_entropy(logits, labels, reduction="sum").item()
    return loss, int((logits.argmax(-1) == labels).sum())


def diagnose(checkpoint: Path, texts: list[str], seed: int = 0) -> dict:
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = BertForPreTraining.from_pretrained(checkpoint, attn_implementation="eager").eval()
    rng = np.random.default_rng(seed)
    sums = {"ordered": [0.0, 0], "shuffled": [0.0, 0]}
    masked_total = 0
    entropy_ratio, previous, uniform = [], [], []
    for text in texts:
        ids = tokenizer(text, truncation=True, max_length=128)["input_ids"]
        body = np.array(ids[1:-1])
        positions = 1 + rng.choice(len(body), size=max(1, round(0.15 * len(body))), replace=False)
        for name, order in (
            ("ordered", np.arange(len(body))),
            ("shuffled", rng.permutation(len(body))),
        ):
            row = torch.tensor([[ids[0], *body[order].tolist(), ids[-1]]])  # (1, T)
            loss, correct = masked_scores(model, row, positions, tokenizer.mask_token_id)
            sums[name][0] += loss
            sums[name][1] += correct
        masked_total += len(positions)
        row = torch.tensor([ids])  # (1, T)
        with torch.no_grad():
            attentions = model.bert(input_ids=row, output_attentions=True).attentions
        length = row.shape[1]
        for layer in attentions:  # (1, heads, T, T)
            probs = layer[0]
            entropy = -(probs * (probs + 1e-12).log()).sum(-1).mean()
            entropy_ratio.append(entropy.item() / math.log(length))
            prev = probs.diagonal(offset=-1, dim1=-2, dim2=-1).mean(-1)  # (heads,)
            previous.append(prev.max().item())
            uniform.append(1.0 / length)
    result = {"checkpoint": str(checkpoint)}
    for name, (loss, correct) in sums.items():
        result[f"mlm_loss_{name}"] = round(loss / masked_total, 4)
        result[f"mlm_accuracy_{name}"] = round(correct / masked_total, 4)
    result["order_gain"] = round(result["mlm_loss_shuffled"] - result["mlm_loss_ordered"], 4)
    result["attention_entropy_ratio"] = round(float(np.mean(entropy_ratio)), 3)
    result["previous_token_attention"] = round(float(np.mean(previous)), 4)
    result["uniform_attention"] = round(float(np.mean(uniform)), 4)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--checkpoints", nargs="+", required=True, type=Path)
    parser.add_argument("--passages", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    corpus = sorted((Path(args.data) / "simplewiki").glob("*.jsonl.gz"))
    if not corpus:
        raise FileNotFoundError(f"no simplewiki/*.jsonl.gz under {args.data}; pass --data")
    texts = passages(corpus[0], args.passages)
    points = [diagnose(checkpoint, texts) for checkpoint in args.checkpoints]
    print(json.dumps({"checkpoints": points, "passages": len(texts)}, indent=2))


if __name__ == "__main__":
    main()
