import pytest

from training.configs import ReaderConfig
from training.reader import train_reader
from training.squad import (
    entity_spans,
    make_unanswerable,
    remove_answer_sentences,
    sentence_spans,
    swap_question_antonym,
    swap_question_entity,
)


def test_sentence_spans_are_the_sentences_without_the_spaces_between():
    text = 'Dr. Ada went to Oslo in 1990. She said "Hello."  Then (in 1991) she left!'
    pieces = [text[start:end] for start, end in sentence_spans(text)]
    # "Dr." is split off: a regex splitter is approximate, which only costs a negative example
    assert pieces == [
        "Dr.",
        "Ada went to Oslo in 1990.",
        'She said "Hello."',
        "Then (in 1991) she left!",
    ]
    assert sentence_spans("no final stop here") == [(0, 18)]
    assert sentence_spans("") == []


def _example(context: str, answer: str, occurrence: int = 0) -> dict:
    start = -1
    for _ in range(occurrence + 1):
        start = context.index(answer, start + 1)
    return {
        "id": "q1",
        "title": "T",
        "question": "Where did Ada live?",
        "context": context,
        "answers": [{"text": answer, "answer_start": start}],
        "is_impossible": False,
    }


def test_removing_the_answer_sentence_keeps_the_rest_of_the_paragraph():
    example = _example(
        "Ada was born in 1815. Ada lived in Oslo. She wrote notes. She died young.", "Oslo"
    )
    assert (
        remove_answer_sentences(example) == "Ada was born in 1815. She wrote notes. She died young."
    )


def test_no_negative_when_the_answer_survives_elsewhere_or_too_little_is_left():
    repeated = _example("Ada lived in Oslo. Oslo is cold. She wrote notes.", "Oslo")
    assert remove_answer_sentences(repeated) is None  # "Oslo is cold." still says it
    short = _example("Ada lived in Oslo. She wrote notes.", "Oslo")
    assert remove_answer_sentences(short) is None  # one sentence left is not a paragraph
    assert remove_answer_sentences(short, min_sentences=1) == "She wrote notes."
    spanning = _example(
        "Ada lived in Oslo. Then Bergen. She wrote notes. She died young.", "Oslo. Then Bergen"
    )
    assert remove_answer_sentences(spanning) == "She wrote notes. She died young."


def _article() -> list[dict]:
    contexts = [
        "Ada was born in 1815. Ada lived in Oslo. She wrote notes. She died young.",
        "Boris sang songs. He lived in Rome. He had a cat.",
        "Clara painted. She lived in Lima. Her paintings were large.",
    ]
    answers = ["Oslo", "Rome", "Lima"]
    examples = []
    for i, (context, answer) in enumerate(zip(contexts, answers, strict=True)):
        e = _example(context, answer)
        e["id"] = f"q{i}"
        examples.append(e)
    return examples


def test_answer_removed_negatives_stay_on_their_own_paragraph():
    examples = _article()
    negatives = make_unanswerable(examples, ratio=1.0, style="answer_removed")
    assert [n["id"] for n in negatives] == ["q0-neg", "q1-neg", "q2-neg"]
    for original, negative in zip(examples, negatives, strict=True):
        assert negative["is_impossible"] and negative["answers"] == []
        assert original["answers"][0]["text"] not in negative["context"]
        # every remaining sentence comes from the question's own paragraph
        for start, end in sentence_spans(negative["context"]):
            assert negative["context"][start:end] in original["context"]


def test_mixed_negatives_use_both_styles_and_unknown_styles_are_refused():
    examples = [dict(e, id=f"q{i}") for i, e in enumerate(_article() * 20)]
    paragraphs = {e["context"] for e in examples}
    negatives = make_unanswerable(examples, ratio=1.0, seed=3, style="mixed")
    assert len(negatives) == len(examples)  # every question has both kinds available
    from_other_paragraph = sum(n["context"] in paragraphs for n in negatives)
    assert 0.3 < from_other_paragraph / len(negatives) < 0.7  # the rest lost their answer sentence
    with pytest.raises(ValueError, match="answer_removed"):
        make_unanswerable(examples, ratio=1.0, style="same_paragraph")


def test_entity_spans_find_names_months_and_numbers():
    text = "The Treaty of Paris was signed in May 1815 by King Louis XVIII. Élise wrote 57th."
    found = [(text[start:end], kind) for start, end, kind in entity_spans(text)]
    assert found == [
        ("Treaty", "name"),  # "of" ends the run; "The" only starts the sentence
        ("Paris", "name"),
        ("May", "month"),
        ("1815", "0000"),
        ("King Louis XVIII", "names"),
        ("Élise", "name"),
        ("57th", "00th"),
    ]
    # a capital that only starts a sentence says nothing: left out when asked
    names = [text[a:b] for a, b, _ in entity_spans(text, sentence_starts=False)]
    assert "Élise" not in names and "King Louis XVIII" in names
    short = "Used cars. Used by Ada."
    assert [short[a:b] for a, b, _ in entity_spans(short, sentence_starts=False)] == ["Ada"]


def test_entity_swap_keeps_the_paragraph_and_swaps_a_mentioned_entity_for_an_absent_one():
    import random

    example = {"question": "Where did Ada live in 1840?", "context": "In 1840 Ada lived in Oslo."}
    pool = {"name": ["Ada", "Oslo", "Boris"], "0000": ["1840", "1815"]}
    swaps = {swap_question_entity(example, pool, random.Random(seed)) for seed in range(20)}
    # either the name or the year changes, never to something the paragraph mentions
    assert swaps == {"Where did Boris live in 1840?", "Where did Ada live in 1815?"}
    # nothing of the same kind outside the paragraph: no swap
    assert swap_question_entity(example, {"name": ["Oslo"]}, random.Random(0)) is None
    # the question's first word (usually Wh-) and words the paragraph lacks are never swapped
    unrelated = {"question": "Ada asked about Rome?", "context": "Ada lived in Oslo."}
    assert swap_question_entity(unrelated, {"name": ["Boris"]}, random.Random(0)) is None


def test_antonym_swap_turns_one_word_into_its_opposite_the_paragraph_never_uses():
    import random

    example = {
        "question": "What was the first album released after 2003?",
        "context": "Her first album was released in 2003; the last one came before the tour.",
    }
    # "last" and "before" occur in the paragraph, so neither swap is safe
    assert swap_question_antonym(example, random.Random(0)) is None
    example["context"] = "Her first album came out in 2003."
    swaps = {swap_question_antonym(example, random.Random(seed)) for seed in range(20)}
    assert swaps == {
        "What was the last album released after 2003?",
        "What was the first album released before 2003?",
    }
    assert (
        swap_question_antonym({"question": "Who sang?", "context": "x"}, random.Random(0)) is None
    )
    capital = {"question": "Before 1857, who ruled?", "context": "In 1857 Ada ruled."}
    assert swap_question_antonym(capital, random.Random(0)) == "After 1857, who ruled?"


def test_question_edit_negatives_change_only_the_question():
    examples = [dict(e, id=f"q{i}") for i, e in enumerate(_article() * 10)]
    for e in examples:
        e["question"] = "Where did Ada live first after 1815?"
    negatives = make_unanswerable(examples, ratio=1.0, seed=2, style="question_edit")
    assert len(negatives) == len(examples)
    edited = {n["question"] for n in negatives}
    assert "Where did Ada live last after 1815?" in edited  # an antonym
    assert any(q.split()[2] != "Ada" for q in edited)  # an entity, in Ada's paragraph
    for n in negatives:
        assert n["context"] == examples[int(n["id"][1:-4])]["context"] and n["answers"] == []


def test_entity_swap_and_all_styles_make_unanswerable_copies_on_their_own_paragraph():
    examples = _article()
    examples[0]["question"] = "Where did Ada live after 1815?"
    examples[1]["question"] = "Where did Boris live?"
    examples[2]["question"] = "where did she live?"  # nothing to swap
    negatives = make_unanswerable(examples, ratio=1.0, style="entity_swap")
    assert [n["id"] for n in negatives] == ["q0-neg", "q1-neg"]
    for original, negative in zip(examples[:2], negatives, strict=True):
        assert negative["context"] == original["context"] and negative["answers"] == []
        assert negative["question"] != original["question"]
    # Ada's paragraph names Ada (swappable) and 1815 (no other year in the article); names are
    # not typed, so a place can stand in for a person
    swapped_in = negatives[0]["question"].split()[2]
    assert negatives[0]["question"] == f"Where did {swapped_in} live after 1815?"
    assert swapped_in in {"Boris", "Rome", "Clara", "Lima"}
    many = [dict(e, id=f"q{i}") for i, e in enumerate(examples * 30)]
    kinds = set()
    for n in make_unanswerable(many, ratio=1.0, seed=5, style="all"):
        original = many[int(n["id"][1:-4])]
        if n["question"] != original["question"]:
            kinds.add("entity_swap")
        elif n["context"] in {e["context"] for e in examples}:
            kinds.add("other_paragraph")
        else:
            kinds.add("answer_removed")
    assert kinds == {"entity_swap", "other_paragraph", "answer_removed"}


def test_train_reader_refuses_an_unknown_style_before_loading_anything(tmp_path):
    cfg = ReaderConfig(unanswerable_style="nonsense")
    with pytest.raises(ValueError, match="unanswerable_style"):
        train_reader(
            cfg, init=tmp_path / "missing", train_data=tmp_path / "missing.json", out_dir=tmp_path
        )
