"""One typed settings object, read from environment variables prefixed ``APATE_``.

Every field's metadata names its variable and says what it does; the README's settings table is
checked against this list by the tests, so the two cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .errors import ApateError

PREFIX = "APATE_"


def _setting(default: Any, doc: str) -> Any:
    if isinstance(default, (list, tuple)):
        value = tuple(default)
        return field(default=value, metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})


def _default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "apate")


@dataclass(frozen=True)
class Settings:
    max_video_mb: float = _setting(200.0, "Largest video upload or download, in MB")
    max_image_mb: float = _setting(10.0, "Largest image file, in MB")
    max_image_side: int = _setting(2048, "Longest image side accepted for protection, in pixels")
    max_image_pixels: int = _setting(
        50_000_000, "Pixel cap checked from the header before any image is decoded (decompression bombs)"
    )
    max_video_seconds: float = _setting(3600.0, "Longest video accepted, in seconds")
    video_containers: tuple = _setting(
        ("mp4", "mov", "mkv", "webm", "avi", "flv"), "Accepted video containers (comma-separated)"
    )
    image_formats: tuple = _setting(("jpeg", "png", "webp"), "Accepted still-image formats (comma-separated)")
    animated_gif: str = _setting(
        "video", "What an animated GIF or WebP is: `video` (analysed frame by frame) or `refuse`; a still GIF is refused"
    )
    sample_fps: float = _setting(1.0, "Default frame sampling rate for videos, frames per second")
    device: str = _setting("auto", "Compute device: `auto` (CUDA when available), `cpu` or `cuda`")
    cache_dir: str = _setting(_default_cache_dir(), "Result store and normalised media directory (created 0700)")
    upload_keep_days: float = _setting(
        7.0, "Days an uploaded file is kept after its last use (dashboard and API uploads); 0 = keep every upload"
    )
    cache_size_mb: int = _setting(2048, "Result store size limit in MB; least recently used entries are evicted")
    models_dir: str = _setting("models", "Directory of checkpoints users bring (see README for the layout)")
    max_batch: int = _setting(10, "Most images in one batch job")
    job_slots: int = _setting(
        0, "Heavy jobs (Detect, Protect, batches) run at once per device, for every session together; 0 = one per "
        "four CPU cores (at least one), two on a GPU"
    )
    jobs_per_session: int = _setting(3, "Most jobs one browser session may have waiting or running at once")
    metrics_port: int = _setting(0, "Port of the Prometheus metrics endpoint (/metrics); 0 = off")
    metrics_host: str = _setting("127.0.0.1", "Address the metrics endpoint listens on")
    job_log: str = _setting("", "Structured job log, one JSON line per job event: a file path, `stderr`, or empty = off")
    url_timeout_s: float = _setting(20.0, "Network timeout for URL import, in seconds")
    ice_servers: str = _setting(
        "", "Live page WebRTC ICE servers as JSON (e.g. a TURN server); empty = none, which works on localhost"
    )
    testdata: str = _setting("", "Folder of shared test media; tests that need it skip when unset")
    detect_data: str = _setting(
        "", "Folder of labelled real/generated images with MANIFEST.tsv (../shared/detect-data) for training "
        "and evaluating the detector; tests that need it skip when unset"
    )
    backbones_dir: str = _setting(
        "", "Where the converted pretrained backbones live; empty = assets/backbones in the repository "
        "(made at install time by `python -m apate_core.detect.backbones`)"
    )
    taef2_dir: str = _setting(
        "", "Folder of the TAEF2 tiny autoencoder weights used to re-synthesise real photos for training; "
        "empty = ../shared/models/taef2 beside the repository"
    )
    faces_dir: str = _setting(
        "", "Where the face sample photos for identity evaluation live; empty = assets/faces in the repository "
        "(fetched at install time by `python -m apate_core.protect.identity.samples`)"
    )
    api_keys: str = _setting(
        "", "API keys for `apate api`: comma-separated keys, or the path of a file with one key per line (each at "
        "least 16 characters); empty = no keys, allowed only on a loopback address"
    )
    api_rate_per_minute: int = _setting(
        300, "Requests per minute one API key (or, without keys, one client address) may make; 0 = no limit"
    )

    @property
    def max_video_bytes(self) -> int:
        return int(self.max_video_mb * 1024 * 1024)

    @property
    def max_image_bytes(self) -> int:
        return int(self.max_image_mb * 1024 * 1024)

    @property
    def cache_path(self) -> Path:
        return Path(self.cache_dir).expanduser()

    @property
    def models_path(self) -> Path:
        return Path(self.models_dir).expanduser()

    @property
    def backbones_path(self) -> Path:
        if self.backbones_dir:
            return Path(self.backbones_dir).expanduser()
        return Path(__file__).resolve().parents[1] / "assets" / "backbones"

    @property
    def faces_path(self) -> Path:
        if self.faces_dir:
            return Path(self.faces_dir).expanduser()
        return Path(__file__).resolve().parents[1] / "assets" / "faces"

    @property
    def taef2_path(self) -> Path:
        if self.taef2_dir:
            return Path(self.taef2_dir).expanduser()
        return Path(__file__).resolve().parents[2] / "shared" / "models" / "taef2"

    def resolved_device(self) -> str:
        """The torch device name that ``device`` stands for on this machine."""
        if self.device == "cpu":
            return "cpu"
        import torch

        if self.device == "cuda":
            if not torch.cuda.is_available():
                raise ApateError("APATE_DEVICE=cuda but no CUDA device is available; use auto or cpu.")
            return "cuda"
        return "cuda" if torch.cuda.is_available() else "cpu"


def env_name(field_name: str) -> str:
    return PREFIX + field_name.upper()


def describe() -> list[tuple[str, str, str]]:
    """(variable, default, description) for every setting, in declaration order."""
    rows = []
    for f in dataclasses.fields(Settings):
        default = f.default
        shown = ",".join(default) if isinstance(default, tuple) else str(default)
        if f.name == "cache_dir":
            shown = "~/.cache/apate"
        rows.append((env_name(f.name), shown, f.metadata["doc"]))
    return rows


def _parse(f: dataclasses.Field, raw: str) -> Any:
    kind = type(f.default)
    try:
        if kind is bool:
            return raw.strip().lower() in {"1", "true", "yes", "on"}
        if kind is tuple:
            return tuple(part.strip().lower() for part in raw.split(",") if part.strip())
        return kind(raw.strip())
    except ValueError:
        raise ApateError(
            f"{env_name(f.name)}={raw!r} is not a valid {kind.__name__}; default is {f.default!r}."
        ) from None


_CHOICES = {"device": {"auto", "cpu", "cuda"}, "animated_gif": {"video", "refuse"}}


def load_settings(environ: Optional[dict] = None, **overrides: Any) -> Settings:
    """Build settings from ``environ`` (default: the process environment), then explicit overrides."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        raw = environ.get(env_name(f.name))
        if raw is not None and raw != "":
            values[f.name] = _parse(f, raw)
    values.update(overrides)
    for name, allowed in _CHOICES.items():
        if name in values and values[name] not in allowed:
            raise ApateError(f"{env_name(name)}={values[name]!r}: accepted values are {sorted(allowed)}.")
    return Settings(**values)
