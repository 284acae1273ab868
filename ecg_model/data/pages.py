"""12-lead printouts: their layouts, and the project's own drawing of them.

A printout shows 10 s of a 12-lead recording on ECG paper (25 mm/s, 10 mm/mV)
in one of a few standard layouts: ``3x4`` (rows I aVR V1 V4 / II aVL V2 V5 /
III aVF V3 V6, each column a different 2.5 s) with one to three full-length
rhythm strips below, ``6x2`` (two columns of 5 s) or ``12x1`` (every lead for
10 s). A 1 mV calibration pulse opens each row. :data:`LAYOUTS` is the one
description the drawing here and the reader (:mod:`ecg_model.inference.page`)
share; :func:`page_draw` draws test pages from real records.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

#: The twelve leads in the order records store them.
LEADS12 = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
#: Seconds a page shows.
PAGE_S = 10.0
#: Each layout: its rows of panels (lead names, left to right; the columns split
#: the page's 10 s equally), then its full-length rhythm strips.
LAYOUTS: dict[str, tuple[tuple[tuple[str, ...], ...], tuple[str, ...]]] = {
    "3x4+1": (
        (
            ("I", "aVR", "V1", "V4"),
            ("II", "aVL", "V2", "V5"),
            ("III", "aVF", "V3", "V6"),
        ),
        ("II",),
    ),
    "3x4+3": (
        (
            ("I", "aVR", "V1", "V4"),
            ("II", "aVL", "V2", "V5"),
            ("III", "aVF", "V3", "V6"),
        ),
        ("II", "V1", "V5"),
    ),
    "6x2": (
        (
            ("I", "V1"),
            ("II", "V2"),
            ("III", "V3"),
            ("aVR", "V4"),
            ("aVL", "V5"),
            ("aVF", "V6"),
        ),
        (),
    ),
    "12x1": (tuple((name,) for name in LEADS12), ()),
}
#: US-letter landscape, mm.
PAGE_W_MM, PAGE_H_MM = 279.4, 215.9
#: Where each row's calibration pulse starts, and its width (0.2 s), mm.
PULSE_X_MM, PULSE_W_MM = 10.0, 5.0
#: Where the trace starts (the pulse's end), mm; 10 s later it ends.
TRACE_X_MM = PULSE_X_MM + PULSE_W_MM
#: The band of the page the rows' baselines share, mm from the top.
ROWS_TOP_MM, ROWS_BOTTOM_MM = 45.0, 205.0


def layout_rows(layout: str) -> list[tuple[str, ...]]:
    """Every row of a layout, top to bottom: its panels' leads (a rhythm strip
    is a row of one lead over the whole 10 s)."""
    panels, rhythm = LAYOUTS[layout]
    return [*panels, *((name,) for name in rhythm)]


def row_baseline_mm(layout: str, row: int) -> float:
    """Baseline of a row, mm from the page's top."""
    n = len(layout_rows(layout))
    return ROWS_TOP_MM + (row + 0.5) * (ROWS_BOTTOM_MM - ROWS_TOP_MM) / n


@dataclass(frozen=True)
class PageSpec:
    """How a test page is drawn.

    Attributes
    ----------
    layout : str
        A key of :data:`LAYOUTS`.
    dpmm : float
        Pixels a mm (8 is about 200 dpi).
    grid : str
        ``"red"`` (pink 1 mm, red 5 mm lines), ``"bw"`` (greys) or ``"none"``.
    rotate_deg : float
        Rotation of the page, degrees, positive counter-clockwise (PIL's).
    jpeg : int
        JPEG quality, or 0 for PNG.
    line_px : int
        Pen width, px.
    """

    layout: str = "3x4+1"
    dpmm: float = 8.0
    grid: str = "red"
    rotate_deg: float = 0.0
    jpeg: int = 0
    line_px: int = 2

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {list(LAYOUTS)}")
        if self.grid not in ("red", "bw", "none"):
            raise ValueError("grid must be 'red', 'bw' or 'none'")
        if not 2 <= self.dpmm <= 20:
            raise ValueError("dpmm must be from 2 to 20 px a mm")


def page_draw(leads: dict[str, np.ndarray], fs: float, spec: PageSpec) -> bytes:
    """Draw 10 s of a 12-lead recording as a printout, PNG or JPEG bytes.

    Parameters
    ----------
    leads : dict
        Signal of each lead in mV at ``fs``, by name (:data:`LEADS12`), each
        shape ``(n,)`` with ``n >= PAGE_S * fs``.
    fs : float
        Sampling rate, Hz.
    spec : PageSpec
        Layout and appearance.
    """
    k = spec.dpmm
    w, h = int(round(PAGE_W_MM * k)), int(round(PAGE_H_MM * k))
    img = Image.new("RGB", (w, h), (255, 255, 255))
    d = ImageDraw.Draw(img)
    if spec.grid != "none":
        minor, major = (
            ((250, 205, 205), (235, 110, 110))
            if spec.grid == "red"
            else ((225, 225, 225), (165, 165, 165))
        )
        for j, mm in enumerate(np.arange(0, PAGE_W_MM, 1.0)):
            if j % 5:
                d.line([(mm * k, 0), (mm * k, h)], fill=minor, width=1)
        for j, mm in enumerate(np.arange(0, PAGE_H_MM, 1.0)):
            if j % 5:
                d.line([(0, mm * k), (w, mm * k)], fill=minor, width=1)
        # The 5 mm lines over the 1 mm ones, heavier.
        for mm in np.arange(0, PAGE_W_MM, 5.0):
            d.line([(mm * k, 0), (mm * k, h)], fill=major, width=max(1, int(k / 4)))
        for mm in np.arange(0, PAGE_H_MM, 5.0):
            d.line([(0, mm * k), (w, mm * k)], fill=major, width=max(1, int(k / 4)))
    font = ImageFont.load_default(size=max(8, int(3.5 * k)))
    d.text(
        (10 * k, 8 * k), "ID: test page   25mm/s   10mm/mV", fill=(0, 0, 0), font=font
    )
    ink = (0, 0, 0)
    for r, names in enumerate(layout_rows(spec.layout)):
        y0 = row_baseline_mm(spec.layout, r)
        # The calibration pulse: 1 mV (10 mm) for 0.2 s.
        pulse = [
            (PULSE_X_MM, y0),
            (PULSE_X_MM + 1, y0),
            (PULSE_X_MM + 1, y0 - 10),
            (PULSE_X_MM + PULSE_W_MM - 1, y0 - 10),
            (PULSE_X_MM + PULSE_W_MM - 1, y0),
            (TRACE_X_MM, y0),
        ]
        d.line([(x * k, y * k) for x, y in pulse], fill=ink, width=spec.line_px)
        col_s = PAGE_S / len(names)
        for c, name in enumerate(names):
            a, b = int(round(c * col_s * fs)), int(round((c + 1) * col_s * fs))
            v = np.asarray(leads[name][a : b + 1], np.float64)  # one sample over
            t = (a + np.arange(v.size)) / fs  # s from the page's start
            x = (TRACE_X_MM + 25.0 * t) * k
            y = (y0 - 10.0 * v) * k
            d.line(list(zip(x.tolist(), y.tolist())), fill=ink, width=spec.line_px)
            xs = (TRACE_X_MM + 25.0 * c * col_s) * k
            if c:  # a short bar where one lead gives way to the next
                d.line([(xs, (y0 - 3) * k), (xs, (y0 + 3) * k)], fill=ink, width=3)
            d.text((xs + 1 * k, (y0 + 3) * k), name, fill=ink, font=font)
    if spec.rotate_deg:
        img = img.rotate(
            spec.rotate_deg, resample=Image.BILINEAR, fillcolor=(255, 255, 255)
        )
    out = io.BytesIO()
    if spec.jpeg:
        img.save(out, "JPEG", quality=spec.jpeg)
    else:
        img.save(out, "PNG")
    return out.getvalue()
