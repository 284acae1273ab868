"""Pictures of any time span: tight crops of one beat, wide crops, ECG paper."""

from __future__ import annotations

import numpy as np
import pytest

from ecg_model.data.render import RenderSpec, image_normalize, windows_render
from ecg_model.inference.span import ONE_BEAT_S, picture_window, trace_beats

SPEC = RenderSpec()
FS = SPEC.fs


def pqrst(dur_s: float, hr_bpm: float = 72.0, qrs_s: float = 0.1) -> tuple:
    """A synthetic ECG: P, QRS (``qrs_s`` wide) and T waves at a steady rate.

    Returns (sig in mV at FS, R-peak samples).
    """
    t = np.arange(int(FS * dur_s)) / FS
    peaks = np.arange(0.6, dur_s - 0.6, 60.0 / hr_bpm)
    sig = np.zeros_like(t)
    q = qrs_s / 6  # a Gaussian is about 6 sigma wide
    for p in peaks:
        sig += 0.15 * np.exp(-0.5 * ((t - p + 0.18) / 0.025) ** 2)  # P
        sig += 1.2 * np.exp(-0.5 * ((t - p) / q) ** 2)  # R
        sig -= 0.3 * np.exp(-0.5 * ((t - p - 1.5 * q * 2) / q) ** 2)  # S
        sig += 0.3 * np.exp(-0.5 * ((t - p - 0.3) / 0.05) ** 2)  # T
    return sig, np.round(peaks * FS).astype(int)


def drawn(sig: np.ndarray, centre: int, span_s: float, width: int) -> np.ndarray:
    """``span_s`` of ``sig`` around ``centre`` drawn ``width`` px wide, as other
    software would draw a crop (thin black line, 150 px tall)."""
    spec = RenderSpec(
        window_before_s=span_s / 2,
        window_after_s=span_s / 2,
        image_width=width,
        image_height=150,
    )
    return windows_render(sig, np.array([centre]), spec)[0]


def tall_cols(img: np.ndarray) -> np.ndarray:
    """Columns near the beat's place whose ink reaches the top 40% of the
    picture: the R wave about its half height, a measure of QRS width."""
    ink = img < 128
    top = np.where(ink.any(axis=0), ink.argmax(axis=0), img.shape[0])  # (w,)
    cols = np.flatnonzero(top < 0.4 * img.shape[0])
    mid = SPEC.image_width * SPEC.window_before_s / (SPEC.window_before_s * 2)
    return cols[np.abs(cols - mid) < SPEC.image_width / 10]


def ink_cols(img: np.ndarray) -> np.ndarray:
    return np.flatnonzero((img < 128).any(axis=0))


@pytest.mark.parametrize("qrs_s", [0.09, 0.14])
def test_tight_crop_of_one_beat_keeps_the_contract_time_scale(qrs_s) -> None:
    sig, peaks = pqrst(10, qrs_s=qrs_s)
    c = int(peaks[4])
    # The reference: the 2.4 s window drawn by the same software at the same
    # pixels a second, as the model's input.
    ref = image_normalize(drawn(sig, c, 2.4, 1200), SPEC)[0]
    crop = drawn(sig, c, ONE_BEAT_S, 400)
    img, q, span = picture_window(crop, SPEC)
    assert q.found and span.source == "one beat" and span.duration_s == ONE_BEAT_S
    # The crop fills only its 0.8 s of the 2.4 s window; the rest is paper.
    w = SPEC.image_width
    cols = ink_cols(img)
    assert abs(cols[0] - w * (1.2 - 0.4) / 2.4) <= 2
    assert abs(cols[-1] - w * (1.2 + 0.4) / 2.4) <= 2
    # The QRS is as wide as in the contract's drawing, at the same place (+-1 px):
    # a stretched crop would draw it three times as wide.
    qrs, qrs_ref = tall_cols(img), tall_cols(ref)
    assert abs(len(qrs) - len(qrs_ref)) <= 1
    assert abs(qrs.mean() - qrs_ref.mean()) <= 1.5
    # Given, the span is used as given.
    _, _, given = picture_window(crop, SPEC, duration_s=0.8)
    assert given.source == "given"


def test_wide_crop_given_span_is_cut_to_the_window_around_the_centre_beat() -> None:
    sig, peaks = pqrst(12)
    c = int(peaks[6])
    ref = windows_render(sig, np.array([c]), SPEC)[0]
    # 3.6 s centred a little off the beat, as a hand crop would be.
    wide = drawn(sig, c + int(0.15 * FS), 3.6, 700)
    img, _, span = picture_window(wide, SPEC, duration_s=3.6)
    assert span.source == "given"
    # The beat nearest the centre sits at the window's beat column, and the
    # picture shows what the contract's window shows.
    assert abs(tall_cols(img).mean() - tall_cols(ref).mean()) <= 1.5
    both = ((img < 128) & (ref < 128)).sum() / max(((img < 128) | (ref < 128)).sum(), 1)
    assert both > 0.3
    assert len(ink_cols(img)) == SPEC.image_width  # 3.6 s covers the whole window
    # Without the span (no grid), a picture of several beats is taken to be
    # the window itself, as before.
    _, _, guessed = picture_window(wide, SPEC)
    assert guessed.source == "window"


def test_span_is_read_from_ecg_paper() -> None:
    sig, peaks = pqrst(12)
    box_px, span_s = 8, 3.2
    w = int(round(span_s / 0.04 * box_px))  # 640 px: 25 mm/s, 8 px a mm
    trace = drawn(sig, int(peaks[6]), span_s, w)
    paper = np.full((*trace.shape, 3), 255, np.uint8)
    for x in range(0, w, box_px):  # pink 1 mm lines, red 5 mm lines
        paper[:, x] = (224, 96, 96) if (x // box_px) % 5 == 0 else (244, 182, 182)
    for y in range(0, trace.shape[0], box_px):
        paper[y, :] = (224, 96, 96) if (y // box_px) % 5 == 0 else (244, 182, 182)
    paper[trace < 128] = 0
    img, q, span = picture_window(paper, SPEC)
    assert q.found and span.source == "grid"
    assert span.duration_s == pytest.approx(span_s, rel=0.05)
    ref = windows_render(sig, np.array([int(peaks[6])]), SPEC)[0]
    assert abs(tall_cols(img).mean() - tall_cols(ref).mean()) <= 1.5


def test_a_window_picture_is_drawn_as_before() -> None:
    sig, peaks = pqrst(10)
    pic = windows_render(sig, peaks[4:5], RenderSpec(image_width=300, image_height=120))
    img, _, span = picture_window(pic[0], SPEC)
    assert span.source == "window"
    assert np.array_equal(img, image_normalize(pic[0], SPEC)[0])
    assert trace_beats(*_trace(pic[0])).size >= 2


def test_fibrillation_waves_are_no_single_beat() -> None:
    t = np.arange(int(FS * 6)) / FS
    vf = 0.8 * np.sin(2 * np.pi * 4.5 * t) * (1 + 0.3 * np.sin(2 * np.pi * 0.3 * t))
    img, _, span = picture_window(drawn(vf, int(3 * FS), 2.4, 300), SPEC)
    assert span.source == "window"


def _trace(pic: np.ndarray):
    from ecg_model.data.render import image_trace

    lo, hi, _ = image_trace(pic)
    return lo, hi
