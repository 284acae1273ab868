"""Image-folder datasets as users have them: class folders named otherwise
(plural, abbreviated, any case), mapped and shown, never silently dropped."""

from __future__ import annotations

import shutil

import pytest

from ecg_model.core.classes import CLASSES, class_from_name
from ecg_model.core.errors import EcgError
from ecg_model.data.dataset import folder_classes, folder_notes, manifest_read

from .conftest import ROOT, needs_data

#: The original report's folder names: the PVC folder is plural.
REPORT_NAMES = {
    "Normal": "Normal",
    "Left Bundle Branch Block": "Left Bundle Branch Block",
    "Premature Atrial Contraction": "Premature Atrial Contraction",
    "Premature Ventricular Contraction": "Premature Ventricular Contractions",
    "Right Bundle Branch Block": "Right Bundle Branch Block",
    "Ventricular Fibrillation": "Ventricular Fibrillation",
}


@pytest.mark.parametrize(
    "name,cls",
    [
        ("Premature Ventricular Contractions", "Premature Ventricular Contraction"),
        ("premature_ventricular_contraction", "Premature Ventricular Contraction"),
        ("PVC", "Premature Ventricular Contraction"),
        ("V", "Premature Ventricular Contraction"),
        ("N", "Normal"),
        ("LBBB", "Left Bundle Branch Block"),
        ("L", "Left Bundle Branch Block"),
        ("PAC", "Premature Atrial Contraction"),
        ("APC", "Premature Atrial Contraction"),
        ("A", "Premature Atrial Contraction"),
        ("rbbb", "Right Bundle Branch Block"),
        ("R", "Right Bundle Branch Block"),
        ("VF", "Ventricular Fibrillation"),
        ("VFL", "Ventricular Fibrillation"),
        ("ventricular-fibrillation", "Ventricular Fibrillation"),
        ("Fusion", None),
    ],
)
def test_folder_names_map_to_classes(name, cls):
    assert class_from_name(name) == cls


def _folder(root, tiny_dataset, names: dict[str, str], splits=("train", "test")):
    """An image folder of the tiny build's pictures under other folder names."""
    man = manifest_read(tiny_dataset)
    for s in splits:
        for c in CLASSES:
            rows = man[(man["class"] == c) & (man["split"] == s)].head(12)
            if rows.empty:
                continue
            d = root / s / names[c]
            d.mkdir(parents=True, exist_ok=True)
            for p in rows["path"]:
                shutil.copy(tiny_dataset / p, d / p.rsplit("/", 1)[1])
    return root


@needs_data
def test_the_reports_folder_names_map_every_folder_and_train(tiny_dataset, tmp_path):
    from ecg_model.training.config import TrainConfig
    from ecg_model.training.runfolder import run_create
    from ecg_model.training.train import train_run

    root = _folder(tmp_path / "report", tiny_dataset, REPORT_NAMES)
    mapping = folder_classes(root)
    pvc = "Premature Ventricular Contraction"
    assert mapping["train/Premature Ventricular Contractions"] == pvc
    man = manifest_read(root)
    # Every folder's pictures are read: none is silently dropped.
    n_files = sum(1 for p in root.rglob("*.png"))
    assert len(man) == n_files and (man["class"] == pvc).any()
    notes = folder_notes(root)
    assert any(
        n.startswith("train/Premature Ventricular Contractions -> ") for n in notes
    )
    cfg = TrainConfig(dataset=str(root), epochs=1, batch_size=32, seed=0)
    st = train_run(run_create(cfg, tmp_path / "runs"))
    assert st["state"] == "finished", st


@needs_data
def test_an_unknown_folder_is_an_error_naming_it(tiny_dataset, tmp_path):
    root = _folder(tmp_path / "f", tiny_dataset, {c: c for c in CLASSES})
    (root / "train" / "Fusion").mkdir()
    with pytest.raises(EcgError, match="train/Fusion names no class"):
        manifest_read(root)


@needs_data
def test_a_folder_without_test_gets_a_stratified_split(tiny_dataset, tmp_path):
    names = {c: n for c, n in zip(CLASSES, ("N", "LBBB", "APC", "V", "R", "VFL"))}
    root = _folder(tmp_path / "f", tiny_dataset, names, splits=("train",))
    man = manifest_read(root)
    assert man.attrs["split_made"]
    for c in man["class"].unique():
        part = man[man["class"] == c]
        assert (part["split"] == "test").any() and (part["split"] == "train").any()
    assert any("no test/ folder" in n for n in folder_notes(root))


@needs_data
def test_test_pictures_repeating_training_pictures_are_counted(tiny_dataset, tmp_path):
    root = _folder(tmp_path / "f", tiny_dataset, {c: c for c in CLASSES})
    train_n = next((root / "train" / "Normal").iterdir())
    shutil.copy(train_n, root / "test" / "Normal" / "copy-of-a-training-beat.png")
    man = manifest_read(root)
    assert man.attrs["duplicates"] == 1
    assert any("1 test pictures are byte-identical" in n for n in folder_notes(root))


def test_a_lone_beat_cannot_show_prematurity_nor_a_short_window_vf():
    from ecg_model.inference.span import Span, lone_beat_caveat

    pac, vf = "Premature Atrial Contraction", "Ventricular Fibrillation"
    assert "cannot be judged from a single beat" in lone_beat_caveat(
        pac, Span(0.8, "one beat", beats=1)
    )
    assert lone_beat_caveat(pac, Span(2.4, "window", beats=3)) == ""
    # A lone beat read as Normal may be a PAC: it says so.
    assert "whether it came early (a PAC) cannot be judged" in lone_beat_caveat(
        "Normal", Span(0.8, "one beat", beats=1)
    )
    assert lone_beat_caveat("Normal", Span(2.4, "window", beats=3)) == ""
    assert "under 1 s" in lone_beat_caveat(vf, Span(0.6, "given", beats=0))
    assert lone_beat_caveat(vf, Span(2.4, "window", beats=0)) == ""
    # A block's side is read from V1 and V6: one beat of one lead says so.
    lbbb = "Left Bundle Branch Block"
    lone = lone_beat_caveat(lbbb, Span(0.8, "one beat", beats=1))
    assert "left or right cannot be told" in lone
    # An aberrantly conducted PAC has a block's shape: its timing is unknown.
    assert "whether it came early" in lone and "cannot be judged" in lone
    assert lone_beat_caveat(lbbb, Span(2.4, "window", beats=3)) == ""


@pytest.mark.parametrize(
    "cls, words",
    [
        ("Premature Atrial Contraction", "prematurity"),
        ("Left Bundle Branch Block", "left or right cannot be told"),
    ],
)
def test_a_lone_beat_called_pac_or_a_block_is_not_a_confident_answer(
    default_model, monkeypatch, cls, words
):
    import numpy as np

    from ecg_model.inference.predict import Predictor

    from .test_predict import beat_picture

    p = Predictor(default_model)
    one = np.zeros((1, len(CLASSES)), np.float32)
    one[0, CLASSES.index(cls)] = 0.97  # sure, it says
    monkeypatch.setattr(p, "predict_arrays", lambda imgs: one)
    # A crop of one beat: the middle of the beat picture.
    pic = beat_picture()
    h, w = pic.shape[:2]
    crop = pic[:, int(0.35 * w) : int(0.65 * w)]
    res = p.predict_picture(crop, "crop.png", duration_s=0.7)
    assert res.span.beats == 1, res.span
    assert res.uncertain and words in res.reason
    assert res.to_json()["reason"] == res.reason


@needs_data
def test_the_train_page_shows_a_folders_pictures_after_normalisation(
    tiny_dataset, tmp_path, monkeypatch
):
    import numpy as np
    from streamlit.testing.v1 import AppTest

    from ecg_model.data.dataset import dataset_preview
    from ecg_model.data.render import RenderSpec

    (tmp_path / "art" / "datasets").mkdir(parents=True)
    _folder(tmp_path / "art" / "datasets" / "report", tiny_dataset, REPORT_NAMES)
    shown = dataset_preview(tmp_path / "art" / "datasets" / "report", RenderSpec())
    assert {c for c, *_ in shown} == set(CLASSES)  # one of each class
    for _, _, pic, img in shown:
        assert pic.ndim == 3 and img.shape == (64, 256) and img.dtype == np.uint8
    monkeypatch.setenv("ECG_ARTIFACTS_DIR", str(tmp_path / "art"))
    page = str(ROOT / "pages" / "train.py")
    at = AppTest.from_file(page, default_timeout=120).run()
    at.selectbox(key="train_preview_dataset").set_value("report").run()
    assert not at.exception
    # A picture and its model input for each of the six classes.
    assert len(at.get("image")) == 2 * len(CLASSES)


@needs_data
def test_models_are_compared_side_by_side_on_a_folders_test_part(
    tiny_dataset, tiny_run, tmp_path
):
    from ecg_model.styles import LONE_BEAT_CLASSES, folder_compare

    root = _folder(tmp_path / "report", tiny_dataset, REPORT_NAMES)
    rep = folder_compare(root, [tiny_run])
    res = rep["models"][str(tiny_run)]
    assert set(res) == {"predict", "as trained"} and rep["n_test"] > 0
    for m in res.values():
        assert set(m["per_class_recall"]) == set(CLASSES)
        lone = [m["per_class_recall"][c] for c in LONE_BEAT_CLASSES]
        assert abs(m["macro_recall_lone"] - sum(lone) / len(lone)) < 1e-9
    assert "Premature Atrial Contraction" not in LONE_BEAT_CLASSES
