"""Real browser: `streamlit run dashboard.py` driven by Playwright in Chromium."""

from __future__ import annotations

import re
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image

from ecg_model.core.classes import CLASSES
from ecg_model.core.io import atomic_write_json
from ecg_model.load import CHROMIUM_ARGS, chromium_path, dashboard_serve

from .conftest import ROOT, needs_data
from .test_predict import beat_picture

CHROMIUM = chromium_path()
playwright = pytest.importorskip(
    "playwright.sync_api", reason="playwright not installed"
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian chromium not installed (apt-get install chromium)"
)
ARTIFACTS_OUT = ROOT / "test-artifacts"


def _watch_requests(page, leaks: list[str]) -> None:
    """Record every request the page makes to a host other than this server:
    a clinical tool on a hospital network fetches nothing from outside."""
    from urllib.parse import urlparse

    def seen(req) -> None:
        host = urlparse(req.url).hostname or ""
        if req.url.startswith(("data:", "blob:", "about:")):
            return
        if host not in ("127.0.0.1", "localhost"):
            leaks.append(req.url)

    page.on("request", seen)


def _wait_file(pred, what: str, timeout_s: float = 900.0) -> None:
    """Wait on the state a step needs (a job's status file), not a fixed time:
    a busy machine makes a job slower, never wrong."""
    import time

    t0 = time.time()
    while not pred():
        if time.time() - t0 > timeout_s:
            raise AssertionError(f"{what}: not reached in {timeout_s:.0f} s")
        time.sleep(0.5)


@pytest.fixture
def server(tmp_path, tiny_run):
    art = tmp_path / "artifacts"
    (art / "runs").mkdir(parents=True)
    (art / "runs" / tiny_run.name).symlink_to(tiny_run)
    atomic_write_json(art / "active_model.json", {"path": str(tiny_run)})
    with dashboard_serve({"ECG_ARTIFACTS_DIR": str(art)}) as (url, _):
        yield url


@contextmanager
def _predict_page(url: str):
    """A Chromium page on the Predict page of the server at ``url``, reached
    from the home page as a user would; every request leaving 127.0.0.1 is
    checked when the block ends."""
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            leaks: list[str] = []
            _watch_requests(page, leaks)
            page.goto(url, timeout=60_000)
            page.get_by_text("Active model").wait_for(timeout=90_000)
            page.get_by_role("link", name="Predict").first.click()
            page.get_by_text("Upload one or more pictures").wait_for(timeout=90_000)
            yield page
            assert not leaks, f"requests that left 127.0.0.1: {leaks[:5]}"
        finally:
            browser.close()


@needs_data
def test_upload_in_a_real_browser(server, tmp_path):
    picture = tmp_path / "beat.png"
    Image.fromarray(beat_picture()).resize((400, 200)).save(picture)
    ARTIFACTS_OUT.mkdir(exist_ok=True)
    with _predict_page(server) as page:
        page.locator("input[type=file]").first.set_input_files(str(picture))
        page.get_by_text("Predicted class").wait_for(timeout=90_000)
        page.locator(".vega-embed").first.wait_for(timeout=60_000)
        body = page.inner_text("body")
        shown = [c for c in CLASSES if c in body]
        assert shown, body[:2000]
        assert "beat.png" in body
        page.screenshot(path=str(ARTIFACTS_OUT / "e2e_predict.png"), full_page=True)


@needs_data
def test_a_12_lead_page_uploaded_in_a_real_browser(server, tmp_path):
    """A printed 12-lead page, uploaded as a user would, is read as a page:
    its layout, the block decision and the leads' grid show."""
    import wfdb

    from ecg_model.data.pages import PageSpec, page_draw

    from .conftest import DATA

    if not (DATA / "cpsc2018" / "A0002.hea").exists():
        pytest.skip("cpsc2018 not found")
    rec = wfdb.rdrecord(str(DATA / "cpsc2018" / "A0002"))
    leads = {n: rec.p_signal[:, i] for i, n in enumerate(rec.sig_name)}
    page_png = tmp_path / "page.jpg"
    page_png.write_bytes(page_draw(leads, rec.fs, PageSpec(dpmm=6.0, jpeg=80)))
    with _predict_page(server) as page:
        page.locator("input[type=file]").first.set_input_files(str(page_png))
        page.get_by_text("12-lead page, layout 3x4+1").wait_for(timeout=120_000)
        page.get_by_text("Conduction:").first.wait_for(timeout=60_000)
        page.locator(".vega-embed").first.wait_for(timeout=60_000)
        # The downloads come last: the page is read once they are there.
        page.get_by_text("Leads as CSV").wait_for(timeout=60_000)
        assert "Leads as WFDB" in page.inner_text("body")
        _shot(page, "page")


@pytest.fixture
def newcomer_server(tmp_path, tiny_dataset):
    """A server as a newcomer meets it: the default model, a tiny dataset to
    train on, and a data folder of two records (a build takes seconds)."""
    from .conftest import DATA

    art, data = tmp_path / "artifacts", tmp_path / "data"
    (art / "datasets").mkdir(parents=True)
    (art / "datasets" / "tiny").symlink_to(tiny_dataset)
    for rec in ("mitdb/100", "vfdb/418"):
        (data / rec).parent.mkdir(parents=True, exist_ok=True)
        for ext in ("hea", "dat", "atr"):
            (data / f"{rec}.{ext}").symlink_to(DATA / f"{rec}.{ext}")
    env = {
        "ECG_ARTIFACTS_DIR": str(art),
        "ECG_DATA_DIR": str(data),
        "ECG_DATASET_ROOTS": str(tiny_dataset.parent),  # where the link leads
    }
    with dashboard_serve(env) as (url, _):
        yield url, art


def _shot(page, name: str) -> None:
    ARTIFACTS_OUT.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS_OUT / f"e2e_{name}.png"), full_page=True)


def _goto(page, title: str, marker: str) -> None:
    page.get_by_role("link", name=title).first.click()
    page.get_by_text(marker).first.wait_for(timeout=90_000)


@needs_data
def test_newcomers_path_in_a_real_browser(newcomer_server, tmp_path):
    from ecg_model.data.signals import record_read
    from ecg_model.strip_eval import strip_draw

    from .conftest import DATA

    url, art = newcomer_server
    beat = tmp_path / "beat.png"
    Image.fromarray(beat_picture()).resize((400, 200)).save(beat)
    rec = record_read(DATA / "mitdb" / "100")
    strip = tmp_path / "strip.png"
    strip.write_bytes(strip_draw(rec.sig[: int(10 * rec.fs)], rec.fs, "paper-pink"))
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.set_default_timeout(90_000)
            leaks: list[str] = []
            _watch_requests(page, leaks)
            # 1. Home: new-patient figures first.
            page.goto(url)
            page.get_by_text("Accuracy on new patients").wait_for()
            _shot(page, "home")
            # 2. Predict a beat, then a strip.
            _goto(page, "Predict", "Upload one or more pictures")
            page.locator("input[type=file]").first.set_input_files(str(beat))
            page.get_by_text("Predicted class:").first.wait_for()
            page.locator(".vega-embed").first.wait_for()
            _shot(page, "predict_beat")
            page.locator("input[type=file]").first.set_input_files(str(strip))
            page.get_by_text("rhythm strip,").first.wait_for()
            _shot(page, "predict_strip")
            # 3. Train: launch on the tiny dataset, queue a second, cancel it.
            _goto(page, "Train", "Launch training")
            page.get_by_test_id("stSelectbox").filter(has_text="Dataset").click()
            page.get_by_role("option", name="tiny").click()
            page.get_by_role("button", name="Launch training").click()
            # The run's state as it is now: training (banner), or done already.
            page.get_by_text(
                re.compile(r"is training|Training: |Latest run")
            ).first.wait_for()
            page.get_by_role("button", name="Launch training").click()
            page.get_by_text("Queued (1)").wait_for()
            page.get_by_role("button", name="Cancel", exact=True).click()
            page.get_by_text("Queued (1)").wait_for(state="detached")
            # The finished run's figures appear without a reload: wait on the
            # run's own status, then on the page (redrawn every 3 s).
            _wait_file(
                lambda: any(
                    '"finished"' in f.read_text()
                    for f in (art / "runs").glob("*/status.json")
                ),
                "a finished run",
            )
            try:
                page.get_by_text("(finished)").first.wait_for(timeout=120_000)
            finally:
                _shot(page, "train_last")
            page.get_by_text("Test accuracy").first.wait_for()
            _shot(page, "train_finished")
            # 4. Build a dataset in the background, close the tab, come back.
            _goto(page, "Dataset", "Build or rebuild a dataset")
            page.get_by_text("Build or rebuild a dataset").first.click()  # expand
            page.get_by_role("button", name="Build", exact=True).click()
            build = art / "datasets" / ".build.json"
            try:
                _wait_file(build.exists, "the build's status file", 300)
            finally:
                _shot(page, "dataset_build_clicked")
            page.get_by_text(
                re.compile(r"random: |Last build \(random\)")
            ).first.wait_for(timeout=300_000)
            page.close()
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.set_default_timeout(90_000)
            page.goto(url + "/dataset")
            _wait_file(
                lambda: (
                    '"finished"' in build.read_text()
                    or (art / "datasets" / "random" / "manifest.csv").exists()
                ),
                "the dataset build",
            )
            try:
                page.get_by_text("Last build (random): built").wait_for(timeout=120_000)
            finally:
                _shot(page, "dataset_built")
            assert (art / "datasets" / "random" / "manifest.csv").exists()
            # 5. Runs: the finished run's curves and metrics.
            _goto(page, "Runs", "Training curves")
            page.locator(".vega-embed").first.wait_for()
            _shot(page, "runs")
            assert not leaks, f"requests that left 127.0.0.1: {leaks[:5]}"
        finally:
            browser.close()


@needs_data
@pytest.mark.skipif(
    shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(),
    reason="nginx not installed (apt-get install nginx-light; .ci/run does)",
)
def test_two_servers_behind_nginx_share_one_artifacts_folder(tmp_path, tiny_run):
    """Two dashboard processes behind nginx (deploy/nginx.conf): a browser
    predicts through the proxy, WebSocket and media included. (The training
    lock across processes: tests/test_jobs.py, a lock held by another.)"""
    from ecg_model.load import proxy_serve

    art = tmp_path / "artifacts"
    (art / "runs").mkdir(parents=True)
    (art / "runs" / tiny_run.name).symlink_to(tiny_run)
    atomic_write_json(art / "active_model.json", {"path": str(tiny_run)})
    env = {"ECG_ARTIFACTS_DIR": str(art)}
    picture = tmp_path / "beat.png"
    Image.fromarray(beat_picture()).resize((400, 200)).save(picture)
    with (
        dashboard_serve(env) as (url_a, _),
        dashboard_serve(env) as (url_b, _),
        proxy_serve([url_a, url_b], tmp_path / "nginx") as url,
        playwright.sync_playwright() as p,
    ):
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            leaks: list[str] = []
            _watch_requests(page, leaks)
            page.set_default_timeout(120_000)
            page.goto(url + "/predict")
            page.get_by_text("Upload one or more pictures").wait_for()
            page.locator("input[type=file]").first.set_input_files(str(picture))
            page.get_by_text("Predicted class:").first.wait_for()
            # The picture the model saw comes from the session's own process.
            page.locator("img").first.wait_for()
            assert not [u for u in leaks if url.split("//")[1] not in u]
        finally:
            browser.close()
