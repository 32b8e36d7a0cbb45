"""The FastAPI app over the engine: ``create_app(settings)``, served by ``apate api`` (uvicorn).

It uses the process's one job queue, result store layout and monitoring, so jobs from the API and the dashboard
queue together when both run in one process. No response ever carries a traceback: refusals map to their 4xx with
their message, anything unexpected to a plain 500 (the traceback goes to the server log).
"""

from __future__ import annotations

import math
from http import HTTPStatus
from typing import Optional

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline

from .. import __version__, monitoring
from ..errors import ApateError, Cancelled, CorruptMedia, InputRefused, MediaTooLarge, UnsupportedMedia, UrlRefused
from ..jobs import JobQueue, QueueLimit, shared_queue
from ..settings import Settings, load_settings
from ..store import ResultStore, open_store
from . import routes_detect, routes_models, routes_protect
from .registry import ModelRegistry
from .security import Guard, load_keys
from .state import ApiState
from .uploads import DEFAULT_LIMIT, FORM_SLACK, BodyLimit, Limit

QUEUE_RETRY_S = 10  # Retry-After for a session whose share of the queue is full
# Most specific first: a subclass must be looked up before its base.
STATUS: list[tuple[type[BaseException], int]] = [
    (QueueLimit, 429), (UnsupportedMedia, 415), (MediaTooLarge, 413), (CorruptMedia, 422), (UrlRefused, 400),
    (InputRefused, 400), (Cancelled, 409), (ApateError, 400),
]
HTTP_ERRORS = {401: "Unauthorized", 404: "NotFound", 409: "Conflict", 413: "MediaTooLarge", 415: "UnsupportedMedia",
               429: "RateLimited"}
_monitors: dict[int, monitoring.Monitoring] = {}  # one per queue: metrics subscribe to it once per process


def _monitor(settings: Settings, queue: JobQueue, store: ResultStore) -> monitoring.Monitoring:
    installed = monitoring.install(settings, queue, store)  # the process's own, when metrics or a log are on
    if installed is not None:
        return installed
    if id(queue) not in _monitors:  # /metrics is always served here, so keep a registry of our own
        _monitors[id(queue)] = monitoring.Monitoring(queue, store)
    return _monitors[id(queue)]


def _body_limits(settings: Settings) -> dict[str, Limit]:
    def b64(n: int) -> int:  # base64 grows a file by 4/3; plus room for the JSON or multipart around it
        return math.ceil(n / 3) * 4 + FORM_SLACK

    upload = max(settings.max_video_bytes, settings.max_image_bytes) + FORM_SLACK
    image = b64(settings.max_image_bytes)
    return {
        "/api/upload": Limit(upload, f"{max(settings.max_video_mb, settings.max_image_mb):g} MB "
                                     "(APATE_MAX_VIDEO_MB, APATE_MAX_IMAGE_MB)"),
        "/api/v1/protect/image": Limit(image, f"{settings.max_image_mb:g} MB per image (APATE_MAX_IMAGE_MB)"),
        "/api/v1/protect/batch": Limit(image * settings.max_batch, f"{settings.max_batch} images of "
                                       f"{settings.max_image_mb:g} MB (APATE_MAX_BATCH, APATE_MAX_IMAGE_MB)"),
    }


def _error(status: int, detail: str, kind: str, headers: Optional[dict] = None, **extra: str) -> JSONResponse:
    return JSONResponse({"detail": detail, "error": kind, **{k: v for k, v in extra.items() if v}},
                        status_code=status, headers=headers)


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApateError)
    async def refused(request: Request, exc: ApateError) -> JSONResponse:
        status = next(code for cls, code in STATUS if isinstance(exc, cls))
        headers = {"Retry-After": str(QUEUE_RETRY_S)} if isinstance(exc, QueueLimit) else None
        extra = {"accepted": exc.accepted, "limit": exc.limit} if isinstance(exc, InputRefused) else {}
        return _error(status, str(exc), type(exc).__name__, headers, **extra)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        kind = HTTP_ERRORS.get(exc.status_code) or HTTPStatus(exc.status_code).phrase.replace(" ", "")
        return _error(exc.status_code, str(exc.detail), kind, dict(exc.headers or {}) or None)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors())
        return _error(422, f"Invalid request ({problems})", "ValidationError")

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        # Starlette re-raises after this answer, so uvicorn logs the traceback: in the server log, not here.
        return _error(500, f"Internal error ({type(exc).__name__}); the server log has the details.",
                      "InternalError")


def create_app(settings: Optional[Settings] = None, *, queue: Optional[JobQueue] = None,
               store: Optional[ResultStore] = None) -> FastAPI:
    settings = settings or load_settings()
    queue = queue or shared_queue(settings)
    store = store or open_store(settings)
    state = ApiState(settings=settings, queue=queue, store=store, monitor=_monitor(settings, queue, store),
                     models=ModelRegistry(settings), guard=Guard(load_keys(settings.api_keys),
                                                                  settings.api_rate_per_minute),
                     device=settings.resolved_device())
    # fastapi-offline serves Swagger UI and ReDoc from files in its wheel: nothing is fetched from a CDN.
    app = FastAPIOffline(title="Apate API", version=__version__, swagger_ui_parameters={"validatorUrl": None},
                  description="Detect AI-generated media and protect photos: the engine behind the dashboard and "
                              "the `apate` CLI, over HTTP. Heavy work goes through the server's one job queue.")
    app.state.apate = state
    _install_handlers(app)
    app.add_middleware(BodyLimit, limits=_body_limits(settings), default=Limit(DEFAULT_LIMIT, "1 MB"))
    app.include_router(routes_detect.router(state))
    app.include_router(routes_protect.router(state))
    app.include_router(routes_models.router(state))
    return app
