"""Drive the real app in headless Chromium: used by tests/test_browser.py and tools/screenshots.py.

Needs Debian's /usr/bin/chromium and the `playwright` pip package (never `playwright install`).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
# Without the network flags Chromium keeps calling home, which floods a closed network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
PAGES = {"home": "/", "train": "/train", "generate": "/generate", "latent": "/latent",
         "digit": "/digit", "compare": "/compare"}


def missing_requirements() -> str | None:
    """Why the browser cannot run here, or None when it can."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing (pip install -r requirements-dev.txt)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def streamlit_command(port: int, script="app.py", python: str | None = None) -> list[str]:
    """The command that serves `script` on 127.0.0.1:`port` (tests, screenshots, benchmarks)."""
    return [python or sys.executable, "-m", "streamlit", "run", str(script), "--server.headless",
            "true", "--server.port", str(port), "--server.address", "127.0.0.1",
            "--browser.gatherUsageStats", "false"]


def wait_healthy(url: str, proc, timeout: float):
    """Poll Streamlit's health endpoint until it answers; RuntimeError if the server dies or
    `timeout` seconds pass."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the server exited while starting")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the server did not become healthy")


@contextlib.contextmanager
def streamlit_server(script="app.py", *, cwd: Path = ROOT, env: dict | None = None,
                     python: str | None = None, timeout: float = 120, wrap=None):
    """`streamlit run script` from `cwd` (whose .streamlit/config.toml applies) on a free port;
    yields (base URL, process) and stops the server after. `wrap(command)` may prefix the
    command (e.g. to join a memory cgroup first); a server that fails to start raises
    RuntimeError with the end of its log."""
    port = free_port()
    command = streamlit_command(port, script, python)
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(wrap(command) if wrap else command, cwd=cwd,
                                env={**os.environ, **(env or {})}, stdout=log,
                                stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            try:
                wait_healthy(url, proc, timeout)
            except RuntimeError as e:
                log.seek(0)
                raise RuntimeError(f"streamlit run {script}: {e}:\n{log.read()[-3000:]}") from None
            yield url, proc
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(15)


@contextlib.contextmanager
def serve(env: dict | None = None, timeout: float = 90):
    """The app on a free port; yields the base URL, stops the server after."""
    with streamlit_server(env=env, timeout=timeout) as (url, _):
        yield url


@contextlib.contextmanager
def browser_page(width: int = 1400, height: int = 900):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()


def wait_until_idle(page, timeout_ms: int = 120_000, settle_ms: int = 1500):
    """Wait for the script run to finish (status widget gone) and charts to draw."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    page.wait_for_timeout(settle_ms)
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached",
                           timeout=timeout_ms)
    page.wait_for_timeout(settle_ms)


def visit(page, base_url: str, path: str):
    page.goto(base_url + path, wait_until="domcontentloaded")
    wait_until_idle(page)
    return page
