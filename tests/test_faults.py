"""The faults a newcomer and a hostile tester met (issue 28), each made here
before it was mended: a run lost or a state that lies, damaged run files,
stale pids and stale build folders."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from ecg_model.app.jobs import JobRegistry, status_checked
from ecg_model.core.errors import EcgError
from ecg_model.core.io import atomic_write_json
from ecg_model.training.config import TrainConfig
from ecg_model.training.runfolder import (
    proc_identity,
    run_create,
    status_read,
    status_write,
    trainer_alive,
)

from .conftest import ROOT, needs_data


def app(path: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / path), default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def stranger():
    """A live process that is not a trainer (as a pid reused after a reboot)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"],
        start_new_session=True,
    )
    yield proc
    proc.kill()
    proc.wait()


def test_a_strangers_live_pid_is_never_adopted_nor_signalled(tmp_path, stranger):
    run = run_create(TrainConfig(), tmp_path)
    status_write(run, state="running", pid=stranger.pid)  # no start recorded
    assert not trainer_alive(run, status_read(run))
    reg = JobRegistry(tmp_path)
    assert reg.active() is None  # not adopted: nothing queues behind it
    st = status_read(run)
    assert st["state"] == "failed" and "another program" in st["error"]
    assert "is not running" in reg.cancel(run, grace_s=0.1)
    time.sleep(0.5)
    assert stranger.poll() is None  # never signalled

    # A start recorded for another process of the same pid: not the trainer.
    run2 = run_create(TrainConfig(), tmp_path)
    status_write(run2, state="running", pid=stranger.pid, pid_start="other:1")
    assert status_checked(run2)["state"] == "failed"


def test_the_trainer_itself_is_adopted(tmp_path):
    run = run_create(TrainConfig(), tmp_path)
    # Its command line names the run folder, as `train --run-dir RUN`'s does.
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", str(run)],
        start_new_session=True,
    )
    try:
        status_write(run, state="running", pid=proc.pid)
        assert trainer_alive(run, status_read(run))
        status_write(run, **proc_identity(proc.pid))  # start recorded: proof too
        assert JobRegistry(tmp_path).active() == run
        assert status_read(run)["state"] == "running"
    finally:
        proc.kill()
        proc.wait()


def test_a_launch_on_a_full_disk_leaves_no_run_folder(tmp_path, monkeypatch):
    import ecg_model.training.runfolder as rf

    def full(*a, **k):
        raise EcgError("config.json: cannot write (No space left on device)")

    monkeypatch.setattr(rf, "atomic_write_json", full)
    with pytest.raises(EcgError, match="No space"):
        run_create(TrainConfig(), tmp_path / "runs")
    assert not list((tmp_path / "runs").iterdir())


def test_what_a_killed_build_left_is_cleaned_at_start_up(tmp_path, monkeypatch):
    monkeypatch.setenv("ECG_ARTIFACTS_DIR", str(tmp_path))
    ds = tmp_path / "datasets"
    (ds / ".patient.building-abc" / "_stage").mkdir(parents=True)
    (ds / ".patient.building-abc" / "_stage" / "x.png").write_bytes(b"0" * 1000)
    (ds / "random").mkdir()
    (ds / ".random.old-.random.building-q").mkdir()  # replaced: the new one arrived
    (ds / ".mine.old-.mine.building-z" / "train").mkdir(parents=True)  # never did
    JobRegistry(tmp_path / "runs")
    names = sorted(p.name for p in ds.iterdir())
    assert names == ["mine", "random"]
    assert (ds / "mine" / "train").is_dir()  # the old dataset put back


@pytest.fixture
def artifacts(tmp_path, monkeypatch, tiny_run):
    """An artifacts folder with two copies of the tiny run, the first active."""
    runs = tmp_path / "runs"
    a = runs / "20990101-000000-ecgnet-random-aaaa"
    b = runs / "20990102-000000-ecgnet-random-bbbb"
    shutil.copytree(tiny_run, a)
    shutil.copytree(tiny_run, b)
    atomic_write_json(tmp_path / "active_model.json", {"path": str(a)})
    monkeypatch.setenv("ECG_ARTIFACTS_DIR", str(tmp_path))
    return a, b


METRICS_DAMAGE = {
    "baseline without predicts": lambda m: m["baseline"].pop("predicts"),
    "validation records not a list": lambda m: m.update(
        validation={**{k: m[k] for k in m if k != "baseline"}, "records": "r1"}
    ),
    "test_records not a list": lambda m: m.update(test_records=7),
    "irregular_max not a number": lambda m: m.update(
        rr_context={
            **{k: m[k] for k in ("accuracy", "macro_recall", "macro_f1")},
            "per_class": m["per_class"],
            "confusion_matrix": m["confusion_matrix"],
            "pac_ratio_threshold": 0.85,
            "irregular_max": "high",
        }
    ),
}


@needs_data
@pytest.mark.parametrize("damage", sorted(METRICS_DAMAGE))
def test_each_damaged_metrics_shape_is_a_damaged_run(artifacts, damage):
    from ecg_model.app.runs import run_delete, runs_list
    from ecg_model.training.evaluate import metrics_problem

    a, b = artifacts
    m = json.loads((b / "metrics.json").read_text())
    m.setdefault("baseline", {"accuracy": 0.5, "predicts": "Normal"})
    METRICS_DAMAGE[damage](m)
    assert metrics_problem(m), damage
    (b / "metrics.json").write_text(json.dumps(m))
    row = runs_list().set_index("run").loc[b.name]
    assert row["state"] == "damaged" and "metrics.json" in row["error"]
    for page in ("pages/runs.py", "pages/train.py", "pages/predict.py"):
        app(page)
    run_delete(b)
    assert not b.exists()


@needs_data
def test_a_text_value_in_history_takes_no_page_down(artifacts):
    from ecg_model.app.runs import run_delete, runs_list

    a, b = artifacts
    h = (b / "history.csv").read_text().splitlines()
    h[1] = ",".join(["oops"] + h[1].split(",")[1:])
    (b / "history.csv").write_text("\n".join(h) + "\n")
    row = runs_list().set_index("run").loc[b.name]
    assert row["state"] == "damaged" and "history.csv" in row["error"]
    for page in ("pages/runs.py", "pages/train.py", "pages/predict.py"):
        app(page)
    run_delete(b)


@needs_data
def test_a_huge_declared_picture_is_refused_before_any_memory(artifacts):
    from ecg_model.app.runs import runs_list
    from ecg_model.inference.predict import Predictor

    a, b = artifacts
    pre = json.loads((b / "preprocessing.json").read_text())
    (b / "preprocessing.json").write_text(
        json.dumps({**pre, "image_height": 100000, "image_width": 100000})
    )
    with pytest.raises(EcgError, match="preprocessing.json: damaged"):
        Predictor(b)
    assert runs_list().set_index("run").loc[b.name, "state"] == "damaged"
    app("pages/predict.py")


@needs_data
def test_runs_page_delete_confirms_the_run_it_names(artifacts):
    a, b = artifacts
    at = app("pages/runs.py")
    at.selectbox(key="runs_pick").set_value(b.name).run()
    at.checkbox(key=f"runs_confirm_{b.name}").check().run()
    # Another run chosen: its own confirmation starts unticked.
    at.selectbox(key="runs_pick").set_value(a.name).run()
    assert not at.checkbox(key=f"runs_confirm_{a.name}").value
    assert at.button(key=f"runs_delete_{a.name}").disabled
    # The active model asks again before it goes.
    at.checkbox(key=f"runs_confirm_{a.name}").check().run()
    assert at.button(key=f"runs_delete_{a.name}").disabled
    assert any("is the active model" in w.value for w in at.warning)
    at.checkbox(key=f"runs_confirm_active_{a.name}").check().run()
    at.button(key=f"runs_delete_{a.name}").click().run()
    assert not a.exists() and b.exists()
    assert any("was the active model" in s.value for s in at.success)


@needs_data
def test_runs_page_marks_the_active_run_and_goes_back_to_default(artifacts):
    from ecg_model.app.runs import active_model, runs_list

    a, b = artifacts
    table = runs_list().set_index("run")
    assert table.loc[a.name, "active"] and not table.loc[b.name, "active"]
    at = app("pages/runs.py")
    at.button(key="runs_use_default").click().run()
    assert active_model().name == "default"
    assert any("default model is active" in s.value for s in at.success)


@needs_data
def test_train_page_shows_each_runs_state_now(artifacts, tmp_path, stranger):
    a, b = artifacts
    reg_runs = tmp_path / "runs"
    # A run training (adopted: its process names its folder) and one queued.
    cfg = TrainConfig(dataset=str(tmp_path / "missing"), epochs=1)
    busy = run_create(cfg, reg_runs)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", str(busy)],
        start_new_session=True,
    )
    try:
        status_write(busy, state="running", **proc_identity(holder.pid))
        waiting = run_create(cfg, reg_runs)
        from ecg_model.app import webapp

        webapp.registry_get.clear()  # this server process starts now
        at = app("pages/train.py")
        at.session_state["train_last"] = str(waiting)
        at.run()
        assert any("position 1 of 1" in i.value for i in at.info)
        at.button(key="train_cancel_queued_0").click().run()
        assert status_read(waiting)["state"] == "cancelled"
        at.run()
        assert not any("position" in i.value for i in at.info)
        # The latest run shown is the one training now, with its state now.
        heads = [h.value for h in at.subheader]
        assert f"Latest run: {busy.name} (running)" in heads, heads
        assert not any("queued" in h for h in heads)
    finally:
        holder.kill()
        holder.wait()


def test_a_comparison_compares_like_with_like(tmp_path):
    from ecg_model.app.runs import model_compare

    def model(folder, protocols):
        folder.mkdir()
        one = {
            "accuracy": 0.5,
            "macro_recall": 0.5,
            "per_class": {},
            "confusion_matrix": [[0] * 6 for _ in range(6)],
        }
        m = {"protocols": {p: {**one, "macro_f1": f} for p, f in protocols.items()}}
        (folder / "metrics.json").write_text(json.dumps(m))
        return folder

    cur = model(tmp_path / "cur", {"patient": 0.566, "random": 0.98})
    new = model(tmp_path / "new", {"random": 0.206})
    words, confirm = model_compare(new, cur)
    assert "random split" in words and "20.6% for this run against 98.0%" in words
    assert confirm  # not tested on new patients while the active model was
    other = model(tmp_path / "other", {"lodo-mitdb": 0.3})
    words, confirm = model_compare(other, cur)
    assert "cannot be compared" in words and confirm


# -- confident wrong answers (issue 28, 7-8, 12, 15) ---------------------------


def _fig_rgb(fig) -> np.ndarray:
    import io

    import matplotlib.pyplot as plt
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return np.asarray(Image.open(buf).convert("RGB"))


def _plot(sig, fs, color="black", grid=None, frame=False, size=(4, 1.5)):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.arange(sig.size) / fs
    fig = plt.figure(figsize=size, dpi=100)
    ax = fig.add_axes([0.06, 0.12, 0.9, 0.8])
    if grid == "paper":  # 0.04 s / 0.1 mV boxes, every fifth line heavier
        for k, x in enumerate(np.arange(0, t[-1], 0.04)):
            ax.axvline(x, color="#e06060" if k % 5 == 0 else "#f4b6b6", lw=0.4)
        for k, y in enumerate(np.arange(-2.0, 2.5, 0.1)):
            ax.axhline(y, color="#e06060" if k % 5 == 0 else "#f4b6b6", lw=0.4)
    elif grid == "equal":  # a plot's grid lines: equal boxes, no 5:1 pattern
        for x in np.arange(0, t[-1], 0.04):
            ax.axvline(x, color="#f4a0a0", lw=0.5)
        for y in np.arange(-2.0, 2.5, 0.1):
            ax.axhline(y, color="#f4a0a0", lw=0.5)
    ax.plot(t, sig, color=color, lw=1.2)
    ax.set_xlim(0, t[-1])
    ax.set_ylim(sig.min() - 0.3, sig.max() + 0.3)
    if not frame:
        ax.axis("off")
    return _fig_rgb(fig)


@pytest.fixture(scope="module")
def record_100():
    from ecg_model.data.signals import record_read

    from .conftest import DATA

    if not (DATA / "mitdb" / "100.hea").exists():
        pytest.skip(f"PhysioNet data not found at {DATA}")
    return record_read(DATA / "mitdb" / "100", fs=250.0).sig[50_000:52_500]


def test_equal_boxes_are_not_ecg_paper_while_paper_is(record_100):
    from ecg_model.inference.strip import grid_read

    grid, why = grid_read(_plot(record_100, 250.0, grid="equal", size=(10, 2)))
    assert grid is None and "equal lines" in why
    grid, why = grid_read(_plot(record_100, 250.0, grid="paper", size=(10, 2)))
    assert grid is not None and why == ""
    # 10 s over 90% of 1000 px: 250 boxes of 3.6 px.
    assert grid.box_px == pytest.approx(900 / 250, rel=0.03)


@pytest.mark.parametrize("color", ["red", "#ff69b4", "#ff8800"])
def test_a_coloured_trace_on_white_is_not_paper(record_100, color, default_model):
    from ecg_model.inference.predict import Predictor
    from ecg_model.inference.strip import grid_detect

    beat = record_100[:600]
    pic = _plot(beat, 250.0, color=color)
    assert grid_detect(pic) is None
    p = Predictor(default_model)
    coloured = p.predict_picture(pic, "coloured.png")
    black = p.predict_picture(_plot(beat, 250.0), "black.png")
    assert coloured.span.source != "grid"
    assert coloured.predicted_class == black.predicted_class
    assert abs(coloured.confidence - black.confidence) < 0.15


def test_a_warm_tint_is_not_a_grid(default_model):
    from PIL import Image

    from ecg_model.inference.predict import Predictor

    ex = sorted((ROOT / "artifacts" / "examples").glob("N_1_*.png"))[0]
    rgb = np.asarray(Image.open(ex).convert("RGB")).astype(np.float64)
    rng = np.random.default_rng(0)
    warm = rgb * np.array([1.0, 0.8, 0.6]) + rng.normal(0, 6, rgb.shape)
    warm = np.clip(warm, 0, 255).astype(np.uint8)
    p = Predictor(default_model).predict_picture(warm, "warm.jpg")
    assert p.span.source != "grid"
    assert "grid refused" in p.span.describe()


def test_a_phantom_grid_implying_no_heart_is_refused():
    from ecg_model.data.render import RenderSpec, image_trace
    from ecg_model.inference.span import beats_unphysiological, span_find

    ex = sorted((ROOT / "artifacts" / "examples").glob("N_1_*.png"))[0]
    from PIL import Image

    pic = np.asarray(Image.open(ex).convert("RGB"))
    lo, hi, _ = image_trace(pic, centre_line=True)
    # Read as 0.16 s, the beat's QRS would be a few ms: not a heart's.
    assert "QRS" in beats_unphysiological(lo, hi, 0.16)
    assert beats_unphysiological(lo, hi, 2.4) == ""
    assert span_find(pic, lo, hi, RenderSpec()).source != "grid"


@needs_data
def test_a_frame_around_a_strip_changes_no_beat(record_100, default_model):
    from ecg_model.inference.predict import Predictor
    from ecg_model.inference.strip import strip_analyze

    p = Predictor(default_model)
    framed = strip_analyze(_plot(record_100, 250.0, "black", "paper", True, (10, 2)), p)
    bare = strip_analyze(_plot(record_100, 250.0, "black", "paper", False, (10, 2)), p)
    assert len(framed.classes) == len(bare.classes) >= 10
    assert framed.classes == bare.classes


def _cup() -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(0)
    h, w = 600, 800
    y, x = np.mgrid[0:h, 0:w]
    bg = np.stack([180 + 40 * x / w, 150 + 30 * y / h, 110 + 0 * x], -1)
    im = Image.fromarray(bg.astype(np.uint8))
    d = ImageDraw.Draw(im)
    d.ellipse((250, 120, 550, 200), fill=(240, 240, 235), outline=(60, 40, 30), width=4)
    d.rectangle((250, 160, 550, 450), fill=(235, 235, 230))
    d.ellipse((250, 400, 550, 500), fill=(235, 235, 230))
    d.ellipse((275, 130, 525, 190), fill=(90, 55, 30))  # the coffee
    d.arc((500, 220, 640, 380), -90, 90, fill=(230, 230, 225), width=25)
    a = np.asarray(im.filter(ImageFilter.GaussianBlur(2))).astype(np.float64)
    return np.clip(a + rng.normal(0, 6, a.shape), 0, 255).astype(np.uint8)


def _text_page() -> np.ndarray:
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    im = Image.new("RGB", (850, 1100), (250, 250, 245))
    d = ImageDraw.Draw(im)
    words = "the patient was seen in clinic today and reports no chest pain".split()
    for r in range(40):
        d.text((60, 60 + r * 24), " ".join(rng.choice(words, 12)), fill=(20, 20, 20))
    a = np.asarray(im).astype(np.float64) + rng.normal(0, 4, (1100, 850, 3))
    return np.clip(a, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("make", [_cup, _text_page], ids=["cup", "text"])
def test_what_is_not_an_ecg_is_refused(make, default_model):
    from ecg_model.inference.predict import Predictor

    with pytest.raises(EcgError, match="not an ECG|no ECG trace"):
        Predictor(default_model).predict_picture(make(), "photo.jpg")


# -- inputs read wrong (issue 28, 11, 13, 14) ----------------------------------


def test_exif_orientation_is_applied_before_anything_else():
    import io

    from PIL import Image

    from ecg_model.data.pictures import image_read

    ex = sorted((ROOT / "artifacts" / "examples").glob("N_1_*.png"))[0]
    upright = np.asarray(Image.open(ex).convert("RGB"))
    stored = Image.fromarray(upright).rotate(180)  # as a phone stores it
    exif = Image.Exif()
    exif[0x0112] = 3  # orientation: rotate 180 to show
    buf = io.BytesIO()
    stored.save(buf, "JPEG", quality=95, exif=exif)
    read = image_read(buf.getvalue(), "phone.jpg").astype(np.int16)
    assert read.shape == upright.shape
    assert np.abs(read - upright).mean() < 8  # upright, up to JPEG's loss


def test_a_csv_with_a_time_column_or_several_columns():
    from ecg_model.inference.predict import csv_signal_read

    t = np.arange(500) / 250.0
    mv = np.sin(2 * np.pi * t)
    two = "time,mV\n" + "\n".join(f"{a:.4f},{b:.4f}" for a, b in zip(t, mv))
    got = csv_signal_read(two.encode(), "two.csv", fs=250.0)
    assert got.shape == (500,) and np.allclose(got, mv, atol=1e-4)
    bare = "\n".join(f"{a:.4f};{b:.4f}" for a, b in zip(t, mv))  # no header
    assert np.allclose(csv_signal_read(bare.encode(), "b.csv"), mv, atol=1e-4)
    with pytest.raises(EcgError, match="implies 250 Hz, not the 360 Hz"):
        csv_signal_read(two.encode(), "two.csv", fs=360.0)
    three = "I,II,V1\n" + "\n".join("0.1,0.2,0.3" for _ in range(10))
    with pytest.raises(EcgError, match=r"3 columns \(I, II, V1\)"):
        csv_signal_read(three.encode(), "three.csv")


def _predict_record(record) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ecg_model", "predict-record", str(record)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


@needs_data
def test_a_header_that_names_the_wrong_format_is_refused(tmp_path):
    import wfdb

    from ecg_model.data.signals import record_raw_read, record_read

    from .conftest import DATA

    # 60 s of record 100 written as 16-bit samples, as a user's tool would.
    rec = wfdb.rdrecord(str(DATA / "mitdb" / "100"), sampto=21600)
    wfdb.wrsamp(
        "100",
        fs=rec.fs,
        units=rec.units,
        sig_name=rec.sig_name,
        p_signal=rec.p_signal,
        fmt=["16", "16"],
        write_dir=str(tmp_path),
    )
    head = (tmp_path / "100.hea").read_text()
    assert len(record_raw_read(tmp_path / "100").p_signal) == 21600  # whole: read
    # Declared as 212, the same bytes read as other, wrong samples.
    (tmp_path / "100.hea").write_text(head.replace(" 16 ", " 212 "))
    with pytest.raises(EcgError, match="checksum"):
        record_raw_read(tmp_path / "100")
    with pytest.raises(EcgError, match="checksum"):
        record_read(tmp_path / "100", annotated=False)
    out = _predict_record(tmp_path / "100")
    assert out.returncode != 0 and "checksum" in out.stderr
    assert "Traceback" not in out.stderr
    # A rate of -360 Hz is refused by the same guard, in the CLI too.
    first, rest = head.split("\n", 1)
    (tmp_path / "100.hea").write_text(first.replace(" 360", " -360") + "\n" + rest)
    out = _predict_record(tmp_path / "100")
    assert out.returncode != 0 and "sampling rate" in out.stderr


# -- offline and private (issue 28, 16-18) ------------------------------------


def test_a_dataset_link_leading_outside_the_roots_is_not_offered(tmp_path, monkeypatch):
    from ecg_model.app.webapp import datasets_available

    outside = tmp_path / "outside" / "secret"
    (outside / "train" / "Normal").mkdir(parents=True)
    art = tmp_path / "art"
    (art / "datasets" / "inside" / "train").mkdir(parents=True)
    (art / "datasets" / "leak").symlink_to(outside)
    monkeypatch.setenv("ECG_ARTIFACTS_DIR", str(art))
    monkeypatch.delenv("ECG_DATASET_ROOTS", raising=False)
    assert list(datasets_available()) == ["inside"]
    monkeypatch.setenv("ECG_DATASET_ROOTS", str(tmp_path / "outside"))
    assert list(datasets_available()) == ["inside", "leak"]


def test_the_server_binds_to_loopback_and_hides_tracebacks():
    import tomllib

    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert cfg["server"]["address"] == "127.0.0.1"
    assert cfg["client"]["showErrorDetails"] == "none"


def test_messages_name_server_folders_relatively(tmp_path, monkeypatch):
    from ecg_model.app.webapp import paths_relative

    monkeypatch.setenv("ECG_ARTIFACTS_DIR", str(tmp_path / "art"))
    monkeypatch.setenv("ECG_DATA_DIR", str(tmp_path / "data"))
    msg = f"{tmp_path}/art/runs/r1/metrics.json: damaged; {tmp_path}/data/mitdb/100"
    out = paths_relative(msg)
    assert str(tmp_path) not in out
    assert "artifacts/runs/r1/metrics.json" in out and "data/mitdb/100" in out


def test_a_strip_without_a_grid_has_a_relative_amplitude(record_100, default_model):
    from ecg_model.app.charts import signal_chart
    from ecg_model.inference.predict import Predictor
    from ecg_model.inference.strip import strip_analyze

    p = Predictor(default_model)
    bare = strip_analyze(_plot(record_100, 250.0, size=(10, 2)), p)
    paper = strip_analyze(_plot(record_100, 250.0, grid="paper", size=(10, 2)), p)
    assert not bare.amplitude_known and bare.to_json()["amplitude"] == "relative"
    assert paper.amplitude_known and paper.to_json()["amplitude"] == "mV"
    spec = signal_chart(
        bare.sig_time_s,
        bare.sig,
        bare.beat_time_s,
        bare.classes,
        amplitude_known=False,
    ).to_dict()
    assert "relative" in json.dumps(spec) and '"title": "mV"' not in json.dumps(spec)


def test_a_rerun_no_longer_clears_the_keras_session():
    # Streamlit's end-of-run clear_session (a full GC) was a third of the
    # server's CPU an upload; the dashboard keeps its models loaded instead.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from streamlit.runtime.scriptrunner import script_runner

    from ecg_model.app import webapp  # noqa: F401  (applies it on import)

    plt.figure()
    script_runner._clean_problem_modules()
    assert plt.get_fignums() == []  # figures are still closed
    assert "clear_session" not in script_runner._clean_problem_modules.__code__.co_names
