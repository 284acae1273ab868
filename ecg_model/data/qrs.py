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


#: Shape features of one lead's QRS, in the order of :func:`qrs_shape`'s
#: columns. Amplitudes are shares of the QRS's peak-to-peak amplitude, so a
#: lead's gain does not matter; times are ms.
SHAPE_FEATURES = (
    "env_ms",  # width of the QRS slope envelope (above 20% of its peak), ms
    "amp_mv",  # peak-to-peak amplitude over the QRS, mV
    "pos_frac",  # (max - baseline) / peak-to-peak: 1 all upward, 0 all downward
    "initial",  # mean of the first 30 ms over peak-to-peak, signed
    "terminal",  # mean of the last 40 ms over peak-to-peak, signed (RBBB's R'/S)
    "peak_at",  # where the largest deflection lies, share of the QRS (late in LBBB)
    "notches",  # turning points with prominence >= 15% of peak-to-peak
    "net_area",  # mean of (signal - baseline) over the QRS, over peak-to-peak
    "st_t",  # mean 60-200 ms after the QRS over peak-to-peak (discordant T)
    "energy_ms",  # span of the central 90% of the squared slope near the R peak, ms
    "slur",  # share of the QRS deflected >= 20% but changing at < 30% of peak slope
)
#: Leads whose shape is measured, where a signal has them; V1 and V6 are where
#: the two blocks differ most (rSR' in V1 for RBBB, broad notched R in V6 and
#: I for LBBB, a slurred S in V6 and I for RBBB), lead II is every record's lead.
SHAPE_LEADS = ("II", "V1", "V6", "I")
#: A neighbouring lead that stands in for a missing one (mitdb's second lead is
#: V1, V2, V4 or V5): V2 shows RBBB's rSR' as V1 does, V5 LBBB's R as V6 does.
LEAD_STAND_INS = {"V1": ("V2",), "V6": ("V5",)}
#: Search window for the QRS around its R peak, s (a block's QRS reaches 180 ms).
QRS_SEARCH_S = (0.15, 0.2)


def qrs_envelope(
    sig: np.ndarray, fs: float, rpeaks: np.ndarray, level: float = 0.2
) -> tuple[np.ndarray, np.ndarray]:
    """QRS onset and offset from the slope envelope, samples (float), NaN at
    the edges.

    The absolute first difference, smoothed over 12 ms, is the envelope; the
    QRS is the run of samples around the R peak where it stays above ``level``
    of its peak within :data:`QRS_SEARCH_S`, gaps under 24 ms bridged (a notch
    is inside the QRS). A fallback and a second opinion for the wavelet
    delineator, which measures nothing on a share of wide beats.
    """
    x = np.asarray(sig, np.float64)
    env = np.convolve(np.abs(np.diff(x, prepend=x[:1])), np.ones(3) / 3, "same")
    before, after = (int(round(s * fs)) for s in QRS_SEARCH_S)
    gap = max(int(round(0.024 * fs)), 1)
    on = np.full(len(rpeaks), np.nan)
    off = np.full(len(rpeaks), np.nan)
    for i, r in enumerate(np.asarray(rpeaks, np.int64)):
        a, b = r - before, r + after
        if a < 0 or b > x.size:
            continue
        w = env[a:b]  # (before + after,)
        k = r - a
        above = w >= level * w.max()
        # Grow left and right from the R peak, over gaps shorter than `gap`.
        lo = k
        while lo > 0 and above[max(lo - gap, 0) : lo].any():
            lo -= 1
        hi = k
        while hi < w.size - 1 and above[hi + 1 : hi + 1 + gap].any():
            hi += 1
        on[i], off[i] = a + lo, a + hi
    return on, off


def qrs_shape(
    sig: np.ndarray,
    fs: float,
    rpeaks: np.ndarray,
    on: np.ndarray | None = None,
    off: np.ndarray | None = None,
) -> np.ndarray:
    """Shape features of each beat's QRS in one lead (:data:`SHAPE_FEATURES`).

    Parameters
    ----------
    sig : np.ndarray
        One lead, mV, shape ``(sig_len,)``.
    fs : float
        Sampling rate, Hz.
    rpeaks : np.ndarray
        R peaks, samples, shape ``(n,)``.
    on, off : np.ndarray, optional
        QRS onset and offset, samples, shape ``(n,)`` (the main lead's, or the
        delineator's). The QRS read is from the earlier onset to the later
        offset of these and this lead's envelope (:func:`qrs_envelope`), as a
        QRS is measured from its first onset to its last offset over the
        leads: RBBB's R' in V1 may come after lead II's QRS has ended.

    Returns
    -------
    np.ndarray
        Shape ``(n, len(SHAPE_FEATURES))``, NaN where the beat is too near an
        edge or the lead is flat.
    """
    from scipy.signal import find_peaks

    x = np.asarray(sig, np.float64)
    r = np.asarray(rpeaks, np.int64)
    e_on, e_off = qrs_envelope(x, fs, r)
    on = e_on if on is None else np.fmin(np.asarray(on, np.float64), e_on)
    off = e_off if off is None else np.fmax(np.asarray(off, np.float64), e_off)
    out = np.full((r.size, len(SHAPE_FEATURES)), np.nan)
    ms = 1000.0 / fs
    slope = np.abs(np.diff(x, prepend=x[:1]))  # (sig_len,), mV a sample
    before, after = (int(round(t * fs)) for t in QRS_SEARCH_S)
    n30, n40 = max(int(round(0.03 * fs)), 1), max(int(round(0.04 * fs)), 1)
    st = (int(round(0.06 * fs)), int(round(0.2 * fs)))
    for i in range(r.size):
        if not (np.isfinite(on[i]) and np.isfinite(off[i])):
            continue
        a, b = int(on[i]), int(off[i]) + 1
        if a < n30 or b + st[1] > x.size or b - a < 3:
            continue
        base = float(np.median(x[max(a - n30, 0) : a]))  # PR segment, mV
        q = x[a:b] - base  # (qrs_len,)
        p2p = float(q.max() - q.min())
        if p2p < 0.02:  # a flat lead (under 20 uV) has no shape to read
            continue
        prom = 0.15 * p2p
        turns = find_peaks(q, prominence=prom)[0].size
        turns += find_peaks(-q, prominence=prom)[0].size
        # Energy width: where the squared slope near the R peak accumulates
        # from 5% to 95% (a wide QRS spreads it; one sharp spike does not).
        e = slope[max(r[i] - before, 0) : r[i] + after] ** 2
        c = np.cumsum(e) / max(e.sum(), 1e-12)
        energy = (np.searchsorted(c, 0.95) - np.searchsorted(c, 0.05)) * ms
        # Slurring: deflected from the baseline, yet changing slowly.
        sl = slope[a:b]
        slow = (np.abs(q) >= 0.2 * p2p) & (sl < 0.3 * sl.max())
        out[i] = (
            (e_off[i] - e_on[i]) * ms if np.isfinite(e_on[i] + e_off[i]) else np.nan,
            p2p,
            q.max() / p2p,
            q[:n30].mean() / p2p,
            q[-n40:].mean() / p2p,
            np.argmax(np.abs(q)) / max(q.size - 1, 1),
            turns,
            q.mean() / p2p,
            (x[b + st[0] : b + st[1]] - base).mean() / p2p,
            energy,
            slow.mean(),
        )
    return out


def lead_pick(leads: dict[str, np.ndarray], name: str) -> np.ndarray | None:
    """Lead ``name`` of a record's leads, its common spellings allowed (MLII is
    lead II; 'v1', 'V1 '); None where the record lacks it."""
    want = name.strip().upper()
    for k, v in leads.items():
        key = str(k).strip().upper()
        if key == want or (want == "II" and key == "MLII"):
            return v
    return None


#: Every column of :func:`beat_features`, in order.
BEAT_FEATURES = ("qrs_ms", *(f"{ld}_{f}" for ld in SHAPE_LEADS for f in SHAPE_FEATURES))


def beat_features(
    leads: dict[str, np.ndarray],
    fs: float,
    rpeaks: np.ndarray,
    main: str | None = None,
    delineated: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """What a cardiologist measures of each beat, from every lead a signal has.

    The pipeline: delineate the main lead (the wavelet delineator, as
    :func:`qrs_delineate`) -> its onset and offset bound the QRS in every lead
    -> each of :data:`SHAPE_LEADS` the signal has gives its shape
    (:func:`qrs_shape`); a lead it lacks gives NaN.

    Parameters
    ----------
    leads : dict
        Lead name -> signal, mV at ``fs``, each shape ``(sig_len,)``.
    fs : float
        Sampling rate, Hz.
    rpeaks : np.ndarray
        Every beat's R peak, samples, shape ``(n,)``.
    main : str, optional
        The lead the beats were found on (default: lead II, else the first).
    delineated : tuple, optional
        :func:`qrs_delineate`'s answer for the main lead, where the caller has
        it already (it is the slow step).

    Returns
    -------
    np.ndarray
        Shape ``(n, len(BEAT_FEATURES))``.
    """
    r = np.asarray(rpeaks, np.int64)
    out = np.full((r.size, len(BEAT_FEATURES)), np.nan)
    if not leads or r.size == 0:
        return out
    if main is None:
        main = "II" if lead_pick(leads, "II") is not None else next(iter(leads))
    sig = lead_pick(leads, main)
    if sig is None:
        sig = leads[main]
    on, off, out[:, 0] = delineated if delineated else qrs_delineate(sig, fs, r)
    k = len(SHAPE_FEATURES)
    for j, name in enumerate(SHAPE_LEADS):
        s = lead_pick(leads, name)
        for alt in LEAD_STAND_INS.get(name, ()):
            s = lead_pick(leads, alt) if s is None else s
        if name == "II" and s is None:
            s = sig  # the beats' own lead stands in for lead II
        if s is not None:
            out[:, 1 + j * k : 1 + (j + 1) * k] = qrs_shape(s, fs, r, on, off)
    return out
