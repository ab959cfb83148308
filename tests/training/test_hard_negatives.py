import pytest

from training.hard_negatives import CANDIDATE_STYLES, hardest_per_question, negative_candidates


def _article() -> list[dict]:
    contexts = [
        "Ada was born in 1815. Ada lived in Oslo. She wrote notes. She died young.",
        "Boris sang songs. He lived in Rome. He had a cat.",
        "Clara painted. She lived in Lima. Her paintings were large.",
    ]
    questions = [
        "Where did Ada live first after 1815?",
        "Where did Boris live first?",
        "Where did Clara live first?",
    ]
    examples = []
    for i, (context, question, answer) in enumerate(
        zip(contexts, questions, ["Oslo", "Rome", "Lima"], strict=True)
    ):
        examples.append(
            {
                "id": f"q{i}",
                "title": "People",
                "question": question,
                "context": context,
                "answers": [{"text": answer, "answer_start": context.index(answer)}],
                "is_impossible": False,
            }
        )
    return examples


def test_candidates_are_one_unanswerable_copy_per_rule_that_applies():
    examples = _article()
    candidates = negative_candidates(examples, ratio=1.0, seed=0)
    by_question: dict[str, set[str]] = {}
    for c in candidates:
        assert c["is_impossible"] and c["answers"] == [] and c["id"].endswith("-neg")
        by_question.setdefault(c["id"], set()).add(c["negative_style"])
        original = examples[int(c["id"][1:-4])]
        if c["negative_style"] in ("antonym", "entity_swap"):
            assert c["context"] == original["context"] and c["question"] != original["question"]
        else:
            assert c["question"] == original["question"]
            assert original["answers"][0]["text"] not in c["context"]
    # every question has "first" (-> last) and another paragraph without its answer
    assert by_question["q0-neg"] == set(CANDIDATE_STYLES)
    assert all({"antonym", "other_paragraph"} <= styles for styles in by_question.values())
    assert negative_candidates(examples, ratio=0.0) == []


def test_candidates_take_a_seeded_share_of_the_questions():
    many = [dict(e, id=f"q{i}") for i, e in enumerate(_article() * 40)]
    ids = {c["id"] for c in negative_candidates(many, ratio=0.5, seed=1)}
    assert 0.35 < len(ids) / len(many) < 0.65
    assert ids == {c["id"] for c in negative_candidates(many, ratio=0.5, seed=1)}
    assert ids != {c["id"] for c in negative_candidates(many, ratio=0.5, seed=2)}


def test_the_hardest_candidate_is_the_one_the_reader_most_wants_to_answer():
    candidates = [
        {"id": "a-neg", "negative_style": "antonym"},
        {"id": "b-neg", "negative_style": "antonym"},
        {"id": "a-neg", "negative_style": "entity_swap"},
        {"id": "a-neg", "negative_style": "other_paragraph"},
        {"id": "b-neg", "negative_style": "other_paragraph"},
    ]
    margins = [0.5, -1.0, -3.0, 2.0, float("inf")]  # inf: no span at all
    assert hardest_per_question(candidates, margins) == [
        {"id": "a-neg", "negative_style": "entity_swap"},
        {"id": "b-neg", "negative_style": "antonym"},
    ]
    with pytest.raises(ValueError, match="margins"):
        hardest_per_question(candidates, margins[:-1])
