import pytest

from training.inverse_cloze import inverse_cloze_pairs, normalise_title


def paragraph(doc: int, par: int, sentences: int = 4) -> str:
    return " ".join(
        f"Document {doc} paragraph {par} sentence {s} talks about topic number {doc * 100 + s}."
        for s in range(sentences)
    )


@pytest.fixture()
def corpus(tmp_path, write_articles):
    docs = [(f"Doc {d}", [paragraph(d, p) for p in range(6)]) for d in range(5)]
    docs.insert(1, ("Short", [paragraph(9, p) for p in range(3)]))  # too few paragraphs
    docs.insert(2, ("Headings", ["History.", "See also."] + [paragraph(8, p) for p in range(3)]))
    return write_articles(tmp_path / "wiki.jsonl.gz", docs)


def test_a_sentence_is_cut_from_its_paragraph(corpus):
    pairs = inverse_cloze_pairs([corpus], max_pairs=1000, keep_sentence=0.0, per_document=4)
    assert len(pairs) == 5 * 4  # 4 of each long document's 6 paragraphs; short ones give none
    for pair in pairs:
        assert pair.sentence not in pair.passage
        doc, par = pair.sentence.split()[1], pair.sentence.split()[3]
        assert pair.passage.startswith(f"Document {doc} paragraph {par} ")  # its own paragraph
        assert len(pair.passage.split(". ")) == 3  # the other three sentences
        assert pair.article.endswith(f":Doc {doc}")
    assert len({p.article for p in pairs}) == 5
    kept = inverse_cloze_pairs([corpus], max_pairs=1000, keep_sentence=1.0)
    assert all(p.sentence in p.passage for p in kept) and len(kept) == 5 * 6


def test_pairs_are_seeded_and_capped(corpus):
    first = inverse_cloze_pairs([corpus], max_pairs=7, seed=3)
    assert len(first) == 7 and first == inverse_cloze_pairs([corpus], max_pairs=7, seed=3)
    assert first != inverse_cloze_pairs([corpus], max_pairs=7, seed=4)
    some = inverse_cloze_pairs([corpus], max_pairs=400, seed=0, keep_sentence=0.5)
    assert 0 < sum(p.sentence in p.passage for p in some) < len(some)


def test_evaluation_articles_are_left_out(corpus, tmp_path):
    squad_style = ["Doc_0", "Doc%201"]  # SQuAD writes titles with underscores and escapes
    pairs = inverse_cloze_pairs([corpus], max_pairs=1000, exclude_titles=squad_style)
    assert {p.article.split(":", 1)[1] for p in pairs} == {"Doc 2", "Doc 3", "Doc 4"}
    assert normalise_title("Beyonc%C3%A9") == normalise_title("Beyoncé")


def test_bad_settings_and_a_corpus_without_pairs_are_refused(corpus, tmp_path, write_articles):
    with pytest.raises(ValueError, match="keep_sentence is a probability"):
        inverse_cloze_pairs([corpus], max_pairs=10, keep_sentence=1.5)
    with pytest.raises(ValueError, match="max_pairs must be positive"):
        inverse_cloze_pairs([corpus], max_pairs=0)
    thin = write_articles(tmp_path / "thin.jsonl.gz", [("T", ["One line.", "Two lines."])])
    with pytest.raises(ValueError, match="gave no inverse-cloze pairs"):
        inverse_cloze_pairs([thin], max_pairs=10)
