import pytest
import torch
from safetensors.torch import load_file, save_file

from training.interpolate import interpolate_models


def model_folder(path, scale: float, extra: str | None = None):
    path.mkdir()
    tensors = {"w": torch.full((2, 3), scale), "ids": torch.arange(3)}
    if extra:
        tensors[extra] = torch.zeros(1)
    save_file(tensors, path / "model.safetensors")
    (path / "config.json").write_text(f'{{"scale": {scale}}}')
    return path


def test_weights_mix_along_the_line_and_the_end_folder_is_copied(tmp_path):
    start, end = model_folder(tmp_path / "a", 1.0), model_folder(tmp_path / "b", 5.0)
    for weight, expected in ((0.0, 1.0), (0.25, 2.0), (1.0, 5.0)):
        out = interpolate_models(start, end, weight, tmp_path / "mix")
        mixed = load_file(out / "model.safetensors")
        assert torch.allclose(mixed["w"], torch.full((2, 3), expected))
        assert torch.equal(mixed["ids"], torch.arange(3))  # integer tensors are taken from end
        assert (out / "config.json").read_text() == '{"scale": 5.0}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "mix"]  # no temp folder left


def test_different_architectures_and_bad_weights_are_refused_and_nothing_is_written(tmp_path):
    start = model_folder(tmp_path / "a", 1.0)
    other = model_folder(tmp_path / "c", 1.0, extra="pooler.bias")
    with pytest.raises(ValueError, match="different architectures .*pooler.bias"):
        interpolate_models(start, other, 0.5, tmp_path / "mix")
    with pytest.raises(ValueError, match="weight must be between 0 .* not 1.5"):
        interpolate_models(start, start, 1.5, tmp_path / "mix")
    with pytest.raises(FileNotFoundError, match="model.safetensors not found"):
        interpolate_models(start, tmp_path / "missing", 0.5, tmp_path / "mix")
    assert not (tmp_path / "mix").exists()
