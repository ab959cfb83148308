"""`notesqa train all`: stack files, and the smoke stack end to end on synthetic data."""

import gzip
import json
import shutil
from pathlib import Path

import pytest

from app.cli import main
from training.stack import Stack, Stage, load_stack


def test_every_shipped_stage_names_only_folders_made_before_it():
    stack = load_stack("shipped")
    names = [stage.name for stage in stack.stages]
    assert names[0] == "tokenizer" and names[-1] == "export-embedder"
    assert names.index("pretrain") < names.index("reader-128") < names.index("passage-reader")
    assert names.index("embedder") < names.index("passage-groups") < names.index("calibrate")
    folders = {stage.name: stage.folder(Path("runs")) for stage in stack.stages}
    assert folders["pretrain-cont"] == Path("runs/pretrain")  # continues the first leg


def test_a_stack_using_a_folder_no_earlier_stage_makes_is_refused():
    stack = Stack("x", [Stage("reader", ["reader", "--init", "{pretrain}/model"])])
    with pytest.raises(ValueError, match=r"uses \{pretrain\}, which no earlier stage makes"):
        stack.check()
    with pytest.raises(ValueError, match="continues 'nothing'"):
        Stack("x", [Stage("a", ["export"], out="nothing")]).check()


def test_placeholders_become_folders():
    stage = Stage("embedder", ["whiten", "--model", "{soup}", "--data", "{data}/squad/t.json"])
    assert stage.command("/d", Path("runs")) == [
        "whiten", "--model", "runs/soup", "--data", "/d/squad/t.json",
    ]  # fmt: skip


def test_train_all_help_lists_the_stages(capsys):
    with pytest.raises(SystemExit):
        main(["train", "all", "--help"])
    text = capsys.readouterr().out
    for stage in ("tokenizer", "pretrain", "reader-128", "embedder", "calibrate", "--smoke"):
        assert stage in text


def _data_folder(root: Path, data_dir: Path) -> Path:
    """The layout `--data-dir` expects, made of the session's synthetic corpus and SQuAD."""
    (root / "squad").mkdir(parents=True)
    with gzip.open(root / "squad" / "train-v1.1.json.gz", "wt") as handle:
        handle.write((data_dir / "squad-train.json").read_text())
    (root / "simplewiki").mkdir()
    shutil.copy(data_dir / "corpus.jsonl.gz", root / "simplewiki" / "simplewiki-articles.jsonl.gz")
    (root / "stsbenchmark").mkdir()
    rows = [
        f"main-captions\tMSRvid\t2012test\t{i:04d}\t{i % 6:.1f}\t"
        f"Person {i} was born in town {i % 7}.\tSomeone {i} comes from place {i % 5}."
        for i in range(120)
    ]
    (root / "stsbenchmark" / "sts-train.csv").write_text("\n".join(rows) + "\n")
    return root


def test_the_smoke_stack_makes_a_working_stack_and_resumes(tmp_path, data_dir, capsys):
    from embedder import Embedder
    from rag.reader import Reader

    data = _data_folder(tmp_path / "data", data_dir)
    runs = tmp_path / "runs"
    args = ["train", "all", "--smoke", "--data-dir", str(data), "--out", str(runs)]
    assert main(args) == 0
    models = runs / "models"
    vectors = Embedder.load(models / "embedder").encode(["a note", "another note"])
    assert vectors.shape[0] == 2
    assert abs(float((vectors**2).sum(axis=1)[0]) - 1.0) < 1e-3
    reader = Reader.load(models / "reader")
    assert reader.settings.multi_passage
    assert (models / "reader" / "notesqa_calibration.json").is_file()
    assert (models / "tokenizer" / "vocab.txt").is_file()
    marker = json.loads((runs / ".stages" / "pretrain.json").read_text())
    assert marker["command"][:3] == ["notesqa", "train", "pretrain"]

    # a rerun skips every finished stage; a stage whose marker is gone runs again alone
    (runs / ".stages" / "export-embedder.json").unlink()
    shutil.rmtree(models / "embedder")
    capsys.readouterr()
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "1 of 13 stages to run" in out
    assert (models / "embedder" / "modules.json").is_file()


def test_train_all_without_its_data_folder_says_what_to_pass(tmp_path, capsys):
    code = main(["train", "all", "--smoke", "--data-dir", str(tmp_path / "no"), "--out", "x"])
    assert code == 2
    assert "pass --data-dir DIR" in capsys.readouterr().err
