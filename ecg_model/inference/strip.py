"""Read a rhythm strip: picture -> signal -> beats -> a class for each beat.

The pipeline of :func:`strip_analyze` reads as a sequence:

1. grid: find the ECG-paper grid (pink/red/orange), straighten the picture by
   the grid's tilt, and take time and amplitude scale from its spacing (1 mm
   boxes at 25 mm/s and 10 mm/mV); without a grid, the strip's duration is given
   (default :data:`DEFAULT_DURATION_S`) and the standard paper aspect is assumed;
2. trace: extract the trace column by column (the same extractor as beat
   pictures), into a signal in seconds and millivolts;
3. beats: clean, resample and detect QRS complexes with ``wfdb``'s XQRS;
4. classes: draw each beat with the training renderer and classify it; where no
   organised beats are found, classify 1 s sliding windows instead (VF);
5. report: per-beat table, counts, heart rate, RR irregularity, and the picture
   annotated with a coloured marker and label at each beat.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from ..core.classes import CLASS_COLORS, CLASSES, SHORT_NAMES
from ..core.errors import EcgError
from ..data.render import (
    RenderSpec,
    image_trace,
    ink_map,
    picture_reduce,
    qrs_runs,
    straight_lines,
    windows_render,
)
from .rhythm import rhythm_describe

if TYPE_CHECKING:
    import pandas as pd

#: Assumed strip length when a picture has no grid and no duration is given, s.
DEFAULT_DURATION_S = 10.0
#: Sizes of the project's own beat pictures (the drawing contract's, first and
#: current): always beats, whatever they show.
OWN_SIZES = ((RenderSpec.image_height, 128), (RenderSpec.image_height, 256))
#: ECG paper: 25 mm/s and 10 mm/mV, so one 1 mm box is 0.04 s and 0.1 mV.
BOX_S, BOX_MV = 0.04, 0.1
#: Largest share of dark pixels in the trace's box for a line drawing.
MAX_INK = 0.15
#: Share of sliding windows called VF above which a strip is read as VF.
VF_SHARE = 0.5
#: A rhythm is organised (beats, not VF) when its RR intervals vary less than this
#: (standard deviation over median) at a rate below 200 bpm.
ORGANISED_MAX_CV, ORGANISED_MIN_RR_S = 0.15, 0.3


@dataclass
class Grid:
    """ECG-paper grid found in a picture."""

    box_px: float  # small (1 mm) box, pixels
    angle_deg: float  # tilt the picture was straightened by
    color: tuple[int, int, int]


@dataclass
class StripResult:
    """Everything read from one strip (times from the trace's left edge)."""

    duration_s: float
    fs: float
    sig: np.ndarray  # the digitised trace at fs: mV on a grid, else relative
    beat_time_s: np.ndarray
    classes: list[str]
    confidence: np.ndarray
    probabilities: np.ndarray  # (n_beats, 6)
    mode: str  # "beats" or "windows" (no organised beats: sliding windows)
    heart_rate_bpm: float | None
    rr_irregularity: float | None  # coefficient of variation of RR intervals
    px_per_s: float
    px_per_mv: float
    grid: Grid | None
    annotated: np.ndarray  # RGB uint8
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line: duration, beats, heart rate and RR variation."""
        what = "beats" if self.mode == "beats" else "1 s windows (no organised beats)"
        out = f"rhythm strip, {self.duration_s:.1f} s, {len(self.classes)} {what}"
        if self.heart_rate_bpm is not None:
            out += f", heart rate {self.heart_rate_bpm:.0f} bpm"
        if self.rr_irregularity is not None:
            out += f", RR variation {100 * self.rr_irregularity:.0f}%"
        return out

    @property
    def amplitude_known(self) -> bool:
        """Whether ``sig`` is in mV: read from a grid's 10 mm/mV; without one,
        its scale is the paper's aspect assumed, so only its shape is known."""
        return self.grid is not None

    @property
    def sig_time_s(self) -> np.ndarray:
        """Time of each sample of ``sig`` from the trace's left edge, s."""
        return np.arange(self.sig.size) / self.fs

    def beats_frame(self) -> pd.DataFrame:
        """One row per beat (or window): time, class, confidence, six probabilities."""
        import pandas as pd

        df = pd.DataFrame(self.probabilities.round(4), columns=list(CLASSES))
        df.insert(0, "confidence", np.round(self.confidence, 4))
        df.insert(0, "predicted_class", self.classes)
        df.insert(0, "time_s", np.round(self.beat_time_s, 3))
        df.insert(0, "beat", np.arange(1, len(df) + 1))
        return df

    @property
    def counts(self) -> dict[str, int]:
        return {c: int(sum(1 for k in self.classes if k == c)) for c in CLASSES}

    def to_json(self) -> dict:
        return {
            "duration_s": round(self.duration_s, 3),
            **rate_json(self.heart_rate_bpm, self.rr_irregularity),
            "mode": self.mode,
            "amplitude": "mV" if self.amplitude_known else "relative",
            "beats": [
                {
                    "time_s": round(float(t), 3),
                    "predicted_class": c,
                    "confidence": round(float(p), 4),
                }
                for t, c, p in zip(self.beat_time_s, self.classes, self.confidence)
            ],
            "counts": self.counts,
            "grid": None
            if self.grid is None
            else {
                "box_px": round(self.grid.box_px, 2),
                "angle_deg": round(self.grid.angle_deg, 2),
            },
            "notes": self.notes,
        }


def rate_json(hr: float | None, irr: float | None) -> dict:
    """Heart rate (bpm) and RR irregularity as a strip's or a page's JSON
    gives them (None where there were under two beats)."""
    return {
        "heart_rate_bpm": None if hr is None else round(hr, 1),
        "rr_irregularity": None if irr is None else round(irr, 3),
    }


def grid_mask(rgb: np.ndarray) -> np.ndarray:
    """Pixels of a pink, red or orange grid, shape ``(h, w)`` bool."""
    x = rgb.astype(np.int16)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    # A loose colour margin: JPEG's halved colour resolution fades thin lines.
    return (r > 140) & (r - np.minimum(g, b) > 20)


def _period(profile: np.ndarray, max_lag: int) -> float | None:
    """Smallest clear period of a 1-D profile (autocorrelation peak), or None.

    The first peak gives the period to a pixel; the peak near its largest
    multiple within ``max_lag`` then gives it to a fraction of a pixel (an error
    of 0.5% would shift the last beat of a 10 s strip by 50 ms).
    """
    p = profile - profile.mean()
    if not np.any(p):
        return None
    ac = np.correlate(p, p, mode="full")[p.size - 1 :]
    ac = ac / ac[0]

    def peak_near(lag: int, reach: int) -> float | None:
        lo, hi = max(1, lag - reach), min(ac.size - 2, lag + reach)
        if hi <= lo:
            return None
        k = lo + int(np.argmax(ac[lo : hi + 1]))
        a, b_, c = ac[k - 1], ac[k], ac[k + 1]
        den = a - 2 * b_ + c
        return k + (0.5 * (a - c) / den if den else 0.0)

    for lag in range(3, min(max_lag, ac.size - 1)):
        if ac[lag] > 0.2 and ac[lag] >= ac[lag - 1] and ac[lag] >= ac[lag + 1]:
            period = peak_near(lag, 1)
            # Refine in steps (5 boxes, then the farthest multiple of 5 in
            # reach), so each step's multiple is unambiguous.
            for m in (5, 5 * int(max_lag // (5 * period))):
                if m < 2 or m * period > max_lag:
                    continue
                far = peak_near(int(round(m * period)), max(1, int(period // 3)))
                if far:
                    period = far / m
            return period
    return None


#: On ECG paper every fifth line (5 mm) carries at least this many times the
#: ink of the 1 mm lines between (measured: 1.6-2.2 on the project's paper
#: styles and real scans; 0.9-1.1 on a plot's equal grid lines).
MAJOR_MINOR_MIN = 1.3
#: Least share of its length a paper grid line keeps the grid's colour.
LINE_MIN = 0.8
#: Least number of small boxes a grid must repeat over to be paper (two large).
GRID_MIN_BOXES = 10


def grid_redness(rgb: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """How strongly each pixel has a grid's pink/red/orange, ``(h, w)`` float:
    its red over its weaker other channel, where :func:`grid_mask` (or the
    ``mask`` given, the same) holds."""
    x = rgb.astype(np.int16)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    mask = grid_mask(rgb) if mask is None else mask
    return np.where(mask, (r - np.minimum(g, b)).astype(np.float32), 0.0)


def _major_minor(profile: np.ndarray, period: float) -> float:
    """How much heavier every fifth grid line of a profile is than the rest:
    the median ink of the lines heavier than :data:`MAJOR_MINOR_MIN` times the
    median over that median, where those heavy lines lie five lines apart (0
    where there are none, they do not, or there are too few lines).

    Lines are found one by one (peaks at least 0.6 periods apart) rather than
    at multiples of the period, which drifts over hundreds of lines.
    """
    from scipy.signal import find_peaks

    if profile.size < GRID_MIN_BOXES * period or not np.any(profile):
        return 0.0
    peaks, _ = find_peaks(profile, distance=max(1, int(0.6 * period)))
    if peaks.size < GRID_MIN_BOXES:
        return 0.0
    half = max(0, int(round(period / 4)))
    c = np.concatenate([[0.0], np.cumsum(profile)])
    ink = c[np.minimum(peaks + half + 1, profile.size)] - c[np.maximum(peaks - half, 0)]
    med = float(np.median(ink))
    if med <= 0:
        return 0.0
    is_heavy = ink >= MAJOR_MINOR_MIN * med
    heavy = peaks[is_heavy]
    gaps = np.diff(heavy) / period if heavy.size > 1 else np.zeros(0)
    if gaps.size == 0 or abs(float(np.median(gaps)) - 5) > 1:
        return 0.0
    return float(np.median(ink[is_heavy])) / med


def mask_tilt(mask: np.ndarray, axis: int, max_deg: float = 5.0) -> float:
    """The rotation (degrees, PIL's sense: counter-clockwise) that lines a
    mask's lines up best: the angle, in quarter degrees up to ``max_deg``,
    whose profile along ``axis`` (0: columns, a grid's vertical lines; 1:
    rows, a page's baselines) is the most peaked. Measured on a copy of at
    most 800 px a side."""
    small = Image.fromarray(mask.astype(np.uint8) * 255)
    scale = min(1.0, 800 / max(mask.shape))
    small = small.resize(
        (max(1, int(mask.shape[1] * scale)), max(1, int(mask.shape[0] * scale)))
    )
    best, best_angle = -1.0, 0.0
    for angle in np.arange(-max_deg, max_deg + 0.01, 0.25):
        rot = np.asarray(small.rotate(angle, resample=Image.BILINEAR), np.float32)
        score = float(rot.mean(axis=axis).var())
        if score > best:
            best, best_angle = score, float(angle)
    return best_angle


def grid_detect(rgb: np.ndarray) -> Grid | None:
    """Find an ECG-paper grid: its small-box size and tilt; None without one.

    Paper is recognised by its grid, not by a colour: regular lines over most
    of the picture (the same period in its left and right halves) in two
    levels, every fifth line heavier (:data:`MAJOR_MINOR_MIN`). A red trace on
    white, a warm-lit photo or a plot's equal grid lines are not paper; see
    :func:`grid_read` for why one was refused.
    """
    grid, _ = grid_read(rgb)
    return grid


def grid_read(rgb: np.ndarray) -> tuple[Grid | None, str]:
    """:func:`grid_detect`, with why a grid-coloured picture is not taken for
    ECG paper ("" when it is, or when nothing grid-coloured is there)."""
    mask = grid_mask(rgb)
    if mask.mean() < 0.01:
        return None, ""
    colour = tuple(int(v) for v in np.median(rgb[mask], axis=0))
    red = grid_redness(rgb, mask)
    # Tilt: the angle that makes the grid's vertical lines line up best.
    best_angle = mask_tilt(mask, axis=0)
    if best_angle:
        mask = (
            np.asarray(
                Image.fromarray(mask.astype(np.uint8) * 255).rotate(
                    best_angle, resample=Image.BILINEAR
                )
            )
            > 127
        )
        red = np.asarray(
            Image.fromarray(red.astype(np.float32)).rotate(
                best_angle, resample=Image.BILINEAR
            )
        )
    px = _period(mask.mean(axis=0).astype(np.float64), mask.shape[1] // 4)
    py = _period(mask.mean(axis=1).astype(np.float64), mask.shape[0] // 4)
    sizes = sorted(v for v in (px, py) if v)
    if not sizes:
        return None, "grid-coloured ink without regular lines (not ECG paper)"
    box = sizes[0]
    if len(sizes) == 2 and abs(sizes[1] / sizes[0] - 5) < 0.3:
        # One axis showed only the 5 mm lines: the 1 mm box is the smaller.
        box = sizes[0]
    elif len(sizes) == 2 and abs(sizes[1] / sizes[0] - 1) > 0.1:
        box = px or py  # disagreeing axes: time (x) is the more reliable
    box = float(box)
    # Lines, not strokes: paper has lines across its whole extent both ways
    # (grid-coloured over 93-99% of their length, on the project's paper and
    # the printouts); a coloured trace has no row that runs across it.
    rows = np.flatnonzero(mask.mean(axis=1) > 0.02)
    cols = np.flatnonzero(mask.mean(axis=0) > 0.02)
    inner = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] if rows.size else mask
    if min(np.percentile(inner.mean(axis=a), 99) for a in (0, 1)) < LINE_MIN:
        return None, "grid-coloured ink but no lines across it both ways (not paper)"
    # Regular over most of the picture: each half of the width repeats it.
    w = mask.shape[1]
    for half in (mask[:, : w // 2], mask[:, w // 2 :]):
        ph = _period(half.mean(axis=0).astype(np.float64), half.shape[1] // 4)
        if ph is None or abs(ph / box - 1) > 0.1:
            if not (ph and abs(ph / (5 * box) - 1) < 0.1):
                return None, "grid lines not regular across the picture"
    # Two levels of lines: every fifth heavier, on an axis whose lines repeat
    # at the box (a plot's few horizontal lines say nothing of its vertical).
    ratio = max(
        [
            _major_minor(red.sum(axis=a).astype(np.float64), box)
            for a, per in ((0, px), (1, py))
            if per and abs(per / box - 1) < 0.1
        ],
        default=0.0,
    )
    if ratio < MAJOR_MINOR_MIN and box / 5 >= 2:
        # Only the 5 mm lines took the grid's colour (faint grey 1 mm lines,
        # as on many printouts): the 1 mm lines show in the darkness between.
        dark = 255.0 - rgb[..., :3].astype(np.float32).mean(axis=2)
        if best_angle:
            dark = np.asarray(
                Image.fromarray(dark).rotate(best_angle, resample=Image.BILINEAR)
            )
        sub = _major_minor(dark.sum(axis=0).astype(np.float64), box / 5)
        if sub >= MAJOR_MINOR_MIN and _period(
            dark.sum(axis=0).astype(np.float64), int(box)
        ):
            box, ratio = box / 5, sub
    if ratio < MAJOR_MINOR_MIN:
        return None, (
            "grid of equal lines (no heavier line every fifth box), as in a "
            "plot: not read as ECG paper"
        )
    return Grid(box_px=box, angle_deg=best_angle, color=colour), ""


def traces_count(rgb: np.ndarray) -> int:
    """How many separate horizontal traces (leads) a picture holds."""
    ink, _ = ink_map(rgb)
    peak = float(np.percentile(ink, 99.9))
    if peak < 0.15:
        return 0
    mask = ink > 0.5 * peak
    curved = mask & ~straight_lines(mask)  # without axes, frames, flat stretches
    rows = ndimage.binary_dilation(mask.mean(axis=1) > 0.002, iterations=3)
    lab, n = ndimage.label(rows)
    # A lead is a band of rows where ink runs across most of the width, and
    # much of it is not one straight line: a plot's axis runs across as well,
    # but straight (measured: 4% of the columns keep ink without it, against
    # 36% or more for a trace).
    wide = 0
    for i in range(1, n + 1):
        band = lab == i
        if (
            mask[band].any(axis=0).mean() > 0.5
            and curved[band].any(axis=0).mean() > 0.2
        ):
            wide += 1
    return wide


def envelope_signal(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Two samples a column from a per-column envelope, following the stroke.

    In a column the pen went from where the previous column ended to the far end
    of this one's span: up then down near a peak, down then up near a trough.
    Returns shape ``(2 * n_cols,)``, same units as ``lo``/``hi``.
    """
    mid = (lo + hi) / 2
    prev = np.concatenate([mid[:1], mid[:-1]])
    rising = mid >= prev
    first = np.where(rising, lo, hi)
    second = np.where(rising, hi, lo)
    return np.stack([first, second], axis=1).ravel()


def strip_analyze(
    picture: np.ndarray, predictor, duration_s: float | None = None, name: str = "strip"
) -> StripResult:
    """Read one single-lead strip picture and classify every beat.

    Parameters
    ----------
    picture : np.ndarray
        RGB uint8, shape ``(h, w, 3)``.
    predictor : Predictor
        Model and drawing contract used for the beats.
    duration_s : float, optional
        The trace's duration, s. Needed only without a grid; default
        :data:`DEFAULT_DURATION_S`.

    Raises
    ------
    EcgError
        No trace, several leads, too short for two beats, or no beats found.
    """
    notes: list[str] = []
    # 0. a large picture is read from a reduced copy (bounded time and memory);
    #    grid, trace and scale are all measured on that copy.
    picture = picture_reduce(picture)
    # 1. grid: scale and tilt (the tilt is undone on the trace's coordinates
    #    below, not by rotating the picture, which would blur a thin line).
    grid = grid_detect(picture)
    n_traces = traces_count(picture)
    if n_traces == 0:
        raise EcgError(f"{name}: no ECG trace found (blank picture or no dark line)")
    if n_traces >= 3:
        raise EcgError(
            f"{name}: found {n_traces} traces, as on a multi-lead page; "
            "crop a single lead (one rhythm strip) and try again"
        )
    # 2. trace -> signal in seconds and millivolts.
    lo, hi, q = image_trace(picture)
    if q.ink_fraction > MAX_INK:
        # A drawn trace covers a few percent of its box; a photo or a filled
        # shape covers much more, and its "trace" would be invented.
        raise EcgError(
            f"{name}: no ECG trace found: {100 * q.ink_fraction:.0f}% of the "
            "picture is dark, as in a photo or a filled image; a strip is "
            "a thin line on a plain or gridded background"
        )
    if not q.looks_like_ecg:
        raise EcgError(f"{name}: {q.reason or 'no ECG trace found'}")
    v = envelope_signal(lo, hi)  # (2 * n_cols,) pixels, up = larger
    x = np.repeat(np.arange(lo.size), 2) + np.tile([0.25, 0.75], lo.size)
    if grid and grid.angle_deg:
        # Rotate the trace's points by the grid's tilt (y up: counter-clockwise).
        a = np.deg2rad(grid.angle_deg)
        x, v = x * np.cos(a) - v * np.sin(a), x * np.sin(a) + v * np.cos(a)
        order = np.argsort(x, kind="stable")
        x, v = x[order], v[order]
        notes.append(f"straightened by {grid.angle_deg:+.2f} degrees")
    if grid:
        px_per_s = grid.box_px / BOX_S
        px_per_mv = grid.box_px / BOX_MV
        notes.append(f"grid: 1 mm = {grid.box_px:.1f} px (25 mm/s, 10 mm/mV)")
    else:
        dur = float(duration_s or DEFAULT_DURATION_S)
        px_per_s = (x[-1] - x[0] + 0.5) / dur
        px_per_mv = px_per_s * BOX_S / BOX_MV  # the paper aspect: 0.4 s a mV
        notes.append(
            f"no grid: duration {dur:g} s "
            f"{'given' if duration_s else 'assumed (default)'}"
        )
    duration = (x[-1] - x[0] + 0.5) / px_per_s
    t = (x - x[0]) / px_per_s  # s from the trace's left edge
    v = (v - np.median(v)) / px_per_mv  # mV
    fs = predictor.spec.fs
    if duration < 2.0:
        raise EcgError(
            f"{name}: strip too short ({duration:.1f} s); at least 2 s "
            "(two beats) are needed"
        )
    tt = np.arange(0, t[-1], 1 / fs)
    sig = np.interp(tt, t, v)  # the digitised trace, mV at fs
    # 3-4. beats (or sliding windows where there are none) and their classes.
    try:
        table = predictor.predict_signal(sig, fs)
        beat_t, probs = table.time_s, table.probabilities
        clean = table.sig
    except EcgError:
        beat_t, probs, clean = np.zeros(0), np.zeros((0, len(CLASSES))), sig
    win_t, win_p = _windows_classify(predictor, clean, fs)
    vf = CLASSES.index("Ventricular Fibrillation")
    vf_share = float((win_p.argmax(1) == vf).mean()) if len(win_p) else 0.0
    if len(beat_t) < 2 and len(win_p) and vf_share < VF_SHARE:
        raise EcgError(
            f"{name}: found {len(beat_t)} beat(s) in {duration:.1f} s; at "
            "least two are needed (is this a single-lead ECG strip?)"
        )
    beat_vf_share = float((probs.argmax(1) == vf).mean()) if len(probs) else 1.0
    if strip_mode(len(beat_t), vf_share, beat_vf_share, np.diff(beat_t)) == "windows":
        mode, times, p = "windows", win_t, win_p
        notes.append(
            f"no organised beats: {100 * vf_share:.0f}% of 1 s windows read "
            "as flutter/fibrillation"
        )
    else:
        mode, times, p = "beats", beat_t, probs
        t_pac = predictor.pac_ratio_threshold
        if t_pac is not None:
            use = "learnt" if getattr(predictor, "rhythm_stage", None) else "rule"
            notes.append(
                "rhythm step: " + rhythm_describe(t_pac, predictor.irregular_max, use)
            )
    classes = [CLASSES[k] for k in p.argmax(axis=1)]
    hr, irr = None, None
    if mode == "beats" and len(times) >= 2:
        rr = np.diff(times)
        hr = 60.0 / float(np.median(rr))
        irr = float(rr.std() / rr.mean()) if len(rr) >= 2 else 0.0
    # 5. annotated picture.
    ann = strip_annotate(picture, times, classes, px_per_s, q.col0)
    return StripResult(
        duration,
        fs,
        sig,
        times,
        classes,
        p.max(axis=1) if len(p) else np.zeros(0),
        p,
        mode,
        hr,
        irr,
        px_per_s,
        px_per_mv,
        grid,
        ann,
        notes,
    )


def strip_mode(
    n_beats: int,
    window_vf_share: float,
    beat_vf_share: float,
    rr_s: np.ndarray | None = None,
) -> str:
    """``"beats"`` or ``"windows"``: how a strip is classified.

    Parameters
    ----------
    n_beats : int
        QRS complexes found.
    window_vf_share, beat_vf_share : float
        Share of 1 s windows, and of the found beats, classified as VF.
    rr_s : np.ndarray, optional
        Intervals between the found beats, s.

    Organised beats win unless fewer than two were found, or both the windows
    and the beats themselves mostly read as VF and the rhythm is not a regular
    one below 200 bpm. Windows alone are not enough: a wide QRS (bundle branch
    block) can look like flutter in 1 s windows while each detected beat reads
    as a beat; and fibrillation has no steady beat-to-beat interval, while
    flutter's is shorter than 0.3 s.
    """
    if n_beats < 2:
        return "windows"
    if window_vf_share < VF_SHARE or beat_vf_share < VF_SHARE:
        return "beats"
    if rr_s is not None and len(rr_s) >= 3:
        med = float(np.median(rr_s))
        if med >= ORGANISED_MIN_RR_S and float(np.std(rr_s)) / med < ORGANISED_MAX_CV:
            return "beats"
    return "windows"


def _windows_classify(
    predictor, sig: np.ndarray, fs: float
) -> tuple[np.ndarray, np.ndarray]:
    """Classify windows centred every 1 s: (centre times s, probabilities)."""
    spec = predictor.spec
    centres = np.arange(spec.before, sig.size - spec.after, int(round(fs)))
    if centres.size == 0:
        return np.zeros(0), np.zeros((0, len(CLASSES)))
    imgs = windows_render(sig, centres, spec)
    return centres / fs, predictor.predict_arrays(imgs)


def strip_annotate(
    picture: np.ndarray,
    times: np.ndarray,
    classes: list[str],
    px_per_s: float,
    col0: int,
) -> np.ndarray:
    """Copy of the picture with a coloured marker and label at each beat."""
    im = Image.fromarray(picture).convert("RGB")
    d = ImageDraw.Draw(im)
    h = im.height
    for t, c in zip(times, classes):
        x = col0 + t * px_per_s
        color = CLASS_COLORS[c]
        d.line([(x, 0), (x, h * 0.12)], fill=color, width=3)
        d.polygon([(x - 5, h * 0.12), (x + 5, h * 0.12), (x, h * 0.12 + 8)], fill=color)
        d.text((x + 4, 2), SHORT_NAMES[c], fill=color)
    return np.asarray(im)


#: Least number of separate traces that make a picture a multi-lead page.
PAGE_TRACES = 3


def picture_kind(picture: np.ndarray) -> str:
    """Guess whether a picture is one beat (``"beat"``), a rhythm strip
    (``"strip"``) or a 12-lead page (``"page"``: three traces or more, one
    above another, over more than 3 s of paper or a page-wide picture).

    On ECG paper a strip spans more than 3 s (75 small boxes). Without a grid,
    a strip is wide (at least 3.5 times as wide as tall) and, where it shows
    beats, shows six or more: the model's own 2.4 s window is 4:1 too, but holds
    two to five beats at most rates. A wide picture with no beats to count
    (fibrillation waves) is a strip.
    """
    if picture.ndim == 2:
        picture = np.repeat(picture[..., None], 3, axis=2)  # (h, w, 3)
    picture = picture_reduce(picture)
    h, w = picture.shape[:2]
    grid = grid_detect(picture)
    if (grid is not None and w / grid.box_px * BOX_S > 3.0) or w >= 2.5 * h:
        # Wide: a strip, or a page of leads one above another.
        if w >= h and traces_count(picture) >= PAGE_TRACES:
            return "page"
    if grid is not None:
        return "strip" if w / grid.box_px * BOX_S > 3.0 else "beat"
    if w >= h and h >= 200 and traces_count(picture) >= PAGE_TRACES:
        return "page"  # a page without a grid: a black-and-white copy
    if w < 3.5 * h or (h, w) in OWN_SIZES:
        return "beat"
    lo, hi, q = image_trace(picture)
    if not q.found:
        return "beat"  # nothing to read either way: the beat path says why
    runs = qrs_runs(lo, hi)
    return "strip" if len(runs) >= 6 or not runs else "beat"
