"""A test set drawn by another plotting library: matplotlib, several styles.

Real uploads are drawn by other software: thicker or anti-aliased lines,
coloured traces, ECG-paper grids, axes and margins, JPEG artefacts. This module
draws beats of the patient protocol's *test* patients (every database's
``test_records``: never training records of a patient-protocol model) in such
styles, and at other time spans (a tight crop of one beat, 2-4 s on ECG
paper), so robustness to drawing style is measured, not assumed.

``part="train"`` draws the same styles from *training* patients instead: a
development set, where a patient model knows the beats, so what a style loses
against the project's own renderer is the style's cost alone. Robustness is
tuned there; the test patients are looked at once per design.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .core.classes import CLASSES
from .core.errors import EcgError
from .core.io import atomic_write_bytes, atomic_write_json, data_dir
from .data.dataset import beats_sample, dataset_load, manifest_read
from .data.pictures import image_read
from .data.render import (
    RenderSpec,
    ThumbSpec,
    thumb_spec_random,
    thumbnail_draw,
    windows_render,
)
from .inference.predict import Predictor
from .inference.span import picture_window
from .training.evaluate import metrics_compute

#: name -> drawing options (figure size in inches at 100 dpi).
STYLES: dict[str, dict] = {
    # The project's own renderer on the same beats: the reference each foreign
    # style is compared with.
    "project-renderer": dict(own=True),
    "mpl-default": dict(color="C0", lw=1.5, axes=True, size=(3.2, 1.8)),
    "thick-black": dict(color="black", lw=3.0, axes=False, size=(2.4, 1.2)),
    "ecg-paper": dict(color="black", lw=1.2, axes=False, grid="paper", size=(3.6, 1.8)),
    "monitor": dict(color="#30ff60", lw=1.5, axes=False, bg="black", size=(3.0, 1.5)),
    "blue-jpeg60": dict(color="#1040c0", lw=2.0, axes=True, jpeg=60, size=(3.0, 1.6)),
    "thumbnail-64": dict(
        color="0.15", lw=0.8, axes=False, grid="gray", size=(0.64, 0.64)
    ),
    # Other time spans: a tight crop of one beat (0.6-1 s, no grid: the span is
    # estimated) and 2-4 s on ECG paper (the span is read from the grid). The
    # figure's width follows the span: 1.5 inches a second.
    "beat-crop": dict(color="black", lw=1.2, axes=False, span=(0.6, 1.0)),
    "paper-wide": dict(
        color="black", lw=1.2, axes=False, grid="paper", span=(2.0, 4.0)
    ),
    # One-beat thumbnails (the project's thumbnail drawing, render.ThumbSpec):
    # the original report's (192 x 128, 0.53 s, grey, clipped at a fixed
    # scale), and thumbnails of 0.4-1.2 s at random sizes from 64 px, line
    # weights, grey levels, clipped or not.
    "thumb-report": dict(thumb=ThumbSpec()),
    "thumb-random": dict(thumb="random"),
}
#: Height of the figures whose width follows their span, inches.
SPAN_HEIGHT_IN = 1.5
#: Inches a second for the figures whose width follows their span.
SPAN_IN_PER_S = 1.5


def style_draw(
    seg: np.ndarray, fs: float, style: str, thumb: ThumbSpec | None = None
) -> bytes:
    """Draw a window (mV at ``fs``) in a named style; returns PNG or JPEG bytes.
    ``thumb``: the drawing of a ``thumb-random`` thumbnail."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    o = STYLES[style]
    if o.get("thumb"):
        from PIL import Image

        ts = o["thumb"] if isinstance(o["thumb"], ThumbSpec) else thumb
        buf = io.BytesIO()
        Image.fromarray(thumbnail_draw(seg, fs, ts)).save(buf, "PNG")
        return buf.getvalue()
    if o.get("own"):
        from PIL import Image

        spec = RenderSpec(fs=fs)
        img = windows_render(
            np.asarray(seg, np.float64), np.array([spec.before]), spec
        )[0]
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "PNG")
        return buf.getvalue()
    t = np.arange(seg.size) / fs
    size = o.get("size") or (SPAN_IN_PER_S * seg.size / fs, SPAN_HEIGHT_IN)
    fig = plt.figure(figsize=size, dpi=100, facecolor=o.get("bg", "white"))
    ax = fig.add_axes([0.12, 0.15, 0.85, 0.8] if o["axes"] else [0, 0, 1, 1])
    ax.set_facecolor(o.get("bg", "white"))
    if o.get("grid") == "paper":
        # ECG paper: 0.04 s / 0.1 mV small boxes, 0.2 s / 0.5 mV large boxes.
        for x in np.arange(0, t[-1], 0.04):
            ax.axvline(x, color="#f4b6b6" if round(x / 0.04) % 5 else "#e06060", lw=0.4)
        lo, hi = seg.min() - 0.2, seg.max() + 0.2
        for y in np.arange(np.floor(lo * 10) / 10, hi, 0.1):
            ax.axhline(y, color="#f4b6b6" if round(y * 10) % 5 else "#e06060", lw=0.4)
    elif o.get("grid") == "gray":
        ax.grid(True, color="0.85", lw=0.5)
    ax.plot(t, seg, color=o["color"], lw=o["lw"], antialiased=True)
    ax.set_xlim(t[0], t[-1])
    if not o["axes"]:
        ax.axis("off")
    else:
        ax.tick_params(labelsize=6)
    buf = io.BytesIO()
    if o.get("jpeg"):
        fig.savefig(
            buf,
            format="jpg",
            dpi=100,
            facecolor=fig.get_facecolor(),
            pil_kwargs={"quality": o["jpeg"]},
        )
    else:
        fig.savefig(buf, format="png", dpi=100, facecolor=fig.get_facecolor())
    plt.close(fig)
    return buf.getvalue()


def style_test_build(
    out: str | os.PathLike,
    data: str | os.PathLike | None = None,
    per_class: int = 40,
    seed: int = 0,
    spec: RenderSpec = RenderSpec(),
    records: tuple[str, ...] = (),
    part: str = "test",
    styles: tuple[str, ...] = (),
) -> dict:
    """Draw ``per_class`` beats of each class in every style (or ``styles``)
    into ``out``.

    ``part``: ``"test"`` draws the patient protocol's test patients; ``"train"``
    its training patients (the development set; see the module's text).
    Writes ``<style>/<Class>/<db>_<record>_<sample>.<png|jpg>`` and ``manifest.csv``.
    """
    if part not in ("test", "train"):
        raise EcgError(f"part must be 'test' or 'train', not {part!r}")
    unknown = sorted(set(styles) - set(STYLES))
    if unknown:
        raise EcgError(f"unknown styles {unknown}; expected some of: {list(STYLES)}")
    rng = np.random.default_rng(seed)
    df, sigs = beats_sample(data_dir(data), part, per_class, rng, spec, records)
    out = Path(out)
    rows = []
    for style, o in STYLES.items():
        if styles and style not in styles:
            continue
        ext = "jpg" if o.get("jpeg") else "png"
        for db, rn, s, c in df.itertuples(index=False):
            sig = sigs[(db, rn)]
            a, b = s - spec.before, s + spec.after
            if "span" in o:
                # A hand-made crop: its span, centred within a tenth of it.
                span = rng.uniform(*o["span"]) * spec.fs
                mid = s + rng.uniform(-0.1, 0.1) * span
                a, b = int(max(0, mid - span / 2)), int(min(sig.size, mid + span / 2))
            thumb = o.get("thumb")
            if thumb is not None:
                # One beat centred within 5% of the span, as a thumbnail is.
                thumb = thumb_spec_random(rng) if thumb == "random" else thumb
                half = thumb.span_s * spec.fs / 2
                mid = s + rng.uniform(-0.05, 0.05) * 2 * half
                a, b = int(max(0, mid - half)), int(min(sig.size, mid + half))
            seg = sig[a:b]
            rel = f"{style}/{c}/{db}_{rn}_{s}.{ext}"
            atomic_write_bytes(out / rel, style_draw(seg, spec.fs, style, thumb))
            rows.append((rel, style, db, rn, s, c, round((b - a) / spec.fs, 3)))
    man = pd.DataFrame(
        rows,
        columns=["path", "style", "database", "record", "sample", "class", "span_s"],
    )
    atomic_write_bytes(out / "manifest.csv", man.to_csv(index=False).encode())
    rep = {
        "n_images": len(man),
        "styles": [st for st in STYLES if not styles or st in styles],
        "counts": {c: int((df["class"] == c).sum()) for c in CLASSES},
        "records": sorted(set(df["database"] + "/" + df["record"])),
        "part": part,
    }
    atomic_write_json(out / "style_test.json", rep)
    return rep


def style_test_evaluate(predictor, folder: str | os.PathLike) -> dict:
    """Accuracy and macro recall on a style test folder, overall and per style."""
    folder = Path(folder)
    if not (folder / "manifest.csv").exists():
        raise EcgError(f"{folder}: not a style test folder (manifest.csv is missing)")
    man = pd.read_csv(folder / "manifest.csv", dtype={"record": str})
    y = man["class"].map({c: i for i, c in enumerate(CLASSES)}).to_numpy()
    preds = []
    for rel in man["path"]:
        try:
            preds.append(predictor.predict_file(folder / rel))
        except EcgError:  # no trace read: a wrong answer (class -1), counted
            preds.append(None)
    pred = np.array([CLASSES.index(p.predicted_class) if p else -1 for p in preds])
    # "Cannot be judged from one beat": the lone-beat answer (span.lone_beat_caveat).
    judged = np.array([p is None or "cannot be judged" not in p.reason for p in preds])
    m = metrics_compute(y, pred, n_boot=1000)
    by_style = {}
    for s in STYLES:
        sel = (man["style"] == s).to_numpy()
        if sel.any():
            ms = metrics_compute(y[sel], pred[sel], n_boot=0)
            by_style[s] = {
                "accuracy": ms["accuracy"],
                "macro_recall": ms["macro_recall"],
                "n": int(sel.sum()),
                "unread": int((pred[sel] < 0).sum()),
                "per_class_recall": {
                    c: d["recall"] for c, d in ms["per_class"].items()
                },
                # Share of each class's pictures answered "cannot be judged".
                "not_judged": {
                    c: round(float(np.mean(~judged[sel & (y == i)])), 4)
                    for i, c in enumerate(CLASSES)
                    if (sel & (y == i)).any()
                },
            }
            if STYLES[s].get("thumb") or "span" in STYLES[s]:
                by_style[s]["span_within_15"] = span_score(predictor, folder, man[sel])
    return {
        "accuracy": m["accuracy"],
        "macro_recall": m["macro_recall"],
        "macro_f1": m["macro_f1"],
        "ci": m.get("ci", {}),
        "n": int(len(y)),
        "per_style": by_style,
        "per_class_recall": {c: d["recall"] for c, d in m["per_class"].items()},
    }


#: A span estimate counts as right within this share of the true span.
SPAN_TOLERANCE = 0.15


def span_score(predictor, folder: Path, man: pd.DataFrame) -> float:
    """Share of a style's pictures whose span, as the window path estimates it
    (:func:`~ecg_model.inference.span.picture_window`: grid, else the span
    model's reading of one beat, else the one-beat or window assumption), is
    within :data:`SPAN_TOLERANCE` of the drawn span."""
    ok = []
    for rel, true_s in zip(man["path"], man["span_s"]):
        pic = image_read(folder / rel, rel)
        # An unread picture: the window's 2.4 s.
        span = picture_window(pic, predictor.spec, span_model=predictor.span_model)
        span = span[2].duration_s
        ok.append(abs(span / float(true_s) - 1) <= SPAN_TOLERANCE)
    return round(float(np.mean(ok)), 4) if ok else float("nan")


#: The classes one beat can show (a PAC needs its neighbours: see
#: :func:`~ecg_model.inference.span.lone_beat_caveat`).
LONE_BEAT_CLASSES = tuple(c for c in CLASSES if c != "Premature Atrial Contraction")


def folder_compare(folder: str | os.PathLike, runs: list[str | os.PathLike]) -> dict:
    """Several models on the test pictures of one image folder, side by side.

    Each model reads them twice: as ``predict`` does (``predict_file``: span
    found, lone-beat route where the run has one) and as a run trained on the
    folder did (``dataset_load``: each picture's trace redrawn across the
    width). Returns per model and reading: accuracy, per-class recall, macro
    recall over all classes and over :data:`LONE_BEAT_CLASSES`.
    """
    folder = Path(folder)
    man = manifest_read(folder)
    test = man[man["split"] == "test"].reset_index(drop=True)
    if test.empty:
        raise EcgError(f"{folder}: no test pictures")
    y = test["class"].map({c: i for i, c in enumerate(CLASSES)}).to_numpy()
    out: dict = {"folder": str(folder), "n_test": int(len(test)), "models": {}}
    for run in runs:
        pred = Predictor(run)
        by_predict = []
        for rel in test["path"]:
            try:
                by_predict.append(
                    CLASSES.index(pred.predict_file(folder / rel).predicted_class)
                )
            except EcgError:
                by_predict.append(-1)
        ds = dataset_load(folder, pred.spec)
        order = {p: i for i, p in enumerate(ds.meta_test["path"])}
        probs = pred.predict_arrays(np.asarray(ds.x_test[: len(ds.y_test)]))
        by_load = probs.argmax(1)[[order[p] for p in test["path"]]]
        res = {}
        for how, p in (("predict", np.array(by_predict)), ("as trained", by_load)):
            m = metrics_compute(y, p, n_boot=0)
            rec = {c: d["recall"] for c, d in m["per_class"].items()}
            res[how] = {
                "accuracy": m["accuracy"],
                "macro_recall": m["macro_recall"],
                "macro_recall_lone": float(
                    np.mean([rec[c] for c in LONE_BEAT_CLASSES])
                ),
                "per_class_recall": rec,
            }
        out["models"][str(run)] = res
    return out
