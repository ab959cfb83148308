import pytest
import torch
from transformers import AutoModelForQuestionAnswering

from rag.reader import Reader, ReaderSettings


@pytest.fixture(scope="module")
def reader(tiny_reader_dir):
    return Reader.load(tiny_reader_dir)


def test_spans_are_exact_substrings_on_non_ascii_text(reader):
    context = "Zoë Müller was born in São Paulo in 1901. Ελληνικά text 🙂 follows, and naïve café."
    ((spans, null),) = reader.read("Where was Zoë Müller born?", [context])
    assert spans
    for span in spans:
        assert context[span.start : span.end] == span.text
    assert isinstance(null, float)


def test_long_context_uses_several_windows(reader):
    reader = Reader(
        reader.model, reader.tokenizer, ReaderSettings(max_seq_length=48, doc_stride=16)
    )
    context = " ".join(f"Sentence {i} mentions Lisbon and {i * 7} boats." for i in range(30))
    features = reader.featurize([("Where?", context)])
    assert len(features["input_ids"]) > 3
    ((spans, _),) = reader.read_pairs([("What is mentioned?", context)])
    assert all(context[s.start : s.end] == s.text for s in spans)


def test_batched_by_length_gives_the_same_answers_as_one_at_a_time(reader):
    pairs = [
        ("Where was Ada born?", "Ada Smith was born in Oslo in 1850."),
        ("What did Ada collect?", "In later life Ada collected clocks from every country. " * 3),
    ]
    together = reader.read_pairs(pairs)
    alone = [reader.read_pairs([p])[0] for p in pairs]
    for (a, na), (b, nb) in zip(together, alone, strict=True):
        assert na == pytest.approx(nb, abs=1e-3)
        assert a[0].text == b[0].text and a[0].score == pytest.approx(b[0].score, abs=1e-3)


def test_checkpoint_is_a_standard_hf_qa_model(tiny_reader_dir):
    model = AutoModelForQuestionAnswering.from_pretrained(str(tiny_reader_dir))
    out = model(input_ids=torch.tensor([[2, 10, 3, 11, 12, 3]]))
    assert out.start_logits.shape == (1, 6)


def test_missing_reader_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no reader checkpoint"):
        Reader.load(tmp_path)
