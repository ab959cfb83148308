import pytest

from training.simcse import corpus_sentences


@pytest.fixture()
def corpus(tmp_path, write_articles):
    docs = []
    for d in range(4):
        long = [
            " ".join(
                f"Place {d} row {p} keeps item number {d * 100 + p * 10 + s}." for s in range(3)
            )
            for p in range(4)
        ]
        docs.append((f"Place {d}", ["History.", *long, "Too short here.", "A " * 60 + "end."]))
    docs.append(("Place 4", ["Place 0 row 0 keeps item number 0."]))  # a copy of Place 0's
    return write_articles(tmp_path / "wiki.jsonl.gz", docs)


def test_sentences_are_distinct_bounded_and_sampled_per_document(corpus):
    every = corpus_sentences([corpus], max_sentences=1000, per_document=100)
    assert len(every) == 4 * 12  # 12 good sentences in each long document; the copy is dropped
    assert len(set(every)) == len(every)
    assert all(6 <= len(s.split()) <= 48 for s in every)  # no headings, no run-ons
    sampled = corpus_sentences([corpus], max_sentences=1000, per_document=5)
    per_place = [sum(s.split()[1] == str(d) for s in sampled) for d in range(4)]
    assert per_place == [5, 5, 5, 5] and set(sampled) <= set(every)
    capped = corpus_sentences([corpus], max_sentences=7, seed=2)
    assert len(capped) == 7 and capped == corpus_sentences([corpus], max_sentences=7, seed=2)
    assert capped != corpus_sentences([corpus], max_sentences=7, seed=3)


def test_evaluation_articles_are_left_out_and_bad_requests_refused(
    corpus, tmp_path, write_articles
):
    squad_style = ["Place_0", "Place%201", "Place_4"]  # as SQuAD writes titles
    kept = corpus_sentences([corpus], max_sentences=1000, exclude_titles=squad_style)
    assert {s.split()[1] for s in kept} == {"2", "3"}
    with pytest.raises(ValueError, match="positive"):
        corpus_sentences([corpus], max_sentences=0)
    empty = write_articles(tmp_path / "empty.jsonl.gz", [("Stub", ["Tiny."])])
    with pytest.raises(ValueError, match="no sentences"):
        corpus_sentences([empty], max_sentences=10)
