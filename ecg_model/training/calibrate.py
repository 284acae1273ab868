"""Calibration: make a model's probabilities mean what they say on new patients.

Temperature scaling (Guo et al. 2017): one number T divides the model's logits,
fitted by maximum likelihood on beats of patients the model never saw, so a
beat shown at 80% is right about 80% of the time. The classes it picks do not
change. The pipeline of :func:`calibrate_run` reads: held-out patients' beats ->
the model's probabilities -> T on the fitting patients -> reliability and
expected calibration error (ECE) before and after on other patients -> the
uncertain threshold -> ``calibration.json`` beside the model, which
:class:`~ecg_model.inference.predict.Predictor` applies.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar

from ..core.classes import CLASSES
from ..core.errors import EcgError
from ..core.io import atomic_write_bytes, atomic_write_json
from ..data.dataset import BuildOptions, dataset_build, dataset_load
from ..inference.predict import CALIBRATION_FILE, Predictor, probs_temper

#: The uncertain flag's promise: answers above the threshold were right at least
#: this often on the fitting patients.
TARGET_ACCURACY = 0.9
#: Databases whose patients no mitdb-trained model has seen.
HELD_OUT_DATABASES = ("svdb", "cudb")


def temperature_fit(probs: np.ndarray, y: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of ``y``.

    Parameters
    ----------
    probs : np.ndarray
        Model probabilities, shape ``(n, n_classes)``.
    y : np.ndarray
        True class indices, shape ``(n,)``.
    """

    def nll(log_t: float) -> float:
        p = probs_temper(probs, float(np.exp(log_t)))
        return float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1)).mean())

    res = minimize_scalar(nll, bounds=(np.log(0.05), np.log(50.0)), method="bounded")
    return float(np.exp(res.x))


def reliability(probs: np.ndarray, y: np.ndarray, n_bins: int = 10) -> dict:
    """Reliability table and expected calibration error of top-class confidence.

    Returns ``{"ece": float, "bins": [{"lo", "hi", "n", "confidence",
    "accuracy"}]}``, equal-width confidence bins; ECE weighs each bin's gap
    between mean confidence and accuracy by its share of the beats.
    """
    conf = probs.max(axis=1)
    right = probs.argmax(axis=1) == y
    edges = np.linspace(0, 1, n_bins + 1)
    bins, ece = [], 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (conf > lo) & (conf <= hi)
        if not sel.any():
            continue
        c, a = float(conf[sel].mean()), float(right[sel].mean())
        ece += sel.mean() * abs(c - a)
        bins.append(
            {"lo": float(lo), "hi": float(hi), "n": int(sel.sum()), "confidence": c}
            | {"accuracy": a}
        )
    return {"ece": float(ece), "bins": bins}


def uncertain_threshold(
    probs: np.ndarray, y: np.ndarray, target: float = TARGET_ACCURACY
) -> float:
    """The lowest confidence above which answers reach ``target`` accuracy.

    Calibrated probabilities of the fitting patients; 0.99 where none does.
    """
    conf = probs.max(axis=1)
    right = probs.argmax(axis=1) == y
    for t in np.round(np.arange(0.30, 0.991, 0.01), 2):
        sel = conf >= t
        if sel.sum() >= 20 and right[sel].mean() >= target:
            return float(t)
    return 0.99


def reliability_plot(before: dict, after: dict) -> bytes:
    """The reliability diagram, before and after calibration, as PNG bytes."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 4.2), dpi=110)
    ax.plot([0, 1], [0, 1], color="#999", lw=1, ls="--", label="perfect")
    for rel, name, color in (
        (before, "before", "#e45756"),
        (after, "after", "#4c78a8"),
    ):
        c = [b["confidence"] for b in rel["bins"]]
        a = [b["accuracy"] for b in rel["bins"]]
        ax.plot(c, a, "o-", color=color, label=f"{name} (ECE {100 * rel['ece']:.1f}%)")
    ax.set(xlabel="confidence", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def calibrate_run(
    model_dir: str | os.PathLike,
    data: str | os.PathLike | None = None,
    databases: tuple[str, ...] = HELD_OUT_DATABASES,
) -> dict:
    """Fit the model's temperature on held-out patients; write ``calibration.json``.

    The databases' patient-protocol *training* patients fit the temperature and
    the threshold; their *test* patients (fixed in the adapters) only measure
    the result. Neither was seen by a model trained on mitdb and vfdb.
    """
    model_dir = Path(model_dir)
    pred = Predictor(model_dir)
    pred.temperature = 1.0  # the raw model, whatever was fitted before
    with tempfile.TemporaryDirectory() as tmp:
        # 1. the held-out patients' beats, drawn to the model's contract.
        opts = BuildOptions(split="patient", databases=tuple(databases))
        dataset_build(Path(tmp) / "ds", opts, pred.spec, data=data)
        ds = dataset_load(Path(tmp) / "ds", pred.spec)
    if len(ds.y_train) < 100 or len(ds.y_test) < 100:
        raise EcgError(f"too few held-out beats to calibrate ({len(ds.y_train)})")
    # 2. the model's probabilities.
    p_fit, p_eval = pred.predict_arrays(ds.x_train), pred.predict_arrays(ds.x_test)
    # 3. T and the threshold on the fitting patients; reliability before and
    #    after on the other patients.
    res = _calibration(p_fit, ds.y_train, p_eval, ds.y_test)
    res["fitted_on"] = (
        f"{', '.join(databases)}: training patients of the "
        f"new-patient protocol ({len(ds.y_train)} beats)"
    )
    res["evaluated_on"] = (
        f"{', '.join(databases)}: test patients ({len(ds.y_test)} beats)"
    )
    return _calibration_write(model_dir, res)


def _run_probs(csv: Path) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities ``(n, 6)`` and true classes ``(n,)`` of a predictions CSV:
    a run's ``test_predictions.csv`` (``true_class`` column) or its out-of-fold
    file (the class is the image's folder, ``train/<class>/<file>``)."""
    import pandas as pd

    df = pd.read_csv(csv, low_memory=False)
    names = df["true_class"] if "true_class" in df else df["path"].str.split("/").str[1]
    bad = sorted(set(names) - set(CLASSES))
    if bad:
        raise EcgError(f"{csv}: classes outside this package's: {bad}")
    y = names.map({c: i for i, c in enumerate(CLASSES)}).to_numpy(np.int64)
    return df[list(CLASSES)].to_numpy(np.float64), y


def calibrate_from_run(
    model_dir: str | os.PathLike, run_dir: str | os.PathLike
) -> dict:
    """Calibrate a model with the predictions of a new-patient run of its recipe.

    A model trained on every patient (the published default) has no patients
    left to fit a temperature on. A patient-protocol run of the same recipe has:
    its out-of-fold predictions of training beats (``fit-rhythm``'s fold models,
    each beat predicted by a model that never saw its record) fit the
    temperature and the uncertain threshold; its test patients' predictions
    measure them. Writes ``calibration.json`` and ``reliability.png`` into
    ``model_dir``; returns what :func:`calibrate_run` returns.
    """
    model_dir, run_dir = Path(model_dir), Path(run_dir)
    oof = sorted((run_dir / "rhythm_folds").glob("oof-*.csv"))
    test = run_dir / "test_predictions.csv"
    if not oof or not test.exists():
        raise EcgError(
            f"{run_dir}: needs out-of-fold predictions (run 'fit-rhythm' on it "
            "first) and test_predictions.csv"
        )
    p_fit, y_fit = _run_probs(oof[-1])
    p_eval, y_eval = _run_probs(test)
    res = _calibration(p_fit, y_fit, p_eval, y_eval)
    if res["ece_after"] > res["ece_before"]:
        # Fold models, trained on half the patients, are surer of themselves
        # than the full model: their temperature does not carry over. Nothing
        # is written rather than a calibration that makes things worse.
        raise EcgError(
            f"{run_dir}: the temperature fitted on its out-of-fold beats "
            f"({res['temperature']:.2f}) worsens calibration on its test patients "
            f"(ECE {100 * res['ece_before']:.1f}% -> {100 * res['ece_after']:.1f}%); "
            "nothing written"
        )
    res["fitted_on"] = (
        f"out-of-fold predictions of the training patients' beats of run "
        f"{run_dir.name} ({len(y_fit)} beats; the same recipe, each beat from a "
        "model that never saw its record)"
    )
    res["evaluated_on"] = f"test patients of run {run_dir.name} ({len(y_eval)} beats)"
    return _calibration_write(model_dir, res)


def _calibration_write(model_dir: Path, res: dict) -> dict:
    """Write ``calibration.json`` and ``reliability.png`` beside the model."""
    atomic_write_json(model_dir / CALIBRATION_FILE, res)
    plot = reliability_plot(
        {"bins": res["reliability_before"], "ece": res["ece_before"]},
        {"bins": res["reliability_after"], "ece": res["ece_after"]},
    )
    atomic_write_bytes(model_dir / "reliability.png", plot)
    return res


def _calibration(
    p_fit: np.ndarray, y_fit: np.ndarray, p_eval: np.ndarray, y_eval: np.ndarray
) -> dict:
    """Temperature and threshold on the fitting beats, measured on the others."""
    t = temperature_fit(p_fit, y_fit)
    before = reliability(p_eval, y_eval)
    after = reliability(probs_temper(p_eval, t), y_eval)
    threshold = uncertain_threshold(probs_temper(p_fit, t), y_fit)
    conf = probs_temper(p_eval, t).max(axis=1)
    right = probs_temper(p_eval, t).argmax(axis=1) == y_eval
    above = conf >= threshold
    return {
        "temperature": round(t, 4),
        "uncertain_below": threshold,
        "ece_before": round(before["ece"], 4),
        "ece_after": round(after["ece"], 4),
        "accuracy_above_threshold": round(float(right[above].mean()), 4)
        if above.any()
        else None,
        "share_flagged": round(float((~above).mean()), 4),
        "accuracy_flagged": round(float(right[~above].mean()), 4)
        if (~above).any()
        else None,
        "reliability_before": before["bins"],
        "reliability_after": after["bins"],
        "target_accuracy": TARGET_ACCURACY,
    }


def calibration_markdown(res: dict) -> str:
    """The model card's calibration section."""
    rows = "\n".join(
        f"| {b['lo']:.1f}-{b['hi']:.1f} | {b['n']} | {100 * b['confidence']:.1f}% "
        f"| {100 * b['accuracy']:.1f}% |"
        for b in res["reliability_after"]
    )
    acc_above = res["accuracy_above_threshold"]
    return (
        "## Calibration\n\n"
        f"Temperature scaling, T = {res['temperature']:.3f}, fitted on "
        f"{res['fitted_on']}; measured on {res['evaluated_on']}: expected "
        f"calibration error {100 * res['ece_before']:.1f}% before, "
        f"{100 * res['ece_after']:.1f}% after (10 equal bins). A picture is "
        f"flagged *uncertain* below a calibrated probability of "
        f"{res['uncertain_below']:.2f}, where answers on the fitting patients fell "
        f"under {100 * res['target_accuracy']:.0f}% right; on the evaluation "
        f"patients {100 * res['share_flagged']:.1f}% of beats are flagged, and "
        + (f"{100 * acc_above:.1f}% of the others are right. " if acc_above else "")
        + "Reliability after calibration (`reliability.png` shows both):\n\n"
        "| confidence | beats | mean confidence | accuracy |\n|---|---|---|---|\n"
        + rows
        + "\n"
    )
