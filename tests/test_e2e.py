"""Real browser: `streamlit run dashboard.py` driven by Playwright in Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from PIL import Image

from ecg_model.core.classes import CLASSES
from ecg_model.core.io import atomic_write_json

from .conftest import ROOT, needs_data
from .test_predict import beat_picture

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip(
    "playwright.sync_api", reason="playwright not installed"
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian chromium not installed (apt-get install chromium)"
)
ARTIFACTS_OUT = ROOT / "test-artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path, tiny_run):
    art = tmp_path / "artifacts"
    (art / "runs").mkdir(parents=True)
    (art / "runs" / tiny_run.name).symlink_to(tiny_run)
    atomic_write_json(art / "active_model.json", {"path": str(tiny_run)})
    port = free_port()
    env = {**os.environ, "ECG_ARTIFACTS_DIR": str(art)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "dashboard.py",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(proc.stdout.read().decode()[-2000:]) from None
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@needs_data
def test_upload_in_a_real_browser(server, tmp_path):
    picture = tmp_path / "beat.png"
    Image.fromarray(beat_picture()).resize((400, 200)).save(picture)
    ARTIFACTS_OUT.mkdir(exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            # Open the home page as a user would, then follow the navigation.
            page.goto(server, timeout=60_000)
            page.get_by_text("Active model").wait_for(timeout=90_000)
            page.get_by_role("link", name="Predict").first.click()
            page.get_by_text("Upload one or more pictures").wait_for(timeout=90_000)
            page.locator("input[type=file]").first.set_input_files(str(picture))
            page.get_by_text("Predicted class").wait_for(timeout=90_000)
            page.locator(".vega-embed").first.wait_for(timeout=60_000)
            body = page.inner_text("body")
            shown = [c for c in CLASSES if c in body]
            assert shown, body[:2000]
            assert "beat.png" in body
            page.screenshot(path=str(ARTIFACTS_OUT / "e2e_predict.png"), full_page=True)
        finally:
            browser.close()
