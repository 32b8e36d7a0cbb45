"""API keys and per-key rate limits.

Keys are optional on a loopback address (only this machine can connect) and required anywhere else: the API runs
heavy jobs and fetches URLs, so an open port would be a free compute and download service. A request names its key
in ``X-API-Key`` or ``Authorization: Bearer``. The queue sees a key only as a hash (``key:<16 hex>``), so job
records and logs never hold a key; without keys every caller is the one session ``local``.

Rate limits are a token bucket per key (per client address without keys): ``APATE_API_RATE_PER_MINUTE`` tokens,
refilled continuously, so a burst of that size is allowed and then one request per 60/N seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from fastapi import HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from ..errors import ApateError

MIN_KEY_CHARS = 16
LOCAL_SESSION = "local"
MAX_BUCKETS = 10_000  # distinct callers remembered; full (idle) buckets are dropped past this
KEY_HINT = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


def is_loopback(host: str) -> bool:
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_keys(value: str) -> tuple[str, ...]:
    """APATE_API_KEYS: comma-separated keys, or the path of a file with one key per line (``#`` comments)."""
    value = value.strip()
    if not value:
        return ()
    path = Path(value).expanduser()
    if path.is_file():
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        keys = [line for line in lines if line and not line.startswith("#")]
    elif "/" in value or value.endswith(".txt"):
        raise ApateError(f"APATE_API_KEYS names the file {value}, which does not exist.")
    else:
        keys = [part.strip() for part in value.split(",") if part.strip()]
    if not keys:
        raise ApateError("APATE_API_KEYS is set but holds no key.")
    short = [k for k in keys if len(k) < MIN_KEY_CHARS]
    if short:
        raise ApateError(f"{len(short)} API key(s) are shorter than {MIN_KEY_CHARS} characters; make long random "
                         f"keys, e.g. {KEY_HINT}")
    return tuple(dict.fromkeys(keys))


def check_binding(host: str, keys: tuple[str, ...]) -> None:
    """Refuse to serve on a non-loopback address without keys (the reason is in the module docstring)."""
    if not keys and not is_loopback(host):
        raise ApateError(
            f"Refusing to serve the API on {host} without API keys: anyone who can reach this address could run "
            f"jobs and make the server fetch URLs. Set APATE_API_KEYS (comma-separated keys, or a file with one key "
            f"per line; make one with {KEY_HINT}), or bind to 127.0.0.1."
        )


def session_of(key: str) -> str:
    return "key:" + hashlib.sha256(key.encode()).hexdigest()[:16]


class RateLimiter:
    """A token bucket per caller, in memory (one process; each worker process would count separately)."""

    def __init__(self, per_minute: int):
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, who: str) -> float:
        """0 when the request may go ahead, else seconds until it may."""
        if self.capacity <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(who, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[who] = (tokens, now)
                return (1.0 - tokens) / self.rate
            self._buckets[who] = (tokens - 1.0, now)
            if len(self._buckets) > MAX_BUCKETS:
                self._prune(now)
            return 0.0

    def _prune(self, now: float) -> None:
        full = [who for who, (tokens, last) in self._buckets.items()
                if tokens + (now - last) * self.rate >= self.capacity]
        for who in full:
            del self._buckets[who]


@dataclass(frozen=True)
class Client:
    """Who is calling: the queue session their jobs belong to."""

    session: str


_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                       description="An API key from APATE_API_KEYS (or `Authorization: Bearer <key>`); "
                                   "not needed when the server runs without keys on a loopback address.")


class Guard:
    """The dependency every protected route takes: checks the key, then the caller's rate limit."""

    def __init__(self, keys: tuple[str, ...], per_minute: int):
        self._digests = {hashlib.sha256(k.encode()).digest(): k for k in keys}
        self.limiter = RateLimiter(per_minute)

    @property
    def keys_required(self) -> bool:
        return bool(self._digests)

    def _match(self, given: str) -> Optional[str]:
        digest = hashlib.sha256(given.encode()).digest()
        found = None
        for known, key in self._digests.items():  # compare with every key: time does not depend on which
            if hmac.compare_digest(known, digest):
                found = key
        return found

    def __call__(self, request: Request, api_key: Optional[str] = Security(_header)) -> Client:
        if not self.keys_required:
            caller, client = f"addr:{request.client.host if request.client else '?'}", Client(LOCAL_SESSION)
        else:
            given = api_key or _bearer(request.headers.get("authorization", ""))
            key = self._match(given) if given else None
            if key is None:
                raise HTTPException(401, detail="A valid API key is required (header X-API-Key or Authorization: "
                                                "Bearer).", headers={"WWW-Authenticate": "Bearer"})
            caller = client_session = session_of(key)
            client = Client(client_session)
        wait = self.limiter.take(caller)
        if wait > 0:
            per_minute = int(self.limiter.capacity)
            raise HTTPException(429, detail=f"Rate limit reached: {per_minute} requests per minute "
                                            "(APATE_API_RATE_PER_MINUTE). Retry after the time in Retry-After.",
                                headers={"Retry-After": str(max(1, math.ceil(wait)))})
        return client


def _bearer(value: str) -> str:
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""
