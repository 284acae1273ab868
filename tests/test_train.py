"""Training runs: round trip, status, cancellation, crash marking, mirrored strategy."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecg_model.core.classes import CLASSES
from ecg_model.core.errors import EcgError
from ecg_model.data.render import RenderSpec
from ecg_model.training.config import TrainConfig
from ecg_model.training.runfolder import run_cancel, run_create, status_read
from ecg_model.training.train import (
    class_weights,
    tf_dataset,
    train_run,
    val_split,
)

from .conftest import ROOT, needs_data
from .test_signals import synthetic_ecg

RUN_FILES = (
    "config.json",
    "preprocessing.json",
    "status.json",
    "history.csv",
    "model.keras",
    "metrics.json",
    "confusion_matrix.csv",
    "test_predictions.csv",
)


@needs_data
def test_run_folder_round_trip(tiny_run, tiny_dataset):
    for f in RUN_FILES:
        assert (tiny_run / f).exists(), f
    assert not list(tiny_run.glob("*.tmp*")) and not list(tiny_run.glob(".*"))
    st = status_read(tiny_run)
    assert (
        st["state"] == "finished" and st["epoch"] == 1 and st["batch"] == st["batches"]
    )
    cfg = TrainConfig.from_json(json.loads((tiny_run / "config.json").read_text()))
    assert cfg.epochs == 1 and cfg.dataset == str(tiny_dataset)
    hist = pd.read_csv(tiny_run / "history.csv")
    assert list(hist["epoch"]) == [1]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(hist.columns)
    m = json.loads((tiny_run / "metrics.json").read_text())
    assert 0 <= m["accuracy"] <= 1 and m["ci"]["accuracy"][0] <= m["accuracy"]
    assert set(m["per_class"]) == set(CLASSES)
    # The baseline predicts the training part's majority class for every beat.
    b = m["baseline"]
    assert b["accuracy"] == pytest.approx(
        m["per_class"][b["predicts"]]["support"] / m["n"]
    )
    cm = pd.read_csv(tiny_run / "confusion_matrix.csv", index_col=0)
    assert list(cm.columns) == list(CLASSES) and cm.to_numpy().sum() == m["n"]
    pred = pd.read_csv(tiny_run / "test_predictions.csv")
    assert len(pred) == m["n"]
    assert np.allclose(pred[list(CLASSES)].sum(axis=1), 1, atol=1e-3)
    # The run folder restores the model and its preprocessing.
    from ecg_model.inference.predict import Predictor

    p = Predictor(tiny_run)
    assert p.spec == RenderSpec() and p.classes == CLASSES


@needs_data
def test_stop_file_cancels_within_a_batch(tiny_dataset, tmp_path):
    run = run_create(
        TrainConfig(dataset=str(tiny_dataset), epochs=3, batch_size=32), tmp_path
    )
    run_cancel(run)
    st = train_run(run)
    assert st["state"] == "cancelled"
    assert st["epoch"] == 1 and st["batch"] == 1  # stopped after the first batch
    assert not (run / "metrics.json").exists()


def test_crash_is_marked_failed(tmp_path):
    run = run_create(
        TrainConfig(dataset=str(tmp_path / "no-such-dataset"), epochs=1), tmp_path
    )
    st = train_run(run)
    assert st["state"] == "failed"
    assert "dataset folder not found" in st["error"]
    assert (run / "error.log").exists() and not (run / "metrics.json").exists()


@needs_data
def test_crash_during_evaluation_leaves_no_metrics(tiny_dataset, tmp_path, monkeypatch):
    import ecg_model.training.train as tmod

    def boom(*a, **k):
        raise MemoryError("simulated")

    monkeypatch.setattr(tmod, "model_predict", boom)
    run = run_create(
        TrainConfig(dataset=str(tiny_dataset), epochs=1, batch_size=128), tmp_path
    )
    st = train_run(run)
    assert st["state"] == "failed" and st["error"].startswith("MemoryError")
    assert (run / "model.keras").exists() and not (run / "metrics.json").exists()


def test_class_weights():
    y = np.array([0] * 90 + [2] * 10)
    w = class_weights(y, "balanced")
    assert w[2] / w[0] == pytest.approx(9.0)
    assert w[y].mean() == pytest.approx(1.0)
    assert class_weights(y, "sqrt")[2] / class_weights(y, "sqrt")[0] == pytest.approx(
        3.0
    )
    assert np.all(class_weights(y, "none") == 1)


def _augmented(x: np.ndarray, **kw):
    """Every picture of ``x`` once, augmented, in one batch (label 0)."""
    n = len(x)
    return tf_dataset(
        x, np.zeros(n, int), None, n, shuffle=False, augment=True, seed=0, **kw
    )


def test_edge_blank_augmentation_blanks_edges_never_the_beat():
    # All-ink pictures: any blank column was blanked by the augmentation.
    x = np.zeros((512, 64, 128), np.uint8)
    ds = _augmented(x, edge_blank=0.3)
    img = next(iter(ds))[0].numpy()[..., 0]  # (b, h, w)
    blank = (img == 255).all(axis=1)  # (b, w)
    # The +-4 px shift leaves at most 4 blank columns; more is a blanked edge.
    hit = blank.sum(axis=1) > 4
    assert 0.2 < hit.mean() < 0.4
    left, right = blank[:, :8].all(axis=1), blank[:, -8:].all(axis=1)
    # One side, the other, or both (a crop of the beat): about a third each.
    both = (hit & left & right).mean() / hit.mean()
    assert 0.15 < both < 0.5
    assert (hit & left & ~right).any() and (hit & right & ~left).any()
    assert not blank[:, 60:68].any()  # the beat's columns keep their ink
    # Wider pictures shift and keep in proportion: 8 px and 12 px at 256.
    x2 = np.zeros((256, 64, 256), np.uint8)
    ds = _augmented(x2, edge_blank=1)
    img = next(iter(ds))[0].numpy()[..., 0]
    assert not (img[:, :, 128 - 12 + 8 : 128 + 12 - 8] == 255).all(axis=1).any()
    # Off by default: only the shift's few columns.
    ds = _augmented(x)
    img = next(iter(ds))[0].numpy()[..., 0]
    assert ((img == 255).all(axis=1).sum(axis=1) <= 4).all()


def test_flip_augmentation_turns_a_share_of_pictures_upside_down():
    x = np.full((512, 64, 128), 255, np.uint8)
    x[:, 5, :] = 0  # a flat trace near the top
    ds = _augmented(x, flip=0.3)
    img = next(iter(ds))[0].numpy()[..., 0]  # (b, h, w)
    top, bottom = (img[:, 5] == 0).any(axis=1), (img[:, 58] == 0).any(axis=1)
    assert (top ^ bottom).all()  # each picture is one or the other, whole
    assert 0.2 < bottom.mean() < 0.4
    with pytest.raises(ValueError, match="flip"):
        TrainConfig(flip=2)


def test_config_validation():
    with pytest.raises(ValueError, match="model must be"):
        TrainConfig(model="nope")
    with pytest.raises(ValueError, match="unknown classes"):
        TrainConfig(class_caps={"Nrmal": 3})
    with pytest.raises(ValueError, match="edge_blank"):
        TrainConfig(edge_blank=1.5)
    with pytest.raises(ValueError, match="val_by must be one of beat, record"):
        TrainConfig(val_by="patient")
    c = TrainConfig(epochs=3, class_caps={"Normal": 10}, edge_blank=0.25)
    assert TrainConfig.from_json(json.loads(c.dumps())) == c


@needs_data
def test_mirrored_strategy_on_two_logical_cpus(tiny_dataset, tmp_path):
    # Logical devices must be set before TensorFlow starts: use a fresh process.
    code = textwrap.dedent(f"""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from ecg_model.training.config import TrainConfig
        from ecg_model.training.runfolder import run_create
        from ecg_model.training.train import train_run
        cfg = TrainConfig(dataset={str(tiny_dataset)!r}, epochs=1, batch_size=64,
                          strategy="mirrored")
        run = run_create(cfg, {str(tmp_path)!r})
        st = train_run(run)
        print("STATE", st["state"], st.get("replicas"), st.get("error", ""))
    """)
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "STATE finished 2" in out.stdout, out.stdout + out.stderr[-2000:]


@needs_data
def test_full_disk_while_saving_ends_failed_with_no_temp_file(
    tiny_dataset, tmp_path, monkeypatch
):
    import keras

    def full(self, path, *a, **k):
        Path(path).write_bytes(b"half a model")  # what a full disk leaves
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(keras.Model, "save", full)
    run = run_create(
        TrainConfig(dataset=str(tiny_dataset), epochs=1, batch_size=128), tmp_path
    )
    st = train_run(run)
    assert st["state"] == "failed" and "No space left" in st["error"]
    assert status_read(run)["state"] == "failed"
    assert not [p.name for p in run.iterdir() if "tmp" in p.name]


@needs_data
def test_run_that_cannot_write_its_status_is_failed_in_memory(
    tiny_dataset, tmp_path, monkeypatch
):
    import ecg_model.training.train as tmod

    run = run_create(TrainConfig(dataset=str(tiny_dataset), epochs=1), tmp_path)

    def full(*a, **k):
        raise EcgError("status.json: cannot write file (No space left on device)")

    monkeypatch.setattr(tmod, "status_write", full)
    st = train_run(run)
    assert st["state"] == "failed" and "No space left" in st["error"]


def test_a_run_takes_its_datasets_drawing_contract(tmp_path):
    """A dataset built at another width trains and predicts at that width: the
    run's preprocessing.json is the dataset's, so its cache loads as drawn."""
    from ecg_model.core.io import atomic_write_json, json_read

    ds = tmp_path / "ds"
    ds.mkdir()
    spec = RenderSpec(image_width=192)
    atomic_write_json(ds / "dataset.json", {"preprocessing": spec.to_json()})
    run = run_create(TrainConfig(dataset=str(ds)), tmp_path / "runs")
    assert RenderSpec.from_json(json_read(run / "preprocessing.json")) == spec
    # Without a dataset (or with one that does not say), the default contract.
    run = run_create(TrainConfig(), tmp_path / "runs")
    assert RenderSpec.from_json(json_read(run / "preprocessing.json")) == RenderSpec()


def test_lowres_augmentation_is_the_predictors_thumbnail_redraw():
    """lowres_tf gives exactly what trace_draw makes of a picture of 1/f the columns."""
    import tensorflow as tf

    from ecg_model.data.render import trace_draw, windows_render
    from ecg_model.training.train import lowres_tf

    spec = RenderSpec()
    sig, peaks = synthetic_ecg(spec.fs, 30)
    sig = sig + 0.05 * np.sin(np.arange(sig.size) / 7)
    imgs = windows_render(sig, peaks[3:12], spec)  # (n, h, w)
    h = spec.image_height
    for f in (2, 4):
        got = lowres_tf(tf.constant(imgs[..., None], tf.float32), f).numpy()
        for im, g in zip(imgs, got[..., 0]):
            ink = im == 0
            top = ink.argmax(0).astype(float)  # (w,) rows
            bot = (h - 1 - ink[::-1].argmax(0)).astype(float)
            # The thumbnail's columns: f of ours each; values grow upwards.
            lo, hi = -bot.reshape(-1, f).max(1), -top.reshape(-1, f).min(1)
            assert np.array_equal(g.astype(np.uint8), trace_draw(lo, hi, spec))
        # It is a real loss of detail: the QRS strokes widen.
        assert (got == 0).sum() > (imgs == 0).sum()
    # A flat window (a drop-out) has nothing to rescale and stays as it is.
    flat = np.full((1, h, spec.image_width, 1), 255.0, np.float32)
    flat[:, h // 2] = 0.0
    assert np.array_equal(lowres_tf(tf.constant(flat), 4).numpy(), flat)
    # In the pipeline, about the asked share of a batch changes.
    x = np.repeat(imgs, 30, axis=0)  # (270, h, w)
    ds = _augmented(x, lowres=0.5)
    out = next(iter(ds))[0].numpy()[..., 0]  # (270, h, w)
    assert set(np.unique(out)) <= {0.0, 255.0}
    moved = np.mean([(o == 0).sum() > 1.05 * (i == 0).sum() for o, i in zip(out, x)])
    assert 0.3 < moved < 0.7


def test_validation_by_record_holds_out_whole_patients():
    rng = np.random.default_rng(0)
    groups = np.repeat([f"db/{i}" for i in range(20)], 50)  # 20 patients
    y = rng.integers(0, 3, groups.size)
    tr, va = val_split(y, groups, 0.1, "record", seed=0)
    assert np.array_equal(np.sort(np.concatenate([tr, va])), np.arange(y.size))
    assert not set(groups[tr]) & set(groups[va])  # no patient on both sides
    assert len(set(groups[va])) == 2  # 1 in 10 of 20 patients
    # The same seed holds out the same patients; a beat split mixes them.
    assert np.array_equal(val_split(y, groups, 0.1, "record", seed=0)[1], va)
    tr_b, va_b = val_split(y, groups, 0.1, "beat", seed=0)
    assert len(va_b) == 100 and set(groups[tr_b]) & set(groups[va_b])
    with pytest.raises(EcgError, match="needs 10 or more; this training part has 5"):
        val_split(y[:250], groups[:250], 0.1, "record", seed=0)
    # Extra views of a beat (other leads, noisy copies) neither choose the
    # patients nor validate; a held-out patient's extra views do not train.
    first = np.arange(y.size) % 50 < 30  # 30 first-lead rows a patient
    tr, va = val_split(y, groups, 0.1, "record", seed=0, first=first)
    _, va_first = val_split(y[first], groups[first], 0.1, "record", seed=0)
    assert first[va].all() and len(va) == len(va_first) == 60
    assert set(groups[va]) == set(groups[first][va_first])
    assert not set(groups[tr]) & set(groups[va])
    assert len(tr) == y.size - 100  # both held-out patients' 50 rows are out


@needs_data
def test_run_validated_on_held_out_patients(tiny_dataset, tmp_path):
    cfg = TrainConfig(
        dataset=str(tiny_dataset),
        epochs=1,
        batch_size=64,
        val_fraction=0.34,  # one of the three training records
        val_by="record",
        class_caps={"Normal": 50},
    )
    st = train_run(run_create(cfg, tmp_path))
    assert st["state"] == "finished", st
    run = next(tmp_path.iterdir())
    m = json.loads((run / "metrics.json").read_text())
    v = m["validation"]
    assert len(v["records"]) == 1 and v["records"][0] in (
        "mitdb/100",
        "mitdb/207",
        "vfdb/418",
    )
    assert v["n"] == m["n_val"] == status_read(run)["n_val"]
    # The held-out patient validates as recorded: every beat, the cap aside.
    man = pd.read_csv(tiny_dataset / "manifest.csv", dtype={"record": str})
    held = man[(man["database"] + "/" + man["record"]) == v["records"][0]]
    assert v["n"] == int((held["split"] == "train").sum())
    assert 0 <= v["macro_recall"] <= 1 and set(v["per_class"]) == set(CLASSES)
    assert json.loads((run / "config.json").read_text())["val_by"] == "record"


def test_config_names_the_architectures_the_registry_builds():
    from ecg_model.training.config import MODEL_NAMES
    from ecg_model.training.models import MODELS

    assert sorted(MODEL_NAMES) == sorted(MODELS)
