import numpy as np
import pytest
import torch

from training.reader_margins import margin_columns


class WordCountReader:
    """Stands in for the reader: relevance is the words a context shares with the question,
    -inf ("no span fits") for an empty context."""

    device = torch.device("cpu")

    def relevance(self, pairs):
        return np.array(
            [len(set(q.split()) & set(c.split())) if c else -np.inf for q, c in pairs],
            dtype=np.float32,
        )


def test_labels_are_the_scaled_margin_and_spanless_triplets_are_dropped():
    triplets = [
        ("who wrote the book", "Ada wrote the book", "rain fell"),
        ("where is it", "it is here", ""),  # no span in the negative: no margin to learn
        ("what fell", "rain", "rain fell"),
    ]
    columns = margin_columns(WordCountReader(), triplets, scale=0.5, precision="fp32")
    assert columns["anchor"] == ["who wrote the book", "what fell"]
    assert columns["negative"] == ["rain fell", "rain fell"]
    assert columns["label"] == pytest.approx([0.5 * (3 - 0), 0.5 * (0 - 1)])


def test_a_bad_scale_or_a_teacher_without_spans_is_refused():
    with pytest.raises(ValueError, match="margin_scale"):
        margin_columns(WordCountReader(), [("q", "p", "n")], scale=0.0)
    with pytest.raises(ValueError, match="no answer span"):
        margin_columns(WordCountReader(), [("q", "", "")], precision="fp32")
