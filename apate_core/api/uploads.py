"""Request size limits and uploads written to disk.

``BodyLimit`` caps each route's request body as the dashboard caps uploads (``APATE_MAX_VIDEO_MB``,
``APATE_MAX_IMAGE_MB``). A declared Content-Length over the limit is refused with 413 before anything is
processed; a body that streams past it (chunked, or a lying length) stops being processed at the chunk that passes
it. Either way the rest is read and thrown away (at most DRAIN_BYTES, never stored) before the 413 goes out: an
HTTP/1.1 client that is still sending does not read the answer, and closing on unread data resets the connection,
so the client would see a reset instead of the 413. A client that sent ``Expect: 100-continue`` gets the 413
without sending the body at all.

Multipart files arrive through Starlette's parser, which keeps at most 1 MB of a file in memory and spools the
rest to disk; they are then copied 1 MB at a time into the upload area the dashboard shares
(``media.upload_area``: ``<cache>/uploads/<sha256[:32]>/``, once per content, pruned after
``APATE_UPLOAD_KEEP_DAYS``), hashed on the way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_LIMIT = 1 << 20  # routes without an upload: JSON parameters at most
FORM_SLACK = 64 << 10  # room for the multipart framing, the other form fields or the JSON around a file
DRAIN_BYTES = 16 << 20  # most bytes past a limit read and thrown away so that the client sees the 413


@dataclass(frozen=True)
class Limit:
    bytes: int
    label: str  # the setting behind it, for the message


class BodyTooLarge(HTTPException):
    def __init__(self, limit: Limit):
        super().__init__(413, detail=f"The request body is over the limit. Limit: {limit.label}.")


class BodyLimit:
    """Pure ASGI middleware: per-path body limits (exact paths; any other path gets ``default``)."""

    def __init__(self, app: ASGIApp, limits: dict[str, Limit], default: Limit):
        self.app, self.limits, self.default = app, limits, default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.get(scope["path"].rstrip("/") or "/", self.default)
        declared = _content_length(scope)
        if declared is not None and declared > limit.bytes:
            if not _expects_continue(scope) and declared - limit.bytes <= DRAIN_BYTES:
                await _drain(receive, declared)
            await _reply_413(send, limit)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit.bytes:
                    if message.get("more_body"):
                        await _drain(receive, DRAIN_BYTES)
                    raise BodyTooLarge(limit)  # FastAPI passes an HTTPException from body parsing through
            return message

        await self.app(scope, limited, send)


def _header(scope: Scope, wanted: bytes) -> Optional[bytes]:
    for name, value in scope.get("headers", []):
        if name == wanted:
            return value
    return None


def _content_length(scope: Scope) -> Optional[int]:
    value = _header(scope, b"content-length")
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


def _expects_continue(scope: Scope) -> bool:
    return (_header(scope, b"expect") or b"").lower() == b"100-continue"


async def _drain(receive: Receive, cap: int) -> None:
    """Read and discard the rest of the body, at most about ``cap`` bytes."""
    total = 0
    while total <= cap:
        message = await receive()
        if message["type"] != "http.request":
            return
        total += len(message.get("body", b""))
        if not message.get("more_body"):
            return


async def _reply_413(send: Send, limit: Limit) -> None:
    detail = {"detail": BodyTooLarge(limit).detail, "error": "MediaTooLarge"}
    body = json.dumps(detail, separators=(",", ":")).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
