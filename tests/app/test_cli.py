import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import app.serve
from app.cli import main
from rag.reader import ReaderSettings


@pytest.fixture
def notes(tmp_path):
    root = tmp_path / "notes"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "ada.md").write_text("# Ada\n\nAda Smithson was born in Oslo in 1850.\n")
    (root / "plain.txt").write_text("Boris Kirason collected clocks from every country.\n")
    return root


def test_index_ask_search_json(notes, tiny_embedder_dir, tiny_reader_dir, capsys, monkeypatch):
    assert main(["index", str(notes), "--embedder", str(tiny_embedder_dir), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["files"] == 2 and summary["chunks"] >= 2
    index = str(notes / ".notesqa")
    windowed = ["--window-tokens", "4", "--json"]  # the stride defaults to half the window
    assert main(["index", str(notes), "--embedder", str(tiny_embedder_dir), *windowed]) == 0
    assert json.loads(capsys.readouterr().out)["vectors"] > summary["chunks"]
    assert main(["stats", "--index", index, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["windows"] == {"tokens": 4, "stride": 2}
    pooled = ["--window-tokens", "4", "--window-vectors", "pooled", "--json"]
    assert main(["index", str(notes), "--embedder", str(tiny_embedder_dir), *pooled]) == 0
    capsys.readouterr()
    assert main(["stats", "--index", index, "--json"]) == 0
    windows = json.loads(capsys.readouterr().out)["windows"]
    assert windows == {"tokens": 4, "stride": 2, "pooled": True}

    assert (
        main(
            [
                "ask",
                "Where was Ada Smithson born?",
                "--index",
                index,
                "--json",
                "--embedder",
                str(tiny_embedder_dir),
                "--reader",
                str(tiny_reader_dir),
            ]
        )
        == 0
    )
    payload = json.loads(capsys.readouterr().out)
    assert payload["question"] == "Where was Ada Smithson born?"
    answer = payload["answers"][0]
    assert set(answer) >= {"text", "score", "source", "start", "end", "context"}
    assert (notes / answer["source"]).read_text()[answer["start"] : answer["end"]] == answer["text"]

    monkeypatch.setenv("NOTESQA_INDEX", index)  # found without --index
    assert (
        main(["search", "clocks", "-k", "1", "--json", "--embedder", str(tiny_embedder_dir)]) == 0
    )
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert len(hits) == 1 and hits[0]["source"] in {"plain.txt", "sub/ada.md"}

    assert (
        main(
            [
                "ask",
                "Where was Ada born?",
                "--embedder",
                str(tiny_embedder_dir),
                "--reader",
                str(tiny_reader_dir),
            ]
        )
        == 0
    )
    assert "source:" in capsys.readouterr().out

    assert main(["stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["files"] == 2 and stats["passages"] == summary["chunks"]
    assert stats["index_type"] == "flat" and stats["format_version"] >= 2
    full_dim = stats["dim"]

    index_args = ["index", str(notes), "--embedder", str(tiny_embedder_dir), "--json"]
    assert main([*index_args, "--dim", "8"]) == 2  # a different size needs --rebuild
    assert "--rebuild" in capsys.readouterr().err
    assert main([*index_args, "--dim", "8", "--rebuild"]) == 0
    capsys.readouterr()
    assert main(["stats", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["dim"] == 8 < full_dim

    batch = notes.parent / "questions.jsonl"
    batch.write_text(
        '{"id": "q1", "question": "Who collected clocks?"}\n\n{"id": 7, "question": "Where?"}\n'
    )
    assert (
        main(["search", "--batch", str(batch), "-k", "2", "--embedder", str(tiny_embedder_dir)])
        == 0
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in lines] == ["q1", 7] and all(len(r["hits"]) == 2 for r in lines)
    batch.write_text('{"question": "no id"}\n')
    assert main(["search", "--batch", str(batch), "--embedder", str(tiny_embedder_dir)]) == 2
    assert "expected a JSON object with 'id' and 'question'" in capsys.readouterr().err


def test_tag_filters_search_and_ask_and_stats_lists_the_tags(
    notes, tiny_embedder_dir, tiny_reader_dir, capsys
):
    (notes / "sub" / "ada.md").write_text(
        "---\ntags: [people]\n---\n# Ada\n\nAda Smithson was born in Oslo in 1850. #exam/2024\n"
    )
    models = ["--embedder", str(tiny_embedder_dir)]
    assert main(["index", str(notes), *models]) == 0
    capsys.readouterr()
    index = ["--index", str(notes / ".notesqa"), *models]
    assert main(["search", "born clocks", "-k", "5", "--tag", "exam", *index, "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert hits and {h["source"] for h in hits} == {"sub/ada.md"}
    assert hits[0]["tags"] == ["people", "exam/2024"]
    assert main(["search", "born", "--tag", "people", "--tag", "nope", *index, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["hits"] == []  # every tag must be there
    assert main(["search", "born clocks", "--tag", "#People", *index]) == 0
    assert "sub/ada.md" in (out := capsys.readouterr().out) and "#people #exam/2024" in out
    assert "plain.txt" not in out
    ask = ["ask", "Who collected clocks?", "--tag", "nope", "--reader", str(tiny_reader_dir)]
    assert main([*ask, *index, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["answers"] == []  # nothing tagged "nope"
    assert main(["stats", *index[:2], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tags"] == {"exam/2024": 1, "people": 1}
    assert main(["stats", *index[:2]]) == 0
    assert "#exam/2024 (1), #people (1)" in capsys.readouterr().out


def test_errors_are_one_line_and_non_zero(tmp_path, tiny_embedder_dir, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NOTESQA_INDEX", raising=False)
    assert main(["search", "x", "--embedder", str(tiny_embedder_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("notesqa: error:") and "notesqa index" in err and err.count("\n") == 1
    assert main(["index", str(tmp_path / "missing"), "--embedder", str(tiny_embedder_dir)]) == 2
    assert main(["index", str(tmp_path), "--window-tokens", "8", "--window-stride", "9"]) == 2
    assert "would skip text" in capsys.readouterr().err
    assert main(["index", str(tmp_path), "--window-stride", "9"]) == 2
    assert "needs --window-tokens" in capsys.readouterr().err
    assert (
        main(["eval", "squad", "--data", str(tmp_path / "none.json"), "--model", str(tmp_path)])
        == 2
    )


def test_help_explains_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("index", "ask", "search", "train", "eval"):
        assert command in out


def test_train_tokenizer_and_pretrain_from_the_cli(tmp_path, data_dir, capsys):
    recipe = tmp_path / "r.json"
    recipe.write_text(
        json.dumps(
            {
                "tokenizer": {"vocab_size": 300},
                "pretrain": {
                    "hidden_size": 32,
                    "num_hidden_layers": 1,
                    "num_attention_heads": 2,
                    "intermediate_size": 64,
                    "max_seq_length": 32,
                    "batch_size": 8,
                    "max_steps": 3,
                    "warmup_steps": 1,
                    "heldout_docs": 10,
                    "eval_batches": 1,
                    "eval_every": 3,
                },
                "reader": {
                    "max_seq_length": 64,
                    "doc_stride": 24,
                    "batch_size": 8,
                    "max_train_examples": 40,
                },
                "embedder": {"max_seq_length": 64, "batch_size": 8, "max_train_pairs": 40},
            }
        )
    )
    corpus = str(data_dir / "corpus.jsonl.gz")
    assert (
        main(
            [
                "train",
                "pretrain",
                "--config",
                str(recipe),
                "--corpus",
                corpus,
                "--out",
                str(tmp_path / "run"),
            ]
        )
        == 0
    )
    assert (tmp_path / "run" / "model" / "config.json").exists()
    assert (tmp_path / "run" / "tokenizer" / "vocab.txt").exists()

    # a second phase at twice the sequence, from those weights, positions 0..31 tiled first
    phase2 = json.loads(recipe.read_text())
    phase2["pretrain"].update(max_seq_length=64, tile_positions=32, max_steps=2, eval_every=100)
    recipe2 = tmp_path / "r2.json"
    recipe2.write_text(json.dumps(phase2))
    args = ["--config", str(recipe2), "--corpus", corpus, "--init", str(tmp_path / "run" / "model")]
    args += ["--tokenizer", str(tmp_path / "run" / "tokenizer"), "--out", str(tmp_path / "run2")]
    assert main(["train", "pretrain", *args]) == 0
    key = "bert.embeddings.position_embeddings.weight"  # (512, 32)
    first = load_file(tmp_path / "run" / "model" / "model.safetensors")[key]
    second = load_file(tmp_path / "run2" / "model" / "model.safetensors")[key]
    # rows 64.. are used by neither phase: copies of the first phase's rows 0..31
    torch.testing.assert_close(second[64:96], first[:32], atol=1e-3, rtol=0)
    assert (
        main(
            [
                "train",
                "tokenizer",
                "--corpus",
                corpus,
                "--vocab-size",
                "250",
                "--out",
                str(tmp_path / "tok"),
            ]
        )
        == 0
    )
    assert "WordPiece" in capsys.readouterr().out

    # the rest of the chain: finetune both heads from that checkpoint, export, index, ask
    bert, squad = str(tmp_path / "run" / "model"), str(data_dir / "squad-train.json")
    for stage in ("reader", "embedder"):
        out = str(tmp_path / stage)
        assert (
            main(
                [
                    "train",
                    stage,
                    "--config",
                    str(recipe),
                    "--init",
                    bert,
                    "--data",
                    squad,
                    "--out",
                    out,
                ]
            )
            == 0
        )
        assert main(["train", "export", "--model", out, "--out", out + "-fp16"]) == 0
    # halfway between the embedder and its own fp16 copy: the same model, in the end's fp16
    mixed = str(tmp_path / "embedder-mix")
    args = ["--from", str(tmp_path / "embedder"), "--to", str(tmp_path / "embedder-fp16")]
    assert main(["train", "interpolate", *args, "--weight", "0.5", "--out", mixed]) == 0
    from embedder import Embedder

    texts = ["Where was Ada born?", "Ada was born in Oslo."]
    original, halfway = Embedder.load(tmp_path / "embedder"), Embedder.load(mixed)
    assert np.allclose(original.encode(texts), halfway.encode(texts), atol=2e-2)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "ada.md").write_text(
        "# Ada\n\nAda Smithson was born in Oslo in 1850.\n", encoding="utf-8"
    )
    embedder, reader = str(tmp_path / "embedder-fp16"), str(tmp_path / "reader-fp16")
    assert main(["index", str(notes), "--embedder", embedder]) == 0
    capsys.readouterr()
    question = "Where was Ada Smithson born?"
    index = str(notes / ".notesqa")
    assert (
        main(
            [
                "ask",
                question,
                "--index",
                index,
                "--embedder",
                embedder,
                "--reader",
                reader,
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["question"] == question
    for answer in result["answers"]:
        assert answer["source"] == "ada.md"
        assert (notes / "ada.md").read_text()[answer["start"] : answer["end"]] == answer["text"]


def test_eval_commands_print_json(tiny_reader_dir, tiny_embedder_dir, data_dir, capsys):
    assert (
        main(
            [
                "eval",
                "squad",
                "--model",
                str(tiny_reader_dir),
                "--data",
                str(data_dir / "squad-dev.json"),
                "--json",
            ]
        )
        == 0
    )
    scores = json.loads(capsys.readouterr().out)
    assert {"exact_match", "f1"} <= set(scores) and 0 <= scores["f1"] <= 100
    assert (
        main(
            [
                "eval",
                "retrieval",
                "--model",
                str(tiny_embedder_dir),
                "--data",
                str(data_dir / "squad-dev.json"),
                "--json",
            ]
        )
        == 0
    )
    scores = json.loads(capsys.readouterr().out)
    assert {"recall@1", "recall@5", "recall@20", "mrr@10"} <= set(scores)


def test_eval_squad_window_flags_override_the_readers(tiny_reader_dir, monkeypatch, capsys):
    import training.squad_eval

    seen = {}

    def fake_evaluate(reader, data, **options):
        seen["settings"] = reader.settings
        return {"f1": 0.0, "policy": {}}

    monkeypatch.setattr(training.squad_eval, "evaluate_reader", fake_evaluate)
    common = ["eval", "squad", "--model", str(tiny_reader_dir), "--data", "x.json", "--json"]
    assert main([*common, "--max-seq-length", "48", "--doc-stride", "16"]) == 0
    assert (seen["settings"].max_seq_length, seen["settings"].doc_stride) == (48, 16)
    own = ReaderSettings.load(tiny_reader_dir)
    assert main(common) == 0
    assert (seen["settings"].max_seq_length, seen["settings"].doc_stride) == (
        own.max_seq_length,
        own.doc_stride,
    )
    assert (48, 16) != (own.max_seq_length, own.doc_stride)
    capsys.readouterr()


def test_ask_threshold_flags_override_the_readers(
    notes, tiny_embedder_dir, tiny_reader_dir, capsys
):
    assert main(["index", str(notes), "--embedder", str(tiny_embedder_dir), "--json"]) == 0
    capsys.readouterr()
    common = [
        "--index",
        str(notes / ".notesqa"),
        "--json",
        "--embedder",
        str(tiny_embedder_dir),
        "--reader",
        str(tiny_reader_dir),
    ]
    question = "Where was Ada Smithson born?"
    assert main(["ask", question, *common, "--null-threshold=-1e9"]) == 0
    assert json.loads(capsys.readouterr().out)["answers"] == []  # the --json shape is kept
    assert main(["ask", question, *common, "--always-answer"]) == 0
    assert json.loads(capsys.readouterr().out)["answers"]
    with pytest.raises(SystemExit):  # one or the other
        main(["ask", question, *common, "--always-answer", "--null-threshold", "0"])


def test_train_whiten_writes_a_whitened_embedder_the_index_uses(
    tmp_path, notes, tiny_embedder_dir, data_dir, capsys
):
    out = tmp_path / "white"
    args = ["train", "whiten", "--model", str(tiny_embedder_dir), "--out", str(out)]
    assert main([*args, "--data", str(data_dir / "squad-train.json"), "--size", "100"]) == 0
    assert "whitened (alpha 0.5" in capsys.readouterr().out
    assert json.loads((out / "notesqa_whitening.json").read_text())["alpha"] == 0.5
    assert main(["index", str(notes), "--embedder", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["chunks"] >= 2
    search = ["search", "Where was Ada born?", "--index", str(notes / ".notesqa")]
    assert main([*search, "--embedder", str(out)]) == 0
    assert "Oslo" in capsys.readouterr().out
    assert main([*search, "--embedder", str(tiny_embedder_dir)]) == 2  # not the index's model
    assert "was built with embedder='white@" in capsys.readouterr().err
    # an alpha out of range is one clear line before anything is read or written
    assert main([*args[:-1], str(tmp_path / "bad"), "--data", "x.json", "--alpha", "2"]) != 0
    assert "alpha must be between 0" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_watch_indexes_then_reports_an_edit_as_one_json_line(notes, tiny_embedder_dir, capsys):
    import threading
    import time

    def edit_soon():
        time.sleep(1.5)
        (notes / "plain.txt").write_text("Boris Kirason collected maps from every country.\n")

    threading.Thread(target=edit_soon, daemon=True).start()
    args = ["watch", str(notes), "--embedder", str(tiny_embedder_dir), "--json"]
    assert main([*args, "--debounce", "0.3", "--seconds", "6"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[0]["event"] == "ready" and events[0]["files"] == 2
    assert any(e["event"] == "update" and e["changed"] == ["plain.txt"] for e in events[1:])


def test_app_watch_runs_a_watcher_per_folder_and_stops_it(notes, monkeypatch):
    import subprocess as sp

    started = []

    class FakeWatcher:
        def __init__(self, command, env):
            started.append((command, env))
            self.stopped = False

        def terminate(self):
            started.append("terminated")

        def wait(self, timeout):
            return 0

    monkeypatch.setattr(sp, "Popen", FakeWatcher)
    monkeypatch.setattr(sp, "call", lambda command, env: 0)
    other = notes.parent / "a:b"  # a name that a path-separator list would split
    other.mkdir()
    assert main(["app", str(notes), str(other), "--watch"]) == 0
    command, env = started[0]
    assert command[1:3] == ["-I", "-c"]  # isolated: never the current folder's modules
    assert command[-3:] == ["app.cli", "watch", str(notes.resolve())]
    assert Path(command[-4]) == Path(app.serve.__file__).parent  # run from the package's folder
    assert json.loads(env["NOTESQA_NOTES"]) == [str(notes.resolve()), str(other.resolve())]
    assert started[-1] == "terminated"
