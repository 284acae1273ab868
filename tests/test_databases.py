"""Database adapters: each says its lead, labels and test patients."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import wfdb

from ecg_model.data.databases import (
    CPSC2018,
    CUDB,
    DATABASES,
    DEFAULT_DATABASES,
    INCARTDB,
    MITDB,
    SVDB,
    VFDB,
    Database,
)
from ecg_model.data.databases.mitdb import DS1, DS2, PACED_RECORDS
from ecg_model.data.databases.vfdb import TEST_RECORDS
from ecg_model.data.dataset import (
    BuildOptions,
    dataset_build,
    manifest_read,
    record_labelled,
)
from ecg_model.data.render import RenderSpec
from ecg_model.data.signals import record_read

from .conftest import DATA, needs_data


def test_registry_lists_each_database_once_in_build_order():
    assert list(DATABASES) == ["mitdb", "vfdb", "svdb", "cudb", "cpsc2018", "incartdb"]
    assert all(DATABASES[n].name == n for n in DATABASES)
    assert DEFAULT_DATABASES == ("mitdb", "vfdb")  # the original report's


def test_mitdb_patient_split_is_de_chazal():
    assert {MITDB.patient_split(r) for r in DS1} == {"train"}
    assert {MITDB.patient_split(r) for r in DS2} == {"test"}
    assert {MITDB.patient_split(r) for r in PACED_RECORDS} == {""}
    assert MITDB.leads == ("MLII",) and MITDB.labels == "beats"


def test_vfdb_trains_on_every_record_but_its_test_patients():
    assert {VFDB.patient_split(r) for r in TEST_RECORDS} == {"test"}
    assert VFDB.patient_split("418") == "train"
    assert VFDB.labels == "vf_episodes"


def test_an_adapter_with_unknown_labels_is_refused():
    with pytest.raises(ValueError, match="labels must be one of"):
        Database("x", "X", 100.0, (), "rhythm")


@needs_data
def test_record_folders_match_the_adapters_test_patients():
    # Every test patient named by an adapter is a record of the shared data.
    for db in DATABASES.values():
        folder = DATA / db.name
        if folder.is_dir():
            missing = [r for r in db.test_records if not (folder / f"{r}.hea").exists()]
            assert not missing, f"{db.name}: {missing}"


@needs_data
def test_svdb_beats_map_s_to_the_pac_class():
    spec = RenderSpec()
    rec = record_read(DATA / "svdb" / "800", fs=spec.fs, leads=SVDB.leads)
    assert rec.lead == "ECG1"
    centres, symbols, labels, skipped = record_labelled(rec, SVDB, spec)
    assert set(symbols) <= {"N", "S", "V"} and len(centres) > 1000
    assert {s: lab for s, lab in zip(symbols, labels)}.get("S", "") in (
        "",
        "Premature Atrial Contraction",
    )


def _qrs_ms(sig: np.ndarray, centres: np.ndarray, fs: float) -> float:
    """QRS duration of the median beat, ms: the span around the R wave (within
    150 ms) where the slope exceeds 15% of its largest value."""
    h = int(0.15 * fs)
    beats = np.stack([sig[c - h : c + h] for c in centres[:2000]])  # (n, 2h)
    slope = np.abs(np.diff(np.median(beats, axis=0)))
    steep = np.flatnonzero(slope > 0.15 * slope.max())
    return (steep[-1] - steep[0] + 1) * 1000 / fs


@needs_data
def test_svdb_wide_qrs_records_lose_their_n_beats_only():
    spec = RenderSpec()
    # Read on training patients only: the test part keeps its labels.
    assert {SVDB.patient_split(r) for r in SVDB.wide_qrs_records} == {"train"}
    for name, wide in (("857", True), ("806", False)):
        rec = record_read(DATA / "svdb" / name, fs=spec.fs, leads=SVDB.leads)
        as_given = dataclasses.replace(SVDB, wide_qrs_records=())
        c_all, _, l_all, _ = record_labelled(rec, as_given, spec)
        _, _, labels, skipped = record_labelled(rec, SVDB, spec)
        normal = c_all[np.asarray(l_all) == "Normal"]
        # The listed record conducts wide (a block svdb's codes cannot name);
        # a narrow one keeps every beat.
        assert (_qrs_ms(rec.sig, normal, spec.fs) >= 120) == wide
        if wide:
            assert skipped["N with wide QRS"] == normal.size > 1000
            assert labels == [x for x in l_all if x != "Normal"]
            assert len(labels) > 10  # its PACs and PVCs stay
        else:
            assert labels == l_all and "N with wide QRS" not in skipped


@needs_data
def test_cudb_episodes_run_from_bracket_to_bracket():
    spec = RenderSpec()
    rec = record_read(DATA / "cudb" / "cu01", fs=spec.fs, leads=CUDB.leads)
    centres, _, labels, _ = record_labelled(rec, CUDB, spec)
    assert len(centres) > 10 and set(labels) == {"Ventricular Fibrillation"}
    marks = [s for s, sym in zip(rec.ann_sample, rec.ann_symbol) if sym in "[]"]
    # Every window lies between the first [ and the last ] (or the record's end).
    assert centres.min() - spec.before >= marks[0]


@needs_data
def test_cpsc2018_recordings_give_their_one_class_or_none():
    if not (DATA / "cpsc2018" / "A0006.hea").exists():
        pytest.skip("cpsc2018 not in the data folder")
    spec = RenderSpec()

    def read(name: str):
        return record_read(
            DATA / "cpsc2018" / name,
            fs=spec.fs,
            leads=CPSC2018.leads,
            annotated=CPSC2018.annotated,
        )

    rec = read("A0006")  # RBBB
    assert rec.lead == "II" and any("RBBB" in c for c in rec.comments)
    centres, symbols, labels, skipped = record_labelled(rec, CPSC2018, spec)
    assert len(centres) >= 3 and set(labels) == {"Right Bundle Branch Block"}
    # Beats about one RR apart (on time), inside the recording.
    assert np.all(np.diff(centres) > 0.3 * spec.fs)
    centres, _, labels, skipped = record_labelled(read("A0004"), CPSC2018, spec)
    assert len(centres) == 0 and skipped == {"recording AF": 1}
    assert CPSC2018.patient_split("A0044") == "test"
    assert CPSC2018.patient_split("A0018") == "train"


def test_split_file_is_the_adapters_split_record_disjoint_and_covers_every_class():
    """``artifacts/splits/patient.csv`` (``python -m ecg_model splits``) is the
    new-patient protocol on record: it must agree with the adapters, name each
    record once, and give every class several test patients."""
    import pandas as pd

    from ecg_model.core.classes import CLASSES
    from ecg_model.data.databases import DATABASES

    from .conftest import ROOT

    f = ROOT / "artifacts" / "splits" / "patient.csv"
    tab = pd.read_csv(f, dtype={"record": str})
    assert not tab.duplicated(["database", "record"]).any()
    for db, rec, split in zip(tab["database"], tab["record"], tab["split"]):
        assert DATABASES[db].patient_split(rec) == split, (db, rec)
    test = tab[tab["split"] == "test"]
    for name, adapter in DATABASES.items():
        # Every test patient the adapter names that gives images is listed.
        listed = set(test.loc[test["database"] == name, "record"])
        assert listed <= set(adapter.test_records)
        assert len(listed) >= min(2, len(adapter.test_records)), name
    for c in CLASSES:
        assert (test[c] > 0).sum() >= 4, c  # several test patients a class
        assert (tab.loc[tab["split"] == "train", c] > 0).sum() >= 2, c


def test_incartdb_reads_lead_ii_maps_beat_codes_and_trains_only(tmp_path):
    """A record written as INCART's are (twelve leads, 257 Hz, PhysioNet beat
    codes in ``atr``) read through the adapter, and built."""
    fs = INCARTDB.fs
    t = np.arange(int(30 * fs)) / fs  # 30 s
    peaks = np.arange(1.5, 28.6, 0.8)  # beat times, s (75 bpm)
    qrs = sum(np.exp(-0.5 * ((t - p) / 0.012) ** 2) for p in peaks)  # mV
    names = ["I", "II", "III", "AVR", "AVL", "AVF"] + [f"V{i}" for i in range(1, 7)]
    # Lead II is the only one drawn downwards, so it can be told from the rest.
    sig = np.stack([-qrs if n == "II" else 0.5 * qrs for n in names], axis=1)
    folder = tmp_path / "data" / "incartdb"
    folder.mkdir(parents=True)
    wfdb.wrsamp(
        "I01",
        fs,
        ["mV"] * 12,
        names,
        p_signal=sig,
        fmt=["16"] * 12,
        write_dir=str(folder),
    )
    symbols = ["N", "R", "V", "A", "L", "F"] * 6  # F (fusion): not a class
    samples = np.round(peaks * fs).astype(np.int64)
    wfdb.wrann("I01", "atr", samples, symbols[: samples.size], write_dir=str(folder))

    spec = RenderSpec()
    rec = record_read(folder / "I01", fs=spec.fs, leads=INCARTDB.leads)
    assert rec.lead == "II" and rec.fs == spec.fs
    centres, syms, labels, skipped = record_labelled(rec, INCARTDB, spec)
    assert rec.sig[centres].mean() < -0.5  # the downward lead, read at its beats
    # Beat times keep their place through 257 -> 250 Hz (within one sample).
    kept = samples[[s != "F" for s in symbols[: samples.size]]]
    assert np.abs(centres - kept * spec.fs / fs).max() <= 1
    assert set(labels) == {
        "Normal",
        "Right Bundle Branch Block",
        "Premature Ventricular Contraction",
        "Premature Atrial Contraction",
        "Left Bundle Branch Block",
    }
    assert skipped["symbol F"] == symbols[: samples.size].count("F")
    # Every record trains, on the patient split too; a database asked for but
    # not in the data folder is named in the build report.
    assert INCARTDB.patient_split("I01") == "train" and not INCARTDB.test_records
    rep = dataset_build(
        tmp_path / "ds",
        BuildOptions(split="patient", databases=("mitdb", "incartdb")),
        data=tmp_path / "data",
        workers=1,
    )
    man = manifest_read(tmp_path / "ds")
    assert set(man["split"]) == {"train"} and set(man["database"]) == {"incartdb"}
    assert len(man) == len(labels) and rep["missing_databases"] == ["mitdb"]
