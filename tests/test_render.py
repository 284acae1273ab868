"""Renderer: contract, determinism, and redrawing pictures from other software."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ecg_model.data.render import (
    RenderSpec,
    image_normalize,
    outside_blank,
    windows_render,
)

from .test_signals import synthetic_ecg

SPEC = RenderSpec()


def test_render_shape_polarity_and_determinism():
    sig, peaks = synthetic_ecg(SPEC.fs, 20)
    imgs = windows_render(sig, peaks[3:8], SPEC)
    assert (
        imgs.shape == (5, SPEC.image_height, SPEC.image_width)
        and imgs.dtype == np.uint8
    )
    assert set(np.unique(imgs)) == {0, 255}
    assert np.array_equal(imgs, windows_render(sig, peaks[3:8], SPEC))
    # Each column holds ink (a continuous line) and the picture is mostly paper.
    assert ((imgs == 0).any(axis=1)).all()
    assert (imgs == 255).mean() > 0.8


def test_outside_blank_whites_out_only_what_lies_outside_the_signal():
    sig, peaks = synthetic_ecg(SPEC.fs, 10)
    seg = sig[peaks[2] - 50 : peaks[6] + 50]  # a strip: beat 2 is 0.2 s from its start
    c = np.array([50, peaks[6] - peaks[2] + 50])  # first and last beat of the strip
    pad = np.pad(seg, (SPEC.before, SPEC.after), mode="edge")
    imgs = windows_render(pad, c + SPEC.before, SPEC)
    out = outside_blank(imgs, c, seg.size, SPEC)
    blank = (out == 255).all(axis=1)  # (2, w)
    px_per_s = SPEC.image_width / (SPEC.window_before_s + SPEC.window_after_s)
    # First beat: the 1.0 s before the strip starts is blank, nothing after it.
    n_left = int(np.flatnonzero(~blank[0])[0])
    assert abs(n_left - (SPEC.window_before_s - 0.2) * px_per_s) <= 1.5
    assert not blank[0, n_left:].any()
    # Last beat: blank after the strip's end, from its right edge inward.
    n_right = SPEC.image_width - 1 - int(np.flatnonzero(~blank[1])[-1])
    assert abs(n_right - (SPEC.window_after_s - 0.2) * px_per_s) <= 1.5
    # What lies inside the signal is drawn as before.
    assert np.array_equal(out[0][:, n_left:], imgs[0][:, n_left:])


def test_beat_sits_at_window_before_and_neighbours_show():
    sig, peaks = synthetic_ecg(SPEC.fs, 20, hr_bpm=75)  # RR 0.8 s
    img = windows_render(sig, peaks[5:6], SPEC)[0]
    top_row = np.argmax((img == 0), axis=0)  # highest ink per column
    px_per_s = SPEC.image_width / (SPEC.window_before_s + SPEC.window_after_s)
    centre = SPEC.window_before_s * px_per_s
    peaks_px = np.flatnonzero(top_row <= SPEC.margin_px + 1)
    # The beat's peak is at the contract's column, and both neighbours 0.8 s away.
    for off in (-0.8, 0.0, 0.8):
        assert np.min(np.abs(peaks_px - (centre + off * px_per_s))) <= 2


def test_flat_signal_is_one_line_through_the_middle():
    img = windows_render(np.zeros(2 * SPEC.before + 10), np.array([SPEC.before]), SPEC)[
        0
    ]
    assert img.shape == (SPEC.image_height, SPEC.image_width)
    assert (img == 0).sum() == SPEC.image_width  # one line through the middle


def draw_foreign(
    sig: np.ndarray,
    size=(400, 180),
    lw=3,
    color=(0, 0, 0),
    bg=(255, 255, 255),
    grid=None,
    axes=False,
    jpeg=None,
    blur=0.0,
) -> np.ndarray:
    """Draw a signal the way other software might (PIL, anti-aliased by blur)."""
    w, h = size
    im = Image.new("RGB", size, bg)
    d = ImageDraw.Draw(im)
    if grid:
        for x in range(0, w, 8):
            d.line([(x, 0), (x, h)], fill=grid, width=1 if x % 40 else 2)
        for y in range(0, h, 8):
            d.line([(0, y), (w, y)], fill=grid, width=1 if y % 40 else 2)
    x0, x1, y0, y1 = (40, w - 10, 10, h - 30) if axes else (5, w - 5, 10, h - 10)
    xs = np.linspace(x0, x1, sig.size)
    ys = y1 - (sig - sig.min()) / (np.ptp(sig) or 1) * (y1 - y0)
    d.line(list(zip(xs, ys)), fill=color, width=lw)
    if axes:
        d.line([(x0 - 5, y1 + 8), (x1, y1 + 8)], fill=(0, 0, 0), width=1)
        d.line([(x0 - 5, y0), (x0 - 5, y1 + 8)], fill=(0, 0, 0), width=1)
        for i in range(5):
            d.text((x0 + i * (x1 - x0) / 4 - 4, y1 + 12), f"{i}", fill=(0, 0, 0))
    if blur:
        im = im.filter(ImageFilter.GaussianBlur(blur))
    if jpeg:
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=jpeg)
        im = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return np.asarray(im)


def _trace_rows(img: np.ndarray) -> np.ndarray:
    """Mid-row of the ink in each column, shape ``(w,)``."""
    ink = img == 0
    rows = np.arange(img.shape[0])[:, None]
    return (ink * rows).sum(0) / np.maximum(ink.sum(0), 1)


def test_own_drawing_is_a_fixed_point():
    sig, peaks = synthetic_ecg(SPEC.fs, 20)
    sig = sig + 0.1 * np.sin(np.arange(sig.size) / 40)
    for img in windows_render(sig, peaks[3:10], SPEC):
        out, q = image_normalize(img, SPEC)
        assert q.looks_like_ecg
        assert np.array_equal(out, img)


def test_foreign_styles_redraw_to_the_same_trace():
    sig, peaks = synthetic_ecg(SPEC.fs, 20)
    sig = sig - 0.3 * np.exp(
        -0.5 * ((np.arange(sig.size) / SPEC.fs - 4.05) / 0.02) ** 2
    )
    c = peaks[4]
    seg = sig[c - SPEC.before : c + SPEC.after]
    ref = _trace_rows(windows_render(sig, np.array([c]), SPEC)[0])
    styles = {
        "thick": {"lw": 5},
        "blue-blur": {"lw": 2, "color": (20, 40, 200), "blur": 1.0},
        "green-on-black": {"lw": 2, "color": (40, 255, 80), "bg": (0, 0, 0)},
        "ecg-paper": {"lw": 2, "grid": (240, 160, 160)},
        "axes-labels": {"lw": 2, "axes": True},
        "jpeg": {"lw": 3, "color": (0, 0, 160), "jpeg": 50},
    }
    for name, kw in styles.items():
        out, q = image_normalize(draw_foreign(seg, **kw), SPEC)
        assert q.looks_like_ecg, name
        rows = _trace_rows(out)
        # Same trace: the redraw follows the reference within ~2 px on average.
        assert np.mean(np.abs(rows - ref)) < 2.5, (name, np.mean(np.abs(rows - ref)))
        assert np.corrcoef(rows, ref)[0, 1] > 0.9, name


def test_foreign_pen_is_thinned_to_the_projects_pen():
    """A matplotlib line of 1.5-2 pt redraws about as thin as the project's pen.

    Before the trace was skeletonised, these redraws held ~2x the reference's
    ink per column (a 2-row flat line, QRS strokes as wide as the pen).
    """
    from ecg_model.data.pictures import image_read
    from ecg_model.styles import style_draw

    sig, peaks = synthetic_ecg(SPEC.fs, 20)
    c = peaks[4]
    ref = windows_render(sig, np.array([c]), SPEC)[0]
    seg = sig[c - SPEC.before : c + SPEC.after]
    for style in ("mpl-default", "monitor", "blue-jpeg60"):
        out, q = image_normalize(image_read(style_draw(seg, SPEC.fs, style)), SPEC)
        assert q.looks_like_ecg, style
        ink_ref, ink = (ref == 0).sum(0), (out == 0).sum(0)  # (w,) rows of ink
        assert np.mean(np.abs(ink - ink_ref)) < 1.6, style
        assert ink.sum() < 1.6 * ink_ref.sum(), style


def test_blank_and_noise_are_not_ecg():
    blank = np.full((100, 200, 3), 255, np.uint8)
    _, q = image_normalize(blank, SPEC)
    assert not q.looks_like_ecg and "no trace" in q.reason
    rng = np.random.default_rng(0)
    specks = np.full((100, 200), 255, np.uint8)
    specks[rng.integers(0, 100, 30), rng.integers(0, 200, 30)] = 0
    _, q = image_normalize(specks, SPEC)
    assert not q.looks_like_ecg
