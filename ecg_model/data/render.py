"""Draw ECG windows as beat images, and redraw any ECG picture the same way.

One drawing routine serves everything: the dataset build (signal -> image), the
dataset browser, signals a user uploads, and pictures a user uploads (picture ->
trace -> the same drawing). Each image column shows the min-max envelope of the
signal over that column's time span, the way a plotting program draws a dense
line; amplitude is scaled per window so the trace fills the height.

Contract (also written to each model's ``preprocessing.json``): the beat sits at
``window_before_s`` from the left edge, the image is ``image_height`` x
``image_width`` grayscale, dark trace (0) on a white background (255), lines one
pixel wide, no anti-aliasing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
from scipy import ndimage
from skimage.filters import apply_hysteresis_threshold
from skimage.morphology import skeletonize

from ..core.classes import CLASSES
from .signals import FS

#: The drawing contracts (:attr:`RenderSpec.view`).
VIEWS = ("window", "thumbnail")


@dataclass(frozen=True)
class RenderSpec:
    """How a window of signal becomes an image.

    Attributes
    ----------
    fs : float
        Sampling rate the signal is resampled to, Hz.
    window_before_s, window_after_s : float
        Seconds drawn before and after the beat.
    image_height, image_width : int
        Image size in pixels.
    margin_px : int
        Blank rows kept above the highest and below the lowest point.
    """

    fs: float = FS
    window_before_s: float = 1.2
    window_after_s: float = 1.2
    image_height: int = 64
    # 2.4 s in 256 columns, 9.4 ms a column: a 120 ms LBBB QRS is 2-3 columns
    # wider than a 100 ms normal one (1 column at 128, the first contract, which
    # models trained then keep in their preprocessing.json).
    image_width: int = 256
    margin_px: int = 2
    # "window": the beat at window_before_s in a window of window_s, the time
    # scale fixed (the contract of every model before); "thumbnail": a picture
    # of one beat of unknown span, its whole trace redrawn across the width
    # (:func:`image_normalize`), for the lone-beat model.
    view: str = "window"

    def __post_init__(self) -> None:
        if self.view not in VIEWS:
            raise ValueError(f"view must be one of {', '.join(VIEWS)}")
        # A preprocessing.json is read from run folders anyone can write: a
        # declared 100000 x 100000 picture would take the server's memory.
        for name, lo, hi in (("image_height", 16, 512), ("image_width", 16, 2048)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                raise ValueError(f"{name} must be a whole number from {lo} to {hi}")
        m = self.margin_px
        if not isinstance(m, int) or isinstance(m, bool) or not 0 <= m < 8:
            raise ValueError("margin_px must be a whole number from 0 to 7")
        for name, lo, hi in (
            ("fs", 50.0, 2000.0),
            ("window_before_s", 0.1, 10.0),
            ("window_after_s", 0.1, 10.0),
        ):
            v = getattr(self, name)
            ok = isinstance(v, (int, float)) and not isinstance(v, bool)
            if not ok or not lo <= float(v) <= hi:
                raise ValueError(f"{name} must be a number from {lo:g} to {hi:g}")

    @property
    def window_s(self) -> float:
        """The window's length, s."""
        return self.window_before_s + self.window_after_s

    @property
    def before(self) -> int:
        """Window length before the beat, samples."""
        return int(round(self.window_before_s * self.fs))

    @property
    def after(self) -> int:
        """Window length after the beat, samples."""
        return int(round(self.window_after_s * self.fs))

    def to_json(self) -> dict[str, Any]:
        """The ``preprocessing.json`` contract (with the class order)."""
        d = asdict(self)
        d.update(
            classes=list(CLASSES),
            amplitude_scaling="per-window min-max to rows "
            "[margin_px, image_height-1-margin_px]",
            polarity="dark trace (0) on white background (255)",
            line="min-max envelope per column, 1 px, no anti-aliasing",
            upload_normalisation="trace extracted from any picture and redrawn "
            "(render.image_normalize)",
        )
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RenderSpec:
        """The spec from a ``preprocessing.json`` dict (extra keys ignored).

        Raises
        ------
        ValueError
            ``d`` is not an object, or a value is of the wrong type or range.
        """
        if not isinstance(d, dict):
            raise ValueError("preprocessing is not a JSON object")
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def envelope_draw(lo: np.ndarray, hi: np.ndarray, spec: RenderSpec) -> np.ndarray:
    """Draw per-column envelopes as images.

    Parameters
    ----------
    lo, hi : np.ndarray
        Lowest and highest value in each column (any unit, larger = up), shape
        ``(n, image_width)``.
    spec : RenderSpec
        Image size and margin.

    Returns
    -------
    np.ndarray
        uint8 images, shape ``(n, image_height, image_width)``, trace 0 on 255.
    """
    h, m = spec.image_height, spec.margin_px
    vmin = lo.min(axis=1, keepdims=True)
    vmax = hi.max(axis=1, keepdims=True)
    span = vmax - vmin
    flat = span <= 1e-9
    span = np.where(flat, 1.0, span)
    # Value -> row: vmax maps to row m (top), vmin to row h-1-m (bottom); a flat
    # window is drawn as a line through the middle.
    scale = (h - 1 - 2 * m) / span
    top = np.where(flat, h // 2, np.rint(m + (vmax - hi) * scale))  # (n, w)
    bot = np.where(flat, h // 2, np.rint(m + (vmax - lo) * scale))  # (n, w)
    rows = np.arange(h, dtype=np.float64)[None, :, None]  # (1, h, 1)
    ink = (rows >= top[:, None, :]) & (rows <= bot[:, None, :])  # (n, h, w)
    return np.where(ink, 0, 255).astype(np.uint8)


def windows_render(
    sig: np.ndarray, centres: np.ndarray, spec: RenderSpec
) -> np.ndarray:
    """Render the window around each centre of one signal.

    Parameters
    ----------
    sig : np.ndarray
        Signal in mV at ``spec.fs``, shape ``(sig_len,)``.
    centres : np.ndarray
        Beat positions in samples, shape ``(n,)``; each window must lie inside
        ``sig`` (callers skip edge beats).
    spec : RenderSpec
        The drawing contract.

    Returns
    -------
    np.ndarray
        uint8 images, shape ``(n, image_height, image_width)``.
    """
    centres = np.asarray(centres, dtype=np.int64)
    w = spec.image_width
    n_win = spec.before + spec.after
    # Sample the window at k points per column (linear interpolation) so every
    # column's envelope sees the peaks even when columns and samples don't align.
    k = max(2, int(np.ceil(n_win / w)) * 2)
    pos = np.linspace(0.0, n_win - 1, w * k)  # (w*k,)
    i0 = np.floor(pos).astype(np.int64)
    frac = pos - i0
    i1 = np.minimum(i0 + 1, n_win - 1)
    out = np.empty((centres.size, spec.image_height, w), dtype=np.uint8)
    for s in range(0, centres.size, 4096):  # chunks bound memory on long records
        c = centres[s : s + 4096, None] - spec.before  # (b, 1)
        seg = sig[c + i0] * (1 - frac) + sig[c + i1] * frac  # (b, w*k)
        seg = seg.reshape(-1, w, k)  # (b, w, k)
        lo, hi = seg.min(axis=2), seg.max(axis=2)  # (b, w)
        # Join each column to its neighbour so steep strokes stay connected.
        prev = np.concatenate([seg[:, :1, 0], seg[:, :-1, -1]], axis=1)  # (b, w)
        lo, hi = np.minimum(lo, prev), np.maximum(hi, prev)
        out[s : s + 4096] = envelope_draw(lo, hi, spec)
    return out


def outside_blank(
    imgs: np.ndarray, centres: np.ndarray, sig_len: int, spec: RenderSpec
) -> np.ndarray:
    """White out the columns of each window that lie outside the signal.

    A beat near the start or end of a short signal (a strip) has no neighbour on
    one side; blank paper says "no signal here", where a padded flat line would
    say "a pause".

    Parameters
    ----------
    imgs : np.ndarray
        uint8 windows, shape ``(n, image_height, image_width)``.
    centres : np.ndarray
        Beat positions in samples of the unpadded signal, shape ``(n,)``.
    sig_len : int
        Length of the unpadded signal, samples.

    Returns
    -------
    np.ndarray
        A copy of ``imgs`` with those columns set to 255.
    """
    w = spec.image_width
    span = (spec.before + spec.after) / w  # samples a column
    t0 = np.asarray(centres)[:, None] - spec.before + np.arange(w) * span  # (n, w)
    outside = (t0 + span <= 0) | (t0 >= sig_len)  # (n, w)
    out = np.array(imgs, copy=True)
    out[np.broadcast_to(outside[:, None, :], out.shape)] = 255
    return out


# ---------------------------------------------------------------------------
# One-beat thumbnails, as other software draws them


@dataclass(frozen=True)
class ThumbSpec:
    """How a one-beat thumbnail is drawn (the pictures users already have).

    The original report's folders hold 192 x 128 grey pictures of 0.53 s
    around a beat's R peak: a thin anti-aliased grey line on white, no grid, a
    fixed vertical scale so tall QRS complexes leave the picture (clipped).

    Attributes
    ----------
    span_s : float
        Time the picture spans, s, the beat at its centre.
    width, height : int
        Picture size, px.
    mv_below, mv_above : float
        The fixed vertical scale: mV shown below and above the window's median
        (its baseline); a wave beyond is clipped at the picture's edge.
    line_px : float
        Line width, px (drawn 4x larger and reduced: anti-aliased).
    grey : int
        The line's grey level, 0 (black) to 254.
    """

    span_s: float = 0.53
    width: int = 192
    height: int = 128
    mv_below: float = 1.0
    mv_above: float = 1.5
    line_px: float = 1.0
    grey: int = 90

    def __post_init__(self) -> None:
        if not 0.1 <= self.span_s <= 10.0:
            raise ValueError("span_s must be from 0.1 to 10 s")
        if not (16 <= self.width <= 2048 and 16 <= self.height <= 2048):
            raise ValueError("width and height must be from 16 to 2048 px")
        if not (self.mv_below > 0 and self.mv_above > 0):
            raise ValueError("mv_below and mv_above must be positive (mV)")
        if not 0.25 <= self.line_px <= 8 or not 0 <= self.grey <= 254:
            raise ValueError("line_px must be 0.25-8 px and grey 0-254")


#: Supersampling of thumbnails: drawn this many times larger, then reduced.
THUMB_SS = 4
#: Spans of the one-beat thumbnails drawn for training and the style test, s.
THUMB_SPANS = (0.4, 1.2)


def thumb_spec_random(
    rng: np.random.Generator, span_s: tuple[float, float] = THUMB_SPANS
) -> ThumbSpec:
    """A thumbnail's drawing as other software might make it: span (log-uniform
    in ``span_s``), width 64-256 px, aspect 1-2, line 0.6-2 px, grey 0-160, and
    in half of them a fixed vertical scale tight enough to clip tall waves."""
    w = int(rng.integers(64, 257))
    h = max(32, int(round(w / rng.uniform(1.0, 2.0))))
    clip = rng.random() < 0.5
    return ThumbSpec(
        span_s=float(np.exp(rng.uniform(*np.log(span_s)))),
        width=w,
        height=h,
        mv_below=float(rng.uniform(0.6, 1.2)) if clip else 3.0,
        mv_above=float(rng.uniform(0.8, 1.6)) if clip else 4.0,
        line_px=float(rng.uniform(0.6, 2.0)),
        grey=int(rng.integers(0, 161)),
    )


def thumb_random_draw(
    sig: np.ndarray, c: float, fs: float, rng: np.random.Generator
) -> tuple[np.ndarray, float] | None:
    """One beat at sample ``c`` of ``sig`` (mV at ``fs``) drawn as a random
    thumbnail (:func:`thumb_spec_random`), centred on it within 5% of its
    span as a crop is: the picture and the span it shows, s (None where the
    signal holds under two samples there)."""
    ts = thumb_spec_random(rng)
    half = ts.span_s * fs / 2  # samples each side
    mid = c + rng.uniform(-0.05, 0.05) * 2 * half
    a, b = int(max(0, mid - half)), int(min(sig.size, mid + half))
    if b - a < 2:
        return None
    return thumbnail_draw(sig[a:b], fs, ts), (b - a) / fs


def thumbs_render(
    sig: np.ndarray, centres: np.ndarray, spec: RenderSpec, rng: np.random.Generator
) -> np.ndarray:
    """Draw each beat as a random thumbnail (:func:`thumb_spec_random`), then
    read it back as the predictor does (:func:`image_normalize`: the trace,
    however long it lasts, redrawn across the width).

    Parameters
    ----------
    sig : np.ndarray
        Signal in mV at ``spec.fs``, shape ``(sig_len,)``.
    centres : np.ndarray
        Beat positions, samples, shape ``(n,)``; ``THUMB_SPANS[1] / 2`` s of
        signal must lie each side.

    Returns
    -------
    np.ndarray
        uint8 images, shape ``(n, image_height, image_width)``.
    """
    out = np.full((len(centres), spec.image_height, spec.image_width), 255, np.uint8)
    for i, c in enumerate(np.asarray(centres, np.int64)):
        drawn = thumb_random_draw(sig, c, spec.fs, rng)
        if drawn is not None:
            out[i] = image_normalize(drawn[0], spec)[0]
    return out


def thumbnail_draw(seg: np.ndarray, fs: float, spec: ThumbSpec) -> np.ndarray:
    """Draw a window of signal as a one-beat thumbnail.

    Parameters
    ----------
    seg : np.ndarray
        Signal in mV, shape ``(n,)``, spanning ``spec.span_s`` at ``fs`` Hz with
        the beat at its centre.
    fs : float
        Sampling rate, Hz.
    spec : ThumbSpec
        Size, scale, line.

    Returns
    -------
    np.ndarray
        uint8 grey picture, shape ``(height, width)``, line dark on 255.
    """
    from PIL import Image, ImageDraw

    seg = np.asarray(seg, np.float64)
    if seg.size < 2:
        raise ValueError("a thumbnail needs two samples or more")
    ss = THUMB_SS
    w, h = spec.width * ss, spec.height * ss
    base = float(np.median(seg))
    # Time -> x across the whole width; mV -> y on the fixed scale: a wave
    # past mv_above (mv_below) runs off the top (bottom) edge, as a plot with
    # fixed limits clips it.
    x = np.arange(seg.size) / (seg.size - 1) * (w - 1)  # (n,)
    top = base + spec.mv_above
    y = (top - seg) / (spec.mv_above + spec.mv_below) * (h - 1)  # (n,)
    y = np.clip(y, -h, 2 * h)  # far off-picture points: the line still leaves
    img = Image.new("L", (w, h), 255)
    ImageDraw.Draw(img).line(
        list(zip(x.tolist(), y.tolist())),
        fill=int(spec.grey),
        width=max(1, int(round(spec.line_px * ss))),
        joint="curve",
    )
    # Reduced with a box filter: each pixel the mean of its ss x ss block, so
    # the line's edges come out grey (anti-aliased).
    return np.asarray(img.resize((spec.width, spec.height), Image.BOX), np.uint8)


# ---------------------------------------------------------------------------
# Any picture -> the project's own drawing


@dataclass
class TraceQuality:
    """What the trace extractor found in a picture.

    ``ink_fraction``: share of pixels taken as trace; ``coverage``: share of the
    trace's columns that hold ink; ``line_px``: estimated line thickness (pixels);
    ``inverted``: light trace on a dark background; ``looks_like_ecg``: a single
    continuous trace was found; ``found``: False when there is no trace at all
    (blank, noise, a photo or a filled shape), as opposed to a poor one.
    """

    ink_fraction: float
    coverage: float
    line_px: float
    inverted: bool
    looks_like_ecg: bool
    reason: str = ""
    col0: int = 0  # picture column where the trace starts
    found: bool = True


def ink_map(rgb: np.ndarray) -> tuple[np.ndarray, bool]:
    """How much each pixel looks like trace, 0..1, shape ``(h, w)``.

    On a light background the trace is the part that is dark in the red
    channel: black, blue and green traces are, while white paper and the
    pink/red/orange grid of ECG paper are not. On a dark background (monitor
    style) the trace is the bright part.
    """
    rgb = rgb.astype(np.float32) / 255.0  # (h, w, 3)
    lum = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    inverted = float(np.median(lum)) < 0.5
    if inverted:
        bright = rgb.max(axis=2)
        ink = bright - float(np.median(bright))
    else:
        red = rgb[..., 0]
        ink = float(np.median(red)) - red
        if ink.max() < 0.25:  # a red trace: fall back to darkness
            ink = float(np.median(lum)) - lum
    return np.clip(ink, 0.0, 1.0), inverted


def _long_cols(mask: np.ndarray, frac: float = 0.8) -> np.ndarray:
    """Pixels of vertical runs longer than ``frac`` of the height (frame sides, y axes).

    Only for pictures over 100 px tall: there a QRS stroke is slanted and breaks
    into short runs, while in a small picture one column can hold a whole QRS.
    """
    h, w = mask.shape
    if h <= 100:
        return np.zeros_like(mask)
    return _long_rows(mask.T, frac).T


def _long_rows(mask: np.ndarray, frac: float = 0.6) -> np.ndarray:
    """Pixels of horizontal runs longer than ``frac`` of the width (axes, frames).

    An ECG window with beats in it never stays on one row that long, while an
    x axis, a frame or a heavy grid line does.
    """
    h, w = mask.shape
    out = np.zeros_like(mask)
    # Run lengths per row: label 1-D runs by cumulative count of breaks.
    padded = np.concatenate(
        [np.zeros((h, 1), bool), mask, np.zeros((h, 1), bool)], axis=1
    )
    d = np.diff(padded.astype(np.int8), axis=1)  # +1 at run starts, -1 after run ends
    for r in np.flatnonzero(mask.sum(axis=1) > frac * w):
        starts, stops = np.flatnonzero(d[r] == 1), np.flatnonzero(d[r] == -1)
        for a, b in zip(starts, stops):
            if b - a > frac * w:
                out[r, a:b] = True
    return out


#: Pictures larger than this (pixels) are reduced before the trace is sought,
#: which bounds the time and memory of :func:`image_trace` for any upload.
TRACE_MAX_PIXELS = 4_000_000
#: A trace is a line: above this share of the picture, the "ink" is noise, a
#: photo or a filled area, and no trace is sought in it.
TRACE_MAX_INK = 0.35
#: Most of a trace's ink that may survive an erosion by half its line width
#: (a line keeps its turns only; a filled shape keeps its inside).
FILLED_MAX = 0.2
#: Thickest line thinned to its centre line, pixels (a thicker "line" is a blob).
TRACE_MAX_LINE_PX = 25


def picture_reduce(rgb: np.ndarray, max_pixels: int = TRACE_MAX_PIXELS) -> np.ndarray:
    """A copy of at most ``max_pixels`` pixels that keeps thin dark lines.

    Each ``k x k`` block becomes its darkest pixel (per channel), so a 1 px trace
    survives the reduction. Returns uint8 ``(h // k, w // k, 3)``; ``rgb`` itself
    when it is small enough.
    """
    h, w = rgb.shape[:2]
    if h * w <= max_pixels:
        return rgb
    k = int(np.ceil(np.sqrt(h * w / max_pixels)))
    hk, wk = h // k, w // k
    blocks = rgb[: hk * k, : wk * k].reshape(hk, k, wk, k, -1)  # (hk, k, wk, k, c)
    # On a dark background the trace is bright: keep the brightest instead.
    lum = float(np.median(rgb[::k, ::k].mean(axis=-1)))
    return blocks.max(axis=(1, 3)) if lum < 128 else blocks.min(axis=(1, 3))


def straight_lines(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` on long straight runs: axes, frames, heavy grid lines."""
    return _long_rows(mask) | _long_cols(mask)


def image_trace(
    gray_or_rgb: np.ndarray, centre_line: bool = False
) -> tuple[np.ndarray, np.ndarray, TraceQuality]:
    """Extract the ECG trace of a picture as a per-column envelope.

    Steps: ink map (grid and background removed) -> threshold -> drop axis
    lines and small marks (tick labels) -> thin the line (to its skeleton with
    ``centre_line``; else erode lines of 3 px or more) -> per column, the top
    and bottom of what is left -> fill gap columns.

    Parameters
    ----------
    gray_or_rgb : np.ndarray
        uint8 picture, shape ``(h, w)`` or ``(h, w, 3)``.
    centre_line : bool
        Thin the pen to its one-pixel centre line (a skeleton), for a picture
        to be redrawn as the project draws. Otherwise the envelope is the pen's
        edges (lines of 3 px or more eroded first), whose middle is the signal
        to a fraction of a pixel: the strip reader's choice, measured 0.5-1.5 dB
        better in digitisation SNR.

    Returns
    -------
    lo, hi : np.ndarray
        Lowest and highest trace value in each column (pixels, up = larger),
        shape ``(n_cols,)`` over the columns the trace spans.
    quality : TraceQuality
    """
    rgb = (
        gray_or_rgb
        if gray_or_rgb.ndim == 3
        else np.repeat(gray_or_rgb[..., None], 3, 2)
    )
    rgb = picture_reduce(rgb)
    ink, inverted = ink_map(rgb)
    peak = float(np.percentile(ink, 99.9)) if ink.size else 0.0
    if peak < 0.15:
        q = TraceQuality(
            0.0, 0.0, 0.0, inverted, False, "no trace found (blank image)", found=False
        )
        return np.zeros(0), np.zeros(0), q
    ref = 0.5 * max(peak, float(ink.max()) * 0.6)
    mask = ink > ref
    if mask.mean() > TRACE_MAX_INK:
        q = TraceQuality(
            float(mask.mean()),
            0.0,
            0.0,
            inverted,
            False,
            f"no ECG trace found: ink covers {mask.mean():.0%} of the picture "
            "(noise, a photo or a filled area, not a line)",
            found=False,
        )
        return np.zeros(0), np.zeros(0), q
    mask &= ~straight_lines(mask)
    # Pieces are joined by fainter ink (hysteresis, down to half the
    # threshold) but keep only the ink above it. A thin anti-aliased pen (a
    # thumbnail's grey 1 px line) falls below the threshold between columns of
    # its steep strokes; cut there, the trace kept was one piece's
    # neighbourhood, half the beat. The faint ink itself stays out: on a JPEG
    # it is the ringing beside the pen, which widens the strip reader's edges.
    joined = apply_hysteresis_threshold(ink, 0.5 * ref, ref)
    joined &= ~straight_lines(joined)
    lab, n = ndimage.label(joined, structure=np.ones((3, 3)))
    lab = np.where(mask, lab, 0)
    if not lab.any():
        q = TraceQuality(0.0, 0.0, 0.0, inverted, False, "no trace found", found=False)
        return np.zeros(0), np.zeros(0), q
    # Keep the trace: connected pieces at least a tenth the size of the largest,
    # except straight 1-3 px wide strokes (a y axis, a frame side, a tick);
    # text, tick labels and specks are far smaller than an ECG line.
    sizes = np.bincount(lab.ravel(), minlength=n + 1)[1:]  # (n,) strong ink
    boxes = ndimage.find_objects(lab, max_label=n)  # None: no strong ink
    big = int(sizes.argmax())
    keep = [
        i + 1
        for i, (sz, b) in enumerate(zip(sizes, boxes))
        if b is not None
        and sz >= 0.1 * sizes[big]
        and (i == big or min(b[0].stop - b[0].start, b[1].stop - b[1].start) > 3)
    ]
    mask = np.isin(lab, keep)
    cols = np.flatnonzero(mask.any(axis=0))
    c0, c1 = int(cols[0]), int(cols[-1]) + 1
    mask = mask[:, c0:c1]  # (h, n_cols)
    h, n_cols = mask.shape
    has = mask.any(axis=0)
    top = np.where(has, mask.argmax(axis=0), 0).astype(np.float64)
    bot = np.where(has, h - 1 - mask[::-1].argmax(axis=0), 0).astype(np.float64)
    # A line fills its column from top to bottom; blobs of a photo leave gaps.
    span = (bot - top + 1)[has]
    contiguity = float(mask.sum() / span.sum()) if span.size else 0.0
    # Line thickness: the vertical extent of the flattest columns.
    ext = (bot - top + 1)[has]
    line = float(np.percentile(ext, 3)) if ext.size else 1.0
    # A line, not a filled shape: eroded by half its thickness and a pixel, a
    # pen's stroke vanishes but for its turns; a blob (the coffee in a photo of
    # a cup) keeps most of itself.
    refused = ""
    if line > TRACE_MAX_LINE_PX:
        refused = (
            f"no ECG trace found: the darkest shape is {line:.0f} px thick, not a line"
        )
    else:
        r = int(np.ceil(line / 2)) + 1
        core = ndimage.binary_erosion(mask, structure=np.ones((3, 3)), iterations=r)
        if core.sum() > FILLED_MAX * mask.sum():
            refused = (
                "not an ECG: the darkest shape is a filled area, not a line "
                "(a photo or a drawing?)"
            )
    if refused:
        q = TraceQuality(
            float(mask.mean()),
            float(has.mean()),
            line,
            inverted,
            False,
            refused,
            found=False,
        )
        return np.zeros(0), np.zeros(0), q
    if centre_line and line >= 2:
        # Thin the pen to its centre line (one pixel), as the project draws:
        # a vertical cut of a thick line leaves flat stretches two rows or more
        # thick, and steep strokes as wide as the pen, so the QRS the model
        # sees is wider than drawn. Skeletonising keeps the path and thins both.
        thin = skeletonize(mask)
        if thin.any(axis=0).mean() > 0.5 * has.mean():
            # A skeleton stops half a pen short of each peak; where the line's
            # own edge peaks (a local extreme within a pen's width), its centre
            # is half a pen inside that edge, so the peak keeps its height.
            k, half = int(np.ceil(line)), (line - 1) / 2
            tip_top = ndimage.minimum_filter1d(top, 2 * k + 1) == top
            tip_bot = ndimage.maximum_filter1d(bot, 2 * k + 1) == bot
            mask = thin
            t_edge, b_edge = top + half, bot - half
            has = mask.any(axis=0)
            top = np.where(has, mask.argmax(axis=0), 0).astype(np.float64)
            bot = np.where(has, h - 1 - mask[::-1].argmax(axis=0), 0).astype(np.float64)
            # Only where the skeleton itself comes within a pen of that edge:
            # the flat top of a blob (a thick pen's spike) is not a peak.
            tip_top &= top - t_edge <= line
            tip_bot &= b_edge - bot <= line
            top = np.where(has & tip_top, np.minimum(top, t_edge), top)
            bot = np.where(has & tip_bot, np.maximum(bot, b_edge), bot)
    elif line >= 3:
        # A thin line on a steady slope spans 2 rows per column even when it is
        # one pixel wide, so only lines of 3 px or more are eroded: by a disk of
        # the line's half-width, on flat and steep parts alike (a vertical cut
        # would leave steep strokes as wide as the pen).
        r = int((line - 1) // 2)
        yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
        thin = ndimage.binary_erosion(mask, structure=(yy**2 + xx**2) <= r * r)
        if thin.any(axis=0).mean() > 0.5 * has.mean():
            mask = thin
            has = mask.any(axis=0)
            top = np.where(has, mask.argmax(axis=0), 0).astype(np.float64)
            bot = np.where(has, h - 1 - mask[::-1].argmax(axis=0), 0).astype(np.float64)
    if not has.all():  # gaps (broken or faint line): interpolate across
        idx = np.arange(n_cols)
        top = np.interp(idx, idx[has], top[has])
        bot = np.interp(idx, idx[has], bot[has])
    coverage = float(has.mean())
    ink_frac = float(mask.sum()) / mask.size
    ok = coverage > 0.6 and n_cols > 0.3 * rgb.shape[1] and contiguity > 0.6
    reason = (
        ""
        if ok
        else (
            "no single trace: scattered dark patches, as in a photo"
            if contiguity <= 0.6
            else "trace too short or broken to be an ECG"
        )
    )
    q = TraceQuality(
        ink_frac, coverage, line, inverted, ok, reason, col0=c0, found=contiguity > 0.6
    )
    return -bot, -top, q  # rows grow downwards; values grow upwards


def qrs_runs(lo: np.ndarray, hi: np.ndarray) -> list[np.ndarray]:
    """The columns of each steep stretch of a trace (see :func:`trace_beats`)."""
    n = lo.size
    if n < 8:
        return []
    mid = (lo + hi) / 2
    steep = (hi - lo) + np.abs(np.diff(mid, prepend=mid[0]))  # (n,)
    if steep.max() <= 0:
        return []
    on = np.flatnonzero(steep > 0.4 * steep.max())
    # Runs of steep columns, joined when the gap is under a tenth of the width.
    breaks = np.flatnonzero(np.diff(on) > max(2, n // 10))
    runs = np.split(on, breaks + 1)
    # A QRS is short: a steep stretch over a third of the trace is waves of
    # fibrillation run together, and then there are no beats to find.
    if any(g[-1] - g[0] >= n / 3 for g in runs):
        return []
    return runs


def trace_beats(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Columns of the QRS complexes of a traced picture, shape ``(n_beats,)``.

    A QRS is the trace's steepest stretch: its columns span many rows (the pen
    moves fast), where P and T waves, however tall, are smooth. Stretches whose
    steepness passes 40% of the steepest, closer than a tenth of the width,
    count as one. A stretch over a third of the width is fibrillation waves run
    together: then none is returned. Each beat's column is its largest
    excursion from baseline.
    """
    mid = (lo + hi) / 2
    base = np.median(mid) if mid.size else 0.0
    dev = np.maximum(np.abs(hi - base), np.abs(lo - base))  # (n,)
    runs = qrs_runs(lo, hi)
    return np.array([g[np.argmax(dev[g])] for g in runs], dtype=np.int64)


def trace_draw(lo: np.ndarray, hi: np.ndarray, spec: RenderSpec) -> np.ndarray:
    """Redraw a per-column envelope of any length at the spec's image size.

    Each output column takes the envelope of the input columns it covers,
    joined to its neighbour, exactly as :func:`windows_render` does for samples.
    Returns uint8, shape ``(image_height, image_width)``.
    """
    w = spec.image_width
    n = lo.size
    if n == 0:
        return np.full((spec.image_height, w), 255, dtype=np.uint8)
    if n == w:
        lo_o, hi_o = lo.astype(np.float64), hi.astype(np.float64)
    else:
        # Column j of the output covers input columns [edges[j], edges[j+1]).
        edges = np.linspace(0, n, w + 1)
        start = np.minimum(np.floor(edges[:-1]).astype(int), n - 1)
        stop = np.maximum(np.ceil(edges[1:]).astype(int), start + 1)
        lo_o = np.minimum.reduceat(lo, start) if n > w else lo[start]
        hi_o = np.maximum.reduceat(hi, start) if n > w else hi[start]
        if n > w:
            # reduceat runs to the next start; extend to each column's stop.
            lo_o = np.minimum(lo_o, lo[stop - 1])
            hi_o = np.maximum(hi_o, hi[stop - 1])
        else:
            # Upsampling: interpolate so steep strokes spread over the new columns.
            x = (np.arange(w) + 0.5) * n / w - 0.5
            lo_i = np.interp(x, np.arange(n), lo)
            hi_i = np.interp(x, np.arange(n), hi)
            prev_lo = np.concatenate([lo_i[:1], lo_i[:-1]])
            prev_hi = np.concatenate([hi_i[:1], hi_i[:-1]])
            mid_prev = (prev_lo + prev_hi) / 2
            lo_o = np.minimum(lo_i, mid_prev)
            hi_o = np.maximum(hi_i, mid_prev)
    return envelope_draw(lo_o[None, :], hi_o[None, :], spec)[0]


def image_normalize(
    picture: np.ndarray, spec: RenderSpec
) -> tuple[np.ndarray, TraceQuality]:
    """Any ECG picture -> the project's own drawing of the same trace.

    Parameters
    ----------
    picture : np.ndarray
        uint8, shape ``(h, w)`` or ``(h, w, 3)``, any size, any polarity.
    spec : RenderSpec
        The model's drawing contract.

    Returns
    -------
    image : np.ndarray
        uint8, shape ``(image_height, image_width)``, trace 0 on 255.
    quality : TraceQuality
    """
    lo, hi, q = image_trace(picture, centre_line=True)
    return trace_draw(lo, hi, spec), q
