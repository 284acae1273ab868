"""Leave-one-database-out: the split, the views and one tiny series."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ecg_model.data.dataset import (
    EXTRA_LEAD,
    BuildOptions,
    _split_assign,
    manifest_read,
)
from ecg_model.training.config import TrainConfig
from ecg_model.training.evaluate import lodo_table
from ecg_model.training.lodo import lodo_run, lodo_view

from .conftest import needs_data


def test_lodo_split_tests_one_database_and_keeps_exclusions() -> None:
    meta = pd.DataFrame(
        {
            "database": ["mitdb", "mitdb", "mitdb", "vfdb", "svdb"],
            "record": ["100", "102", "232", "418", "802"],
        }
    )
    got = _split_assign(meta, BuildOptions(split="lodo-vfdb"))
    # 102 is paced, left out of every new-patient protocol; mitdb's test
    # patient 232 trains here: only the held-out database tests.
    assert list(got) == ["train", "", "train", "test", "train"]
    got = _split_assign(meta, BuildOptions(split="lodo-svdb"))
    assert list(got) == ["train", "", "train", "train", "test"]


def test_lodo_config_accepts_every_database() -> None:
    for db in ("mitdb", "vfdb", "svdb", "cudb", "cpsc2018"):
        assert TrainConfig(split=f"lodo-{db}").split == f"lodo-{db}"


@needs_data
def test_lodo_run_holds_a_database_out(tiny_dataset, tmp_path) -> None:
    cfg = TrainConfig(epochs=1, batch_size=64, seed=1)
    summary = lodo_run(tiny_dataset, cfg, tmp_path, databases=("vfdb",))
    d = summary["databases"]["vfdb"]
    src = manifest_read(tiny_dataset)
    assert d["n_test"] == int((src["database"] == "vfdb").sum()) > 0
    # Only the classes vfdb holds are reported, each with its interval.
    assert set(d["per_class"]) == set(src.loc[src["database"] == "vfdb", "class"])
    assert all(len(pc["recall_ci"]) == 2 for pc in d["per_class"].values())
    # The run trained on mitdb alone and tested on vfdb alone.
    view = manifest_read(tmp_path / "vfdb-dataset")
    assert set(view.loc[view["split"] == "train", "database"]) == {"mitdb"}
    assert set(view.loc[view["split"] == "test", "database"]) == {"vfdb"}
    m = json.loads((tmp_path / "runs").glob("*/metrics.json").__next__().read_text())
    assert m["protocol"] == "lodo-vfdb"
    assert all(r.startswith("vfdb/") for r in m["test_records"])
    assert "patient" in m["ci_method"]  # tiny: one vfdb patient
    assert json.loads((tmp_path / "lodo.json").read_text()) == summary
    table = lodo_table(summary)
    assert "| vfdb |" in table and f"{d['n_test']:,}" in table
    # The view linked the images: nothing was copied.
    assert (tmp_path / "vfdb-dataset" / "cache.npz").is_symlink()
    assert np.isfinite(d["accuracy"])


@needs_data
def test_all_split_trains_on_every_patient(tiny_dataset, tmp_path) -> None:
    """The published default's recipe: the test part trains too, and its
    figures say they are on seen patients."""
    from ecg_model.training.runfolder import run_create
    from ecg_model.training.train import train_run

    run = run_create(
        TrainConfig(split="all", dataset=str(tiny_dataset), epochs=1, batch_size=64),
        tmp_path,
    )
    assert train_run(run)["state"] == "finished"
    m = json.loads((run / "metrics.json").read_text())
    src = manifest_read(tiny_dataset)
    assert m["n_train"] + m["n_val"] == len(src)  # train and test parts, all
    assert m["protocol"] == "all" and "seen patients" in m["note"]
    assert "beats" in m["ci_method"]  # no new patients to resample over


def test_lodo_view_sees_the_held_out_database_through_its_first_lead(tmp_path):
    rows = [
        ("mitdb", "101", ""),
        ("mitdb", "101", "V1"),  # a training patient's extra lead
        ("svdb", "800", ""),
        ("svdb", "800", "ECG2"),
    ]
    meta = pd.DataFrame(
        {
            "path": [f"train/Normal/{d}_{r}_1_{ld}.png" for d, r, ld in rows],
            "database": [d for d, _, _ in rows],
            "record": [r for _, r, _ in rows],
            "sample": 1,
            "time_s": 0.004,
            "symbol": "N",
            "class": "Normal",
            "split": "train",
            EXTRA_LEAD: [ld for _, _, ld in rows],
        }
    )
    (tmp_path / "src").mkdir()
    meta.to_csv(tmp_path / "src" / "manifest.csv", index=False)
    assert lodo_view(tmp_path / "src", "svdb", tmp_path / "v") == 1
    view = manifest_read(tmp_path / "v")
    # The other databases keep every lead to train on.
    assert list(view["split"]) == ["train", "train", "test"]
    assert list(view[EXTRA_LEAD]) == ["", "V1", ""]
