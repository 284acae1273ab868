"""Fitting the rhythm step on training records (see ``inference.rhythm``).

Training side: it reads the training records' annotations and trains fold
models, so a beat's picture probabilities come from a model that never saw its
record. The pipeline of :func:`rhythm_fit_run` reads: training beats -> RR
features -> out-of-fold picture probabilities -> the rule with the most PACs at
PPV >= 50%, and a learnt stage (logistic regression over the probabilities and
RR features) -> the better of the two on those beats -> ``rhythm.json`` -> test
metrics with each.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold

from ..core.classes import CLASSES
from ..core.errors import EcgError
from ..core.io import atomic_write_csv, atomic_write_json, data_dir, json_read
from ..data.databases import DATABASES
from ..data.dataset import dataset_load, lead_first, patient_ids
from ..data.signals import record_beat_times
from ..inference.predict import Predictor
from ..inference.rhythm import (
    LOCAL_BEATS,
    PAC,
    RHYTHM_FILE,
    STAGE_FEATURES,
    rhythm_adjust,
    rr_features,
    rr_gate,
    stage_apply,
    stage_features,
)
from .config import TrainConfig
from .evaluate import metrics_compute
from .runfolder import run_create
from .train import dataset_for, train_run

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


def stage_fit(probs: np.ndarray, rr: np.ndarray, y: np.ndarray) -> dict:
    """Fit the learnt rhythm stage: multinomial logistic regression of the class
    on :func:`~ecg_model.inference.rhythm.stage_features`.

    Parameters
    ----------
    probs : np.ndarray
        Out-of-fold picture probabilities of training beats, shape ``(n, 6)``.
    rr : np.ndarray
        Their RR features, shape ``(n, 2)``, finite ratios.
    y : np.ndarray
        Their classes, shape ``(n,)``.

    Returns
    -------
    dict
        ``{"features", "mean", "scale", "coef" (6 x f), "intercept" (6)}``, JSON
        ready; classes absent from ``y`` get a weight row that never wins.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x = stage_features(probs, rr)
    sc = StandardScaler().fit(x)
    lr = LogisticRegression(C=1.0, max_iter=2000).fit(sc.transform(x), y)
    coef = np.zeros((len(CLASSES), x.shape[1]))
    icpt = np.full(len(CLASSES), -50.0)  # a class never seen is never predicted
    coef[lr.classes_], icpt[lr.classes_] = lr.coef_, lr.intercept_
    if len(lr.classes_) == 2:  # binary: sklearn keeps one row for the second class
        coef[lr.classes_] = [-lr.coef_[0] / 2, lr.coef_[0] / 2]
        icpt[lr.classes_] = [-lr.intercept_[0] / 2, lr.intercept_[0] / 2]
    return {
        "features": list(STAGE_FEATURES),
        "mean": sc.mean_.tolist(),
        "scale": sc.scale_.tolist(),
        "coef": coef.tolist(),
        "intercept": icpt.tolist(),
    }


def stage_cross_score(
    probs: np.ndarray, rr: np.ndarray, y: np.ndarray, groups: np.ndarray
) -> np.ndarray:
    """Stage probabilities of training beats from stages fitted without their
    record (``GroupKFold``, up to 5 folds), shape ``(n, 6)``: what choosing
    between the stage and the rule is scored on, so neither has seen the beats
    it is judged by."""
    out = np.array(probs, dtype=np.float32, copy=True)
    k = min(5, len(np.unique(groups)))
    if k < 2:
        return out
    for tr, te in GroupKFold(n_splits=k).split(probs, y, groups):
        out[te] = stage_apply(probs[te], rr[te], stage_fit(probs[tr], rr[tr], y[tr]))
    return out


def _macro_f1(y: np.ndarray, probs: np.ndarray) -> float:
    return metrics_compute(y, np.asarray(probs).argmax(axis=1), n_boot=0)["macro_f1"]


def _summary(m: dict) -> dict:
    """Headline figures and PAC sensitivity/PPV of a metrics dict."""
    pac = m["per_class"][CLASSES[PAC]]
    return {
        **{k: m[k] for k in ("accuracy", "macro_recall", "macro_f1")},
        "pac_sensitivity": pac["recall"],
        "pac_ppv": pac["precision"],
        "pac_sensitivity_ci": pac.get("recall_ci"),
        "pac_ppv_ci": pac.get("precision_ci"),
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

    Returns shape ``(n, 2)``. Rows that are not annotated beats (VF windows,
    plain image folders: databases whose adapter has no beat labels) and shifted
    redraws get NaN, so :func:`rhythm_adjust` leaves them alone.
    """
    root = data_dir(data)
    out = np.full((len(meta), 2), np.nan)
    # A database with its own reader (roahd: one beat a subject) has no WFDB
    # annotations and no neighbours to time a beat by.
    beat_dbs = [
        n for n, db in DATABASES.items() if db.labels == "beats" and db.read is None
    ]
    is_beat = meta["database"].isin(beat_dbs).to_numpy().copy()
    if "path" in meta:
        is_beat &= ~meta["path"].str.contains("_s[+-]", regex=True).to_numpy()
    # "<database>/<record>": the record's path under the data folder (not its
    # patient, which a tabled database may name otherwise).
    recs = meta["database"].astype(str) + "/" + meta["record"].astype(str)
    for rec in np.unique(recs[is_beat]):
        rows = np.flatnonzero(is_beat & (recs == rec).to_numpy())
        out[rows] = record_rr(root / rec, fs)(meta["sample"].to_numpy()[rows])
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
    ds : ecg_model.data.dataset.Dataset
        The run's dataset, loaded.
    rows : np.ndarray
        Bool mask over ``ds.meta_train``: the rows to predict, shape ``(n,)``.

    Returns
    -------
    np.ndarray
        Shape ``(rows.sum(), 6)``: out-of-fold probabilities of those rows.
    """
    run_dir = Path(run_dir)
    cfg = TrainConfig.from_json(json_read(run_dir / "config.json"))
    meta = ds.meta_train
    groups = patient_ids(meta)
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
    if folds == 1 or folds < 0:
        raise EcgError(f"folds must be 0 (no folds) or at least 2, not {folds}")
    run_dir = Path(run_dir)
    pred = Predictor(run_dir)
    cfg = TrainConfig.from_json(json_read(run_dir / "config.json"))
    ds = dataset_load(dataset_for(cfg, pred.spec), pred.spec)
    # 1. training records: picture probabilities and each beat's RR features.
    rr_tr = manifest_rr(ds.meta_train, data, pred.spec.fs)
    # One row a beat: other leads' pictures (``extra_leads``) train the fold
    # models but are not fitted on.
    fit = np.isfinite(rr_tr[:, 0]) & lead_first(ds.meta_train)
    if not fit.any():
        raise EcgError(
            f"{run_dir}: its dataset has no annotated beats to fit the rhythm step on"
        )
    if folds:
        p_tr = folds_predict(run_dir, ds, fit, folds, progress, retrain)
        fitted_on = (
            "training part, annotated beats (mitdb, svdb), "
            f"out-of-fold ({folds} folds by record)"
        )
    else:
        p_tr = pred.predict_arrays(ds.x_train[fit])
        fitted_on = "training part, annotated beats (mitdb, svdb), the run's own model"
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
    # 3. the learnt stage on the same beats. It replaces the rule where its
    #    macro F1 there is higher, each beat scored by a stage fitted without
    #    its record (the rule has two numbers to fit; the stage has 60).
    rr_ok, p_ok, y_ok = rr_tr[fit][ok], p_tr[ok], ds.y_train[fit][ok]
    patients = patient_ids(ds.meta_train)[fit][ok]
    stage = stage_fit(p_ok, rr_ok, y_ok)
    f_stage = _macro_f1(y_ok, stage_cross_score(p_ok, rr_ok, y_ok, patients))
    f_rule = _macro_f1(
        y_ok, rhythm_adjust(p_ok, rr_gate(rr_ok, irregular_max), threshold)
    )
    use = "learnt" if f_stage > f_rule else "rule"
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
            "use": use,
            "choice": f"training beats' macro F1, out of record: learnt stage "
            f"{f_stage:.4f}, rule {f_rule:.4f}",
            "learnt": {"stage": stage, "fit_macro_f1": f_stage},
            "rule_fit_macro_f1": f_rule,
        },
    )
    # 4. test part, scored with the image alone, the rule and the learnt stage;
    #    ``rr_context`` holds the step chosen in 3, with both for comparison.
    p_img = pred.predict_arrays(ds.x_test)
    rr_te = manifest_rr(ds.meta_test, data, pred.spec.fs)
    groups = patient_ids(ds.meta_test)
    by = {
        "rule": rhythm_adjust(p_img, rr_gate(rr_te, irregular_max), threshold),
        "learnt": stage_apply(p_img, rr_te, stage),
    }
    scored = {
        k: metrics_compute(
            ds.y_test,
            v.argmax(axis=1),
            seed=cfg.seed,
            groups=groups if cfg.split != "random" else None,
        )
        for k, v in by.items()
    }
    res = scored[use]
    res.update(
        pac_ratio_threshold=threshold,
        irregular_max=irregular_max,
        fit_sweep=sweep,
        fitted_on=fitted_on,
        criterion=criterion,
        use=use,
        compared={k: _summary(v) for k, v in scored.items()},
    )
    metrics = json_read(run_dir / "metrics.json")
    metrics["rr_context"] = res
    atomic_write_json(run_dir / "metrics.json", metrics)
    return res
