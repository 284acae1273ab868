"""A measured QRS: each beat's onset, offset and duration, as a cardiologist
reads a bundle branch block (QRS of 120 ms or more in a beat conducted on time).

The delineator is NeuroKit2's discrete-wavelet method (``ecg_delineate``,
``method="dwt"``, Martinez et al. 2004): wfdb-python detects QRS complexes
(``xqrs``, ``gqrs``) but does not delineate them, and NeuroKit2's ``peak``
method gives no QRS onset (``ECG_R_Onsets``) in the version required here.
What the measure is worth on each database, class by class, is written by
``python -m ecg_model qrs-widths`` (``results/qrs_widths_train.json``), not
assumed.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from .dataset import beats_sample
from .render import RenderSpec
from .signals import qrs_detect

#: The QRS duration that defines a complete bundle branch block, ms.
BLOCK_QRS_MS = 120.0
#: Durations outside this are a failed delineation, ms (none is measured).
QRS_MS_RANGE = (40.0, 250.0)


def qrs_delineate(
    sig: np.ndarray, fs: float, rpeaks: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Onset, offset and duration of the QRS complex of each beat.

    Parameters
    ----------
    sig : np.ndarray
        One lead, mV, shape ``(sig_len,)``.
    fs : float
        Sampling rate, Hz.
    rpeaks : np.ndarray
        R peaks, samples, shape ``(n,)``: every beat of the signal (the
        delineator's search windows follow the rate their intervals give).

    Returns
    -------
    onset, offset : np.ndarray
        QRS onset and offset, samples (float), shape ``(n,)``; NaN where the
        delineator found none.
    qrs_ms : np.ndarray
        Duration, ms, shape ``(n,)``; NaN where not measured or outside
        :data:`QRS_MS_RANGE`.
    """
    import neurokit2 as nk

    given = np.asarray(rpeaks, np.int64)

    def unmeasured() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return tuple(np.full(given.size, np.nan) for _ in range(3))

    if given.size == 0:
        return unmeasured()
    # The delineator needs them in order and once each; answers go back to
    # the order given.
    rpeaks, back = np.unique(given, return_inverse=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NeuroKit2's notes on short signals
            _, waves = nk.ecg_delineate(
                np.asarray(sig, np.float64),
                rpeaks=rpeaks,
                sampling_rate=fs,
                method="dwt",
            )
        on = np.asarray(waves["ECG_R_Onsets"], np.float64)
        off = np.asarray(waves["ECG_R_Offsets"], np.float64)
    except Exception:  # a delineation that fails measures nothing; it never stops
        return unmeasured()
    if on.size != rpeaks.size or off.size != rpeaks.size:
        return unmeasured()
    # Onset before the R peak, offset after it, else not this beat's QRS.
    bad = ~((on < rpeaks) & (off > rpeaks))
    on[bad], off[bad] = np.nan, np.nan
    ms = (off - on) * 1000.0 / fs
    ms[~((ms >= QRS_MS_RANGE[0]) & (ms <= QRS_MS_RANGE[1]))] = np.nan
    return on[back], off[back], ms[back]


def qrs_widths(
    root: str | os.PathLike,
    part: str = "train",
    per_class: int = 300,
    seed: int = 0,
    databases: tuple[str, ...] = (),
    spec: RenderSpec = RenderSpec(),
) -> dict:
    """QRS durations measured on labelled beats, by database and class.

    Up to ``per_class`` beats of each class (:func:`~ecg_model.data.dataset.
    beats_sample` of the patient protocol's ``part``), each delineated in its
    record at ``spec.fs``. Returns ``{db: {class: {n, measured, median_ms,
    q25_ms, q75_ms, share_120}}}`` (``share_120``: share of the measured beats
    at or over :data:`BLOCK_QRS_MS`).
    """
    rng = np.random.default_rng(seed)
    df, sigs = beats_sample(root, part, per_class, rng, spec)
    if databases:
        df = df[df["database"].isin(databases)]
    df = df.assign(qrs_ms=np.nan)
    for (db, rn), sub in df.groupby(["database", "record"]):
        sig, picked = sigs[(db, rn)], sub["sample"].to_numpy()
        # Every beat of the record goes to the delineator (its windows follow
        # the rate): the detector's, each picked beat in place of the
        # detection within 50 ms of it.
        found = qrs_detect(sig, spec.fs) if sig.size > spec.fs else np.zeros(0, int)
        near = int(0.05 * spec.fs)
        if found.size:
            gap = np.abs(found[:, None] - picked[None, :]).min(axis=1)  # (n_found,)
            found = found[gap > near]
        beats = np.concatenate([found, picked])
        ms = qrs_delineate(sig, spec.fs, beats)[2][found.size :]
        df.loc[sub.index, "qrs_ms"] = ms
    out: dict = {}
    for (db, c), sub in df.groupby(["database", "class"]):
        v = sub["qrs_ms"].dropna().to_numpy()
        out.setdefault(db, {})[c] = {
            "n": int(len(sub)),
            "measured": int(v.size),
            "median_ms": round(float(np.median(v)), 1) if v.size else None,
            "q25_ms": round(float(np.percentile(v, 25)), 1) if v.size else None,
            "q75_ms": round(float(np.percentile(v, 75)), 1) if v.size else None,
            "share_120": round(float(np.mean(v >= BLOCK_QRS_MS)), 3)
            if v.size
            else None,
        }
    return out
