"""Progress reporting and cancellation shared by every long-running engine call."""

from __future__ import annotations

import threading
from typing import Callable, Optional

from .errors import Cancelled

# fraction in [0, 1], short human-readable message
ProgressCallback = Callable[[float, str], None]


def no_progress(fraction: float, message: str) -> None:
    """Default callback: ignore progress."""


class CancelToken:
    """Thread-safe flag a UI or CLI sets to stop a running job at its next checkpoint."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()


def check_cancelled(token: Optional[CancelToken]) -> None:
    if token is not None:
        token.raise_if_cancelled()
