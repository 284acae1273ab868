"""Run folders: creation, ``status.json``, the stop file, progress, and whose
process a running run is.

Kept apart from the trainer so that the dashboard and the job registry can make,
read, cancel and mark runs without importing Keras. A run folder
``artifacts/runs/<run_id>/`` holds ``config.json``, ``preprocessing.json`` and
``status.json`` from its creation; the trainer adds the rest. Creating the file
``STOP`` in the folder cancels the run within one batch.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..core.errors import EcgError
from ..core.io import artifacts_dir, atomic_write_json, json_read, status_merge, utc_now
from ..data.dataset import dataset_spec
from ..data.render import RenderSpec
from .config import TrainConfig

STATES = ("queued", "running", "finished", "failed", "cancelled")
ACTIVE_STATES = ("queued", "running")
STOP_FILE = "STOP"


def status_read(run_dir: str | os.PathLike) -> dict:
    """The run's ``status.json`` (``{"state": "unknown"}`` if it has none).

    Raises
    ------
    EcgError
        The file is not a status object with a known state.
    """
    p = Path(run_dir) / "status.json"
    if not p.exists():
        return {"state": "unknown"}
    st = json_read(p)
    if not isinstance(st, dict) or st.get("state", "") not in (*STATES, ""):
        raise EcgError(f"{p}: damaged (not a status object with a known state)")
    for k in ("pid", "epoch", "epochs", "batch", "batches"):
        if k in st and st[k] is not None and not isinstance(st[k], int):
            raise EcgError(f"{p}: damaged ({k} is not a whole number)")
    return st


def status_write(run_dir: str | os.PathLike, **fields: Any) -> dict:
    """Merge ``fields`` into ``status.json`` and write it atomically (a damaged
    one raises, from :func:`status_read`, rather than being overwritten)."""
    st = status_read(run_dir)
    if st.get("state") == "unknown":
        st = {}
    return status_merge(Path(run_dir) / "status.json", fields, st)


def runs_dir(path: str | os.PathLike | None = None) -> Path:
    """Folder holding the run folders (``artifacts/runs``)."""
    return Path(path) if path else artifacts_dir() / "runs"


def run_create(
    config: TrainConfig,
    runs: str | os.PathLike | None = None,
    spec: RenderSpec | None = None,
) -> Path:
    """Make a queued run folder with ``config.json`` and ``preprocessing.json``.

    ``spec`` None: the drawing contract of ``config.dataset`` when it names a
    built dataset (so its cache loads as drawn), else the default contract.

    Raises
    ------
    EcgError
        The folder cannot be written (a full disk); nothing is left behind.
    """
    if spec is None:
        spec = (config.dataset and dataset_spec(config.dataset)) or RenderSpec()
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = (
        runs_dir(runs) / f"{stamp}-{config.model}-{config.split}-{secrets.token_hex(2)}"
    )
    try:
        run_dir.mkdir(parents=True, exist_ok=False)
    except OSError as e:
        raise EcgError(f"{run_dir}: cannot make the run ({e.strerror or e})") from None
    try:
        atomic_write_json(run_dir / "config.json", config.to_json())
        atomic_write_json(run_dir / "preprocessing.json", spec.to_json())
        status_write(
            run_dir,
            state="queued",
            created=utc_now(),
            epoch=0,
            epochs=config.epochs,
            batch=0,
            batches=0,
        )
    except EcgError:
        # A run folder without its status would be listed as damaged forever.
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return run_dir


def run_cancel(run_dir: str | os.PathLike) -> None:
    """Ask a run to stop: it finishes the batch in hand and marks itself cancelled."""
    (Path(run_dir) / STOP_FILE).touch()


# -- whose process is it ------------------------------------------------------


def pid_alive(pid: object) -> bool:
    """Whether process ``pid`` exists (and is not a zombie of ours)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a finished child not yet reaped still answers kill(0)
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def proc_start(pid: int) -> str:
    """When process ``pid`` started, as ``"<boot id>:<clock ticks since boot>"``
    (Linux's ``/proc/<pid>/stat``, field 22), or ``""`` where it cannot be read.

    A pid reused by another process (after a reboot, or much later) has another
    start, so a recorded start proves whose process a pid is.
    """
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
    except (OSError, ValueError):
        return ""
    # The command name (field 2) may hold spaces and parentheses: split after it.
    rest = stat.rpartition(")")[2].split()
    return f"{_boot_id()}:{rest[19]}" if len(rest) > 19 else ""


def proc_cmdline(pid: int) -> str:
    """The command line of process ``pid`` ("" where it cannot be read)."""
    try:
        raw = Path(f"/proc/{int(pid)}/cmdline").read_bytes()
        return raw.replace(b"\0", b" ").decode(errors="replace").strip()
    except (OSError, ValueError):
        pass
    try:  # no /proc (macOS): ps says it
        out = subprocess.run(
            ["ps", "-o", "args=", "-p", str(int(pid))],
            capture_output=True,
            text=True,
            timeout=5,
        )
        return out.stdout.strip()
    except (OSError, ValueError, subprocess.SubprocessError):
        return ""


def proc_identity(pid: int) -> dict:
    """What ``status.json`` records of a run's process: its pid and start."""
    return {"pid": int(pid), "pid_start": proc_start(pid)}


def proc_same(pid: object, recorded: object) -> bool | None:
    """Whether live process ``pid`` is the one whose start was ``recorded``
    (:func:`proc_identity`): False for a dead pid or another start, None where
    no start was recorded (the caller decides)."""
    if not pid_alive(pid):
        return False
    if isinstance(recorded, str) and recorded:
        return proc_start(pid) == recorded
    return None


def trainer_alive(run_dir: str | os.PathLike, st: dict) -> bool:
    """Whether the process ``st`` names is alive and provably the trainer of
    ``run_dir``: its start matches the start recorded with the pid, or (no start
    recorded) its command line names the run folder. A live process that is
    neither (a pid reused after a reboot) is somebody else's: never adopted,
    never signalled.
    """
    same = proc_same(st.get("pid"), st.get("pid_start"))
    return same if same is not None else Path(run_dir).name in proc_cmdline(st["pid"])


# -- progress -----------------------------------------------------------------


def _hms(s: float | None) -> str:
    if s is None:
        return "-"
    s = int(s)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _since(stamp: str | None, now: datetime) -> float | None:
    """Seconds from an ISO time stamp of ``status.json`` to ``now``."""
    try:
        return max((now - datetime.fromisoformat(str(stamp))).total_seconds(), 0.0)
    except (ValueError, TypeError):
        return None


def _int(v: object) -> int:
    try:
        return max(int(v or 0), 0)
    except (TypeError, ValueError):
        return 0


def progress_summary(st: dict, now: datetime | None = None) -> dict:
    """Fraction done, a label, elapsed and remaining time from a status dict.

    While a run is running, elapsed time counts from its start, so it shows from
    the first second (before any batch: the dataset and model phases). Remaining
    time extrapolates the time per batch since training began over the batches
    left. Before training, the bar follows a dataset build's progress.
    """
    now = now or datetime.now(timezone.utc)
    epochs = max(_int(st.get("epochs")), 1)
    batches, epoch, batch = (_int(st.get(k)) for k in ("batches", "epoch", "batch"))
    done = (max(epoch - 1, 0) * batches + batch) if batches else 0
    total = epochs * batches
    frac = min(done / total, 1.0) if total else 0.0
    running = st.get("state") == "running"
    elapsed = _since(st.get("started"), now) if running else None
    if elapsed is None:
        elapsed = st.get("elapsed_s")
    trained = _since(st.get("training_started"), now) if running else None
    trained = trained if trained is not None else st.get("elapsed_s")
    if not isinstance(elapsed, (int, float)):
        elapsed = None
    if not isinstance(trained, (int, float)):
        trained = None
    remaining = trained * (total - done) / done if trained and done else None
    phase = str(st.get("phase") or "")
    if batches and done:
        text = f"epoch {epoch}/{epochs}, batch {batch}/{batches}"
    else:
        text = phase or str(st.get("state", ""))
        if phase.startswith("dataset") and st.get("dataset_progress") is not None:
            try:
                frac = min(max(float(st["dataset_progress"]), 0.0), 1.0)
            except (TypeError, ValueError):
                pass
    return {
        "fraction": float(frac),
        "text": text,
        "elapsed": _hms(elapsed),
        "remaining": _hms(remaining),
    }
