"""Shared fixtures: small real data from ../shared/data, built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("ECG_DATA_DIR") or ROOT.parent / "shared" / "data")
HAVE_DATA = (DATA / "mitdb" / "100.hea").exists() and (
    DATA / "vfdb" / "418.hea"
).exists()
needs_data = pytest.mark.skipif(
    not HAVE_DATA, reason=f"PhysioNet data not found at {DATA} (set ECG_DATA_DIR)"
)

#: Three records hold all six classes: 100 (N, A, V), 207 (L, R, A, V, !), 418 (VF).
TINY_RECORDS = ("mitdb/100", "mitdb/207", "vfdb/418")


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    if not HAVE_DATA:
        pytest.skip(f"PhysioNet data not found at {DATA}")
    from ecg_model.data.dataset import BuildOptions, dataset_build

    out = tmp_path_factory.mktemp("ds") / "tiny"
    dataset_build(
        out,
        BuildOptions(split="random", records=TINY_RECORDS, caps={"Normal": 400}),
        data=DATA,
        workers=2,
    )
    return out


@pytest.fixture(scope="session")
def tiny_run(tiny_dataset, tmp_path_factory) -> Path:
    """A one-epoch run of the default architecture on the tiny dataset."""
    from ecg_model.training.config import TrainConfig
    from ecg_model.training.runfolder import run_create
    from ecg_model.training.train import train_run

    cfg = TrainConfig(dataset=str(tiny_dataset), epochs=1, batch_size=64, seed=1)
    run = run_create(cfg, tmp_path_factory.mktemp("runs"))
    st = train_run(run)
    assert st["state"] == "finished", st
    return run


@pytest.fixture(scope="session")
def default_model() -> Path:
    d = ROOT / "artifacts" / "default"
    if not (d / "model.keras").exists():
        pytest.skip("no committed default model in artifacts/default")
    return d
