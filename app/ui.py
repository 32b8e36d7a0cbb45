"""UI pieces shared by every page: cached engine resources, upload handling, progress and error cards."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Iterator

import streamlit as st

from apate_core import jobs
from apate_core.errors import ApateError, InputRefused
from apate_core.media.upload_area import save_bytes, uploads_root
from apate_core.settings import Settings, load_settings
from apate_core.store import ResultStore, open_store

ROOT = Path(__file__).resolve().parent.parent
SAMPLES_DIR = ROOT / "assets" / "samples"


@st.cache_resource
def get_settings() -> Settings:
    return load_settings()


@st.cache_resource
def get_store() -> ResultStore:
    return open_store(get_settings())


def session_id() -> str:
    """This browser session's id (the queue keeps each session's jobs apart)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else "local"


@st.cache_resource
def job_queue() -> jobs.JobQueue:
    """The server's one job queue, with metrics and the job log attached when they are configured."""
    from apate_core import monitoring

    settings = get_settings()
    queue = jobs.shared_queue(settings)
    monitoring.install(settings, queue, get_store())
    return queue


def submit_job(kind: str, work: jobs.Work) -> jobs.Job:
    """Put heavy work on the server's one job queue; raises jobs.QueueLimit (a refusal) past the session's limit."""
    return job_queue().submit(kind, work, session=session_id(), device=get_settings().resolved_device())


def cancel_job(job: jobs.Job) -> None:
    job_queue().cancel(job)


def job_progress(job: jobs.Job, verb: str) -> None:
    """A waiting job's place in the queue and estimate, or a running job's progress bar."""
    status = job_queue().status(job)
    if status.state is jobs.JobState.QUEUED:
        wait = "" if status.estimate_s is None else f", about {status.estimate_s:.0f} s before it starts"
        ahead = "next in line" if status.ahead == 0 else f"{status.ahead} job(s) ahead"
        st.progress(0.0, text=f"Waiting in the queue: position {status.position} ({ahead}{wait})")
    else:
        st.progress(job.fraction, text=f"{verb}: {job.message}")


def save_upload(uploaded) -> Path:
    """Write an uploaded file to the private upload area (shared with the API), once per content."""
    settings = get_settings()
    return save_bytes(uploaded.getvalue(), uploads_root(settings), uploaded.name, settings.upload_keep_days)


def error_card(exc: ApateError, title: str = "This input was refused") -> None:
    """A refusal as a person can act on it: what was wrong, what is accepted, the limit."""
    if isinstance(exc, InputRefused):
        lines = [f"**{title}.** {exc.problem.rstrip('.')}."]
        if exc.accepted:
            lines.append(f"**Accepted:** {exc.accepted}.")
        if exc.limit:
            lines.append(f"**Limit:** {exc.limit}.")
        st.error("\n\n".join(lines), icon=":material/block:")
    else:
        st.error(f"**{title}.** {exc}", icon=":material/block:")


def show_failure(exc: BaseException, title: str = "This input was refused") -> None:
    """Error card for any failure: refusals as they are, unexpected errors logged with their traceback."""
    if isinstance(exc, ApateError):
        error_card(exc, title)
        return
    logging.getLogger("apate.ui").exception("unexpected failure")
    st.error(
        f"**Something went wrong while processing this input** ({type(exc).__name__}). "
        "Other uploads and cached results are unaffected; the server log has the details.",
        icon=":material/error:",
    )


class progress_bar:
    """Context manager giving an engine progress callback drawn as a Streamlit progress bar."""

    def __init__(self, label: str):
        self.label = label

    def __enter__(self) -> Callable[[float, str], None]:
        self._bar = st.progress(0.0, text=self.label)

        def update(fraction: float, message: str) -> None:
            self._bar.progress(min(max(float(fraction), 0.0), 1.0), text=f"{self.label}: {message}")

        return update

    def __exit__(self, *exc: object) -> None:
        self._bar.empty()


def sample_files() -> Iterator[Path]:
    if SAMPLES_DIR.is_dir():
        yield from sorted(p for p in SAMPLES_DIR.iterdir() if p.suffix.lower() in {".mp4", ".jpg", ".png", ".webp"})


def device_label() -> str:
    settings = get_settings()
    try:
        device = settings.resolved_device()
    except ApateError as exc:
        return f"unavailable ({exc})"
    if device == "cuda":
        import torch

        return f"GPU: {torch.cuda.get_device_name(0)}"
    return "CPU"


def before_after(image, key: str) -> None:
    """A slider moving the seam between the original (left) and the protected photo (right)."""
    split = st.slider("Before / after split (%)", 0, 100, 50, key=key)
    st.image(image.split_view(split / 100), caption=f"Original left of the seam, protected right ({split}%)")


def protect_downloads(result, image, prefix: str) -> None:
    """The protected file, the job's metrics as JSON and, for a batch, every file in one zip."""
    d1, d2, d3 = st.columns(3)
    d1.download_button(f"Download {image.file_name}", image.encoded, file_name=image.file_name, mime=image.mime,
                       key=f"{prefix}_download", type="primary")
    d2.download_button("Download metrics (JSON)", result.metrics_json(), key=f"{prefix}_json",
                       file_name=f"{Path(result.images[0].name).stem}.{prefix}.json", mime="application/json")
    if len(result.images) > 1:
        d3.download_button(f"Download all {len(result.images)} (zip)", result.zip_bytes(),
                           file_name="protected.zip", mime="application/zip", key=f"{prefix}_zip")
