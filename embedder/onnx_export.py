"""Export a model to ONNX once (with torch), check the export, and quantise its weights to int8.

Only ``embedder.onnx_runtime.cached_export`` calls this, the first time a model is run with the
ONNX runtime; with ``rag.reader_runtime``'s reader export, the only place the ONNX path imports
torch. The legacy TorchScript exporter
(``dynamo=False``) traces BERT with eager attention (the SDPA mask builder would bake the traced
batch's shape into the graph); every export is checked against torch on a batch of another shape
before it is kept. Quantisation is onnxruntime's dynamic int8 (weights int8 per output channel,
activations quantised on the fly), which on a CPU with VNNI runs the matrix products in int8.

Example (exporting the shipped embedder takes about 15 s on 2 cores, so the suite does not run
it here; ``tests/embedder/test_onnx.py`` exports a tiny model):
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp())
    >>> settings = write_embedder_export(Path("models/embedder"), out, quantize=True)  # doctest: +SKIP
    >>> sorted(p.name for p in out.iterdir())                               # doctest: +SKIP
    ['model.onnx', 'tokenizer.json']
"""

from __future__ import annotations

import contextlib
import logging
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from embedder.onnx_runtime import MODEL_FILE, POOL_INPUT, TOKENIZER_FILE, session

log = logging.getLogger(__name__)

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OPSET = 17


def eager_attention(model: torch.nn.Module) -> None:
    """Switch a transformers model to eager attention, which traces with dynamic shapes."""
    setter = getattr(model, "set_attn_implementation", None)
    if setter is not None:
        setter("eager")
    elif hasattr(model, "config"):
        model.config._attn_implementation = "eager"


def example_batch(
    vocab_size: int, batch: int, length: int, seed: int = 0, pooled_rows: int = 0
) -> dict:
    """Random (batch, length) ids with the last row half padded, as int64 numpy arrays; with
    ``pooled_rows``, also random (batch, pooled_rows, length) float32 ``pool_weights``."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, vocab_size, size=(batch, length), dtype=np.int64)  # (B, T)
    mask = np.ones_like(ids)  # (B, T)
    mask[-1, length // 2 :] = 0
    ids[mask == 0] = 0
    inputs = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    if pooled_rows:
        weights = rng.integers(0, 2, size=(batch, pooled_rows, length)) * mask[:, None, :]
        weights[:, 0] = mask  # no row without a token
        inputs[POOL_INPUT] = weights.astype(np.float32)  # (B, W, T)
    return inputs


def _check(module: torch.nn.Module, path: Path, batch: dict, atol: float) -> None:
    """Compare the exported graph with ``module`` on ``batch``; raise if they differ."""
    with torch.no_grad():
        expected = module(*(torch.from_numpy(batch[k]) for k in batch))
    expected = [expected] if isinstance(expected, torch.Tensor) else list(expected)
    got = session(path).run(None, batch)
    for want, have in zip(expected, got, strict=True):
        mask = batch["attention_mask"].astype(bool)
        want = want.numpy()
        # padded positions of per-token outputs are never read: compare real tokens only
        if want.shape == mask.shape:
            want, have = want[mask], have[mask]
        error = float(np.abs(want - have).max())
        if error > atol:
            raise ValueError(
                f"the ONNX export of {path.parent.name} differs from torch by {error:.2g} "
                f"(> {atol}); run with NOTESQA_RUNTIME=torch and please report it"
            )


def export_module(
    module: torch.nn.Module,
    path: Path,
    output_names: Sequence[str],
    vocab_size: int,
    per_token_outputs: bool,
    pooled: bool = False,
) -> None:
    """Export ``module(input_ids, attention_mask, token_type_ids[, pool_weights])`` with dynamic
    batch and length (and pooled rows), then check it against torch on a batch of another shape.
    ``pooled`` modules return ``(sentence_embedding, window_embeddings)``."""
    module = module.eval().float()
    batch = example_batch(vocab_size, 2, 16, pooled_rows=2 if pooled else 0)
    axes = {name: {0: "batch", 1: "tokens"} for name in INPUTS}
    axes.update(
        {
            name: {0: "batch", 1: "tokens"} if per_token_outputs else {0: "batch"}
            for name in output_names
        }
    )
    if pooled:
        axes[POOL_INPUT] = {0: "batch", 1: "rows", 2: "tokens"}
        axes[output_names[-1]] = {0: "batch", 1: "rows"}
    with torch.no_grad():
        torch.onnx.export(
            module,
            tuple(torch.from_numpy(v) for v in batch.values()),
            str(path),
            input_names=list(batch),
            output_names=list(output_names),
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )
    check_batch = example_batch(vocab_size, 3, 23, seed=1, pooled_rows=3 if pooled else 0)
    _check(module, path, check_batch, atol=1e-3)


def quantize_int8(source: Path, target: Path, keep_float: Sequence[str] = ()) -> None:
    """Dynamic int8 quantisation of ``source``'s matrix products into ``target``, except the
    nodes named in ``keep_float``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(source),
        str(target),
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul", "Gemm"],
        nodes_to_exclude=list(keep_float),
    )


def head_nodes(path: Path, after: str = "LayerNormalization") -> list[str]:
    """Names of the matrix products after the graph's last ``after`` node: the heads that turn
    the encoder's output into a vector or logits, kept in float by ``quantize_int8``."""
    import onnx

    nodes = onnx.load(str(path), load_external_data=False).graph.node
    last = max((i for i, n in enumerate(nodes) if n.op_type == after), default=-1)
    return [n.name for n in nodes[last + 1 :] if n.op_type in ("MatMul", "Gemm")]


_QUIET_LOCK = threading.Lock()  # one export at a time: the root logger's level is shared


@contextlib.contextmanager
def _quiet():
    """No tracer warnings, no advice from the quantiser (it logs on the root logger). Held by one
    thread at a time, so two exports (the app and a watcher) never restore each other's level."""
    _QUIET_LOCK.acquire()
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)
        _QUIET_LOCK.release()


def save_graph(
    module, folder: Path, output_names, vocab_size, per_token, quantize, pooled: bool = False
) -> None:
    """``module`` as ``folder/model.onnx``: exported, checked, int8 when ``quantize``."""
    target = folder / MODEL_FILE
    with _quiet():
        if not quantize:
            export_module(module, target, output_names, vocab_size, per_token, pooled)
            return
        float_path = folder / "float.onnx"
        export_module(module, float_path, output_names, vocab_size, per_token, pooled)
        quantize_int8(float_path, target, keep_float=head_nodes(float_path))
        float_path.unlink()


class _SentenceGraph(torch.nn.Module):
    """A sentence-transformers model as one graph: transformer, pooling, then the rest of its
    modules (normalise, dense whitening, ...), from token ids to the sentence embedding; and,
    from the same token states, the vectors of ``pool_weights``'s rows (late chunking,
    ``embedder.pooling``) through the modules after the pooling."""

    def __init__(self, model) -> None:
        super().__init__()
        self.modules_ = torch.nn.ModuleList(list(model))
        self.pooling_at = next(
            i for i, m in enumerate(self.modules_) if type(m).__name__ == "Pooling"
        )

    def forward(self, input_ids, attention_mask, token_type_ids, pool_weights):
        transformer = self.modules_[0].auto_model
        hidden = transformer(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state  # (B, T, H)
        features = {"token_embeddings": hidden, "attention_mask": attention_mask}
        for module in self.modules_[1:]:
            features = module(features)
        sums = pool_weights.sum(dim=2, keepdim=True).clamp(min=1e-9)  # (B, W, 1)
        rows = torch.bmm(pool_weights, hidden) / sums  # (B, W, H)
        pooled = {"sentence_embedding": rows.reshape(-1, rows.shape[-1])}  # (B * W, H)
        for module in self.modules_[self.pooling_at + 1 :]:
            pooled = module(pooled)
        windows = pooled["sentence_embedding"]  # (B * W, D)
        shape = (rows.shape[0], rows.shape[1], windows.shape[-1])
        return features["sentence_embedding"], windows.reshape(shape)  # (B, D), (B, W, D)


def write_embedder_export(folder: Path, out: Path, quantize: bool) -> dict:
    """Export the sentence-transformers model in ``folder`` into ``out``; returns the settings
    the ONNX encoder needs (window, size, prompts)."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu")
    model.float()
    transformer = model[0].auto_model
    eager_attention(transformer)
    vocab = int(transformer.config.vocab_size)
    outputs = ["sentence_embedding", "window_embeddings"]
    save_graph(_SentenceGraph(model), out, outputs, vocab, False, quantize, pooled=True)
    (out / TOKENIZER_FILE).write_text(model.tokenizer.backend_tokenizer.to_str())
    getter = (
        getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    )
    return {
        "max_seq_length": int(model.max_seq_length),
        "dim": int(getter()),
        "prompts": {k: v for k, v in (getattr(model, "prompts", None) or {}).items() if v},
        "pad_token_id": int(model.tokenizer.pad_token_id or 0),
    }
