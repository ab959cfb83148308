import numpy as np

from rag.span_edges import well_formed
from rag.spans import extract_spans, next_sentence, sentence_ends


def _logits(n, hot):
    row = np.full(n, -10.0)
    for index, value in hot.items():
        row[index] = value
    return row


def test_best_span_maps_to_exact_characters():
    context = "Adam keeps two averages."
    offsets = [[None, None, (0, 4), (5, 10), (11, 14), (15, 23), (23, 24), None]]
    start = np.array([_logits(8, {4: 6.0, 2: 1.0})])
    end = np.array([_logits(8, {5: 5.0})])
    spans, null = extract_spans(start, end, offsets, context)
    assert spans[0].text == "two averages" and (spans[0].start, spans[0].end) == (11, 23)
    assert spans[0].score == 11.0
    assert null == -20.0


def test_span_may_end_at_the_last_character():
    context = "It ends here"
    offsets = [[None, (0, 2), (3, 7), (8, 12), None]]
    start, end = np.array([_logits(5, {3: 3.0})]), np.array([_logits(5, {3: 3.0})])
    spans, _ = extract_spans(start, end, offsets, context)
    assert spans[0].text == "here" and spans[0].end == len(context)


def test_question_and_special_tokens_are_never_answers():
    offsets = [[None, None, None, (0, 3), None]]  # only token 3 is context
    start = np.array([_logits(5, {1: 50.0, 3: 1.0})])
    end = np.array([_logits(5, {2: 50.0, 3: 1.0})])
    spans, _ = extract_spans(start, end, offsets, "abc")
    assert [s.text for s in spans] == ["abc"]


def test_long_spans_and_backwards_spans_are_skipped():
    offsets = [[None] + [(i * 2, i * 2 + 1) for i in range(10)] + [None]]
    start = np.array([_logits(12, {8: 9.0, 1: 8.0})])
    end = np.array([_logits(12, {3: 9.0, 10: 8.0})])
    spans, _ = extract_spans(start, end, offsets, "a " * 10, max_answer_length=3)
    for span in spans:
        assert span.end > span.start
    # 8 -> 3 is backwards, 1 -> 10 too long: the best legal pair is 8 -> 10
    assert (spans[0].start, spans[0].end) == (14, 19)


def test_windows_are_merged_and_a_span_across_a_boundary_is_found_in_the_overlap():
    # context of 6 words; window A covers words 0-3, window B covers words 2-5
    context = "w0 w1 w2 w3 w4 w5"
    words = [(i * 3, i * 3 + 2) for i in range(6)]
    win_a = [None] + words[0:4] + [None]
    win_b = [None] + words[2:6] + [None]
    start = np.array([_logits(6, {3: 2.0}), _logits(6, {1: 4.0})])  # both windows like "w2"
    end = np.array([_logits(6, {4: 1.0}), _logits(6, {3: 5.0})])  # B ends at w4 (past A's end)
    spans, null = extract_spans(start, end, [win_a, win_b], context)
    assert spans[0].text == "w2 w3 w4" and spans[0].score == 9.0
    # the same characters from two windows appear once
    keys = [(s.start, s.end) for s in spans]
    assert len(keys) == len(set(keys))
    assert null == -20.0


def test_no_answer_when_null_beats_spans():
    offsets = [[None, (0, 1), None]]
    start, end = np.array([_logits(3, {0: 9.0, 1: 0.0})]), np.array([_logits(3, {0: 9.0, 1: 0.0})])
    spans, null = extract_spans(start, end, offsets, "x")
    assert null == 18.0 and spans[0].score == 0.0 and null > spans[0].score


def test_a_span_never_crosses_a_paragraph_break():
    context = "HEADING\n\nBody text"
    offsets = [[None, (0, 7), (9, 13), (14, 18)]]
    start = np.array([[0.0, 5.0, 0.5, 0.0]])  # best start: "HEADING"
    end = np.array([[0.0, 1.0, 0.5, 5.0]])  # best end: "text" -> "HEADING\n\nBody text" is refused
    spans, _ = extract_spans(start, end, offsets, context)
    assert all("\n\n" not in s.text for s in spans)
    assert spans[0].text == "HEADING"


def test_surrounding_sentence():
    from rag.spans import surrounding_sentence

    text = "Rome fell. Adam keeps two moving\naverages per parameter. Done!"
    start = text.index("two")
    assert (
        surrounding_sentence(text, start, start + 3)
        == "Adam keeps two moving averages per parameter."
    )
    assert surrounding_sentence("# H\n\nAda was born in Oslo", 17, 21) == "Ada was born in Oslo"


def _spans_of(context, words, start_hot, end_hot, **rules):
    """Spans of a one-window reading of ``context`` cut at spaces; ``*_hot``: word -> logit."""
    offsets, position = [None], 0
    for word in words:
        position = context.index(word, position)
        offsets.append((position, position + len(word)))
        position += len(word)
    offsets.append(None)
    n = len(offsets)
    start = np.array([_logits(n, {i + 1: v for i, v in start_hot.items()})])
    end = np.array([_logits(n, {i + 1: v for i, v in end_hot.items()})])
    spans, _ = extract_spans(start, end, [offsets], context, **rules)
    return [s.text for s in spans]


def test_a_span_never_crosses_a_sentence_end():
    context = "Bash was written by Brian Fox in 1989. Zsh was written by Paul Falstad."
    words = context.replace(".", " .").split()
    # the best pair runs from "Brian" to "Falstad"; the next best stays in the first sentence
    best = _spans_of(context, words, {4: 5.0}, {14: 5.0, 7: 4.0})
    assert best[0] == "Brian Fox in 1989"
    allowed = _spans_of(context, words, {4: 5.0}, {14: 5.0, 7: 4.0}, one_sentence=False)
    assert allowed[0] == "Brian Fox in 1989. Zsh was written by Paul Falstad"


def test_an_initial_or_an_abbreviation_is_not_a_sentence_end():
    from rag.spans import crosses_sentence_end

    for text in ("J. K. Rowling wrote it", "the U.S. Army won", "e.g. This one", "Dr. Smith came"):
        assert not crosses_sentence_end(text, 0, len(text)), text
    assert crosses_sentence_end("It ended. Then 1990 came", 0, 20)
    assert not crosses_sentence_end("It ended. then it went on", 0, 20)  # no capital after
    assert not crosses_sentence_end("It ended. ", 0, 10)  # nothing after the period in the span


def test_a_span_with_an_open_bracket_is_skipped():
    context = "It is a tensor (from the lab sheet, page 2) of floats"
    words = ["tensor", "(", "from", "the", "lab", "sheet", ",", "page", "2", ")"]
    spans = _spans_of(context, words, {0: 5.0}, {5: 5.0, 9: 4.0, 0: 3.0})
    assert spans[0] == "tensor (from the lab sheet, page 2)"
    assert "tensor (from the lab sheet" not in spans
    loose = _spans_of(context, words, {0: 5.0}, {5: 5.0, 9: 4.0, 0: 3.0}, balanced=False)
    assert loose[0] == "tensor (from the lab sheet"


def reference_spans(start_logits, end_logits, offsets, context, n_best=20, max_length=30):
    """The rules of ``extract_spans`` written as the plain double loop over starts and ends."""
    stops = sentence_ends(context)
    best = {}
    for f, window in enumerate(offsets):
        for s in np.argsort(start_logits[f])[::-1][:n_best]:
            for e in np.argsort(end_logits[f])[::-1][:n_best]:
                if window[s] is None or window[e] is None or e < s or e - s + 1 > max_length:
                    continue
                key = (window[s][0], window[e][1])
                if "\n\n" in context[key[0] : key[1]] or key[1] > next_sentence(stops, key[0]):
                    continue
                if not well_formed(context, *key):
                    continue
                score = float(start_logits[f][s] + end_logits[f][e])
                if score > best.get(key, -np.inf):
                    best[key] = score
    return sorted(best.items(), key=lambda item: -item[1])[:n_best]


def test_spans_equal_the_plain_double_loop_over_random_windows():
    rng = np.random.default_rng(0)
    context = "Adam keeps two averages. (See Kingma and Ba.)\n\nRMSProp divides by one. " * 8
    for _ in range(40):
        offsets = []
        for _ in range(int(rng.integers(1, 4))):
            position, window = int(rng.integers(0, 300)), [None] * 6
            for _ in range(50):
                length = int(rng.integers(1, 6))
                window.append((position, position + length))
                position += length + int(rng.integers(0, 2))
            offsets.append(window + [None])
        shape = (len(offsets), 57)
        start = rng.standard_normal(shape).astype(np.float32)
        end = rng.standard_normal(shape).astype(np.float32)
        spans, _ = extract_spans(start, end, offsets, context)
        assert [((s.start, s.end), s.score) for s in spans] == reference_spans(
            start, end, offsets, context
        )
