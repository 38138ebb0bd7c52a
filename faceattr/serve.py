"""``faceattr serve``: the predictor as an HTTP service (FastAPI on uvicorn; ``pip install
'faceattr[serve]'``).

- ``POST /predict`` takes one uploaded image (multipart field ``file``) and ``?largest_face=``;
  it answers with the record ``faceattr predict --format json`` gives for a file.
- ``GET /health``; ``GET /metadata``: the 40 attribute names, the views, the bundle's sha256 and
  the version; OpenAPI docs at ``/docs``.
- ``GET /``: a page to try it in a browser (faceattr/static/), and the endpoints it uses, for
  programs too: ``POST /faces``, ``/reconstruct``, ``/manipulate``, ``/interpolate``
  (faceattr.serve_faces).

The uploads of concurrent requests are decoded, detected and aligned together, then their faces
encoded together (``MicroBatcher``: up to ``max_batch`` photos or faces, waiting at most
``max_wait_ms`` for more), so throughput grows with concurrency. Limits: ``max_upload_bytes`` per upload (413),
``faceattr.faces.images.MAX_PIXELS`` per image, decompression bombs included (413),
``upload_timeout_s`` to receive the upload (408), ``timeout_s`` per request (504); the size limit is
counted as the bytes arrive (faceattr.upload_limits), so a chunked upload is stopped at the limit. A bad
upload gets a 4xx whose ``detail`` says what is wrong; the server never fetches URLs.
"""
import asyncio
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from fastapi import Depends, FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from .version import __version__
from .data.attributes import ATTRIBUTE_NAMES
from .faces.images import ImageError, clean_message
from .faces.options import FaceOptions
from .serve_limits import MAX_UPLOAD_BYTES, TIMEOUT_S, UPLOAD_TIMEOUT_S
from .upload_limits import UploadLimits

MULTIPART_OVERHEAD_BYTES = 64 * 1024  # form boundaries and headers around the file itself
# An input's error kind (faceattr.faces.images.ImageError.kind) -> the status it is answered with:
# chosen by what the error is, never by its wording.
HTTP_STATUS = {"bad_input": 400, "too_large": 413}
MAX_BATCH = 64
MAX_WAIT_MS = 5.0


@dataclass
class _Job:
    items: object  # what one request brings: its faces (an array) or its photos (a list)
    future: asyncio.Future
    queued: float = field(default_factory=time.perf_counter)


class MicroBatcher:
    """Collects the work of concurrent requests and runs it as one batch: up to ``max_items``
    items, waiting at most ``max_wait_ms`` for more after the first. ``run(joined)`` computes the
    batch in a worker thread, ``join`` puts the requests' items together and ``take(out, slice)``
    gives one request its share of the output. A failed batch is run again one request at a time,
    so an error reaches only the request that caused it."""

    def __init__(self, run, join, take, max_items: int = MAX_BATCH, max_wait_ms: float = MAX_WAIT_MS):
        self.run, self.join, self.take = run, join, take
        self.max_items, self.max_wait = max_items, max_wait_ms / 1000
        self.queue: "asyncio.Queue[_Job]" = asyncio.Queue()
        self.batches = 0
        self._task: Optional[asyncio.Task] = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def submit(self, items):
        fut = asyncio.get_running_loop().create_future()
        await self.queue.put(_Job(items, fut))
        return await fut

    async def _gather(self) -> list[_Job]:
        loop = asyncio.get_running_loop()
        jobs = [await self.queue.get()]
        n, deadline = len(jobs[0].items), loop.time() + self.max_wait
        while n < self.max_items:
            try:
                job = await asyncio.wait_for(self.queue.get(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                break
            jobs.append(job)
            n += len(job.items)
        return [j for j in jobs if not j.future.cancelled()]

    async def _loop(self) -> None:
        while True:
            jobs = await self._gather()
            if jobs:
                await self._run(jobs)

    async def _run(self, jobs: list[_Job]) -> None:
        """Compute the jobs as one batch. If it fails, each job is computed again alone, so a
        failure caused by one request's input reaches that request only, never the others that
        happened to share its batch."""
        loop = asyncio.get_running_loop()
        try:
            out = await loop.run_in_executor(None, self.run, self.join([j.items for j in jobs]))
        except Exception as e:  # noqa: BLE001 - isolated below, or that request's own error
            if len(jobs) > 1:
                for j in jobs:
                    await self._run([j])
            elif not jobs[0].future.done():
                jobs[0].future.set_exception(e)
            return
        self.batches += 1
        k = 0
        for j in jobs:
            if not j.future.done():
                j.future.set_result(self.take(out, slice(k, k + len(j.items))))
            k += len(j.items)


def face_batcher(pipeline, max_batch: int = MAX_BATCH, max_wait_ms: float = MAX_WAIT_MS) -> MicroBatcher:
    """The faces of concurrent requests encoded in one pass of the encoder and heads."""
    return MicroBatcher(lambda faces: pipeline.encode(faces), np.concatenate, lambda out, sl: out.rows(sl),
                        max_batch, max_wait_ms)


def photo_batcher(pipeline, largest_face: bool, max_batch: int = MAX_BATCH,
                  max_wait_ms: float = MAX_WAIT_MS) -> MicroBatcher:
    """The uploads of concurrent requests decoded (in the thread pool), detected and aligned
    together: MTCNN runs once for all same-size photos of the batch."""
    def prepare(units):  # a lone upload needs no thread pool
        return pipeline.prepare(units, largest_face, workers=1 if len(units) == 1 else None)
    return MicroBatcher(prepare, lambda lists: sum(lists, []), lambda out, sl: out[sl], max_batch, max_wait_ms)


@dataclass(frozen=True)
class Limits:
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    timeout_s: float = TIMEOUT_S
    upload_timeout_s: float = UPLOAD_TIMEOUT_S


@dataclass(frozen=True)
class Batching:
    """How the work of concurrent requests is put together (``MicroBatcher``)."""

    max_items: int = MAX_BATCH
    max_wait_ms: float = MAX_WAIT_MS


class Service:
    """What the routes share: the predictor and its pipeline, the batchers, the limits."""

    def __init__(self, predictor, limits: Limits = Limits(), batching: Batching = Batching()):
        from .serve_faces import FaceStore
        self.predictor, self.pipeline, self.limits = predictor, predictor.pipeline, limits
        self.store = FaceStore()
        n, wait = batching.max_items, batching.max_wait_ms
        self.batcher = face_batcher(self.pipeline, n, wait)
        self.photos = {flag: photo_batcher(self.pipeline, flag, n, wait) for flag in (False, True)}

    def batchers(self) -> list[MicroBatcher]:
        return [self.batcher, *self.photos.values()]

    async def read_upload(self, file: UploadFile) -> tuple[bytes, str]:
        """(the upload's bytes, its name); 413 above the limit, 400 when empty."""
        limit = self.limits.max_upload_bytes
        data = await file.read(limit + 1)
        name = file.filename or "upload"
        if len(data) > limit:
            raise HTTPException(413, f"{name}: upload is above the limit of {limit:,} bytes")
        if not data:
            raise HTTPException(400, f"{name}: the upload is empty (0 bytes)")
        return data, name

    async def within_timeout(self, work, name: str):
        """``await work`` within the request timeout (504), with an input's error as its 4xx."""
        try:
            return await asyncio.wait_for(work, self.limits.timeout_s)
        except asyncio.TimeoutError:
            raise HTTPException(504, f"{name}: not answered within {self.limits.timeout_s:g} s") from None
        except ImageError as e:
            raise HTTPException(HTTP_STATUS.get(e.kind, 400), clean_message(str(e), name)) from None

    def thresholds(self, decision: str):
        """The thresholds of a request's decision rule; an unknown rule is the request's 400."""
        try:
            return self.pipeline.heads.threshold(decision)
        except ValueError as e:
            raise HTTPException(400, str(e)) from None

    async def predict(self, data: bytes, name: str, largest_face: bool, decision: str = "accuracy",
                      faces_kept: bool = False) -> dict:
        """The record of one upload: faces prepared in the thread pool, encoded in the batcher."""
        from .faces.video import Unit
        self.thresholds(decision)  # an unknown rule is this request's 400, before any work
        units = [Unit(data, name)]
        (p,) = await self.photos[largest_face].submit(units)
        if p.error:
            raise HTTPException(HTTP_STATUS.get(p.error_kind, 400),
                                clean_message(p.error.replace(f"<{len(data)} bytes>", name), name))
        encoded = self.pipeline.empty()
        if len(p.faces):
            try:
                encoded = await self.batcher.submit(p.faces)
            except Exception as e:  # noqa: BLE001 - the client learns that, not the traceback
                raise HTTPException(500, f"{name}: the attribute model failed on this upload "
                                         f"({type(e).__name__}); the server goes on") from None
        result = self.pipeline.results(units, [p], encoded, decision)[0]
        record = result.to_dict()
        if faces_kept:  # the page's POST /faces: each face's crop, kept for the generative endpoints
            from .serve_faces import data_url
            for face, found in zip(record["faces"], result.faces):
                face["id"], face["crop"] = self.store.put(found.crop), data_url(found.crop)
        return record

    def metadata(self) -> dict:
        return {"attributes": list(ATTRIBUTE_NAMES), "views": self.pipeline.encoder.names,
                "decision_rules": list(self.pipeline.heads.thresholds),
                "bundle_sha256": self.predictor.bundle.sha256, "version": __version__,
                "limits": {"max_upload_bytes": self.limits.max_upload_bytes, "timeout_s": self.limits.timeout_s,
                           "upload_timeout_s": self.limits.upload_timeout_s}}


def create_app(weights="pretrained", device=None, batch_size: Optional[int] = None,
               faces: Optional[FaceOptions] = None, limits: Limits = Limits(), batching: Batching = Batching(),
               **legacy):
    """The FastAPI app. ``faces``: how faces are found (``FaceOptions``; ``largest_face`` is each
    request's ``?largest_face=``); ``limits``: upload size and times; ``batching``: the
    micro-batches. The separate keywords of before (``min_face_size=``, ``timeout_s=``, ...) still
    work, deprecated."""
    from .inference.predictor import AttributePredictor
    faces, limits, batching = _legacy_app_options(faces, limits, batching, legacy)
    predictor = AttributePredictor(weights, device=device, batch_size=batch_size, faces=faces)
    service = Service(predictor, limits, batching)

    @asynccontextmanager
    async def lifespan(app):
        for b in service.batchers():
            b.start()
        yield
        for b in service.batchers():
            await b.stop()

    app = FastAPI(title="faceattr", version=__version__, lifespan=lifespan, dependencies=[Depends(_single_fields)],
                  description="The 40 CelebA attributes of every face in an uploaded photo "
                              "(multi-view VAE-WGAN features, linear SVM heads).")
    app.state.service, app.state.batcher, app.state.predictor = service, service.batcher, predictor
    app.add_middleware(UploadLimits, max_bytes=limits.max_upload_bytes, max_seconds=limits.upload_timeout_s,
                       slack_bytes=MULTIPART_OVERHEAD_BYTES)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.middleware("http")(_security_headers)
    _add_routes(app, service)
    from .serve_faces import Generator, add_face_routes
    add_face_routes(app, service, service.store, Generator(predictor.bundle))
    _add_page(app)
    return app


def _legacy_app_options(faces, limits: Limits, batching: Batching, legacy: dict):
    """(faces, limits, batching) with create_app's keywords of before FaceOptions folded in."""
    if not legacy:
        return faces, limits, batching
    import dataclasses
    import warnings
    warnings.warn(f"create_app({', '.join(sorted(legacy))}=...) is deprecated; pass faces=FaceOptions(...), "
                  f"limits=Limits(...), batching=Batching(...)", DeprecationWarning, stacklevel=3)
    groups = {"faces": (faces or FaceOptions()), "limits": limits, "batching": batching}
    renamed = {"max_batch": "max_items"}
    for key, value in legacy.items():
        key = renamed.get(key, key)
        where = next((g for g, obj in groups.items() if key in {f.name for f in dataclasses.fields(obj)}), None)
        if where is None:
            raise TypeError(f"create_app() got an unexpected keyword argument {key!r}")
        groups[where] = dataclasses.replace(groups[where], **{key: value})
    return groups["faces"], groups["limits"], groups["batching"]


# The page runs only its own scripts and styles; images may be data: and blob: URLs it made.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
                           "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
                           "frame-ancestors 'none'")


async def _security_headers(request: Request, call_next):
    response = await call_next(request)
    if not request.url.path.startswith(("/docs", "/redoc")):  # FastAPI's docs load their own CDN scripts
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _add_page(app: FastAPI) -> None:
    """The page at / from the package's static files (no CDN, no build step: works offline)."""
    from importlib import resources
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles
    static = resources.files("faceattr") / "static"

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return HTMLResponse((static / "index.html").read_text(encoding="utf-8"))

    app.mount("/static", StaticFiles(directory=str(static)), name="static")


async def _single_fields(request: Request) -> None:
    """A form field sent more than once (50 ``file`` parts) is refused: a route takes one value per
    field, and answering for the last part alone would ignore the rest silently."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return
    form = await request.form()  # parsed once: FastAPI's own parse of this request is cached
    for key in dict.fromkeys(form.keys()):
        n = len(form.getlist(key))
        if n > 1:
            raise HTTPException(400, f"field {key!r} was sent {n} times; send one per request "
                                     f"(one image per /predict request)")


async def _validation_error(request: Request, exc: RequestValidationError):
    missing = [e for e in exc.errors() if e.get("type") == "missing" and "file" in e.get("loc", ())]
    if missing:
        return JSONResponse({"detail": "expected a multipart/form-data upload with the image in a field "
                                       "named 'file'"}, status_code=422)
    return JSONResponse({"detail": "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                             for e in exc.errors())}, status_code=422)


def _add_routes(app: FastAPI, service: Service) -> None:
    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.get("/metadata")
    async def metadata():
        return service.metadata()

    @app.post("/predict")
    async def predict(file: UploadFile = File(..., description="the image (JPEG, PNG, ...)"),
                      largest_face: bool = Query(False, description="keep only the largest face"),
                      decision: str = Query("accuracy", description="what makes an attribute present: 'accuracy' "
                                            "(the sign of the score, the paper's rule) or 'balanced' (per-attribute "
                                            "thresholds chosen on val, which find rare attributes)")):
        data, name = await service.read_upload(file)
        return await service.within_timeout(service.predict(data, name, largest_face, decision), name)


def serve(host: str = "127.0.0.1", port: int = 8000, **kw) -> None:
    import uvicorn
    uvicorn.run(create_app(**kw), host=host, port=port, log_level="info")
