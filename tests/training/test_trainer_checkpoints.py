import json

import pytest

from training.trainer_checkpoints import RUN_FILE, claim_run, latest_checkpoint, resume_point


def _checkpoint(folder, step, complete=True):
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(b"")
    if complete:  # the trainer writes trainer_state.json last
        (path / "trainer_state.json").write_text("{}")
    return path


def test_the_newest_complete_checkpoint_is_found_by_step_not_by_name(tmp_path):
    assert latest_checkpoint(tmp_path / "missing") is None
    _checkpoint(tmp_path, 9)
    ten = _checkpoint(tmp_path, 10)
    _checkpoint(tmp_path, 12, complete=False)  # killed while writing
    (tmp_path / "checkpoint-x").mkdir()
    assert latest_checkpoint(tmp_path) == ten


def test_a_run_claims_its_folder_keeps_the_resume_point_and_refuses_other_runs(tmp_path):
    folder = tmp_path / "emb.checkpoint"
    run = {"init": "base", "config": {"learning_rate": 1e-4, "matryoshka_dims": [64]}}
    assert claim_run(folder, run) is None  # a fresh start records the run
    assert json.loads((folder / RUN_FILE).read_text()) == run
    _checkpoint(folder, 4)
    eight = _checkpoint(folder, 8)
    _checkpoint(folder, 10, complete=False)
    assert claim_run(folder, run) == eight
    assert sorted(p.name for p in folder.glob("checkpoint-*")) == ["checkpoint-8"]

    other = {"init": "base", "config": {"learning_rate": 5e-5, "matryoshka_dims": [64]}}
    with pytest.raises(ValueError, match=r"other settings \(config\).*delete"):
        resume_point(folder, other)
    stranger = tmp_path / "notes.checkpoint"
    stranger.mkdir()
    (stranger / "mine.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not written by an embedder run"):
        claim_run(stranger, run)
    assert (stranger / "mine.txt").read_text() == "keep me"
