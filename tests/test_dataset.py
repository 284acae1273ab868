"""Dataset build from real records: layout, manifest, report, splits, loading."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ecg_model.core.classes import CLASSES, VF_CLASS
from ecg_model.core.errors import EcgError
from ecg_model.data.dataset import (
    EXTRA_LEAD,
    MANIFEST_COLUMNS,
    NOISE_LEAD,
    PATIENT,
    BuildOptions,
    caps_apply,
    dataset_build,
    dataset_load,
    dataset_name,
    dataset_options,
    lead_first,
    manifest_read,
    record_of,
    sample_signal,
)
from ecg_model.data.render import RenderSpec, image_normalize

from .conftest import DATA, needs_data

SPEC = RenderSpec()


@needs_data
def test_tiny_dataset_layout_manifest_and_report(tiny_dataset):
    man = pd.read_csv(tiny_dataset / "manifest.csv", dtype={"record": str})
    assert tuple(man.columns) == (*MANIFEST_COLUMNS, EXTRA_LEAD, PATIENT)
    assert (man[PATIENT].astype(str) == man["record"]).all()  # one a record
    assert set(man["class"]) == set(CLASSES)  # three records hold all six classes
    for p in man["path"].sample(50, random_state=0):
        assert (tiny_dataset / p).exists()
    files = sorted(
        str(p.relative_to(tiny_dataset)) for p in tiny_dataset.glob("*/*/*.png")
    )
    assert files == sorted(man["path"])
    rep = json.loads((tiny_dataset / "build_report.json").read_text())
    for split in ("train", "test"):
        for c in CLASSES:
            n = int(((man["split"] == split) & (man["class"] == c)).sum())
            assert rep["counts"][split][c] == n
    assert rep["counts"]["train"]["Normal"] == 400  # the cap holds in train ...
    assert rep["counts"]["test"]["Normal"] > 400  # ... and never in test
    assert rep["skipped"]["edge"] >= 1
    pre = json.loads((tiny_dataset / "dataset.json").read_text())["preprocessing"]
    for k in (
        "fs",
        "window_before_s",
        "window_after_s",
        "image_height",
        "image_width",
        "classes",
    ):
        assert k in pre
    img = np.asarray(Image.open(tiny_dataset / man["path"].iat[0]))
    assert img.shape == (SPEC.image_height, SPEC.image_width) and img.dtype == np.uint8


@needs_data
def test_load_from_cache_equals_pngs_and_redraw_is_identity(tiny_dataset):
    ds = dataset_load(tiny_dataset, SPEC)
    assert len(ds.x_train) == len(ds.y_train) == len(ds.meta_train)
    for i in range(0, len(ds.x_test), max(1, len(ds.x_test) // 40)):
        png = np.asarray(Image.open(tiny_dataset / ds.meta_test["path"].iat[i]))
        assert np.array_equal(png, ds.x_test[i])
        # The predictor's normalisation leaves the project's own drawing as it is.
        out, q = image_normalize(png, SPEC)
        assert q.looks_like_ecg
        assert (out != png).mean() < 0.01


@needs_data
def test_patient_split_is_record_disjoint(tmp_path):
    out = tmp_path / "p"
    rep = dataset_build(
        out,
        BuildOptions(
            split="patient",
            records=("mitdb/101", "mitdb/100", "mitdb/102", "vfdb/418", "vfdb/419"),
        ),
        data=DATA,
        workers=2,
    )
    man = manifest_read(out)
    tr = set(man.loc[man["split"] == "train", "record"])
    te = set(man.loc[man["split"] == "test", "record"])
    assert tr == {"101", "418"} and te == {"100", "419"}
    assert "102" not in tr | te  # paced record excluded
    assert rep["records"]["train"] == ["mitdb/101", "vfdb/418"]


@needs_data
def test_top_up_adds_shifted_redraws(tmp_path):
    out = tmp_path / "t"
    rep = dataset_build(
        out,
        BuildOptions(records=("mitdb/100",), min_per_class=60),
        data=DATA,
        workers=1,
    )
    man = manifest_read(out)
    pac = man[
        (man["split"] == "train") & (man["class"] == "Premature Atrial Contraction")
    ]
    shifted = pac["path"].str.contains("_s[+-]", regex=True)
    assert len(pac) == 60 and 0 < shifted.sum() < 60
    assert rep["topped_up"] == man["path"].str.contains("_s[+-]", regex=True).sum()
    # Shifted redraws are of real beats of this class, written as files too.
    assert set(pac.loc[shifted, "sample"]) <= set(pac.loc[~shifted, "sample"])
    assert all((out / p).exists() for p in pac["path"])


def test_plain_image_folder_is_a_dataset(tmp_path):
    from tests.test_render import draw_foreign
    from tests.test_signals import synthetic_ecg

    sig, peaks = synthetic_ecg(SPEC.fs, 20)
    for split in ("train", "test"):
        for c in CLASSES[:2]:
            d = tmp_path / split / c
            d.mkdir(parents=True)
            for k in range(3):
                seg = sig[peaks[3 + k] - SPEC.before : peaks[3 + k] + SPEC.after]
                Image.fromarray(draw_foreign(seg, lw=2)).save(d / f"{k}.png")
    ds = dataset_load(tmp_path, SPEC)
    assert ds.x_train.shape == (6, SPEC.image_height, SPEC.image_width)
    assert sorted(set(ds.y_test)) == [0, 1]


def test_bad_dataset_folders(tmp_path):
    with pytest.raises(EcgError, match="not found"):
        manifest_read(tmp_path / "missing")
    with pytest.raises(EcgError, match="no images"):
        manifest_read(tmp_path)
    with pytest.raises(EcgError, match="data folder not found"):
        dataset_build(tmp_path / "x", data=tmp_path / "nowhere")


def test_caps_apply_is_seeded_and_exact():
    labels = np.array(["Normal"] * 100 + ["Premature Atrial Contraction"] * 10)
    a = caps_apply(labels, {"Normal": 30}, seed=3)
    assert (labels[a] == "Normal").sum() == 30 and (labels[a] != "Normal").sum() == 10
    assert np.array_equal(a, caps_apply(labels, {"Normal": 30}, seed=3))


@needs_data
def test_interrupted_build_keeps_old_dataset(tmp_path, monkeypatch):
    out = tmp_path / "d"
    dataset_build(out, BuildOptions(records=("mitdb/100",)), data=DATA, workers=1)
    before = sorted(p.name for p in out.iterdir())
    import ecg_model.data.dataset as dmod

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(dmod.np, "savez", boom)
    with pytest.raises(EcgError, match="No space left"):
        dataset_build(out, BuildOptions(records=("mitdb/100",)), data=DATA, workers=1)
    assert sorted(p.name for p in out.iterdir()) == before
    assert [p.name for p in tmp_path.iterdir()] == ["d"]  # no temporary folder left
    shutil.rmtree(out)


@needs_data
def test_extra_leads_draw_training_patients_only_at_the_same_beats(tmp_path):
    out = tmp_path / "xl"
    records = ("mitdb/101", "mitdb/100", "vfdb/418")
    rep = dataset_build(
        out,
        BuildOptions(split="patient", records=records, extra_leads=True),
        data=DATA,
        workers=2,
    )
    man = manifest_read(out)
    first = lead_first(man)
    extra = man[~first]
    # Extra leads only for training patients: 100 tests through MLII alone.
    assert set(extra["split"]) == {"train"}
    assert set(extra["record"]) == {"101", "418"}
    assert set(man.loc[man["record"] == "100", EXTRA_LEAD]) == {""}
    # 101's second lead is V1: the same beats, labels and times as its MLII.
    v1 = extra[extra["record"] == "101"]
    assert set(v1[EXTRA_LEAD]) == {"V1"}
    ml = man[first & (man["record"] == "101")]
    assert list(v1["sample"]) == list(ml["sample"])
    assert list(v1["class"]) == list(ml["class"])
    assert rep["extra_leads"]["V1"] == v1["class"].value_counts().to_dict()
    # Each view is its own picture, and loads from the cache like the others.
    ds = dataset_load(out, SPEC)
    i, j = (
        np.flatnonzero(first & (man["record"] == "101").to_numpy())[0],
        np.flatnonzero(~first & (man["record"] == "101").to_numpy())[0],
    )
    assert man["path"][i] != man["path"][j] and man["path"][j].endswith("_V1.png")
    tr = man["split"].to_numpy() == "train"
    a, b = ds.x_train[int(np.sum(tr[:i]))], ds.x_train[int(np.sum(tr[:j]))]
    assert not np.array_equal(a, b)
    # The signal shown beside a picture is the lead it was drawn from.
    t_i, s_i = sample_signal(man.iloc[i], SPEC, DATA)
    t_j, s_j = sample_signal(man.iloc[j], SPEC, DATA)
    assert np.array_equal(t_i, t_j) and not np.allclose(s_i, s_j)
    assert sample_signal(man.iloc[j].replace("V1", "V9"), SPEC, DATA) is None
    # Without the option, or in an older manifest, every row is a first lead.
    with pytest.raises(EcgError, match="split by patient"):
        dataset_build(
            tmp_path / "r", BuildOptions(extra_leads=True, records=records), data=DATA
        )
    assert lead_first(man.drop(columns=EXTRA_LEAD)).all()


@needs_data
def test_noisy_copies_of_training_beats_only(tmp_path):
    from ecg_model.data.signals import noise_make

    out = tmp_path / "nz"
    records = ("mitdb/101", "mitdb/100", "vfdb/418")  # 101, 418 train; 100 tests
    rep = dataset_build(
        out,
        BuildOptions(split="patient", records=records, noise=0.5, seed=4),
        data=DATA,
        workers=2,
    )
    man = manifest_read(out)
    noisy = man[man[EXTRA_LEAD] == NOISE_LEAD]
    clean = man[lead_first(man) & (man["record"] == "101")]
    # Only training patients get noisy copies, of about the asked share of
    # their beats, each labelled as its clean beat is.
    assert set(noisy["record"]) == {"101"} and set(noisy["split"]) == {"train"}
    # VF windows get none (418 trains): noisy VF would teach noise as VF.
    assert (man["record"] == "418").any() and VF_CLASS not in set(noisy["class"])
    assert abs(len(noisy) / len(clean) - 0.5) < 0.05
    same = clean.set_index("sample").loc[noisy["sample"]]
    assert list(same["class"]) == list(noisy["class"])
    assert rep["extra_leads"][NOISE_LEAD] == noisy["class"].value_counts().to_dict()
    assert dataset_options(out)["noise"] == 0.5 and dataset_options(tmp_path) == {}
    # The noisy picture differs from the clean one, and the signal shown beside
    # it is the clean signal plus the build's noise.
    ds = dataset_load(out, SPEC)
    tr = man["split"].to_numpy() == "train"
    j = int(noisy.index[0])
    i = int(clean.index[clean["sample"] == man["sample"][j]][0])
    assert not np.array_equal(
        ds.x_train[int(tr[:i].sum())], ds.x_train[int(tr[:j].sum())]
    )
    _, s_i = sample_signal(man.iloc[i], SPEC, DATA)
    t_j, s_j = sample_signal(man.iloc[j], SPEC, DATA, seed=4)
    rec_noise = s_j - s_i
    assert 0 < np.std(rec_noise) < 10 * np.std(s_i)
    sig = record_of(DATA / "mitdb" / "101", "mitdb", SPEC.fs).sig
    full = noise_make(sig, SPEC.fs, "mitdb/101", 4)
    a = int(man["sample"][j]) + round(t_j[0] * SPEC.fs)  # first sample shown
    assert np.allclose(rec_noise, full[a : a + rec_noise.size], atol=1e-5)
    # A random split cannot hold noisy copies apart from their beats.
    with pytest.raises(EcgError, match="split by patient"):
        BuildOptions(noise=0.3)
    with pytest.raises(EcgError, match="between 0 and 1"):
        BuildOptions(split="patient", noise=1.5)


def test_dataset_name_says_what_differs_from_the_defaults():
    five = ("mitdb", "vfdb", "svdb", "cudb", "cpsc2018")  # the protocol's
    assert dataset_name("random") == "random"
    assert dataset_name("patient", noise=0.3) == "patient-noise30"
    assert dataset_name("patient", five, 128, True) == "patient-all-w128-leads"
    assert dataset_name("patient", (*five, "incartdb")) == "patient-all+incartdb"
    assert dataset_name("patient", ("mitdb", "incartdb")) == "patient-mitdb+incartdb"
