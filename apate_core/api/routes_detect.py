"""Detect: upload a file or name a URL, follow the job, fetch result.json, the report and the heatmaps."""

from __future__ import annotations

import copy
import json
from typing import Any, Optional

from fastapi import APIRouter, Depends, File, Form, HTTPException, UploadFile
from fastapi.responses import HTMLResponse, Response

from ..errors import InputRefused
from ..jobs import Job
from .security import Client
from .state import ApiState
from ..media.upload_area import save_stream

KINDS = ("detect",)
FOLDERS = ("heatmaps", "frames", "overlays")  # heatmap_files' folders
MIME = {".png": "image/png", ".jpg": "image/jpeg"}
SERVER_PATHS = ("video_path", "normalised_video", "output_dir")  # where the server keeps files: not the client's


def check_url(url: str) -> None:
    """Refuse at once what the download would refuse (scheme, credentials, a non-public address). The download
    in the job checks again, pinned to the address it dials, so this is for a quick 400, not the guard itself."""
    from ..media.url import check_url as refuse_unless_public

    refuse_unless_public(url)


def public_data(data: dict) -> dict:
    out = copy.deepcopy(data)
    out.get("input", {}).pop("path", None)
    for key in SERVER_PATHS:
        out.pop(key, None)
    return out


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


def _links(job: Job) -> dict[str, str]:
    base = f"/api/result/{job.id}"
    return {"result": base, "report": f"{base}/report.html", "heatmaps_zip": f"{base}/heatmaps.zip",
            "files": f"{base}/files"}


def _detect_work(state: ApiState, model: str, params: Any, path: Optional[Any], name: str, url: str):
    settings, store = state.settings, state.store

    def work(progress, cancel):
        from ..detect.pipeline import analyse_media
        from ..media.intake import intake_file
        from ..media.url import download_url

        where, shown = path, name
        if url:  # download_url, never fetch_source: a "URL" must not be able to name a server path
            got = download_url(url, state.downloads, max_bytes=max(settings.max_video_bytes, settings.max_image_bytes),
                               timeout=settings.url_timeout_s, progress=progress, cancel=cancel)
            where, shown = got.path, got.path.name
        media = intake_file(where, settings, name=shown)
        progress(0.0, "loading the model")
        detector = state.models.detector(model)
        return analyse_media(media, detector, params, store=store, progress=progress, cancel=cancel,
                             settings=settings, source=url or shown)

    return work


def router(state: ApiState) -> APIRouter:
    api = APIRouter(tags=["detect"])
    guard = Depends(state.guard)

    @api.post("/api/upload", status_code=202, summary="Queue a Detect analysis of an uploaded file or a URL")
    def upload(file: Optional[UploadFile] = File(None, description="a video or image"),
               url: Optional[str] = Form(None, description="an http(s) URL of a video or image on the public "
                                                             "internet (instead of a file)"),
               fps: Optional[float] = Form(None, description="frames sampled per second (default APATE_SAMPLE_FPS)"),
               model: Optional[str] = Form(None, description="detector name (GET /api/v1/models); default: the "
                                                               "shipped one"),
               cam: str = Form("gradcam", description="heatmap method, or none"),
               top_k: int = Form(8, description="most suspicious frames kept with heatmaps"),
               faces: bool = Form(False, description="score face crops"),
               face_check: bool = Form(True, description="search every sampled frame for faces and score them "
                                                          "with the face-swap model"),
               client: Client = guard) -> dict[str, Any]:
        from ..detect.pipeline import DetectParams, default_detector_name
        from ..media.intake import intake_file

        has_file = file is not None and bool(file.filename or file.size)
        url = (url or "").strip()
        if not has_file and not url:
            raise InputRefused("No input: send a file (multipart field `file`) or a `url` form field")
        if has_file and url:
            raise InputRefused("Send a file or a URL, not both")
        params = DetectParams(fps=fps or state.settings.sample_fps, cam=None if cam.lower() == "none" else cam,
                              top_k=top_k, faces=faces, face_evidence=face_check)
        name = state.models.check_detector(model or default_detector_name())
        path, shown = None, ""
        if has_file:
            path = save_stream(file.file, state.uploads, file.filename, state.settings.upload_keep_days)
            shown = file.filename or path.name
            intake_file(path, state.settings, name=shown)  # refuse bad content now (415/413/422), not in the job
        else:
            check_url(url)
        job = state.submit("detect", _detect_work(state, name, params, path, shown, url), client)
        return {"job_id": job.id, "status_url": f"/api/status/{job.id}", "result_url": f"/api/result/{job.id}"}

    @api.get("/api/status/{job_id}", summary="Where a job stands: queued, running, succeeded, failed, cancelled")
    def status(job_id: str, client: Client = guard) -> dict[str, Any]:
        job = state.job(job_id, client, KINDS)
        return state.status(job, _links(job))

    @api.post("/api/cancel/{job_id}", summary="Cancel a job (a waiting one never starts)")
    def cancel(job_id: str, client: Client = guard) -> dict[str, Any]:
        job = state.job(job_id, client, KINDS)
        state.queue.cancel(job)
        return state.status(job, _links(job))

    @api.get("/api/result/{job_id}", summary="result.json of a finished analysis")
    def result(job_id: str, client: Client = guard) -> Response:
        done = state.finished(state.job(job_id, client, KINDS))
        body = json.dumps(public_data(done.data), indent=2, default=str)
        return Response(body, media_type="application/json")

    @api.get("/api/result/{job_id}/report.html", response_class=HTMLResponse, summary="The self-contained report")
    def report(job_id: str, client: Client = guard) -> HTMLResponse:
        from ..detect.report import report_html

        done = state.finished(state.job(job_id, client, KINDS))
        return HTMLResponse(report_html(done), headers=_attachment("report.html"))

    @api.get("/api/result/{job_id}/heatmaps.zip", summary="result.json, heatmaps, frames and overlays as a zip")
    def heatmaps_zip(job_id: str, client: Client = guard) -> Response:
        from ..detect.report import heatmaps_zip as make_zip

        done = state.finished(state.job(job_id, client, KINDS))
        return Response(make_zip(done), media_type="application/zip", headers=_attachment("heatmaps.zip"))

    @api.get("/api/result/{job_id}/files", summary="The heatmap, frame and overlay files of a result")
    def files(job_id: str, client: Client = guard) -> dict[str, Any]:
        from ..detect.report import heatmap_files

        done = state.finished(state.job(job_id, client, KINDS))
        names = sorted(heatmap_files(done))
        return {"files": [{"name": n, "url": f"/api/result/{job_id}/{n}"} for n in names]}

    @api.get("/api/result/{job_id}/{folder}/{name}", summary="One heatmap PNG, frame or overlay JPEG")
    def one_file(job_id: str, folder: str, name: str, client: Client = guard) -> Response:
        from ..detect.report import heatmap_files

        done = state.finished(state.job(job_id, client, KINDS))
        data = heatmap_files(done).get(f"{folder}/{name}") if folder in FOLDERS else None
        if data is None:
            raise HTTPException(404, detail=f"No file {folder}/{name} in this result (GET /api/result/{job_id}/files "
                                            "lists them).")
        return Response(data, media_type=MIME.get(name[-4:], "application/octet-stream"))

    return api
