"""Every dashboard page renders, with and without data; Predict end to end (AppTest)."""

from __future__ import annotations

import io
import json
import re

import pandas as pd
import pyarrow as pa
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from ecg_model.core.classes import CLASSES
from ecg_model.core.errors import EcgError
from ecg_model.core.io import atomic_write_json

from .conftest import ROOT, needs_data
from .test_predict import beat_picture

PAGES = ["pages/predict.py", "pages/train.py", "pages/dataset.py", "pages/runs.py"]


def app(path: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / path), default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements) -> list[str]:
    """What the user reads: element values with Markdown escapes removed (names
    are shown as text, so a page escapes the Markdown characters in them)."""
    return [re.sub(r"\\(.)", r"\1", e.value) for e in elements]


def charts_data(at: AppTest) -> list[tuple[dict, list[pd.DataFrame]]]:
    """(Vega-Lite spec, data frames) of every Altair chart on the page."""
    out = []
    for el in at.get("vega_lite_chart"):
        p = el.proto
        frames = [pa.ipc.open_stream(d.data.data).read_pandas() for d in p.datasets]
        out.append((json.loads(p.spec), frames))
    return out


@pytest.fixture
def empty_artifacts(tmp_path, monkeypatch):
    """A fresh artifacts folder: no dataset, no runs."""
    monkeypatch.setenv("ECG_ARTIFACTS_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def full_artifacts(tmp_path, monkeypatch, tiny_run, tiny_dataset):
    """Artifacts with the tiny dataset and run, the run as the active model."""
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "tiny").symlink_to(tiny_dataset)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / tiny_run.name).symlink_to(tiny_run)
    atomic_write_json(tmp_path / "active_model.json", {"path": str(tiny_run)})
    monkeypatch.setenv("ECG_ARTIFACTS_DIR", str(tmp_path))
    # The link leads outside the artifacts: a root the server allows.
    monkeypatch.setenv("ECG_DATASET_ROOTS", str(tiny_dataset.parent))
    return tmp_path


def test_home_without_dataset(empty_artifacts):
    at = app("dashboard.py")
    text = " ".join(m.value for m in at.markdown) + " ".join(
        w.value for w in at.warning
    )
    assert "Not a medical device" in text
    assert any("dataset" in i.value.lower() for i in at.info)


@pytest.mark.parametrize("page", PAGES)
def test_pages_render_without_dataset_or_runs(empty_artifacts, page):
    app(page)


@needs_data
@pytest.mark.parametrize("page", PAGES)
def test_pages_render_with_dataset_and_runs(full_artifacts, page):
    at = app(page)
    if page == "pages/runs.py":
        assert at.dataframe and charts_data(at)
    if page == "pages/dataset.py":
        assert len(at.get("image")) >= 2 and len(charts_data(at)) >= 2


def png(img) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    return buf.getvalue()


@needs_data
def test_predict_upload_shows_class_and_chart(full_artifacts):
    at = app("pages/predict.py")
    at.file_uploader(key="predict_upload").set_value(
        [
            ("beat.png", png(beat_picture()), "image/png"),
            ("second.png", png(beat_picture()), "image/png"),
        ]
    )
    at.run()
    assert not at.exception
    heads = [m.value for m in at.markdown if m.value.startswith("#### Predicted")]
    shown = [h.split("Predicted class: ", 1)[1] for h in heads]
    assert len(shown) == 2 and all(v in CLASSES for v in shown)
    assert len(at.metric) == 2 and all(m.value.endswith("%") for m in at.metric)
    charts = charts_data(at)
    probs = [f for spec, fs in charts for f in fs if "probability" in f.columns]
    assert len(probs) == 2
    for f in probs:
        assert sorted(f["class"]) == sorted(CLASSES)
        assert f["probability"].sum() == pytest.approx(1.0, abs=1e-3)
        # The bar chart's top class is the one shown as predicted.
        assert f.sort_values("probability").iloc[-1]["class"] == shown[0]
    table = at.dataframe[0].value
    assert list(table.columns[:3]) == ["file", "predicted_class", "confidence"]
    assert len(table) == 2
    # Grad-CAM toggle shows the overlay.
    at.toggle(key="predict_cam_0").set_value(True).run()
    assert not at.exception and at.slider(key="predict_alpha_0").value == 0.6


def test_class_caveat_says_what_a_call_means_on_new_patients(tmp_path):
    """From a model's new-patient test: how often a class's calls were right,
    how much of it was found, and the classes also called it (20% of their
    beats or more, largest first); nothing without a new-patient test."""
    import numpy as np

    from ecg_model.app.runs import class_caveat
    from ecg_model.training.evaluate import metrics_compute

    # (true class, predicted class, beats): rows of a confusion matrix.
    cells = [(0, 0, 90), (0, 4, 10), (1, 0, 45), (1, 1, 5), (2, 0, 10), (2, 2, 40)]
    cells += [(3, 0, 5), (3, 3, 45), (4, 0, 30), (4, 4, 20), (5, 5, 50)]
    y_t = np.concatenate([np.full(n, t) for t, _, n in cells])
    y_p = np.concatenate([np.full(n, p) for _, p, n in cells])
    m = metrics_compute(y_t, y_p, n_boot=0)
    run = tmp_path / "run"
    run.mkdir()
    pm = {**m, "protocol": "patient", "test_records": ["mitdb/100", "svdb/800"]}
    atomic_write_json(run / "metrics.json", pm)
    words = class_caveat(run, "Normal")
    # 90 of the 180 Normal calls were right; 90 of 100 Normal beats found.
    assert words.startswith("On new patients (2 test patients, each picture alone)")
    assert "50.0% of this model's Normal calls were right" in words
    assert "it found 90.0% of the Normal beats" in words
    # LBBB 90%, RBBB 60%, PAC 20% (at the line) called Normal; PVC's 10% is not
    # named, nor are classes never called Normal.
    named = re.findall(r"(\w[\w ]+) \((\d+\.\d)%\)", words.split("rule them out:")[1])
    assert named == [
        ("Left Bundle Branch Block", "90.0"),
        ("Right Bundle Branch Block", "60.0"),
        ("Premature Atrial Contraction", "20.0"),
    ]
    vf = class_caveat(run, "Ventricular Fibrillation")
    assert "100.0% of the Ventricular Fibrillation windows" in vf
    assert "rule them out" not in vf
    # A model tested on seen patients only, or with no test: nothing to say.
    atomic_write_json(run / "metrics.json", {**pm, "protocol": "random"})
    assert class_caveat(run, "Normal") == ""
    (run / "metrics.json").unlink()
    assert class_caveat(run, "Normal") == ""


@needs_data
def test_predict_shows_what_the_call_means_on_new_patients(full_artifacts):
    """With the published model (tested on new patients), each picture's card
    says what its class's calls were worth on new patients."""
    atomic_write_json(
        full_artifacts / "active_model.json",
        {"path": str(ROOT / "artifacts" / "default")},
    )
    at = app("pages/predict.py")
    at.file_uploader(key="predict_upload").set_value(
        [("beat.png", png(beat_picture()), "image/png")]
    )
    at.run()
    assert not at.exception
    shown = [m.value for m in at.markdown if m.value.startswith("#### Predicted")]
    cls = shown[0].split("Predicted class: ", 1)[1]
    # As prominent as the probability: a box of its own, not a caption.
    notes = [i.value for i in at.info if "On new patients" in i.value]
    assert len(notes) == 1 and f"of this model's {cls} calls were right" in notes[0]
    assert notes[0].startswith("**On a new patient:**")


@needs_data
def test_predict_bad_uploads_give_errors(full_artifacts):
    at = app("pages/predict.py")
    at.file_uploader(key="predict_upload").set_value(
        [
            ("notes.png", b"this is not an image", "image/png"),
            ("empty.png", b"", "image/png"),
            ("beat.png", png(beat_picture()), "image/png"),
        ]
    )
    at.run()
    errors = texts(at.error)
    assert any("notes.png: not an image" in e for e in errors)
    assert any("empty.png: empty file" in e for e in errors)
    assert len(at.metric) == 1  # the good picture is still classified


@needs_data
def test_predict_signal_csv_and_bad_csv(full_artifacts):
    import numpy as np

    from .test_signals import synthetic_ecg

    at = app("pages/predict.py")
    at.radio(key="predict_mode").set_value("Signal").run()
    sig, peaks = synthetic_ecg(360.0, 12)
    csv = "mV\n" + "\n".join(f"{v:.4f}" for v in sig)
    at.file_uploader(key="predict_csv").set_value(("sig.csv", csv.encode(), "text/csv"))
    at.run()
    assert not at.exception and not at.error
    beats = at.dataframe[0].value
    assert abs(len(beats) - len(peaks)) <= 1
    assert np.all(np.isin(beats["predicted_class"], CLASSES))
    at.file_uploader(key="predict_csv").set_value(
        ("bad.csv", b"1\n2\nthree\n", "text/csv")
    )
    at.run()
    assert any("line 3 is not a number" in e for e in texts(at.error))


@needs_data
def test_predict_signal_shows_qrs_durations_and_the_block_decision(
    full_artifacts, tiny_run, monkeypatch
):
    import shutil

    import numpy as np

    from ecg_model.inference.predict import Predictor

    from .test_block import write_stage
    from .test_qrs import beats as qrs_beats

    # The picture calls every beat Normal (a one-epoch model's calls vary from
    # one training to the next): what is tested is the stage and the page.
    def normal(self, imgs):
        out = np.zeros((len(imgs), len(CLASSES)), np.float32)
        out[:, CLASSES.index("Normal")] = 1.0
        return out

    monkeypatch.setattr(Predictor, "predict_arrays", normal)

    # The active model: the tiny run with a block stage beside it.
    run = full_artifacts / "runs" / "with-block"
    shutil.copytree(tiny_run, run)
    write_stage(run)
    atomic_write_json(full_artifacts / "active_model.json", {"path": str(run)})
    at = app("pages/predict.py")
    at.radio(key="predict_mode").set_value("Signal").run()
    sig, peaks = qrs_beats(150.0, fs=360.0)  # a wide QRS at 360 Hz
    csv = "mV\n" + "\n".join(f"{v:.4f}" for v in sig)
    at.file_uploader(key="predict_csv").set_value(
        ("wide.csv", csv.encode(), "text/csv")
    )
    at.run()
    assert not at.exception and not at.error
    beats = at.dataframe[0].value
    assert {"qrs_ms", "note"} <= set(beats.columns)
    assert abs(np.nanmedian(beats["qrs_ms"]) - 150) <= 15
    said = texts(at.warning) + texts(at.info)
    assert any(t.startswith("Conduction:") and "QRS" in t for t in said), said


@needs_data
def test_predict_wfdb_without_header_is_an_error(full_artifacts):
    at = app("pages/predict.py")
    at.radio(key="predict_mode").set_value("Signal").run()
    at.radio(key="predict_signal_kind").set_value("WFDB record (.hea + .dat)").run()
    at.file_uploader(key="predict_wfdb").set_value(
        ("100.dat", b"\0" * 100, "application/octet-stream")
    )
    at.run()
    assert any(".hea header" in e for e in texts(at.error))


@needs_data
def test_train_page_launches_and_shows_result(full_artifacts):
    from ecg_model.app import webapp

    at = app("pages/train.py")
    at.slider(key="train_epochs").set_value(1)
    at.selectbox(key="train_batch").set_value(64)
    at.selectbox(key="train_dataset").set_value("tiny")
    at.slider(key="train_lowres").set_value(0.2)
    at.button(key="train_launch").click().run()
    assert not at.exception
    assert any(t.value.startswith("started") for t in at.toast), [
        e.value for e in at.error
    ]
    # The banner says the run's state now: training (or, were it quick, gone).
    assert not any("queued" in i.value for i in at.info)
    webapp.registry_get().wait(300)
    at.run()
    # The form's augmentation reaches the run's configuration.
    runs = (full_artifacts / "runs").iterdir()
    new = [r for r in runs if r.is_dir() and not r.is_symlink()]  # not the lock
    assert len(new) == 1
    cfg = json.loads((new[0] / "config.json").read_text())
    assert cfg["lowres"] == 0.2 and cfg["val_by"] == "beat"
    heads = [h.value for h in at.subheader]
    assert any("(finished)" in h for h in heads), heads
    # Its figures stand beside the active model's before it can replace it.
    assert any("the active model:" in c for c in texts(at.caption))
    sure = [c for c in at.checkbox if c.key == "train_activate_sure"]
    if sure:  # worse, or not tested on new patients: asked first
        assert at.button(key="train_activate").disabled
        sure[0].check().run()
    at.button(key="train_activate").click().run()
    assert any("active model" in s.value for s in at.success)


@needs_data
def test_runs_page_shows_the_rhythm_step(tmp_path, monkeypatch, tiny_run):
    import shutil

    from ecg_model.training.rhythm_fit import rhythm_fit_run

    from .conftest import DATA

    run = tmp_path / "runs" / tiny_run.name
    shutil.copytree(tiny_run, run)
    rr = rhythm_fit_run(run, DATA, folds=0)
    monkeypatch.setenv("ECG_ARTIFACTS_DIR", str(tmp_path))
    at = app("pages/runs.py")
    text = " ".join(m.value for m in at.markdown)
    assert "With the rhythm step" in text
    assert f"{100 * rr['macro_f1']:.2f}%" in text
    assert len(at.dataframe) >= 3  # runs, per class, per class with the step


@needs_data
def test_damaged_run_files_are_shown_as_damaged_and_can_be_deleted(
    tmp_path, monkeypatch, tiny_run
):
    import shutil

    runs = tmp_path / "runs"
    bad_metrics = runs / "20990101-000000-ecgnet-random-aaaa"
    shutil.copytree(tiny_run, bad_metrics)
    (bad_metrics / "metrics.json").write_text('{"protocol": "random"}')
    bad_status = runs / "20980101-000000-ecgnet-random-bbbb"
    shutil.copytree(tiny_run, bad_status)
    (bad_status / "status.json").write_text("[1, 2")
    atomic_write_json(tmp_path / "active_model.json", {"path": str(bad_metrics)})
    monkeypatch.setenv("ECG_ARTIFACTS_DIR", str(tmp_path))

    from ecg_model.app.runs import run_delete, runs_list

    table = runs_list()
    row = table[table["run"] == bad_status.name].iloc[0]
    assert row["state"] == "damaged" and "status.json" in row["error"]
    home = app("dashboard.py")  # the active model's metrics are damaged
    assert any("damaged" in e for e in texts(home.error))
    for page in ("pages/runs.py", "pages/train.py"):
        at = app(page)
        assert any("damaged" in e and "missing" in e for e in texts(at.error)), page
    with pytest.raises(EcgError, match="is the active model"):
        run_delete(bad_metrics)  # the active model asks again
    assert "was the active model" in run_delete(bad_metrics, active_ok=True)
    run_delete(bad_status)
    assert not list(runs.iterdir())


@needs_data
def test_owner_mode_refuses_deleting_another_sessions_run(
    tmp_path, monkeypatch, tiny_run
):
    import shutil

    run = tmp_path / "runs" / tiny_run.name
    shutil.copytree(tiny_run, run)
    status = json.loads((run / "status.json").read_text())
    atomic_write_json(run / "status.json", {**status, "owner": "someone-else"})
    monkeypatch.setenv("ECG_ARTIFACTS_DIR", str(tmp_path))
    monkeypatch.setenv("ECG_RUN_CONTROL", "owner")
    monkeypatch.setenv("ECG_ADMIN_TOKEN", "s3cret")
    app("pages/train.py")
    at = app("pages/runs.py")
    assert at.sidebar.text_input(key="admin_token")
    at.checkbox(key=f"runs_confirm_{run.name}").check().run()
    at.button(key=f"runs_delete_{run.name}").click().run()
    assert any("only the browser session" in e for e in texts(at.error))
    assert run.exists()
    at.sidebar.text_input(key="admin_token").input("s3cret").run()
    at.checkbox(key=f"runs_confirm_{run.name}").check().run()
    at.button(key=f"runs_delete_{run.name}").click().run()
    assert not at.exception and not run.exists()


def class_axes(spec: dict) -> list[dict]:
    """Every (x, y) encoding of a chart whose y axis is the class and x a count."""
    out = []
    if isinstance(spec, dict):
        enc = spec.get("encoding", {})
        if enc.get("y", {}).get("field") == "class" and enc.get("x", {}).get(
            "field"
        ) in ("count", "images"):
            out.append(enc)
        for v in spec.values():
            out += class_axes(v) if isinstance(v, (dict, list)) else []
    elif isinstance(spec, list):
        for v in spec:
            out += class_axes(v)
    return out


@needs_data
def test_class_charts_name_every_class_and_count_in_whole_numbers(full_artifacts):
    at = app("pages/predict.py")
    pics = [(f"{k}.png", png(beat_picture()), "image/png") for k in "ab"]
    at.file_uploader(key="predict_upload").set_value(pics)
    at.run()
    found = 0
    for page in (at, app("pages/dataset.py")):
        for spec, _ in charts_data(page):
            for enc in class_axes(spec):
                found += 1
                assert enc["y"]["scale"]["domain"] == list(CLASSES)
                assert enc["y"]["axis"]["labelOverlap"] is False
                assert enc["x"]["axis"]["format"] == "d"
    assert found >= 2  # the predicted-class counts and the dataset distribution


def test_home_leads_with_the_new_patient_figures(empty_artifacts):
    at = app("dashboard.py")
    labels = [m.label for m in at.metric]
    assert labels[:3] == [
        "Accuracy on new patients",
        "Always Normal (baseline)",
        "Macro F1 on new patients",
    ]
    words = " ".join(texts(at.markdown))
    assert "Poor at" in words and "Left Bundle Branch Block" in words
    assert "pid" not in " ".join(texts(at.caption))


def test_dataset_page_builds_what_the_form_says(empty_artifacts, monkeypatch, tmp_path):
    import subprocess
    import sys

    from ecg_model.app.jobs import JobRegistry

    # A data folder holding mitdb and cpsc2018 only (the builds are not run).
    for db in ("mitdb", "cpsc2018"):
        (tmp_path / "data" / db).mkdir(parents=True)
    monkeypatch.setenv("ECG_DATA_DIR", str(tmp_path / "data"))
    cmds = []

    def spawn(self, cmd, log, **kw):
        # Record the command; the stand-in marks its build finished as a real
        # one does (a process that just ended would read as a killed build,
        # truly: on a busy machine the page can see it dead before the next
        # rerun).
        cmds.append(cmd)
        done = (
            "import sys; from ecg_model.app.jobs import build_status_write; "
            "build_status_write(__import__('pathlib').Path(sys.argv[1]), "
            "state='finished', message='finished', fraction=1.0)"
        )
        status = cmd[cmd.index("--status") + 1]
        proc = subprocess.Popen([sys.executable, "-c", done, status])
        proc.wait(60)
        return proc

    monkeypatch.setattr(JobRegistry, "_spawn", spawn)
    at = app("pages/dataset.py")
    # Extra leads on a random split would leak a test beat's other lead.
    at.checkbox(key="dataset_extra_leads").check()
    at.button(key="dataset_build").click().run()
    assert any("patient split" in e.value for e in at.error) and not cmds
    at.radio(key="dataset_split").set_value("patient")
    at.multiselect(key="dataset_databases").set_value(["mitdb", "cpsc2018"])
    at.button(key="dataset_build").click().run()
    assert not at.error and len(cmds) == 1, [e.value for e in at.error]
    cmd = cmds[0]
    out = cmd[cmd.index("--out") + 1]
    assert out.endswith("patient-mitdb+cpsc2018-leads")
    assert cmd[cmd.index("--databases") + 1 : cmd.index("--databases") + 3] == [
        "mitdb",
        "cpsc2018",
    ]
    assert "--extra-leads" in cmd and cmd[cmd.index("--image-width") + 1] == "256"
    assert "--noise" not in cmd
    # Noisy copies: the share reaches the command and names the folder.
    at.slider(key="dataset_noise").set_value(0.3)
    at.button(key="dataset_build").click().run()
    assert not at.error and len(cmds) == 2, [e.value for e in at.error]
    assert cmds[1][cmds[1].index("--noise") + 1] == "0.3"
    assert cmds[1][cmds[1].index("--out") + 1].endswith("-leads-noise30")
    # A database not in the data folder is named, with the command that fetches
    # it, and the build goes on without it; asked alone, nothing is built.
    at.multiselect(key="dataset_databases").set_value(["mitdb", "incartdb"])
    at.button(key="dataset_build").click().run()
    assert len(cmds) == 3 and not at.error
    assert any("download --databases incartdb" in w.value for w in at.warning)
    at.multiselect(key="dataset_databases").set_value(["incartdb"])
    at.button(key="dataset_build").click().run()
    assert len(cmds) == 3 and "Nothing to build" in at.error[0].value


@needs_data
def test_train_page_validation_by_record_reaches_the_run(full_artifacts):
    """Held-out patients asked of a dataset with too few: the run fails and the
    page says why."""
    from ecg_model.app import webapp

    at = app("pages/train.py")
    at.slider(key="train_epochs").set_value(1)
    at.selectbox(key="train_dataset").set_value("tiny")
    at.radio(key="train_val_by").set_value("record")
    at.button(key="train_launch").click().run()
    assert not at.exception
    webapp.registry_get().wait(300)
    at.run()
    runs = [r for r in (full_artifacts / "runs").iterdir() if r.is_dir()]
    run = max(runs, key=lambda r: r.name)
    assert json.loads((run / "config.json").read_text())["val_by"] == "record"
    assert json.loads((run / "status.json").read_text())["state"] == "failed"
    shown = " ".join(texts(at.error) + texts(at.markdown) + texts(at.caption))
    assert "needs 10 or more" in shown, shown


@needs_data
def test_runs_page_shows_the_development_set(tmp_path, monkeypatch, tiny_run):
    import shutil

    import numpy as np

    from ecg_model.training.evaluate import metrics_compute

    run = tmp_path / "runs" / tiny_run.name
    shutil.copytree(tiny_run, run)
    m = json.loads((run / "metrics.json").read_text())
    y = np.array([0, 0, 1, 3, 3, 5])
    m["validation"] = {
        **metrics_compute(y, np.array([0, 1, 1, 3, 0, 5]), n_boot=0),
        "records": ["mitdb/109", "cudb/cu19"],
    }
    (run / "metrics.json").write_text(json.dumps(m))
    monkeypatch.setenv("ECG_ARTIFACTS_DIR", str(tmp_path))
    at = app("pages/runs.py")
    text = " ".join(x.value for x in at.markdown)
    assert "Development set" in text and "mitdb/109, cudb/cu19" in text
    assert f"{100 * m['validation']['macro_f1']:.2f}%" in text


@needs_data
def test_predict_reads_an_uploaded_12_lead_page(full_artifacts):
    """A 12-lead page is recognised as one (Detect): its layout, the block
    decision, the leads' grid, the beat table and the leads as files."""
    import wfdb

    from ecg_model.data.pages import PageSpec, page_draw

    from .conftest import DATA

    if not (DATA / "cpsc2018" / "A0002.hea").exists():
        pytest.skip("cpsc2018 not found")
    rec = wfdb.rdrecord(str(DATA / "cpsc2018" / "A0002"))
    leads = {n: rec.p_signal[:, i] for i, n in enumerate(rec.sig_name)}
    data = page_draw(leads, rec.fs, PageSpec(dpmm=6.0))
    at = app("pages/predict.py")
    at.file_uploader(key="predict_upload").set_value([("page.png", data, "image/png")])
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    shown = texts(at.markdown)
    assert any(
        "12-lead page, layout 3x4+1" in m and "beats on lead II" in m for m in shown
    )
    assert any(m.startswith("**Conduction:**") for m in shown)
    specs = [spec for spec, _ in charts_data(at)]
    facet = [s for s in specs if "facet" in s]
    assert facet, "no grid of leads"
    frames = [f for spec, fs in charts_data(at) if "facet" in spec for f in fs]
    assert set(pd.concat(frames)["lead"]) == set(leads)
    labels = [b.label for b in at.get("download_button")]
    assert "Leads as WFDB (.hea + .dat, zip)" in labels and "Leads as CSV" in labels
