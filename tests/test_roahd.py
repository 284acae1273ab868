"""The roahd adapter (issue 25, part 1): one registered beat a subject, read
as a record of one beat with blank paper around it."""

from __future__ import annotations

import numpy as np
import pytest

from ecg_model.core.errors import EcgError

from .conftest import DATA

ROAHD = DATA / "roahd"
needs_roahd = pytest.mark.skipif(
    not (ROAHD / "mfD_LBBB.rda").exists(),
    reason=f"roahd beats not found at {ROAHD} (set ECG_DATA_DIR)",
)


@needs_roahd
def test_every_subject_is_a_record_and_the_test_subjects_are_fixed():
    from ecg_model.data.databases import DATABASES
    from ecg_model.data.databases.roahd import TEST_RECORDS
    from ecg_model.data.dataset import database_records

    es = database_records(DATABASES["roahd"], ROAHD)
    assert len(es) == 250 and len({e.patient for e in es}) == 250
    test = [e.name for e in es if e.split == "test"]
    assert sorted(test) == sorted(TEST_RECORDS)
    assert [
        sum(n.startswith(g) for n in test) for g in ("LBBB", "RBBB", "healthy")
    ] == [
        10,
        10,
        30,
    ]
    # The README's one identical pair of healthy rows: the copy is left out.
    left_out = [e.name for e in es if e.split == ""]
    assert len(left_out) == 1 and left_out[0].startswith("healthy")


@needs_roahd
def test_a_subject_reads_as_one_beat_in_mv_with_padding_marked():
    from ecg_model.data.dataset import record_of

    fs = 250.0
    rec = record_of(ROAHD / "mfD_RBBB" / "03", "roahd", fs, all_leads=True)
    a, b = rec.valid
    assert b - a == 256  # 1024 samples at 1 kHz -> 1.024 s at 250 Hz
    assert rec.ann_symbol == ["R"] and len(rec.ann_sample) == 1
    r_s = (rec.ann_sample[0] - a) / fs
    assert 0.3 < r_s < 0.5  # the R peak sits near 0.4 s of the beat
    assert 0.2 < np.ptp(rec.sig) < 5.0  # mV, not microvolts
    assert sorted(rec.others) == ["I", "V1", "V2", "V3", "V4", "V5", "V6"]
    # The padding repeats the end values: no wave is invented.
    assert np.ptp(rec.sig[:a]) == 0 and np.ptp(rec.sig[b:]) == 0


@needs_roahd
def test_a_lone_beat_is_drawn_with_blank_paper_around_it(tmp_path):
    import json

    from ecg_model.data.dataset import BuildOptions, dataset_build, dataset_load
    from ecg_model.data.render import RenderSpec

    out = tmp_path / "ds"
    rep = dataset_build(
        out,
        BuildOptions(
            split="patient",
            databases=("roahd",),
            records=("roahd/LBBB-00", "roahd/healthy-02"),
        ),
        data=DATA,
        workers=1,
    )
    assert rep["counts"]["train"]["Left Bundle Branch Block"] == 1
    assert rep["counts"]["test"]["Normal"] == 1
    ds = dataset_load(out, RenderSpec())
    img = np.asarray(ds.x_train[:1])[0]  # (64, 256)
    ink = (np.asarray(img) < 128).any(axis=0)  # (256,) columns with trace
    cols = np.flatnonzero(ink)
    # 1.024 s of beat in a 2.4 s window: the trace takes under half the width,
    # and both edges are blank paper.
    assert 0.3 < (cols[-1] - cols[0]) / ink.size < 0.5
    assert not ink[:40].any() and not ink[-40:].any()
    assert json.loads((out / "dataset.json").read_text())["options"]["databases"] == [
        "roahd"
    ]


def test_a_path_that_is_not_a_subject_is_refused(tmp_path):
    from ecg_model.data.databases.roahd import roahd_read

    with pytest.raises(EcgError, match="not a roahd subject"):
        roahd_read(tmp_path / "mfD_other" / "x", 250.0)


def test_download_says_where_roahd_comes_from(tmp_path):
    from ecg_model.data.databases.roahd import roahd_fetch

    with pytest.raises(EcgError, match="not on PhysioNet.*R package"):
        roahd_fetch("roahd", tmp_path)


def test_cinc_recordings_give_beats_of_one_class_by_their_snomed_codes():
    from ecg_model.data.databases.cinc import cinc_class

    assert cinc_class(("59118001", "426177001")) == ("RBBB", "")  # RBBB, brady
    assert cinc_class(("713427006", "428750005")) == ("RBBB", "")  # CRBBB, ST-T
    assert cinc_class(("164909002",)) == ("LBBB", "")
    assert cinc_class(("426783006",)) == ("Normal", "")
    # A block with AF, both blocks, an incomplete block or any other finding
    # beside a sinus rhythm: no beats, with the reason.
    assert cinc_class(("59118001", "164889003"))[0] == ""
    assert cinc_class(("59118001", "164909002")) == ("", "recording LBBB+RBBB")
    assert cinc_class(("713426002", "426783006"))[0] == ""
    assert "other findings" in cinc_class(("426783006", "251146004"))[1]


@pytest.mark.skipif(
    not (DATA / "cinc-samples" / "E07510.hea").exists(),
    reason=f"cinc-samples not found at {DATA} (set ECG_DATA_DIR)",
)
def test_a_cinc_rbbb_recording_gives_on_time_rbbb_beats_and_ptb_is_left_out():
    from ecg_model.data.databases import DATABASES
    from ecg_model.data.dataset import database_records, record_labelled, record_of
    from ecg_model.data.render import RenderSpec

    db, spec = DATABASES["cinc-samples"], RenderSpec()
    rec = record_of(DATA / "cinc-samples" / "E07510", db.name, spec.fs)
    centres, _, labels, _ = record_labelled(rec, db, spec)
    assert rec.lead == "II" and len(centres) >= 4
    assert set(labels) == {"Right Bundle Branch Block"}
    splits = {e.name: e.split for e in database_records(db, DATA / "cinc-samples")}
    assert splits["S0002"] == "" and splits["E07510"] == "test"
    assert splits["Q0033"] == "train"  # the one LBBB recording trains
