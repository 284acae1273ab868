"""Shared state of the Streamlit dashboard: cached model, job registry, helpers.

Pages import from here; everything cached lives once per server process.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

import streamlit as st

from ..core.errors import EcgError
from ..core.io import (
    PROJECT_ROOT,
    artifacts_dir,
    data_dir,
    default_model_dir,
    path_confine,
)
from ..inference.predict import Predictor
from ..training.evaluate import per_class_frame
from .jobs import ADMIN_ENV, CONTROL_ENV, JobRegistry


def _rerun_cleanup_lighten() -> None:
    """Stop Streamlit clearing Keras's global session after every script run.

    Streamlit's script runner calls ``keras.backend.clear_session()`` (with a
    full garbage collection inside) at the end of each run, for apps that
    build models inside their script. The dashboard builds none: its models
    are loaded once per process (:func:`predictor_get`) and only called. On
    the upload path that call was a third of the server's CPU (py-spy, ten
    sessions). Matplotlib's figures are still closed, as Streamlit does.
    """
    try:
        from streamlit.runtime.scriptrunner import script_runner
    except ImportError:  # another layout of Streamlit: leave it as it is
        return
    if not hasattr(script_runner, "_clean_problem_modules"):
        return

    def _close_figures() -> None:
        import sys

        plt = sys.modules.get("matplotlib.pyplot")
        if plt is not None:
            plt.close("all")

    script_runner._clean_problem_modules = _close_figures


_rerun_cleanup_lighten()

EXAMPLES_DIR = PROJECT_ROOT / "artifacts" / "examples"
#: The page icon, served by the dashboard itself (an emoji or a Material icon
#: as page icon makes the browser fetch it from a font or emoji host).
ICON = Path(__file__).with_name("icon.png")
IMAGE_TYPES = ["png", "jpg", "jpeg", "bmp", "webp"]

#: Characters Streamlit's Markdown gives a meaning to (``:`` starts icons and
#: emoji shortcodes, and links such as ``http://...``).
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def paths_relative(text: object) -> str:
    """``text`` with the server's folders named relatively: the artifacts
    folder as ``artifacts``, the data folder as ``data``, the project as ``.``
    (a browser is never told where the server keeps its files)."""
    out = str(text)
    for folder, name in (
        (artifacts_dir(), "artifacts"),
        (data_dir(), "data"),
        (PROJECT_ROOT, "."),
    ):
        for form in {str(folder), str(Path(folder).resolve())}:
            if len(form) > 1:
                out = out.replace(form, name)
    return out


def plain(text: object) -> str:
    """``text`` escaped so Streamlit shows it as itself, never as Markdown, and
    with server folders named relatively (:func:`paths_relative`).

    Upload names and messages that quote them are the user's text: a file named
    ``![x](http://host/beacon.png).png`` must not make the browser fetch a picture.
    """
    return _MARKDOWN.sub(r"\\\1", paths_relative(text))


@st.cache_resource(show_spinner="Loading model ...")
def predictor_get(model_dir: str) -> Predictor:
    """One loaded model per folder per process (``model_dir`` as a string key)."""
    return Predictor(model_dir)


def session_token() -> str:
    """This browser session's token: it owns the runs it launches (a reload
    starts a new session)."""
    return st.session_state.setdefault("session_token", secrets.token_hex(16))


def admin_field() -> None:
    """The sidebar's admin token field, only where ``ECG_RUN_CONTROL=owner``
    (called once a page, outside fragments: they cannot write to the sidebar)."""
    if os.environ.get(CONTROL_ENV, "open") == "owner":
        st.sidebar.text_input(
            "Admin token",
            type="password",
            key="admin_token",
            help="Cancel or delete runs other sessions launched "
            f"(the server's {ADMIN_ENV}).",
        )


def control_identity() -> tuple[str, str]:
    """(session token, admin token from :func:`admin_field`) for cancel and delete."""
    return session_token(), st.session_state.get("admin_token", "")


@st.cache_resource
def registry_get() -> JobRegistry:
    """The process-wide training job registry (survives reruns and page switches)."""
    return JobRegistry()


def datasets_available() -> dict[str, Path]:
    """Built dataset folders under ``artifacts/datasets``: name -> folder.

    A symlink there is listed only where it leads inside the folders this
    workbench may open (:func:`~ecg_model.core.io.path_confine`): the list
    offers nothing that typing its path would refuse.
    """
    root = artifacts_dir() / "datasets"
    if not root.is_dir():
        return {}
    out = {}
    for d in sorted(root.iterdir()):
        if d.name.startswith(".") or not d.is_dir():
            continue
        try:
            path_confine(d)
        except EcgError:
            continue
        if (d / "manifest.csv").exists() or (d / "train").is_dir():
            out[d.name] = d
    return out


#: Recall limits of the words Home uses for a class on new patients.
GRADES = (("good", 0.9), ("fair", 0.6), ("poor", 0.0))


def class_grades(m: dict) -> dict[str, list[str]]:
    """Classes with test beats, by recall: ``good`` >= 90%, ``fair`` >= 60%,
    ``poor`` below; each list in class order."""
    out: dict[str, list[str]] = {g: [] for g, _ in GRADES}
    for c, d in m["per_class"].items():
        if d["support"] > 0:
            out[next(g for g, lim in GRADES if d["recall"] >= lim)].append(c)
    return out


def model_label(model_dir: Path) -> str:
    """A model's name for people: ``default`` or its run's name."""
    return (
        "default"
        if model_dir.resolve() == default_model_dir().resolve()
        else (model_dir.name)
    )


def percent_columns(df, columns: list[str]) -> dict:
    """``column_config`` showing these columns of ``df`` (fractions) as percent."""
    return {
        c: st.column_config.NumberColumn(format="percent")
        for c in columns
        if c in df.columns
    }


def per_class_table(m: dict, key: str, where=st) -> None:
    """A metrics dict's per-class precision, recall and F1 (in percent), support."""
    pc = per_class_frame(m)
    where.dataframe(
        pc,
        hide_index=True,
        key=key,
        column_config=percent_columns(pc, ["precision", "recall", "f1"]),
    )


def data_available() -> Path | None:
    d = data_dir()
    return d if (d / "mitdb").is_dir() else None


def examples() -> list[Path]:
    return sorted(EXAMPLES_DIR.glob("*.png")) if EXAMPLES_DIR.is_dir() else []
