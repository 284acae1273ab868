"""Calibration: temperature scaling on held-out patients, and its use."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from ecg_model.core.io import atomic_write_json
from ecg_model.inference.predict import CALIBRATION_FILE, Predictor, probs_temper
from ecg_model.training.calibrate import (
    reliability,
    temperature_fit,
    uncertain_threshold,
)

from .conftest import ROOT
from .test_predict import beat_picture


def overconfident(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Six-class probabilities at ~97% confidence that are right 70% of the time."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 6, n)
    pick = np.where(rng.random(n) < 0.7, y, (y + rng.integers(1, 6, n)) % 6)
    logits = rng.normal(0, 0.3, (n, 6))
    logits[np.arange(n), pick] += 6.0
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True), y


def test_tempering_keeps_the_class_and_sums_to_one():
    p, _ = overconfident(200)
    q = probs_temper(p, 3.0)
    assert (q.argmax(axis=1) == p.argmax(axis=1)).all()
    np.testing.assert_allclose(q.sum(axis=1), 1.0, atol=1e-5)
    assert q.max(axis=1).mean() < p.max(axis=1).mean()
    np.testing.assert_allclose(probs_temper(p, 1.0), p, atol=1e-6)


def test_an_overconfident_model_gets_a_temperature_above_one_and_a_lower_ece():
    p, y = overconfident()
    t = temperature_fit(p, y)
    assert t > 1.5
    before, after = reliability(p, y)["ece"], reliability(probs_temper(p, t), y)["ece"]
    assert before > 0.2 and after < before / 3
    # Calibrated, confidence tracks accuracy: the mean is within 3 points.
    q = probs_temper(p, t)
    assert abs(q.max(axis=1).mean() - (q.argmax(axis=1) == y).mean()) < 0.03


def test_uncertain_threshold_keeps_answers_above_it_right_at_the_target():
    p, y = overconfident()
    q = probs_temper(p, temperature_fit(p, y))
    t = uncertain_threshold(q, y, 0.8)
    sel = q.max(axis=1) >= t
    assert (q.argmax(axis=1)[sel] == y[sel]).mean() >= 0.8


def test_predictor_applies_the_models_calibration(tmp_path):
    src = ROOT / "artifacts" / "default"
    if not (src / "model.keras").exists():
        pytest.skip("no committed default model")
    model = tmp_path / "model"
    shutil.copytree(src, model)
    (model / CALIBRATION_FILE).unlink(missing_ok=True)
    raw = Predictor(model).predict_picture(beat_picture(), "a.png")
    atomic_write_json(
        model / CALIBRATION_FILE, {"temperature": 4.0, "uncertain_below": 0.99}
    )
    cal = Predictor(model).predict_picture(beat_picture(), "a.png")
    assert cal.predicted_class == raw.predicted_class
    assert cal.confidence < raw.confidence and cal.uncertain
    assert "below 0.99" in cal.reason
