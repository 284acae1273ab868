"""Signals: cleaning on synthetic ECG-like signals, reading real records."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from ecg_model.core.errors import EcgError
from ecg_model.data.databases.mitdb import DS1, DS2, PACED_RECORDS
from ecg_model.data.signals import (
    beats_extract,
    episodes_vf,
    noise_make,
    record_read,
    signal_clean,
    signal_resample,
    vf_windows,
)

from .conftest import DATA, needs_data


def synthetic_ecg(
    fs: float, dur_s: float, hr_bpm: float = 72.0
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian 'QRS' spikes (1 mV, 20 ms wide) at a steady rate -> (sig, peaks)."""
    t = np.arange(int(fs * dur_s)) / fs
    rr = 60.0 / hr_bpm
    peaks = np.arange(0.5, dur_s - 0.5, rr)
    sig = np.zeros_like(t)
    for p in peaks:
        sig += np.exp(-0.5 * ((t - p) / 0.01) ** 2)
    return sig, np.round(peaks * fs).astype(int)


def test_clean_removes_baseline_wander_keeps_qrs():
    fs = 250.0
    sig, peaks = synthetic_ecg(fs, 20)
    t = np.arange(sig.size) / fs
    wander = 0.8 * np.sin(2 * np.pi * 0.15 * t)  # breathing-rate drift, 0.8 mV
    out = signal_clean(sig + wander, fs)
    # The drift is gone: the signal between beats stays near zero ...
    quiet = np.ones(sig.size, bool)
    for p in peaks:
        quiet[max(0, p - 40) : p + 40] = False
    assert np.abs(out[quiet][500:-500]).max() < 0.15
    # ... and every QRS keeps most of its 1 mV height, at the same place (+-8 ms).
    for p in peaks[2:-2]:
        win = out[p - 10 : p + 11]
        assert win.max() > 0.6
        assert abs(int(win.argmax()) - 10) <= 2


def test_clean_handles_nan_and_short_signals():
    fs = 250.0
    sig, _ = synthetic_ecg(fs, 10)
    sig[100:150] = np.nan
    out = signal_clean(sig, fs)
    assert np.isfinite(out).all()
    short = signal_clean(np.ones(100), fs)
    assert short.shape == (100,) and np.allclose(short, 0)


def test_resample_keeps_duration_and_beat_times():
    sig, peaks = synthetic_ecg(360.0, 10)
    out = signal_resample(sig, 360.0, 250.0)
    assert abs(out.size - sig.size * 250 / 360) <= 1
    p = int(round(peaks[3] * 250 / 360))
    assert abs(int(np.argmax(out[p - 5 : p + 6])) - 5) <= 1


def test_splits_are_record_disjoint():
    assert not set(DS1) & set(DS2)
    assert not set(PACED_RECORDS) & (set(DS1) | set(DS2))
    assert len(DS1) == len(DS2) == 22


@needs_data
def test_record_read_mitdb():
    rec = record_read(DATA / "mitdb" / "100", fs=250.0)
    assert rec.lead == "MLII" and rec.fs == 250.0
    assert abs(rec.sig.size - 650000 * 250 / 360) <= 2
    b = beats_extract(rec, 300, 300)
    # Record 100: 2239 N, 33 A, 1 V (a few at the edges are skipped).
    assert b.label.count("Premature Atrial Contraction") == 33
    assert 2230 <= b.label.count("Normal") <= 2239
    assert b.skipped["edge"] >= 1
    # Annotated R peaks sit on large deflections of the cleaned signal.
    amp = np.abs(rec.sig[b.sample[:200]])
    assert np.median(amp) > 5 * np.median(np.abs(rec.sig))


@needs_data
def test_vf_episodes_vfdb():
    rec = record_read(DATA / "vfdb" / "418", fs=250.0)
    eps = episodes_vf(rec)
    assert eps and all(e > s for s, e in eps)
    total_s = sum(e - s for s, e in eps) / rec.fs
    assert 200 < total_s < 300  # 246 s of VF/VFL in record 418
    c = vf_windows(rec, 300, 300, 250)
    assert all(any(s <= x - 300 and x + 300 <= e for s, e in eps) for x in c)


@needs_data
def test_record_without_annotations_is_a_clear_error(tmp_path):
    for ext in ("hea", "dat"):
        shutil.copy(DATA / "mitdb" / f"100.{ext}", tmp_path / f"100.{ext}")
    with pytest.raises(EcgError, match="no annotation file"):
        record_read(tmp_path / "100")
    with pytest.raises(EcgError, match="record not found"):
        record_read(tmp_path / "999")


def test_noise_is_recording_like_repeatable_and_at_the_asked_ratio():
    from ecg_model.data.signals import NOISE_SEGMENT_S, NOISE_SNR_DB

    fs = 250.0
    sig, _ = synthetic_ecg(fs, 120.0)
    sig = signal_clean(sig, fs)
    n = noise_make(sig, fs, "db/1", seed=3)
    assert n.shape == sig.shape and n.dtype == np.float32
    # The same recording and seed give the same noise; another gives other noise.
    assert np.array_equal(n, noise_make(sig, fs, "db/1", seed=3))
    assert not np.allclose(n, noise_make(sig, fs, "db/2", seed=3))
    # Each segment's signal-to-noise ratio lies in the drawn range (a little
    # outside it where the ratio changes between segments).
    seg = int(NOISE_SEGMENT_S * fs)
    snr = [
        20 * np.log10(sig[i : i + seg].std() / n[i : i + seg].std())
        for i in range(0, sig.size - seg + 1, seg)
    ]
    lo, hi = NOISE_SNR_DB
    assert lo - 2 < min(snr) and max(snr) < hi + 2 and np.ptp(snr) > 4
    # Its power is in electrode motion's band (0.5-5 Hz): slow swings, with
    # nothing in the band of a QRS complex's notches (above 15 Hz).
    f = np.fft.rfftfreq(n.size, 1 / fs)
    p = np.abs(np.fft.rfft(n)) ** 2
    assert p[(f >= 0.3) & (f <= 7)].sum() / p.sum() > 0.95
    assert p[f >= 15].sum() / p.sum() < 0.001
