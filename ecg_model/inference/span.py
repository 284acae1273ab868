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
with one beat is taken to be a crop of :data:`ONE_BEAT_S`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..data.render import (
    RenderSpec,
    TraceQuality,
    image_trace,
    picture_reduce,
    qrs_runs,
    trace_beats,
    trace_draw,
)
from .strip import BOX_S, grid_detect

#: Assumed span of a picture that shows one beat and no grid, s: the middle of
#: the 0.6-1.0 s that crops of one beat take.
ONE_BEAT_S = 0.8
#: Least share of the width a lone QRS's steep stretch takes in a crop of one beat.
ONE_BEAT_QRS = 0.02
#: Given or read spans within this share of the window are the window itself.
SAME_SPAN = 0.05


@dataclass(frozen=True)
class Span:
    """How long a picture's trace lasts, and how that was found.

    ``source``: ``"given"``, ``"grid"``, ``"window"`` (assumed: the contract's
    window) or ``"one beat"`` (assumed: a crop of one beat).
    """

    duration_s: float
    source: str

    def describe(self) -> str:
        """A short phrase for notes: "0.8 s (read from the grid)"."""
        how = {
            "given": "given",
            "grid": "read from the ECG-paper grid",
            "window": "assumed: the model's window",
            "one beat": "assumed: one beat, no grid; give the span for a better answer",
        }[self.source]
        return f"{self.duration_s:.2g} s ({how})"


def span_find(
    picture: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    spec: RenderSpec,
    duration_s: float | None = None,
) -> Span:
    """The time span of a traced picture (see the module's order of sources)."""
    if duration_s:
        return Span(float(duration_s), "given")
    grid = grid_detect(picture)
    if grid is not None and grid.box_px > 0:
        return Span(lo.size / grid.box_px * BOX_S, "grid")
    window = spec.window_s
    runs = qrs_runs(lo, hi)
    # One beat: a single steep stretch over 2% of the width. Measured on the
    # style test's development set (training patients, `style-test --part
    # train`): 68% of 0.6-1 s crops show one such stretch (most others also
    # catch a neighbour's QRS at an edge), and 0-2% of 2.4 s windows do (a
    # slow rate, or a PVC among small beats). Requiring 5%, as at first, left
    # narrow-QRS crops (RBBB in lead II, 2-5%) read as windows: 52% found.
    if len(runs) == 1 and runs[0][-1] - runs[0][0] + 1 >= ONE_BEAT_QRS * lo.size:
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
    picture: np.ndarray, spec: RenderSpec, duration_s: float | None = None
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
    span = span_find(small, lo, hi, spec, duration_s)
    return span_draw(lo, hi, span, spec), q, span
