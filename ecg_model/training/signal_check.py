"""Signal check: the beats of a build read as signal instead of as pictures.

A class missed on new patients is missed for one of two reasons: the picture
drew away what separates it, or the training patients do not show it. To tell
which, this trains a small 1-D network on the very signal each picture was
drawn from (the record's filtered lead at the build's rate, over the picture's
window, its amplitude kept) with the picture recipe's caps, class weights and
validation share, and scores it on the same test beats with the same
intervals. Where the signal model misses what the picture model misses, finer
pictures will not find it; more patients will.

The pipeline reads: manifest rows (first lead) -> windows cut from each record
-> caps, validation share, class weights -> fit -> test metrics, printed beside
a picture run's.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.classes import CLASSES, N_CLASSES
from ..core.errors import EcgError
from ..core.io import atomic_write_json, data_dir
from ..data.dataset import (
    caps_apply,
    dataset_options,
    dataset_spec,
    lead_first,
    manifest_read,
    patient_ids,
    record_of,
    record_path,
)
from ..data.render import RenderSpec
from .config import TrainConfig
from .evaluate import metrics_new_patients
from .train import class_weights, val_split

SIGNAL_CHECK_FILE = "signal_check.json"


def signal_check_path(
    dataset: str | os.PathLike, out: str | os.PathLike | None = None
) -> Path:
    """Where :func:`signal_check` writes: ``out``, else ``signal_check.json`` in
    the dataset folder."""
    return Path(out) if out else Path(dataset) / SIGNAL_CHECK_FILE


def windows_cut(sig: np.ndarray, centres: np.ndarray, spec: RenderSpec) -> np.ndarray:
    """The picture's window of ``sig`` around each beat, as the model reads it.

    Parameters
    ----------
    sig : np.ndarray
        Cleaned signal in mV at ``spec.fs`` Hz, shape ``(sig_len,)``.
    centres : np.ndarray
        Beat samples at ``spec.fs``, shape ``(n,)``.
    spec : RenderSpec
        The build's drawing contract (rate, seconds before and after the beat).

    Returns
    -------
    np.ndarray
        Shape ``(n, spec.before + spec.after)``, float32: each window less its
        median, over its range (as the picture scales each window to its
        height, but keeping every amplitude level rather than 64 rows). Beyond
        the record's ends the window is flat, as the picture's paper is blank.
    """
    n_len = spec.before + spec.after
    pad = np.pad(np.asarray(sig, np.float32), (spec.before, spec.after), mode="edge")
    # Row i of idx reads sig[c_i - before : c_i + after] in the padded signal.
    idx = np.asarray(centres, np.int64)[:, None] + np.arange(n_len)[None, :]
    w = pad[np.clip(idx, 0, pad.size - 1)]  # (n, n_len)
    w -= np.median(w, axis=1, keepdims=True)
    span = w.max(axis=1, keepdims=True) - w.min(axis=1, keepdims=True)
    return (w / np.maximum(span, 1e-3)).astype(np.float32)


def _record_windows(args: tuple) -> np.ndarray:
    """Worker: one record's windows at the given beats."""
    path, db, samples, spec = args
    rec = record_of(path, db, spec.fs)
    return windows_cut(rec.sig, samples, spec)


def dataset_windows(
    root: str | os.PathLike,
    data: str | os.PathLike | None = None,
    workers: int | None = None,
) -> tuple[np.ndarray, pd.DataFrame, RenderSpec]:
    """Every first-lead row of a built dataset as its window of signal.

    Parameters
    ----------
    root : path
        A dataset folder (``build-dataset``).
    data : path, optional
        The data folder holding its records (default ``$ECG_DATA_DIR`` or
        ``../shared/data``).
    workers : int, optional
        Processes reading records (default: the CPU count).

    Returns
    -------
    tuple
        Windows ``(n, spec.before + spec.after)`` float32, the manifest rows
        they belong to (index reset), and the build's drawing contract.

    Raises
    ------
    EcgError
        If the folder is not a build, or a record behind its rows is absent.
    """
    root = Path(root)
    spec = dataset_spec(root)
    if spec is None:
        raise EcgError(f"{root}: not a built dataset (no readable dataset.json)")
    meta = manifest_read(root)
    # Other leads and noisy copies are extra views of a beat: one window a beat.
    meta = meta[lead_first(meta)].reset_index(drop=True)
    base = data_dir(data)
    jobs, rows = [], []
    for (db, rn), g in meta.groupby(["database", "record"], sort=False):
        path = record_path(base, str(db), str(rn))
        if not path.with_suffix(".hea").exists():
            raise EcgError(
                f"{path}: record not found; the signal check reads the records "
                f"the dataset was drawn from (set ECG_DATA_DIR or --data-dir)"
            )
        jobs.append((path, str(db), g["sample"].to_numpy(np.int64), spec))
        rows.append(g.index.to_numpy())
    x = np.zeros((len(meta), spec.before + spec.after), np.float32)
    with ProcessPoolExecutor(max(1, min(workers or os.cpu_count() or 1, 8))) as ex:
        for ix, w in zip(rows, ex.map(_record_windows, jobs)):
            x[ix] = w
    return x, meta, spec


def signal_model_build(n_samples: int):
    """A small 1-D network: five strided convolutions (each halves the time
    axis), global average, softmax over the six classes; input
    ``(n_samples, 1)``."""
    import keras

    layers = keras.layers
    inp = keras.Input((n_samples, 1), name="signal")
    x = inp
    # Kernels of 28, 40, 80, 96 and 192 ms at 250 Hz, each on the map of the last.
    for filters, k in ((32, 7), (48, 5), (64, 5), (96, 3), (128, 3)):
        x = layers.Conv1D(filters, k, strides=2, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
    x = layers.GlobalAveragePooling1D()(x)
    x = layers.Dropout(0.3)(x)
    out = layers.Dense(N_CLASSES, activation="softmax", name="probs")(x)
    return keras.Model(inp, out, name="signal_check")


def signal_check(
    dataset: str | os.PathLike,
    config: TrainConfig = TrainConfig(),
    data: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Train the signal model on a build's training part, score its test part.

    Parameters
    ----------
    dataset : path
        A dataset folder; its split is used as built (``train``/``test``).
    config : TrainConfig
        The picture recipe to mirror: ``epochs``, ``batch_size``,
        ``learning_rate``, ``class_caps``, ``balance``, ``val_fraction`` (a
        share of the capped training beats), ``patience`` and ``seed``. The
        picture-only options (model, augmentation) do not apply.
    data : path, optional
        The data folder holding the build's records.
    out : path, optional
        Where to write the result as JSON (default: ``signal_check.json`` in
        the dataset folder).

    Returns
    -------
    dict
        :func:`~ecg_model.training.evaluate.metrics_new_patients` of the test
        beats (intervals over test patients on a patient build), with
        ``protocol``, ``n_train``, ``n_val``, ``config``, ``elapsed_s`` and
        ``recall_by_record`` (class -> record -> share of its beats found).
    """
    import keras

    t0 = time.time()
    say = progress or (lambda msg: None)
    # 1. windows of signal for every beat of the build.
    x, meta, spec = dataset_windows(dataset, data)
    say(f"{len(x):,} windows of {x.shape[1]} samples ({time.time() - t0:.1f} s)")
    y = meta["class"].map({c: i for i, c in enumerate(CLASSES)}).to_numpy()
    train = np.flatnonzero((meta["split"] == "train").to_numpy())
    test = np.flatnonzero((meta["split"] == "test").to_numpy())
    if not train.size or not test.size:
        raise EcgError(f"{dataset}: the signal check needs beats in train and test")

    # 2. the picture recipe's caps, validation share and class weights.
    keep = train[
        caps_apply(np.asarray(CLASSES)[y[train]], config.class_caps, config.seed)
    ]
    groups = patient_ids(meta.iloc[keep])
    share = val_split(y[keep], groups, config.val_fraction, "beat", config.seed)
    tr, va = (keep[i] for i in share)
    cw = class_weights(y[tr], config.balance)

    # 3. fit, keeping the weights of the best validation loss.
    keras.utils.set_random_seed(config.seed)
    model = signal_model_build(x.shape[1])
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    stop = keras.callbacks.EarlyStopping(
        patience=config.patience, restore_best_weights=True
    )
    model.fit(
        x[tr, :, None],  # (n, n_samples, 1)
        y[tr],
        sample_weight=cw[y[tr]],
        batch_size=config.batch_size,
        epochs=config.epochs,
        validation_data=(x[va, :, None], y[va]),
        callbacks=[stop],
        verbose=0,
    )

    # 4. score the test beats as a picture run is scored.
    pred = model.predict(x[test, :, None], batch_size=1024, verbose=0).argmax(axis=1)
    protocol = str(dataset_options(dataset).get("split", ""))
    m = metrics_new_patients(y[test], pred, meta.iloc[test], protocol)
    rows = meta.iloc[test].assign(hit=pred == y[test])
    m["recall_by_record"] = {
        c: {
            f"{d}/{r}": round(float(g["hit"].mean()), 4)
            for (d, r), g in rows[rows["class"] == c].groupby(["database", "record"])
        }
        for c in CLASSES
        if (rows["class"] == c).any()
    }
    m.update(
        protocol=protocol,
        n_train=int(tr.size),
        n_val=int(va.size),
        config=config.to_json(),
        elapsed_s=round(time.time() - t0, 1),
    )
    atomic_write_json(signal_check_path(dataset, out), m)
    return m


def signal_check_table(m: dict, picture: dict | None = None) -> str:
    """A Markdown table of recall and precision per class, the signal model's
    beside a picture run's ``metrics.json`` where given."""
    head = ["class", "test beats", "signal recall", "signal precision"]
    if picture:
        head += ["picture recall", "picture precision"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    theirs = (picture or {}).get("per_class", {})
    for c in CLASSES:
        s, p = m["per_class"][c], theirs.get(c)
        cells = [c, f"{s['support']:,}", f"{s['recall']:.1%}", f"{s['precision']:.1%}"]
        if picture:
            cells += [f"{p['recall']:.1%}", f"{p['precision']:.1%}"] if p else ["-"] * 2
        lines.append("| " + " | ".join(cells) + " |")
    for k in ("accuracy", "macro_recall", "macro_f1"):
        ci = m.get("ci", {}).get(k)
        cell = f"{m[k]:.1%}" + (f" [{ci[0]:.1%}, {ci[1]:.1%}]" if ci else "")
        extra = [f"{picture[k]:.1%}", ""] if picture and k in picture else []
        cells = [k.replace("_", " "), "", cell, "", *extra]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
