"""The measured QRS (issue 25, part 2): NeuroKit2's delineator on synthetic
beats of known QRS duration."""

from __future__ import annotations

import numpy as np
import pytest

from ecg_model.data.qrs import BLOCK_QRS_MS, qrs_delineate

FS = 250.0


def beats(qrs_ms: float, hr: float = 70.0, dur_s: float = 20.0, fs: float = FS):
    """A synthetic lead of P, Q, R, S, T waves (Gaussians, mV) whose Q-R-S
    widths scale with ``qrs_ms``; returns the signal and its R peaks."""
    t = np.arange(int(dur_s * fs)) / fs
    sig, peaks, k = np.zeros_like(t), [], qrs_ms / 90.0
    waves = (
        (-0.17, 0.12, 0.025),  # P: centre (s from R), amplitude (mV), width (s)
        (-0.025 * k, -0.1, 0.008 * k),  # Q
        (0.0, 1.0, 0.012 * k),  # R
        (0.028 * k, -0.25, 0.009 * k),  # S
        (0.25, 0.3, 0.04),  # T
    )
    for b in np.arange(0.5, dur_s - 0.5, 60.0 / hr):
        peaks.append(int(round(b * fs)))
        for mu, a, sd in waves:
            sig += a * np.exp(-0.5 * ((t - b - mu) / sd) ** 2)
    return sig, np.array(peaks)


@pytest.mark.parametrize("qrs_ms", [80.0, 100.0, 120.0, 140.0, 160.0])
def test_a_qrs_is_measured_within_10_ms_and_a_block_reads_120_or_more(qrs_ms):
    sig, peaks = beats(qrs_ms)
    on, off, ms = qrs_delineate(sig, FS, peaks)
    assert np.isnan(ms).mean() < 0.1
    assert abs(np.nanmedian(ms) - qrs_ms) <= 10
    assert (np.nanmedian(ms) >= BLOCK_QRS_MS) == (qrs_ms >= BLOCK_QRS_MS)
    ok = ~np.isnan(on)
    assert (on[ok] < peaks[ok]).all() and (off[ok] > peaks[ok]).all()


def test_beats_given_out_of_order_get_their_own_answers():
    sig, peaks = beats(100.0)
    _, _, ms = qrs_delineate(sig, FS, peaks)
    order = np.random.default_rng(0).permutation(peaks.size)
    _, _, ms2 = qrs_delineate(sig, FS, peaks[order])
    np.testing.assert_array_equal(ms2, ms[order])


def test_nothing_to_measure_gives_nan_never_an_error():
    on, off, ms = qrs_delineate(np.zeros(2500), FS, np.array([500, 1000]))
    assert np.isnan(ms).all()
    assert all(a.size == 0 for a in qrs_delineate(np.zeros(100), FS, np.array([])))


def test_every_beat_of_a_signal_gets_its_qrs_in_ms_beside_its_class(default_model):
    from ecg_model.inference.predict import Predictor, beats_frame

    sig, peaks = beats(150.0, fs=360.0)  # a wide QRS, at another rate
    table = Predictor(default_model).predict_signal(sig, 360.0)
    df = beats_frame(table)
    assert "qrs_ms" in df.columns and len(df) >= len(peaks) - 2
    assert abs(np.nanmedian(df["qrs_ms"]) - 150) <= 15
    # Onset and offset lie around each beat, on the signal's time axis.
    ok = ~np.isnan(table.qrs_on_s)
    assert (table.qrs_on_s[ok] < table.time_s[ok]).all()
    assert (table.qrs_off_s[ok] > table.time_s[ok]).all()
