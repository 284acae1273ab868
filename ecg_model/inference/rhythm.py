"""Rhythm context: a beat that looks normal but comes early is a PAC.

A premature atrial contraction has a normal-looking QRS; what marks it is that it
comes early. A 2.4 s picture shows the previous beat, but not the patient's own
rate, so the image model cannot tell a PAC at 80 bpm from a sinus beat at 80 bpm
(mitdb record 232, 80% of the patient protocol's test PACs, is exactly that). Where
the beats around it are known (a record, a CSV signal, a strip), the beat's
interval to the previous beat over the local mean interval says it (de Chazal et
al. 2004 used the same RR features).

The pipeline reads: beat times -> RR ratio and local irregularity -> beats the
image model calls Normal that come early enough, in a rhythm regular enough, are
called PAC (in atrial fibrillation every interval differs and there are no P
waves: an early beat there is no premature *atrial* contraction). The two numbers,
the ratio threshold and the irregularity limit, are fitted on the training records
only (``ecg_model.training.rhythm_fit``, on out-of-fold pictures) and kept
beside the model as ``rhythm.json``; this module only applies them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..core.classes import CLASSES
from ..core.errors import EcgError
from ..core.io import json_read

#: Intervals on each side averaged into the local mean RR.
LOCAL_BEATS = 16
RHYTHM_FILE = "rhythm.json"
NORMAL = CLASSES.index("Normal")
PAC = CLASSES.index("Premature Atrial Contraction")


def rr_features(beat_s: np.ndarray, local_beats: int = LOCAL_BEATS) -> np.ndarray:
    """Each beat's RR ratio and the local irregularity of the rhythm around it.

    Parameters
    ----------
    beat_s : np.ndarray
        Times of every beat of one signal, s, increasing, shape ``(n,)``.
    local_beats : int
        Intervals on each side of the beat that make its neighbourhood.

    Returns
    -------
    np.ndarray
        Shape ``(n, 2)``. Column 0, the ratio: the beat's preceding RR interval over
        the local mean RR; 1 for a beat on time, < 1 for an early one; NaN for the
        first beat and for signals with < 3 beats. Column 1, the irregularity: the
        median change from one RR interval to the next, over their mean, in the
        neighbourhood; ~0.02-0.05 in sinus rhythm with or without isolated early
        beats, 0.15-0.4 in atrial fibrillation; NaN with < 4 beats.
    """
    t = np.asarray(beat_s, dtype=np.float64)
    out = np.full((t.size, 2), np.nan)
    if t.size < 3:
        return out
    rr = np.diff(t)  # (n - 1,): rr[i - 1] precedes beat i
    i = np.arange(t.size)
    lo = np.clip(i - local_beats, 0, rr.size)
    hi = np.clip(i + local_beats, 0, rr.size)
    # Local mean of intervals rr[lo:hi] by cumulative sums, shape (n,).
    c = np.r_[0.0, np.cumsum(rr)]
    local = (c[hi] - c[lo]) / np.maximum(hi - lo, 1)
    out[1:, 0] = rr / local[1:]
    if rr.size >= 3:
        # Successive changes d[j] between rr[j] and rr[j + 1], shape (n - 2,);
        # the median over the same neighbourhood, one window per beat.
        d = np.abs(np.diff(rr)) / ((rr[1:] + rr[:-1]) / 2)
        hi_d = np.clip(hi - 1, 1, d.size)
        lo_d = np.minimum(lo, hi_d - 1)
        out[:, 1] = [np.median(d[a:b]) for a, b in zip(lo_d, hi_d)]
    return out


def rr_gate(rr: np.ndarray, irregular_max: float | None) -> np.ndarray:
    """Ratios of :func:`rr_features` rows, NaN where more irregular than the limit.

    In atrial fibrillation there are no P waves and every interval differs, so
    an early beat there is not a premature *atrial* contraction: gated out, so
    :func:`rhythm_adjust` leaves it be.
    """
    if irregular_max is None:
        return rr[:, 0]
    return np.where(np.nan_to_num(rr[:, 1], nan=0.0) < irregular_max, rr[:, 0], np.nan)


def rhythm_describe(
    threshold: float, irregular_max: float | None, use: str | None = "rule"
) -> str:
    """The rhythm step in words, for pages, notes and the model card.

    ``use``: ``"rule"`` (or None) or ``"learnt"`` (the stage that replaced it).
    """
    if use == "learnt":
        return (
            "a learnt stage (logistic regression over the picture's six "
            "probabilities, the beat's RR interval over the local mean and the "
            "rhythm's irregularity, fitted on out-of-fold training beats) gives "
            "each beat's class"
        )
    gate = (
        f" in a regular rhythm (local RR irregularity < {irregular_max:.2f})"
        if irregular_max is not None
        else ""
    )
    return (
        f"a beat the picture calls Normal whose RR interval is below {threshold:.2f} "
        f"of the local mean RR{gate} is called a PAC"
    )


def rhythm_adjust(
    probs: np.ndarray, ratio: np.ndarray, threshold: float | None
) -> np.ndarray:
    """Call the early beats the image model calls Normal PAC.

    For those beats the Normal and PAC probabilities are swapped, so PAC leads
    with the confidence the picture had in a narrow, normal-looking beat and the
    six still sum to 1. ``threshold`` None or NaN ratios leave beats as they are.

    Returns
    -------
    np.ndarray
        A copy of ``probs``, shape ``(n, 6)``.
    """
    out = np.array(probs, dtype=np.float32, copy=True)
    if threshold is None or len(out) == 0:
        return out
    r = np.asarray(ratio, dtype=np.float64)
    early = (out.argmax(axis=1) == NORMAL) & (np.nan_to_num(r, nan=np.inf) < threshold)
    out[early, NORMAL], out[early, PAC] = probs[early, PAC], probs[early, NORMAL]
    return out


#: Inputs of the learnt rhythm stage, in order (see :func:`stage_features`).
STAGE_FEATURES = (
    *(f"log p({c})" for c in CLASSES),
    "rr ratio",
    "irregularity",
    "rr ratio x p(Normal)",
    "irregularity x p(Normal)",
)


def stage_features(probs: np.ndarray, rr: np.ndarray) -> np.ndarray:
    """The learnt rhythm stage's inputs for beats with an RR ratio.

    Parameters
    ----------
    probs : np.ndarray
        Picture probabilities, shape ``(n, 6)``.
    rr : np.ndarray
        :func:`rr_features` rows, shape ``(n, 2)``, finite ratios only (an
        irregularity that is NaN, with under 4 beats, counts as 0).

    Returns
    -------
    np.ndarray
        Shape ``(n, len(STAGE_FEATURES))``. The products let a linear model say
        "early *and* normal-looking", which a sum of the two cannot.
    """
    p = np.asarray(probs, dtype=np.float64)
    ratio = np.asarray(rr, dtype=np.float64)[:, 0:1]  # (n, 1)
    irr = np.nan_to_num(np.asarray(rr, dtype=np.float64)[:, 1:2], nan=0.0)  # (n, 1)
    pn = p[:, NORMAL : NORMAL + 1]  # (n, 1)
    return np.hstack([np.log(np.clip(p, 1e-6, 1)), ratio, irr, ratio * pn, irr * pn])


def stage_apply(probs: np.ndarray, rr: np.ndarray, stage: dict) -> np.ndarray:
    """The learnt rhythm stage: a multinomial logistic model over the picture's
    probabilities and the beat's RR features (fitted by
    ``training.rhythm_fit.stage_fit``).

    Beats without an RR ratio (the first one, short signals, single pictures)
    keep the picture's probabilities. Returns a copy of ``probs``, ``(n, 6)``.
    """
    out = np.array(probs, dtype=np.float32, copy=True)
    rr = np.asarray(rr, dtype=np.float64).reshape(-1, 2)
    has = np.isfinite(rr[:, 0])
    if not has.any():
        return out
    x = stage_features(out[has], rr[has])  # (m, f)
    x = (x - np.asarray(stage["mean"])) / np.asarray(stage["scale"])
    z = x @ np.asarray(stage["coef"]).T + np.asarray(stage["intercept"])  # (m, 6)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out[has] = e / e.sum(axis=1, keepdims=True)
    return out


def rhythm_read(run_dir: str | os.PathLike) -> dict | None:
    """The run's rhythm step (``rhythm.json``), or None without one.

    Keys ``pac_ratio_threshold`` (float), ``irregular_max`` (float or None) and
    ``stage``: the learnt stage's weights where the fit chose it over the rule,
    else None.
    """
    p = Path(run_dir) / RHYTHM_FILE
    if not p.exists():
        return None
    d = json_read(p)
    bad = f"{p}: damaged (pac_ratio_threshold 0-2, irregular_max a number or null)"
    if not isinstance(d, dict):
        raise EcgError(bad)
    thr, irr = d.get("pac_ratio_threshold"), d.get("irregular_max")
    num = (int, float)
    if not isinstance(thr, num) or isinstance(thr, bool) or not 0 < thr <= 2:
        raise EcgError(bad)
    if irr is not None and (not isinstance(irr, num) or isinstance(irr, bool)):
        raise EcgError(bad)
    learnt = d.get("learnt") if isinstance(d.get("learnt"), dict) else {}
    stage = learnt.get("stage") if d.get("use") == "learnt" else None
    if stage is not None and not isinstance(stage, dict):
        raise EcgError(f"{p}: damaged (learnt stage is not an object)")
    return {"pac_ratio_threshold": float(thr), "irregular_max": irr, "stage": stage}


def rhythm_step(predictor, probs: np.ndarray, beat_s: np.ndarray) -> np.ndarray:
    """Apply a predictor's rhythm step to the beats of one signal.

    The learnt stage where the run's fit chose it, else the rule; a run with
    neither returns ``probs`` as they are. ``beat_s``: every beat's time, s,
    shape ``(n,)``; returns ``(n, 6)``.
    """
    return rhythm_step_rr(predictor, probs, rr_features(beat_s))


def rhythm_step_rr(predictor, probs: np.ndarray, rr: np.ndarray) -> np.ndarray:
    """:func:`rhythm_step` from the beats' :func:`rr_features` rows ``(n, 2)``."""
    if getattr(predictor, "rhythm_stage", None):
        return stage_apply(probs, rr, predictor.rhythm_stage)
    ratio = rr_gate(np.asarray(rr, dtype=np.float64), predictor.irregular_max)
    return rhythm_adjust(probs, ratio, predictor.pac_ratio_threshold)
