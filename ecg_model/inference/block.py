"""The block stage: which conduction a beat the picture model calls conducted has.

The picture model (with the rhythm step) decides what a beat is: conducted on
time (Normal, LBBB, RBBB), early (PAC, PVC) or no beat at all (VF). It learnt the
few block patients of its training data, not the block. What defines a block is
measured (``data.qrs.beat_features``: the QRS duration and the shape of leads
II, V1, V6 and I), so a small model over those measures, fitted on many
patients by ``training.block_fit``, decides between Normal, LBBB and RBBB; the
picture model's share of the three is kept and divided as the stage says. Beats
the picture calls early or VF, and beats with nothing measured, keep the
picture's answer. Kept beside the model as ``block.json`` (and, for a boosted
model, ``block_model.pkl``); this module only applies it.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from ..core.classes import CLASSES
from ..core.errors import EcgError
from ..core.io import json_read
from ..data.qrs import (
    BEAT_FEATURES,
    BLOCK_QRS_MS,
    LEAD_STAND_INS,
    SHAPE_FEATURES,
    lead_pick,
    qrs_shape,
)

BLOCK_FILE = "block.json"
BLOCK_MODEL_FILE = "block_model.pkl"
#: The three conductions the stage tells apart, as class indices, in its order.
CONDUCTED = tuple(
    CLASSES.index(c)
    for c in ("Normal", "Left Bundle Branch Block", "Right Bundle Branch Block")
)
#: Below this share of the two blocks' probability, left and right are not told.
SIDE_SURE = 0.75


def block_x(feats: np.ndarray, features: list[str] | tuple[str, ...]) -> np.ndarray:
    """The stage's columns of :data:`~ecg_model.data.qrs.BEAT_FEATURES` rows.

    ``feats`` shape ``(n, len(BEAT_FEATURES))`` -> ``(n, len(features))``.
    """
    idx = [BEAT_FEATURES.index(f) for f in features]
    return np.asarray(feats, np.float64).reshape(-1, len(BEAT_FEATURES))[:, idx]


def measured(feats: np.ndarray) -> np.ndarray:
    """Beats with a QRS measured in their main lead (the delineator's duration
    or lead II's envelope), shape ``(n,)`` bool."""
    f = np.asarray(feats, np.float64).reshape(-1, len(BEAT_FEATURES))
    return np.isfinite(f[:, BEAT_FEATURES.index("qrs_ms")]) | np.isfinite(
        f[:, BEAT_FEATURES.index("II_env_ms")]
    )


#: The leads beside lead II that tell a block's side.
SIDE_LEADS = ("V1", "V6", "I")
#: Their names and those of the leads standing in for them.
SIDE_NAMES = {
    *SIDE_LEADS,
    *(a for ld in SIDE_LEADS for a in LEAD_STAND_INS.get(ld, ())),
}


def side_measured(feats: np.ndarray) -> np.ndarray:
    """Beats with V1, V6 or I measured (or a lead standing in), ``(n,)`` bool.

    A stage fitted on every lead is not applied without one: its training's only
    single-lead records (svdb) hold Normal beats alone, so a missing V1 would
    read as Normal; and lead II alone tells the side poorly (its stage's
    out-of-fold score, ``results/block_stage.json``).
    """
    f = np.asarray(feats, np.float64).reshape(-1, len(BEAT_FEATURES))
    cols = [BEAT_FEATURES.index(f"{ld}_env_ms") for ld in SIDE_LEADS]
    return np.isfinite(f[:, cols]).any(axis=1)


def stage_needs_side(stage: dict) -> bool:
    """Whether a stage reads leads beside lead II (then it needs one)."""
    return any(f.split("_")[0] in SIDE_LEADS for f in stage["features"])


def logistic_proba(x: np.ndarray, stage: dict) -> np.ndarray:
    """A logistic stage's probabilities, ``(n, f)`` -> ``(n, 3)``: missing
    measures imputed with the training median, standardised, softmax."""
    x = np.where(np.isfinite(x), x, np.asarray(stage["impute"]))
    x = (x - np.asarray(stage["mean"])) / np.asarray(stage["scale"])
    z = x @ np.asarray(stage["coef"]).T + np.asarray(stage["intercept"])  # (n, 3)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def stage_proba_x(stage: dict, x: np.ndarray) -> np.ndarray:
    """A stage's Normal / LBBB / RBBB probabilities from its own columns ``x``
    ``(n, f)``, ``(n, 3)``; a class its model never saw gets 0."""
    if stage["kind"] == "logistic":
        return logistic_proba(x, stage)
    p = np.zeros((len(x), 3))
    p[:, stage["model"].classes_] = stage["model"].predict_proba(x)
    return p


def stage_proba(stage: dict, feats: np.ndarray) -> np.ndarray:
    """Normal / LBBB / RBBB probabilities of measured beats, ``(n, 3)``."""
    return stage_proba_x(stage, block_x(feats, stage["features"]))


def block_smooth(
    q: np.ndarray, k: int, records: np.ndarray | None = None
) -> np.ndarray:
    """The stage's answers averaged over each beat's ``k`` answered neighbours
    on each side in the same recording, ``(n, 3)`` -> ``(n, 3)``.

    A block is the patient's conduction, not one beat's: its measures are
    noisy beat to beat, and its neighbours' are evidence too. Rows must be in
    time order within each recording (``records``, shape ``(n,)``; None: one
    recording); NaN rows (no answer) neither count nor change.
    """
    q = np.asarray(q, np.float64)
    out = q.copy()
    if k <= 0 or len(q) == 0:
        return out
    recs = np.zeros(len(q)) if records is None else np.asarray(records)
    has = np.isfinite(q).all(axis=1)
    for rec in np.unique(recs[has]):
        i = np.flatnonzero(has & (recs == rec))  # answered rows of one recording
        c = np.vstack([np.zeros((1, 3)), np.cumsum(q[i], axis=0)])  # (m + 1, 3)
        j = np.arange(i.size)
        lo, hi = np.clip(j - k, 0, i.size), np.clip(j + k + 1, 0, i.size)
        out[i] = (c[hi] - c[lo]) / (hi - lo)[:, None]
    return out


def block_apply(
    probs: np.ndarray,
    feats: np.ndarray,
    stage: dict | None,
    records: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Divide each beat's conducted probability as the stage says.

    Parameters
    ----------
    probs : np.ndarray
        The picture model's probabilities (after the rhythm step), ``(n, 6)``.
    feats : np.ndarray
        The beats' measures, ``(n, len(BEAT_FEATURES))``.
    stage : dict or None
        :func:`block_read`'s stage; None returns ``probs`` unchanged. Its
        ``smooth`` (beats each side, :func:`block_smooth`) applies within each
        recording.
    records : np.ndarray, optional
        Each beat's recording, shape ``(n,)``, rows in time order within each
        (None: one recording, as a signal is).

    Returns
    -------
    probs : np.ndarray
        A copy, ``(n, 6)``: for measured beats whose top class is Normal, LBBB or
        RBBB (and, for a stage that reads them, with V1, V6 or I measured),
        those three hold the same sum, divided by the stage's answer.
    q : np.ndarray
        The stage's Normal / LBBB / RBBB probabilities, ``(n, 3)``, NaN where
        it did not answer.
    """
    out = np.array(probs, dtype=np.float32, copy=True)
    q = np.full((len(out), 3), np.nan)
    if stage is None or len(out) == 0:
        return out, q
    cond = list(CONDUCTED)
    on = measured(feats) & np.isin(out.argmax(axis=1), cond)
    if stage_needs_side(stage):
        on &= side_measured(feats)
    if not on.any():
        return out, q
    q[on] = stage_proba(stage, np.asarray(feats)[on])
    q = block_smooth(q, int(stage.get("smooth", 0)), records)
    mass = out[on][:, cond].sum(axis=1, keepdims=True)  # (m, 1)
    out[np.ix_(on, cond)] = mass * q[on]
    return out, q


def block_notes(
    q: np.ndarray,
    qrs_ms: np.ndarray,
    classes: list[str] | None = None,
    side: np.ndarray | None = None,
) -> list[str]:
    """What the measures say of each beat, in words ("" where nothing to say).

    A wide QRS on time whose side the stage cannot tell is said to be a likely
    block of either side, instead of a confident Normal. A beat the picture
    calls a block where no lead tells the side (``side`` False: no V1, V6 or
    I) says so.
    """
    q = np.asarray(q, np.float64).reshape(-1, 3)
    ms = np.asarray(qrs_ms, np.float64).reshape(-1)
    cls = list(classes) if classes is not None else [""] * len(q)
    sides = np.ones(len(q), bool) if side is None else np.asarray(side, bool)
    blocks_named = (CLASSES[CONDUCTED[1]], CLASSES[CONDUCTED[2]])
    out = []
    for (pn, pl, pr), d, c, sd in zip(q, ms, cls, sides):
        blocks = pl + pr
        if not np.isfinite(blocks):
            out.append(
                "one lead: a bundle branch block's side is read from V1, V6 or I, "
                "which this signal lacks; left or right cannot be told"
                if c in blocks_named and not sd
                else ""
            )
        elif blocks >= 0.5 and max(pl, pr) / blocks < SIDE_SURE:
            out.append(
                "wide QRS, on time: a bundle branch block is likely; left or "
                "right cannot be told from this signal's leads"
            )
        elif np.isfinite(d) and d >= BLOCK_QRS_MS and pn > 0.5:
            out.append(
                f"QRS {d:.0f} ms (>= {BLOCK_QRS_MS:.0f} ms) but the shape reads "
                "Normal: a bundle branch block cannot be ruled out"
            )
        else:
            out.append("")
    return out


def block_decide(
    classes: list[str], q: np.ndarray, qrs_ms: np.ndarray, leads: tuple[str, ...]
) -> dict:
    """One block decision for a recording, from its beats.

    Parameters
    ----------
    classes : list of str
        Each beat's final class.
    q : np.ndarray
        The stage's Normal / LBBB / RBBB probabilities, ``(n, 3)``, NaN where
        it did not answer.
    qrs_ms : np.ndarray
        Each beat's measured QRS, ms, ``(n,)``.
    leads : tuple of str
        The leads that were measured.

    Returns
    -------
    dict
        ``block``: ``"LBBB"`` or ``"RBBB"`` where most conducted beats are
        that block, ``"unsure"`` where most are a block of a side the stage
        cannot tell, ``"none"`` where most are Normal, None where no beat was
        judged; with ``beats`` (conducted beats judged), the share of each,
        the median QRS (ms) and the leads, its evidence.
    """
    q = np.asarray(q, np.float64).reshape(-1, 3)
    ok = np.isfinite(q).all(axis=1)
    cls = np.asarray(classes, dtype=object)
    cond = ok & np.isin(cls, [CLASSES[i] for i in CONDUCTED])
    n = int(cond.sum())
    ms = np.asarray(qrs_ms, np.float64)[cond]
    out = {
        "block": None,
        "beats": n,
        "share_lbbb": None,
        "share_rbbb": None,
        "median_qrs_ms": float(np.nanmedian(ms)) if np.isfinite(ms).any() else None,
        "leads": list(leads),
    }
    if n == 0:
        return out
    share_l = float(np.mean(cls[cond] == CLASSES[CONDUCTED[1]]))
    share_r = float(np.mean(cls[cond] == CLASSES[CONDUCTED[2]]))
    either = float(np.mean(q[cond, 1] + q[cond, 2] >= 0.5))
    out.update(share_lbbb=round(share_l, 3), share_rbbb=round(share_r, 3))
    if share_l >= 0.5:
        out["block"] = "LBBB"
    elif share_r >= 0.5:
        out["block"] = "RBBB"
    elif either >= 0.5:
        out["block"] = "unsure"
    else:
        out["block"] = "none"
    return out


def block_describe(d: dict) -> str:
    """:func:`block_decide`'s answer in a sentence."""
    if d["block"] is None:
        named = {str(ld).strip().upper() for ld in d["leads"]}
        side = {
            *SIDE_LEADS,
            *(a for ld in SIDE_LEADS for a in LEAD_STAND_INS.get(ld, ())),
        }
        if not named & side:
            return (
                "no block decision: a bundle branch block's side is read from V1, "
                "V6 or I, which this signal lacks (give a record with those leads); "
                "the classes are the picture model's"
            )
        return "no conducted beat was measured: no block decision"
    main = d["leads"][0] if d["leads"] else "the main lead"
    main = "the main lead" if main == "main" else f"lead {main}"
    qrs = (
        f"median QRS {d['median_qrs_ms']:.0f} ms on {main} by the delineator, "
        "which reads a block's QRS short on some leads; the decision weighs "
        "every lead's shape"
        if d["median_qrs_ms"] is not None
        else "QRS not measured"
    )
    leads = ", ".join(d["leads"])
    what = {
        "LBBB": "left bundle branch block",
        "RBBB": "right bundle branch block",
        "unsure": "a bundle branch block is likely; left or right cannot be told",
        "none": "no bundle branch block",
    }[d["block"]]
    shapes = "".join(f"; {ld}: {w}" for ld, w in (d.get("shapes") or {}).items())
    return (
        f"{what} ({qrs}; {100 * d['share_lbbb']:.0f}% of {d['beats']} conducted "
        f"beats read LBBB, {100 * d['share_rbbb']:.0f}% RBBB; leads {leads}"
        f"{shapes})"
    )


#: Share of the QRS's peak-to-peak a mean deflection must pass to be named.
SHAPE_WORD_MIN = 0.15


def block_shapes(
    leads: dict[str, np.ndarray],
    fs: float,
    rpeaks: np.ndarray,
    on: np.ndarray | None = None,
    off: np.ndarray | None = None,
) -> dict[str, str]:
    """The V1 and V6 shapes a block decision rests on, in words: the median
    over the beats each lead shows (:func:`~ecg_model.data.qrs.qrs_shape`;
    V2 stands in for V1, V5 for V6). A lead absent, or showing no whole beat,
    is left out.

    V1: a positive end of the QRS is RBBB's terminal R' (rSR'); mostly
    negative, LBBB's QS or rS. V6: a broad, notched or slurred upright R is
    LBBB's; a negative end, RBBB's slurred S.
    """
    out = {}
    for name in ("V1", "V6"):
        sig = lead_pick(leads, name)
        if sig is None:
            continue
        f = qrs_shape(np.nan_to_num(sig, nan=0.0), fs, rpeaks, on, off)  # (n, k)
        shown = np.array(
            [
                np.isfinite(sig[max(0, r - int(0.15 * fs)) : r + int(0.2 * fs)]).all()
                for r in np.asarray(rpeaks, np.int64)
            ]
        )  # (n,) beats whose QRS the lead's panel holds
        f = f[shown]
        if not len(f) or not np.isfinite(f).any():
            continue
        med = dict(zip(SHAPE_FEATURES, np.nanmedian(f, axis=0)))
        width = f"slope width {med['env_ms']:.0f} ms"
        end, up = med["terminal"], med["pos_frac"]
        if name == "V1":
            word = (
                "terminal R' (the QRS ends upright, rSR')"
                if end > SHAPE_WORD_MIN
                else "mostly negative (QS or rS)"
                if up < 0.35
                else "no terminal R'"
            )
        else:
            word = (
                "terminal S (the QRS ends negative)"
                if end < -SHAPE_WORD_MIN
                else "broad, notched or slurred upright R"
                if up > 0.6 and (med["notches"] >= 2 or med["slur"] > 0.3)
                else "upright R"
                if up > 0.6
                else "mostly negative"
            )
        out[name] = f"{word}; {width}; {int(shown.sum())} beats"
    return out


def block_read(run_dir: str | os.PathLike) -> dict | None:
    """The run's block stage, or None without one.

    Returns ``{"kind", "features", ...}``: a logistic stage's weights, or a
    boosted stage's ``model`` read from :data:`BLOCK_MODEL_FILE`.

    Raises
    ------
    EcgError
        ``block.json`` damaged, or its features unknown to this version.
    """
    p = Path(run_dir) / BLOCK_FILE
    if not p.exists():
        return None
    d = json_read(p)
    stage = d.get("stage") if isinstance(d, dict) else None
    if not isinstance(stage, dict) or stage.get("kind") not in ("logistic", "boosting"):
        raise EcgError(f"{p}: damaged (no stage of kind logistic or boosting)")
    unknown = [f for f in stage.get("features", []) if f not in BEAT_FEATURES]
    if unknown or not stage.get("features"):
        raise EcgError(f"{p}: features unknown to this version: {unknown}")
    if stage["kind"] == "boosting":
        mp = Path(run_dir) / BLOCK_MODEL_FILE
        try:
            with open(mp, "rb") as f:
                stage = {**stage, "model": pickle.load(f)}
        except Exception as e:  # missing, damaged, or from another scikit-learn
            raise EcgError(
                f"{mp}: cannot read the block stage's model ({e}); fit it again "
                "with 'python -m ecg_model fit-block'"
            ) from None
    return stage
