"""Read a 12-lead printout: page -> twelve leads in mV -> the rhythm strip's
beats -> one block decision from every lead.

The pipeline of :func:`page_analyze` reads as a sequence (the grid, trace and
calibration code is the strip reader's, :mod:`ecg_model.inference.strip`):

1. grid: the paper's 1 mm box and tilt (:func:`~.strip.grid_read`); the page
   is straightened by the tilt. Without a grid (a black-and-white copy), the
   tilt is read from the traces' baselines and the scale from the page width
   (US letter landscape);
2. rows: the traces' baselines, where ink runs across the page;
3. layout: how many rows, and whether a bar marks where one lead gives way to
   the next, name a standard layout (:data:`~ecg_model.data.pages.LAYOUTS`);
   each panel gets its lead's name from its place in it;
4. digitise: each row's trace followed column by column (where traces of
   neighbouring rows cross, the piece nearest the row's own path is kept),
   into mV at :data:`PAGE_FS` on the page's 10 s, NaN outside a lead's panel;
5. beats: the rhythm strip (lead II) classified as a signal is, with every
   other lead measured for the block stage;
6. report: heart rate, regularity, the block decision, the annotated page.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage
from scipy.signal import find_peaks
from skimage.filters import threshold_multiotsu

from ..core.classes import CLASS_COLORS, SHORT_NAMES
from ..core.errors import EcgError
from ..data.pages import LAYOUTS, LEADS12, PAGE_S, PAGE_W_MM, layout_rows
from ..data.render import ink_map, picture_reduce, straight_lines
from .block import block_decide, block_shapes
from .strip import (
    BOX_MV,
    BOX_S,
    Grid,
    envelope_signal,
    grid_read,
    mask_tilt,
    rate_json,
)

#: Rate the page's leads are digitised at, Hz.
PAGE_FS = 500.0
#: Least share of the page's trace width a row's ink must cover within two
#: boxes of its baseline (text lines and the header cover far less).
ROW_COVER = 0.5
#: Least cover of a row against the best-covered row of the page.
ROW_SHARE = 0.75
#: Nearest two rows' baselines may be, in 1 mm boxes.
ROW_MIN_BOXES = 8
#: Least height of the bar that marks where a lead gives way to the next, mm.
SEPARATOR_MM = 4.0


@dataclass
class PageLead:
    """One lead's panel: where it is on the straightened page, and when."""

    name: str
    box: tuple[int, int, int, int]  # x0, y0, x1, y1, px
    t0_s: float  # time on the page's 10 s where the panel starts
    t1_s: float
    rhythm: bool = False  # a full-length rhythm strip

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "box": list(self.box),
            "t0_s": round(self.t0_s, 3),
            "t1_s": round(self.t1_s, 3),
            "rhythm_strip": self.rhythm,
        }


@dataclass
class PageScan:
    """A page digitised: its layout, panels and leads."""

    layout: str
    leads: list[PageLead]
    signals: dict[str, np.ndarray]  # by lead: mV at fs over 10 s, NaN outside
    fs: float
    grid: Grid | None
    angle_deg: float
    px_per_s: float
    px_per_mv: float
    page: np.ndarray  # the straightened page, RGB uint8
    notes: list[str] = field(default_factory=list)
    strips: dict[str, np.ndarray] = field(default_factory=dict)  # rhythm strips

    @property
    def rhythm(self) -> tuple[str, np.ndarray]:
        """The lead the beats are read on and its signal: the first rhythm
        strip, else lead II's panel (6x2, 12x1)."""
        for ld in self.leads:
            if ld.rhythm:
                return ld.name, self.strips[ld.name]
        return "II", self.signals["II"]


def grid_box_near(ink: np.ndarray, box_px: float) -> float | None:
    """The 1 mm box of a grid too faint or tinted for the strip reader's
    paper test, sought near ``box_px``: the period of the faint ink's column
    profile (the grid's vertical lines) within 12% of ``box_px`` or of five
    times it; None where neither repeats."""
    faint = np.where(ink < 0.5, ink, 0.0)  # grid and paper, not the trace
    prof = faint.mean(axis=0).astype(np.float64)  # (w,)
    prof -= prof.mean()
    if not np.any(prof):
        return None
    ac = np.correlate(prof, prof, mode="full")[prof.size - 1 :]
    ac /= ac[0]
    best = None
    for m in (5, 1):  # the 5 mm lines first: heavier, and five boxes per lag
        lo, hi = int(0.88 * m * box_px), int(np.ceil(1.12 * m * box_px))
        if hi + 1 >= ac.size or lo < 2:
            continue
        k = lo + int(np.argmax(ac[lo : hi + 1]))
        if ac[k] > 0.2 and ac[k] >= ac[k - 1] and ac[k] >= ac[k + 1]:
            best = _peak_at(ac, k) / m
            break
    return best


def _peak_at(ac: np.ndarray, k: int) -> float:
    """The peak of ``ac`` near index ``k`` to a fraction (a parabola through
    ``k`` and its neighbours)."""
    a, b, c = ac[k - 1], ac[k], ac[k + 1]
    den = a - 2 * b + c
    return k + (0.5 * (a - c) / den if den else 0.0)


def page_darkness(rgb: np.ndarray, box_px: float) -> np.ndarray:
    """How much each pixel looks like a printout's trace, 0..1, ``(h, w)``.

    A printout's trace is black or grey: dark in every channel, where a grid
    of any colour (red, pink, brown, green, blue) is bright in one; a coloured
    trace is not, and falls back to the strip reader's ink. Darkness is taken
    against the paper around it, not the page's median: a wrinkle's or a
    crease's shadow darkens the paper, not the line on it.
    """
    # White balance first (each channel scaled by its paper level, the
    # 90th percentile): under a cool or warm cast the paper is blue or
    # orange, and a red grid would be dark in its brightest channel.
    rgb = rgb.astype(np.float32)
    paper_rgb = np.percentile(rgb[::4, ::4].reshape(-1, rgb.shape[2]), 90, axis=0)
    rgb = np.clip(rgb * (255.0 / np.maximum(paper_rgb, 1.0)), 0, 255)
    bright = rgb.max(axis=2)  # (h, w)
    # The paper's brightness: a closing wider than a pen and a 1 mm box, on a
    # half-size copy (the paper varies slowly).
    k = max(3, int(1.5 * box_px))
    paper = ndimage.grey_closing(bright[::2, ::2], size=(k // 2 + 1, k // 2 + 1))
    paper = np.repeat(np.repeat(paper, 2, axis=0), 2, axis=1)[
        : bright.shape[0], : bright.shape[1]
    ]
    ink = np.clip(1.0 - bright / np.maximum(paper, 1.0), 0.0, 1.0)
    ink[paper < 64] = 0.0  # no paper there: a rotated scan's black corners
    if float(np.percentile(ink, 99.9)) < 0.3:
        ink, _ = ink_map(rgb)
    return ink


def ink_levels(ink: np.ndarray) -> list[float]:
    """Thresholds to try on :func:`page_darkness`, best first: the upper of a
    three-level Otsu (paper; grid and shadow; trace), then half the ink's
    peak, for pages whose darkest kind is printed text, blacker than a grey
    pen's anti-aliased line."""
    sample = ink[::3, ::3].ravel()
    sample = sample[sample > 0.05]
    if sample.size < 100:
        return []
    half = 0.5 * float(np.percentile(sample, 99.9))
    try:
        otsu = float(threshold_multiotsu(sample, classes=3)[1])
    except ValueError:  # too few distinct darknesses for three kinds (an icon)
        return [max(half, 0.15)]
    return [max(otsu, 0.15)] + ([max(half, 0.15)] if half < otsu else [])


def page_ink(ink: np.ndarray, box_px: float, level: float) -> np.ndarray:
    """The page's trace, ``(h, w)`` bool: darkness above ``level``, not on
    long straight lines (frames, a grid's heavy lines), not in filled patches
    (a crease's or a wrinkle's shadow) and not on a dark grid's columns."""
    mask = ink > level
    # A patch 2 mm tall and 1 mm wide of solid ink: no pen draws one (a
    # noisy trace's dense zigzag is a band under a millimetre high).
    kh, kw = max(4, int(round(2 * box_px))), max(2, int(round(box_px)))
    filled = ndimage.binary_opening(mask, structure=np.ones((kh, kw)))
    filled = ndimage.binary_dilation(filled, iterations=2)
    mask &= ~straight_lines(mask) & ~filled
    # A dark grid's vertical lines (dashed in black-and-white copies, so not
    # one straight run) cover most of a column; traces cover under 40% of one.
    mask[:, mask.mean(axis=0) > 0.6] = False
    return mask


def page_rows(mask: np.ndarray, box_px: float) -> list[int]:
    """Baselines of the page's rows of traces, px from the top.

    A baseline is a row where ink runs across most of the page within a box
    of it (:data:`ROW_COVER`); text lines, the header and a tall QRS from a
    neighbouring row cover far less.
    """
    h, w = mask.shape
    cols = np.flatnonzero(mask.any(axis=0))
    if cols.size == 0:
        return []
    width = cols[-1] - cols[0] + 1
    band = max(1, int(round(2 * box_px)))
    # cover[y]: share of the columns holding ink within two boxes of row y
    # (measured on the development pages: 0.70-0.94 on rows of traces, at
    # most 0.51 elsewhere, a crease's shadow).
    near = ndimage.maximum_filter1d(mask.astype(np.uint8), 2 * band + 1, axis=0)
    cover = near.sum(axis=1) / width  # (h,)
    peaks, _ = find_peaks(cover, distance=max(1, int(ROW_MIN_BOXES * box_px)))
    if peaks.size == 0:
        return []
    # Rows of traces cover alike; a grid line darkened by a shadow, or a
    # crease, covers less than the rows do (0.63 against 0.82-0.96 on a
    # wrinkled development page).
    least = max(ROW_COVER, ROW_SHARE * float(cover[peaks].max()))
    ys = [int(p) for p in peaks if cover[p] >= least]
    # A standard layout's rows are evenly spaced: an end row whose gap to its
    # neighbour is off the others' by over 30% is not one (a dark page edge
    # or a crease's shadow along it, as on wrinkled pages).
    while len(ys) > 3:
        gaps = np.diff(ys)
        med = float(np.median(gaps[1:-1])) if len(gaps) > 2 else float(gaps.mean())
        if abs(gaps[0] / med - 1) > 0.3:
            ys = ys[1:]
        elif abs(gaps[-1] / med - 1) > 0.3:
            ys = ys[:-1]
        else:
            break
    return ys


def row_follow(
    mask: np.ndarray, y: int, x0: int, x1: int, reach: int, jump: float
) -> tuple[np.ndarray, np.ndarray]:
    """Follow one row's trace from column ``x0`` to ``x1``.

    In each column the ink within ``reach`` px of the baseline ``y`` falls in
    runs; the run nearest the trace's own path in the previous column is the
    row's (a neighbour's tall QRS reaching into the band is another run). A
    pen's path is continuous, so a run over ``jump`` px from it is not the
    row's: the column is left empty (a faint stretch of the line). After
    ``4 * jump`` empty columns the path is sought again near the baseline.

    Returns
    -------
    top, bot : np.ndarray
        The kept run's first and last pixel row in each column, shape
        ``(x1 - x0,)``; NaN where the column holds no ink.
    """
    h = mask.shape[0]
    a, b = max(0, y - reach), min(h, y + reach + 1)
    # A fast stroke of a thin pen fades (JPEG, low resolution): gaps of a
    # few pixels within a column are closed, so it stays one run.
    close = max(1, int(round(jump / 3)))
    sub = ndimage.binary_closing(
        mask[a:b, x0:x1], structure=np.ones((2 * close + 1, 1))
    )  # (band, n)
    n = sub.shape[1]
    pad = np.zeros((1, n), bool)
    d = np.diff(np.vstack([pad, sub, pad]).astype(np.int8), axis=0)  # (band+1, n)
    sc, sr = np.nonzero(d.T == 1)  # run starts by column, then row
    ec, er = np.nonzero(d.T == -1)  # run ends (exclusive)
    bounds = np.searchsorted(sc, np.arange(n + 1))
    top = np.full(n, np.nan)
    bot = np.full(n, np.nan)
    base = float(y - a)
    pt, pb = base, base  # the path so far: the baseline
    missed = 0
    for j in range(n):
        i0, i1 = bounds[j], bounds[j + 1]
        if i0 == i1:
            missed += 1
            continue
        s, e = sr[i0:i1], er[i0:i1] - 1  # (runs,) first and last row
        if missed > 4 * jump:  # lost: seek the path again from the baseline
            pt, pb = base, base
        gap = np.maximum(0.0, np.maximum(s - pb, pt - e))  # px from the path
        k = int(np.argmin(gap + 1e-3 * np.abs((s + e) / 2 - base)))
        if gap[k] > jump * (1 if missed <= 4 * jump else 3):
            missed += 1
            continue
        top[j], bot[j] = s[k], e[k]
        pt, pb = float(s[k]), float(e[k])
        missed = 0
    return top + a, bot + a


def _separators(
    mask: np.ndarray, ys: list[int], x0: float, px_per_s: float, n_cols: int
) -> float:
    """Share of the rows ``ys`` showing a bar at every boundary between
    ``n_cols`` equal columns of the page's 10 s."""
    need = SEPARATOR_MM * px_per_s * BOX_S  # px: SEPARATOR_MM of paper
    hits = []
    for y in ys:
        for c in range(1, n_cols):
            x = int(round(x0 + c * PAGE_S / n_cols * px_per_s))
            a, b = max(0, y - int(2 * need)), min(mask.shape[0], y + int(2 * need))
            cols = mask[a:b, max(0, x - 2) : x + 3]  # (band, 5)
            # The longest vertical run of ink near the boundary.
            best = 0
            for col in cols.T:
                runs = np.diff(np.flatnonzero(np.diff(np.r_[0, col, 0])))[::2]
                best = max(best, int(runs.max()) if runs.size else 0)
            hits.append(best >= need)
    return float(np.mean(hits)) if hits else 0.0


def page_layout(
    mask: np.ndarray, ys: list[int], x0: float, px_per_s: float
) -> tuple[str, str]:
    """The standard layout whose rows and lead boundaries the page shows, and
    a note on how it was chosen; an EcgError when none fits."""
    n = len(ys)
    if n == 12:
        return "12x1", "12 rows: 12x1"
    if n in (4, 5, 6):
        four = _separators(mask, ys[:3], x0, px_per_s, 4)
        if n == 6 and four < 0.5:
            return "6x2", "6 rows, no lead boundary every 2.5 s: 6x2"
        if n == 5:
            return "3x4+3", "5 rows read as 3x4 with its rhythm strips"
        return ("3x4+1" if n == 4 else "3x4+3"), (
            f"{n} rows, {100 * four:.0f}% of the lead boundaries every 2.5 s marked"
        )
    raise EcgError(
        f"found {n} rows of traces; a 12-lead page has 4-6 (3x4 with rhythm "
        "strips, 6x2) or 12 (12x1)"
    )


def _rows_layout(
    mask: np.ndarray, box: float, px_per_s: float
) -> tuple[list[int], float, float, str, str]:
    """The rows of a page's trace mask, where its 10 s start and end (px),
    and its layout; an EcgError when they make no 12-lead page."""
    ys = page_rows(mask, box)
    if len(ys) < 3:
        raise EcgError(
            f"not a 12-lead page: found {len(ys)} row(s) of traces "
            "(a single-lead strip is read as a strip)"
        )
    # The trace's end: the page's 10 s end together on every row (the start
    # holds the calibration pulses).
    ends = []
    for y in ys:
        # Within three boxes of the baseline: a row's found baseline may miss
        # its isoelectric line by a box or two, where the trace ends flat.
        band = mask[max(0, y - int(3 * box)) : y + int(3 * box) + 1]
        # The last column the trace reaches without a gap: ink in 80% of the
        # 2 mm before it (a crease's line beyond the trace's end is alone).
        has = band.any(axis=0).astype(np.float64)  # (w,)
        k = max(2, int(2 * box))
        full = np.convolve(has, np.ones(k) / k, mode="full")[: has.size] >= 0.8
        c = np.flatnonzero(full & (has > 0))
        ends.append(c[-1] if c.size else 0)
    x_end = float(np.median(ends))
    x0 = x_end - PAGE_S * px_per_s
    if x0 < -2 * box:
        raise EcgError(
            f"the rows are shorter than 10 s at this scale "
            f"({x_end / px_per_s:.1f} s): not a 12-lead page"
        )
    x0 = max(0.0, x0)
    layout, how = page_layout(mask, ys, x0, px_per_s)
    return ys, x0, x_end, layout, how


def page_digitise(picture: np.ndarray, name: str = "page") -> PageScan:
    """Digitise a 12-lead printout (see the module's steps 1-4).

    Parameters
    ----------
    picture : np.ndarray
        RGB uint8, ``(h, w, 3)``, any size.

    Raises
    ------
    EcgError
        Not a 12-lead page: no rows of traces in a standard layout.
    """
    notes: list[str] = []
    if picture.ndim == 2:
        picture = np.repeat(picture[..., None], 3, axis=2)  # (h, w, 3)
    rgb = picture_reduce(picture[..., :3])
    # 1. grid: scale and tilt; the page straightened by the tilt.
    grid, why = grid_read(rgb)
    if grid is not None:
        angle = grid.angle_deg
        box = grid.box_px
        notes.append(f"grid: 1 mm = {box:.1f} px (25 mm/s, 10 mm/mV)")
    else:
        # No grid: the page taken as US letter's width (an A4 page, 6% wider,
        # is within the faint grid's search below).
        box = rgb.shape[1] / PAGE_W_MM
        ink = page_darkness(rgb, box)
        levels = ink_levels(ink)
        # The tilt that lines the traces' baselines up with the rows.
        mask = page_ink(ink, box, levels[0]) if levels else None
        angle = mask_tilt(mask, axis=1, max_deg=6.0) if mask is not None else 0.0
    if angle:
        rgb = np.asarray(
            Image.fromarray(rgb).rotate(
                angle, resample=Image.BILINEAR, fillcolor=(255, 255, 255)
            )
        )
        notes.append(f"straightened by {angle:+.2f} degrees")
    ink = page_darkness(rgb, box)
    if grid is None:
        # A grid the paper test refused (tinted, faint, cropped page) still
        # gives the scale where its lines repeat near the page width's guess:
        # a crop of a few percent would shift the 10th second by as much.
        near = grid_box_near(ink, box)
        how = (
            f"its faint grid's lines (1 mm = {near:.2f} px)"
            if near
            else f"the page width (1 mm = {box:.1f} px)"
        )
        box = near or box
        notes.append(
            "no ECG-paper grid" + (f" ({why})" if why else "") + f": scale from {how}"
        )
    px_per_s, px_per_mv = box / BOX_S, box / BOX_MV
    # 2-3. rows, where ink runs across the page, and the layout they make; at
    #      the first ink level that gives one (ink_levels).
    found: tuple | None = None
    why_not = "no ECG trace found (blank picture or no dark line)"
    for level in ink_levels(ink):
        mask = page_ink(ink, box, level)
        try:
            found = (mask, *_rows_layout(mask, box, px_per_s))
            break
        except EcgError as e:
            why_not = str(e)
    if found is None:
        raise EcgError(f"{name}: {why_not}")
    mask, ys, x0, x_end, layout, how = found
    reach = int(np.median(np.diff(ys)))
    notes.append(f"layout {layout} ({how}); lead names from their places in it")
    rows = layout_rows(layout)
    n_panel_rows = len(LAYOUTS[layout][0])
    # 4. each row followed and cut into its panels.
    n = int(round(PAGE_S * PAGE_FS))
    t = np.arange(n) / PAGE_FS  # (n,) s on the page
    signals = {ld: np.full(n, np.nan) for ld in LEADS12}
    strips: dict[str, np.ndarray] = {}
    leads: list[PageLead] = []
    xa, xb = int(round(x0)), int(round(x_end)) + 1
    for r, (y, names) in enumerate(zip(ys, rows)):
        top, bot = row_follow(mask, y, xa, xb, int(1.2 * reach), 2 * box)
        # The calibration pulse ends in a fall to the baseline right where the
        # trace starts: a tall stroke in the first 60 ms is that fall, not a
        # QRS (it was read as a beat at 0 s).
        lead_in = int(0.06 * px_per_s)
        fall = np.flatnonzero((bot - top)[:lead_in] > 4 * box)
        if fall.size:
            top[: fall[-1] + 1] = bot[: fall[-1] + 1] = np.nan
        lo, hi = y - bot, y - top  # px above the baseline, (n_cols,)
        ok = np.isfinite(lo)
        if ok.sum() < 2:
            continue
        v = envelope_signal(lo[ok], hi[ok]) / px_per_mv  # (2 * n_ok,) mV
        x = np.repeat(np.flatnonzero(ok), 2) + np.tile([0.25, 0.75], int(ok.sum()))
        x = x + xa  # picture columns
        sig = np.interp(t, (x - x0) / px_per_s, v)  # (n,) mV on the page's 10 s
        col_s = PAGE_S / len(names)
        rhythm = r >= n_panel_rows
        for c, ld in enumerate(names):
            t0, t1 = c * col_s, (c + 1) * col_s
            sel = (t >= t0) & (t < t1)
            if rhythm:
                strips.setdefault(ld, sig)
            else:
                signals[ld][sel] = sig[sel]
            leads.append(
                PageLead(
                    ld,
                    (
                        int(x0 + t0 * px_per_s),
                        int(y - reach / 2),
                        int(x0 + t1 * px_per_s),
                        int(y + reach / 2),
                    ),
                    t0,
                    t1,
                    rhythm,
                )
            )
    # A lead with a rhythm strip is that strip: the same lead over the whole
    # 10 s, its panel's seconds included.
    for ld, sig in strips.items():
        signals[ld] = sig.copy()
    return PageScan(
        layout,
        leads,
        signals,
        PAGE_FS,
        grid,
        angle,
        px_per_s,
        px_per_mv,
        rgb,
        notes,
        strips,
    )


@dataclass
class PageResult:
    """A page read: its scan, the rhythm strip's beats, the block decision."""

    scan: PageScan
    lead: str  # the lead the beats were read on
    table: object  # predict.BeatTable of the rhythm strip
    classes: list[str]
    heart_rate_bpm: float | None
    rr_irregularity: float | None
    block: dict
    annotated: np.ndarray

    def to_json(self) -> dict:
        s, tb = self.scan, self.table
        beats = [
            {
                "time_s": round(float(tt), 3),
                "predicted_class": c,
                "confidence": round(float(p.max()), 4),
                "qrs_ms": None
                if tb.qrs_ms is None or not np.isfinite(tb.qrs_ms[i])
                else round(float(tb.qrs_ms[i]), 1),
                # What the measures say of the beat in words ("" where nothing).
                "note": tb.notes[i] if tb.notes is not None else "",
            }
            for i, (tt, c, p) in enumerate(
                zip(tb.time_s, self.classes, tb.probabilities)
            )
        ]
        return {
            "layout": s.layout,
            "fs": s.fs,
            "leads": [ld.to_json() for ld in s.leads],
            "rhythm_lead": self.lead,
            "beats": beats,
            **rate_json(self.heart_rate_bpm, self.rr_irregularity),
            "block": self.block,
            "grid": None
            if s.grid is None
            else {"box_px": round(s.grid.box_px, 2), "angle_deg": s.angle_deg},
            "notes": s.notes,
        }


#: A beat's stretch pasted where a panel does not reach, s before and after
#: its R peak.
TEMPLATE_S = (0.3, 0.45)


def leads_complete(
    signals: dict[str, np.ndarray], beat_s: np.ndarray, fs: float
) -> dict[str, np.ndarray]:
    """Each lead made whole for the block stage: at every beat its panel does
    not show, the lead's median beat from the beats it does show.

    A 3x4 page shows V1 for 2.5 s and V6 for another 2.5 s, so no beat has
    both, while the block stage reads each beat in every lead. Conducted beats
    of one recording share their conduction (a block is in every one), so a
    lead's median conducted beat stands for it at the others. A lead that shows
    no whole beat stays NaN.

    Parameters
    ----------
    signals : dict
        Each lead, mV at ``fs``, shape ``(n,)``, NaN outside its panel.
    beat_s : np.ndarray
        R peaks of the conducted beats, s, shape ``(k,)``.
    """
    a, b = int(TEMPLATE_S[0] * fs), int(TEMPLATE_S[1] * fs)
    out = {}
    for ld, sig in signals.items():
        sig = np.asarray(sig, np.float64)
        if np.isfinite(sig).all():
            out[ld] = sig
            continue
        r = np.round(np.asarray(beat_s) * fs).astype(int)
        r = r[(r - a >= 0) & (r + b <= sig.size)]
        shown = [sig[i - a : i + b] for i in r if np.isfinite(sig[i - a : i + b]).all()]
        if not shown:
            out[ld] = sig
            continue
        tpl = np.median(np.stack(shown), axis=0)  # (a + b,) the median beat
        base = float(np.median(tpl))
        full = np.where(np.isfinite(sig), sig, base)
        for i in r:
            seg = sig[i - a : i + b]
            if not np.isfinite(seg).any():
                full[i - a : i + b] = tpl
        out[ld] = full
    return out


def page_analyze(picture: np.ndarray, predictor, name: str = "page") -> PageResult:
    """Read a 12-lead printout and classify its rhythm strip's beats (the
    module's steps 1-6)."""
    scan = page_digitise(picture, name)
    # 5. beats on the rhythm strip; the other leads (NaN outside their
    #    panels) measured for the block stage.
    lead, sig = scan.rhythm
    try:
        # The beats first, on the rhythm strip alone; then every other lead
        # made whole at them (leads_complete) and measured with it.
        first = predictor.predict_signal(sig, scan.fs, None, lead)
        others = {ld: s for ld, s in scan.signals.items() if ld != lead}
        others = leads_complete(others, first.time_s, scan.fs)
        table = predictor.predict_signal(sig, scan.fs, others, lead)
    except EcgError as e:
        raise EcgError(f"{name}: no beats found on the rhythm strip ({e})") from None
    classes = table.predicted
    hr = irr = None
    if len(table.time_s) >= 2:
        rr = np.diff(table.time_s)
        hr = 60.0 / float(np.median(rr))
        irr = float(rr.std() / rr.mean())
    block = (
        block_decide(classes, table.block_q, table.qrs_ms, table.leads)
        if table.block_q is not None
        else {"block": None, "why": "the model has no block stage"}
    )
    # The V1 and V6 shapes the decision rests on, read on the panels alone.
    on, off = (
        (None, None)
        if table.qrs_on_s is None
        else (table.qrs_on_s * scan.fs, table.qrs_off_s * scan.fs)
    )
    block["shapes"] = block_shapes(
        scan.signals, scan.fs, np.round(table.time_s * scan.fs).astype(int), on, off
    )
    ann = page_annotate(scan, lead, table.time_s, classes)
    return PageResult(scan, lead, table, classes, hr, irr, block, ann)


def page_annotate(
    scan: PageScan, lead: str, times: np.ndarray, classes: list[str]
) -> np.ndarray:
    """The straightened page with each panel's box and name, and the rhythm
    strip's beats marked in their class colours."""
    im = Image.fromarray(scan.page).convert("RGB")
    d = ImageDraw.Draw(im)
    for ld in scan.leads:
        d.rectangle(ld.box, outline=(30, 90, 200), width=2)
        d.text((ld.box[0] + 4, ld.box[1] + 2), ld.name, fill=(30, 90, 200))
    strip = next((ld for ld in scan.leads if ld.rhythm), None) or next(
        (ld for ld in scan.leads if ld.name == lead), None
    )
    if strip is not None:
        x0 = strip.box[0] - strip.t0_s * scan.px_per_s
        for tt, c in zip(times, classes):
            x = x0 + tt * scan.px_per_s
            col = CLASS_COLORS[c]
            d.line([(x, strip.box[1]), (x, strip.box[1] + 12)], fill=col, width=3)
            d.text((x + 3, strip.box[1]), SHORT_NAMES[c], fill=col)
    return np.asarray(im)
