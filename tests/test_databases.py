"""Database adapters: each says its lead, labels and test patients."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import wfdb

from ecg_model import cli
from ecg_model.core.errors import EcgError
from ecg_model.data.databases import (
    CPSC2018,
    CUDB,
    DATABASES,
    DEFAULT_DATABASES,
    INCARTDB,
    MITDB,
    PTBXL,
    SVDB,
    VFDB,
    Database,
)
from ecg_model.data.databases.mitdb import DS1, DS2, PACED_RECORDS
from ecg_model.data.databases.ptbxl import TABLE, ptbxl_codes, ptbxl_index
from ecg_model.data.databases.vfdb import TEST_RECORDS
from ecg_model.data.dataset import (
    BuildOptions,
    dataset_build,
    dataset_name,
    manifest_read,
    patient_ids,
    record_labelled,
    record_path,
    sample_signal,
    split_table,
)
from ecg_model.data.render import RenderSpec
from ecg_model.data.signals import record_read

from .conftest import DATA, needs_data


def test_registry_lists_each_database_once_in_build_order():
    assert list(DATABASES) == [
        "mitdb",
        "vfdb",
        "svdb",
        "cudb",
        "cpsc2018",
        "incartdb",
        "ptbxl",
        "roahd",
        "cinc-samples",
    ]
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
            missing = [
                r
                for r in db.test_records
                if not db.record_exists(record_path(DATA, db.name, r))
            ]
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


#: A PTB-XL table as the database writes it: ecg_id, patient_id (a float),
#: scp_codes (a dict's repr), strat_fold, the two file names (and more columns).
PTBXL_ROWS = [
    # ecg_id, patient_id, scp_codes, strat_fold
    (1, "100.0", "{'NORM': 100.0, 'SR': 0.0}", 3),
    (2, "200.0", "{'CLBBB': 100.0, 'SR': 0.0}", 10),
    (3, "200.0", "{'CRBBB': 100.0, 'LAFB': 100.0, 'SR': 0.0}", 10),
    (4, "300.0", "{'CLBBB': 100.0, 'PVC': 100.0}", 1),  # ectopy: not read
    (5, "400.0", "{'IMI': 50.0, 'LVH': 100.0}", 2),  # none of the classes
    (6, "500.0", "{'NORM': 80.0}", 5),  # usable, but its files are not here
]


def _ptbxl_folder(root, write_records: bool = True):
    """A PTB-XL folder: its table, and 500 Hz twelve-lead records 1-3 (lead
    II upright, the others downward) in ``records500/00000/``; 4-6 are in the
    table only (a build must not need them)."""
    import csv

    fs = PTBXL.fs
    folder = root / "ptbxl"
    (folder / "records500" / "00000").mkdir(parents=True)
    with open(folder / TABLE, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["ecg_id", "patient_id", "age", "scp_codes", "strat_fold"]
            + ["filename_lr", "filename_hr"]
        )
        for eid, pid, codes, fold in PTBXL_ROWS:
            w.writerow(
                [eid, pid, 60, codes, fold]
                + [f"records100/00000/{eid:05d}_lr", f"records500/00000/{eid:05d}_hr"]
            )
    if not write_records:
        return folder
    from .test_signals import synthetic_ecg

    qrs, _ = synthetic_ecg(fs, 10.0, hr_bpm=75)  # 10 s, 1 mV spikes
    names = ["I", "II", "III", "AVR", "AVL", "AVF"] + [f"V{i}" for i in range(1, 7)]
    sig = np.stack([qrs if n == "II" else -qrs for n in names], axis=1)
    for eid in (1, 2, 3):
        wfdb.wrsamp(
            f"{eid:05d}_hr",
            fs,
            ["mV"] * 12,
            names,
            p_signal=sig,
            fmt=["16"] * 12,
            write_dir=str(folder / "records500" / "00000"),
        )
    return folder


def test_ptbxl_reads_its_table_fold_ten_tests_and_patients_group(tmp_path):
    """PTB-XL's labels, splits and patients come from its table: a recording
    naming one class gives on-time beats of it, read from the 500 Hz lead II;
    one naming ectopy or no class is counted and never read; fold 10 tests; two
    records of one patient are one patient."""
    assert ptbxl_codes("{'NORM': 100.0, 'SR': 0.0}") == ("NORM", "SR")
    assert ptbxl_codes("") == () and ptbxl_codes("not a dict") == ()
    folder = _ptbxl_folder(tmp_path / "data")
    idx = {e.name: e for e in ptbxl_index(folder)}
    assert idx["00002_hr"].path == "records500/00000/00002_hr"
    assert [idx[f"{i:05d}_hr"].split for i in (1, 2, 3)] == ["train", "test", "test"]
    assert idx["00002_hr"].patient == idx["00003_hr"].patient == "200"
    assert PTBXL.recording_class(idx["00004_hr"].labels) == ("", "recording PVC")
    assert PTBXL.recording_class(idx["00003_hr"].labels)[0] == "CRBBB"
    # A damaged table is a clear error naming the line.
    bad = tmp_path / "bad"
    bad.mkdir()
    text = (folder / TABLE).read_text().splitlines()
    (bad / TABLE).write_text("\n".join([text[0], text[1].replace(",3,", ",,")]))
    with pytest.raises(EcgError, match="line 2: a record needs"):
        ptbxl_index(bad)
    with pytest.raises(EcgError, match="label table is missing"):
        ptbxl_index(tmp_path)

    rep = dataset_build(
        tmp_path / "ds",
        BuildOptions(split="patient", databases=("ptbxl",)),
        data=tmp_path / "data",
        workers=1,
    )
    man = manifest_read(tmp_path / "ds")
    by_rec = man.groupby("record")["class"].agg(set).to_dict()
    assert by_rec == {
        "00001_hr": {"Normal"},
        "00002_hr": {"Left Bundle Branch Block"},
        "00003_hr": {"Right Bundle Branch Block"},
    }
    assert man.groupby("record")["split"].agg(set).to_dict() == {
        "00001_hr": {"train"},
        "00002_hr": {"test"},
        "00003_hr": {"test"},
    }
    # 10 s at 75 bpm: about 12 beats, less the first and those at the edges.
    assert all(8 <= n <= 12 for n in man.groupby("record").size())
    assert rep["skipped"]["recording PVC"] == 1
    assert rep["skipped"]["recording with none of NORM/CLBBB/CRBBB"] == 1
    # A record the table lists but the folder lacks (a partial download) is
    # counted, and the build goes on.
    assert rep["skipped"]["record file missing"] == 1
    # One patient, two records: one unit for intervals and grouped splits.
    assert len(set(patient_ids(man))) == 2
    assert set(patient_ids(man[man["split"] == "test"])) == {"ptbxl/200"}
    tab = split_table(man)
    assert dict(zip(tab["record"], tab["split"])) == {
        "00001_hr": "train",
        "00002_hr": "test",
        "00003_hr": "test",
    }
    # `splits` writes that table from a patient build, and refuses another
    # build (a tabled database's splits are only in a patient build's rows).
    out = tmp_path / "patient.csv"
    assert (
        cli.main(["splits", "--dataset", str(tmp_path / "ds"), "--out", str(out)]) == 0
    )
    assert pd.read_csv(out, dtype={"record": str}).equals(tab)
    (tmp_path / "rnd").mkdir()
    (tmp_path / "rnd" / "dataset.json").write_text('{"options": {"split": "random"}}')
    assert cli.main(["splits", "--dataset", str(tmp_path / "rnd")]) == 2
    # The record behind a picture is found through the table, and it is the
    # upright lead II.
    assert record_path(tmp_path / "data", "ptbxl", "00002_hr") == (
        folder / "records500" / "00000" / "00002_hr"
    )
    row = man[man["record"] == "00002_hr"].iloc[0]
    t, mv = sample_signal(row, RenderSpec(), data=tmp_path / "data")
    assert mv[np.abs(t) < 0.02].max() > 0.5
    # A build with the five databases and PTB-XL says so in its name.
    five = ("mitdb", "vfdb", "svdb", "cudb", "cpsc2018")
    assert dataset_name("patient", (*five, "ptbxl")) == "patient-all+ptbxl"


def test_ptbxl_download_fetches_the_table_then_only_usable_records(
    tmp_path, monkeypatch
):
    """``download --databases ptbxl`` asks PhysioNet for the tables, then for
    the 500 Hz files of the recordings a build can use (never the 100 Hz ones,
    nor those a build would skip)."""
    from ecg_model.data.signals import database_download

    src = _ptbxl_folder(tmp_path / "physionet", write_records=False)
    asked = []

    def dl_files(db, dl_dir, files, keep_subdirs=True, overwrite=False):
        asked.append((db, list(files)))
        if TABLE in files:  # PhysioNet's copy of the table lands in dl_dir
            (tmp_path / "dl" / "ptbxl").mkdir(parents=True, exist_ok=True)
            (tmp_path / "dl" / "ptbxl" / TABLE).write_text((src / TABLE).read_text())

    monkeypatch.setattr(wfdb, "dl_files", dl_files)
    database_download("ptbxl", tmp_path / "dl", PTBXL.physionet, PTBXL.fetch)
    assert asked[0] == ("ptb-xl", [TABLE, "scp_statements.csv"])
    assert asked[1][0] == "ptb-xl"
    assert sorted(asked[1][1]) == sorted(
        f"records500/00000/{i:05d}_hr.{x}" for i in (1, 2, 3, 6) for x in ("hea", "dat")
    )
