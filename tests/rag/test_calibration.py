"""The answer calibrator: fit, monotonicity, JSON round trip, and refusal of foreign files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rag.calibration import CALIBRATION_FILE, FEATURES, Calibrator


def synthetic(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Answers whose log span probability predicts rightness through a known logistic curve."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(FEATURES)))
    x[:, 0] = rng.uniform(-6, 0, size=n)  # log p(span)
    right = rng.random(n) < 1 / (1 + np.exp(-(2 * x[:, 0] + 6)))
    return x, right


def test_confidence_rises_with_the_span_probability():
    x, right = synthetic()
    cal = Calibrator.fit(x, right)
    probe = np.zeros((7, len(FEATURES)))
    probe[:, 0] = np.linspace(-6, 0, 7)
    confidence = cal.confidence(probe)
    assert np.all(np.diff(confidence) > 0)
    assert confidence[0] < 0.2 and confidence[-1] > 0.8


def test_fitted_confidence_is_calibrated_on_fresh_data():
    x, right = synthetic(4000, seed=1)
    cal = Calibrator.fit(x, right)
    fresh_x, fresh_right = synthetic(4000, seed=2)
    confidence = cal.confidence(fresh_x)
    for low in (0.1, 0.5, 0.8):  # observed accuracy near the stated confidence
        chosen = (confidence >= low) & (confidence < low + 0.1)
        assert abs(fresh_right[chosen].mean() - confidence[chosen].mean()) < 0.08


def test_save_and_load_give_the_same_confidences(tmp_path):
    x, right = synthetic()
    cal = Calibrator.fit(x, right, mu=0.3, min_confidence=0.42)
    path = cal.save(tmp_path)
    assert path.name == CALIBRATION_FILE and "pickle" not in path.read_text()
    loaded = Calibrator.load(tmp_path)
    assert loaded.mu == 0.3 and loaded.min_confidence == 0.42
    assert np.allclose(loaded.confidence(x), cal.confidence(x))
    assert Calibrator.load(tmp_path / "elsewhere") is None


def test_a_file_for_other_features_is_refused(tmp_path):
    x, right = synthetic()
    Calibrator.fit(x, right).save(tmp_path)
    data = json.loads((tmp_path / CALIBRATION_FILE).read_text())
    data["features"] = ["something_else"] * len(FEATURES)
    (tmp_path / CALIBRATION_FILE).write_text(json.dumps(data))
    with pytest.raises(ValueError, match="notesqa train calibrate"):
        Calibrator.load(tmp_path)


def test_fit_needs_one_label_per_row():
    with pytest.raises(ValueError, match="feature array"):
        Calibrator.fit(np.zeros((3, len(FEATURES))), np.zeros(2, dtype=bool))
