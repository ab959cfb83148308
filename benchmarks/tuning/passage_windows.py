"""Dense retrieval of whole paragraphs against their token windows as well, same run.

Our embedder reads at most ``max_seq_length`` (192) tokens, and its base was pretrained at
sequence 128 only (positions past 127 learnt what they know in finetuning). Half of SQuAD dev's
paragraphs are longer than 160 tokens and 30% longer than 192, so a paragraph's vector may never
see the sentence a question asks about. This benchmark scores SQuAD v1.1 dev paragraph retrieval
(all 2,067 paragraphs, all 10,570 questions, as ``benchmarks/retrieval.py``) for the same
embedder:

* ``whole``: one vector per paragraph (truncated to the model's window), the baseline;
* ``whole_and_windows``: the paragraph's vector and one per window of W tokens every S tokens
  (``embedder.windows``: whole words, the last window ending with the paragraph), a paragraph
  scored over all its vectors (``rag.window_scores.soft_best``): what ``notesqa index`` stores and
  searches for every passage.

Example:
    $ python benchmarks/tuning/passage_windows.py --data ../shared/data --windows 64:32 32:16
    {"whole": {"recall@5": ...}, "whole_and_windows": {"64:32": {"recall@5": ..., "vectors": ...}},
     "ratio_recall@5": {"64:32": ...}}
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.retrieval import dense_rankings, squad_corpus  # noqa: E402
from embedder import Embedder, WindowConfig  # noqa: E402
from rag.metrics import retrieval_scores  # noqa: E402


def window_config(spec: str, embedder: Embedder) -> WindowConfig:
    """``WIDTH:STRIDE`` as a ``WindowConfig``, checked against the model's window."""
    try:
        width, stride = (int(part) for part in spec.split(":"))
        config = WindowConfig(tokens=width, stride=stride)
    except ValueError as err:
        raise SystemExit(f"--windows {spec}: expected WIDTH:STRIDE in tokens ({err})") from err
    if not 0 < width < embedder.max_seq_length:
        raise SystemExit(
            f"--windows {spec}: WIDTH must be below the model's window "
            f"({embedder.max_seq_length} tokens, special tokens and prompt included)"
        )
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder")
    parser.add_argument("--model", default=None, help="embedder folder (default: the shipped one)")
    parser.add_argument(
        "--windows", nargs="+", default=["64:32"], help="WIDTH:STRIDE in tokens, one or more"
    )
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    embedder = Embedder.load(args.model)
    configs = {spec: window_config(spec, embedder) for spec in args.windows}
    paragraphs, questions, gold = squad_corpus(args.data / "squad" / "dev-v1.1.json.gz")

    def scores_of(windows: WindowConfig | None) -> dict[str, float]:
        ranked = dense_rankings(embedder, paragraphs, questions, 20, windows)
        return retrieval_scores([[i for i, _ in r] for r in ranked], gold)

    whole = scores_of(None)
    result = {
        "model": args.model or "shipped",
        "max_seq_length": embedder.max_seq_length,
        "paragraphs": len(paragraphs),
        "questions": len(questions),
        "whole": whole,
        "whole_and_windows": {},
        "ratio_recall@5": {},
    }
    for spec, config in configs.items():
        start = time.perf_counter()
        scores = scores_of(config)
        seconds = time.perf_counter() - start
        vectors = sum(1 + len(embedder.token_windows(p, config)) for p in paragraphs)
        result["whole_and_windows"][spec] = {
            **scores,
            "vectors": vectors,
            "encode_and_search_s": round(seconds, 1),
        }
        result["ratio_recall@5"][spec] = round(scores["recall@5"] / whole["recall@5"], 4)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
