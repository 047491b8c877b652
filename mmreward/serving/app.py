"""The reward server's FastAPI app: `POST /score`, OpenRLHF's `POST /get_reward`, `GET /health`, `GET /metrics`.

    app = create_app(load_scorer("ckpt"), ServeSettings(media_root="/data"))
    uvicorn.run(app, host="127.0.0.1", port=8000)             # or: mmreward serve --model ckpt …

`POST /score` takes ``{"records": [...]}`` in the record schema (pairs and/or pointwise; media as base64
``bytes``, raw arrays as base64 ``npy`` (+ ``fps`` for videos), server-side ``path`` under ``--media-root``, or
``url`` where enabled; see `mmreward.serving.inputs`) and answers ``{"results": [...]}``, one object per record in
request order, each as a line of `mmreward score` output; a record whose media fail carries ``error`` and the
others are scored. A malformed request is a 4xx JSON ``{"error", "field", "record", "id"}``: 400 not JSON,
403 a media source the policy refuses, 413 too large, 422 a schema error, 429 the queue is full. The body is read
in chunks and refused past ``max_body_bytes`` (Content-Length is checked first). A 5xx is a bug.
"""

import asyncio
import json
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from mmreward.serving.batcher import Batcher
from mmreward.serving.inputs import MediaPolicy, RequestError, parse_records
from mmreward.serving.metrics import Metrics
from mmreward.serving.openapi import OPENRLHF_BODY, body_doc, score_body

logger = logging.getLogger(__name__)


@dataclass
class ServeSettings:
    """How the server takes requests (the `mmreward serve` flags).

    Attributes:
        media_root: folder server-side media paths must stay inside (None: paths refused).
        allow_urls: fetch ``url`` media (http/https, with the media loader's deadline and size limits).
        max_body_bytes: largest request body.
        max_records: most records in one request.
        max_batch_size: records merged into one engine call (and units per forward pass).
        max_wait_ms: how long a request waits for others to share its batch.
        num_workers: media-decoding worker processes.
        max_queue_records: records allowed to wait before requests are refused with 429.
    """

    media_root: str | None = None
    allow_urls: bool = False
    max_body_bytes: int = 64 << 20
    max_records: int = 1024
    max_batch_size: int = 64
    max_wait_ms: float = 5.0
    num_workers: int = 0
    max_queue_records: int = 8192


class _Timing:
    """ASGI middleware: counts every request by endpoint and status, with its latency."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), [500]

        async def record_status(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            path = scope.get("path", "")
            endpoint = path if path in ("/score", "/get_reward", "/health", "/metrics") else "other"
            self.metrics.request(endpoint, status[0], time.perf_counter() - start)


def _json(content: Any, status: int = 200):
    from fastapi.responses import Response

    # ensure_ascii: a lone surrogate in an id is escaped instead of failing the UTF-8 encode.
    return Response(json.dumps(content, allow_nan=False), status_code=status, media_type="application/json")


# Bodies up to this size are parsed on the event loop: a few records take a few hundred microseconds, about what
# the hop to a worker thread and back costs. Larger ones (base64 frames, many records) are parsed in a worker
# thread, so that one big request never stalls the others.
INLINE_BODY_BYTES = 64 << 10


async def read_body(request, limit: int) -> bytes:
    """The request's body, read in chunks and refused past `limit` bytes (413; Content-Length is checked first)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(f"body of {declared} bytes exceeds the server's limit of {limit} bytes; split the "
                           "request or raise --max-body-mb", status=413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(f"body exceeds the server's limit of {limit} bytes; split the request or raise "
                               "--max-body-mb", status=413)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes) -> Any:
    """The JSON value of a body; 400 when it is not JSON."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as err:
        raise RequestError(f"body is not valid JSON ({str(err)[:100]})", status=400) from None


async def read_json(request, limit: int) -> Any:
    """The request's JSON body, refused past `limit` bytes (413) or when not JSON (400)."""
    return parse_json(await read_body(request, limit))


def result_rows(results: list) -> list[dict]:
    """`ScoreResult`s as JSON objects; a non-finite score becomes an error (it is not JSON, and not a reward)."""
    rows = []
    for r in results:
        row = r.to_dict()
        values = [r.score, r.score_a, r.score_b]
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            row = {"id": r.id, "error": "non-finite score; check the model and dtype"}
        rows.append(row)
    return rows


def create_app(scorer, settings: ServeSettings | None = None, *, metrics: Metrics | None = None):
    """The FastAPI app serving `scorer`; its batcher starts with the app and drains when it stops.

    Args:
        scorer: any `Scorer` (head, yes-token, CLIP, judge).
        settings: request limits, media policy and batching.
        metrics: a shared `Metrics` (a new one by default).

    Returns:
        A FastAPI app (ASGI), also usable with `fastapi.testclient.TestClient` and Ray Serve ingress.
    """
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import PlainTextResponse
    from starlette.concurrency import run_in_threadpool

    settings = settings or ServeSettings()
    metrics = metrics or Metrics()
    policy = MediaPolicy(media_root=settings.media_root, allow_urls=settings.allow_urls)
    batcher = Batcher(scorer, max_batch_size=settings.max_batch_size, max_wait_ms=settings.max_wait_ms,
                      num_workers=settings.num_workers, max_queue_records=settings.max_queue_records,
                      metrics=metrics)

    @asynccontextmanager
    async def lifespan(_app):
        batcher.start()
        try:
            yield
        finally:
            # uvicorn has already waited for in-flight requests; close() scores anything still queued.
            await run_in_threadpool(batcher.close)

    app = FastAPI(title="mmreward reward server", version="1", lifespan=lifespan,
                  description="Multimodal reward model scoring (see mmreward.serving.app).")
    app.state.batcher, app.state.metrics, app.state.settings = batcher, metrics, settings

    @app.exception_handler(RequestError)
    async def _refused(_request, err: RequestError):
        metrics.failure({400: "bad_json", 403: "media_policy", 413: "too_large", 429: "busy"}.get(
            err.status, "bad_request"))
        return _json(err.to_dict(), err.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request, err):
        metrics.failure("bad_request")
        first = err.errors()[0] if err.errors() else {}
        return _json({"error": str(first.get("msg", "invalid request")),
                      "field": ".".join(str(x) for x in first.get("loc", ()))}, 422)

    @app.exception_handler(Exception)
    async def _bug(_request, err: Exception):
        logger.error("internal error", exc_info=err)
        return _json({"error": f"internal error ({type(err).__name__}); this is a bug in mmreward, see the "
                               "server log"}, 500)

    async def _score(records: list) -> list:
        return await asyncio.wrap_future(batcher.submit(records))

    async def _records(request, to_records) -> list:
        """The request's records: `to_records(JSON body)`, on the event loop for a small body, else in a thread."""
        raw = await read_body(request, settings.max_body_bytes)

        def parse():
            return parse_records(to_records(parse_json(raw)), policy, max_records=settings.max_records)

        return parse() if len(raw) <= INLINE_BODY_BYTES else await run_in_threadpool(parse)

    def score_records_field(body):
        if not isinstance(body, dict) or "records" not in body:
            raise RequestError('the body must be a JSON object {"records": [...]}', field="records")
        return body["records"]

    @app.post("/score", summary="Score records", openapi_extra=body_doc(score_body(settings.max_records)))
    async def score(request: Request):
        results = await _score(await _records(request, score_records_field))
        return _json({"results": result_rows(results)})

    @app.post("/get_reward", summary="OpenRLHF remote reward model", openapi_extra=body_doc(OPENRLHF_BODY))
    async def get_reward(request: Request):
        from mmreward.serving.openrlhf import openrlhf_records, openrlhf_response

        results = await _score(await _records(request, openrlhf_records))
        finite = [r if r.error or all(math.isfinite(v) for v in (r.score,) if v is not None) else
                  type(r)(id=r.id, kind=r.kind, error="non-finite score") for r in results]
        return _json(openrlhf_response(finite))

    @app.get("/health", summary="Liveness and what is served")
    async def health():
        return _json({"status": "ok", "scorer": scorer.kind, "dimensions": list(scorer.dimensions),
                      "queue_records": metrics.queue_records})

    @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    async def prometheus():
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    app.add_middleware(_Timing, metrics=metrics)
    return app
