"""Calibration: temperature scaling on held-out patients, and its use."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from ecg_model.core.classes import CLASSES
from ecg_model.core.errors import EcgError
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


def test_calibrate_from_run_fits_on_out_of_fold_and_measures_on_test(tmp_path):
    """A model trained on every patient borrows the temperature of a
    new-patient run of its recipe: fitted on that run's out-of-fold beats,
    measured on its test patients; the files a Predictor reads are written."""
    from ecg_model.training.calibrate import calibrate_from_run

    rng = np.random.default_rng(0)

    def overconfident(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, len(CLASSES), n)
        logits = rng.normal(0, 1, (n, len(CLASSES)))
        logits[np.arange(n), y] += 1.0
        # Sharpened 4x: far surer than right.
        return probs_temper(
            np.exp(logits) / np.exp(logits).sum(1, keepdims=True), 0.25
        ), y

    run = tmp_path / "run"
    (run / "rhythm_folds").mkdir(parents=True)
    p, y = overconfident(3000)
    pd.DataFrame(
        {"path": [f"train/{CLASSES[k]}/b{i}.png" for i, k in enumerate(y)]}
        | {c: p[:, j] for j, c in enumerate(CLASSES)}
    ).to_csv(run / "rhythm_folds" / "oof-2.csv", index=False)
    p, y = overconfident(2000)
    pd.DataFrame(
        {"true_class": [CLASSES[k] for k in y]}
        | {c: p[:, j] for j, c in enumerate(CLASSES)}
    ).to_csv(run / "test_predictions.csv", index=False)
    model = tmp_path / "model"
    model.mkdir()
    res = calibrate_from_run(model, run)
    assert res["temperature"] > 2
    assert res["ece_after"] < res["ece_before"] / 2
    assert "out-of-fold" in res["fitted_on"] and "3000 beats" in res["fitted_on"]
    assert "2000 beats" in res["evaluated_on"]
    assert (model / CALIBRATION_FILE).exists() and (model / "reliability.png").exists()
    with pytest.raises(EcgError, match="fit-rhythm"):
        calibrate_from_run(model, tmp_path / "model")
    # Out-of-fold beats surer than the test patients' need: a temperature that
    # would make the test patients' calibration worse is refused, not written.
    (model / CALIBRATION_FILE).unlink()
    p, y = overconfident(3000)
    pd.DataFrame(
        {"true_class": [CLASSES[k] for k in y]}
        | {c: probs_temper(p, 4.0)[:, j] for j, c in enumerate(CLASSES)}
    ).to_csv(run / "test_predictions.csv", index=False)
    with pytest.raises(EcgError, match="worsens calibration"):
        calibrate_from_run(model, run)
    assert not (model / CALIBRATION_FILE).exists()
