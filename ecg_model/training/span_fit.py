"""Fitting the span model: how long a picture of one beat lasts, from its shape.

A one-beat thumbnail has no grid and no axis, yet the model's window needs its
time scale: stretched over the wrong span, a normal QRS is drawn as wide as a
bundle branch block's (issue 26: every thumbnail read as 0.8 s, 0.53 s ones
1.5 times too wide). What is left to read the span from is the beat itself:
how wide its QRS is against the picture, where its P and T waves lie, whether
a neighbour's QRS shows at an edge. The pipeline of :func:`span_fit` reads:
beats of the patient protocol's training patients -> each drawn as a random
thumbnail (``render.thumb_spec_random``: 0.4-1.2 s, 64-256 px, clipped or not)
and traced back as an upload is -> a small 1-D network from the trace's shape
(:func:`~ecg_model.inference.span.span_features`) to the log of the span ->
scored on thumbnails of the test patients, drawn the same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..core.classes import CLASSES
from ..core.errors import EcgError
from ..core.io import atomic_write_json, data_dir, utc_now
from ..data.dataset import beats_sample
from ..data.render import RenderSpec, image_trace, thumb_random_draw
from ..inference.span import SPAN_COLS, SPAN_FILE, span_features
from .train import model_save

#: Figures of the span model, beside it.
SPAN_JSON = "span.json"
#: A span counts as read right within this share of the true one (issue 26).
SPAN_TOLERANCE = 0.15


def span_table(
    root: str | os.PathLike,
    part: str,
    per_class: int,
    rng: np.random.Generator,
    spec: RenderSpec = RenderSpec(),
    records: tuple[str, ...] = (),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thumbnails of ``per_class`` beats a class of one part of the patient
    protocol (or of its ``records`` only), drawn at random spans and traced
    back.

    Returns
    -------
    x : np.ndarray
        float32, shape ``(n, SPAN_COLS, 2)`` (:func:`span_features`).
    span_s : np.ndarray
        The drawn span of each, s, shape ``(n,)``.
    cls : np.ndarray
        Each beat's class index, shape ``(n,)``.
    """
    df, sigs = beats_sample(root, part, per_class, rng, spec, records)
    xs, spans, cls = [], [], []
    for db, rn, s, c in df.itertuples(index=False):
        drawn = thumb_random_draw(sigs[(db, rn)], s, spec.fs, rng)
        if drawn is None:
            continue
        lo, hi, q = image_trace(drawn[0], True)
        if not q.found or lo.size < 8:
            continue
        xs.append(span_features(lo, hi))
        spans.append(drawn[1])  # what was drawn, edges included
        cls.append(CLASSES.index(c))
    if not xs:
        raise EcgError(f"no {part} beats found under {root}")
    return np.stack(xs), np.array(spans), np.array(cls)


def span_net(seed: int = 0):
    """The span model: four convolutions over the trace, one number out (the
    log of the span in s). Input ``(SPAN_COLS, 2)``."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inp = keras.Input((SPAN_COLS, 2))
    x = inp
    for f in (32, 32, 64, 64):
        x = layers.Conv1D(f, 5, padding="same", activation="relu")(x)
        x = layers.MaxPooling1D(2)(x)  # (SPAN_COLS / 2**k, f)
    x = layers.Flatten()(x)
    x = layers.Dense(64, activation="relu")(x)
    model = keras.Model(inp, layers.Dense(1)(x))
    model.compile(keras.optimizers.Adam(1e-3), "mse")
    return model


def span_score(pred_s: np.ndarray, true_s: np.ndarray, cls: np.ndarray) -> dict:
    """Share within :data:`SPAN_TOLERANCE` (overall and per class), within 30%,
    and the median error, of spans read against spans drawn."""
    ratio = np.asarray(pred_s) / np.asarray(true_s)
    ok = np.abs(ratio - 1) <= SPAN_TOLERANCE
    return {
        "n": int(ok.size),
        "within_15": round(float(ok.mean()), 4),
        "within_30": round(float(np.mean(np.abs(ratio - 1) <= 0.3)), 4),
        "median_error": round(float(np.median(np.abs(ratio - 1))), 4),
        "per_class_within_15": {
            c: round(float(ok[cls == i].mean()), 4)
            for i, c in enumerate(CLASSES)
            if (cls == i).any()
        },
    }


def span_fit(
    run_dir: str | os.PathLike,
    data: str | os.PathLike | None = None,
    per_class: int = 5000,
    seeds: tuple[int, ...] = (0,),
    epochs: int = 30,
    records: tuple[str, ...] = (),
    progress: Callable[[str], None] = lambda msg: None,
) -> dict:
    """Fit the span model on the training patients' thumbnails, score it on
    the test patients', and write ``span.keras`` and ``span.json`` into
    ``run_dir`` (the model of the first seed; every seed's figures).

    Each seed draws its own thumbnails and starts its own network; the test
    thumbnails (a fifth as many) are drawn once, with seed 1000. ``records``:
    only these (``db/record``), for a quick fit.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise EcgError(f"{run_dir}: no such run folder")
    root = data_dir(data)
    progress(f"drawing {per_class // 5} test thumbnails a class")
    x_te, s_te, c_te = span_table(
        root,
        "test",
        max(1, per_class // 5),
        np.random.default_rng(1000),
        records=records,
    )
    runs, first = [], None
    for seed in seeds:
        progress(f"seed {seed}: drawing {per_class} training thumbnails a class")
        rng = np.random.default_rng(seed)
        x, s, _ = span_table(root, "train", per_class, rng, records=records)
        import keras

        model = span_net(seed)
        model.fit(
            x,
            np.log(s).astype(np.float32),
            epochs=epochs,
            batch_size=128,
            validation_split=0.1,
            verbose=0,
            callbacks=[
                keras.callbacks.EarlyStopping(patience=5, restore_best_weights=True)
            ],
        )
        pred = np.exp(np.asarray(model.predict(x_te, verbose=0))[:, 0])
        score = span_score(pred, s_te, c_te)
        progress(f"seed {seed}: {score['within_15']:.1%} of test spans within 15%")
        runs.append({"seed": seed, "n_train": int(len(s)), **score})
        first = first or model
    model_save(first, run_dir, SPAN_FILE)
    info = {
        "made": utc_now(),
        "per_class": per_class,
        "epochs": epochs,
        "seeds": list(seeds),
        "kept_seed": seeds[0],
        "test": "thumbnails of the patient protocol's test patients (seed 1000)",
        "within_15_mean": round(float(np.mean([r["within_15"] for r in runs])), 4),
        "runs": runs,
    }
    atomic_write_json(run_dir / SPAN_JSON, info)
    return info
