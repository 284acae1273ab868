"""Measure strip reading on held-out records: digitisation SNR, beat detection, classes.

``python -m ecg_model strip-eval`` draws strips of the patient protocol's test
records (mitdb DS2, never training records of the patient model) in several
styles, reads them back with
:func:`ecg_model.inference.strip.strip_analyze`, and scores:

- digitisation SNR (dB), as in the PhysioNet/CinC Challenge 2024: power of the
  reference over power of the error, after the best shift within 0.5 s in time
  and 1 mV in amplitude;
- beat detection sensitivity and PPV within 150 ms of the annotated beats;
- per-beat class accuracy and macro F1, beside the beat-image path (the same
  model on the same beats drawn from the true signal).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .core.classes import BEAT_SYMBOLS, CLASSES
from .core.errors import EcgError
from .core.io import data_dir
from .data.databases import MITDB
from .data.render import windows_render
from .data.signals import BEAT_CODES, record_read
from .inference.rhythm import rhythm_step_rr, rr_features
from .inference.strip import strip_analyze
from .training.rhythm_fit import record_rr

#: Style name -> drawing options. Paper styles use 25 mm/s, 10 mm/mV at ``dpmm``
#: dots per mm; plain styles use the same aspect (the reader's default).
STRIP_STYLES: dict[str, dict] = {
    "plain": dict(color="black", bg="white", grid=None),
    "paper-pink": dict(color="black", bg="#fff5f5", grid=("#f7c6c6", "#e88a8a")),
    "paper-orange-blue": dict(
        color="#1030a0", bg="#fffaf0", grid=("#fbd9a8", "#f0a040")
    ),
    "monitor": dict(color="#40ff70", bg="black", grid=None),
    "jpeg60": dict(color="black", bg="#fff5f5", grid=("#f7c6c6", "#e88a8a"), jpeg=60),
    "rotated-3": dict(
        color="black", bg="#fff5f5", grid=("#f7c6c6", "#e88a8a"), rotate=3.0
    ),
    "noise": dict(color="black", bg="white", grid=None, noise=25.0),
}


def strip_draw(sig: np.ndarray, fs: float, style: str, dpmm: float = 8.0) -> bytes:
    """Draw a strip (mV at ``fs``) in a style, ``dpmm`` px a mm; PNG or JPEG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    o = STRIP_STYLES[style]
    dur = sig.size / fs
    lo, hi = float(sig.min()) - 0.3, float(sig.max()) + 0.3
    w_mm, h_mm = dur * 25.0, (hi - lo) * 10.0
    dpi = dpmm * 25.4
    fig = plt.figure(figsize=(w_mm / 25.4, h_mm / 25.4), dpi=dpi, facecolor=o["bg"])
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_facecolor(o["bg"])
    if o["grid"]:
        minor, major = o["grid"]
        for k, x in enumerate(np.arange(0, dur + 1e-9, BOX_S)):
            ax.axvline(
                x, color=major if k % 5 == 0 else minor, lw=0.5 if k % 5 else 0.9
            )
        y0 = np.floor(lo / 0.1) * 0.1
        for y in np.arange(y0, hi + 1e-9, 0.1):
            ax.axhline(
                y,
                color=major if round(y / 0.1) % 5 == 0 else minor,
                lw=0.9 if round(y / 0.1) % 5 == 0 else 0.5,
            )
    t = np.arange(sig.size) / fs
    ax.plot(t, sig, color=o["color"], lw=1.2)
    ax.set_xlim(0, dur)
    ax.set_ylim(lo, hi)
    ax.axis("off")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor=o["bg"])
    plt.close(fig)
    im = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    if o.get("rotate"):
        im = im.rotate(
            o["rotate"],
            resample=Image.BILINEAR,
            expand=True,
            fillcolor=o["bg"] if o["bg"].startswith("#") else (255, 255, 255),
        )
    if o.get("noise"):
        rng = np.random.default_rng(0)
        a = np.asarray(im, dtype=np.float32) + rng.normal(
            0, o["noise"], (im.height, im.width, 1)
        )
        im = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    out = io.BytesIO()
    if o.get("jpeg"):
        im.save(out, "JPEG", quality=o["jpeg"])
    else:
        im.save(out, "PNG")
    return out.getvalue()


BOX_S = 0.04


def snr_db(
    ref: np.ndarray,
    est: np.ndarray,
    fs: float,
    max_shift_s: float = 0.5,
    max_offset_mv: float = 1.0,
) -> float:
    """SNR (dB) of ``est`` against ``ref`` after the best time shift and offset.

    As in the PhysioNet/CinC Challenge 2024: shifts up to ``max_shift_s`` in time
    and ``max_offset_mv`` in amplitude are searched; the one with the least error
    power is kept.
    """
    best = np.inf
    n = min(ref.size, est.size)
    ref, est = ref[:n], est[:n]
    for s in range(-int(max_shift_s * fs), int(max_shift_s * fs) + 1):
        a = ref[max(0, s) : n + min(0, s)]
        b = est[max(0, -s) : n - max(0, s)]
        if a.size < fs:
            continue
        off = float(np.clip(np.mean(a - b), -max_offset_mv, max_offset_mv))
        err = float(np.mean((a - b - off) ** 2))
        if err < best:
            best, keep = err, a
    if not np.isfinite(best):
        return float("nan")
    return float(10 * np.log10(np.mean(keep**2) / max(best, 1e-12)))


def match_beats(
    true_s: np.ndarray, found_s: np.ndarray, tol_s: float = 0.15
) -> list[tuple[int, int]]:
    """Greedy one-to-one matching of found to true beats within ``tol_s``."""
    pairs, used = [], set()
    for j, f in enumerate(found_s):
        if true_s.size == 0:
            break
        d = np.abs(true_s - f)
        for i in np.argsort(d):
            if d[i] > tol_s:
                break
            if i not in used:
                used.add(i)
                pairs.append((int(i), j))
                break
    return pairs


@dataclass
class StripEvalOptions:
    records: tuple[str, ...] = MITDB.test_records
    strips_per_record: int = 5
    seconds: float = 10.0
    seed: int = 0


def strip_evaluate(
    predictor,
    opts: StripEvalOptions = StripEvalOptions(),
    data: str | os.PathLike | None = None,
    styles: tuple[str, ...] = tuple(STRIP_STYLES),
    progress=None,
) -> dict:
    """Score strip reading per style (``styles``) and the beat-image path."""
    from sklearn.metrics import accuracy_score, f1_score

    root = data_dir(data)
    spec = predictor.spec
    rng = np.random.default_rng(opts.seed)
    t_pac = predictor.pac_ratio_threshold
    # (record, segment, whole signal, beat times in the segment (s), their classes,
    # their samples in the whole signal)
    strips = []
    rr_at: dict[str, Callable] = {}  # record -> (beat samples -> RR features)
    for rn in opts.records:
        if not (root / "mitdb" / f"{rn}.hea").exists():
            continue
        rec = record_read(root / "mitdb" / rn, fs=spec.fs)
        if t_pac is not None:
            # From the annotation times themselves, as fit-rhythm reads them.
            rr_at[rn] = record_rr(root / "mitdb" / rn, spec.fs)
        n = int(opts.seconds * spec.fs)
        for _ in range(opts.strips_per_record):
            a = int(rng.integers(0, rec.sig.size - n))
            sel = [
                (s, sym)
                for s, sym in zip(rec.ann_sample, rec.ann_symbol)
                if a <= s < a + n and sym in BEAT_CODES
            ]
            strips.append(
                (
                    rn,
                    rec.sig[a : a + n],
                    rec.sig,
                    np.array([(s - a) / spec.fs for s, _ in sel]),
                    [BEAT_SYMBOLS.get(sym, "") for _, sym in sel],
                    np.array([s for s, _ in sel]),
                )
            )
    if not strips:
        raise EcgError(f"{root}: no mitdb DS2 records found for the strip evaluation")
    # The beat-image path on the same beats: drawn from the true signal and
    # classified by picture alone (as single beat pictures are); and, where the
    # model has a rhythm step, also with it: once with the RR context the strip
    # itself holds (its annotated beats: like with like, only the digitising and
    # the beat detection differ) and once with the whole record's beats.
    bi_true, bi_pred, bi_pred_strip, bi_pred_rr = [], [], [], []
    # Interior beats: the whole 2.4 s window lies inside the strip. A beat nearer
    # the strip's edge is drawn with blank paper where the strip ends, which the
    # beat path (drawn from the whole record) never shows; scoring the interior
    # apart says how much of a gap is the edges and how much the reading.
    t_lo, t_hi = spec.window_before_s, opts.seconds - spec.window_after_s

    def interior(t):  # beat times in the strip, s -> whether each is interior
        return (t >= t_lo) & (t <= t_hi)

    bi_inner = []
    for rn, _, full, ts, cls, samples in strips:
        keep = np.array(
            [
                bool(c) and spec.before <= s < full.size - spec.after
                for s, c in zip(samples, cls)
            ],
            dtype=bool,
        )
        if keep.any():
            c = samples[keep]
            p = predictor.predict_arrays(windows_render(full, c, spec))
            bi_true += [CLASSES.index(k) for k, ok in zip(cls, keep) if ok]
            bi_pred += list(p.argmax(1))
            bi_inner += list(interior(ts[keep]))
            if t_pac is not None:
                # (n,) from the strip's own beats
                r_strip = rr_features(ts)[keep]  # (n, 2)
                bi_pred_strip += list(rhythm_step_rr(predictor, p, r_strip).argmax(1))
                r = rr_at[rn](c)  # (n, 2), from the whole record
                bi_pred_rr += list(rhythm_step_rr(predictor, p, r).argmax(1))

    def scores(y_t: list, y_p: list) -> dict:
        return {
            "accuracy": float(accuracy_score(y_t, y_p)),
            "macro_f1": float(
                f1_score(y_t, y_p, average="macro", labels=sorted(set(y_t)))
            ),
            "n": len(y_t),
        }

    out = {
        "n_strips": len(strips),
        "seconds": opts.seconds,
        "records": sorted({s[0] for s in strips}),
        "beat_image": scores(bi_true, bi_pred),
        "pac_ratio_threshold": t_pac,
        "irregular_max": predictor.irregular_max,
        "styles": {},
    }
    if t_pac is not None:
        out["beat_image_rhythm_strip"] = scores(bi_true, bi_pred_strip)
        out["beat_image_rhythm"] = scores(bi_true, bi_pred_rr)
    # The like-for-like reference on interior beats: the rhythm step on the
    # strip's own beats where there is one.
    ref = bi_pred_strip if t_pac is not None else bi_pred
    inner = np.array(bi_inner, dtype=bool)
    if inner.any():
        out["beat_image_interior"] = scores(
            list(np.array(bi_true)[inner]), list(np.array(ref)[inner])
        )
    for k, style in enumerate(styles):
        snrs, tp, n_true, n_found, y_t, y_p, fails = [], 0, 0, 0, [], [], 0
        y_in = []  # (matched beats,) whether each is interior
        for _, seg, _, ts, cls, _ in strips:
            data_ = strip_draw(seg, spec.fs, style)
            pic = np.asarray(Image.open(io.BytesIO(data_)).convert("RGB"))
            n_true += ts.size
            try:
                res = strip_analyze(pic, predictor, duration_s=opts.seconds)
            except EcgError:
                fails += 1
                continue
            snrs.append(snr_db(seg, res.sig, spec.fs))
            found = res.beat_time_s if res.mode == "beats" else np.zeros(0)
            n_found += found.size
            pairs = match_beats(ts, found)
            tp += len(pairs)
            for i, j in pairs:
                if cls[i]:
                    y_t.append(CLASSES.index(cls[i]))
                    y_p.append(CLASSES.index(res.classes[j]))
                    y_in.append(interior(ts[i]))
        fig = {
            "snr_db_median": float(np.nanmedian(snrs)) if snrs else float("nan"),
            "snr_db_mean": float(np.nanmean(snrs)) if snrs else float("nan"),
            "sensitivity": tp / n_true if n_true else float("nan"),
            "ppv": tp / n_found if n_found else float("nan"),
            "class_accuracy": float(accuracy_score(y_t, y_p)) if y_t else float("nan"),
            "class_macro_f1": float(
                f1_score(y_t, y_p, average="macro", labels=sorted(set(y_t)))
            )
            if y_t
            else float("nan"),
            "unreadable_strips": fails,
        }
        y_in = np.array(y_in, dtype=bool)
        if y_in.any():
            fig["class_accuracy_interior"] = float(
                accuracy_score(np.array(y_t)[y_in], np.array(y_p)[y_in])
            )
            fig["n_interior"] = int(y_in.sum())
        out["styles"][style] = fig
        if progress:
            progress((k + 1) / len(styles), style)
    return out


def strip_eval_table(res: dict) -> str:
    """Markdown table of :func:`strip_evaluate`'s result."""
    rows = [
        "| style | SNR dB (median) | beat Se % | beat PPV % | class acc % "
        "| class acc, interior beats % | class macro F1 % | unreadable |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.2f}"

    for s, f in res["styles"].items():
        rows.append(
            f"| {s} | {f['snr_db_median']:.1f} | {100 * f['sensitivity']:.2f} | "
            f"{100 * f['ppv']:.2f} | {100 * f['class_accuracy']:.2f} | "
            f"{pct(f.get('class_accuracy_interior'))} | "
            f"{100 * f['class_macro_f1']:.2f} | {f['unreadable_strips']} |"
        )
    # (row name, result key); the interior figure goes on the like-for-like
    # reference: with the strip's rhythm step where the model has one.
    refs = [("beat-image path, same beats, picture only", "beat_image")]
    if "beat_image_rhythm_strip" in res:
        refs.append(
            (
                "beat-image path + rhythm step on the strip's annotated beats",
                "beat_image_rhythm_strip",
            )
        )
    if "beat_image_rhythm" in res:
        refs.append(
            (
                "beat-image path + rhythm step on the whole record's beats",
                "beat_image_rhythm",
            )
        )
    like = (
        "beat_image_rhythm_strip" if "beat_image_rhythm_strip" in res else "beat_image"
    )
    inner = res.get("beat_image_interior", {}).get("accuracy")
    for name, key in refs:
        r, acc_in = res[key], (inner if key == like else None)
        rows.append(
            f"| {name} | - | - | - | {100 * r['accuracy']:.2f} | {pct(acc_in)} | "
            f"{100 * r['macro_f1']:.2f} | - |"
        )
    return "\n".join(rows)
