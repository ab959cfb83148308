import json

from rag.reader import Reader
from training.configs import ReaderConfig
from training.reader import evaluate_reader, train_features
from training.squad import load_squad
from training.tokenizer import load_tokenizer


def test_features_point_at_the_answer_or_cls(data_dir, tiny_tokenizer_dir):
    tok = load_tokenizer(tiny_tokenizer_dir)
    _, examples = load_squad(data_dir / "squad-train.json")
    cfg = ReaderConfig(max_seq_length=40, doc_stride=16)
    features = train_features(examples[:20], tok, cfg)
    assert len(features) > 20  # long contexts are cut into several windows
    inside = [f for f in features if f["start_positions"] > 0]
    assert inside and len(inside) < len(features)
    for f in inside:
        text = tok.decode(f["input_ids"][f["start_positions"] : f["end_positions"] + 1])
        assert text.replace(" ", "") in {
            a["text"].lower().replace(" ", "") for e in examples[:20] for a in e["answers"]
        }


def test_trained_reader_beats_chance_and_saves_settings(tiny_reader_dir, data_dir):
    settings = json.loads((tiny_reader_dir / "notesqa_reader.json").read_text())
    assert settings["max_seq_length"] == 128
    scores = evaluate_reader(Reader.load(tiny_reader_dir), data_dir / "squad-dev.json")
    assert set(scores) == {"exact_match", "f1", "examples_per_s"}
    # templated questions are easy: a trained reader is far above the ~0 of a random one
    assert scores["f1"] > 20.0, scores
