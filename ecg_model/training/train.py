"""Training runs: one folder per run, status kept current, cancellable, crash-safe.

A run folder (made by :mod:`.runfolder`) gains ``history.csv``,
``model.keras``, ``metrics.json``, ``confusion_matrix.csv`` and
``test_predictions.csv``. Every file is written atomically; the stop file
cancels the run within one batch.

The pipeline of :func:`train_run` reads: dataset -> caps and validation split ->
tf.data -> model -> fit (callbacks keep status and history) -> evaluate.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from ..core.classes import CLASSES, N_CLASSES
from ..core.errors import EcgError
from ..core.io import (
    artifacts_dir,
    atomic_write_csv,
    atomic_write_json,
    atomic_write_text,
    json_read,
    utc_now,
)
from ..data.databases import DATABASES
from ..data.dataset import (
    ALL_SPLIT,
    BuildOptions,
    caps_apply,
    dataset_build,
    dataset_load,
    lead_first,
    patient_ids,
)
from ..data.packed import Packed, bits_unpack_tf, images_concat
from ..data.render import RenderSpec
from ..inference.predict import model_predict
from .config import TrainConfig
from .evaluate import baseline_compute, metrics_compute, metrics_new_patients
from .models import model_build
from .runfolder import STOP_FILE, proc_identity, status_write


def _keras_callbacks(run_dir: Path, config: TrainConfig, n_batches: int):
    """The run's callbacks: status/stop, history, best checkpoint, early stop, LR."""

    class StatusCallback(keras.callbacks.Callback):
        """Keeps ``status.json`` current and checks the stop file every batch."""

        def __init__(self) -> None:
            super().__init__()
            self.epoch = 0
            self.last = 0.0
            self.cancelled = False
            self.batch = 0
            self.t0 = time.time()

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if (run_dir / STOP_FILE).exists():
                self.cancelled = True
                self.model.stop_training = True
            now = time.time()
            if now - self.last >= 1.0 or batch + 1 == n_batches:
                self.last = now
                status_write(
                    run_dir,
                    state="running",
                    epoch=self.epoch + 1,
                    batch=batch + 1,
                    batches=n_batches,
                    elapsed_s=round(now - self.t0, 1),
                    latest={k: float(v) for k, v in (logs or {}).items()},
                )

        def on_train_batch_begin(self, batch, logs=None):
            self.batch = batch

        def on_epoch_end(self, epoch, logs=None):
            if self.cancelled:  # keep the batch it stopped at
                return
            status_write(
                run_dir,
                state="running",
                epoch=epoch + 1,
                batch=n_batches,
                batches=n_batches,
                elapsed_s=round(time.time() - self.t0, 1),
                epoch_metrics={k: float(v) for k, v in (logs or {}).items()},
            )

    class HistoryLogger(keras.callbacks.Callback):
        """CSVLogger's ``history.csv``, rewritten atomically after each epoch."""

        def __init__(self) -> None:
            super().__init__()
            self.rows: list[dict] = []

        def on_epoch_end(self, epoch, logs=None):
            logs = dict(logs or {})
            lr = self.model.optimizer.learning_rate
            logs["learning_rate"] = float(lr.numpy() if hasattr(lr, "numpy") else lr)
            self.rows.append(
                {"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()}}
            )
            keys = list(self.rows[0])
            atomic_write_csv(
                run_dir / "history.csv",
                keys,
                [[r.get(k, "") for k in keys] for r in self.rows],
            )

    # Held-out patients (val_by "record") are watched, not obeyed: their loss
    # rose from the first epoch on (look 10: stopping there left a model that
    # found no LBBB, PAC, RBBB or VF), so the run keeps its best training loss.
    monitor = "loss" if config.val_by == "record" else "val_loss"

    class BestCheckpoint(keras.callbacks.Callback):
        """ModelCheckpoint(save_best_only) on ``monitor``, saved via temp + rename."""

        def __init__(self) -> None:
            super().__init__()
            self.best = np.inf

        def on_epoch_end(self, epoch, logs=None):
            v = (logs or {}).get(monitor)
            if v is not None and v < self.best:
                self.best = float(v)
                model_save(self.model, run_dir)

    status = StatusCallback()
    cbs = [
        status,
        HistoryLogger(),
        BestCheckpoint(),
        keras.callbacks.EarlyStopping(
            monitor=monitor, patience=config.patience, restore_best_weights=True
        ),
        keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, factor=0.5, patience=max(1, config.patience // 2)
        ),
    ]
    return cbs, status


def _strategy(name: str):
    """The ``tf.distribute`` strategy named in the config.

    ``mirrored``: all visible GPUs of this machine, else all logical CPUs.
    ``multiworker``: every worker listed in ``TF_CONFIG``, each with its GPUs.
    """
    import tensorflow as tf

    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name != "mirrored":
        return tf.distribute.get_strategy()
    gpus = tf.config.list_logical_devices("GPU")
    devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
    return tf.distribute.MirroredStrategy(devices)


def class_weights(y: np.ndarray, mode: str) -> np.ndarray:
    """Per-class loss weights, shape ``(n_classes,)``, mean 1 over the samples."""
    counts = np.bincount(y, minlength=N_CLASSES).astype(float)
    if mode == "none":
        return np.ones(N_CLASSES)
    inv = np.where(counts > 0, counts.sum() / np.maximum(counts, 1), 0.0)
    w = np.sqrt(inv) if mode == "sqrt" else inv
    return w / max((w[y]).mean(), 1e-12)


def tf_dataset(
    x: np.ndarray | Packed,
    y: np.ndarray,
    w: np.ndarray | None,
    batch: int,
    *,
    shuffle: bool,
    augment: bool,
    seed: int,
    edge_blank: float = 0.0,
    flip: float = 0.0,
    lowres: float = 0.0,
):
    """A ``tf.data`` pipeline over uint8 images ``(n, h, w)`` (or their
    :class:`~ecg_model.data.packed.Packed` ink bits).

    Yields float32 images ``(b, h, w, 1)``, labels ``(b,)`` and, with ``w``,
    sample weights ``(b,)``. Augmentation shifts the picture horizontally by up
    to 1/32 of its width (4 px at 128 columns; white fill), as a beat found a
    little off-centre would be; with
    ``edge_blank`` > 0, that share of the pictures also loses a random stretch
    (1 px to just short of the beat) at its left or right edge, or both, to
    blank paper, as a beat near the start or end of a strip is drawn, and as a
    tight crop of one beat is (``inference.span``); with ``flip`` > 0, that
    share is turned upside down (a lead of the other polarity); with ``lowres``
    > 0, that share is first drawn as a picture of 1/2 or 1/4 the columns (a
    thumbnail) reads once redrawn (:func:`lowres_tf`).
    """
    import tensorflow as tf

    h, wd = x.shape[1:3]
    # Ink bits stay packed in the graph's constant (1/8 of the memory) and are
    # unpacked a batch at a time.
    packed = isinstance(x, Packed)
    x = x.bits if packed else x
    # Shift by up to 1/32 of the width (75 ms of the 2.4 s window) whatever the
    # contract's resolution.
    sh = max(1, round(wd / 32))
    if augment and lowres > 0 and wd % 4:
        raise ValueError(
            f"low-resolution pictures need a width divisible by 4, not {wd}"
        )
    # Shuffle and batch indices, then gather each batch in one op: slicing the
    # images one by one into a shuffle buffer kept one core busy and the other
    # idle for seconds at every epoch start.
    parts = tuple(tf.constant(a) for a in ((x, y) if w is None else (x, y, w)))
    ds = tf.data.Dataset.range(len(x))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch)

    def prep(idx):
        # img: uint8 (b, h, w), or its ink bits (b, h, ceil(w / 8))
        img, *rest = (tf.gather(a, idx) for a in parts)
        img = bits_unpack_tf(img, wd) if packed else tf.cast(img, tf.float32)
        img = img[..., None]  # (b, h, w, 1) float32, ink 0, paper 255
        if augment:
            if lowres > 0:
                b = tf.shape(img)[0]
                pick = tf.random.uniform([b])  # (b,)
                img = tf.where(
                    (pick < lowres / 2)[:, None, None, None],
                    lowres_tf(img, 4),
                    tf.where(
                        (pick < lowres)[:, None, None, None], lowres_tf(img, 2), img
                    ),
                )  # (b, h, w, 1)
            img = tf.pad(img, [[0, 0], [0, 0], [sh, sh], [0, 0]], constant_values=255.0)
            off = tf.random.uniform([], 0, 2 * sh + 1, dtype=tf.int32)
            img = img[:, :, off : off + wd, :]  # (b, h, w, 1)
            img = tf.ensure_shape(img, [None, h, wd, 1])
            if edge_blank > 0:
                b = tf.shape(img)[0]
                hit = tf.random.uniform([b]) < edge_blank  # (b,)
                # 0: left edge, 1: right edge, 2: both (a crop of the beat).
                side = tf.random.uniform([b], 0, 3, dtype=tf.int32)  # (b,)
                keep = max(6, round(6 * wd / 128))  # ~110 ms each side of the beat
                kl = tf.random.uniform([b, 1], 1, wd // 2 - keep, dtype=tf.int32)
                kr = tf.random.uniform([b, 1], 1, wd // 2 - keep, dtype=tf.int32)
                cols = tf.range(wd)[None, :]  # (1, w)
                gone = tf.logical_or(
                    tf.logical_and(cols < kl, (side != 1)[:, None]),
                    tf.logical_and(cols >= wd - kr, (side != 0)[:, None]),
                )  # (b, w)
                gone = tf.logical_and(gone, hit[:, None])
                img = tf.where(gone[:, None, :, None], 255.0, img)  # (b, h, w, 1)
            if flip > 0:
                # Upside down: amplitude is scaled per window between equal
                # margins, so the flipped picture is exactly the inverted lead's.
                b = tf.shape(img)[0]
                turn = tf.random.uniform([b]) < flip  # (b,)
                img = tf.where(turn[:, None, None, None], img[:, ::-1], img)
        return (img, *rest)

    return ds.map(prep, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def lowres_tf(img, factor: int):
    """Pictures as one drawn with ``factor`` times fewer columns reads, redrawn.

    A thumbnail (a 2.4 s beat in 64 columns) keeps, per column, only the top
    and bottom of the trace over ``factor`` of the contract's columns; the
    predictor then redraws it at the contract's width by
    :func:`ecg_model.data.render.trace_draw`, interpolating each column's top
    and bottom and joining it to its neighbour's middle. This does the same to
    a batch of the project's own pictures, so the model learns from what such
    uploads become. Amplitude scaling is unchanged: pooling keeps the extremes.

    Parameters
    ----------
    img : tf.Tensor
        float32 ``(b, h, w, 1)``, ink 0 on paper 255, ``w`` divisible by
        ``factor``; every column holds ink.

    Returns
    -------
    tf.Tensor
        float32 ``(b, h, w, 1)``, pure ink or paper.
    """
    import tensorflow as tf

    h, w = img.shape[1], img.shape[2]
    n = w // factor
    ink = img[..., 0] < 128.0  # (b, h, w)
    rows = tf.range(h, dtype=tf.float32)[None, :, None]  # (1, h, 1)
    top = tf.reduce_min(tf.where(ink, rows, float(h)), axis=1)  # (b, w)
    bot = tf.reduce_max(tf.where(ink, rows, -1.0), axis=1)  # (b, w)
    # A column of blank paper (none in a built dataset) reads as the middle.
    top = tf.where(top > bot, h / 2, top)
    bot = tf.maximum(bot, top)
    # The thumbnail: each of its n columns covers `factor` of ours.
    top = tf.reduce_min(tf.reshape(top, [-1, n, factor]), axis=2)  # (b, n)
    bot = tf.reduce_max(tf.reshape(bot, [-1, n, factor]), axis=2)  # (b, n)
    # trace_draw's upsampling: linear interpolation at column centres, clamped
    # at the ends, then each column joined to its left neighbour's middle.
    x = (tf.range(w, dtype=tf.float32) + 0.5) * n / w - 0.5  # (w,)
    i0 = tf.clip_by_value(tf.floor(x), 0, n - 1)
    t = tf.clip_by_value(x - i0, 0.0, 1.0)[None, :]  # (1, w)
    i0 = tf.cast(i0, tf.int32)
    i1 = tf.minimum(i0 + 1, n - 1)

    def interp(v):  # (b, n) -> (b, w)
        return tf.gather(v, i0, axis=1) * (1 - t) + tf.gather(v, i1, axis=1) * t

    top_i, bot_i = interp(top), interp(bot)  # (b, w)
    mid = (top_i + bot_i) / 2
    mid_prev = tf.concat([mid[:, :1], mid[:, :-1]], axis=1)  # (b, w)
    top_o = tf.minimum(top_i, mid_prev)  # (b, w)
    bot_o = tf.maximum(bot_i, mid_prev)
    # envelope_draw scales each picture between the margins again (interpolated
    # peaks fall a little short of the pooled ones).
    y0 = tf.reduce_min(top_o, axis=1, keepdims=True)  # (b, 1)
    y1 = tf.reduce_max(bot_o, axis=1, keepdims=True)
    m = tf.reduce_min(top, axis=1, keepdims=True)  # the margin, rows
    scale = (h - 1 - 2 * m) / tf.maximum(y1 - y0, 1e-9)  # (b, 1)
    top_o = tf.round(m + (top_o - y0) * scale)[:, None, :]  # (b, 1, w)
    bot_o = tf.round(m + (bot_o - y0) * scale)[:, None, :]
    drawn = (rows >= top_o) & (rows <= bot_o)  # (b, h, w)
    out = tf.where(drawn, 0.0, 255.0)[..., None]  # (b, h, w, 1)
    # A flat window (a signal drop-out, drawn as one line through the middle)
    # has no amplitude to rescale: it stays as it is.
    flat = tf.reshape(y1 - y0 < 1.0, [-1, 1, 1, 1])  # (b, 1, 1, 1)
    return tf.where(flat, img, out)


def model_fit(model, ds, val_ds=None, **kwargs: Any):
    """``model.fit`` on :func:`tf_dataset` pipelines, one pass over each an epoch.

    The datasets repeat and fit counts the batches of an epoch (their
    cardinality, known since they batch a range): with one iterator for the whole
    run, Keras no longer builds a new one at every epoch, which stalled the first
    step of each epoch for up to 5 s on 2 cores. ``kwargs`` go to ``fit``
    (epochs, callbacks, verbose).
    """
    return model.fit(
        ds.repeat(),
        steps_per_epoch=int(ds.cardinality()),
        validation_data=None if val_ds is None else val_ds.repeat(),
        validation_steps=None if val_ds is None else max(int(val_ds.cardinality()), 1),
        shuffle=False,  # tf_dataset shuffles already
        **kwargs,
    )


def dataset_for(
    config: TrainConfig,
    spec: RenderSpec,
    progress: Callable[[float, str], None] | None = None,
) -> Path:
    """The run's dataset folder, built with default options if it does not exist."""
    if config.dataset:
        return Path(config.dataset)
    root = artifacts_dir() / "datasets" / config.split
    if not (root / "manifest.csv").exists():
        opts = BuildOptions(split=config.split, seed=config.seed)
        if config.split == ALL_SPLIT:  # every database's patients, split kept
            opts = BuildOptions(
                split="patient", seed=config.seed, databases=tuple(DATABASES)
            )
        dataset_build(root, opts, spec, progress=progress)
    return root


def model_save(model, run_dir: Path, name: str = "model.keras") -> None:
    """Save ``name`` (a ``.keras`` file) atomically; a failed save (a full
    disk) leaves no temporary file behind and raises."""
    tmp = run_dir / f".{name}.{os.getpid()}.tmp.keras"
    try:
        model.save(tmp)
        os.replace(tmp, run_dir / name)
    finally:
        tmp.unlink(missing_ok=True)


def _status_final(run_dir: Path, **fields: Any) -> dict:
    """Write the run's last status; when even that fails (a full disk), return it
    in memory and say so on stderr (the registry then finds the dead pid)."""
    try:
        return status_write(run_dir, **fields)
    except EcgError as e:
        print(f"error: {e}", file=sys.stderr)
        return {**fields, "error": f"{fields.get('error', '')} ({e})".strip()}


def train_run(run_dir: str | os.PathLike, verbose: int = 0) -> dict:
    """Train the queued run in ``run_dir`` to the end; returns its final status.

    Never raises for a failure of the run itself: a crash is written to
    ``status.json`` as ``failed`` with its error (the traceback goes to
    ``error.log``); a stop request or Ctrl-C is written as ``cancelled``.
    """
    run_dir = Path(run_dir)
    config = TrainConfig.from_json(json_read(run_dir / "config.json"))
    spec = RenderSpec.from_json(json_read(run_dir / "preprocessing.json"))
    t0 = time.time()
    try:
        status_write(
            run_dir,
            state="running",
            started=utc_now(),
            phase="dataset",
            **proc_identity(os.getpid()),
        )
        result = _train(run_dir, config, spec, verbose)
    except KeyboardInterrupt:
        return _status_final(
            run_dir,
            state="cancelled",
            finished=utc_now(),
            elapsed_s=round(time.time() - t0, 1),
            phase="",
        )
    except Exception as e:  # the run failed: record why, keep what was written
        try:
            atomic_write_text(run_dir / "error.log", traceback.format_exc())
        except EcgError:
            pass
        msg = str(e).splitlines()[0] if str(e) else ""
        return _status_final(
            run_dir,
            state="failed",
            finished=utc_now(),
            phase="",
            elapsed_s=round(time.time() - t0, 1),
            error=f"{type(e).__name__}: {msg}"[:500],
        )
    return _status_final(
        run_dir,
        finished=utc_now(),
        elapsed_s=round(time.time() - t0, 1),
        phase="",
        **result,
    )


def val_split(
    y: np.ndarray,
    groups: np.ndarray,
    fraction: float,
    by: str,
    seed: int,
    first: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and validation parts of the training images.

    Parameters
    ----------
    y : np.ndarray
        Class indices, shape ``(n,)``.
    groups : np.ndarray
        Each image's patient (``"<database>/<record>"``), shape ``(n,)``.
    fraction : float
        Share held out for validation.
    by : str
        ``beat``: a share of the images, stratified by class where every class
        has two or more. ``record``: whole patients, about ``fraction`` of them,
        chosen by ``StratifiedGroupKFold`` so the held-out part's classes follow
        the training part's as nearly as whole patients allow.
    seed : int
        Seeds the choice.
    first : np.ndarray, optional
        Rows drawn from their record's first lead, shape ``(n,)`` bool
        (``dataset.lead_first``). With ``record``, patients are chosen on these
        rows only and the validation part holds only these; a held-out
        patient's other views (extra leads, noisy copies) are in neither part.
    """
    from sklearn.model_selection import StratifiedGroupKFold, train_test_split

    idx = np.arange(len(y))
    if by == "record":
        if first is not None:
            fi = np.flatnonzero(first)
            _, va = val_split(y[fi], groups[fi], fraction, by, seed)
            held = np.isin(groups, groups[fi[va]])
            return np.flatnonzero(~held), fi[va]
        n_splits = max(2, round(1 / fraction))
        n_groups = len(np.unique(groups))
        if n_groups < n_splits:
            raise EcgError(
                f"validation by record holds out 1 in {n_splits} training patients "
                f"and needs {n_splits} or more; this training part has {n_groups}"
            )
        folds = StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed)
        tr, va = next(folds.split(idx, y, groups))
        return tr, va
    strat = y if np.bincount(y).min(initial=2) >= 2 and len(np.unique(y)) > 1 else None
    try:
        return tuple(
            train_test_split(idx, test_size=fraction, random_state=seed, stratify=strat)
        )
    except ValueError:
        return tuple(train_test_split(idx, test_size=fraction, random_state=seed))


def _train(run_dir: Path, config: TrainConfig, spec: RenderSpec, verbose: int) -> dict:
    # 1. dataset: build if needed, load as arrays, cap the training part.
    def build_progress(f: float, msg: str) -> None:
        status_write(run_dir, phase=f"dataset: {msg}", dataset_progress=round(f, 3))

    root = dataset_for(config, spec, build_progress)
    status_write(run_dir, phase=f"dataset: loading {root.name}")
    ds = dataset_load(root, spec)
    if len(ds.x_train) == 0 or len(ds.x_test) == 0:
        raise EcgError(f"{root}: the dataset needs images in both train/ and test/")
    if config.split == ALL_SPLIT:
        # Every patient trains; the test part stays only so the run ends like
        # any other (its figures are on seen patients).
        ds = replace(
            ds,
            x_train=images_concat([ds.x_train, ds.x_test]),
            y_train=np.concatenate([ds.y_train, ds.y_test]),
            meta_train=pd.concat([ds.meta_train, ds.meta_test], ignore_index=True),
        )
    keep = caps_apply(np.asarray(CLASSES)[ds.y_train], config.class_caps, config.seed)

    # 2. validation part (indices into the training part): a share of the
    #    capped beats, or whole patients (val_by). Patients are chosen on the
    #    uncapped first-lead rows, so caps and extra views of a beat (other
    #    leads, noisy copies) change neither the choice nor the figures, and
    #    their beats validate as recorded; their extra views go unused.
    x, y, groups = ds.x_train, ds.y_train, patient_ids(ds.meta_train)
    if config.val_by == "record":
        first = lead_first(ds.meta_train)
        rest, va = val_split(
            y, groups, config.val_fraction, "record", config.seed, first
        )
        tr = np.intersect1d(keep, rest)  # the capped rows of the other patients
    else:
        tr, va = (
            keep[i]
            for i in val_split(
                y[keep], groups[keep], config.val_fraction, "beat", config.seed
            )
        )
    cw = class_weights(y[tr], config.balance)

    # 3. model under the chosen distribution strategy.
    keras.utils.set_random_seed(config.seed)
    strategy = _strategy(config.strategy)
    with strategy.scope():
        model = model_build(config.model, (spec.image_height, spec.image_width))
        model.compile(
            optimizer=keras.optimizers.Adam(config.learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
    train_ds = tf_dataset(
        x[tr],
        y[tr],
        cw[y[tr]].astype(np.float32),
        config.batch_size,
        shuffle=True,
        augment=config.augment,
        seed=config.seed,
        edge_blank=config.edge_blank,
        flip=config.flip,
        lowres=config.lowres,
    )
    # Held-out patients are weighted by class as training is, so that their
    # logged loss weighs every class of a new patient, not mostly its Normal beats.
    val_w = cw[y[va]].astype(np.float32) if config.val_by == "record" else None
    val_ds = tf_dataset(
        x[va],
        y[va],
        val_w,
        config.batch_size,
        shuffle=False,
        augment=False,
        seed=config.seed,
    )
    n_batches = int(train_ds.cardinality())
    callbacks, status = _keras_callbacks(run_dir, config, n_batches)
    status_write(
        run_dir,
        phase="training",
        training_started=utc_now(),
        n_train=int(len(tr)),
        n_val=int(len(va)),
        replicas=int(strategy.num_replicas_in_sync),
        n_test=int(len(ds.x_test)),
        dataset=str(root),
        batches=n_batches,
        class_weights={c: round(float(w), 4) for c, w in zip(CLASSES, cw)},
    )

    # 4. fit; a stop file ends it after the batch in hand.
    model_fit(
        model,
        train_ds,
        val_ds,
        epochs=config.epochs,
        callbacks=callbacks,
        verbose=verbose,
    )
    if status.cancelled:
        return {
            "state": "cancelled",
            "epoch": status.epoch + 1,
            "batch": status.batch + 1,
        }
    if not (run_dir / "model.keras").exists():  # no validation epoch completed
        model_save(model, run_dir)

    # 5. evaluate the best weights on the untouched test part.
    status_write(run_dir, phase="evaluating")
    probs = model_predict(model, ds.x_test)
    pred = probs.argmax(axis=1)
    m = ds.meta_test
    # Intervals over beats on a random split; over patients where the test
    # patients are new (a beat bootstrap there pretends beats are independent).
    metrics = metrics_new_patients(ds.y_test, pred, m, config.split)
    metrics["protocol"] = config.split
    if config.split == ALL_SPLIT:
        metrics["note"] = (
            "trained on every patient, these test beats included: the figures are "
            "on seen patients; for new patients see a patient-protocol run of the "
            "same recipe"
        )
    metrics["model"] = config.model
    metrics["baseline"] = baseline_compute(y[tr], ds.y_test)
    metrics["n_train"] = int(len(tr))
    metrics["n_val"] = int(len(va))
    metrics["test_records"] = sorted(set(patient_ids(m)))
    metrics["best_val_loss"] = (
        float(callbacks[2].best) if np.isfinite(callbacks[2].best) else None
    )
    if config.val_by == "record":
        # Held-out training patients: the development figures of a recipe.
        val_pred = model_predict(model, x[va]).argmax(axis=1)
        metrics["validation"] = {
            **metrics_compute(y[va], val_pred, n_boot=0),
            "records": sorted(set(groups[va])),
        }
    atomic_write_json(run_dir / "metrics.json", metrics)
    atomic_write_csv(
        run_dir / "confusion_matrix.csv",
        ["true \\ predicted", *CLASSES],
        [[c, *row] for c, row in zip(CLASSES, metrics["confusion_matrix"])],
    )
    atomic_write_csv(
        run_dir / "test_predictions.csv",
        [
            "path",
            "database",
            "record",
            "sample",
            "true_class",
            "predicted_class",
            "confidence",
            *CLASSES,
        ],
        (
            [
                p,
                d,
                r,
                s,
                CLASSES[t],
                CLASSES[k],
                f"{pr[k]:.5f}",
                *(f"{v:.5f}" for v in pr),
            ]
            for p, d, r, s, t, k, pr in zip(
                m["path"],
                m["database"],
                m["record"],
                m["sample"],
                ds.y_test,
                pred,
                probs,
            )
        ),
    )
    return {
        "state": "finished",
        "test_accuracy": metrics["accuracy"],
        "test_macro_f1": metrics["macro_f1"],
        "test_macro_recall": metrics["macro_recall"],
    }
