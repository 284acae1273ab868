"""Job registry: background training processes, queue, progress, cancel, crash."""

from __future__ import annotations

import time

from ecg_model.app.jobs import JobRegistry, status_checked
from ecg_model.training.config import TrainConfig
from ecg_model.training.train import status_read, status_write

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
    cfg = TrainConfig(dataset=str(tiny_dataset), epochs=2, batch_size=16, seed=2)
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
