"""Dense retrieval of whole paragraphs against retrieval of their token windows, same run.

Our embedder reads at most ``max_seq_length`` (192) tokens, and its base was pretrained at
sequence 128 only (positions past 127 learnt what they know in finetuning). Half of SQuAD dev's
paragraphs are longer than 160 tokens and 30% longer than 192, so a paragraph's vector may never
see the sentence a question asks about. This benchmark scores SQuAD v1.1 dev paragraph retrieval
(all 2,067 paragraphs, all 10,570 questions, as ``benchmarks/retrieval.py``) three ways for the
same embedder and the same query vectors:

* ``whole``: one vector per paragraph (truncated to the model's window), the baseline;
* ``windows``: each paragraph cut into windows of W tokens every S tokens (the last one ending at
  the paragraph's end), a paragraph scored by its best window;
* ``whole_and_windows``: the paragraph's vector and its windows', the best of them.

Example:
    $ python benchmarks/passage_windows.py --data ../shared/data --windows 120:60 96:48
    {"whole": {"recall@5": ...}, "windows": {"120:60": {"recall@5": ..., "vectors": ...}},
     "whole_and_windows": {...}, "ratio_recall@5": {"120:60": ...}}
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import faiss
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.retrieval import squad_corpus  # noqa: E402
from embedder import Embedder  # noqa: E402
from rag.metrics import retrieval_scores  # noqa: E402


def token_windows(
    embedder: Embedder, paragraphs: list[str], width: int, stride: int
) -> tuple[list[str], list[int]]:
    """(window texts, index of each window's paragraph): windows of ``width`` tokens every
    ``stride`` tokens, cut at token boundaries of the embedder's tokenizer.

    Example:
        >>> token_windows(embedder, ["a b c d e"], width=3, stride=2)
        (['a b c', 'c d e'], [0, 0])
    """
    texts, owners = [], []
    for i, paragraph in enumerate(paragraphs):
        offsets = embedder.tokenizer(
            paragraph,
            add_special_tokens=False,
            return_offsets_mapping=True,
            truncation=False,
            verbose=False,
        )["offset_mapping"]
        n = len(offsets)
        starts = list(range(0, max(n - width, 0) + 1, stride))
        if starts[-1] + width < n:  # the last window ends where the paragraph does
            starts.append(n - width)
        for start in starts:
            end = min(start + width, n)
            texts.append(paragraph[offsets[start][0] : offsets[end - 1][1]])
            owners.append(i)
    return texts, owners


def best_per_paragraph(
    vectors: np.ndarray, owners: list[int], queries: np.ndarray, depth: int = 20
) -> list[list[int]]:
    """Paragraph rankings of every query: a paragraph's score is its best vector's cosine."""
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)  # (N, d)
    _, ids = index.search(queries, min(len(owners), 10 * depth))  # (Q, 10 * depth)
    rankings = []
    for row in ids:
        seen: dict[int, None] = {}
        for i in row:
            seen.setdefault(owners[i], None)
            if len(seen) == depth:
                break
        rankings.append(list(seen))
    return rankings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder")
    parser.add_argument("--model", default=None, help="embedder folder (default: the shipped one)")
    parser.add_argument(
        "--windows", nargs="+", default=["120:60"], help="WIDTH:STRIDE in tokens, one or more"
    )
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    embedder = Embedder.load(args.model)
    paragraphs, questions, gold = squad_corpus(args.data / "squad" / "dev-v1.1.json.gz")
    queries = embedder.encode(questions, batch_size=128, kind="query")  # (Q, d)
    whole = embedder.encode(paragraphs, batch_size=64, kind="passage")  # (P, d)
    own = list(range(len(paragraphs)))
    result = {
        "model": args.model or "shipped",
        "max_seq_length": embedder.max_seq_length,
        "paragraphs": len(paragraphs),
        "questions": len(questions),
        "whole": retrieval_scores(best_per_paragraph(whole, own, queries), gold),
        "windows": {},
        "whole_and_windows": {},
        "ratio_recall@5": {},
    }
    for spec in args.windows:
        width, stride = (int(part) for part in spec.split(":"))
        if not 0 < stride <= width < embedder.max_seq_length:
            raise SystemExit(
                f"--windows {spec}: need 0 < STRIDE <= WIDTH < the model's window "
                f"({embedder.max_seq_length} tokens, special tokens and prompt included)"
            )
        texts, owners = token_windows(embedder, paragraphs, width, stride)
        start = time.perf_counter()
        vectors = embedder.encode(texts, batch_size=64, kind="passage")  # (N, d)
        seconds = time.perf_counter() - start
        windows = retrieval_scores(best_per_paragraph(vectors, owners, queries), gold)
        both = retrieval_scores(
            best_per_paragraph(np.vstack([whole, vectors]), own + owners, queries), gold
        )
        result["windows"][spec] = {**windows, "vectors": len(texts), "encode_s": round(seconds, 1)}
        result["whole_and_windows"][spec] = both
        result["ratio_recall@5"][spec] = round(windows["recall@5"] / result["whole"]["recall@5"], 4)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
