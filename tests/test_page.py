"""12-lead printouts (issue 27): pages drawn by the project from a cpsc2018
recording, a few of the development set's pages, and what is not a page."""

from __future__ import annotations

import gzip
import io
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from ecg_model.core.errors import EcgError
from ecg_model.data.pages import LEADS12, PageSpec, page_draw
from ecg_model.inference.page import PAGE_FS, page_analyze, page_digitise
from ecg_model.strip_eval import snr_db

from .conftest import DATA, needs_data
from .test_predict import run_cli

RECORD = DATA / "cpsc2018" / "A0002"
PAGES = DATA / "ecg-images-cpsc2018"


@pytest.fixture(scope="module")
def record():
    if not RECORD.with_suffix(".hea").exists():
        pytest.skip(f"cpsc2018 not found at {DATA}")
    import wfdb

    rec = wfdb.rdrecord(str(RECORD))
    leads = {n: rec.p_signal[:, i] for i, n in enumerate(rec.sig_name)}
    return leads, float(rec.fs)


def _read(leads: dict, fs: float, spec: PageSpec):
    data = page_draw(leads, fs, spec)
    pic = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    return pic, page_digitise(pic)


def _snr(scan, leads: dict, fs: float) -> dict[str, float]:
    """Each panel's SNR against the record's same seconds, dB."""
    t = np.arange(scan.signals["I"].size) / scan.fs
    out = {}
    for ld in scan.leads:
        est = scan.strips[ld.name] if ld.rhythm else scan.signals[ld.name]
        sel = (t >= ld.t0_s) & (t < ld.t1_s) & np.isfinite(est)
        ref = np.interp(t[sel], np.arange(leads[ld.name].size) / fs, leads[ld.name])
        out[ld.name + (" rhythm" if ld.rhythm else "")] = snr_db(
            ref, est[sel], scan.fs, 0.2
        )
    return out


@pytest.mark.parametrize(
    "spec, median_db, least_db",
    [
        (PageSpec(), 9.0, 4.0),
        (PageSpec(layout="6x2"), 9.0, 4.0),
        # Twelve rows 13 mm apart: tall QRS complexes cross two rows.
        (PageSpec(layout="12x1"), 8.0, -15.0),
        (PageSpec(layout="3x4+3"), 9.0, 4.0),
        (PageSpec(rotate_deg=3.0), 9.0, 4.0),
        (PageSpec(jpeg=60, dpmm=6.0), 6.0, 2.0),
        (PageSpec(grid="bw", rotate_deg=-2.0), 9.0, 4.0),
    ],
    ids=["3x4+1", "6x2", "12x1", "3x4+3", "rotated-3", "jpeg60", "bw-rotated"],
)
def test_project_pages_are_read_in_every_layout(record, spec, median_db, least_db):
    leads, fs = record
    _, scan = _read(leads, fs, spec)
    assert scan.layout == spec.layout
    assert scan.fs == PAGE_FS and abs(scan.angle_deg + spec.rotate_deg) <= 0.5
    # Every lead is there, named by its place; rhythm strips on top.
    assert {ld.name for ld in scan.leads if not ld.rhythm} == set(LEADS12)
    snr = _snr(scan, leads, fs)
    assert np.median(list(snr.values())) >= median_db, snr
    assert min(snr.values()) >= least_db, snr
    # Outside its panel a lead is NaN: a 3x4 lead shows 2.5 s of the 10; a
    # lead with a rhythm strip (II; 3x4+3: II, V1, V5) shows them all.
    if spec.layout.startswith("3x4"):
        assert 0.24 <= np.isfinite(scan.signals["V2"]).mean() <= 0.26
        assert np.isfinite(scan.signals["II"]).all()


@needs_data
def test_the_rhythm_strips_beats_are_those_of_the_record(record, tiny_run):
    from ecg_model.inference.predict import Predictor
    from ecg_model.strip_eval import match_beats

    leads, fs = record
    pred = Predictor(tiny_run)
    pic, _ = _read(leads, fs, PageSpec())
    res = page_analyze(pic, pred)
    truth = pred.predict_signal(leads["II"][: int(10 * fs)], fs)
    pairs = match_beats(truth.time_s, res.table.time_s)
    assert len(truth.time_s) >= 8
    assert len(pairs) >= 0.95 * len(truth.time_s)
    assert len(pairs) >= 0.95 * len(res.table.time_s)
    js = res.to_json()
    assert js["layout"] == "3x4+1" and len(js["leads"]) == 13
    assert js["heart_rate_bpm"] and 30 < js["heart_rate_bpm"] < 200
    assert js["block"] and "block" in js["block"]
    # The V1 and V6 shapes the decision rests on, read on their panels.
    assert set(js["block"]["shapes"]) == {"V1", "V6"}
    assert all(w.endswith("beats") for w in js["block"]["shapes"].values())
    assert all("qrs_ms" in b for b in js["beats"])
    assert res.annotated.shape == res.scan.page.shape


def _text_photo() -> np.ndarray:
    """A page of printed text: lines of words, no trace."""
    img = Image.new("RGB", (1600, 1200), (250, 250, 245))
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=28)
    for k in range(25):
        d.text(
            (60, 40 + 45 * k), "The quick brown fox jumps over " * 3, (20, 20, 20), font
        )
    return np.asarray(img)


@needs_data
def test_a_text_page_and_a_single_strip_are_not_taken_for_a_page(record):
    from ecg_model.strip_eval import strip_draw

    with pytest.raises(EcgError, match="12-lead"):
        page_digitise(_text_photo())
    # A small flat picture (an icon): too few darknesses for the three kinds
    # of pixel; refused with a message, not a crash.
    icon = np.full((200, 200, 3), 255, np.uint8)
    icon[40:160, 40:160] = 0
    with pytest.raises(EcgError):
        page_digitise(icon)
    leads, fs = record
    strip = np.asarray(
        Image.open(
            io.BytesIO(strip_draw(leads["II"][: int(10 * fs)], fs, "paper-pink"))
        ).convert("RGB")
    )
    with pytest.raises(EcgError, match="not a 12-lead page"):
        page_digitise(strip)


@needs_data
def test_an_exported_page_reads_back_through_predict_record(record, tiny_run, tmp_path):
    import wfdb

    from ecg_model.page_eval import page_export

    leads, fs = record
    _, scan = _read(leads, fs, PageSpec())
    files = page_export(scan, tmp_path / "out", "A0002-page")
    assert {p.suffix for p in files} == {".hea", ".dat", ".csv"}
    rec = wfdb.rdrecord(str(tmp_path / "out" / "A0002-page"))
    assert rec.sig_name == list(scan.signals) and rec.fs == PAGE_FS
    v1 = rec.p_signal[:, rec.sig_name.index("V1")]
    # NaN outside V1's panel (5-7.5 s), the page's values inside it.
    assert np.isnan(v1[: int(4.9 * PAGE_FS)]).all()
    inside = np.isfinite(v1)
    assert np.allclose(v1[inside], scan.signals["V1"][inside], atol=1e-3)
    csv = (tmp_path / "out" / "A0002-page.csv").read_text().splitlines()
    assert csv[0].split(",")[:3] == ["time_s", "I", "II"] and len(csv) == 5001
    r = run_cli(
        "predict-record", str(tmp_path / "out" / "A0002-page"), "--model", str(tiny_run)
    )
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.strip().splitlines()) >= 9  # header + a row a beat


@pytest.mark.skipif(
    not (PAGES / "A0004-0.png").exists(), reason=f"no development pages at {PAGES}"
)
@pytest.mark.parametrize(
    "page", ["A0004-0.png", "A0016-0.jpg", "A0030-0.png", "A0034-0.jpg", "A0036-0.jpg"]
)
def test_development_pages_are_read_with_their_leads_named(page):
    import wfdb

    from ecg_model.data.pictures import image_read
    from ecg_model.page_eval import _box_names

    if not (PAGES / page).exists():
        pytest.skip(f"{page} is not in {PAGES}")
    pic = image_read(PAGES / page, page)
    scan = page_digitise(pic)
    assert scan.layout == "3x4+1"
    ann = json.loads(gzip.open(PAGES / page.replace(page[-4:], ".json.gz")).read())
    names = _box_names(ann, scan, pic.shape[:2])
    assert np.mean(names) >= 0.9, [ld.name for ld in scan.leads]
    rec = wfdb.rdrecord(str(PAGES / page.split("-")[0]))
    leads = {n: rec.p_signal[:, i] for i, n in enumerate(rec.sig_name)}
    snr = _snr(scan, leads, rec.fs)
    assert np.median(list(snr.values())) >= 5.0, snr


def test_page_summary_counts_pages_beats_and_blocks():
    from ecg_model.page_eval import page_summary, page_table

    row = dict(
        read=True,
        record="A0002",
        category="clean",
        layout="3x4+1",
        seconds=1.0,
        snr_db={"I": 12.0, "II": 8.0},
        beats_true=10,
        beats_found=11,
        beats_matched=10,
        classes_same=9,
        beats_labelled=10,
        right_page=8,
        right_record=9,
        block_truth="RBBB",
        block_all_leads="RBBB",
        block_lead_ii="none",
        names_right=13,
        panels=13,
    )
    refused = dict(read=False, record="A0004", category="clean", why="no rows")
    res = page_summary([row, refused], test_records=("A0002",))
    f = res["overall"]
    assert f["pages"] == 2 and f["read"] == 0.5 and f["median_snr_db"] == 10.0
    assert f["beat_se"] == 1.0 and f["beat_ppv"] == round(10 / 11, 4)
    assert f["accuracy_page"] == 0.8 and f["accuracy_record"] == 0.9
    blocks = res["block"]["test patients"]
    assert blocks["all leads"]["RBBB"]["recall"] == 1.0
    assert blocks["lead II alone"]["RBBB"]["recall"] == 0.0
    assert "80.0% / 90.0% (10)" in page_table(res)
