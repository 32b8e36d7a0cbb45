"""Typed errors. Every refusal carries a message a person can act on."""

from __future__ import annotations


class ApateError(Exception):
    """Base for every error Apate reports to a person instead of a traceback."""


class InputRefused(ApateError):
    """Input that Apate will not process: says what was wrong, what is accepted and the limit."""

    def __init__(self, problem: str, accepted: str = "", limit: str = ""):
        self.problem = problem
        self.accepted = accepted
        self.limit = limit
        parts = [problem.rstrip(".") + "."]
        if accepted:
            parts.append(f"Accepted: {accepted}.")
        if limit:
            parts.append(f"Limit: {limit}.")
        super().__init__(" ".join(parts))


class UnsupportedMedia(InputRefused):
    """The content is not an accepted image or video format."""


class MediaTooLarge(InputRefused):
    """The file, its pixel count or its duration is over a configured limit."""


class CorruptMedia(InputRefused):
    """The content claims an accepted format but cannot be decoded."""


class UrlRefused(InputRefused):
    """A URL that Apate will not fetch (scheme, destination, size or response)."""


class CheckpointError(InputRefused):
    """A model checkpoint that cannot be loaded safely or does not match the architecture."""


class Cancelled(ApateError):
    """Work stopped because the person cancelled it."""

    def __init__(self, message: str = "Cancelled."):
        super().__init__(message)


def checkpoint_refusal_reason(exc: Exception) -> str:
    """The useful line of a checkpoint loader's error; torch's weights-only message mostly advises an unsafe retry,
    which a refusal must never repeat."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    detail = next((line for line in lines if "GLOBAL" in line or "Unsupported" in line), None)
    if detail and "GLOBAL" in detail:
        return f"it references Python code, which is never loaded: {detail}"[:300]
    if detail:
        return f"not a tensor checkpoint: {detail}"[:300]
    return (lines[0] if lines else type(exc).__name__)[:300]
