"""Training jobs: background processes, one at a time, queued in order.

The dashboard keeps one :class:`JobRegistry` per server process (in
``st.cache_resource``), so a run survives page switches, browser refreshes and
several viewers. Each job is a separate process (``python -m ecg_model train
--run-dir RUN``), not a thread of the script: a crash or a cancel cannot take the
dashboard down, and the run folder's ``status.json`` is the single record of its
progress, readable by anyone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..core.io import PROJECT_ROOT
from ..training.config import TrainConfig
from ..training.train import run_cancel, run_create, runs_dir, status_read, status_write

ACTIVE_STATES = ("queued", "running")


def pid_alive(pid: int | None) -> bool:
    """Whether process ``pid`` exists (and is not a zombie of ours)."""
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError):
        return False
    try:  # a finished child not yet reaped still answers kill(0)
        done, _ = os.waitpid(int(pid), os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def status_checked(run_dir: str | os.PathLike) -> dict:
    """``status.json``, with a run whose process vanished marked failed.

    A run left ``running`` by a process that no longer exists (killed, machine
    restarted) would otherwise look alive forever.
    """
    st = status_read(run_dir)
    if st.get("state") == "running" and not pid_alive(st.get("pid")):
        st = status_write(
            run_dir,
            state="failed",
            error="training process ended unexpectedly (killed or out of memory)",
            phase="",
        )
    return st


class JobRegistry:
    """Launches training runs one at a time; later requests wait in a queue.

    Parameters
    ----------
    runs : path, optional
        Folder of run folders (default ``artifacts/runs``).
    env : dict, optional
        Extra environment for the training processes (e.g. ``ECG_DATA_DIR``).
    """

    def __init__(
        self, runs: str | os.PathLike | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.runs = runs  # None: artifacts/runs, resolved at each submit
        self.env = {**os.environ, **(env or {})}
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._active: Path | None = None
        self._queue: list[Path] = []

    # -- public API ---------------------------------------------------------

    def submit(self, config: TrainConfig) -> tuple[Path, str]:
        """Create a run for ``config``; start it or queue it. Returns (run, message)."""
        run = run_create(config, runs_dir(self.runs))
        with self._lock:
            self._reap()
            if self._active is None:
                self._start(run)
                return run, f"started {run.name}"
            self._queue.append(run)
            pos = len(self._queue)
            return run, (
                f"queued {run.name}: {self._active.name} is training "
                f"(one run at a time); position {pos} in the queue"
            )

    def active(self) -> Path | None:
        """The run training now, if any."""
        with self._lock:
            self._reap()
            return self._active

    def queued(self) -> list[Path]:
        with self._lock:
            self._reap()
            return list(self._queue)

    def cancel(self, run: str | os.PathLike, grace_s: float = 30.0) -> str:
        """Cancel a queued or running run; returns what happened."""
        run = Path(run)
        with self._lock:
            if run in self._queue:
                self._queue.remove(run)
                status_write(run, state="cancelled", phase="", error="")
                return f"removed {run.name} from the queue"
            if self._active != run:
                return f"{run.name} is not running"
            proc = self._proc
        # The stop file ends training within a batch; a process still building
        # its dataset gets SIGTERM after the grace period (also a clean cancel).
        run_cancel(run)
        threading.Thread(
            target=self._escalate, args=(proc, grace_s), daemon=True
        ).start()
        return f"stopping {run.name} after the current batch"

    def wait(self, timeout_s: float = 600.0) -> None:
        """Block until nothing is running or queued (for tests and scripts)."""
        t0 = time.time()
        while time.time() - t0 < timeout_s:
            if self.active() is None and not self.queued():
                return
            time.sleep(0.2)
        raise TimeoutError("training jobs still running")

    # -- internals ----------------------------------------------------------

    def _start(self, run: Path) -> None:
        log = open(run / "train.log", "ab")  # noqa: SIM115 - handed to the child
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "ecg_model", "train", "--run-dir", str(run)],
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self._active = run
        status_write(run, pid=self._proc.pid)
        threading.Thread(
            target=self._watch, args=(self._proc, run), daemon=True
        ).start()

    def _watch(self, proc: subprocess.Popen, run: Path) -> None:
        proc.wait()
        with self._lock:
            self._finish(proc, run)

    def _finish(self, proc: subprocess.Popen, run: Path) -> None:
        if self._active != run:
            return
        st = status_read(run)
        if st.get("state") in ACTIVE_STATES:  # died before it could say so
            status_write(
                run,
                state="failed",
                phase="",
                error=f"training process exited with code {proc.returncode}",
            )
        self._active, self._proc = None, None
        while self._queue and self._active is None:
            nxt = self._queue.pop(0)
            if status_read(nxt).get("state") == "queued":
                self._start(nxt)

    def _reap(self) -> None:
        if self._proc is not None and self._proc.poll() is not None and self._active:
            self._finish(self._proc, self._active)

    @staticmethod
    def _escalate(proc: subprocess.Popen | None, grace_s: float) -> None:
        if proc is None:
            return
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except OSError:
                pass
