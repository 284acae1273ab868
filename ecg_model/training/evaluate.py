"""Test metrics with bootstrap confidence intervals and a naive baseline."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
)

from ..core.classes import CLASSES, N_CLASSES, SHORT_NAMES
from ..core.io import atomic_write_json, json_read
from ..data.dataset import patient_ids

if TYPE_CHECKING:
    import pandas as pd


def _from_cm(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy, macro recall, macro F1 and per-class figures from confusion matrices.

    ``cm`` has shape ``(..., n_classes, n_classes)`` (rows true, columns predicted);
    classes absent from the truth are left out of the macro averages, as
    scikit-learn does with the ``labels`` present.
    """
    tp = np.diagonal(cm, axis1=-2, axis2=-1).astype(float)  # (..., k)
    support = cm.sum(axis=-1).astype(float)
    predicted = cm.sum(axis=-2).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, tp / support, 0.0)
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        f1 = np.where(
            precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0
        )
    present = support > 0
    n_present = np.maximum(present.sum(axis=-1), 1)
    return {
        "accuracy": tp.sum(axis=-1) / np.maximum(cm.sum(axis=(-2, -1)), 1),
        "macro_recall": (recall * present).sum(axis=-1) / n_present,
        "macro_f1": (f1 * present).sum(axis=-1) / n_present,
        "recall": recall,
        "precision": precision,
        "f1": f1,
    }


def metrics_compute(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> dict:
    """Accuracy, macro recall/F1, per-class precision/recall/F1, 95% bootstrap CIs.

    Parameters
    ----------
    y_true, y_pred : np.ndarray
        Class indices, shape ``(n,)``.
    n_boot : int
        Bootstrap resamples of the test set (0: no intervals).
    groups : np.ndarray, optional
        Patient (record) of each beat, shape ``(n,)``. With it, the intervals
        resample patients, not beats: beats of one patient are alike, so on a
        new-patient protocol the beat bootstrap's intervals are far too narrow
        (the beat intervals are kept as ``ci_beats``).

    Returns
    -------
    dict
        ``accuracy``, ``macro_recall``, ``macro_f1``, ``per_class.<name>`` with
        ``precision, recall, f1, support`` and their ``*_ci``, ``ci`` for the
        headline figures, ``confusion_matrix`` (rows true, columns predicted).
    """
    labels = list(range(N_CLASSES))
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    p, r, f, s = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    present = s > 0
    out = {
        "n": int(y_true.size),
        "accuracy": float(accuracy_score(y_true, y_pred)) if y_true.size else 0.0,
        "macro_recall": float(r[present].mean()) if present.any() else 0.0,
        "macro_f1": float(f[present].mean()) if present.any() else 0.0,
        "per_class": {
            c: {
                "precision": float(p[i]),
                "recall": float(r[i]),
                "f1": float(f[i]),
                "support": int(s[i]),
            }
            for i, c in enumerate(CLASSES)
        },
    }
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    out["confusion_matrix"] = cm.tolist()
    if n_boot and y_true.size:
        # Resampling n beats with replacement only redistributes them over the
        # confusion matrix's cells: a multinomial draw over the cells is exact
        # and thousands of times faster than re-scoring resampled arrays.
        rng = np.random.default_rng(seed)
        cells = rng.multinomial(y_true.size, cm.ravel() / y_true.size, size=n_boot)
        _ci_fill(out, _from_cm(cells.reshape(n_boot, N_CLASSES, N_CLASSES)))
        out["ci_method"] = f"percentile bootstrap over test beats, {n_boot} resamples"
        if groups is not None and len(np.unique(groups)) > 1:
            out["ci_beats"] = out["ci"]
            _patient_ci(out, y_true, y_pred, np.asarray(groups), n_boot, rng)
        elif groups is not None:
            out["ci_method"] += " (one test patient: nothing to resample over)"
    return out


def _ci_fill(out: dict, boot: dict[str, np.ndarray]) -> None:
    """95% percentile intervals of bootstrapped figures into ``out`` (in place):
    ``ci`` for the headline figures, ``*_ci`` for each class's."""

    def ci(v: np.ndarray) -> list[float]:
        return [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))]

    out["ci"] = {k: ci(boot[k]) for k in ("accuracy", "macro_recall", "macro_f1")}
    for i, c in enumerate(CLASSES):
        for k in ("precision", "recall", "f1"):
            out["per_class"][c][f"{k}_ci"] = ci(boot[k][:, i])


def _patient_ci(
    out: dict,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    groups: np.ndarray,
    n_boot: int,
    rng: np.random.Generator,
) -> None:
    """Replace ``out``'s intervals by a bootstrap over patients (in place)."""
    names, g = np.unique(groups, return_inverse=True)
    # One confusion matrix per patient; a resample of patients is a weighted
    # sum of them (weights: how often each patient was drawn).
    per = np.zeros((names.size, N_CLASSES, N_CLASSES), np.int64)  # (p, k, k)
    np.add.at(per, (g, y_true, y_pred), 1)
    draws = rng.multinomial(names.size, np.full(names.size, 1 / names.size), n_boot)
    cells = np.tensordot(draws, per, axes=1)  # (n_boot, k, k)
    _ci_fill(out, _from_cm(cells))
    out["ci_method"] = (
        f"percentile bootstrap over the {names.size} test patients, {n_boot} resamples"
    )


def metrics_by_group(
    y_true: np.ndarray, y_pred: np.ndarray, by: np.ndarray, patients: np.ndarray
) -> dict:
    """:func:`metrics_compute` for each value of ``by`` (a database, say), with
    intervals over the ``patients`` of that part; keyed by the value."""
    by = np.asarray(by).astype(str)
    return {
        str(v): metrics_compute(
            y_true[by == v], y_pred[by == v], groups=np.asarray(patients)[by == v]
        )
        for v in np.unique(by)
    }


def metrics_new_patients(
    y_true: np.ndarray, y_pred: np.ndarray, meta: pd.DataFrame, protocol: str
) -> dict:
    """:func:`metrics_compute` as a protocol asks: intervals over test beats on
    the random split; over test patients, with figures per database, where the
    test patients are new (``meta``: the test rows' ``database`` and ``record``).
    """
    if protocol in ("random", "all", ""):
        return metrics_compute(y_true, y_pred)
    patients = patient_ids(meta)
    m = metrics_compute(y_true, y_pred, groups=patients)
    m["by_database"] = metrics_by_group(
        y_true, y_pred, meta["database"].to_numpy(), patients
    )
    return m


def metrics_refresh(run_dir: str | os.PathLike) -> dict:
    """Recompute a run's test figures from its ``test_predictions.csv`` with
    this version's intervals (over patients on new-patient protocols) and
    per-database figures; every other key of ``metrics.json`` is kept."""
    import pandas as pd

    run_dir = Path(run_dir)
    m = json_read(run_dir / "metrics.json")
    pred = pd.read_csv(run_dir / "test_predictions.csv", dtype={"record": str})
    idx = {c: i for i, c in enumerate(CLASSES)}
    y = pred["true_class"].map(idx).to_numpy()
    p = pred["predicted_class"].map(idx).to_numpy()
    new = metrics_new_patients(y, p, pred, m.get("protocol", ""))
    m.pop("ci_beats", None)
    m.update(new)
    atomic_write_json(run_dir / "metrics.json", m)
    return m


def baseline_compute(y_train: np.ndarray, y_test: np.ndarray) -> dict:
    """The naive baseline: always predict the training part's most common class."""
    majority = int(np.bincount(np.asarray(y_train), minlength=N_CLASSES).argmax())
    m = metrics_compute(y_test, np.full_like(np.asarray(y_test), majority), n_boot=0)
    m["predicts"] = CLASSES[majority]
    return m


HEADLINE = ("accuracy", "macro_recall", "macro_f1")


def metrics_problem(m: object) -> str:
    """What makes a metrics dict unusable ("" when it is whole).

    Checks what the pages and the CLI read: the headline figures, every class's
    precision/recall/F1/support, a square confusion matrix, and the same for a
    rhythm-step part (``rr_context``) and the baseline where they are present.
    """
    if not isinstance(m, dict):
        return "not a JSON object"
    missing = [k for k in (*HEADLINE, "per_class", "confusion_matrix") if k not in m]
    if missing:
        return f"missing {', '.join(missing)}"
    if not all(isinstance(m[k], (int, float)) for k in HEADLINE):
        return "accuracy, macro recall or macro F1 is not a number"
    pc = m["per_class"]
    keys = ("precision", "recall", "f1", "support")
    if not isinstance(pc, dict) or not all(
        isinstance(d, dict) and all(isinstance(d.get(k), (int, float)) for k in keys)
        for d in pc.values()
    ):
        return "per_class is not precision, recall, f1 and support for each class"
    cm = np.asarray(m["confusion_matrix"], dtype=object)
    if cm.shape != (N_CLASSES, N_CLASSES) or not all(
        isinstance(v, int) for v in cm.ravel()
    ):
        return f"confusion_matrix is not {N_CLASSES} x {N_CLASSES} counts"
    if "rr_context" in m:
        rr = m["rr_context"]
        bad = metrics_problem(rr)
        if bad or not isinstance(rr.get("pac_ratio_threshold"), (int, float)):
            return f"rr_context: {bad or 'no pac_ratio_threshold'}"
        irr = rr.get("irregular_max")
        if irr is not None and not isinstance(irr, (int, float)):
            return "rr_context: irregular_max is not a number"
        if not isinstance(rr.get("use", ""), (str, type(None))):
            return "rr_context: use is not a name"
    if "validation" in m:
        val = m["validation"]
        bad = metrics_problem(val)
        if bad or not _names(val.get("records")):
            return f"validation: {bad or 'records is not a list of names'}"
    if "test_records" in m and not _names(m["test_records"]):
        return "test_records is not a list of names"
    b = m.get("baseline")
    if b is not None and not (
        isinstance(b, dict)
        and isinstance(b.get("accuracy"), (int, float))
        and isinstance(b.get("predicts"), str)
    ):
        return "baseline has no accuracy or no class it predicts"
    if "ci" in m and not (
        isinstance(m["ci"], dict)
        and all(
            isinstance(v, list)
            and len(v) == 2
            and all(isinstance(x, (int, float)) for x in v)
            for v in m["ci"].values()
        )
    ):
        return "ci is not a [low, high] pair for each figure"
    return ""


def _names(v: object) -> bool:
    """Whether ``v`` is a list of record or patient names."""
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def metrics_table(m: dict) -> str:
    """A plain-text table of a metrics dict, for the terminal."""
    lines = [
        f"accuracy {m['accuracy']:.4f}  macro recall {m['macro_recall']:.4f}  "
        f"macro F1 {m['macro_f1']:.4f}  (n={m.get('n', '?')})"
    ]
    if "ci" in m:
        lines.append(
            "95% CI: "
            + ", ".join(f"{k} [{v[0]:.4f}, {v[1]:.4f}]" for k, v in m["ci"].items())
        )
    lines.append(
        f"{'class':<36}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}"
    )
    for c, d in m["per_class"].items():
        lines.append(
            f"{c:<36}{d['precision']:>10.4f}{d['recall']:>10.4f}{d['f1']:>10.4f}"
            f"{d['support']:>9d}"
        )
    return "\n".join(lines)


def per_class_frame(m: dict) -> pd.DataFrame:
    """Per-class precision, recall, F1 and support of a metrics dict, as a table."""
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "class": c,
                "precision": round(d["precision"], 4),
                "recall": round(d["recall"], 4),
                "f1": round(d["f1"], 4),
                "support": d["support"],
            }
            for c, d in m["per_class"].items()
        ]
    )


def lodo_table(summary: dict) -> str:
    """A Markdown table of a LODO summary (``lodo.json``): one row per held-out
    database, its accuracy, macro recall and recall per class (the command's
    output and the model card's section both)."""
    head = ["held out", "test beats", "accuracy", "macro recall"]
    head += [f"{SHORT_NAMES[c]} recall" for c in CLASSES]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for db, d in summary["databases"].items():
        cells = [db, f"{d['n_test']:,}", f"{d['accuracy']:.1%}"]
        cells.append(f"{d['macro_recall']:.1%}")
        for c in CLASSES:
            pc = d["per_class"].get(c)
            cells.append(f"{pc['recall']:.1%} (n={pc['support']:,})" if pc else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
