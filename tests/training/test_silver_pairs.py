import json

import numpy as np
import pytest

from embedder import Embedder
from training.biencoder import read_scored_pairs
from training.configs import SilverPairsConfig
from training.silver_pairs import neighbour_pairs, write_silver_pairs

GOLD = [
    ("A man is playing a guitar.", "A man plays the guitar.", 0.9),
    ("A man is playing a flute.", "A woman is slicing an onion.", 0.0),
    ("A woman is slicing an onion.", "Someone cuts an onion.", 0.8),
    ("A dog runs in the park.", "A dog is running on the grass.", 0.7),
    ("The stock market fell today.", "Shares dropped on Monday.", 0.6),
    ("A man plays the guitar.", "A MAN PLAYS THE   guitar.", 1.0),
]


class LengthTeacher:
    """Stands in for the cross-encoder: the shorter sentence's share of the longer's length."""

    def score(self, pairs, batch_size=256, show_progress=False):
        return np.array(
            [min(len(a), len(b)) / max(len(a), len(b)) for a, b in pairs], dtype=np.float32
        )


def test_neighbour_pairs_are_new_pairs_of_the_gold_sentences():
    pairs = neighbour_pairs(GOLD, SilverPairsConfig(bm25_neighbours=3, dense_neighbours=0))
    sentences = {s for a, b, _ in GOLD for s in (a, b)}
    gold = {frozenset((a, b)) for a, b, _ in GOLD}
    keys = [frozenset(p) for p in pairs]
    assert pairs and all(a in sentences and b in sentences for a, b in pairs)
    assert not set(keys) & gold  # neither order of a gold pair comes back
    assert len(keys) == len(set(keys))  # no pair twice
    assert all(" ".join(a.lower().split()) != " ".join(b.lower().split()) for a, b in pairs)
    # words in common make BM25 neighbours: the two guitar players' sentences meet the flute's
    assert frozenset(("A man is playing a guitar.", "A man is playing a flute.")) in keys
    assert pairs == neighbour_pairs(GOLD, SilverPairsConfig(3, 0))  # deterministic


def test_dense_neighbours_come_from_the_embedder(tiny_embedder_dir):
    with pytest.raises(ValueError, match="needs an embedder"):
        neighbour_pairs(GOLD, SilverPairsConfig(bm25_neighbours=0, dense_neighbours=2))
    pairs = neighbour_pairs(
        GOLD,
        SilverPairsConfig(bm25_neighbours=0, dense_neighbours=2),
        Embedder.load(tiny_embedder_dir),
    )
    assert pairs
    assert not {frozenset(p) for p in pairs} & {frozenset((a, b)) for a, b, _ in GOLD}


def test_silver_pairs_are_written_as_jsonl_the_embedder_reads(tmp_path):
    pairs = neighbour_pairs(GOLD, SilverPairsConfig(3, 0))
    out = write_silver_pairs(LengthTeacher(), pairs, tmp_path / "runs" / "silver.jsonl")
    read = read_scored_pairs(out)
    assert [(a, b) for a, b, _ in read] == pairs
    expected = LengthTeacher().score(pairs)
    assert np.allclose([y for _, _, y in read], expected, atol=1e-4)
    assert [p.name for p in out.parent.iterdir()] == ["silver.jsonl"]  # no temp file left
    with pytest.raises(ValueError, match=r"\.jsonl"):
        write_silver_pairs(LengthTeacher(), pairs, tmp_path / "silver.csv")
    with pytest.raises(ValueError, match="no pairs"):
        write_silver_pairs(LengthTeacher(), [], tmp_path / "none.jsonl")


def test_a_bad_silver_file_names_the_line(tmp_path):
    path = tmp_path / "silver.jsonl"
    good = {"sentence1": "a", "sentence2": "b", "score": 0.5}
    path.write_text(json.dumps(good) + "\n" + json.dumps({"sentence1": "a"}) + "\n")
    with pytest.raises(ValueError, match="silver.jsonl:2"):
        read_scored_pairs(path)
    path.write_text(json.dumps({**good, "score": 4.0}) + "\n")
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        read_scored_pairs(path)
    path.write_text("\n")
    with pytest.raises(ValueError, match="no scored sentence pairs"):
        read_scored_pairs(path)
    with pytest.raises(FileNotFoundError, match="notesqa train silver-sts"):
        read_scored_pairs(tmp_path / "missing.jsonl")
