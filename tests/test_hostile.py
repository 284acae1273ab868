"""Hostile inputs, made here: never a traceback, always a message naming the
file, and the good items of a batch still answered."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import threading

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ecg_model.app.webapp import plain
from ecg_model.core.errors import EcgError
from ecg_model.core.io import path_confine
from ecg_model.data.dataset import (
    BuildOptions,
    dataset_build,
    manifest_read,
    sample_image,
)
from ecg_model.data.pictures import image_read
from ecg_model.data.render import RenderSpec, image_normalize
from ecg_model.data.signals import header_check, record_read
from ecg_model.inference.predict import Predictor, csv_signal_read, wfdb_upload_read

from .conftest import DATA, ROOT, needs_data

EXAMPLE = sorted((ROOT / "artifacts" / "examples").glob("N_1_*.png"))[0]


def noise(h: int, w: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), np.uint8)


def png(a: np.ndarray, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("shape", [(400, 400), (64, 128), (2600, 2600)])
def test_noise_picture_has_no_trace(shape):
    # 2600 x 2600 is read from a reduced copy: bounded memory and time.
    img, q = image_normalize(noise(*shape), RenderSpec())
    spec = RenderSpec()
    assert not q.found and "no" in q.reason
    assert img.shape == (spec.image_height, spec.image_width)


def test_cli_answers_the_good_picture_beside_noise(tmp_path):
    bad = tmp_path / "noise.png"
    bad.write_bytes(png(noise(400, 400)))
    out = subprocess.run(
        [sys.executable, "-m", "ecg_model", "predict", "--format", "csv"]
        + [str(EXAMPLE), str(bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 2
    assert EXAMPLE.name in out.stdout and "noise.png" not in out.stdout
    assert "Traceback" not in out.stderr
    assert "noise.png: no" in out.stderr


def test_predictor_refuses_a_picture_without_trace():
    with pytest.raises(EcgError, match="blank.png: no trace found"):
        Predictor().predict_picture(np.full((100, 200, 3), 255, np.uint8), "blank.png")


@pytest.mark.parametrize(
    "data,name,match",
    [
        (b"", "empty.png", "empty file"),
        (b"GIF89a" + b"\0" * 20, "cut.gif", "truncated or corrupt|not an image"),
        (png(noise(20, 20), "TIFF"), "disguised.png", "TIFF picture named .png"),
        (b"%PDF-1.4 not a picture", "doc.png", "not an image"),
    ],
)
def test_bad_picture_files_are_named(data, name, match):
    with pytest.raises(EcgError, match=match) as e:
        image_read(data, name)
    assert str(e.value).startswith(name)


def test_animated_picture_is_refused():
    a = Image.fromarray(np.full((20, 40, 3), 255, np.uint8))
    buf = io.BytesIO()
    a.save(buf, "GIF", save_all=True, append_images=[a.rotate(90)])
    with pytest.raises(EcgError, match="2 frames"):
        image_read(buf.getvalue(), "anim.gif")


def test_decompression_bomb_is_refused_from_its_header():
    buf = io.BytesIO()
    Image.new("1", (9000, 9000)).save(buf, "PNG")  # 81 megapixels, tiny file
    with pytest.raises(EcgError, match="too large"):
        image_read(buf.getvalue(), "bomb.png")


HEADER = "100 2 360 650000\n100.dat 212 200 11 1024 995 -22131 0 MLII\n"


@pytest.mark.parametrize(
    "text,match",
    [
        (HEADER.replace(" 360 ", " 0 "), "sampling rate 0 Hz"),
        (HEADER.replace(" 360 ", " 1 "), "sampling rate 1 Hz"),
        (HEADER.replace(" 360 ", " abc "), "sampling rate abc"),
        (HEADER.replace(" 2 360", " 0 360"), "0 signals"),
        (HEADER.replace("650000", "999999999"), "record too long"),
        ("100 2 360 650000\n" + "100.dat 212 200\n" * 100_000, "too large"),
        ("# only a comment\n", "empty WFDB header"),
    ],
)
def test_bad_wfdb_headers_are_refused_unread(text, match):
    with pytest.raises(EcgError, match=match):
        header_check(text, "x.hea")


def test_uploaded_header_is_checked_before_the_signal():
    bad = HEADER.replace(" 360 ", " 0 ").encode()
    with pytest.raises(EcgError, match="100.hea: sampling rate 0 Hz"):
        wfdb_upload_read({"100.hea": bad, "100.dat": b"\0" * 30})


@needs_data
def test_record_with_edited_header_is_refused(tmp_path):
    for ext in ("dat", "atr"):
        (tmp_path / f"100.{ext}").symlink_to(DATA / "mitdb" / f"100.{ext}")
    text = (DATA / "mitdb" / "100.hea").read_text().replace(" 360 ", " 1 ", 1)
    (tmp_path / "100.hea").write_text(text)
    with pytest.raises(EcgError, match="sampling rate 1 Hz"):
        record_read(tmp_path / "100")


@pytest.mark.parametrize(
    "sig,fs,match",
    [
        (np.r_[np.zeros(1000), 1e308, np.zeros(1000)], 360.0, "amplitude out of"),
        (np.full(2000, np.nan), 360.0, "no numbers"),
        (np.zeros(10**6), 50.0, "signal too long"),
        (np.zeros(3000), 5.0, "outside 50-2000 Hz"),
    ],
)
def test_bad_signals_get_a_message(sig, fs, match):
    with pytest.raises(EcgError, match=match):
        Predictor().predict_signal(sig, fs)


def test_csv_with_inf_and_text_is_named():
    assert np.isinf(csv_signal_read(b"mv\n1\ninf\n2\n", "a.csv")).sum() == 1
    with pytest.raises(EcgError, match="b.csv: line 3 is not a number"):
        csv_signal_read(b"mv\n1\nDROP TABLE\n", "b.csv")


def test_manifest_rows_that_leave_the_folder_are_dropped(tmp_path):
    root = tmp_path / "ds"
    (root / "train" / "Normal").mkdir(parents=True)
    Image.new("L", (128, 64), 255).save(root / "train" / "Normal" / "a.png")
    (root / "train" / "Normal" / "out.png").symlink_to("/etc/hostname")
    rows = ["train/Normal/a.png", "/etc/passwd", "../../etc/passwd"]
    rows += ["train/Normal/out.png", "train/Normal/missing.png"]
    pd.DataFrame(
        {
            "path": rows,
            "database": "folder",
            "record": "",
            "sample": -1,
            "time_s": np.nan,
            "symbol": "",
            "class": "Normal",
            "split": "train",
        }
    ).to_csv(root / "manifest.csv", index=False)
    m = manifest_read(root)
    assert list(m["path"]) == [rows[0], rows[3], rows[4]]
    assert m.attrs["outside"] == 2
    assert sample_image(root, "train/Normal/a.png").shape == (64, 128, 3)
    assert sample_image(root, "train/Normal/missing.png") is None
    assert sample_image(root, "train/Normal/out.png") is None  # not a picture
    assert sample_image(root, "../../etc/passwd") is None


def test_folders_outside_the_roots_are_refused_alike(tmp_path):
    inside = tmp_path / "ok"
    inside.mkdir()
    assert path_confine(inside, [tmp_path.resolve()]) == inside.resolve()
    msgs = []
    for p in ("/etc", "/no/such/folder", f"{inside}/../../etc"):
        with pytest.raises(EcgError, match="outside the folders") as e:
            path_confine(p, [tmp_path.resolve()])
        msgs.append(str(e.value).split(":", 1)[1])
    assert len(set(msgs)) == 1  # says nothing about whether the folder exists


@needs_data
def test_two_builds_at_once_one_builds_the_other_is_told(tmp_path):
    out, res = tmp_path / "d", {}

    def build(k: int) -> None:
        try:
            opts = BuildOptions(records=("mitdb/100",))
            res[k] = dataset_build(out, opts, data=DATA, workers=1)["n_images"]
        except EcgError as e:
            res[k] = str(e)

    ts = [threading.Thread(target=build, args=(k,)) for k in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    told = [v for v in res.values() if isinstance(v, str)]
    built = [v for v in res.values() if isinstance(v, int)]
    assert len(built) >= 1 and all("another dataset build" in v for v in told)
    assert [p.name for p in tmp_path.iterdir()] == ["d"]
    shutil.rmtree(out)


def test_names_are_shown_as_text_not_markdown():
    name = "![x](http://127.0.0.1:8799/beacon.png).png"
    shown = plain(name)
    assert "![" not in shown and "](" not in shown and "http:" not in shown
    assert shown.replace("\\", "") == name
