"""Metrics against scikit-learn, bootstrap intervals, atomic writes."""

from __future__ import annotations

import os

import numpy as np
import pytest
from sklearn.metrics import f1_score, recall_score

from ecg_model.core.classes import BEAT_SYMBOLS, CLASSES
from ecg_model.core.errors import EcgError
from ecg_model.core.io import atomic_write_json, atomic_write_text, json_read
from ecg_model.training.evaluate import baseline_compute, metrics_compute, metrics_table


def test_class_contract():
    assert CLASSES == (
        "Normal",
        "Left Bundle Branch Block",
        "Premature Atrial Contraction",
        "Premature Ventricular Contraction",
        "Right Bundle Branch Block",
        "Ventricular Fibrillation",
    )
    assert set(BEAT_SYMBOLS.values()) == set(CLASSES)


def test_metrics_match_sklearn_and_ci_brackets():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 6, 3000)
    p = np.where(rng.random(3000) < 0.85, y, rng.integers(0, 6, 3000))
    m = metrics_compute(y, p, n_boot=500)
    assert m["macro_f1"] == pytest.approx(f1_score(y, p, average="macro"))
    assert m["macro_recall"] == pytest.approx(recall_score(y, p, average="macro"))
    for k in ("accuracy", "macro_recall", "macro_f1"):
        lo, hi = m["ci"][k]
        assert lo < m[k] < hi and hi - lo < 0.05
    r = m["per_class"]["Normal"]
    assert r["recall_ci"][0] < r["recall"] < r["recall_ci"][1]
    assert "accuracy" in metrics_table(m)


def test_absent_class_left_out_of_macro():
    y = np.array([0, 0, 1, 1])
    m = metrics_compute(y, y, n_boot=10)
    assert (
        m["macro_recall"] == 1.0
        and m["per_class"]["Ventricular Fibrillation"]["support"] == 0
    )


def test_baseline_is_majority():
    b = baseline_compute(np.array([0, 0, 0, 2]), np.array([0, 2, 2, 2]))
    assert b["predicts"] == "Normal" and b["accuracy"] == 0.25
    assert b["macro_recall"] == pytest.approx(0.5)


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "status.json"
    atomic_write_json(target, {"state": "running"})

    def full_disk(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(EcgError, match="No space left on device"):
        atomic_write_json(target, {"state": "finished"})
    assert json_read(target) == {"state": "running"}
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]


def test_json_read_errors(tmp_path):
    with pytest.raises(EcgError, match="file not found"):
        json_read(tmp_path / "x.json")
    atomic_write_text(tmp_path / "bad.json", "{oops")
    with pytest.raises(EcgError, match="not readable JSON"):
        json_read(tmp_path / "bad.json")


def test_patient_bootstrap_is_wider_than_beat_bootstrap() -> None:
    """Beats of one patient are alike: when patients differ, intervals over
    patients must be wider than intervals that treat beats as independent."""
    from ecg_model.training.evaluate import metrics_compute

    rng = np.random.default_rng(0)
    y = np.zeros(4000, int)
    groups = np.repeat(np.arange(8), 500)
    # Half the patients are read almost perfectly, half poorly.
    hit = rng.random(4000) < np.where(groups % 2 == 0, 0.98, 0.6)
    pred = np.where(hit, 0, 1)
    beats = metrics_compute(y, pred)
    patients = metrics_compute(y, pred, groups=groups)
    assert patients["accuracy"] == beats["accuracy"]
    w_b = np.diff(beats["ci"]["accuracy"])[0]
    w_p = np.diff(patients["ci"]["accuracy"])[0]
    assert w_p > 3 * w_b
    assert patients["ci_beats"] == beats["ci"]
    assert "8 test patients" in patients["ci_method"]
    lo, hi = patients["per_class"]["Normal"]["recall_ci"]
    assert lo <= patients["per_class"]["Normal"]["recall"] <= hi


def test_metrics_refresh_recomputes_from_predictions_and_keeps_the_rest(tmp_path):
    """An older run's figures get this version's intervals (over patients) and
    per-database figures from its saved predictions; nothing else changes."""
    import json

    import pandas as pd

    from ecg_model.training.evaluate import metrics_refresh

    rng = np.random.default_rng(1)
    n = 600
    y = rng.integers(0, 6, n)
    p = np.where(rng.random(n) < 0.7, y, rng.integers(0, 6, n))
    pd.DataFrame(
        {
            "database": np.where(np.arange(n) < 300, "mitdb", "svdb"),
            "record": [str(100 + i % 6) for i in range(n)],
            "true_class": [CLASSES[k] for k in y],
            "predicted_class": [CLASSES[k] for k in p],
        }
    ).to_csv(tmp_path / "test_predictions.csv", index=False)
    old = {"protocol": "patient", "n_train": 5, "rr_context": {"x": 1}}
    (tmp_path / "metrics.json").write_text(json.dumps(old))
    m = metrics_refresh(tmp_path)
    assert m["n_train"] == 5 and m["rr_context"] == {"x": 1}
    assert m["accuracy"] == pytest.approx((y == p).mean())
    assert "test patients" in m["ci_method"] and set(m["by_database"]) == {
        "mitdb",
        "svdb",
    }
    assert json.loads((tmp_path / "metrics.json").read_text())["n"] == n
