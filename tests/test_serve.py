"""The service as a real server on 127.0.0.1, called over HTTP by httpx."""
import json
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx", reason="the service tests need httpx (the [test] extra)")
pytest.importorskip("fastapi", reason="faceattr serve needs the [serve] extra")

PHOTO = Path(__file__).resolve().parents[1] / "examples" / "astronaut.png"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def server():
    from benchmarks.page_driver import running_server
    with running_server("--max-upload-mb", "1", "--upload-timeout", "3") as url:
        yield url


def _post(url, data: bytes, name="photo.png", field="file", **params):
    return httpx.post(url + "/predict", files={field: (name, data, "application/octet-stream")},
                      params=params, timeout=60)


def test_predict_matches_the_cli_schema(server):
    from click.testing import CliRunner
    from faceattr.cli import main
    r = _post(server, PHOTO.read_bytes(), "astronaut.png")
    assert r.status_code == 200, r.text
    rec = r.json()
    cli = json.loads(CliRunner().invoke(main, ["predict", str(PHOTO), "--format", "json"]).stdout)[0]
    assert set(rec) == set(cli) == {"file", "error", "decision", "faces"}
    assert rec["file"] == "astronaut.png" and rec["error"] is None and len(rec["faces"]) == 1
    face, cli_face = rec["faces"][0], cli["faces"][0]
    assert set(face) == set(cli_face) and list(face["attributes"]) == list(cli_face["attributes"])
    assert face["box"] == pytest.approx(cli_face["box"], abs=0.2)
    for name, a in face["attributes"].items():
        assert a["present"] == cli_face["attributes"][name]["present"], name
        assert a["probability"] == pytest.approx(cli_face["attributes"][name]["probability"], abs=0.01)


def test_health_metadata_docs(server):
    assert httpx.get(server + "/health").json() == {"status": "ok"}
    meta = httpx.get(server + "/metadata").json()
    assert len(meta["attributes"]) == 40 and meta["views"] == ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    assert len(meta["bundle_sha256"]) == 64 and meta["version"]
    assert httpx.get(server + "/docs").status_code == 200
    assert "/predict" in httpx.get(server + "/openapi.json").json()["paths"]


def test_bad_uploads_get_4xx_and_the_server_goes_on(server):
    cases = {
        "empty": (_post(server, b"", "e.jpg"), 400, "empty"),
        "text": (_post(server, b"hello, not an image", "t.jpg"), 400, "cannot read as an image"),
        "truncated": (_post(server, PHOTO.read_bytes()[:5000], "cut.png"), 400, "cut.png"),
        "too large": (_post(server, os.urandom(1_300_000), "big.jpg"), 413, "above the limit"),
        "wrong field": (_post(server, PHOTO.read_bytes(), field="image"), 422, "field named 'file'"),
    }
    for name, (r, status, words) in cases.items():
        assert r.status_code == status, (name, r.status_code, r.text)
        assert words in r.json()["detail"], (name, r.json())
    assert _post(server, PHOTO.read_bytes()).status_code == 200  # still serving


def test_no_detail_holds_an_object_repr_or_address(server):
    import re
    for body in (b"hello, not an image", b"GIF89a" + b"\0" * 20, b"\x89PNG\r\n\x1a\n" + b"\0" * 30):
        detail = _post(server, body, "odd.jpg").json()["detail"]
        assert not re.search(r"0x[0-9a-fA-F]{6,}|<_io\.|object at", detail) and "odd.jpg" in detail, detail


def test_a_chunked_upload_is_stopped_at_the_limit_not_read_to_its_end(server):
    sent = []

    def chunks():  # 40 MB in 256 KiB pieces, no Content-Length: the limit is 1 MB
        boundary = b"--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.jpg\"\r\n\r\n"
        yield boundary
        for _ in range(160):
            sent.append(1)
            yield b"\0" * 262_144
        yield b"\r\n--xyz--\r\n"
    try:
        r = httpx.post(server + "/predict", content=chunks(), timeout=60,
                       headers={"content-type": "multipart/form-data; boundary=xyz"})
        assert r.status_code == 413 and "above the limit" in r.json()["detail"], r.text
    except httpx.HTTPError:
        pass  # the server answered and closed while the client was still sending: also a refusal
    assert len(sent) < 40, f"the server read {len(sent) / 4:.0f} MB before refusing"
    assert _post(server, PHOTO.read_bytes()).status_code == 200


def test_a_slow_upload_gets_408_within_the_upload_timeout(server):
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as s:
        s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                  b"Content-Length: 100000\r\n\r\n--b\r\n")
        started = time.time()
        reply = b""
        while b"\r\n\r\n" not in reply:
            piece = s.recv(4096)
            if not piece:
                break
            reply += piece
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert time.time() - started < 10


def test_largest_face_and_no_face(server):
    from PIL import Image
    import io
    buf = io.BytesIO()
    Image.new("RGB", (200, 200), (90, 90, 90)).save(buf, format="PNG")
    r = _post(server, buf.getvalue(), "blank.png")
    assert r.status_code == 200 and r.json()["faces"] == [] and r.json()["error"] is None
    assert len(_post(server, PHOTO.read_bytes(), largest_face="true").json()["faces"]) == 1


@pytest.mark.slow
def test_concurrent_burst(server):
    data = PHOTO.read_bytes()
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda _: _post(server, data), range(32)))
    assert all(r.status_code == 200 for r in results)
    smiling = {round(r.json()["faces"][0]["attributes"]["Smiling"]["probability"], 2) for r in results}
    assert len(smiling) == 1  # batched with others or not, the same answer


def test_a_crafted_upload_fails_only_its_own_request_in_a_shared_micro_batch(server):
    """The third audit's H2: 8 good uploads sent with a crafted DDS named evil.jpg at the same
    moment; the 8 are answered, the crafted one gets its own 400."""
    from test_decoding_boundary import evil_dds
    good, evil = PHOTO.read_bytes(), evil_dds()
    bodies = [(f"{i}.png", good) for i in range(8)] + [("evil.jpg", evil)]
    for _ in range(2):
        with ThreadPoolExecutor(len(bodies)) as pool:
            replies = list(pool.map(lambda nb: _post(server, nb[1], nb[0]), bodies))
        assert [r.status_code for r in replies] == [200] * 8 + [400], [r.text[:80] for r in replies]
        assert "evil.jpg: cannot read as an image" in replies[-1].json()["detail"]


def test_a_request_with_several_file_parts_is_refused_not_answered_for_the_last(server):
    import io
    from PIL import Image
    buf = io.BytesIO()
    Image.open(PHOTO).convert("RGB").resize((256, 256)).save(buf, "JPEG")  # five fit under the 1 MB limit
    data = buf.getvalue()
    r = httpx.post(server + "/predict", files=[("file", (f"{i}.png", data, "image/png")) for i in range(5)],
                   timeout=60)
    assert r.status_code == 400 and "field 'file' was sent 5 times" in r.json()["detail"], r.text
    assert _post(server, data).status_code == 200
