"""Is an ONNX Runtime copy of the embedder faster than PyTorch on this CPU? Measured, not assumed.

Exports the shipped (or given) embedder's BERT + mean pooling + normalisation to ONNX with
dynamic batch and sequence axes (``torch.onnx.export``), then, in one run with the same threads,
the same 1,000 SQuAD dev paragraphs, the same length-sorted batches and the same tokenizer,
encodes them with ``Embedder.encode`` (PyTorch fp32) and with ONNX Runtime (fp32, all graph
optimisations). Prints passages/s for both, their ratio and the largest difference between the
two sets of unit vectors (cosine), so speed is never bought with different embeddings.

Needs ``pip install -e '.[onnx]'`` (onnx, onnxruntime, onnxscript: not runtime dependencies).

Example:
    $ python benchmarks/embedder_onnx.py --data ../shared/data
    {"torch_per_s": ..., "onnx_per_s": ..., "ratio": ..., "min_cosine_torch_vs_onnx": ...}
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.retrieval import squad_corpus  # noqa: E402
from embedder import Embedder  # noqa: E402


class PooledEncoder(torch.nn.Module):
    """BERT + attention-masked mean pooling + L2 normalisation, as one exportable graph."""

    def __init__(self, bert: torch.nn.Module) -> None:
        super().__init__()
        self.bert = bert

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask)[0]  # (B, T, H)
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (B, H)
        return torch.nn.functional.normalize(pooled, dim=-1)


def export_onnx(embedder: Embedder, path: Path) -> Path:
    """Write the embedder as an ONNX graph: (input_ids, attention_mask) -> (B, d) unit vectors."""
    bert = embedder.model[0].auto_model.eval()
    example = embedder.tokenizer(["an example sentence"] * 2, return_tensors="pt")
    torch.onnx.export(
        PooledEncoder(bert),
        (example["input_ids"], example["attention_mask"]),
        str(path),
        input_names=["input_ids", "attention_mask"],
        output_names=["embeddings"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "sequence"},
            "attention_mask": {0: "batch", 1: "sequence"},
            "embeddings": {0: "batch"},
        },
        opset_version=17,
        dynamo=False,
    )
    return path


def onnx_encode(session, tokenizer, texts: list[str], batch_size: int, max_len: int) -> np.ndarray:
    """(n, d) float32 unit vectors from ONNX Runtime, in length-sorted batches like ST."""
    order = np.argsort([-len(t) for t in texts], kind="stable")
    chunks = []
    for start in range(0, len(texts), batch_size):
        idx = order[start : start + batch_size]
        enc = tokenizer(
            [texts[i] for i in idx],
            padding=True,
            truncation=True,
            max_length=max_len,
            return_tensors="np",
        )
        feeds = {
            "input_ids": enc["input_ids"].astype(np.int64),
            "attention_mask": enc["attention_mask"].astype(np.int64),
        }
        chunks.append((idx, session.run(None, feeds)[0]))  # (b, d)
    out = np.zeros((len(texts), chunks[0][1].shape[1]), dtype=np.float32)
    for idx, vectors in chunks:
        out[idx] = vectors
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--model", default=None, help="embedder folder (default: shipped)")
    parser.add_argument("--passages", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import onnxruntime as ort

    torch.set_num_threads(args.threads)
    embedder = Embedder.load(args.model)
    paragraphs, _, _ = squad_corpus(Path(args.data) / "squad" / "dev-v1.1.json.gz")
    texts = paragraphs[: args.passages]
    prompted = [embedder.prompts.get("passage", "") + t for t in texts]  # what encode() embeds
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(embedder, Path(tmp) / "embedder.onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        onnx_bytes = path.stat().st_size

        max_len = embedder.max_seq_length
        embedder.encode(texts[:64], kind="passage")  # warm both up
        onnx_encode(session, embedder.tokenizer, prompted[:64], args.batch_size, max_len)
        start = time.perf_counter()
        ours = embedder.encode(texts, batch_size=args.batch_size, kind="passage")  # (n, d)
        torch_s = time.perf_counter() - start
        start = time.perf_counter()
        onnx = onnx_encode(
            session, embedder.tokenizer, prompted, args.batch_size, max_len
        )  # (n, d)
        onnx_s = time.perf_counter() - start
    cosines = (ours * onnx).sum(1)  # (n,)
    result = {
        "torch_per_s": round(len(texts) / torch_s, 1),
        "onnx_per_s": round(len(texts) / onnx_s, 1),
        "ratio": round(torch_s / onnx_s, 3),
        "min_cosine_torch_vs_onnx": round(float(cosines.min()), 6),
        "onnx_mb": round(onnx_bytes / 2**20, 1),
        "passages": len(texts),
        "batch_size": args.batch_size,
        "threads": args.threads,
        "model": embedder.identity,
        "onnxruntime": ort.__version__,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
