"""The page's endpoints (``faceattr serve``): faces found and kept for a while, reconstructed by each
view, edited along an attribute vector, interpolated. Programs can use them too, in one request:
each takes an uploaded image (``file``, with ``face`` the index of the face in it) instead of a
kept face's ``face_id``.

Faces are kept in memory only: the aligned 64x64 crop of each face ``POST /faces`` found, for
FACE_TTL_S seconds after its last use and at most MAX_FACES faces (the oldest go first); uploads
are never written to disk. The views' decoders are loaded once; a face's latent means are
computed once per view and kept with it, so a slider step is one decoder pass.
"""
from __future__ import annotations

import base64
import io
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from fastapi import FastAPI, File, Form, HTTPException, Query, UploadFile
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from .generate_limits import MAX_STRENGTH  # one bound for the command and the page

MAX_FACES = 256
FACE_TTL_S = 600.0
DEFAULT_VIEW = "relu3_1"
MAX_INTERPOLATION_STEPS = 16
PNG_SCALE = 2  # faces are sent at 128x128: 64x64 is too small to see on a page


@dataclass
class KeptFace:
    crop: np.ndarray  # (64, 64, 3) uint8
    latents: dict = field(default_factory=dict)  # view -> (latent_dim,) torch tensor
    used: float = field(default_factory=time.monotonic)


class FaceStore:
    """Faces by id, in memory, least recently used first out, each gone FACE_TTL_S after its last use."""

    def __init__(self, max_faces: int = MAX_FACES, ttl_s: float = FACE_TTL_S):
        self.max_faces, self.ttl_s = max_faces, ttl_s
        self._faces: "OrderedDict[str, KeptFace]" = OrderedDict()
        self._lock = threading.Lock()

    def put(self, crop: np.ndarray) -> str:
        face_id = secrets.token_urlsafe(12)
        with self._lock:
            self._expire()
            self._faces[face_id] = KeptFace(crop)
            while len(self._faces) > self.max_faces:
                self._faces.popitem(last=False)
        return face_id

    def get(self, face_id: str) -> KeptFace:
        with self._lock:
            self._expire()
            face = self._faces.get(face_id)
            if face is None:
                raise HTTPException(404, f"face {face_id!r} is not kept here (faces are kept "
                                         f"{self.ttl_s:g} s after their last use); upload the photo again")
            face.used = time.monotonic()
            self._faces.move_to_end(face_id)
            return face

    def __len__(self) -> int:
        return len(self._faces)

    def _expire(self) -> None:
        now = time.monotonic()
        for face_id in [k for k, f in self._faces.items() if now - f.used > self.ttl_s]:
            del self._faces[face_id]


def png_bytes(image: np.ndarray, scale: int = PNG_SCALE) -> bytes:
    """(H, W, 3) uint8 -> PNG bytes, enlarged ``scale`` times (nearest neighbour)."""
    from PIL import Image
    img = Image.fromarray(image)
    if scale != 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def data_url(image: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode()


class Generator:
    """The views' VAEs and attribute vectors, loaded once, and the generative side on kept faces."""

    def __init__(self, bundle):
        import torch
        from .grid import to_uint8
        self._torch, self._to_uint8 = torch, to_uint8
        self.vaes = {v: bundle.load_vae(v) for v in bundle.views}
        self.vectors = bundle.attribute_vectors() if "attribute_vectors" in bundle.manifest else {}
        self._lock = threading.Lock()  # torch modules are shared by the request threads

    def view(self, view: str):
        if view not in self.vaes:
            raise HTTPException(400, f"unknown view {view!r}; the views are {', '.join(self.vaes)}")
        return self.vaes[view]

    def latent(self, face: KeptFace, view: str):
        from .generate import encode_means
        if view not in face.latents:
            face.latents[view] = encode_means(self.view(view), face.crop[None])[0]
        return face.latents[view]

    def _decode(self, view: str, z) -> np.ndarray:
        from .generate import decode
        return self._to_uint8(decode(self.view(view), z))

    def reconstructions(self, face: KeptFace) -> dict[str, np.ndarray]:
        with self._lock:
            return {v: self._decode(v, self.latent(face, v)[None])[0] for v in self.vaes}

    def manipulated(self, face: KeptFace, attribute: str, strength: float, view: str) -> np.ndarray:
        from .data.attributes import attribute_index
        try:
            a = attribute_index(attribute)
        except ValueError as e:
            raise HTTPException(400, str(e)) from None
        if view not in self.vectors:
            raise HTTPException(400, f"no attribute vectors for view {view!r}")
        with self._lock:
            z = self.latent(face, view) + strength * self._torch.from_numpy(self.vectors[view][a])
            return self._decode(view, z[None])[0]

    def interpolated(self, a: KeptFace, b: KeptFace, steps: int, view: str) -> np.ndarray:
        from .grid import tile
        with self._lock:
            za, zb = self.latent(a, view), self.latent(b, view)
            t = self._torch.linspace(0, 1, steps).unsqueeze(1)
            return tile(self._decode(view, (1 - t) * za + t * zb), per_row=steps)


async def _face_of(service, store: FaceStore, face_id: Optional[str], file: Optional[UploadFile],
                   index: int, field_name: str = "face_id") -> KeptFace:
    """The kept face ``face_id``, or face ``index`` of an uploaded image (kept, for the next call)."""
    if face_id:
        return store.get(face_id)
    if file is None:
        raise HTTPException(422, f"give a {field_name} from POST /faces, or upload an image as 'file'")
    data, name = await service.read_upload(file)
    record = await service.within_timeout(service.predict(data, name, True, faces_kept=True), name)
    faces = record["faces"]
    if not faces:
        raise HTTPException(422, f"{name}: no face found")
    if not 0 <= index < len(faces):
        raise HTTPException(400, f"{name}: face {index} asked for, the image has {len(faces)}")
    return store.get(faces[index]["id"])


def add_face_routes(app: FastAPI, service, store: FaceStore, generator: Generator) -> None:
    """POST /faces, /reconstruct, /manipulate, /interpolate."""

    @app.post("/faces", summary="detect, align and predict; keep each face for the other endpoints")
    async def faces(file: UploadFile = File(..., description="the image (JPEG, PNG, ...)"),
                    largest_face: bool = Query(False), decision: str = Query("accuracy")):
        data, name = await service.read_upload(file)
        return await service.within_timeout(service.predict(data, name, largest_face, decision, faces_kept=True), name)

    @app.post("/reconstruct", summary="a face and its reconstruction by each view (PNG data URLs)")
    async def reconstruct(face_id: Optional[str] = Form(None), file: Optional[UploadFile] = File(None),
                          face: int = Form(0)):
        kept = await _face_of(service, store, face_id, file, face)
        views = await service.within_timeout(run_in_threadpool(generator.reconstructions, kept), "reconstruct")
        return {"face": data_url(kept.crop), "views": {v: data_url(img) for v, img in views.items()}}

    @app.post("/manipulate", summary="a face moved along an attribute's latent vector (PNG)",
              response_class=Response, responses={200: {"content": {"image/png": {}}}})
    async def manipulate(attribute: str = Form(...), strength: float = Form(1.0, ge=-MAX_STRENGTH, le=MAX_STRENGTH),
                         view: str = Form(DEFAULT_VIEW), face_id: Optional[str] = Form(None),
                         file: Optional[UploadFile] = File(None), face: int = Form(0)):
        kept = await _face_of(service, store, face_id, file, face)
        img = await service.within_timeout(
            run_in_threadpool(generator.manipulated, kept, attribute, strength, view), "manipulate")
        return Response(png_bytes(img), media_type="image/png")

    @app.post("/interpolate", summary="the decoded path between two faces' latent means (PNG strip)",
              response_class=Response, responses={200: {"content": {"image/png": {}}}})
    async def interpolate(face_a: Optional[str] = Form(None), face_b: Optional[str] = Form(None),
                          file: Optional[UploadFile] = File(None), file_b: Optional[UploadFile] = File(None),
                          steps: int = Form(8, ge=2, le=MAX_INTERPOLATION_STEPS), view: str = Form(DEFAULT_VIEW)):
        a = await _face_of(service, store, face_a, file, 0, "face_a")
        b = await _face_of(service, store, face_b, file_b, 0, "face_b")
        img = await service.within_timeout(run_in_threadpool(generator.interpolated, a, b, steps, view), "interpolate")
        return Response(png_bytes(img), media_type="image/png")
