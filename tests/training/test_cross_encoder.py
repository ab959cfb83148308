import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file

from training.configs import CrossEncoderConfig

WALKING = [f"A person number {i} walks." for i in range(48)]
SIMILAR = [f"Someone number {i} is walking." for i in range(48)]
UNRELATED = [f"The market fell {i} points on Monday." for i in range(48)]


def scored(rows: range) -> list[tuple[str, str, float]]:
    return [(WALKING[i], SIMILAR[i], 1.0) for i in rows] + [
        (WALKING[i], UNRELATED[i], 0.0) for i in rows
    ]


def small_config(**changes) -> CrossEncoderConfig:
    cfg = CrossEncoderConfig(
        batch_size=16, learning_rate=1e-3, epochs=20.0, precision="fp32", save_every=0
    )
    return dataclasses.replace(cfg, **changes)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_bert_dir):
    from training.cross_encoder import train_cross_encoder

    out = tmp_path_factory.mktemp("cross") / "sts-cross"
    return train_cross_encoder(
        small_config(), tiny_bert_dir, scored(range(32)), out, dev_pairs=scored(range(32, 48))
    )


def test_a_cross_encoder_learns_to_score_similar_pairs_above_unrelated(trained):
    from training.cross_encoder import SimilarityCrossEncoder

    teacher = SimilarityCrossEncoder.load(trained)
    held_out = range(32, 48)  # never trained on
    similar = teacher.score([(WALKING[i], SIMILAR[i]) for i in held_out])
    unrelated = teacher.score([(WALKING[i], UNRELATED[i]) for i in held_out])
    assert similar.dtype == "float32" and similar.shape == (16,)
    assert ((0 <= similar) & (similar <= 1)).all()
    assert similar.mean() > unrelated.mean() + 0.3
    results = json.loads((trained / "eval_results.json").read_text())
    assert results["dev_spearman"] > 50
    assert not trained.with_name(trained.name + ".checkpoint").exists()


def test_scores_do_not_depend_on_the_order_of_the_two_sentences(trained):
    from training.cross_encoder import SimilarityCrossEncoder

    teacher = SimilarityCrossEncoder.load(trained)
    pairs = [(WALKING[i], UNRELATED[i + 1]) for i in range(8)]
    swapped = [(b, a) for a, b in pairs]
    assert torch.allclose(
        torch.from_numpy(teacher.score(pairs)), torch.from_numpy(teacher.score(swapped))
    )


def test_a_stopped_run_resumes_to_the_same_weights_as_one_run(tmp_path, tiny_bert_dir):
    from training.cross_encoder import train_cross_encoder
    from training.folders import checkpoint_folder

    pairs, cfg = scored(range(16)), small_config(epochs=2.0)
    whole = train_cross_encoder(cfg, tiny_bert_dir, pairs, tmp_path / "whole")
    stopped = train_cross_encoder(cfg, tiny_bert_dir, pairs, tmp_path / "part", max_minutes=0)
    assert stopped == checkpoint_folder(tmp_path / "part")  # one step, then a checkpoint
    with pytest.raises(ValueError, match="other settings"):
        train_cross_encoder(
            dataclasses.replace(cfg, learning_rate=1e-4), tiny_bert_dir, pairs, tmp_path / "part"
        )
    resumed = train_cross_encoder(cfg, tiny_bert_dir, pairs, tmp_path / "part")
    assert resumed == tmp_path / "part" and not stopped.exists()
    one, two = (load_file(folder / "model.safetensors") for folder in (whole, resumed))
    assert one.keys() == two.keys()
    assert all(torch.equal(one[k], two[k]) for k in one)


def test_bad_training_data_and_folders_are_refused(tmp_path, tiny_bert_dir):
    from training.cross_encoder import SimilarityCrossEncoder, train_cross_encoder

    with pytest.raises(ValueError, match="only 2 scored pairs"):
        train_cross_encoder(small_config(), tiny_bert_dir, scored(range(1)), tmp_path / "x")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        out_of_range = [(a, b, 5.0 * y) for a, b, y in scored(range(16))]
        train_cross_encoder(small_config(), tiny_bert_dir, out_of_range, tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="train cross-encoder"):
        SimilarityCrossEncoder.load(tiny_bert_dir)
    assert not (tmp_path / "x").exists()
