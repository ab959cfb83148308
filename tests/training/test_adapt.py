"""`notesqa adapt` on a tiny reader and a tiny notes folder: it learns, it is used, it is safe."""

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

import training.adapt as adapt_module
from rag.adapted import adapted_reader, read_adaptation
from rag.index_folder import is_notesqa_index
from rag.pipeline import NotesQA
from training.adapt import adapt, work_dir
from training.configs import AdaptConfig

NOTE = """# {name}

{name} was born in {city} in {year}. {name} worked as a {job}, mostly in the mornings.

Their favourite colour was {colour}, and they collected {thing} for many years.
"""


def _replay(data_dir: Path, folder: Path) -> Path:
    """A tiny replay sample in the shipped layout, made from the test SQuAD file."""
    data = json.loads((data_dir / "squad-train.json").read_text())["data"]
    contexts = [a["paragraphs"][0]["context"] for a in data]
    groups = []
    for i, article in enumerate(data[:20]):
        paragraph = article["paragraphs"][0]
        q = paragraph["qas"][0]
        start = q["answers"][0]["answer_start"]
        end = start + len(q["answers"][0]["text"])
        groups.append(
            {
                "id": q["id"],
                "kind": "answerable",
                "question": q["question"],
                "passages": [paragraph["context"], contexts[i + 1]],
                "answers": [[0, start, end]],
                "answer_texts": [q["answers"][0]["text"]],
            }
        )
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("train-groups.jsonl.gz", "calibration-groups.jsonl.gz"):
        with gzip.open(folder / name, "wt") as handle:
            handle.write("\n".join(json.dumps(g) for g in groups) + "\n")
    return folder


@pytest.fixture
def notes(tmp_path, tiny_embedder_dir):
    import random

    from tests.conftest import _person

    folder = tmp_path / "notes"
    folder.mkdir()
    rng = random.Random(3)
    for i in range(6):
        person = _person(rng, i)
        (folder / f"person-{i}.md").write_text(NOTE.format(**person))
    NotesQA.open(folder, embedder=tiny_embedder_dir).index(progress=False)
    return folder


@pytest.fixture
def replay(data_dir, tmp_path, monkeypatch):
    folder = _replay(data_dir, tmp_path / "replay")
    monkeypatch.setattr(adapt_module, "REPLAY_DIR", folder)
    return folder


def _cfg(**changes):
    settings = dict(
        minutes=0.05,
        notes_batch=4,
        replay_groups=1,
        max_seq_length=64,
        save_every_minutes=0.01,
        precision="fp32",
    )
    return AdaptConfig(**{**settings, **changes})


def test_adapting_changes_the_reader_and_ask_uses_it_unless_base(
    notes, replay, tiny_reader_dir, tiny_embedder_dir
):
    result = adapt(notes, cfg=_cfg(learning_rate=1e-2), base_reader=tiny_reader_dir)
    assert result.steps > 0 and result.reader == notes / ".notesqa" / "adapted" / "reader"
    before = load_file(tiny_reader_dir / "model.safetensors")
    after = load_file(result.reader / "model.safetensors")
    assert set(before) == set(after)  # a stock BertForQuestionAnswering, no pretraining heads
    moved = {k: (before[k].float() - after[k].float()).abs().max().item() for k in before}
    assert max(moved.values()) > 1e-2  # well past fp16 rounding
    assert not work_dir(notes / ".notesqa").exists()  # the checkpoint is gone once finished
    assert adapted_reader(notes / ".notesqa") == result.reader
    qa = NotesQA.open(notes, embedder=tiny_embedder_dir)
    assert qa.stats()["reader"].startswith("adapted to these notes")
    assert qa.ask("Where was the person born?", always_answer=True)  # reads with it
    assert qa._reader_source[0] == result.reader
    base = NotesQA.open(notes, embedder=tiny_embedder_dir, base=True)
    assert base.stats()["reader"] == "shipped (as asked)"
    # an index update keeps it, and counts the notes it has not seen
    first = sorted(notes.glob("*.md"))[0]
    first.write_text(first.read_text() + "\nA new paragraph about the week's lab.\n")
    qa.index(progress=False)
    assert is_notesqa_index(notes / ".notesqa") and adapted_reader(notes / ".notesqa")
    assert 0 < qa.stats()["notes_changed_since_adapting"] < 0.3


SCRIPT = """
import logging
import sys
from pathlib import Path
import training.adapt as a
from training.configs import AdaptConfig
logging.basicConfig(level=logging.INFO)
a.REPLAY_DIR = Path(sys.argv[2])
cfg = AdaptConfig(minutes=float(sys.argv[4]), notes_batch=4, replay_groups=1, max_seq_length=64,
                  save_every_minutes=0.002, precision="fp32")
result = a.adapt(sys.argv[1], cfg=cfg, base_reader=sys.argv[3])
print("steps", result.steps if result else None)
"""


def test_kill_9_mid_adapt_keeps_the_old_reader_and_the_rerun_resumes(
    notes, replay, tiny_reader_dir, tiny_embedder_dir
):
    first = adapt(notes, cfg=_cfg(), base_reader=tiny_reader_dir)
    old = read_adaptation(notes / ".notesqa")
    command = [sys.executable, "-c", SCRIPT, str(notes), str(replay), str(tiny_reader_dir)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # other settings than the first run: a new run, checkpointed every 0.1 s of training
    process = subprocess.Popen([*command, "0.25"], env=env, stderr=subprocess.DEVNULL)
    state = work_dir(notes / ".notesqa") / "checkpoint" / "trainer_state.json"
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if state.exists() and json.loads(state.read_text())["step"] >= 3:
            break
        time.sleep(0.2)
    assert process.poll() is None, "the adapt run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert read_adaptation(notes / ".notesqa") == old  # the finished one is still in use
    qa = NotesQA.open(notes, embedder=tiny_embedder_dir)
    assert qa.ask("Where was the person born?", always_answer=True)
    assert qa._reader_source[0] == first.reader
    qa.index(progress=False)  # leftovers of the killed run do not block an update
    killed_at = json.loads(state.read_text())["step"]
    done = subprocess.run([*command, "0.25"], env=env, capture_output=True, text=True, check=True)
    assert "resuming the adapt run at step" in done.stderr
    steps = int(done.stdout.split()[-1])
    assert steps > killed_at and read_adaptation(notes / ".notesqa")["steps"] == steps


def test_adapt_without_an_index_says_to_index_first(tmp_path, replay, tiny_reader_dir):
    (tmp_path / "a.md").write_text("Some text.")
    with pytest.raises(FileNotFoundError, match="run `notesqa index"):
        adapt(tmp_path, cfg=_cfg(), base_reader=tiny_reader_dir)


def test_a_fixed_number_of_steps_replaces_the_time_box(notes, replay, tiny_reader_dir):
    result = adapt(notes, cfg=_cfg(minutes=60, steps=3), base_reader=tiny_reader_dir)
    assert result.steps == 3 and result.minutes < 60


def test_adapt_refuses_an_index_of_other_notes(notes, tmp_path, replay, tiny_reader_dir):
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(ValueError, match="holds the notes of"):
        adapt(other, index_dir=notes / ".notesqa", cfg=_cfg(), base_reader=tiny_reader_dir)
