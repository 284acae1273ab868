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
from ..core.io import PROJECT_ROOT, artifacts_dir, data_dir, json_read
from ..inference.predict import Predictor
from ..training.evaluate import metrics_problem
from .jobs import ADMIN_ENV, CONTROL_ENV, JobRegistry

EXAMPLES_DIR = PROJECT_ROOT / "artifacts" / "examples"
IMAGE_TYPES = ["png", "jpg", "jpeg", "bmp", "webp"]

#: Characters Streamlit's Markdown gives a meaning to (``:`` starts icons and
#: emoji shortcodes, and links such as ``http://...``).
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def plain(text: object) -> str:
    """``text`` escaped so Streamlit shows it as itself, never as Markdown.

    Upload names and messages that quote them are the user's text: a file named
    ``![x](http://host/beacon.png).png`` must not make the browser fetch a picture.
    """
    return _MARKDOWN.sub(r"\\\1", str(text))


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
    """Built dataset folders under ``artifacts/datasets``: name -> folder."""
    root = artifacts_dir() / "datasets"
    if not root.is_dir():
        return {}
    return {
        d.name: d
        for d in sorted(root.iterdir())
        if d.is_dir()
        and not d.name.startswith(".")
        and ((d / "manifest.csv").exists() or (d / "train").is_dir())
    }


def metrics_headline(model_dir: Path) -> tuple[dict | None, str]:
    """The model folder's metrics, protocol -> metrics (both protocols for the
    default, one for a run), and what is wrong with them ("" when whole)."""
    p = model_dir / "metrics.json"
    if not p.exists():
        return None, ""
    try:
        m = json_read(p)
    except EcgError as e:
        return None, str(e)
    head = m.get("protocols") if isinstance(m, dict) and "protocols" in m else None
    if head is None:
        head = {m.get("protocol", "test") if isinstance(m, dict) else "test": m}
    if not isinstance(head, dict):
        return None, f"{p}: damaged (protocols is not an object)"
    for proto, pm in head.items():
        if bad := metrics_problem(pm):
            return None, f"{p}: damaged ({proto}: {bad})"
    return head, ""


def data_available() -> Path | None:
    d = data_dir()
    return d if (d / "mitdb").is_dir() else None


def examples() -> list[Path]:
    return sorted(EXAMPLES_DIR.glob("*.png")) if EXAMPLES_DIR.is_dir() else []


def env_summary() -> str:
    return (
        f"data folder: {data_dir()} · artifacts: {artifacts_dir()} · pid {os.getpid()}"
    )
