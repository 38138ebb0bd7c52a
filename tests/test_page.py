"""The page at / (issue 28), driven in a real headless Chromium (Debian's chromium and
chromium-driver, via Selenium) against the real `faceattr serve` on 127.0.0.1."""
import json
import subprocess
import sys

import pytest

selenium = pytest.importorskip("selenium", reason="the page tests need selenium (the [test] extra)")
pytest.importorskip("fastapi", reason="faceattr serve needs the [serve] extra")
httpx = pytest.importorskip("httpx")

from benchmarks.page_driver import (CHROMIUM, DRIVER, PHOTO, REPO, bars, edited_pixels, headless_chromium,  # noqa: E402
                                    running_server, upload, wait)

pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="Debian's chromium and chromium-driver are not "
                                "installed and could not be (scripts/test.sh installs them with apt-get)")


@pytest.fixture(scope="module")
def server():
    with running_server() as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with headless_chromium() as driver:
        yield driver


@pytest.mark.slow
def test_the_page_shows_faces_edits_them_and_survives_a_bad_file(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    browser.get(server + "/")
    upload(browser, PHOTO)
    wait(browser, lambda d: len(bars(d)) == 40, "the 40 bars of the astronaut's face")
    cli = json.loads(subprocess.run([sys.executable, "-m", "faceattr.cli", "predict", str(PHOTO), "--format", "json"],
                                    capture_output=True, text=True, cwd=REPO, check=True).stdout)[0]
    shown = bars(browser)
    for name, a in cli["faces"][0]["attributes"].items():
        assert shown[name] == pytest.approx(a["probability"], abs=1e-3), name
    names = browser.execute_script("return [...document.querySelectorAll('#bars li')].map(li => li.className)")
    assert names.index("absent") == sum(a["present"] for a in cli["faces"][0]["attributes"].values())  # present first
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#views figure")) == 6, "the crop and 5 views")
    wait(browser, edited_pixels, "the edited face at strength 0")
    before = edited_pixels(browser)
    browser.execute_script("const s = document.getElementById('strength'); s.value = '2.5';"
                           "s.dispatchEvent(new Event('input'));")
    wait(browser, lambda d: edited_pixels(d) not in (None, before), "the Smiling slider to change the face")

    fake = tmp_path / "notes.jpg"
    fake.write_text("this is text, not a photo")
    upload(browser, fake)
    error = wait(browser, lambda d: d.find_element(By.ID, "error").is_displayed() and d.find_element(By.ID, "error"),
                 "the error of a text file named .jpg")
    assert "notes.jpg" in error.text and "cannot read as an image" in error.text
    upload(browser, PHOTO)  # the page still works
    wait(browser, lambda d: not d.find_element(By.ID, "error").is_displayed(), "the error cleared")
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#gallery figure")) == 2, "both faces in the gallery")
    for fig in browser.find_elements(By.CSS_SELECTOR, "#gallery figure"):
        fig.click()
    browser.find_element(By.ID, "interpolate").click()
    wait(browser, lambda d: d.execute_script("const s = document.getElementById('strip');"
                                             "return !s.hidden && s.complete && s.naturalWidth > 0"), "the interpolation")
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE" and "/faces" not in e["message"]]
    assert not errors, errors  # (the refused upload's 400 is the one expected network error)


def test_the_page_is_served_with_a_content_security_policy_and_no_outside_urls(server):
    r = httpx.get(server + "/")
    assert r.status_code == 200 and "script-src 'self'" in r.headers["content-security-policy"]
    for asset in ("/static/page.js", "/static/page.css"):
        text = httpx.get(server + asset).text
        assert "http://" not in text and "https://" not in text and "innerHTML" not in text, asset
    assert "http" not in r.text.replace("http-equiv", "")


def test_one_request_edits_an_uploaded_face(server):
    with open(PHOTO, "rb") as fh:
        r = httpx.post(server + "/manipulate", data={"attribute": "Smiling", "strength": "-2", "view": "relu4_1"},
                       files={"file": ("a.png", fh)}, timeout=60)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content[:4] == b"\x89PNG"
    from PIL import Image
    import io
    assert Image.open(io.BytesIO(r.content)).size == (128, 128)
    bad = httpx.post(server + "/manipulate", data={"attribute": "Smilng", "face_id": "nope"}, timeout=60)
    assert bad.status_code == 404 and "not kept here" in bad.json()["detail"]
    with open(PHOTO, "rb") as fh:
        bad = httpx.post(server + "/manipulate", data={"attribute": "Smilng"}, files={"file": ("a.png", fh)}, timeout=60)
    assert bad.status_code == 400 and "unknown attribute 'Smilng'" in bad.json()["detail"]
