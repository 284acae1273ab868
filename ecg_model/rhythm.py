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
only (:func:`threshold_fit`, on out-of-fold pictures: :func:`folds_predict`) and
kept beside the model as ``rhythm.json``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from .classes import CLASSES
from .io import atomic_write_csv, atomic_write_json, json_read

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


def rr_ratio(
    beat_s: np.ndarray,
    irregular_max: float | None = None,
    local_beats: int = LOCAL_BEATS,
) -> np.ndarray:
    """Each beat's preceding RR interval over the local mean RR, shape ``(n,)``.

    With ``irregular_max``, beats whose neighbourhood is more irregular than that
    (see :func:`rr_features`) get NaN, so :func:`rhythm_adjust` leaves them be: in
    atrial fibrillation there are no P waves and every interval differs, so an
    early beat there is not a premature *atrial* contraction.
    """
    return rr_gate(rr_features(beat_s, local_beats), irregular_max)


def rr_gate(rr: np.ndarray, irregular_max: float | None) -> np.ndarray:
    """Ratios of :func:`rr_features` rows, NaN where more irregular than the limit."""
    if irregular_max is None:
        return rr[:, 0]
    return np.where(np.nan_to_num(rr[:, 1], nan=0.0) < irregular_max, rr[:, 0], np.nan)


def rhythm_describe(threshold: float, irregular_max: float | None) -> str:
    """The rhythm step's rule in words, for pages, notes and the model card."""
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


#: Irregularity limits tried by :func:`threshold_fit`; None: no limit.
IRREGULAR_GRID: tuple[float | None, ...] = (0.05, 0.1, 0.15, 0.2, 0.3, None)


def threshold_fit(
    rr: np.ndarray,
    y_true: np.ndarray,
    probs: np.ndarray,
    min_ppv: float = 0.5,
    grid: np.ndarray | None = None,
    irregular_grid: tuple[float | None, ...] = IRREGULAR_GRID,
) -> tuple[float, float | None, list[dict]]:
    """The rule finding the most PACs whose PPV on these beats is >= ``min_ppv``.

    Where no rule reaches ``min_ppv``, the one with the highest PPV.

    A larger ratio threshold finds more PACs and more false ones; a lower
    irregularity limit drops the false ones of atrial fibrillation, and the true
    ones of very irregular sinus rhythms. The PPV floor is the project's PAC
    target. Fit it on training records only.

    Parameters
    ----------
    rr : np.ndarray
        :func:`rr_features` of the beats, shape ``(n, 2)``.

    Returns
    -------
    threshold : float
    irregular_max : float or None
    sweep : list of dict
        ``{"threshold", "irregular_max", "sensitivity", "ppv"}`` for every pair tried.
    """
    grid = np.round(np.arange(0.6, 0.951, 0.05), 2) if grid is None else grid
    rr = np.asarray(rr, dtype=np.float64)
    is_pac = np.asarray(y_true) == PAC
    sweep, best, closest = [], (-1.0, -1.0, float(grid[0]), None), None
    for g in irregular_grid:
        ratio = rr_gate(rr, g)
        for t in grid:
            pred = rhythm_adjust(probs, ratio, float(t)).argmax(axis=1) == PAC
            tp = int((pred & is_pac).sum())
            se = tp / max(int(is_pac.sum()), 1)
            ppv = tp / max(int(pred.sum()), 1)
            sweep.append(
                {
                    "threshold": float(t),
                    "irregular_max": g,
                    "sensitivity": se,
                    "ppv": ppv,
                }
            )
            if ppv >= min_ppv and (se, ppv) > best[:2]:
                best = (se, ppv, float(t), g)
            if closest is None or (ppv, se) > closest[:2]:
                closest = (ppv, se, float(t), g)
    if best[0] < 0:  # no rule reaches the floor: the one that comes closest
        return closest[2], closest[3], sweep
    return best[2], best[3], sweep


def rhythm_read(run_dir: str | os.PathLike) -> dict | None:
    """The run's rhythm step (``rhythm.json``), or None without one.

    Keys ``pac_ratio_threshold`` (float) and ``irregular_max`` (float or None).
    """
    p = Path(run_dir) / RHYTHM_FILE
    if not p.exists():
        return None
    d = json_read(p)
    return {
        "pac_ratio_threshold": float(d["pac_ratio_threshold"]),
        "irregular_max": d.get("irregular_max"),
    }


def rhythm_write(
    run_dir: str | os.PathLike,
    threshold: float,
    irregular_max: float | None,
    info: dict,
) -> None:
    """Save the rule and how it was fitted as ``rhythm.json``."""
    atomic_write_json(
        Path(run_dir) / RHYTHM_FILE,
        {
            "pac_ratio_threshold": threshold,
            "irregular_max": irregular_max,
            "local_beats": LOCAL_BEATS,
            **info,
        },
    )


def record_beat_times(path: str | os.PathLike) -> np.ndarray:
    """Times (s) of every annotated beat of a WFDB record (any beat symbol).

    Only the header and the ``atr`` annotations are read, not the signal.
    """
    import wfdb

    from .errors import EcgError
    from .signals import BEAT_CODES

    try:
        fs = float(wfdb.rdheader(str(path)).fs)
        ann = wfdb.rdann(str(path), "atr")
    except FileNotFoundError:
        raise EcgError(f"{path}: record or its annotations not found") from None
    keep = np.array([s in BEAT_CODES for s in ann.symbol], dtype=bool)
    return np.asarray(ann.sample)[keep] / fs


def record_rr(path: str | os.PathLike, fs: float) -> Callable[[np.ndarray], np.ndarray]:
    """:func:`rr_features` of a record's annotated beats, looked up by sample.

    The annotations are read once; the returned function maps samples (at
    ``fs``), shape ``(n,)``, to their rows, shape ``(n, 2)``: NaN for a sample
    that is no annotated beat.
    """
    t = record_beat_times(path)
    at = dict(zip(np.round(t * fs).astype(np.int64), rr_features(t)))
    nan2 = np.full(2, np.nan)

    def rows(samples: np.ndarray) -> np.ndarray:
        return np.array([at.get(int(s), nan2) for s in samples]).reshape(-1, 2)

    return rows


def manifest_rr(
    meta, data: str | os.PathLike | None = None, fs: float = 250.0
) -> np.ndarray:
    """:func:`rr_features` of each manifest row from its record's annotations.

    Returns shape ``(n, 2)``. Rows that are not mitdb beats (VF windows, plain
    image folders) and shifted redraws get NaN, so :func:`rhythm_adjust` leaves
    them alone.
    """
    from .io import data_dir

    root = data_dir(data)
    out = np.full((len(meta), 2), np.nan)
    is_beat = (meta["database"] == "mitdb").to_numpy().copy()
    if "path" in meta:
        is_beat &= ~meta["path"].str.contains("_s[+-]", regex=True).to_numpy()
    for rn in np.unique(meta.loc[is_beat, "record"].astype(str)):
        rows = np.flatnonzero(is_beat & (meta["record"].astype(str) == rn).to_numpy())
        out[rows] = record_rr(root / "mitdb" / rn, fs)(meta["sample"].to_numpy()[rows])
    return out


def folds_predict(
    run_dir: str | os.PathLike,
    ds,
    rows: np.ndarray,
    folds: int,
    progress: Callable[[str], None] | None = None,
    retrain: bool = False,
) -> np.ndarray:
    """Picture probabilities of training rows from models that never saw their record.

    The run's own model has learnt its training beats by heart: on the patient
    protocol it calls only 19 of DS1's 808 PACs Normal, too few to fit a rule for
    the PACs it will miss in new patients. So the training records are split into
    ``folds`` groups (scikit-learn ``GroupKFold`` by record); for each, a model
    with the run's configuration is trained on the other groups and predicts the
    held-out group's ``rows``. The fold runs are kept in
    ``run_dir/rhythm_folds/k<folds>/``, with the predictions in
    ``rhythm_folds/oof-<folds>.csv``, reused by later calls unless ``retrain``.

    Parameters
    ----------
    ds : ecg_model.dataset.Dataset
        The run's dataset, loaded.
    rows : np.ndarray
        Bool mask over ``ds.meta_train``: the rows to predict, shape ``(n,)``.

    Returns
    -------
    np.ndarray
        Shape ``(rows.sum(), 6)``: out-of-fold probabilities of those rows.
    """
    import shutil
    from dataclasses import replace

    from sklearn.model_selection import GroupKFold

    from .config import TrainConfig
    from .errors import EcgError
    from .train import run_create, train_run

    run_dir = Path(run_dir)
    cfg = TrainConfig.from_json(json_read(run_dir / "config.json"))
    meta = ds.meta_train
    groups = (
        meta["database"].astype(str) + "/" + meta["record"].astype(str)
    ).to_numpy()
    if len(np.unique(groups)) < folds:
        raise EcgError(
            f"{run_dir}: {len(np.unique(groups))} training records, too few for "
            f"{folds} folds"
        )
    root = Path(ds.root).resolve()
    out = np.full((len(meta), len(CLASSES)), np.nan, np.float32)
    base = run_dir / "rhythm_folds"
    # The folds' predictions are kept: fitting again (another criterion, say)
    # needs no new training unless asked for. Each number of folds has its own
    # runs, so trying another number keeps the first one's.
    saved = base / f"oof-{folds}.csv"
    runs = base / f"k{folds}"
    if saved.exists() and not retrain:
        prev = pd.read_csv(saved)
        by_path = dict(zip(prev["path"], prev[list(CLASSES)].to_numpy(np.float32)))
        want = meta["path"].to_numpy()[rows]
        if all(p in by_path for p in want):
            if progress:
                progress(f"out-of-fold pictures from {saved}")
            return np.stack([by_path[p] for p in want])
    if runs.exists():  # a fit that ran before: its folds are redone
        shutil.rmtree(runs)
    splits = GroupKFold(n_splits=folds).split(np.zeros(len(meta)), groups=groups)
    for k, (tr, te) in enumerate(splits):
        te = te[rows[te]]
        if len(te) == 0:
            continue
        # A dataset folder of the fold: the run's own images (linked, not copied),
        # a manifest with the other folds' records as train, this one's as test.
        fold = runs / f"fold{k + 1}-dataset"
        fold.mkdir(parents=True)
        for name in ("train", "cache.npz", "dataset.json"):
            if (root / name).exists():
                (fold / name).symlink_to(root / name)
        part = meta.iloc[np.r_[tr, te]].copy()
        part["split"] = ["train"] * len(tr) + ["test"] * len(te)
        part.to_csv(fold / "manifest.csv", index=False)
        if progress:
            progress(f"fold {k + 1}/{folds}: training on {len(tr)} images")
        run = run_create(replace(cfg, dataset=str(fold), strategy="default"), runs=runs)
        st = train_run(run)
        if st["state"] != "finished":
            raise EcgError(
                f"{run}: fold {k + 1} {st['state']}: {st.get('error', '')}".rstrip(": ")
            )
        pred = pd.read_csv(run / "test_predictions.csv")
        by_path = dict(zip(pred["path"], pred[list(CLASSES)].to_numpy(np.float32)))
        out[te] = np.stack([by_path[p] for p in meta["path"].to_numpy()[te]])
    keep = np.flatnonzero(np.isfinite(out).all(axis=1))
    atomic_write_csv(
        saved,
        ["path", *CLASSES],
        (
            [p, *(f"{v:.6f}" for v in row)]
            for p, row in zip(meta["path"].to_numpy()[keep], out[keep])
        ),
    )
    return out[rows]


def rhythm_fit_run(
    run_dir: str | os.PathLike,
    data: str | os.PathLike | None = None,
    folds: int = 2,
    progress: Callable[[str], None] | None = None,
    retrain: bool = False,
) -> dict:
    """Fit the run's PAC ratio threshold on its training records; score its test part.

    With ``folds`` >= 2 the threshold is fitted on out-of-fold picture
    probabilities (:func:`folds_predict`: ``folds`` extra trainings on parts of
    the training records); with 0, on the run's own model's (quick, but that model
    has seen those beats). Writes ``rhythm.json`` and adds ``rr_context`` (the
    test metrics with the rhythm step, the threshold and its fitting sweep) to
    ``metrics.json``. Returns that ``rr_context``.
    """
    from .config import TrainConfig
    from .dataset import dataset_load
    from .errors import EcgError
    from .evaluate import metrics_compute
    from .predict import Predictor
    from .train import dataset_for

    if folds == 1 or folds < 0:
        raise EcgError(f"folds must be 0 (no folds) or at least 2, not {folds}")
    run_dir = Path(run_dir)
    pred = Predictor(run_dir)
    cfg = TrainConfig.from_json(json_read(run_dir / "config.json"))
    ds = dataset_load(dataset_for(cfg, pred.spec), pred.spec)
    # 1. training records: picture probabilities and each beat's RR features.
    rr_tr = manifest_rr(ds.meta_train, data, pred.spec.fs)
    fit = np.isfinite(rr_tr[:, 0])
    if not fit.any():
        raise EcgError(
            f"{run_dir}: its dataset has no mitdb beats to fit the rhythm step on"
        )
    if folds:
        p_tr = folds_predict(run_dir, ds, fit, folds, progress, retrain)
        fitted_on = f"training part, mitdb beats, out-of-fold ({folds} folds by record)"
    else:
        p_tr = pred.predict_arrays(ds.x_train[fit])
        fitted_on = "training part, mitdb beats, the run's own model"
    # 2. the rule: most PAC sensitivity with PPV >= 50% on those beats (a fold
    #    of VF records only leaves none of its rows predicted: they drop out).
    ok = np.isfinite(p_tr).all(axis=1)
    threshold, irregular_max, sweep = threshold_fit(
        rr_tr[fit][ok], ds.y_train[fit][ok], p_tr[ok]
    )
    kept = next(
        s
        for s in sweep
        if s["threshold"] == threshold and s["irregular_max"] == irregular_max
    )
    criterion = "most PACs with PAC PPV >= 0.5" + (
        "" if kept["ppv"] >= 0.5 else "; no rule reached it there: the highest PPV"
    )
    rhythm_write(
        run_dir,
        threshold,
        irregular_max,
        {
            "fitted_on": fitted_on,
            "criterion": criterion,
            "fit_sensitivity": kept["sensitivity"],
            "fit_ppv": kept["ppv"],
            "folds": folds,
        },
    )
    # 3. test part, scored with the image alone and with the rhythm step.
    rr_te = rr_gate(manifest_rr(ds.meta_test, data, pred.spec.fs), irregular_max)
    p_te = rhythm_adjust(pred.predict_arrays(ds.x_test), rr_te, threshold)
    res = metrics_compute(ds.y_test, p_te.argmax(axis=1), seed=cfg.seed)
    res.update(
        pac_ratio_threshold=threshold,
        irregular_max=irregular_max,
        fit_sweep=sweep,
        fitted_on=fitted_on,
        criterion=criterion,
    )
    metrics = json_read(run_dir / "metrics.json")
    metrics["rr_context"] = res
    atomic_write_json(run_dir / "metrics.json", metrics)
    return res
