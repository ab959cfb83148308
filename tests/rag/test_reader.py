import numpy as np
import pytest
import torch
from transformers import AutoModelForQuestionAnswering

from rag.reader import Reader, ReaderSettings


@pytest.fixture(scope="module", params=["torch", "onnx-fp32"])
def reader(request, tiny_reader_dir):
    """The reader on torch and on ONNX (float weights: int8 is compared below)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NOTESQA_RUNTIME", request.param)
        return Reader.load(tiny_reader_dir)


def _load(folder, runtime: str) -> Reader:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NOTESQA_RUNTIME", runtime)
        return Reader.load(folder)


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


def test_a_long_question_in_short_windows_is_cut_not_a_crash(reader):
    # 48 - 16 - 4 = 28 tokens of question at most, or the tokenizer could not slide the window
    short = Reader(
        reader.model,
        reader.tokenizer,
        ReaderSettings(max_seq_length=48, doc_stride=16, max_query_length=64),
    )
    assert short.question_limit() == 28
    question = "Which " + " ".join(f"harbour{i}" for i in range(60)) + " had boats?"
    context = " ".join(f"Sentence {i} mentions Lisbon and {i * 7} boats." for i in range(10))
    ((spans, _),) = short.read_pairs([(question, context)])
    assert spans and all(context[s.start : s.end] == s.text for s in spans)
    no_room = Reader(
        reader.model, reader.tokenizer, ReaderSettings(max_seq_length=48, doc_stride=44)
    )
    with pytest.raises(ValueError, match="lower doc_stride"):
        no_room.read_pairs([("Where?", context)])


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


def _plain_hf_best_span(folder, question: str, context: str) -> str:
    """What a user gets with plain transformers: best start<=end context span by logit sum."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForQuestionAnswering.from_pretrained(str(folder)).eval()
    enc = tok(question, context, return_offsets_mapping=True, return_tensors="pt")
    offsets = enc.pop("offset_mapping")[0]
    with torch.no_grad():
        out = model(**enc)
    seq = enc.sequence_ids(0)
    ctx = [i for i, s in enumerate(seq) if s == 1]
    best, span = -1e9, (0, 0)
    for i in ctx:
        for j in ctx:
            if i <= j < i + 30:
                score = float(out.start_logits[0, i] + out.end_logits[0, j])
                if score > best:
                    best, span = score, (int(offsets[i][0]), int(offsets[j][1]))
    return context[span[0] : span[1]]


def test_same_best_span_as_plain_transformers_and_the_qa_pipeline(tiny_reader_dir):
    question, context = "Where was Ada Smithson born?", "Ada Smithson was born in Oslo in 1850."
    ours = _load(tiny_reader_dir, "torch").read(question, [context])[0][0][0].text
    assert ours == _plain_hf_best_span(tiny_reader_dir, question, context)
    from transformers.pipelines import SUPPORTED_TASKS

    if "question-answering" not in SUPPORTED_TASKS:
        pytest.skip("this transformers version has no question-answering pipeline")
    from transformers import pipeline

    qa = pipeline("question-answering", model=str(tiny_reader_dir))
    assert qa(question=question, context=context)["answer"].strip() == ours


def test_relevance_is_the_best_span_score_above_the_null_score(reader):
    question = "Where was Ada born?"
    contexts = ["Ada Smithson was born in Oslo in 1850.", "Boris collected clocks."]
    relevance = reader.relevance([(question, c) for c in contexts])
    assert relevance.dtype == "float32" and relevance.shape == (2,)
    for score, (spans, null) in zip(relevance, reader.read(question, contexts), strict=True):
        assert score == pytest.approx(spans[0].score - null, abs=1e-4)
    assert reader.relevance([]).shape == (0,)


PAIRS = [
    ("Where was Zoë Müller born?", "Zoë Müller was born in São Paulo in 1901. Ελληνικά 🙂 café."),
    (
        "What is mentioned?",
        " ".join(f"Sentence {i} mentions Lisbon and {i * 7} boats." for i in range(30)),
    ),
    ("Which " + " ".join(f"harbour{i}" for i in range(60)) + " had boats?", "Boats in Oslo."),
    ("Who?", ""),
]


@pytest.mark.parametrize("max_seq_length, doc_stride", [(128, 64), (48, 16)])
def test_native_windows_are_the_transformers_windows(tiny_reader_dir, max_seq_length, doc_stride):
    settings = ReaderSettings(max_seq_length=max_seq_length, doc_stride=doc_stride)
    hf = _load(tiny_reader_dir, "torch")
    native = _load(tiny_reader_dir, "onnx")
    assert not isinstance(native.tokenizer, type(hf.tokenizer))
    want = Reader(hf.model, hf.tokenizer, settings).featurize(PAIRS)
    got = Reader(native.model, native.tokenizer, settings).featurize(PAIRS)
    assert got == want


def _squad_pairs(data_dir, limit=40):
    import json

    data = json.loads((data_dir / "squad-dev.json").read_text())["data"]
    return [
        (qa["question"], para["context"])
        for article in data
        for para in article["paragraphs"]
        for qa in para["qas"]
    ][:limit]


def test_onnx_logits_and_answers_match_torch(tiny_reader_dir, data_dir):
    pairs = _squad_pairs(data_dir)
    torch_reader = _load(tiny_reader_dir, "torch")
    features = torch_reader.featurize(pairs)
    want_start, want_end = torch_reader.logits(features)
    want = [spans[0].text for spans, _ in torch_reader.read_pairs(pairs)]
    for runtime, atol, agree in (("onnx-fp32", 1e-3, 1.0), ("onnx", 0.5, 0.9)):
        onnx_reader = _load(tiny_reader_dir, runtime)
        assert onnx_reader.runtime == {"onnx": "onnx-int8", "onnx-fp32": "onnx-fp32"}[runtime]
        start, end = onnx_reader.logits(features)
        error = max(
            float(np.abs(a - b).max())
            for a, b in zip(start + end, want_start + want_end, strict=True)
        )
        assert error < atol, runtime
        got = [spans[0].text for spans, _ in onnx_reader.read_pairs(pairs)]
        assert np.mean([g == w for g, w in zip(got, want, strict=True)]) >= agree, runtime


def test_reader_runtime_torch_still_works(tiny_reader_dir):
    reader = _load(tiny_reader_dir, "torch")
    assert isinstance(reader.model, torch.nn.Module) and reader.runtime == "torch"
    ((spans, _),) = reader.read("Where was Ada born?", ["Ada Smithson was born in Oslo."])
    assert spans


def test_reading_groups_together_gives_each_question_its_own_joint_reading():
    reader = Reader.load(runtime="torch")  # the shipped multi-passage reader
    groups = [
        ("Where was Ada born?", ["Ada was born in Oslo.", "Boris collected clocks. " * 30]),
        ("What did Boris collect?", ["Boris collected clocks."]),
        ("Anything?", []),
    ]
    together = reader.read_groups(groups)
    for (question, contexts), reading in zip(groups, together, strict=True):
        alone = reader.read_jointly(question, contexts)
        assert [[s.text for s in spans] for spans in reading.spans] == [
            [s.text for s in spans] for spans in alone.spans
        ]
        assert reading.null_score == pytest.approx(alone.null_score, abs=1e-4)
        assert reading.log_norm == pytest.approx(alone.log_norm, abs=1e-4)
    assert together[2].spans == [] and together[0].spans[0][0].text == "Oslo"
