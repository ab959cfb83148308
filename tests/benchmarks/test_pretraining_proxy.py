"""The pretraining pilot's proxy: fixed samples, one row per (checkpoint, seed), resumable."""

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "tuning"))
from pretraining_proxy import sample_squad, summarise  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "tuning" / "pretraining_proxy.py"


def _ids(path):
    data = json.loads(Path(path).read_text())["data"]
    return {q["id"] for a in data for p in a["paragraphs"] for q in p["qas"]}


def test_samples_are_the_same_every_time_and_keep_only_chosen_questions(data_dir, tmp_path):
    a = sample_squad(data_dir / "squad-train.json", 30, tmp_path / "a.json")
    b = sample_squad(data_dir / "squad-train.json", 30, tmp_path / "b.json")
    assert _ids(a) == _ids(b) and len(_ids(a)) == 30
    with pytest.raises(ValueError, match="asked for 100000"):
        sample_squad(data_dir / "squad-train.json", 100_000, tmp_path / "c.json")


def test_summary_gives_mean_and_spread_over_seeds():
    rows = [
        {"checkpoint": "s50", "tokens": 50, "seed": 1, "f1": 40.0, "exact_match": 30.0},
        {"checkpoint": "s50", "tokens": 50, "seed": 0, "f1": 43.0, "exact_match": 31.0},
    ]
    (point,) = summarise(rows, [Path("s50"), Path("s100")])
    assert point["f1"] == [43.0, 40.0] and point["f1_mean"] == 41.5 and point["f1_spread"] == 3.0
    assert point["tokens"] == 50


@pytest.mark.slow
def test_a_run_appends_each_finetune_and_a_rerun_skips_them(data_dir, tiny_bert_dir, tmp_path):
    squad = tmp_path / "data" / "squad"
    squad.mkdir(parents=True)
    for source, name in (
        ("squad-train.json", "train-v1.1.json.gz"),
        ("squad-dev.json", "dev-v1.1.json.gz"),
    ):
        with open(data_dir / source, "rb") as src, gzip.open(squad / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    results = tmp_path / "proxy.jsonl"
    command = [
        sys.executable,
        str(SCRIPT),
        "--data",
        str(tmp_path / "data"),
        "--recipe",
        "tiny",
        "--checkpoints",
        str(tiny_bert_dir),
        "--train-questions",
        "40",
        "--dev-questions",
        "20",
        "--seeds",
        "0",
        "1",
        "--results",
        str(results),
        "--threads",
        "1",
    ]
    out = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    (point,) = out["points"]
    assert point["seeds"] == [0, 1] and len(point["f1"]) == 2 and point["tokens"] > 0
    assert len(results.read_text().splitlines()) == 2
    subprocess.run(command, capture_output=True, text=True, check=True)
    assert len(results.read_text().splitlines()) == 2  # nothing finetuned twice
