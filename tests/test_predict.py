"""Inference: every picture mode, every bad input, the CLI contract, signals."""

from __future__ import annotations

import csv
import io
import json
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from ecg_model.core.classes import CLASSES
from ecg_model.core.errors import EcgError
from ecg_model.data.render import RenderSpec, windows_render
from ecg_model.inference.predict import Predictor, csv_signal_read, image_read

from .conftest import DATA, ROOT, needs_data
from .test_signals import synthetic_ecg

SPEC = RenderSpec()


def beat_picture() -> np.ndarray:
    sig, peaks = synthetic_ecg(SPEC.fs, 20)
    return windows_render(sig, peaks[4:5], SPEC)[0]


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def picture_variants() -> dict[str, bytes]:
    """One beat in every file format and pixel mode a user may upload."""
    g = Image.fromarray(beat_picture()).resize((256, 128), Image.NEAREST)
    rgb = g.convert("RGB")
    rgba = g.convert("RGBA")
    a = np.asarray(rgba).copy()
    a[..., 3] = np.where(np.asarray(g) < 128, 255, 0)  # paper transparent
    a[..., :3] = np.where(
        np.asarray(g)[..., None] < 128, 0, 0
    )  # transparent pixels black
    inv = Image.fromarray(255 - np.asarray(g))
    i16 = Image.fromarray(np.asarray(g).astype(np.uint16) * 257).convert("I;16")
    blue = np.asarray(rgb).copy()
    blue[np.asarray(g) < 128] = (20, 40, 200)
    return {
        "gray.png": encode(g, "PNG"),
        "rgb.png": encode(rgb, "PNG"),
        "rgba-transparent.png": encode(Image.fromarray(a, "RGBA"), "PNG"),
        "palette.png": encode(rgb.convert("P"), "PNG"),
        "bilevel.png": encode(g.convert("1"), "PNG"),
        "16bit.png": encode(i16, "PNG"),
        "quality60.jpg": encode(rgb, "JPEG", quality=60),
        "gray.bmp": encode(g, "BMP"),
        "rgb.webp": encode(rgb, "WEBP", quality=90),
        "inverted.png": encode(inv, "PNG"),
        "blue.png": encode(Image.fromarray(blue), "PNG"),
    }


def test_image_read_every_mode():
    ref = None
    for name, data in picture_variants().items():
        rgb = image_read(data, name)
        assert rgb.dtype == np.uint8 and rgb.shape == (128, 256, 3), name
        if name == "rgba-transparent.png":  # transparency goes on white paper
            assert rgb[0, 0].tolist() == [255, 255, 255]
        if ref is None:
            ref = rgb


@needs_data
def test_predictor_same_answer_for_every_mode(tiny_run):
    p = Predictor(tiny_run)
    base = p.predict_picture(np.asarray(Image.fromarray(beat_picture()).convert("RGB")))
    for name, data in picture_variants().items():
        r = p.predict_file(data, name)
        assert set(r.probabilities) == set(CLASSES)
        assert sum(r.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
        assert r.predicted_class == max(r.probabilities, key=r.probabilities.get)
        # Every encoding of the same beat is redrawn to (nearly) the same input.
        assert (r.image != base.image).mean() < 0.03, name
        assert (
            np.abs(
                np.array(list(r.probabilities.values()))
                - np.array(list(base.probabilities.values()))
            ).max()
            < 0.1
        ), name


def bomb_png(w: int, h: int) -> bytes:
    """A valid PNG header claiming w x h pixels, with a tiny compressed body."""

    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    body = zlib.compress(b"\x00" * 1000)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", body)
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    "data,match",
    [
        (b"", "empty file"),
        (b"hello, this is text\n", "not an image"),
        (b"%PDF-1.4\n%...", "not an image"),
        (encode(Image.new("L", (50, 50)), "PNG")[:60], "truncated or corrupt"),
        (bomb_png(20000, 20000), "too large"),
        (bomb_png(70000, 70000), "too large"),
    ],
)
def test_bad_pictures_give_clear_errors(data, match):
    with pytest.raises(EcgError, match=match) as e:
        image_read(data, "upload.png")
    assert str(e.value).startswith("upload.png: ") and "\n" not in str(e.value)


def test_missing_model_files(tmp_path):
    with pytest.raises(EcgError, match="model.keras is missing"):
        Predictor(tmp_path)
    (tmp_path / "model.keras").write_bytes(b"not a zip")
    (tmp_path / "preprocessing.json").write_text(
        json.dumps({**SPEC.to_json(), "classes": list(CLASSES)})
    )
    with pytest.raises(EcgError, match="cannot load model"):
        Predictor(tmp_path)


def test_csv_signal_read(tmp_path):
    assert csv_signal_read(b"mV\n0.1\n0.2\n-0.3\n").tolist() == [0.1, 0.2, -0.3]
    with pytest.raises(EcgError, match="line 3 is not a number"):
        csv_signal_read(b"0.1\n0.2\nabc\n", "sig.csv")
    with pytest.raises(EcgError, match="no numbers"):
        csv_signal_read(b"header only\n", "sig.csv")
    with pytest.raises(EcgError, match="not a text CSV"):
        csv_signal_read(b"\xff\xfe\x00\x81binary", "sig.csv")


@needs_data
def test_predict_signal_finds_every_beat(tiny_run):
    fs = 360.0
    sig, peaks = synthetic_ecg(fs, 20, hr_bpm=75)
    table = Predictor(tiny_run).predict_signal(sig, fs)
    assert len(table.sample) == len(peaks) or abs(len(table.sample) - len(peaks)) <= 1
    # Each detected beat is within 50 ms of a true one, in the input's samples.
    d = np.abs(table.sample[:, None] - peaks[None, :]).min(axis=1)
    assert (d <= 0.05 * fs).all()
    assert table.probabilities.shape == (len(table.sample), len(CLASSES))
    with pytest.raises(EcgError, match="too short"):
        Predictor(tiny_run).predict_signal(np.zeros(100), fs)


def run_cli(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ecg_model", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@needs_data
def test_cli_predict_csv_json_and_bad_files(tiny_run, tmp_path):
    good = tmp_path / "beat.png"
    Image.fromarray(beat_picture()).save(good)
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    r = run_cli("predict", str(good), str(bad), str(good), "--model", str(tiny_run))
    assert r.returncode == 2
    rows = list(csv.reader(io.StringIO(r.stdout)))
    assert rows[0] == ["file", "predicted_class", "confidence", *CLASSES, "span_s"]
    assert len(rows) == 3 and rows[1][1] in CLASSES
    assert abs(sum(float(v) for v in rows[1][3:-1]) - 1) < 1e-3
    assert float(rows[1][-1]) == 2.4  # the span assumed: the model's window
    lines = r.stderr.strip().splitlines()
    assert f"error: {bad}: not an image (PNG, JPEG, BMP or WebP expected)" in lines
    # The rest are notes on the answered pictures (uncertain, and why).
    assert all(ln.startswith(f"{good}: ") for ln in lines if not ln.startswith("error"))
    r = run_cli("predict", str(good), "--model", str(tiny_run), "--format", "json")
    assert r.returncode == 0
    out = json.loads(r.stdout)
    assert list(out[0])[:4] == [
        "file",
        "predicted_class",
        "confidence",
        "probabilities",
    ]
    assert out[0]["span_s"] == 2.4 and "window" in out[0]["span"]
    assert list(out[0]["probabilities"]) == list(CLASSES)


@needs_data
def test_cli_predict_record_and_errors(tiny_run, tmp_path):
    r = run_cli("predict-record", str(DATA / "mitdb" / "100"), "--model", str(tiny_run))
    assert r.returncode == 0, r.stderr
    rows = list(csv.reader(io.StringIO(r.stdout)))
    assert rows[0][:5] == ["beat", "sample", "time_s", "predicted_class", "confidence"]
    assert 2200 < len(rows) - 1 < 2300  # record 100 has 2273 beats
    # Each beat's measured QRS, ms (record 100's beats are narrow: ~80-100 ms),
    # and what the measures say of it in words (the last column).
    assert rows[0][-2:] == ["qrs_ms", "note"]
    qrs = [float(r[-2]) for r in rows[1:] if r[-2]]
    assert len(qrs) > 0.9 * (len(rows) - 1) and 70 < sorted(qrs)[len(qrs) // 2] < 110
    csvf = tmp_path / "sig.csv"
    csvf.write_text("mV\n0.1\n0.2\noops\n")
    r = run_cli("predict-record", str(csvf), "--fs", "360", "--model", str(tiny_run))
    assert r.returncode == 2 and "line 4 is not a number" in r.stderr
    assert "Traceback" not in r.stderr
    r = run_cli("predict-record", str(csvf), "--model", str(tiny_run))
    assert r.returncode == 2 and "--fs" in r.stderr
    (tmp_path / "x.dat").write_bytes(b"\0" * 100)
    r = run_cli("predict-record", str(tmp_path / "x.dat"), "--model", str(tiny_run))
    assert r.returncode == 2 and "record not found" in r.stderr and "x.hea" in r.stderr


def test_cli_errors_are_one_line(tmp_path):
    r = run_cli("predict", "x.png", "--model", str(tmp_path))
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error: ")]
    assert (
        r.returncode == 2 and len(errors) == 1 and "model.keras is missing" in errors[0]
    )
    assert "Traceback" not in r.stderr
    r = run_cli(
        "build-dataset",
        "--data-dir",
        str(tmp_path / "none"),
        "--out",
        str(tmp_path / "o"),
    )
    assert r.returncode == 2 and "data folder not found" in r.stderr
    r = run_cli("train", "--cap", "Nrmal=3")
    assert r.returncode == 2 and "expected 'Class Name=N'" in r.stderr


def test_download_offline_is_a_clear_error(tmp_path, monkeypatch):
    import wfdb

    from ecg_model.cli import main

    def offline(*a, **k):
        raise ConnectionError(
            "Failed to establish a new connection: Network is unreachable"
        )

    monkeypatch.setattr(wfdb, "dl_database", offline)
    assert main(["download", "--data-dir", str(tmp_path)]) == 2
