"""The server's error paths: pixel bombs, messages without object reprs, a failing batch, a
timeout, the detection size reaching every entry point, detection batched across requests."""
import io
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from faceattr.cli import main

PHOTO = Path(__file__).resolve().parents[1] / "examples" / "astronaut.png"


# ---- serve -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def app_client():
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient
    from faceattr.serve import Limits, create_app
    with TestClient(create_app(limits=Limits(max_upload_bytes=200_000)), raise_server_exceptions=False) as client:
        yield client


def test_a_pixel_bomb_is_413(app_client, monkeypatch):
    import faceattr.faces.images as images
    monkeypatch.setattr(images, "MAX_PIXELS", 10_000)
    buf = io.BytesIO()
    Image.new("RGB", (400, 400)).save(buf, format="PNG")  # small file, many pixels
    r = app_client.post("/predict", files={"file": ("bomb.png", buf.getvalue())})
    assert r.status_code == 413 and "bomb.png" in r.json()["detail"], r.text


def test_pillows_own_decompression_bomb_is_413(app_client, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5_000)  # Pillow refuses above twice this
    buf = io.BytesIO()
    Image.new("RGB", (200, 200)).save(buf, format="PNG")
    r = app_client.post("/predict", files={"file": ("bomb.png", buf.getvalue())})
    assert r.status_code == 413, r.text


def test_no_object_reprs_or_addresses_in_any_detail(app_client):
    bodies = [b"GIF89a not really", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, b"BM" + b"\xff" * 60,
              b"\xff\xd8\xff\xe0" + b"\0" * 30, b"RIFF\0\0\0\0WEBPVP8 ", b"hello"]
    for body in bodies:
        detail = app_client.post("/predict", files={"file": ("x.jpg", body)}).json()["detail"]
        assert not re.search(r"0x[0-9a-fA-F]{6,}|<_io\.|object at", detail), detail
        assert "x.jpg" in detail



# ---- serve's other error paths (issue 26, item 7) ----------------------------------------------
def test_the_batchers_failure_reaches_every_waiting_request_and_the_server_goes_on(app_client, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor
    pipeline = app_client.app.state.service.pipeline
    real = pipeline.encode
    monkeypatch.setattr(pipeline, "encode", lambda faces: (_ for _ in ()).throw(RuntimeError("encoder broke")))
    buf = io.BytesIO()
    Image.open(PHOTO).convert("RGB").resize((256, 256)).save(buf, format="JPEG")  # under the 200 kB limit
    data = buf.getvalue()
    with ThreadPoolExecutor(3) as pool:
        replies = list(pool.map(lambda _: app_client.post("/predict", files={"file": ("a.jpg", data)}), range(3)))
    assert [r.status_code for r in replies] == [500, 500, 500]
    assert all(r.json()["detail"] == "a.jpg: the attribute model failed on this upload (RuntimeError); "
                                      "the server goes on" for r in replies)
    monkeypatch.setattr(pipeline, "encode", real)
    assert app_client.post("/predict", files={"file": ("a.png", data)}).status_code == 200


def test_a_request_slower_than_the_timeout_gets_504(monkeypatch):
    pytest.importorskip("fastapi")
    import time as _time
    from fastapi.testclient import TestClient
    from faceattr.serve import Limits, create_app
    app = create_app(limits=Limits(timeout_s=0.5))
    pipeline = app.state.service.pipeline
    real = pipeline.encode

    def slow(faces):
        _time.sleep(1.5)
        return real(faces)
    monkeypatch.setattr(pipeline, "encode", slow)
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post("/predict", files={"file": ("slow.png", PHOTO.read_bytes())})
    assert r.status_code == 504 and r.json()["detail"] == "slow.png: not answered within 0.5 s"


def test_detect_size_reaches_the_transformer_the_server_and_ray_data(monkeypatch):
    """Every entry point takes --detect-size (issue 26): the detector it builds searches the size asked."""
    pytest.importorskip("fastapi")
    from faceattr.inference.transformer import MultiViewVAEFeatures
    from faceattr.inference.ray_data import FaceAttrActor
    from faceattr.serve import create_app
    from faceattr.faces.options import FaceOptions
    t = MultiViewVAEFeatures(detect_size=320).fit()
    assert t.get_params()["detect_size"] == 320 and t._get_pipeline().detector().max_side == 320
    assert create_app(faces=FaceOptions(detect_size=320)).state.service.pipeline.detector().max_side == 320
    assert FaceAttrActor(faces=FaceOptions(detect_size=320)).pipeline.detector().max_side == 320
    assert "--detect-size" in CliRunner().invoke(main, ["serve", "--help"]).output


def test_concurrent_uploads_are_detected_in_one_batch(monkeypatch):
    """issue 27: the server batches detection across requests, not only encoding."""
    pytest.importorskip("fastapi")
    from concurrent.futures import ThreadPoolExecutor
    from fastapi.testclient import TestClient
    from faceattr.serve import Batching, create_app
    app = create_app(batching=Batching(max_wait_ms=500))
    pipeline, sizes = app.state.service.pipeline, []
    real = pipeline.prepare
    monkeypatch.setattr(pipeline, "prepare", lambda units, *a, **k: sizes.append(len(units)) or real(units, *a, **k))
    data = PHOTO.read_bytes()
    with TestClient(app) as client, ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda i: client.post("/predict", files={"file": (f"{i}.png", data)}), range(4)))
    assert [r.status_code for r in replies] == [200] * 4
    assert [r.json()["file"] for r in replies] == [f"{i}.png" for i in range(4)]
    assert max(sizes) > 1 and sum(sizes) == 4, sizes


def test_a_failing_batch_is_run_again_one_request_at_a_time():
    """MicroBatcher: when the joined batch fails, each request is computed alone, so the error
    reaches only the request whose item caused it."""
    import asyncio
    from faceattr.serve import MicroBatcher

    def run(items):
        if "bad" in items:
            raise ValueError("bad item")
        return [x.upper() for x in items]

    async def go():
        b = MicroBatcher(run, lambda lists: sum(lists, []), lambda out, sl: out[sl], max_items=8, max_wait_ms=50)
        b.start()
        replies = await asyncio.gather(*(b.submit([x]) for x in ("a", "bad", "c")), return_exceptions=True)
        await b.stop()
        return replies
    a, bad, c = asyncio.run(go())
    assert a == ["A"] and c == ["C"] and isinstance(bad, ValueError)
