"""A picture of any time span -> the drawing contract's window around its beat.

The contract draws ``window_before_s + window_after_s`` (2.4 s) around a beat.
An upload may be a tight crop of one beat (0.6-1.0 s) or 2-4 s of signal;
stretched over the window, a 0.8 s crop would show a QRS three times as wide as
it is, which is what tells bundle branch blocks apart. The pipeline reads:

trace -> time span (given by the user > read from an ECG-paper grid >
estimated) -> the beat nearest the picture's centre -> the window's stretch of
the trace redrawn at the contract's seconds per column, with blank paper where
the picture shows nothing (as a beat near a strip's edge is drawn).

Without a grid or a given span, a picture with two beats or more (or none: a
fibrillation wave) is taken to be the contract's window, as before; a picture
with one beat is a crop whose span the run's span model (``span.keras``, see
:mod:`ecg_model.training.span_fit`) reads from the beat's shape, or, in a run
without one, a crop of :data:`ONE_BEAT_S`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..core.errors import EcgError
from ..data.render import (
    THUMB_SPANS,
    RenderSpec,
    TraceQuality,
    image_trace,
    picture_reduce,
    qrs_runs,
    trace_beats,
    trace_draw,
)
from .strip import BOX_S, grid_read

#: Assumed span of a picture that shows one beat and no grid, s: the middle of
#: the 0.6-1.0 s that crops of one beat take.
ONE_BEAT_S = 0.8
#: Least share of the width a lone QRS's steep stretch takes in a crop of one beat.
ONE_BEAT_QRS = 0.02
#: Heart rates a grid's reading may imply, bpm.
HR_BPM = (20.0, 300.0)
#: Widths a grid's reading may give the steep stretch of a QRS, ms. The steep
#: stretch is the QRS's fast part, shorter than the 40-200 ms a QRS lasts, so
#: the floor is lower; a phantom grid read from a tint implies ~10 ms.
QRS_MS = (20.0, 250.0)
#: Given or read spans within this share of the window are the window itself.
SAME_SPAN = 0.05


@dataclass(frozen=True)
class Span:
    """How long a picture's trace lasts, and how that was found.

    ``source``: ``"given"``, ``"grid"``, ``"window"`` (assumed: the contract's
    window), ``"one beat"`` (assumed: a crop of one beat), ``"shape"`` (one
    beat, its span read from its shape by the span model) or ``"lone"`` (one
    beat, read by a lone-beat model: no span is assumed).
    """

    duration_s: float
    source: str
    note: str = ""  # a grid that was seen and refused, and why
    beats: int = -1  # QRS complexes the trace shows (-1: not counted)

    def describe(self) -> str:
        """A short phrase for notes: "0.8 s (read from the grid)"."""
        how = {
            "given": "given",
            "grid": "read from the ECG-paper grid",
            "window": "assumed: the model's window",
            "one beat": "assumed: one beat, no grid; give the span for a better answer",
            "shape": "one beat, no grid: estimated from the beat's shape, often "
            "15-30% off; give the span for a better answer",
            "lone": "one beat, no grid: read by the lone-beat model, which needs "
            "no time scale",
        }[self.source]
        if self.source == "lone":
            return f"{how}; {self.note}" if self.note else how
        out = f"{self.duration_s:.2g} s ({how})"
        return f"{out}; {self.note}" if self.note else out


#: A picture shorter than this cannot show fibrillation (s): VF is a rhythm of
#: several waves a second, and a lone wide wave looks like a PVC's QRS.
VF_MIN_S = 1.0


#: Classes whose side one beat of one lead cannot show with confidence.
BLOCK_CLASSES = ("Left Bundle Branch Block", "Right Bundle Branch Block")


def lone_beat_caveat(cls: str, span: Span) -> str:
    """What a picture of one beat cannot show of the class it was called, in
    words ("" when it can): a PAC differs from a Normal beat by coming early,
    which one beat cannot show (so neither a PAC nor a Normal answer is
    sure); VF needs more than a second of waves; a block's side is read from
    V1 and V6, which one beat of one lead lacks."""
    if cls == "Premature Atrial Contraction" and span.beats == 1:
        return (
            "one beat: prematurity, what makes a PAC, cannot be judged from a "
            "single beat; give a rhythm strip or a record"
        )
    if cls == "Normal" and span.beats == 1:
        # A PAC is drawn as a Normal beat is; only its timing differs. So a
        # lone beat read as Normal may be a PAC, and saying "Normal" alone
        # would hide that (most PAC thumbnails are read as Normal).
        return (
            "one beat: conducted normally, but whether it came early (a PAC) "
            "cannot be judged from a single beat; give a rhythm strip or a record"
        )
    if cls in BLOCK_CLASSES and span.beats == 1:
        # A PAC conducted aberrantly is drawn with a block's wide QRS: only
        # its timing tells them apart, which one beat cannot show either.
        return (
            "one beat of one lead: a wide QRS means a bundle branch block is "
            "likely, but left or right cannot be told with confidence from this "
            "picture (the side is read from V1 and V6), and whether it came "
            "early (a PAC conducted with a block's shape) cannot be judged from "
            "a single beat; give a record or a signal with those leads"
        )
    if cls == "Ventricular Fibrillation" and span.duration_s <= 0:
        return (
            "one beat's picture, its span unknown: fibrillation cannot be judged "
            f"from under {VF_MIN_S:g} s of signal; give a longer strip or a record"
        )
    if cls == "Ventricular Fibrillation" and span.duration_s < VF_MIN_S:
        return (
            f"{span.duration_s:.2g} s: fibrillation cannot be judged from under "
            f"{VF_MIN_S:g} s of signal; give a longer strip or a record"
        )
    return ""


#: A run's span model: the span of a picture of one beat from its shape.
SPAN_FILE = "span.keras"
#: Columns a trace is resampled to for the span model.
SPAN_COLS = 128


def span_features(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """A trace as the span model reads it: its centre line and pen height,
    resampled to :data:`SPAN_COLS` columns and scaled by its height, so only
    the shape is left (the picture's size and vertical scale are not).

    Parameters
    ----------
    lo, hi : np.ndarray
        Per-column envelope of the trace, pixels, shape ``(n_cols,)``.

    Returns
    -------
    np.ndarray
        float32, shape ``(SPAN_COLS, 2)``: centre 0..1, height 0..1.
    """
    n = lo.size
    t = np.linspace(0, n - 1, SPAN_COLS)
    lo_r = np.interp(t, np.arange(n), lo)  # (SPAN_COLS,)
    hi_r = np.interp(t, np.arange(n), hi)
    r = max(float(hi.max() - lo.min()), 1e-6)
    mid = ((lo_r + hi_r) / 2 - float(lo.min())) / r
    return np.stack([mid, (hi_r - lo_r) / r], axis=-1).astype(np.float32)


class SpanModel:
    """A run's span model (``span.keras``), loaded once.

    It maps :func:`span_features` to the log of the span in seconds; it was
    fitted on thumbnails of 0.4-1.2 s (:mod:`ecg_model.training.span_fit`),
    so its answers are clipped to that range.
    """

    def __init__(self, path: str | Path) -> None:
        import keras

        self.path = Path(path)
        self.model = keras.saving.load_model(self.path, compile=False)

    def predict(self, lo: np.ndarray, hi: np.ndarray) -> float:
        """The span of one traced picture, s."""
        x = span_features(lo, hi)[None]  # (1, SPAN_COLS, 2)
        log_s = float(np.asarray(self.model(x, training=False))[0, 0])
        return float(np.clip(np.exp(log_s), *THUMB_SPANS))


def span_model_read(run_dir: str | Path) -> SpanModel | None:
    """The run's span model, or None where it has none.

    Raises
    ------
    EcgError
        The file is there but cannot be loaded.
    """
    path = Path(run_dir) / SPAN_FILE
    if not path.exists():
        return None
    try:
        return SpanModel(path)
    except Exception as e:
        raise EcgError(f"{path}: cannot load the span model ({e})") from None


def span_find(
    picture: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    spec: RenderSpec,
    duration_s: float | None = None,
    span_model: SpanModel | None = None,
) -> Span:
    """The time span of a traced picture (see the module's order of sources)."""
    if duration_s:
        return Span(float(duration_s), "given")
    grid, note = grid_read(picture)
    if grid is not None and grid.box_px > 0:
        span = lo.size / grid.box_px * BOX_S
        bad = beats_unphysiological(lo, hi, span)
        if not bad:
            return Span(span, "grid")
        note = f"a grid read as {span:.2g} s was refused: {bad}"
    elif note:
        note = f"grid refused: {note}"
    s = span_estimate(lo, hi, spec, span_model)
    return replace(s, note=note)


def beats_unphysiological(lo: np.ndarray, hi: np.ndarray, span_s: float) -> str:
    """Why the beats of a trace read as ``span_s`` seconds are not a heart's
    ("" when they could be): a heart rate outside :data:`HR_BPM`, or QRS
    complexes outside :data:`QRS_MS` (their steep stretch, :func:`qrs_runs`)."""
    n = lo.size
    if n < 8 or span_s <= 0:
        return ""
    px_s = n / span_s  # columns a second
    runs = qrs_runs(lo, hi)
    if runs:
        qrs = 1000 * float(np.median([g[-1] - g[0] + 1 for g in runs])) / px_s
        if not QRS_MS[0] <= qrs <= QRS_MS[1]:
            return f"its QRS complexes would last {qrs:.0f} ms"
    beats = trace_beats(lo, hi)
    if beats.size >= 2:
        hr = 60 * px_s / float(np.median(np.diff(beats)))
        if not HR_BPM[0] <= hr <= HR_BPM[1]:
            return f"its heart rate would be {hr:.0f} bpm"
    return ""


def span_estimate(
    lo: np.ndarray,
    hi: np.ndarray,
    spec: RenderSpec,
    span_model: SpanModel | None = None,
) -> Span:
    """The span of a trace without a grid or a given span (see the module)."""
    window = spec.window_s
    runs = qrs_runs(lo, hi)
    # One beat: a single steep stretch over 2% of the width. Measured on the
    # style test's development set (training patients, `style-test --part
    # train`): 68% of 0.6-1 s crops show one such stretch (most others also
    # catch a neighbour's QRS at an edge), and 0-2% of 2.4 s windows do (a
    # slow rate, or a PVC among small beats). Requiring 5%, as at first, left
    # narrow-QRS crops (RBBB in lead II, 2-5%) read as windows: 52% found.
    if len(runs) == 1 and runs[0][-1] - runs[0][0] + 1 >= ONE_BEAT_QRS * lo.size:
        if span_model is not None:
            return Span(span_model.predict(lo, hi), "shape")
        return Span(ONE_BEAT_S, "one beat")
    return Span(window, "window")


def span_draw(
    lo: np.ndarray, hi: np.ndarray, span: Span, spec: RenderSpec
) -> np.ndarray:
    """Redraw a trace of ``span`` at the contract's scale, beat at its place.

    Parameters
    ----------
    lo, hi : np.ndarray
        Per-column envelope of the trace, shape ``(n_cols,)``.

    Returns
    -------
    np.ndarray
        uint8, shape ``(image_height, image_width)``.
    """
    window = spec.window_s
    n = lo.size
    if n == 0 or abs(span.duration_s - window) <= SAME_SPAN * window:
        return trace_draw(lo, hi, spec)  # the window itself, beat at its centre
    px_s = n / span.duration_s  # trace columns a second
    beats = trace_beats(lo, hi)
    # The beat: the QRS nearest the centre; none (fibrillation): the centre.
    c = beats[np.argmin(np.abs(beats - n / 2))] if beats.size else n / 2
    a = c - spec.window_before_s * px_s  # window start, trace columns (may be < 0)
    step = window * px_s / spec.image_width  # trace columns an image column
    j0 = int(np.clip(round((0 - a) / step), 0, spec.image_width))
    j1 = int(np.clip(round((n - a) / step), j0, spec.image_width))
    i0 = int(np.clip(np.floor(a + j0 * step), 0, n - 1))
    i1 = int(np.clip(np.ceil(a + j1 * step), i0 + 1, n))
    out = np.full((spec.image_height, spec.image_width), 255, np.uint8)
    if j1 > j0:
        # The picture's stretch inside the window, drawn over its columns only;
        # the rest stays blank paper.
        out[:, j0:j1] = trace_draw(
            lo[i0:i1], hi[i0:i1], replace(spec, image_width=j1 - j0)
        )
    return out


def picture_window(
    picture: np.ndarray,
    spec: RenderSpec,
    duration_s: float | None = None,
    span_model: SpanModel | None = None,
) -> tuple[np.ndarray, TraceQuality, Span]:
    """Any picture of one beat -> the model's input, with how its span was found.

    Parameters
    ----------
    picture : np.ndarray
        uint8, ``(h, w)`` or ``(h, w, 3)``, any size.
    spec : RenderSpec
        The model's drawing contract.
    duration_s : float, optional
        The time the picture's trace spans, s, where the user knows it.
    span_model : SpanModel, optional
        Reads a lone beat's span from its shape (else :data:`ONE_BEAT_S`).

    Returns
    -------
    image : np.ndarray
        uint8, ``(image_height, image_width)``.
    quality : TraceQuality
    span : Span
    """
    # Grid and trace are measured on the same (reduced) copy, so the grid's
    # box size and the trace's columns share one scale.
    small = picture_reduce(
        picture if picture.ndim == 3 else np.repeat(picture[..., None], 3, 2)
    )
    lo, hi, q = image_trace(small, centre_line=True)
    if not q.found:
        window = spec.window_s
        return trace_draw(lo, hi, spec), q, Span(window, "window")
    span = span_find(small, lo, hi, spec, duration_s, span_model)
    span = replace(span, beats=len(qrs_runs(lo, hi)))
    return span_draw(lo, hi, span, spec), q, span
