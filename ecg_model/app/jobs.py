"""Training jobs: background processes, one at a time, queued in order.

The dashboard keeps one :class:`JobRegistry` per server process (in
``st.cache_resource``), so a run survives page switches, browser refreshes and
several viewers. Each job is a separate process (``python -m ecg_model train
--run-dir RUN``), not a thread of the script: a crash or a cancel cannot take the
dashboard down, and the run folder's ``status.json`` is the single record of its
progress, readable by anyone.

The registry's memory is rebuilt from the run folders when it starts (a server
restart): queued runs queue again in the order they were made, a run whose
process still lives is adopted (watched by its pid, cancellable), and one whose
process is gone is marked failed. "One run at a time" holds across restarts and
server processes: the training process holds an ``flock`` on
``<runs>/.training.lock`` for its whole life (the registry takes it, hands it
to the child and lets go), so a registry only starts a run when the lock is free.
"""

from __future__ import annotations

import fcntl
import hmac
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from ..core.errors import EcgError
from ..core.io import (
    PROJECT_ROOT,
    artifacts_dir,
    atomic_write_json,
    json_read,
    status_merge,
    utc_now,
)
from ..data.dataset import datasets_stale_clean
from ..training.config import TrainConfig
from ..training.runfolder import (
    ACTIVE_STATES,
    pid_alive,
    proc_identity,
    proc_same,
    run_cancel,
    run_create,
    runs_dir,
    status_read,
    status_write,
    trainer_alive,
)

LOCK_FILE = ".training.lock"
#: Who may cancel or delete a run: ``open`` (default: anyone, a workbench on
#: one's own machine) or ``owner`` (the browser session that launched it, or
#: whoever gives ``$ECG_ADMIN_TOKEN``), for a shared deployment.
CONTROL_ENV = "ECG_RUN_CONTROL"
ADMIN_ENV = "ECG_ADMIN_TOKEN"


def run_control_check(run: str | os.PathLike, who: str = "", admin: str = "") -> None:
    """Raise unless ``who`` (a session's token) may cancel or delete ``run``.

    Raises
    ------
    EcgError
        In ``owner`` mode, for any session but the one that launched the run,
        unless ``admin`` matches ``$ECG_ADMIN_TOKEN``.
    """
    mode = os.environ.get(CONTROL_ENV, "open")
    if mode == "open":
        return
    if mode != "owner":
        raise EcgError(f"{CONTROL_ENV}={mode!r}: expected 'open' or 'owner'")
    token = os.environ.get(ADMIN_ENV, "")
    if token and admin and hmac.compare_digest(admin.encode(), token.encode()):
        return
    owner = _status_or_damaged(Path(run)).get("owner", "")
    if not (who and owner and hmac.compare_digest(who.encode(), owner.encode())):
        raise EcgError(
            f"{Path(run).name}: only the browser session that launched it (or an "
            f"admin with {ADMIN_ENV}) may cancel or delete it ({CONTROL_ENV}=owner)"
        )


def _status_or_damaged(run_dir: Path) -> dict:
    """``status.json``, or ``{"state": "damaged"}`` where it cannot be read."""
    try:
        return status_read(run_dir)
    except EcgError as e:
        return {"state": "damaged", "error": str(e)}


def status_checked(run_dir: str | os.PathLike) -> dict:
    """``status.json``, with a run whose process vanished marked failed.

    A run left ``running`` by a process that no longer exists (killed, machine
    restarted) would otherwise look alive forever; so would one whose pid now
    belongs to an unrelated process (reused after a reboot), which is why the
    process must be provably the run's trainer (:func:`trainer_alive`).
    """
    st = status_read(run_dir)
    unsaved = UNSAVED.get(str(Path(run_dir).resolve()))
    if unsaved and st.get("state") in ACTIVE_STATES:
        return {**st, **unsaved}  # its end could not be written (a full disk)
    if st.get("state") == "running" and not trainer_alive(run_dir, st):
        gone = not pid_alive(st.get("pid"))
        failed = {
            "state": "failed",
            "error": "training process ended unexpectedly (killed or out of memory)"
            if gone
            else f"training process is gone (pid {st.get('pid')} is now another "
            "program's, as after a restart)",
            "phase": "",
        }
        try:
            st = status_write(run_dir, **failed)
        except EcgError as e:  # a full disk: say so, in memory at least
            st = {**st, **failed, "error": f"{failed['error']}; {e}"}
    return st


#: Runs whose end could not be written to ``status.json`` (a full disk): their
#: failed status, kept in this process's memory, by resolved run folder.
UNSAVED: dict[str, dict] = {}


#: The dataset build job's status file, in the datasets folder.
BUILD_STATUS = ".build.json"


def build_status_write(path: Path, **fields) -> dict:
    """Merge ``fields`` into a build job's status file (atomic; a damaged one
    is replaced: the build's status is the job's own, re-made at each step)."""
    return status_merge(path, fields)


def build_summary(st: dict, now: datetime | None = None) -> dict:
    """Fraction, label, elapsed and remaining time of a build job's status."""
    now = now or datetime.now(timezone.utc)
    try:
        elapsed = (now - datetime.fromisoformat(st["started"])).total_seconds()
    except (KeyError, ValueError, TypeError):
        elapsed = None
    if st.get("state") not in ("starting", "running") and st.get("elapsed_s"):
        elapsed = float(st["elapsed_s"])
    f = float(st.get("fraction") or 0.0)
    remaining = elapsed * (1 - f) / f if elapsed and f > 0.05 else None
    return {
        "fraction": min(max(f, 0.0), 1.0),
        "text": st.get("message") or st.get("state", ""),
        "elapsed": "-" if elapsed is None else f"{elapsed:.0f} s",
        "remaining": "-" if remaining is None else f"about {remaining:.0f} s",
    }


def _builder_alive(st: dict) -> bool:
    """Whether a build status's process is alive and the process started for
    it (an older status without a recorded start: alive is enough)."""
    return proc_same(st.get("pid"), st.get("pid_start")) is not False


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
        self._recover()
        # What a killed build left (its staging folder) goes at start-up.
        datasets_stale_clean(artifacts_dir() / "datasets")

    # -- public API ---------------------------------------------------------

    def submit(self, config: TrainConfig, owner: str = "") -> tuple[Path, str]:
        """Create a run for ``config``; start it or queue it. Returns (run, message).

        ``owner``: the launching session's token, kept in ``status.json`` (see
        :func:`run_control_check`).
        """
        run = run_create(config, runs_dir(self.runs))
        if owner:
            status_write(run, owner=owner)
        with self._lock:
            self._reap()
            if self._active is None and not self._queue and self._start(run):
                return run, f"started {run.name}"
            self._queue.append(run)
            pos = len(self._queue)
            who = self._active.name if self._active else "another run"
            return run, (
                f"queued {run.name}: {who} is training "
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

    def cancel(
        self,
        run: str | os.PathLike,
        grace_s: float = 30.0,
        who: str = "",
        admin: str = "",
    ) -> str:
        """Cancel a queued or running run; returns what happened.

        Raises
        ------
        EcgError
            ``who`` may not (see :func:`run_control_check`).
        """
        run = Path(run)
        run_control_check(run, who, admin)
        with self._lock:
            if run in self._queue:
                self._queue.remove(run)
                status_write(run, state="cancelled", phase="", error="")
                return f"removed {run.name} from the queue"
            if self._active != run:
                return f"{run.name} is not running"
            proc = self._proc or run  # our child, or an adopted run's folder
        # The stop file ends training within a batch; a process still building
        # its dataset gets SIGTERM after the grace period (also a clean cancel).
        run_cancel(run)
        threading.Thread(
            target=self._escalate, args=(proc, grace_s), daemon=True
        ).start()
        return f"stopping {run.name} after the current batch"

    # -- dataset builds: one at a time, in their own process ------------------

    def _build_file(self) -> Path:
        return artifacts_dir() / "datasets" / BUILD_STATUS

    def build_submit(self, options: dict, out: Path) -> str:
        """Start ``build-dataset`` for ``options`` (split, normal_cap,
        min_per_class, records, databases, image_width, extra_leads, noise,
        view) into ``out``; returns what happened.

        Raises
        ------
        EcgError
            A build is running already.
        """
        st = self.build_status()
        if st and st.get("state") in ("starting", "running"):
            raise EcgError(
                f"a dataset build is running ({st.get('out', '')}); "
                "wait for it or cancel it"
            )
        path = self._build_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(
            path,
            {
                "state": "starting",
                "cancel_requested": False,
                "message": "starting (loading the libraries)",
                "fraction": 0.0,
                "started": utc_now(),
                "out": str(out),
                "split": options["split"],
            },
        )
        cmd = [sys.executable, "-m", "ecg_model", "build-dataset", "--status"]
        cmd += [str(path), "--out", str(out), "--split", options["split"]]
        if options.get("normal_cap"):
            cmd += ["--cap", f"Normal={int(options['normal_cap'])}"]
        if options.get("min_per_class"):
            cmd += ["--min-per-class", str(int(options["min_per_class"]))]
        if options.get("records"):
            cmd += ["--records", *options["records"]]
        if options.get("databases"):
            cmd += ["--databases", *options["databases"]]
        if options.get("image_width"):
            cmd += ["--image-width", str(int(options["image_width"]))]
        if options.get("extra_leads"):
            cmd += ["--extra-leads"]
        if options.get("noise"):
            cmd += ["--noise", str(float(options["noise"]))]
        if options.get("view", "window") != "window":
            cmd += ["--view", str(options["view"])]
        proc = self._spawn(cmd, path.with_suffix(".log"))
        self._build_proc = proc
        build_status_write(path, **proc_identity(proc.pid))
        return f"building {out.name} in the background"

    def build_status(self) -> dict | None:
        """The current or last build's status (a dead process reads as failed)."""
        path = self._build_file()
        if not path.exists():
            return None
        try:
            st = json_read(path)
        except EcgError as e:
            return {"state": "damaged", "error": str(e)}
        proc = getattr(self, "_build_proc", None)
        if proc is not None and proc.poll() is not None:
            self._build_proc = None  # reaped: our child ended
        if st.get("state") in ("starting", "running") and st.get("pid"):
            if not _builder_alive(st):
                # A cancel during start-up ends the process before its handler
                # can say so: the request is on file.
                st = build_status_write(
                    path,
                    **(
                        {"state": "cancelled", "message": ""}
                        if st.get("cancel_requested")
                        else {
                            "state": "failed",
                            "error": "the build process ended unexpectedly (killed?)",
                        }
                    ),
                )
        return st

    def build_cancel(self) -> str:
        """Stop the running build; its temporary folder is removed, the old
        dataset stays."""
        st = self.build_status()
        if not st or st.get("state") not in ("starting", "running"):
            return "no dataset build is running"
        pid = st.get("pid")
        build_status_write(self._build_file(), cancel_requested=True)
        if isinstance(pid, int) and _builder_alive(st):
            try:
                os.killpg(int(pid), signal.SIGTERM)
            except OSError:
                pass
        return "cancelling the dataset build"

    def wait(self, timeout_s: float = 600.0) -> None:
        """Block until nothing is running or queued (for tests and scripts)."""
        t0 = time.time()
        while time.time() - t0 < timeout_s:
            if self.active() is None and not self.queued():
                return
            time.sleep(0.2)
        raise TimeoutError("training jobs still running")

    # -- internals ----------------------------------------------------------

    def _spawn(self, cmd: list[str], log: Path, **kw) -> subprocess.Popen:
        """A job process in its own session (a cancel signals its whole group),
        output appended to ``log``."""
        with open(log, "ab") as out:
            return subprocess.Popen(
                cmd,
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                **kw,
            )

    def _recover(self) -> None:
        """Rebuild the queue and the active run from the run folders."""
        root = runs_dir(self.runs)
        if not root.is_dir():
            return
        for run in sorted(p for p in root.iterdir() if (p / "status.json").exists()):
            try:
                st = status_checked(run)  # a dead "running" run becomes failed
            except EcgError:
                continue  # a damaged status.json: the Runs page shows it
            if st.get("state") == "queued":
                self._queue.append(run)
            elif st.get("state") == "running" and self._active is None:
                self._active = run  # adopted: watched through its pid
        with self._lock:
            self._reap()

    def _start(self, run: Path) -> bool:
        """Start ``run`` if no process holds the training lock; whether it did."""
        lock = os.open(runs_dir(self.runs) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            return False  # another server process's run is training
        try:
            self._proc = self._spawn(
                [sys.executable, "-m", "ecg_model", "train", "--run-dir", str(run)],
                run / "train.log",
                pass_fds=(lock,),  # the child holds the lock while it lives
            )
        finally:
            os.close(lock)
        self._active = run
        try:
            status_write(run, **proc_identity(self._proc.pid))
        except EcgError:
            pass  # a full disk: the child fails and says so, or _finish does
        threading.Thread(
            target=self._watch, args=(self._proc, run), daemon=True
        ).start()
        return True

    def _watch(self, proc: subprocess.Popen, run: Path) -> None:
        proc.wait()
        with self._lock:
            self._finish(run, proc.returncode)

    def _finish(self, run: Path, returncode: int | None) -> None:
        if self._active != run:
            return
        st = _status_or_damaged(run)
        if st.get("state") in ACTIVE_STATES:  # died before it could say so
            code = "" if returncode is None else f" with code {returncode}"
            failed = {
                "state": "failed",
                "phase": "",
                "error": f"training process exited{code} before it ended the run",
            }
            try:
                status_write(run, **failed)
            except EcgError as e:  # a full disk: failed in memory
                UNSAVED[str(run.resolve())] = {
                    **failed,
                    "error": f"{failed['error']}; {e}",
                }
        self._active, self._proc = None, None
        self._next()

    def _next(self) -> None:
        """Start the first queued run if nothing trains here or elsewhere."""
        while self._queue and self._active is None:
            nxt = self._queue[0]
            if _status_or_damaged(nxt).get("state") != "queued":
                self._queue.pop(0)
            elif self._start(nxt):
                self._queue.pop(0)
            else:
                return  # the lock is held: try again at the next look

    def _reap(self) -> None:
        if self._active is not None:
            if self._proc is not None:
                if self._proc.poll() is not None:
                    self._finish(self._active, self._proc.returncode)
            elif not trainer_alive(self._active, _status_or_damaged(self._active)):
                self._finish(self._active, None)  # an adopted run ended
        if self._active is None:
            self._next()

    @staticmethod
    def _escalate(proc: subprocess.Popen | Path, grace_s: float) -> None:
        """SIGTERM the run's process group if it has not ended after ``grace_s``.

        ``proc`` is our child, or an adopted run's folder: its process is
        signalled only while it is provably that run's trainer
        (:func:`trainer_alive`), never a stranger that took over its pid.
        """
        child = isinstance(proc, subprocess.Popen)

        def alive() -> bool:
            if child:
                return proc.poll() is None
            return trainer_alive(proc, _status_or_damaged(proc))

        t0 = time.time()
        while time.time() - t0 < grace_s:
            if not alive():
                return
            time.sleep(0.2)
        pid = proc.pid if child else _status_or_damaged(proc).get("pid")
        if not alive() or not isinstance(pid, int):
            return
        try:
            os.killpg(pid, signal.SIGTERM)
        except OSError:
            pass
