"""Job registry: background training processes, queue, progress, cancel, crash."""

from __future__ import annotations

import time

import pytest

from ecg_model.app.jobs import LOCK_FILE, JobRegistry, status_checked
from ecg_model.core.errors import EcgError
from ecg_model.training.config import TrainConfig
from ecg_model.training.runfolder import (
    proc_identity,
    run_create,
    status_read,
    status_write,
)

from .conftest import needs_data


def wait_for(pred, timeout_s: float = 240.0, step: float = 0.2):
    t0 = time.time()
    while time.time() - t0 < timeout_s:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError("condition not met in time")


@needs_data
def test_launch_progress_queue_and_cancel(tiny_dataset, tmp_path):
    reg = JobRegistry(tmp_path)
    # Long enough that it cannot finish before the cancel, however slow the
    # machine: a run that ends first is finished, never cancelled.
    cfg = TrainConfig(dataset=str(tiny_dataset), epochs=30, batch_size=16, seed=2)
    run1, msg1 = reg.submit(cfg)
    assert msg1.startswith("started")
    run2, msg2 = reg.submit(cfg)  # a second request waits, and is told why
    assert "queued" in msg2 and run1.name in msg2
    assert status_read(run2)["state"] == "queued"
    # Progress advances while it trains, in another process.
    wait_for(lambda: status_read(run1).get("batch", 0) >= 2)
    b1 = status_read(run1)["batch"]
    wait_for(
        lambda: (
            status_read(run1).get("batch", 0) > b1
            or status_read(run1).get("epoch", 0) > 1
        )
    )
    assert status_read(run1)["pid"] != 0
    # Cancel the running one: it stops within a batch; the queued one starts.
    assert "stopping" in reg.cancel(run1)
    wait_for(lambda: status_read(run1)["state"] == "cancelled")
    wait_for(lambda: reg.active() == run2)
    assert "removed" not in reg.cancel(run2)
    reg.wait(240)
    assert status_read(run2)["state"] == "cancelled"
    assert reg.active() is None


def test_crash_in_background_is_marked_failed(tmp_path):
    reg = JobRegistry(tmp_path)
    run, _ = reg.submit(TrainConfig(dataset=str(tmp_path / "missing"), epochs=1))
    reg.wait(120)
    st = status_read(run)
    assert st["state"] == "failed" and "dataset folder not found" in st["error"]


def test_queued_run_can_be_removed(tmp_path):
    reg = JobRegistry(tmp_path)
    run1, _ = reg.submit(TrainConfig(dataset=str(tmp_path / "missing"), epochs=1))
    run2, _ = reg.submit(TrainConfig(dataset=str(tmp_path / "missing"), epochs=1))
    if reg.active() == run1:
        assert "removed" in reg.cancel(run2)
        assert status_read(run2)["state"] == "cancelled"
    reg.wait(120)


def test_vanished_process_is_marked_failed(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    status_write(run, state="running", pid=2**22 + 12345)
    st = status_checked(run)
    assert st["state"] == "failed" and "ended unexpectedly" in st["error"]


def _holder(runs, seconds: int = 60):
    """A process that holds the training lock, as a training run does."""
    import fcntl
    import os
    import subprocess

    runs.mkdir(parents=True, exist_ok=True)
    fd = os.open(runs / LOCK_FILE, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    proc = subprocess.Popen(
        ["sleep", str(seconds)], pass_fds=(fd,), start_new_session=True
    )
    os.close(fd)
    return proc


def test_registry_rebuilds_its_state_after_a_restart(tmp_path):
    # A server was killed while run A trained and run B waited behind it.
    trainer = _holder(tmp_path)
    cfg = TrainConfig(dataset=str(tmp_path / "missing"), epochs=1)
    run_a = run_create(cfg, tmp_path)
    status_write(run_a, state="running", **proc_identity(trainer.pid))
    run_b = run_create(cfg, tmp_path)
    reg = JobRegistry(tmp_path)  # the restarted server
    assert reg.active() == run_a and reg.queued() == [run_b]
    # A new launch queues: the lock says a run trains, whoever started it.
    run_c, msg = reg.submit(cfg)
    assert "queued" in msg and reg.active() == run_a
    # A queued run can be cancelled, then deleted.
    assert "removed" in reg.cancel(run_b)
    assert status_read(run_b)["state"] == "cancelled"
    # When the adopted run's process ends, it is marked and the queue moves on.
    trainer.kill()
    trainer.wait()
    wait_for(lambda: reg.active() != run_a)
    assert status_read(run_a)["state"] == "failed"
    reg.wait(120)
    assert status_read(run_c)["state"] == "failed"  # its dataset is missing


def test_adopted_run_can_be_cancelled(tmp_path):
    trainer = _holder(tmp_path)
    run = run_create(TrainConfig(epochs=1), tmp_path)
    status_write(run, state="running", **proc_identity(trainer.pid))
    reg = JobRegistry(tmp_path)
    assert "stopping" in reg.cancel(run, grace_s=0.5)
    assert (run / "STOP").exists()
    trainer.wait(timeout=10)  # SIGTERM to its group after the grace period
    wait_for(lambda: reg.active() is None)


def test_status_check_survives_a_full_disk(tmp_path, monkeypatch):
    import ecg_model.app.jobs as jmod

    run = tmp_path / "r"
    run.mkdir()
    status_write(run, state="running", pid=2**22 + 12345)

    def full(*a, **k):
        raise EcgError(f"{run}/status.json: cannot write file (No space left)")

    monkeypatch.setattr(jmod, "status_write", full)
    st = status_checked(run)
    assert st["state"] == "failed" and "No space left" in st["error"]


def test_owner_mode_limits_cancel_and_delete(tmp_path, monkeypatch):
    from ecg_model.app.runs import run_delete

    cfg = TrainConfig(dataset=str(tmp_path / "missing"), epochs=1)
    trainer = _holder(tmp_path)  # keeps the runs queued
    reg = JobRegistry(tmp_path)
    run, _ = reg.submit(cfg, owner="alice")
    assert status_read(run)["owner"] == "alice"
    # Open by default: anyone may cancel.
    monkeypatch.delenv("ECG_RUN_CONTROL", raising=False)
    other, _ = reg.submit(cfg, owner="carol")
    assert "removed" in reg.cancel(other, who="bob")
    # Owner mode: only the launching session, or the admin token.
    monkeypatch.setenv("ECG_RUN_CONTROL", "owner")
    monkeypatch.setenv("ECG_ADMIN_TOKEN", "s3cret")
    for who, admin in (("bob", ""), ("", ""), ("bob", "wrong")):
        with pytest.raises(EcgError, match="only the browser session"):
            reg.cancel(run, who=who, admin=admin)
    assert "removed" in reg.cancel(run, who="alice")
    with pytest.raises(EcgError, match="only the browser session"):
        run_delete(run, tmp_path, who="bob")
    run_delete(run, tmp_path, who="bob", admin="s3cret")
    assert not run.exists()
    trainer.kill()
    trainer.wait()


@needs_data
def test_dataset_build_runs_in_the_background_and_can_be_cancelled(
    tmp_path, monkeypatch
):
    from ecg_model.app.jobs import build_summary

    from .conftest import DATA

    monkeypatch.setenv("ECG_ARTIFACTS_DIR", str(tmp_path))
    reg = JobRegistry(tmp_path / "runs", env={"ECG_DATA_DIR": str(DATA)})
    out = tmp_path / "datasets" / "tiny"
    opts = {"split": "random", "records": ["mitdb/100"]}
    assert "background" in reg.build_submit(opts, out)
    st = reg.build_status()
    assert st["state"] in ("starting", "running") and build_summary(st)["text"]
    with pytest.raises(EcgError, match="a dataset build is running"):
        reg.build_submit(opts, out)
    st = wait_for(
        lambda: (s := reg.build_status())["state"] not in ("starting", "running") and s
    )
    assert st["state"] == "finished" and st["n_images"] > 2000, st
    assert (out / "manifest.csv").exists()
    # A second build, cancelled while it runs: the first dataset stays whole.
    before = sorted(p.name for p in out.iterdir())
    reg.build_submit({"split": "patient"}, out)
    wait_for(lambda: reg.build_status().get("pid"))
    assert "cancelling" in reg.build_cancel()
    st = wait_for(
        lambda: (s := reg.build_status())["state"] not in ("starting", "running") and s
    )
    assert st["state"] == "cancelled", st
    assert sorted(p.name for p in out.iterdir()) == before
    assert not [p for p in out.parent.iterdir() if ".building-" in p.name]


def test_a_run_whose_end_cannot_be_written_reads_failed_from_memory(
    tmp_path, monkeypatch
):
    import ecg_model.app.jobs as jmod

    run = run_create(TrainConfig(epochs=1), tmp_path)  # "queued" on disk
    reg = JobRegistry(tmp_path / "other")
    reg._active = run  # as if its process had just been started and ended

    def full(*a, **k):
        raise EcgError(f"{run}/status.json: cannot write file (No space left)")

    monkeypatch.setattr(jmod, "status_write", full)
    reg._finish(run, 1)
    st = status_checked(run)
    assert st["state"] == "failed" and "No space left" in st["error"]
    assert status_read(run)["state"] == "queued"  # the disk could not say so
