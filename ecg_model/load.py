"""Load on the dashboard: N real browser sessions uploading a beat at once.

``python -m ecg_model.bench --load [--sessions 5 10 20]`` starts ``streamlit run
dashboard.py`` on a free port of 127.0.0.1 (nothing else is ever contacted),
opens N Chromium pages on its Predict page at the same moment, uploads the same
beat picture in each, and measures, per level: time from upload to the shown
class (p50/p95), errors, whether every page shows the class the CLI gives for
that picture, and the server's CPU seconds per prediction (``/proc``), the
figure that scales to other machines. ``--with-training`` repeats each level
while a training process runs beside the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .core.io import PROJECT_ROOT

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """Debian's Chromium (``apt-get install chromium``), if installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _health_wait(url: str, proc: subprocess.Popen, timeout_s: float) -> bool:
    """Wait until ``url``'s Streamlit health check answers; False when ``proc``
    exits or ``timeout_s`` passes first."""
    t0 = time.time()
    while True:
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=1)
            return True
        except OSError:
            if proc.poll() is not None or time.time() - t0 > timeout_s:
                return False
            time.sleep(0.3)


@contextlib.contextmanager
def dashboard_serve(env: dict[str, str], timeout_s: float = 60.0) -> Iterator[tuple]:
    """Run ``streamlit run dashboard.py`` on 127.0.0.1; yields (url, process).

    Raises
    ------
    RuntimeError
        The server exited or did not answer its health check in time.
    """
    port = _free_port()
    # The server's output goes to a file: a pipe nobody reads fills up (64 KB)
    # and then blocks the server mid-page on a busy, chatty run.
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "dashboard.py"]
        + ["--server.port", str(port), "--server.address", "127.0.0.1"]
        + ["--server.headless", "true"],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        if not _health_wait(url, proc, timeout_s):
            proc.kill()
            proc.wait()
            log.seek(0)
            out = log.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"dashboard did not start: {out}")
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


NGINX_TEMPLATE = PROJECT_ROOT / "deploy" / "nginx.conf"


@contextlib.contextmanager
def proxy_serve(backends: list[str], prefix: str | os.PathLike) -> Iterator[str]:
    """nginx on a free loopback port in front of ``backends`` (``http://host:port``
    URLs of dashboard processes), from ``deploy/nginx.conf``; yields its URL.

    Raises
    ------
    RuntimeError
        nginx is not installed, or did not answer in time.
    """
    from urllib.parse import urlparse

    exe = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if exe is None:
        raise RuntimeError("nginx not found (apt-get install nginx-light)")
    prefix = Path(prefix)
    prefix.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    lines = " ".join(f"server {urlparse(b).netloc};" for b in backends)
    conf = (
        NGINX_TEMPLATE.read_text()
        .replace("{{LISTEN}}", f"127.0.0.1:{port}")
        .replace("{{BACKENDS}}", lines)
        .replace("{{PREFIX}}", str(prefix))
    )
    (prefix / "nginx.conf").write_text(conf)
    proc = subprocess.Popen(
        [exe, "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        if not _health_wait(url, proc, 30.0):
            log = prefix / "error.log"
            err = log.read_text()[-1000:] if log.exists() else ""
            raise RuntimeError(f"nginx did not start: {err}")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def peak_rss_gb(pid: int) -> float:
    """Peak resident memory of process ``pid`` so far (``VmHWM``), GB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2  # kB -> GB
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` and its waited children, s."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


async def _open(browser, url: str, timeout_ms: int):
    """One user opens the Predict page; returns the page, or the error."""
    ctx = await browser.new_context(viewport={"width": 1300, "height": 1000})
    page = await ctx.new_page()
    page.set_default_timeout(timeout_ms)
    try:
        await page.goto(url + "/predict")
        await page.get_by_text("Upload one or more pictures").wait_for()
        return page
    except Exception as e:  # a timeout or a page error: counted, not raised
        return f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"


async def _upload(page, picture: str) -> dict:
    """Upload the picture and wait for the class; what was shown, and when."""
    if isinstance(page, str):
        return {"error": page}
    try:
        t0 = time.perf_counter()
        await page.locator("input[type=file]").first.set_input_files(picture)
        shown = page.get_by_text("Predicted class:").first
        await shown.wait_for()
        dt = time.perf_counter() - t0
        text = (await shown.inner_text()).split("Predicted class:", 1)[1]
        return {"s": dt, "shown": text.strip()}
    except Exception as e:
        return {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"}


async def _level(
    url: str, n: int, picture: str, timeout_ms: int, server_pid: int
) -> tuple[list[dict], float, float]:
    """N users open the page together, then upload together.

    Returns each upload's result and the server's CPU seconds spent on the page
    loads and on the uploads, measured apart (a fresh browser also fetches the
    dashboard's scripts, which a returning one has cached).
    """
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=chromium_path(), args=CHROMIUM_ARGS
        )
        try:
            c0 = cpu_seconds(server_pid)
            pages = await asyncio.gather(
                *(_open(browser, url, timeout_ms) for _ in range(n))
            )
            c1 = cpu_seconds(server_pid)
            res = await asyncio.gather(*(_upload(pg, picture) for pg in pages))
            c2 = cpu_seconds(server_pid)
            return list(res), c1 - c0, c2 - c1
        finally:
            await browser.close()


def _training_start() -> subprocess.Popen:
    """A training process beside the server: the trainer's fit loop on the
    bench's synthetic beats, as busy as a run (killed after the level)."""
    code = (
        "from ecg_model.bench import bench_train; bench_train(steps=40, epochs=10000)"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def load_run(
    sessions: tuple[int, ...] = (5, 10, 20),
    with_training: bool = False,
    picture: str | os.PathLike | None = None,
    timeout_s: float = 180.0,
) -> list[dict]:
    """Every level (and with a training process, if asked): one row of figures each.

    The server uses the committed default model in a fresh artifacts folder.
    """
    from .inference.predict import Predictor

    if chromium_path() is None:
        raise RuntimeError("Debian chromium not found (apt-get install chromium)")
    picture = str(
        picture
        or sorted((PROJECT_ROOT / "artifacts" / "examples").glob("N_1_*.png"))[0]
    )
    expected = Predictor().predict_file(picture).predicted_class
    rows = []
    with tempfile.TemporaryDirectory() as art:
        with dashboard_serve({"ECG_ARTIFACTS_DIR": art}) as (url, server):
            ms = int(timeout_s * 1000)
            asyncio.run(_level(url, 1, picture, ms, server.pid))  # warm up
            for training in (False, True) if with_training else (False,):
                for n in sessions:
                    trainer = _training_start() if training else None
                    try:
                        if trainer:
                            time.sleep(15)  # past its start-up, into steady fitting
                        t0 = time.perf_counter()
                        res, cpu_open, cpu_up = asyncio.run(
                            _level(url, n, picture, ms, server.pid)
                        )
                        wall = time.perf_counter() - t0
                    finally:
                        if trainer:
                            trainer.kill()
                            trainer.wait()
                    ok = [r for r in res if "s" in r]
                    lat = np.array([r["s"] for r in ok]) if ok else np.zeros(1)
                    rows.append(
                        {
                            "sessions": n,
                            "training": training,
                            "p50_s": round(float(np.percentile(lat, 50)), 2),
                            "p95_s": round(float(np.percentile(lat, 95)), 2),
                            "errors": len(res) - len(ok),
                            "match_cli": sum(
                                r["shown"].strip() == expected for r in ok
                            ),
                            "server_cpu_s_per_prediction": round(
                                cpu_up / max(len(ok), 1), 3
                            ),
                            "server_cpu_s_per_page_load": round(cpu_open / n, 3),
                            "wall_s": round(wall, 1),
                            "server_peak_rss_gb": round(peak_rss_gb(server.pid), 2),
                            "error_kinds": sorted(
                                {r["error"] for r in res if "error" in r}
                            ),
                        }
                    )
    return rows


def load_table(rows: list[dict]) -> str:
    """The load figures as a Markdown table (the README's)."""
    out = [
        "| sessions | training beside | p50 / p95 upload -> class (s) | errors "
        "| same class as the CLI | server CPU s an upload | server CPU s a page "
        "load (fresh browser) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['sessions']} | {'yes' if r['training'] else 'no'} | "
            f"{r['p50_s']:.2f} / {r['p95_s']:.2f} | {r['errors']} | "
            f"{r['match_cli']} of {r['sessions'] - r['errors']} | "
            f"{r['server_cpu_s_per_prediction']:.3f} | "
            f"{r['server_cpu_s_per_page_load']:.3f} |"
        )
    return "\n".join(out)
