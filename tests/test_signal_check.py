"""Signal check: windows cut where the pictures were drawn, one tiny fit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ecg_model.core.classes import CLASSES
from ecg_model.core.errors import EcgError
from ecg_model.core.io import json_read
from ecg_model.data.dataset import manifest_read
from ecg_model.data.render import RenderSpec
from ecg_model.training.config import TrainConfig
from ecg_model.training.signal_check import (
    dataset_windows,
    signal_check,
    signal_check_table,
    windows_cut,
)

from .conftest import DATA, needs_data


def test_windows_cut_centres_the_beat_and_scales_each_window() -> None:
    spec = RenderSpec()  # 250 Hz, 1.2 s each side: 600 samples
    fs = spec.fs
    t = np.arange(int(10 * fs)) / fs

    def spikes(times, heights):  # narrow spikes in mV on a 0.3 mV offset
        return 0.3 + sum(
            h * np.exp(-(((t - b) / 0.01) ** 2)) for b, h in zip(times, heights)
        )

    # 1 mV spikes at 75 bpm, the first 0.2 s into the record.
    beats = np.arange(0.2, 10, 0.8)
    centres = np.round(beats * fs).astype(int)
    w = windows_cut(spikes(beats, np.ones(beats.size)), centres, spec)
    assert w.shape == (centres.size, spec.before + spec.after) == (13, 600)
    # Every beat sits at its window's centre and tops it; each window spans 1
    # with its baseline at 0.
    np.testing.assert_allclose(w[:, spec.before], w.max(axis=1), atol=1e-5)
    np.testing.assert_allclose(w.max(axis=1) - w.min(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.median(w, axis=1), 0.0, atol=1e-5)
    # Before the first beat the window is flat, as the picture's blank paper.
    assert np.ptp(w[0, : spec.before - 60]) < 1e-6
    # Amplitude is kept within a window: a 2 mV beat's 1 mV neighbour reads half.
    w = windows_cut(spikes([4.0, 4.8], [2.0, 1.0]), np.array([1000]), spec)
    assert w[0, spec.before] == pytest.approx(1.0, abs=0.01)
    assert w[0, spec.before + 200] == pytest.approx(0.5, abs=0.01)  # 0.8 s on


@needs_data
def test_dataset_windows_follow_the_manifest_beats(tiny_dataset) -> None:
    x, meta, spec = dataset_windows(tiny_dataset, DATA, workers=2)
    src = manifest_read(tiny_dataset)
    assert x.shape == (len(src), spec.before + spec.after)
    assert len(meta) == len(src) and np.isfinite(x).all()
    # mitdb 100's Normal beats: the R peak (upright in MLII) at the centre,
    # within 40 ms, on the median window.
    n100 = (meta["record"].astype(str) == "100") & (meta["class"] == "Normal")
    med = np.median(x[n100.to_numpy()], axis=0)
    assert abs(int(med.argmax()) - spec.before) <= 0.04 * spec.fs
    assert med.max() > 0.5


@needs_data
def test_signal_check_scores_the_test_beats_beside_the_picture(
    tiny_dataset, tiny_run, tmp_path
) -> None:
    out = tmp_path / "check.json"
    m = signal_check(tiny_dataset, TrainConfig(epochs=1, batch_size=64), DATA, out)
    src = manifest_read(tiny_dataset)
    assert m["n"] == int((src["split"] == "test").sum())
    assert m["n_train"] + m["n_val"] <= int((src["split"] == "train").sum())
    assert m["protocol"] == "random" and m["config"]["epochs"] == 1
    assert sum(d["support"] for d in m["per_class"].values()) == m["n"]
    # Recall per record: mitdb 207 holds the bundle branch blocks.
    assert "mitdb/207" in m["recall_by_record"]["Left Bundle Branch Block"]
    assert all(0 <= v <= 1 for d in m["recall_by_record"].values() for v in d.values())
    assert json.loads(out.read_text()) == json.loads(json.dumps(m))
    table = signal_check_table(m, json_read(tiny_run / "metrics.json"))
    assert all(c in table for c in CLASSES) and "picture recall" in table
    assert "picture" not in signal_check_table(m)


@needs_data
def test_signal_check_names_a_missing_record(tiny_dataset, tmp_path) -> None:
    with pytest.raises(EcgError, match="record not found"):
        dataset_windows(tiny_dataset, tmp_path)
