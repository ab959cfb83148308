"""Interpolating two embedders' weights: retrieval against STS along the line between them.

The STS-B/SICK stage after the SQuAD rounds trades dense retrieval for sentence similarity
(``models/MODEL_CARD.md``). Weight-space interpolation of a fine-tuned model with the model it
was fine-tuned from (WiSE-FT, Wortsman et al. 2022; "model soups") often lands *above* the
straight line between the two on such trades. This benchmark writes, for each weight ``w``,
the model ``(1 - w) * A + w * B`` (A and B share an architecture, e.g. ``embedder-article`` and
its STS stage ``embedder-article-sts``) to a scratch folder and scores it on SQuAD v1.1 dev
paragraph retrieval (2,067 paragraphs, 10,570 questions, as ``notesqa eval retrieval``) and STS-B
test Spearman x 100 (as ``benchmarks/retrieval.py``), with the line's value at the same ``w``
for comparison.

Example:
    $ python benchmarks/tuning/weight_interpolation.py --data ../shared/data \\
        --from runs/embedder-article --to runs/embedder-article-sts --weights 0 0.5 0.8 1
    {"from": "embedder-article", "to": "embedder-article-sts",
     "points": {"0.0": {"recall@5": ..., "stsb_test_spearman": ...}, ...}}
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.retrieval import sts_spearman  # noqa: E402
from embedder import Embedder  # noqa: E402
from training.biencoder import evaluate_retrieval  # noqa: E402
from training.interpolate import interpolate_models  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder")
    parser.add_argument("--from", dest="start", type=Path, required=True, help="model at w = 0")
    parser.add_argument("--to", dest="end", type=Path, required=True, help="model at w = 1")
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.5, 0.8, 0.9, 1.0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    squad = args.data / "squad" / "dev-v1.1.json.gz"
    sts = args.data / "stsbenchmark" / "sts-test.csv"
    points = {}
    with tempfile.TemporaryDirectory() as scratch:
        for weight in sorted(args.weights):
            folder = interpolate_models(args.start, args.end, weight, Path(scratch) / f"w{weight}")
            embedder = Embedder.load(folder)
            scores = evaluate_retrieval(embedder, squad)
            points[str(weight)] = {
                **{k: round(v, 4) for k, v in scores.items() if not k.startswith("num_")},
                "stsb_test_spearman": round(sts_spearman(embedder, sts), 2),
            }
            print(json.dumps({str(weight): points[str(weight)]}), file=sys.stderr)
            shutil.rmtree(folder)
    ends = [str(w) for w in (0.0, 1.0)]
    if all(w in points for w in ends):  # the straight line between the two ends, for comparison
        for weight, point in points.items():
            w = float(weight)
            point["line"] = {
                key: round((1 - w) * points[ends[0]][key] + w * points[ends[1]][key], 4)
                for key in ("recall@5", "stsb_test_spearman")
            }
    print(
        json.dumps(
            {
                "from": args.start.name,
                "to": args.end.name,
                "points": points,
                "threads": args.threads,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
