"""Read SQuAD JSON (v1.1 or v2.0, optionally gzipped) into flat question records.

Example (a one-question file in SQuAD's layout; the real dev set is ``dev-v1.1.json.gz``):
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "dev-v1.1.json"
    >>> qa = {"id": "q1", "question": "Which NFL team won Super Bowl 50?",
    ...       "answers": [{"text": "Denver Broncos", "answer_start": 0}]}
    >>> article = {"title": "Super_Bowl_50",
    ...            "paragraphs": [{"context": "Denver Broncos won.", "qas": [qa]}]}
    >>> _ = path.write_text(json.dumps({"version": "1.1", "data": [article]}))
    >>> data, examples = load_squad(path)
    >>> examples[0]["title"], examples[0]["question"], examples[0]["answers"][0]["text"]
    ('Super_Bowl_50', 'Which NFL team won Super Bowl 50?', 'Denver Broncos')
"""

from __future__ import annotations

import gzip
import json
import random
import re
import zlib
from pathlib import Path


def read_squad_json(path: str | Path) -> list[dict]:
    """The ``data`` list of a SQuAD file, with a clear error for anything else."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"SQuAD file {path} not found; pass --data path/to/dev-v1.1.json(.gz)"
        )
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; pass the SQuAD JSON file itself")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            payload = json.load(handle)
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{path} is not valid JSON ({err}); expected the official SQuAD format"
        ) from err
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{path} is not UTF-8 text (byte {err.start}); expected SQuAD JSON"
        ) from err
    except (EOFError, OSError, zlib.error) as err:  # a truncated or broken .gz
        if isinstance(err, (FileNotFoundError, PermissionError)):
            raise
        raise ValueError(f"{path} cannot be decompressed ({err}); download it again") from err
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise ValueError(f"{path} has no top-level 'data' list; expected the official SQuAD format")
    check_squad_shape(payload["data"], path)
    return payload["data"]


def check_squad_shape(data: list, path: str | Path = "SQuAD data") -> None:
    """``ValueError`` naming the first record that lacks what SQuAD training reads
    (``data[i].paragraphs[j].context`` and ``qas[k]`` with ``id``, ``question``, ``answers``).

    Example:
        >>> check_squad_shape([{"title": "t", "paragraphs": [{"qas": []}]}], "x.json")
        Traceback (most recent call last):
        ValueError: x.json: data[0].paragraphs[0] has no string 'context'; expected the official SQuAD format
    """

    def fail(where: str, what: str) -> None:
        raise ValueError(f"{path}: {where} {what}; expected the official SQuAD format")

    for a, article in enumerate(data):
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            fail(f"data[{a}]", "has no 'paragraphs' list")
        for p, paragraph in enumerate(article["paragraphs"]):
            where = f"data[{a}].paragraphs[{p}]"
            if not isinstance(paragraph, dict) or not isinstance(paragraph.get("context"), str):
                fail(where, "has no string 'context'")
            if not isinstance(paragraph.get("qas"), list):
                fail(where, "has no 'qas' list")
            for q, qa in enumerate(paragraph["qas"]):
                if not isinstance(qa, dict) or not isinstance(qa.get("question"), str):
                    fail(f"{where}.qas[{q}]", "has no string 'question'")
                if "id" not in qa:
                    fail(f"{where}.qas[{q}]", "has no 'id'")
                answers = qa.get("answers", [])
                if not isinstance(answers, list) or not all(
                    isinstance(x, dict)
                    and isinstance(x.get("text"), str)
                    and isinstance(x.get("answer_start"), int)
                    for x in answers
                ):
                    fail(
                        f"{where}.qas[{q}]", "has 'answers' that are not [{'text', 'answer_start'}]"
                    )


def flatten_squad(data: list[dict]) -> list[dict]:
    """One record per question: id, title, question, context, answers, is_impossible."""
    examples = []
    for article in data:
        for p_index, paragraph in enumerate(article["paragraphs"]):
            for qa in paragraph["qas"]:
                examples.append(
                    {
                        "id": qa["id"],
                        "title": article.get("title", ""),
                        "paragraph_index": p_index,
                        "question": qa["question"],
                        "context": paragraph["context"],
                        "answers": qa.get("answers", []),
                        "is_impossible": bool(qa.get("is_impossible", False)),
                    }
                )
    return examples


def load_squad(path: str | Path) -> tuple[list[dict], list[dict]]:
    """(raw ``data`` list, flat question records) of a SQuAD file."""
    data = read_squad_json(path)
    return data, flatten_squad(data)


UNANSWERABLE_STYLES = (
    "other_paragraph",
    "answer_removed",
    "entity_swap",
    "antonym",
    "question_edit",
    "mixed",
    "all",
)
# a sentence ends at . ! or ? followed by space and something that can start a sentence
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])([\"')\]]*)\s+(?=[\"'(\[]?[A-Z0-9])")


def check_unanswerable_style(style: str, also: tuple[str, ...] = ()) -> None:
    """Raise a ValueError naming the valid choices unless ``style`` is one of them (or of
    ``also``, styles a caller adds, such as the reader's ``mined``)."""
    choices = (*UNANSWERABLE_STYLES, *also)
    if style not in choices:
        raise ValueError(f"unknown unanswerable_style {style!r}; use one of {', '.join(choices)}")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` character spans of the sentences of ``text``, without the spaces between.

    Example:
        >>> sentence_spans("It rained. Then it snowed!  Cold.")
        [(0, 10), (11, 26), (28, 33)]
    """
    spans, start = [], 0
    for match in _SENTENCE_BREAK.finditer(text):
        spans.append((start, match.end(1)))  # closing quotes stay with their sentence
        start = match.end()
    if start < len(text):
        spans.append((start, len(text.rstrip())))
    return [(a, b) for a, b in spans if b > a]


def remove_answer_sentences(example: dict, min_sentences: int = 2) -> str | None:
    """The context of ``example`` without every sentence an answer overlaps, or None when fewer
    than ``min_sentences`` sentences remain or an answer's text still occurs in what is left.

    The question stays on topic and keeps most of its word overlap with the paragraph, but the
    paragraph no longer says the answer: closer to SQuAD v2.0's unanswerable questions than a
    paragraph from elsewhere in the article.

    Example:
        >>> remove_answer_sentences({"context": "Oslo is in Norway. It is cold. It is big.",
        ...     "answers": [{"text": "Norway", "answer_start": 11}]})
        'It is cold. It is big.'
    """
    context = example["context"]
    answered = [(a["answer_start"], a["answer_start"] + len(a["text"])) for a in example["answers"]]
    if not answered:
        return None
    kept = [
        (start, end)
        for start, end in sentence_spans(context)
        if not any(start < a_end and a_start < end for a_start, a_end in answered)
    ]
    if len(kept) < min_sentences:
        return None
    remaining = " ".join(context[start:end] for start, end in kept)
    lowered = remaining.lower()
    if any(a["text"].lower() in lowered for a in example["answers"]):
        return None
    return remaining


_WORD = re.compile(r"\w[\w'’-]*")
# capitalised only because they start a sentence; never the start of a name
_FUNCTION_WORDS = frozenset(
    "a an the in on at of it he she they we this that these those his her its their during "
    "after before however when while as by for from with to and but or if there what which "
    "who whom whose where why how is was were are".split()
)
_MONTHS = frozenset(
    "january february march april may june july august september october november december".split()
)


def _starts_sentence(text: str, start: int) -> bool:
    """Whether ``start`` begins ``text`` or follows a sentence's end (. ! ? or a closing quote)."""
    i = start - 1
    while i >= 0 and text[i].isspace():
        i -= 1
    return i < 0 or text[i] in '.!?"'


def entity_spans(text: str, sentence_starts: bool = True) -> list[tuple[int, int, str]]:
    """``(start, end, kind)`` of the names, months and numbers in ``text``. A name is a run of
    capitalised words, of kind ``"name"`` (one word) or ``"names"`` (several); a month has kind
    ``"month"``; a number is a word starting with a digit, of kind its shape (every digit
    written ``0``, so that a year only stands in for a year). ``sentence_starts=False`` leaves
    out the names that begin a sentence (there a capital says nothing).

    Example:
        >>> entity_spans("In 1815 Ada Lovelace met Babbage in May.")
        [(3, 7, '0000'), (8, 20, 'names'), (25, 32, 'name'), (36, 39, 'month')]
    """
    spans: list[tuple[int, int, str]] = []
    run_end = None  # end of the name being extended, if the previous word was one
    for match in _WORD.finditer(text):
        word, start = match.group(), match.start()
        if word[0].isdigit():
            spans.append((start, match.end(), re.sub(r"\d", "0", word)))
            run_end = None
        elif word.lower() in _MONTHS:
            spans.append((start, match.end(), "month"))
            run_end = None
        elif word[0].isupper() and not (run_end is None and word.lower() in _FUNCTION_WORDS):
            if run_end is not None and text[run_end:start] == " ":
                spans[-1] = (spans[-1][0], match.end(), "names")
            elif sentence_starts or not _starts_sentence(text, start):
                spans.append((start, match.end(), "name"))
            else:
                run_end = None
                continue
            run_end = match.end()
        else:
            run_end = None
    return spans


def swap_question_entity(
    example: dict, pool: dict[str, list[str]], rng: random.Random
) -> str | None:
    """The question of ``example`` with one of its names or numbers that its paragraph also
    mentions replaced by one of the same kind from ``pool`` (gathered from the rest of the
    article) that the paragraph never mentions; None when no such swap exists.

    This is SQuAD v2.0's commonest kind of unanswerable question ("entity swap", Rajpurkar et
    al. 2018): on topic, sharing most words with the paragraph, with a plausible answer span in
    it, yet the paragraph does not say it.

    Example:
        >>> swap_question_entity({"question": "Where did Ada live in 1840?",
        ...     "context": "In 1840 Ada lived in Oslo."}, {"0000": ["1815"]}, random.Random(0))
        'Where did Ada live in 1815?'
    """
    question, context = example["question"], example["context"]
    lowered = context.lower()
    swappable = [
        (start, end, kind)
        for start, end, kind in entity_spans(question)
        if start > 0 and question[start:end] in context  # the first word is usually Wh-
    ]
    rng.shuffle(swappable)
    for start, end, kind in swappable:
        original = question[start:end].lower()
        options = [
            other
            for other in pool.get(kind, [])
            if other.lower() not in lowered and original not in other.lower()
        ]
        if options:
            return question[:start] + rng.choice(options) + question[end:]
    return None


# opposites for SQuAD v2.0's second commonest kind of unanswerable question (antonym); not
# most/least or more/less, which also quantify nouns ("most of India")
_OPPOSITES = (
    ("first", "last"),
    ("largest", "smallest"),
    ("highest", "lowest"),
    ("earliest", "latest"),
    ("oldest", "youngest"),
    ("before", "after"),
    ("longest", "shortest"),
    ("increase", "decrease"),
    ("best", "worst"),
    ("major", "minor"),
    ("north", "south"),
    ("east", "west"),
    ("maximum", "minimum"),
)
_OPPOSITE = (
    {a: b for a, b in _OPPOSITES}
    | {b: a for a, b in _OPPOSITES}
    | {"biggest": "smallest", "greatest": "least"}
)


def swap_question_antonym(example: dict, rng: random.Random) -> str | None:
    """The question of ``example`` with one word turned into its opposite (``first`` ->
    ``last``, ``before`` -> ``after``, ...), where the paragraph never uses the opposite; None
    when no word of the question has one. SQuAD v2.0's second commonest kind of unanswerable
    question ("antonym", Rajpurkar et al. 2018).

    Example:
        >>> swap_question_antonym({"question": "What was her first album?",
        ...     "context": "Her first album was Dangerously in Love."}, random.Random(0))
        'What was her last album?'
    """
    question, lowered = example["question"], example["context"].lower()
    words = [m for m in _WORD.finditer(question) if m.group().lower() in _OPPOSITE]
    rng.shuffle(words)
    for match in words:
        opposite = _OPPOSITE[match.group().lower()]
        if re.search(rf"\b{opposite}\b", lowered):
            continue  # the paragraph may well answer the opposite question
        if match.group()[0].isupper():
            opposite = opposite.capitalize()
        return question[: match.start()] + opposite + question[match.end() :]
    return None


def article_entities(examples: list[dict]) -> dict[str, dict[str, list[str]]]:
    """Per article title: the names, months and numbers of its paragraphs (those of
    ``examples``) by kind (``entity_spans``, sentence starts left out), in order of first
    appearance, for ``swap_question_entity``."""
    pools: dict[str, dict[str, dict[str, None]]] = {}
    seen: set[tuple[str, str]] = set()
    for e in examples:
        if (e["title"], e["context"]) in seen:
            continue
        seen.add((e["title"], e["context"]))
        pool = pools.setdefault(e["title"], {})
        for start, end, kind in entity_spans(e["context"], sentence_starts=False):
            pool.setdefault(kind, {})[e["context"][start:end]] = None
    return {
        title: {kind: list(names) for kind, names in pool.items()} for title, pool in pools.items()
    }


def make_unanswerable(
    examples: list[dict], ratio: float, seed: int = 0, style: str = "other_paragraph"
) -> list[dict]:
    """Unanswerable copies of ``ratio`` of the questions (a standard way to build no-answer
    training data from SQuAD v1.1). ``style`` says how the copy loses its answer:

    * ``other_paragraph``: the question paired with another paragraph of its own article that
      contains none of its answers;
    * ``answer_removed``: its own paragraph without the sentences that hold the answer
      (``remove_answer_sentences``), a harder, on-topic negative;
    * ``entity_swap``: its own paragraph with a name or number of the question swapped for one
      from elsewhere in the article (``swap_question_entity``), the hardest of the three;
    * ``antonym``: its own paragraph with a word of the question turned into its opposite
      (``swap_question_antonym``: first -> last, before -> after, ...);
    * ``question_edit``: its own paragraph with the question edited, an antonym swapped in
      (``swap_question_antonym``) or an entity swapped, with equal chance (falling back to the
      other);
    * ``mixed``: ``other_paragraph`` or ``answer_removed``, with equal chance (falling back to
      the other when one is impossible);
    * ``all``: any of the three, with equal chance (falling back to the others in random order).

    Returned records have ``answers=[]``, ``is_impossible=True`` and the id suffix ``-neg``.

    Example (two one-sentence paragraphs of an article: each question gets the other one):
        >>> examples = [
        ...     {"id": "q1", "title": "Ada", "question": "Where was Ada born?",
        ...      "context": "Ada was born in London.", "is_impossible": False,
        ...      "answers": [{"text": "London", "answer_start": 16}]},
        ...     {"id": "q2", "title": "Ada", "question": "What did Ada write?",
        ...      "context": "Ada wrote a program.", "is_impossible": False,
        ...      "answers": [{"text": "a program", "answer_start": 10}]}]
        >>> negatives = make_unanswerable(examples, ratio=1.0, style="mixed")
        >>> [(n["id"], n["context"], n["answers"], n["is_impossible"]) for n in negatives]
        [('q1-neg', 'Ada wrote a program.', [], True), ('q2-neg', 'Ada was born in London.', [], True)]
    """
    check_unanswerable_style(style)
    if ratio <= 0:
        return []
    paragraphs: dict[str, list[str]] = {}
    for e in examples:
        contexts = paragraphs.setdefault(e["title"], [])
        if e["context"] not in contexts:
            contexts.append(e["context"])
    rng = random.Random(seed)

    def other_paragraph(e: dict) -> str | None:
        answers = [a["text"].lower() for a in e["answers"]]
        others = [
            c
            for c in paragraphs[e["title"]]
            if c != e["context"] and not any(a in c.lower() for a in answers)
        ]
        return rng.choice(others) if others else None

    entities = (
        article_entities(examples) if style in ("entity_swap", "question_edit", "all") else {}
    )

    # each way of losing the answer: the field it changes and the new value (None: impossible)
    new_paragraph = ("context", other_paragraph)
    without_answer = ("context", remove_answer_sentences)
    swapped = ("question", lambda e: swap_question_entity(e, entities[e["title"]], rng))
    opposite = ("question", lambda e: swap_question_antonym(e, rng))

    def changed(maker: tuple, e: dict) -> dict | None:
        field, make = maker
        value = make(e)
        return None if value is None else {field: value}

    negatives = []
    for e in examples:
        if rng.random() >= ratio:
            continue
        if style == "other_paragraph":
            change = changed(new_paragraph, e)
        elif style == "answer_removed":
            change = changed(without_answer, e)
        elif style == "entity_swap":
            change = changed(swapped, e)
        elif style == "antonym":
            change = changed(opposite, e)
        else:
            makers = (
                [opposite, swapped] if style == "question_edit" else [new_paragraph, without_answer]
            )
            if style == "all":
                makers.append(swapped)
                rng.shuffle(makers)
            elif rng.random() < 0.5:
                makers.reverse()
            change = next((c for c in (changed(m, e) for m in makers) if c is not None), None)
        if change is None:
            continue
        negatives.append(
            {**e, **change, "id": f"{e['id']}-neg", "answers": [], "is_impossible": True}
        )
    return negatives
