"""A real `faceattr serve` on 127.0.0.1 and a headless Chromium (Debian's chromium and
chromium-driver, via Selenium) driving its page: shared by tests/test_page.py and
benchmarks/page_speed.py."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO / "examples" / "astronaut.png"
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
WAIT_S = 60
POLL_S = 0.01  # how often a wait looks again: also the resolution of page_speed's timings


SERVER_START_S = 120


@contextlib.contextmanager
def server_process(*serve_args: str):
    """The real `faceattr serve` (with ``serve_args``) on a free loopback port: yields (its URL, its
    process) once /health answers; the server is stopped on exit. Its output goes to a temporary
    file (a pipe nobody reads would block a server that logs every request of a load run), shown
    when it exits early or never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen([sys.executable, "-m", "faceattr.cli", "serve", "--port", str(port), *serve_args],
                                cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            _wait_for_health(url, proc, log)
            yield url, proc
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _wait_for_health(url: str, proc, log) -> None:
    import httpx
    deadline = time.time() + SERVER_START_S
    while True:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.3)
        if proc.poll() is not None or time.time() > deadline:
            log.seek(0)
            why = "exited" if proc.poll() is not None else f"did not answer /health within {SERVER_START_S} s"
            raise RuntimeError(f"faceattr serve {why}: {log.read().decode(errors='replace')}")


@contextlib.contextmanager
def running_server(*serve_args: str):
    """``server_process``, yielding only the URL."""
    with server_process(*serve_args) as (url, _):
        yield url


@contextlib.contextmanager
def headless_chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait(browser, condition, what: str):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(browser, WAIT_S, poll_frequency=POLL_S).until(lambda d: condition(d), message=what)


def upload(browser, path: Path) -> None:
    from selenium.webdriver.common.by import By
    browser.find_element(By.ID, "file").send_keys(str(path))


def bars(browser) -> dict:
    return browser.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('#bars li')]"
        ".map(li => [li.dataset.attribute, Number(li.dataset.probability)]))")


def edited_pixels(browser) -> str:
    """A digest of the edited face's pixels, read back through a canvas."""
    return browser.execute_script("""
        const img = document.getElementById('edited');
        if (!img.complete || !img.naturalWidth) return null;
        const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
        const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
        const d = ctx.getImageData(0, 0, c.width, c.height).data;
        let h = 0; for (let i = 0; i < d.length; i += 7) h = (h * 31 + d[i]) % 1000000007;
        return img.src + ':' + h;""")
