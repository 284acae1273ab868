"""Fitting the block stage on training patients (see ``inference.block``).

A CNN that must discover a bundle branch block from pictures learnt the few
block patients of its training data, not the block (issue 25: 28 trainings).
What defines a block is measured: a QRS of 120 ms or more in a beat conducted
on time, with its shape in V1 and V6. The pipeline of :func:`block_fit_run`
reads: the dataset's beats -> each beat measured in its record
(:func:`block_table`: the delineated QRS, the shape of leads II, V1 and V6) ->
a small model of Normal / LBBB / RBBB over those measures, fitted with
patients grouped and scored out of fold on the training patients (the
candidates: logistic regression and gradient boosting, lead II alone and
every lead) -> the winner written beside the run as ``block.json`` -> the test
patients scored with the CNN alone, the stage alone and both.
"""

from __future__ import annotations

import os
import pickle
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.classes import CLASSES
from ..core.errors import EcgError
from ..core.io import (
    atomic_write_bytes,
    atomic_write_csv,
    atomic_write_json,
    data_dir,
    json_read,
)
from ..data.dataset import (
    dataset_load,
    lead_first,
    manifest_read,
    patient_ids,
    record_of,
    record_path,
)
from ..data.qrs import BEAT_FEATURES, beat_features
from ..data.signals import qrs_detect
from ..inference.block import (
    BLOCK_FILE,
    BLOCK_MODEL_FILE,
    block_apply,
    block_decide,
    block_smooth,
    block_x,
    measured,
    stage_proba,
    stage_proba_x,
)
from ..inference.predict import Predictor
from ..inference.rhythm import rhythm_step_rr
from .config import TrainConfig
from .evaluate import metrics_compute
from .rhythm_fit import manifest_rr
from .train import dataset_for

#: The file of measured beats kept in a dataset folder.
TABLE_FILE = "block_features.csv"
#: Classes a beat's measures are taken for: every beat (VF windows have none).
BEAT_CLASSES = tuple(c for c in CLASSES if c != "Ventricular Fibrillation")


def _record_measure(args: tuple) -> pd.DataFrame:
    """Worker: one record's listed beats measured (:func:`beat_features`)."""
    root, db, rn, samples, fs = args
    rec = record_of(record_path(root, db, rn), db, fs, all_leads=True)
    leads = {rec.lead or "main": rec.sig, **rec.others}
    # Every beat of the record goes to the delineator (its search windows
    # follow the rate): the annotated beats, else the detector's, with each
    # listed beat in place of a detection within 50 ms of it.
    if rec.ann_sample.size > 1:
        found = np.asarray(rec.ann_sample, np.int64)
    elif rec.sig.size > 3 * fs:
        found = qrs_detect(rec.sig, fs)
    else:
        found = np.zeros(0, np.int64)
    near = int(0.05 * fs)
    if found.size:
        gap = np.abs(found[:, None] - samples[None, :]).min(axis=1)  # (n_found,)
        found = found[gap > near]
    beats = np.sort(np.concatenate([found, samples]))
    feats = beat_features(leads, fs, beats, main=rec.lead or "main")
    rows = np.searchsorted(beats, samples)
    df = pd.DataFrame(feats[rows], columns=list(BEAT_FEATURES))
    df.insert(0, "sample", samples)
    df.insert(0, "record", rn)
    df.insert(0, "database", db)
    return df


def block_table(
    root: str | os.PathLike,
    meta: pd.DataFrame,
    fs: float,
    workers: int = 2,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Every beat row of a manifest measured in its record.

    Parameters
    ----------
    root : path
        The data folder.
    meta : pd.DataFrame
        Manifest rows (``database, record, sample, class``); VF windows and
        other leads' views are left out.
    fs : float
        The rate the manifest's samples are at, Hz.

    Returns
    -------
    pd.DataFrame
        ``database, record, sample`` and :data:`BEAT_FEATURES`, one row a beat.
    """
    keep = lead_first(meta) & meta["class"].isin(BEAT_CLASSES).to_numpy()
    if "path" in meta:  # shifted redraws of a beat are the same beat
        keep &= ~meta["path"].astype(str).str.contains("_s[+-]", regex=True).to_numpy()
    beats = meta[keep].drop_duplicates(["database", "record", "sample"])
    jobs = [
        (str(root), db, str(rn), np.sort(sub["sample"].to_numpy(np.int64)), fs)
        for (db, rn), sub in beats.groupby(["database", "record"])
    ]
    out = []
    with ProcessPoolExecutor(max_workers=max(workers, 1)) as pool:
        for k, df in enumerate(pool.map(_record_measure, jobs)):
            out.append(df)
            if progress:
                progress(
                    f"measured record {k + 1} of {len(jobs)} ({jobs[k][1]}/"
                    f"{jobs[k][2]}, {len(df)} beats)"
                )
    if not out:
        raise EcgError("no beats to measure: the manifest holds no beat rows")
    return pd.concat(out, ignore_index=True)


def block_table_cached(
    root: str | os.PathLike,
    dataset: str | os.PathLike,
    meta: pd.DataFrame,
    fs: float,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """:func:`block_table` of a dataset's manifest, kept in the dataset folder
    (:data:`TABLE_FILE`) and read from there while it covers every beat."""
    path = Path(dataset) / TABLE_FILE
    if path.exists():
        df = pd.read_csv(path, dtype={"record": str})
        have = set(zip(df["database"], df["record"].astype(str), df["sample"]))
        want = meta[meta["class"].isin(BEAT_CLASSES) & lead_first(meta)]
        if all(
            k in have
            for k in zip(want["database"], want["record"].astype(str), want["sample"])
        ):
            return df
    df = block_table(root, meta, fs, progress=progress)
    atomic_write_csv(
        path,
        list(df.columns),
        (
            [db, rn, int(s), *(f"{v:.5g}" for v in row)]
            for db, rn, s, row in zip(
                df["database"],
                df["record"],
                df["sample"],
                df[list(BEAT_FEATURES)].to_numpy(),
            )
        ),
    )
    return df


#: Lead II's measures alone: what a single-lead record or strip gives.
LEAD_II_FEATURES = tuple(f for f in BEAT_FEATURES if f == "qrs_ms" or f[:3] == "II_")
#: The stage's candidates, each fitted and scored out of fold.
CANDIDATES = {
    "logistic-II": ("logistic", LEAD_II_FEATURES),
    "logistic-all": ("logistic", BEAT_FEATURES),
    "boosting-II": ("boosting", LEAD_II_FEATURES),
    "boosting-all": ("boosting", BEAT_FEATURES),
}


def patient_weights(y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Sample weights giving each patient one vote in its class, and each class
    the same total, shape ``(n,)``.

    A mitdb LBBB patient holds 2,000 beats, a roahd subject one: weighted by
    beat, the stage would learn four LBBB patients again.
    """
    key = pd.Series(list(zip(groups, y)))
    w = 1.0 / key.map(key.value_counts()).to_numpy(np.float64)
    for c in np.unique(y):
        w[y == c] /= w[y == c].sum()
    return w * len(y) / len(np.unique(y))


def stage_fit(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, kind: str, seed: int = 0
) -> dict:
    """Fit one stage on measures ``x`` ``(n, f)``, classes ``y`` (0 Normal, 1
    LBBB, 2 RBBB) and weights ``w``.

    Returns ``{"kind", ...}``: a logistic stage as JSON-ready weights (missing
    measures imputed with the training median), a boosted one with its
    ``model`` (scikit-learn's ``HistGradientBoostingClassifier``, which takes
    missing measures as they are).
    """
    if kind == "logistic":
        from sklearn.linear_model import LogisticRegression

        with warnings.catch_warnings():  # a lead no training beat has: all NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(np.where(np.isfinite(x), x, np.nan), axis=0)
        med = np.nan_to_num(med)  # ... imputed with 0
        xi = np.where(np.isfinite(x), x, med)
        mean, scale = xi.mean(axis=0), xi.std(axis=0)
        scale[scale == 0] = 1.0
        lr = LogisticRegression(C=0.5, max_iter=3000)
        lr.fit((xi - mean) / scale, y, sample_weight=w)
        coef = np.zeros((3, x.shape[1]))
        icpt = np.full(3, -50.0)  # a class never seen is never answered
        coef[lr.classes_], icpt[lr.classes_] = lr.coef_, lr.intercept_
        return {
            "kind": kind,
            "impute": med.tolist(),
            "mean": mean.tolist(),
            "scale": scale.tolist(),
            "coef": coef.tolist(),
            "intercept": icpt.tolist(),
        }
    from sklearn.ensemble import HistGradientBoostingClassifier

    gb = HistGradientBoostingClassifier(
        max_iter=150,
        learning_rate=0.05,
        max_leaf_nodes=15,
        min_samples_leaf=40,
        l2_regularization=1.0,
        random_state=seed,
    )
    gb.fit(x, y, sample_weight=w)
    return {"kind": kind, "model": gb}


def grouped_folds(y: np.ndarray, groups: np.ndarray, seed: int, folds: int = 5):
    """Train and test indices of each fold: patients whole on one side,
    classes in each fold as in all (scikit-learn's ``StratifiedGroupKFold``)."""
    from sklearn.model_selection import StratifiedGroupKFold

    cv = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return cv.split(np.zeros(len(y)), y, groups)


def stage_oof(
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    kind: str,
    seed: int,
    folds: int = 5,
) -> np.ndarray:
    """Out-of-fold probabilities ``(n, 3)``: each beat scored by a stage fitted
    without its patient (``StratifiedGroupKFold``, stratified on the class)."""
    out = np.full((len(y), 3), np.nan)
    for tr, te in grouped_folds(y, groups, seed, folds):
        w = patient_weights(y[tr], groups[tr])
        out[te] = stage_proba_x(stage_fit(x[tr], y[tr], w, kind, seed), x[te])
    return out


def conduction_scores(y: np.ndarray, pred: np.ndarray, groups: np.ndarray) -> dict:
    """Recall and precision of Normal, LBBB and RBBB (``y``, ``pred`` in 0-2),
    by beat and by patient (each patient's beats one vote: the share of its
    beats right), the macro F1 by beat, and the macro F1 with each patient one
    vote in its class (:func:`patient_weights`), which chooses the stage."""
    from sklearn.metrics import f1_score, precision_recall_fscore_support

    p, r, f, _ = precision_recall_fscore_support(
        y, pred, labels=[0, 1, 2], zero_division=0
    )
    names = ("Normal", "LBBB", "RBBB")
    right = pd.DataFrame({"g": groups, "y": y, "ok": y == pred})
    per_patient = right.groupby(["y", "g"])["ok"].mean().groupby("y").mean()
    w = patient_weights(y, groups)
    return {
        "macro_f1": float(f1_score(y, pred, labels=[0, 1, 2], average="macro")),
        "patient_macro_f1": float(
            f1_score(y, pred, labels=[0, 1, 2], average="macro", sample_weight=w)
        ),
        **{
            n: {
                "recall": float(r[i]),
                "precision": float(p[i]),
                "patient_recall": float(per_patient.get(i, np.nan)),
                "patients": int(right[right["y"] == i]["g"].nunique()),
            }
            for i, n in enumerate(names)
        },
    }


def _conduction_rows(meta: pd.DataFrame, table: pd.DataFrame) -> tuple:
    """Measures of the manifest's rows, ``(n, len(BEAT_FEATURES))`` (NaN for VF
    windows and rows not measured), and the mask of first-lead rows."""
    key = ["database", "record", "sample"]
    t = table.assign(record=table["record"].astype(str)).drop_duplicates(key)
    m = meta[key].assign(record=meta["record"].astype(str))
    feats = m.merge(t, on=key, how="left")[list(BEAT_FEATURES)].to_numpy(np.float64)
    return feats, lead_first(meta)


def _summary(m: dict) -> dict:
    """Headline and block figures of a metrics dict."""
    pc = m["per_class"]
    return {
        **{k: m[k] for k in ("accuracy", "macro_recall", "macro_f1")},
        **{
            f"{short}_{k}": pc[name][k]
            for short, name in (
                ("normal", "Normal"),
                ("lbbb", "Left Bundle Branch Block"),
                ("rbbb", "Right Bundle Branch Block"),
                ("pvc", "Premature Ventricular Contraction"),
            )
            for k in ("recall", "precision")
        },
    }


#: Databases whose widths the stage's fit does not see, and why: their shape
#: (polarity, terminal deflection, notches, the V1/V6 pattern) teaches, their
#: time scale would mislead. Their beats do not score the candidates either.
FIT_NO_WIDTHS = {
    "roahd": "one registered beat a subject, time-warped and smoothed: its "
    "healthy QRS reads about 40 ms wider than the recordings' (the slope "
    "envelope: 96 ms against 48-56 ms), so its widths would teach another "
    "time scale",
}
#: The measures that are widths (ms), blanked for :data:`FIT_NO_WIDTHS`.
WIDTH_FEATURES = tuple(f for f in BEAT_FEATURES if f.endswith("_ms"))
#: Neighbouring beats each side the stage's answer may be averaged over.
SMOOTH_GRID = (0, 4, 16)
#: The conduction classes, in the stage's order.
COND_NAMES = ("Normal", "Left Bundle Branch Block", "Right Bundle Branch Block")


def widths_blank(
    feats: np.ndarray, meta: pd.DataFrame, databases: tuple[str, ...]
) -> np.ndarray:
    """A copy of ``feats`` ``(n, len(BEAT_FEATURES))`` with the widths
    (:data:`WIDTH_FEATURES`) of ``databases``' rows set to NaN."""
    out = np.array(feats, copy=True)
    rows = meta["database"].isin(databases).to_numpy()
    cols = [BEAT_FEATURES.index(f) for f in WIDTH_FEATURES]
    out[np.ix_(rows, cols)] = np.nan
    return out


#: The measures :func:`block_widths` tabulates.
WIDTHS_SHOWN = ("qrs_ms", "II_env_ms", "II_energy_ms", "V1_pos_frac", "V1_terminal")


def block_widths(meta: pd.DataFrame, feats: np.ndarray) -> dict:
    """Medians of the main measures by database and class (Normal, LBBB,
    RBBB), over each patient's median: what a database's time scale and leads
    give (roahd's warping, mitdb's V1). ``feats`` ``(n, len(BEAT_FEATURES))``
    for ``meta``'s rows."""
    df = pd.DataFrame(block_x(feats, WIDTHS_SHOWN), columns=list(WIDTHS_SHOWN))
    df["database"] = meta["database"].to_numpy()
    df["class"] = meta["class"].to_numpy()
    df["patient"] = patient_ids(meta)
    df = df[df["class"].isin(COND_NAMES)]
    per = df.groupby(["database", "class", "patient"])[list(WIDTHS_SHOWN)].median()
    out: dict = {}
    for (db, c), sub in per.groupby(level=[0, 1]):
        med = sub.median()
        out.setdefault(db, {})[c] = {
            "patients": len(sub),
            **{
                k: (round(float(med[k]), 2) if np.isfinite(med[k]) else None)
                for k in WIDTHS_SHOWN
            },
        }
    return out


def _time_order(meta: pd.DataFrame) -> np.ndarray:
    """Row order by database, record and sample, shape ``(n,)``."""
    return np.lexsort(
        (
            meta["sample"].to_numpy(),
            meta["record"].astype(str).to_numpy(),
            meta["database"].astype(str).to_numpy(),
        )
    )


def _recordings(meta: pd.DataFrame) -> np.ndarray:
    """``"<database>/<record>"`` of each row, shape ``(n,)``."""
    return (meta["database"].astype(str) + "/" + meta["record"].astype(str)).to_numpy()


def recording_decisions(
    meta: pd.DataFrame, probs: np.ndarray, q: np.ndarray, feats: np.ndarray
) -> dict:
    """One block decision a test recording (:func:`~ecg_model.inference.block.
    block_decide` on its beats) against the recording's conduction (its
    beats' most common class of Normal, LBBB, RBBB), and LBBB/RBBB recall and
    precision over recordings ("unsure" is no block found)."""
    recs = _recordings(meta)
    cls = meta["class"].to_numpy()
    pred_cls = np.array([CLASSES[k] for k in np.asarray(probs).argmax(axis=1)])
    qrs = feats[:, BEAT_FEATURES.index("qrs_ms")]
    rows = []
    for rec in np.unique(recs):
        i = np.flatnonzero(recs == rec)
        cond = [c for c in cls[i] if c in COND_NAMES]
        if not cond:
            continue
        truth = {"Normal": "none", COND_NAMES[1]: "LBBB", COND_NAMES[2]: "RBBB"}[
            pd.Series(cond).mode()[0]
        ]
        d = block_decide(list(pred_cls[i]), q[i], qrs[i], ())
        rows.append((rec, truth, d["block"] or "none"))
    df = pd.DataFrame(rows, columns=["recording", "truth", "decision"])
    out = {"recordings": len(df)}
    for b in ("LBBB", "RBBB"):
        tp = int(((df.truth == b) & (df.decision == b)).sum())
        out[b] = {
            "recall": tp / max(int((df.truth == b).sum()), 1),
            "precision": tp / max(int((df.decision == b).sum()), 1),
            "recordings": int((df.truth == b).sum()),
            "called": int((df.decision == b).sum()),
        }
    out["unsure"] = int((df.decision == "unsure").sum())
    out["table"] = df.to_dict("records")
    return out


def block_fit_run(
    run_dir: str | os.PathLike,
    dataset: str | os.PathLike | None = None,
    data: str | os.PathLike | None = None,
    seeds: tuple[int, ...] = (0, 1, 2),
    candidates: tuple[str, ...] = tuple(CANDIDATES),
    no_widths: tuple[str, ...] = tuple(FIT_NO_WIDTHS),
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Fit the run's block stage on its training patients; score its test part.

    The pipeline: every beat measured in its record (:func:`block_table_cached`)
    -> each candidate (:data:`CANDIDATES`) and smoothing (:data:`SMOOTH_GRID`)
    scored out of fold on the training patients' Normal, LBBB and RBBB beats,
    patients grouped -> the best kept, fitted on every training patient ->
    ``block.json`` -> the test patients scored with the picture alone, the
    stage alone and both, by beat and by recording (every lead against lead II
    alone).

    Parameters
    ----------
    run_dir : path
        A run (or the default model's patient run) with ``model.keras``.
    dataset : path, optional
        A built dataset drawn to the run's contract; default, the run's own.
        Its training patients fit the stage, its test patients score it.
    seeds : tuple of int
        Each candidate's out-of-fold score, and the chosen one's test figures,
        are the mean over these seeds (folds and boosting both draw on them).
    no_widths : tuple of str
        Databases whose widths the fit does not see (:data:`FIT_NO_WIDTHS`
        says why); their beats do not score the candidates, and their test
        patients are still scored.

    Returns
    -------
    dict
        What ``metrics.json`` gets as ``block_stage``.
    """
    run_dir = Path(run_dir)
    say = progress or (lambda m: None)
    pred = Predictor(run_dir)
    cfg = TrainConfig.from_json(json_read(run_dir / "config.json"))
    dataset = Path(dataset) if dataset else dataset_for(cfg, pred.spec)
    root = data_dir(data)
    # 1. every beat measured in its record (kept in the dataset folder).
    ds = dataset_load(dataset, pred.spec)
    meta = pd.concat([ds.meta_train, ds.meta_test], ignore_index=True)
    table = block_table_cached(root, dataset, meta, pred.spec.fs, say)
    tr = ds.meta_train.iloc[_time_order(ds.meta_train)]
    f_tr, first_tr = _conduction_rows(tr, table)
    cls_tr = tr["class"].to_numpy()
    fit = first_tr & np.isin(cls_tr, COND_NAMES) & measured(f_tr)
    widths = block_widths(tr[fit], f_tr[fit])  # before roahd's are blanked
    f_tr = widths_blank(f_tr, tr, no_widths)
    # Candidates are scored on the recordings' beats, not on lone registered ones.
    scored = ~tr["database"].isin(no_widths).to_numpy()[fit]
    if len(np.unique(cls_tr[fit])) < 3:
        raise EcgError(
            f"{dataset}: its training patients lack one of Normal, LBBB and RBBB; "
            "the block stage needs all three"
        )
    y = np.array([COND_NAMES.index(c) for c in cls_tr[fit]])
    groups = patient_ids(tr)[fit]
    # 2. each candidate and smoothing scored out of fold, patients grouped.
    oof = {}
    for name in candidates:
        kind, feats = CANDIDATES[name]
        x = block_x(f_tr[fit], feats)
        scores = {k: [] for k in SMOOTH_GRID}
        for s in seeds:
            say(f"{name}: out of fold, seed {s}")
            p = stage_oof(x, y, groups, kind, s)
            for k in SMOOTH_GRID:
                pk = block_smooth(p, k, groups).argmax(axis=1)
                scores[k].append(
                    conduction_scores(y[scored], pk[scored], groups[scored])
                )
        for k, per_seed in scores.items():
            oof[f"{name}, smooth {k}"] = {
                "candidate": name,
                "smooth": k,
                "patient_macro_f1_mean": float(
                    np.mean([r["patient_macro_f1"] for r in per_seed])
                ),
                "macro_f1_mean": float(np.mean([r["macro_f1"] for r in per_seed])),
                "per_seed": per_seed,
            }
    chosen = max(oof, key=lambda k: oof[k]["patient_macro_f1_mean"])
    name, smooth = oof[chosen]["candidate"], oof[chosen]["smooth"]
    kind, feats = CANDIDATES[name]
    # 3. the chosen stage on every training patient, and its twin of the same
    #    kind and smoothing on lead II alone (what one lead gives).
    w = patient_weights(y, groups)

    def fitted(fs: tuple[str, ...], s: int) -> dict:
        st = stage_fit(block_x(f_tr[fit], fs), y, w, kind, s)
        return {**st, "features": list(fs), "smooth": smooth}

    stages = {s: fitted(feats, s) for s in seeds}
    stages_ii = {s: fitted(LEAD_II_FEATURES, s) for s in seeds}
    # 4. test patients: picture (with the rhythm step), stage alone, both.
    say("test patients: pictures")
    order = _time_order(ds.meta_test)
    te = ds.meta_test.iloc[order]
    p_img = pred.predict_arrays(ds.x_test)[order]
    rr_te = manifest_rr(te, data, pred.spec.fs)
    p_pic = rhythm_step_rr(pred, p_img, rr_te)
    f_te, first_te = _conduction_rows(te, table)
    g_te, recs_te = patient_ids(te), _recordings(te)
    y_te = ds.y_test[order]
    seed = cfg.seed if cfg.split != "random" else 0
    picture = metrics_compute(y_te, p_pic.argmax(axis=1), seed=seed, groups=g_te)
    cls_te = te["class"].to_numpy()
    on = first_te & np.isin(cls_te, COND_NAMES) & measured(f_te)
    yc = np.array([COND_NAMES.index(c) for c in cls_te[on]])
    cond_idx = [CLASSES.index(c) for c in COND_NAMES]
    per_seed, recs_all, recs_ii = [], [], []
    for s in seeds:
        both, q = block_apply(p_pic, f_te, stages[s], recs_te)
        both_ii, q_ii = block_apply(p_pic, f_te, stages_ii[s], recs_te)
        alone = block_smooth(stage_proba(stages[s], f_te[on]), smooth, recs_te[on])
        m_both = metrics_compute(y_te, both.argmax(axis=1), seed=seed, groups=g_te)
        m_ii = metrics_compute(y_te, both_ii.argmax(axis=1), n_boot=0)
        recs_all.append(recording_decisions(te, both, q, f_te))
        recs_ii.append(recording_decisions(te, both_ii, q_ii, f_te))
        per_seed.append(
            {
                "seed": s,
                "both": _summary(m_both),
                "both_lead_ii": _summary(m_ii),
                "stage_alone_conduction": conduction_scores(
                    yc, alone.argmax(axis=1), g_te[on]
                ),
                "by_database": _by_database(te, y_te, p_pic, both),
                "full": m_both,
            }
        )
    pic_cond = p_pic[on][:, cond_idx].argmax(axis=1)

    def mean_of(key: str) -> dict:
        return {
            k: float(np.mean([r[key][k] for r in per_seed])) for k in per_seed[0][key]
        }

    def rec_mean(rs: list[dict]) -> dict:
        return {
            b: {
                k: float(np.mean([r[b][k] for r in rs]))
                for k in ("recall", "precision")
            }
            | {"recordings": rs[0][b]["recordings"]}
            for b in ("LBBB", "RBBB")
        }

    res = {
        "dataset": str(dataset),
        "fitted_on": f"training patients' Normal, LBBB and RBBB beats "
        f"({int(fit.sum())} beats, {len(np.unique(groups))} patients; widths "
        f"not seen: {', '.join(no_widths) or 'none'}), each patient one vote in "
        "its class",
        "no_widths": {d: FIT_NO_WIDTHS.get(d, "asked for") for d in no_widths},
        "widths_train": widths,
        "candidates": oof,
        "chosen": chosen,
        "choice": "highest out-of-fold macro F1 of Normal/LBBB/RBBB with each "
        "patient one vote in its class (patients grouped, 5 folds; scored on "
        f"the recordings' beats), mean over seeds {list(seeds)}",
        "seeds": list(seeds),
        "test": {
            "picture": _summary(picture),
            "picture_conduction": conduction_scores(yc, pic_cond, g_te[on]),
            "both_mean": mean_of("both"),
            "both_lead_ii_mean": mean_of("both_lead_ii"),
            "per_seed": [{k: v for k, v in r.items() if k != "full"} for r in per_seed],
            "conduction_beats": int(on.sum()),
            "recordings": rec_mean(recs_all),
            "recordings_lead_ii": rec_mean(recs_ii),
            "recordings_seed0": recs_all[0],
            "recordings_lead_ii_seed0": recs_ii[0],
        },
        "full_seed0": per_seed[0]["full"],
        "picture_full": picture,
    }
    # 5. the stage kept beside the model: seed 0's.
    keep = {k: v for k, v in stages[seeds[0]].items() if k != "model"}
    if kind == "boosting":
        atomic_write_bytes(
            run_dir / BLOCK_MODEL_FILE, pickle.dumps(stages[seeds[0]]["model"])
        )
    atomic_write_json(
        run_dir / BLOCK_FILE,
        {
            "stage": keep,
            "fitted_on": res["fitted_on"],
            "chosen": chosen,
            "choice": res["choice"],
            "seed": seeds[0],
        },
    )
    metrics = json_read(run_dir / "metrics.json")
    metrics["block_stage"] = res
    atomic_write_json(run_dir / "metrics.json", metrics)
    return res


def _by_database(
    meta: pd.DataFrame, y: np.ndarray, p_pic: np.ndarray, p_both: np.ndarray
) -> dict:
    """LBBB, RBBB and Normal recall of the picture and of picture + stage, by
    test database (beats of that class there)."""
    out = {}
    for db in sorted(meta["database"].unique()):
        i = (meta["database"] == db).to_numpy()
        for name in COND_NAMES:
            c = CLASSES.index(name)
            hit = i & (y == c)
            if hit.any():
                out.setdefault(db, {})[name] = {
                    "beats": int(hit.sum()),
                    "picture": float((p_pic[hit].argmax(axis=1) == c).mean()),
                    "both": float((p_both[hit].argmax(axis=1) == c).mean()),
                }
    return out


def block_fit_all(
    run_dir: str | os.PathLike,
    dataset: str | os.PathLike,
    like: str | os.PathLike,
    data: str | os.PathLike | None = None,
    no_widths: tuple[str, ...] = tuple(FIT_NO_WIDTHS),
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Fit the stage chosen for run ``like`` on every patient of ``dataset``,
    for a model trained on every patient (the default); writes ``block.json``
    in ``run_dir``. Nothing is left to score it on: its figures on new
    patients are ``like``'s (a same-recipe run on the training patients).
    """
    run_dir, like = Path(run_dir), Path(like)
    chosen = json_read(like / BLOCK_FILE)
    name = str(chosen.get("chosen", "")).split(",")[0]
    if name not in CANDIDATES:
        raise EcgError(f"{like / BLOCK_FILE}: no known candidate ({name!r})")
    kind, feats = CANDIDATES[name]
    smooth = int(chosen["stage"].get("smooth", 0))
    spec = Predictor(run_dir).spec
    meta = manifest_read(dataset)
    table = block_table_cached(data_dir(data), dataset, meta, spec.fs, progress)
    meta = meta.iloc[_time_order(meta)]
    f, first = _conduction_rows(meta, table)
    cls = meta["class"].to_numpy()
    fit = first & np.isin(cls, COND_NAMES) & measured(f)
    f = widths_blank(f, meta, no_widths)
    y = np.array([COND_NAMES.index(c) for c in cls[fit]])
    groups = patient_ids(meta)[fit]
    st = stage_fit(block_x(f[fit], feats), y, patient_weights(y, groups), kind, seed)
    if kind == "boosting":
        atomic_write_bytes(run_dir / BLOCK_MODEL_FILE, pickle.dumps(st["model"]))
    info = {
        "stage": {
            **{k: v for k, v in st.items() if k != "model"},
            "features": list(feats),
            "smooth": smooth,
        },
        "fitted_on": f"every patient's Normal, LBBB and RBBB beats ({int(fit.sum())} "
        f"beats, {len(np.unique(groups))} patients; widths not seen: "
        f"{', '.join(no_widths) or 'none'}), each patient one vote in its class",
        "chosen": chosen["chosen"],
        "choice": f"as chosen for {like.name}: {chosen.get('choice', '')}",
        "seed": seed,
    }
    atomic_write_json(run_dir / BLOCK_FILE, info)
    return info
