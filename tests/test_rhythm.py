"""Rhythm step: RR ratio, early normal-looking beats called PAC, fitted threshold."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from ecg_model.core.classes import CLASSES
from ecg_model.data.render import RenderSpec
from ecg_model.inference.predict import Predictor, signal_beats_classify
from ecg_model.inference.rhythm import (
    NORMAL,
    PAC,
    RHYTHM_FILE,
    rhythm_adjust,
    rhythm_read,
    rr_features,
    rr_gate,
    stage_apply,
)
from ecg_model.training.rhythm_fit import rhythm_fit_run, threshold_fit

from .conftest import DATA, ROOT, needs_data

FS = 250.0


def beats_with_one_early(n: int = 30, rr: float = 0.8, early: int = 15) -> np.ndarray:
    """Beat times (s) at a steady ``rr``; beat ``early`` 30% early, then a pause."""
    t = np.arange(n) * rr
    t[early] -= 0.3 * rr  # the next beat stays on the sinus schedule
    return t


def rr_ratio(beat_s, irregular_max=None):
    """Each beat's RR over the local mean, gated, as the rhythm step reads it."""
    return rr_gate(rr_features(beat_s), irregular_max)


def test_rr_ratio_marks_the_early_beat():
    t = beats_with_one_early()
    r = rr_ratio(t)
    assert np.isnan(r[0])
    assert r[15] == pytest.approx(0.7, abs=0.03)
    # The beat after it follows the pause: late; the rest are on time.
    assert r[16] == pytest.approx(1.3, abs=0.05)
    others = np.delete(r, [0, 15, 16])
    assert np.allclose(others, 1.0, atol=0.03)
    # A steady rhythm at any rate is on time everywhere.
    assert np.allclose(rr_ratio(np.arange(20) * 0.45)[1:], 1.0)
    assert np.isnan(rr_ratio(np.array([0.0, 0.8]))).all()


def test_rhythm_adjust_swaps_normal_and_pac_for_early_normal_beats():
    p = np.zeros((4, len(CLASSES)), np.float32)
    p[:, NORMAL], p[:, PAC] = 0.7, 0.2
    p[:, -1] = 0.1
    p[3] = 0
    p[3, CLASSES.index("Premature Ventricular Contraction")] = 1.0
    ratio = np.array([0.7, 0.95, np.nan, 0.6])
    out = rhythm_adjust(p, ratio, 0.8)
    assert out[0, PAC] == pytest.approx(0.7) and out[0, NORMAL] == pytest.approx(0.2)
    assert np.array_equal(out[1:], p[1:])  # on time, unknown, or not Normal: kept
    assert np.allclose(out.sum(axis=1), p.sum(axis=1))
    assert np.array_equal(rhythm_adjust(p, ratio, None), p)


def test_rr_features_tell_atrial_fibrillation_from_an_isolated_early_beat():
    f = rr_features(beats_with_one_early(n=40))
    assert np.nanmax(f[:, 1]) < 0.05  # one early beat in a steady rhythm: regular
    rng = np.random.default_rng(0)
    af = np.cumsum(rng.uniform(0.4, 1.0, 80))  # irregularly irregular, s
    irr = rr_features(af)[:, 1]
    assert np.nanmin(irr[5:-5]) > 0.15
    # Gated: the ratios of irregular neighbourhoods are dropped (NaN).
    assert np.isnan(rr_ratio(af, irregular_max=0.15)).all()
    steady = rr_ratio(beats_with_one_early(n=40), irregular_max=0.15)
    assert steady[15] == pytest.approx(0.7, abs=0.03)
    assert np.isnan(rr_features(np.array([0.0, 1.0]))).all()


def test_threshold_fit_finds_most_pacs_with_ppv_floor():
    rng = np.random.default_rng(0)
    # 100 PACs at ratio ~0.7 in regular rhythms; 900 normal beats at ~1.0 with a
    # tail of early ones; 300 more in atrial fibrillation, early half the time.
    ratio = np.r_[
        rng.normal(0.7, 0.03, 100),
        rng.normal(1.0, 0.08, 900),
        rng.uniform(0.5, 1.5, 300),
    ]
    irr = np.r_[np.full(1000, 0.03), np.full(300, 0.25)]
    y = np.r_[np.full(100, PAC), np.full(1200, NORMAL)]
    probs = np.zeros((1300, len(CLASSES)), np.float32)
    probs[:, NORMAL] = 1.0  # the picture calls every beat Normal
    t, g, sweep = threshold_fit(np.c_[ratio, irr], y, probs)
    assert g is not None and 0.03 < g <= 0.25  # AF gated off
    row = {(s["threshold"], s["irregular_max"]): s for s in sweep}
    assert row[(t, g)]["ppv"] >= 0.5 and row[(t, g)]["sensitivity"] > 0.95
    # Without the gate, AF's early beats keep PPV under 50% at that threshold.
    assert row[(t, None)]["ppv"] < 0.5
    best = max(s["sensitivity"] for s in sweep if s["ppv"] >= 0.5)
    assert row[(t, g)]["sensitivity"] == best


class _NormalEverywhere:
    """A stand-in model that calls every picture Normal, with a rhythm step."""

    spec = RenderSpec()
    pac_ratio_threshold = 0.8
    irregular_max = None

    def predict_arrays(self, images: np.ndarray) -> np.ndarray:
        p = np.full((len(images), len(CLASSES)), 0.02, np.float32)
        p[:, NORMAL] = 0.9
        return p


def test_signal_beats_get_the_rhythm_step():
    t = beats_with_one_early(n=20)[1:] + 0.5  # s, first beat at 1.3 s
    x = np.arange(int((t[-1] + 1.0) * FS)) / FS
    sig = np.zeros_like(x)
    for p in t:
        sig += np.exp(-0.5 * ((x - p) / 0.01) ** 2)
    table = signal_beats_classify(_NormalEverywhere(), sig, FS)
    called = np.array(table.predicted)
    found_early = np.argmin(np.abs(table.time_s - t[14]))
    assert abs(table.time_s[found_early] - t[14]) < 0.05
    assert called[found_early] == "Premature Atrial Contraction"
    assert (np.delete(called, found_early) == "Normal").all()


@needs_data
def test_fit_rhythm_on_a_run(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    res = rhythm_fit_run(run, DATA, folds=2)
    assert 0.6 <= res["pac_ratio_threshold"] <= 0.95
    got = rhythm_read(run)
    assert got["pac_ratio_threshold"] == res["pac_ratio_threshold"]
    assert got["irregular_max"] == res["irregular_max"]
    saved = json.loads((run / RHYTHM_FILE).read_text())
    # Rule and learnt stage are both fitted and scored; the one chosen on the
    # training beats is the one applied.
    assert saved["use"] in ("rule", "learnt") and res["use"] == saved["use"]
    assert (got["stage"] is not None) == (saved["use"] == "learnt")
    assert set(res["compared"]) == {"rule", "learnt"}
    assert 0 <= res["compared"]["learnt"]["pac_sensitivity"] <= 1
    assert saved["pac_ratio_threshold"] == res["pac_ratio_threshold"]
    assert saved["folds"] == 2 and "out-of-fold" in saved["fitted_on"]
    # Two fold runs, each trained on the other fold's records and finished.
    fold_runs = sorted(
        p
        for p in (run / "rhythm_folds" / "k2").iterdir()
        if p.is_dir() and "-dataset" not in p.name
    )
    assert len(fold_runs) == 2
    # Their predictions are kept, and a second fit reuses them: no new training.
    assert (run / "rhythm_folds" / "oof-2.csv").exists()
    again = rhythm_fit_run(run, DATA, folds=2)
    assert again["pac_ratio_threshold"] == res["pac_ratio_threshold"]
    assert all(p.exists() for p in fold_runs)  # retraining would replace them
    for fr in fold_runs:
        assert json.loads((fr / "status.json").read_text())["state"] == "finished"
    for d in sorted((run / "rhythm_folds" / "k2").glob("fold*-dataset")):
        parts = pd.read_csv(d / "manifest.csv", dtype={"record": str})
        seen = set(parts.query("split == 'test'").record)
        assert not seen & set(parts.query("split == 'train'").record)
    m = json.loads((run / "metrics.json").read_text())
    assert m["rr_context"]["per_class"].keys() == set(CLASSES)
    assert 0 <= m["rr_context"]["accuracy"] <= 1 and m["accuracy"]  # both kept
    assert Predictor(run).pac_ratio_threshold == res["pac_ratio_threshold"]
    # The CLI prints the sweep and the test table.
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "ecg_model",
            "fit-rhythm",
            str(run),
            "--data-dir",
            str(DATA),
            "--folds",
            "0",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "ratio < 0.60" in out.stdout and "rhythm.json" in out.stdout
    assert "the run's own model" in out.stdout


def test_learnt_stage_calls_early_normal_looking_beats_pac():
    """Fitted on beats the picture calls Normal, the stage learns what the rule
    says: early (RR ratio ~0.7) in a regular rhythm is a PAC, on time is not."""
    from ecg_model.training.rhythm_fit import stage_fit

    rng = np.random.default_rng(0)
    n = 2000
    y = np.where(rng.random(n) < 0.15, PAC, NORMAL)
    p = np.full((n, len(CLASSES)), 0.02)
    p[:, NORMAL] = 0.9
    ratio = np.where(y == PAC, rng.normal(0.7, 0.05, n), rng.normal(1.0, 0.05, n))
    rr = np.stack([ratio, rng.uniform(0.01, 0.05, n)], axis=1)
    stage = stage_fit(p, rr, y)
    assert len(stage["coef"]) == len(CLASSES) == len(stage["intercept"])
    out = stage_apply(p, rr, stage)
    assert (out.argmax(axis=1) == y).mean() > 0.97
    np.testing.assert_allclose(out.sum(axis=1), 1, atol=1e-5)
    # No RR ratio (a first beat, a single picture): the picture's answer stands.
    rr[:5, 0] = np.nan
    np.testing.assert_allclose(stage_apply(p, rr, stage)[:5], p[:5], atol=1e-6)
    # Classes never seen in fitting are never predicted.
    assert set(out.argmax(axis=1)) <= {NORMAL, PAC}
