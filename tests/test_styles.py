"""The style test: other software's drawings of test patients' beats, at other
time spans too."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecg_model.data.pictures import image_read
from ecg_model.data.render import RenderSpec
from ecg_model.inference.span import ONE_BEAT_S, picture_window
from ecg_model.styles import STYLES, style_test_build

from .conftest import DATA, needs_data


@needs_data
def test_style_test_draws_every_style_and_span_is_recovered(tmp_path) -> None:
    if not (DATA / "svdb" / "802.hea").exists():
        pytest.skip(f"svdb not found at {DATA}")
    records = ("mitdb/100", "svdb/802", "cpsc2018/A0044")
    rep = style_test_build(tmp_path, data=DATA, per_class=3, records=records)
    man = pd.read_csv(tmp_path / "manifest.csv", dtype={"record": str})
    assert set(man["style"]) == set(STYLES)
    # Test patients only, from more than one database.
    assert set(rep["records"]) == set(records)
    crops = man[man["style"] == "beat-crop"]
    assert crops["span_s"].between(0.6, 1.0).all()
    wide = man[man["style"] == "paper-wide"]
    assert wide["span_s"].between(2.0, 4.0).all()
    spec = RenderSpec()
    # On ECG paper the span is read from the grid, within 5%.
    for p, span_s in zip(wide["path"], wide["span_s"]):
        _, q, span = picture_window(image_read(tmp_path / p, p), spec)
        assert span.source == "grid", p
        assert span.duration_s == pytest.approx(span_s, rel=0.05), p
    # A crop of one beat without grid is taken as one, or as the window where
    # its neighbour shows; never as anything else.
    got = [picture_window(image_read(tmp_path / p, p), spec)[2] for p in crops["path"]]
    assert {s.source for s in got} <= {"one beat", "window"}
    assert np.mean([s.duration_s == ONE_BEAT_S for s in got]) >= 0.5


@needs_data
def test_style_dev_set_draws_training_patients_only(tmp_path) -> None:
    from ecg_model.core.errors import EcgError
    from ecg_model.data.databases import DATABASES

    rep = style_test_build(
        tmp_path,
        data=DATA,
        per_class=2,
        records=("mitdb/101", "vfdb/418"),
        part="train",
    )
    assert rep["part"] == "train"
    assert rep["records"] == ["mitdb/101", "vfdb/418"]
    man = pd.read_csv(tmp_path / "manifest.csv", dtype={"record": str})
    for db, rn in zip(man["database"], man["record"]):
        assert DATABASES[db].patient_split(rn) == "train"
    assert set(man["class"]) >= {"Normal", "Ventricular Fibrillation"}
    # A test record asked of the training part is not drawn.
    with pytest.raises(EcgError, match="no train records"):
        style_test_build(
            tmp_path / "x", data=DATA, records=("mitdb/100",), part="train"
        )
    with pytest.raises(EcgError, match="part"):
        style_test_build(tmp_path / "y", data=DATA, part="both")
