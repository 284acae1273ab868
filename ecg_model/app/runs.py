"""Run folders as a table, their curves, deletion, and the active model."""

from __future__ import annotations

import copy
import functools
import os
import shutil
from datetime import datetime
from pathlib import Path

import pandas as pd

from ..core.classes import CLASSES, VF_CLASS
from ..core.errors import EcgError
from ..core.io import artifacts_dir, atomic_write_json, default_model_dir, json_read
from ..data.render import RenderSpec
from ..training.config import TrainConfig
from ..training.evaluate import metrics_problem
from ..training.runfolder import runs_dir
from .jobs import run_control_check, status_checked

ACTIVE_FILE = "active_model.json"


def runs_list(runs: str | os.PathLike | None = None) -> pd.DataFrame:
    """One row per run: status, times, key settings, validation and test metrics."""
    rows = []
    root = runs_dir(runs)
    active = active_model().resolve()
    for d in sorted(root.glob("*/"), reverse=True) if root.is_dir() else []:
        if not ((d / "config.json").exists() or (d / "status.json").exists()):
            continue
        cfg, st, h, problem = run_read(d)
        if problem:
            # Shown as damaged, with what is wrong; it can still be deleted.
            cfg, st, h = {}, {"state": "damaged", "error": problem}, None
        row = {
            "run": d.name,
            "active": d.resolve() == active,
            "state": st.get("state", "unknown"),
            "started": st.get("started", st.get("created", "")),
            "duration_s": st.get("elapsed_s"),
            "model": cfg.get("model"),
            "split": cfg.get("split"),
            "epochs": cfg.get("epochs"),
            "batch_size": cfg.get("batch_size"),
            "learning_rate": cfg.get("learning_rate"),
            "best_val_accuracy": None,
            "test_accuracy": st.get("test_accuracy"),
            "test_macro_f1": st.get("test_macro_f1"),
            "error": st.get("error", ""),
            "path": str(d),
        }
        if h is not None and "val_accuracy" in h:
            row["best_val_accuracy"] = float(h["val_accuracy"].max())
        rows.append(row)
    return pd.DataFrame(
        rows,
        # The figures people compare first, then when and how the run was made.
        columns=[
            "run",
            "active",
            "state",
            "test_accuracy",
            "test_macro_f1",
            "best_val_accuracy",
            "split",
            "model",
            "started",
            "duration_s",
            "epochs",
            "batch_size",
            "learning_rate",
            "error",
            "path",
        ],
    )


#: A ``history.csv`` larger than this is damaged (a 60-epoch run writes ~10 KB).
HISTORY_MAX_BYTES = 2_000_000


def history_read(run: str | os.PathLike) -> tuple[pd.DataFrame | None, str]:
    """The run's ``history.csv`` and what is wrong with it ("" when whole);
    ``(None, "")`` before its first epoch ends.

    Every column must be numbers: one text value would otherwise reach the
    charts and the tables of three pages.
    """
    p = Path(run) / "history.csv"
    try:
        if not p.exists():
            return None, ""
        if p.stat().st_size > HISTORY_MAX_BYTES:
            return None, f"{p}: damaged (over {HISTORY_MAX_BYTES // 1000} KB)"
        h = pd.read_csv(p)
    except Exception as e:  # unreadable, not CSV: damaged, never a traceback
        return None, f"{p}: damaged ({type(e).__name__})"
    try:
        h = h.apply(pd.to_numeric, errors="raise").astype(float)
    except (ValueError, TypeError):
        return None, f"{p}: damaged (a value that is not a number)"
    if "epoch" not in h:
        return None, f"{p}: damaged (no epoch column)"
    return h, ""


def run_history(run: str | os.PathLike) -> pd.DataFrame | None:
    """The run's ``history.csv`` (None before its first epoch ends, or damaged)."""
    return history_read(run)[0]


def run_read(run: str | os.PathLike) -> tuple[dict, dict, pd.DataFrame | None, str]:
    """A run folder's configuration, status and history, each file read once,
    and what is wrong with its files ("" when every file a page or the
    predictor reads is whole): ``config.json``, ``status.json``,
    ``preprocessing.json``, ``history.csv`` and ``metrics.json``, each against
    its schema (types, ranges, sizes). Where something is wrong, what was read
    before it is returned with it."""
    d = Path(run)
    cfg: dict = {}
    try:
        cfg = json_read(d / "config.json")
        if not isinstance(cfg, dict):
            raise ValueError("not a JSON object")
        TrainConfig.from_json(cfg)
    except EcgError as e:
        return {}, {}, None, str(e)
    except (TypeError, ValueError) as e:
        return {}, {}, None, f"{d / 'config.json'}: damaged ({e})"
    try:
        st = status_checked(d)
    except EcgError as e:
        return cfg, {}, None, str(e)
    pre = d / "preprocessing.json"
    if pre.exists():
        try:
            RenderSpec.from_json(json_read(pre))
        except EcgError as e:
            return cfg, st, None, str(e)
        except (TypeError, ValueError) as e:
            return cfg, st, None, f"{pre}: damaged ({e})"
    h, bad = history_read(d)
    return cfg, st, h, bad or run_metrics(d)[1]


def _metrics_file(folder: Path) -> tuple[object, str]:
    """``metrics.json`` of a folder as read, and why it could not be ("" when
    read); ``(None, "")`` when there is none.

    Pages ask on every rerun (the model selector, for each model): a file is
    parsed again only when it changed.
    """
    p = folder / "metrics.json"
    try:
        stamp = p.stat().st_mtime_ns
    except OSError:
        return None, ""
    m, err = _metrics_parse(str(p), stamp)
    return copy.deepcopy(m), err


@functools.lru_cache(maxsize=256)
def _metrics_parse(path: str, stamp: int) -> tuple[object, str]:
    """:func:`json_read` of ``path`` as of modification time ``stamp`` (ns)."""
    try:
        return json_read(path), ""
    except EcgError as e:
        return None, str(e)


def run_metrics(run: str | os.PathLike) -> tuple[dict | None, str]:
    """The run's test metrics and what is wrong with them.

    ``(metrics, "")`` when whole, ``(None, problem)`` when damaged, ``(None, "")``
    when the run has none (yet).
    """
    m, err = _metrics_file(Path(run))
    if m is None:
        return None, err
    bad = metrics_problem(m)
    return (None, f"{Path(run) / 'metrics.json'}: damaged ({bad})") if bad else (m, "")


def run_delete(
    run: str | os.PathLike,
    runs: str | os.PathLike | None = None,
    who: str = "",
    admin: str = "",
    *,
    active_ok: bool = False,
) -> str:
    """Delete a finished, failed, cancelled or damaged run folder (never a
    queued or running one); ``who`` and ``admin`` as for
    :func:`~ecg_model.app.jobs.run_control_check`. Returns what was done.

    Raises
    ------
    EcgError
        The run is queued or running, may not be deleted by ``who``, or is the
        active model and ``active_ok`` is not given (the caller asks again).
    """
    run = Path(run).resolve()
    if run.parent != runs_dir(runs).resolve():
        raise EcgError(f"{run.name}: not a run folder of the runs folder")
    run_control_check(run, who, admin)
    try:
        st = status_checked(run)
    except EcgError:
        st = {"state": "damaged"}
    if st.get("state") in ("queued", "running"):
        raise EcgError(f"{run.name}: is {st['state']}; cancel it first")
    was_active = active_model().resolve() == run
    if was_active and not active_ok:
        raise EcgError(
            f"{run.name} is the active model: confirm deleting the active model "
            "(the default model then serves predictions)"
        )
    if was_active:
        active_model_set(None)
    shutil.rmtree(run)
    return f"Deleted {run.name}" + (
        "; it was the active model, so the default model is active now."
        if was_active
        else "."
    )


def active_model() -> Path:
    """The model ``predict`` pages use: the chosen run, else ``artifacts/default``."""
    p = artifacts_dir() / ACTIVE_FILE
    if p.exists():
        try:
            d = Path(json_read(p)["path"])
            if (d / "model.keras").exists():
                return d
        except (EcgError, KeyError):
            pass
    return default_model_dir()


def active_model_set(run: str | os.PathLike | None) -> None:
    """Make a finished run the active model (None: back to the default)."""
    p = artifacts_dir() / ACTIVE_FILE
    if run is None:
        if p.exists():
            p.unlink()
        return
    run = Path(run)
    if status_checked(run).get("state") != "finished":
        raise EcgError(f"{run.name}: only a finished run can be the active model")
    atomic_write_json(
        p,
        {
            "path": str(run.resolve()),
            "set": datetime.now().isoformat(timespec="seconds"),
        },
    )


def models_available(runs: str | os.PathLike | None = None) -> dict[str, Path]:
    """Label -> folder of every usable model: the default and each finished run."""
    out = {}
    if (default_model_dir() / "model.keras").exists():
        out["default"] = default_model_dir()
    df = runs_list(runs)
    for _, r in df[df["state"] == "finished"].iterrows():
        if (Path(r["path"]) / "model.keras").exists():
            out[r["run"]] = Path(r["path"])
    return out


def metrics_headline(model_dir: Path) -> tuple[dict | None, str]:
    """The model folder's metrics, protocol -> metrics (both protocols for the
    default, one for a run), and what is wrong with them ("" when whole).

    Asked several times on every rerun of a page: worked out once per version
    of the file, and handed out as a copy of the headline part only (the
    published file's LODO, reruns and style test are not copied each time).
    """
    p = model_dir / "metrics.json"
    try:
        stamp = p.stat().st_mtime_ns
    except OSError:
        return None, ""
    head, err = _headline_parse(str(p), stamp)
    return copy.deepcopy(head), err


@functools.lru_cache(maxsize=256)
def _headline_parse(path: str, stamp: int) -> tuple[dict | None, str]:
    """:func:`metrics_headline` of ``path`` as of modification time ``stamp``."""
    m, err = _metrics_parse(path, stamp)
    if m is None:
        return None, err
    head = m.get("protocols") if isinstance(m, dict) and "protocols" in m else None
    if head is None:
        head = {m.get("protocol", "test") if isinstance(m, dict) else "test": m}
    if not isinstance(head, dict):
        return None, f"{path}: damaged (protocols is not an object)"
    for proto, pm in head.items():
        if bad := metrics_problem(pm):
            return None, f"{path}: damaged ({proto}: {bad})"
    return head, ""


def _stamp(model_dir: Path) -> int:
    try:
        return (Path(model_dir) / "metrics.json").stat().st_mtime_ns
    except OSError:
        return 0


def model_figure(model_dir: Path) -> str:
    """A model's headline test figure in words, new patients first."""
    return _model_figure(str(model_dir), _stamp(model_dir))


@functools.lru_cache(maxsize=256)
def _model_figure(model_dir: str, stamp: int) -> str:
    """:func:`model_figure` as of the metrics file's modification ``stamp``
    (a selector asks it of every model on every rerun)."""
    head, damaged = metrics_headline(Path(model_dir))
    if damaged:
        return "metrics damaged"
    if not head:
        return "no test figures"
    if "patient" in head:
        return f"new patients {100 * head['patient']['accuracy']:.1f}%"
    proto, m = next(iter(head.items()))
    what = "same patients" if proto == "random" else proto
    return f"{what} {100 * m['accuracy']:.1f}% (not tested on new patients)"


#: A class is named as often taken for another when at least this share of its
#: test beats were called that other class.
MISTAKEN_MIN = 0.2


def class_caveat(model_dir: Path, cls: str) -> str:
    """What a model's test on new patients says of its call of class ``cls``,
    in words: how often such calls were right (precision), how many of the
    class's beats it found (recall), and which classes' beats it also called
    ``cls`` in at least :data:`MISTAKEN_MIN` of cases (a call of ``cls`` does
    not rule them out). Empty when the model was not tested on new patients or
    its figures lack the class."""
    return _class_caveat(str(model_dir), _stamp(model_dir), cls)


@functools.lru_cache(maxsize=1024)
def _class_caveat(model_dir: str, stamp: int, cls: str) -> str:
    """:func:`class_caveat` as of the metrics file's modification ``stamp``."""
    head, damaged = metrics_headline(Path(model_dir))
    m = (head or {}).get("patient") if not damaged else None
    if not isinstance(m, dict) or cls not in CLASSES:
        return ""
    pc = (m.get("per_class") or {}).get(cls) or {}
    if "precision" not in pc or "recall" not in pc:
        return ""
    n = len(m.get("test_records") or [])
    who = f"{n} test patients" if n else "its test patients"
    unit = "windows" if cls == VF_CLASS else "beats"
    out = (
        f"On new patients ({who}, each picture alone), {100 * pc['precision']:.1f}% "
        f"of this model's {cls} calls were right, and it found "
        f"{100 * pc['recall']:.1f}% of the {cls} {unit}."
    )
    j = CLASSES.index(cls)
    try:
        # Rows: true class; columns: the class called.
        rows = [[float(v) for v in r] for r in m.get("confusion_matrix")]
        shares = sorted(
            (
                (r[j] / sum(r), CLASSES[k])
                for k, r in enumerate(rows)
                if k != j and sum(r)
            ),
            reverse=True,
        )
    except (TypeError, ValueError, IndexError):
        shares = []
    mistaken = [f"{c} ({100 * s:.1f}%)" for s, c in shares if s >= MISTAKEN_MIN]
    if mistaken:
        out += (
            f" It also called {cls} these shares of other classes' beats, so a "
            f"{cls} call does not rule them out: {', '.join(mistaken)}."
        )
    return out


#: How each protocol's figures are named when two models are compared.
PROTOCOL_WORDS = {
    "patient": "new patients (the patient protocol)",
    "random": "a random split (patients seen in training)",
}


def model_compare(run: Path, current: Path) -> tuple[str, bool]:
    """A run's test figures beside the active model's, in words, and whether
    making the run active needs a confirmation: it is worse on new patients, or
    it was not tested on new patients while the active model was.

    Figures are compared only on the same protocol (new patients against new
    patients); where the two share none, the words say they cannot be.
    """
    new, _ = metrics_headline(run)
    cur, _ = metrics_headline(current)
    new, cur = new or {}, cur or {}
    words = f"this run: {model_figure(run)}; the active model: {model_figure(current)}"
    for proto in ("patient", "random"):
        if proto in new and proto in cur:
            worse = new[proto]["macro_f1"] < cur[proto]["macro_f1"]
            f1 = (
                f". On {PROTOCOL_WORDS[proto]}, macro F1 "
                f"{100 * new[proto]['macro_f1']:.1f}% for this run against "
                f"{100 * cur[proto]['macro_f1']:.1f}% for the active model"
            )
            return words + f1, worse or ("patient" in cur and proto != "patient")
    return words + (
        ". The two were not tested on the same protocol, so their figures "
        "cannot be compared"
    ), True
