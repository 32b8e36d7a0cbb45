"""Protect: one image answered with the protected file and its metrics, or a batch followed as a task.

Both take JSON (images as base64) or multipart (files plus the options as form fields). ``model_type`` is a
generator family (the attack disrupts that image-translation model) or ``identity`` (the face cloak against face
recognition). The work goes through the same job queue as everything else; the single-image route waits for it.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
from typing import Any, Optional

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile

from ..errors import InputRefused
from ..jobs import Job, JobState
from .registry import IDENTITY
from .security import Client
from .state import ApiState
from ..media.upload_area import save_bytes, save_stream

KINDS = ("protect", "batch")
WAIT_S = 600.0  # the single-image route answers 202 with the task id if the job takes longer than this
FILE_FIELDS = ("file", "files", "image", "images")


class AttackParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    epsilon: Optional[float] = Field(None, description="L-inf budget on the [-1, 1] scale (0.05 = 6.4/255); "
                                                        "generators default 0.05, identity: automatic (4-8/255)")
    iterations: Optional[int] = Field(None, description="generators default 10, identity 60")
    step_size: Optional[float] = Field(None, description="generators only; default 0.01")
    random_start: bool = Field(True, description="PGD only: start from uniform noise within ±epsilon")


class ProtectOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    model_type: str = Field("stargan", description="a generator family (GET /api/v1/config/attack-methods) or "
                                                   "`identity` (face cloak)")
    attack_method: str = Field("pgd", description="fgsm, ifgsm or pgd (generators)")
    attack_params: AttackParams = Field(default_factory=AttackParams)
    output_format: str = Field("png", description="png (the bound holds exactly), jpeg or webp")
    targets: Optional[list[str]] = Field(None, description="generator target conditions; default: the first five")
    shaping: bool = Field(True, description="perceptual shaping of the perturbation")
    with_robustness: bool = Field(True, description="also measure after JPEG, resize and blur (slower)")


class ImageItem(BaseModel):
    image: str = Field(description="the image file, base64 (a data: URI is accepted)")
    name: str = Field("image.png", description="a name for the file (display only)")


class ProtectImageRequest(ProtectOptions, ImageItem):
    pass


class ProtectBatchRequest(ProtectOptions):
    images: list[ImageItem]


def _inline(schema: dict) -> dict:
    """A pydantic schema with its $defs inlined, for openapi_extra (whose refs would not resolve)."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return walk(copy.deepcopy(defs[ref.rsplit("/", 1)[1]]))
            return {k: walk(v) for k, v in node.items()}
        return [walk(v) for v in node] if isinstance(node, list) else node

    return walk(schema)


def _body_doc(model: type[BaseModel], file_field: str) -> dict:
    form = {"type": "object", "properties": {
        file_field: {"type": "string", "format": "binary"} if file_field == "file"
        else {"type": "array", "items": {"type": "string", "format": "binary"}},
        "model_type": {"type": "string"}, "attack_method": {"type": "string"},
        "attack_params": {"type": "string", "description": "JSON object, as in the JSON body (or its keys as "
                                                            "fields: epsilon, iterations, step_size, random_start)"},
        "output_format": {"type": "string"}, "targets": {"type": "string", "description": "comma-separated"},
        "shaping": {"type": "boolean"}, "with_robustness": {"type": "boolean"}}}
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": _inline(model.model_json_schema())},
        "multipart/form-data": {"schema": form}}}}


def _b64(text: str) -> bytes:
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InputRefused("The image is not valid base64", accepted="the file's bytes, base64-encoded") from None


def _refuse_invalid(exc: ValidationError) -> InputRefused:
    problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())
    return InputRefused(f"Invalid request ({problems})")


def _form_options(fields: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {k: v for k, v in fields.items() if k in ProtectOptions.model_fields}
    if "attack_params" in out:
        try:
            out["attack_params"] = json.loads(out["attack_params"])
        except ValueError:
            out["attack_params"] = None
        if not isinstance(out["attack_params"], dict):
            raise InputRefused("attack_params is not a JSON object",
                               accepted='e.g. {"epsilon": 0.05, "iterations": 10}')
    flat = {k: v for k, v in fields.items() if k in AttackParams.model_fields}  # epsilon=... as its own field
    if flat:
        out["attack_params"] = {**out.get("attack_params", {}), **flat}
    if "targets" in out:
        out["targets"] = [t.strip() for t in out["targets"].split(",") if t.strip()] or None
    return out


async def _read(request: Request, state: ApiState, batch: bool) -> tuple[ProtectOptions, list]:
    """(options, [(path, name)]) from a JSON or multipart body, the files saved to the upload area."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    root, keep = state.uploads, state.settings.upload_keep_days
    if kind == "application/json":
        try:
            data = await request.json()
        except ValueError:
            raise InputRefused("The body is not valid JSON") from None
        try:
            parsed = (ProtectBatchRequest if batch else ProtectImageRequest).model_validate(data)
        except ValidationError as exc:
            raise _refuse_invalid(exc) from None
        items = parsed.images if isinstance(parsed, ProtectBatchRequest) else [parsed]
        if len(items) > state.settings.max_batch:
            raise InputRefused(f"{len(items)} images in one job", limit=f"{state.settings.max_batch} (APATE_MAX_BATCH)")
        saved = [(await run_in_threadpool(save_bytes, _b64(it.image), root, it.name, keep), it.name) for it in items]
        return parsed, saved
    if kind != "multipart/form-data":
        raise HTTPException(415, detail="Send application/json (images as base64) or multipart/form-data.")
    async with request.form(max_files=state.settings.max_batch, max_fields=64) as form:
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        uploads = [v for k, v in form.multi_items() if isinstance(v, UploadFile) and k in FILE_FIELDS and v.filename]
        try:
            options = ProtectOptions.model_validate(_form_options(fields))
        except ValidationError as exc:
            raise _refuse_invalid(exc) from None
        saved = [(await run_in_threadpool(save_stream, u.file, root, u.filename, keep), u.filename) for u in uploads]
    return options, saved


def _job_work(state: ApiState, options: ProtectOptions, images: list):
    """Validate the parameters now (a 400 before queueing) and return the job's work."""
    ap = options.attack_params
    settings, store = state.settings, state.store
    if options.model_type == IDENTITY:
        from ..protect.identity.job import CloakParams, run_identity_job

        given = {k: v for k, v in (("iterations", ap.iterations),) if v is not None}
        cloak = CloakParams(epsilon=ap.epsilon, shaping=options.shaping, output_format=options.output_format,
                            with_robustness=options.with_robustness, **given).validate()
        return lambda progress, cancel: run_identity_job(images, cloak, settings, store=store, progress=progress,
                                                         cancel=cancel)
    from ..protect.job import ProtectParams, run_protect_job

    if options.model_type not in state.models.generator_names():
        raise InputRefused(f"Unknown model_type {options.model_type!r}",
                           accepted=", ".join(state.models.generator_names() + [IDENTITY]))
    given = {k: v for k, v in (("epsilon", ap.epsilon), ("step_size", ap.step_size), ("iterations", ap.iterations))
             if v is not None}
    params = ProtectParams(attack=options.attack_method, random_start=ap.random_start, shaping=options.shaping,
                           targets=tuple(options.targets) if options.targets else None,
                           output_format=options.output_format, with_robustness=options.with_robustness,
                           **given).validate()

    def work(progress, cancel):
        choice, generator = state.models.generator(options.model_type)
        return run_protect_job(images, choice, params, settings, store=store, progress=progress, cancel=cancel,
                               generator=generator)

    return work


async def _submit(request: Request, state: ApiState, client: Client, batch: bool) -> Job:
    from ..protect.job import load_image

    options, saved = await _read(request, state, batch)
    if not saved:
        raise InputRefused("No image: send one as base64 JSON (`image`) or as a multipart file",
                           accepted="JPEG, PNG or WebP images")
    if not batch and len(saved) > 1:
        raise InputRefused("One image per request here; POST /api/v1/protect/batch takes several")
    images = [await run_in_threadpool(load_image, path, state.settings, name) for path, name in saved]
    work = _job_work(state, options, images)
    return state.submit("batch" if batch else "protect", work, client)


def _default(value: Any) -> Any:
    return value.item() if isinstance(value, (np.floating, np.integer)) else str(value)


def _json(body: dict, status: int = 200) -> Response:
    return Response(json.dumps(body, default=_default), status_code=status, media_type="application/json")


def _body(job: Job, result: Any) -> dict[str, Any]:
    data = result.to_dict()
    metas = data.pop("images")
    if isinstance(data.get("generator"), dict):
        data["generator"].pop("path", None)  # where the server keeps the weights
    model_type = data.get("target") or result.generator.family
    images = [{"file_name": im.file_name, "mime": im.mime, "image": base64.b64encode(im.encoded).decode("ascii"),
               "metrics": meta} for im, meta in zip(result.images, metas)]
    return {"task_id": job.id, "model_type": model_type, **data, "images": images}


def _links(job: Job) -> dict[str, str]:
    return {"status": f"/api/v1/protect/status/{job.id}", "result": f"/api/v1/protect/result/{job.id}",
            "zip": f"/api/v1/protect/result/{job.id}/zip"}


def router(state: ApiState) -> APIRouter:
    api = APIRouter(prefix="/api/v1/protect", tags=["protect"])
    guard = Depends(state.guard)

    @api.post("/image", summary="Protect one image; answers with the protected file (base64) and its metrics",
              openapi_extra=_body_doc(ProtectImageRequest, "file"))
    async def protect_image(request: Request, client: Client = guard) -> Response:
        job = await _submit(request, state, client, batch=False)
        if not await run_in_threadpool(job.wait, WAIT_S):
            return _json({"task_id": job.id, "status": job.state.value, **_links(job)}, 202)
        if job.state is JobState.FAILED and job.error is not None:
            raise job.error  # the handlers turn a refusal into its 4xx and anything else into a plain 500
        body = _body(job, state.finished(job))
        image = body.pop("images")[0]
        return _json({**body, "image": image["image"], "mime": image["mime"], "file_name": image["file_name"],
                      "metrics": image["metrics"]})

    @api.post("/batch", status_code=202, summary="Queue several images; follow the task, then fetch the results",
              openapi_extra=_body_doc(ProtectBatchRequest, "files"))
    async def protect_batch(request: Request, client: Client = guard) -> dict[str, Any]:
        job = await _submit(request, state, client, batch=True)
        return {"task_id": job.id, "status_url": f"/api/v1/protect/status/{job.id}",
                "result_url": f"/api/v1/protect/result/{job.id}"}

    @api.get("/status/{task_id}", summary="Where a Protect task stands")
    def status(task_id: str, client: Client = guard) -> dict[str, Any]:
        job = state.job(task_id, client, KINDS)
        return state.status(job, _links(job))

    @api.post("/cancel/{task_id}", summary="Cancel a Protect task (a waiting one never starts)")
    def cancel(task_id: str, client: Client = guard) -> dict[str, Any]:
        job = state.job(task_id, client, KINDS)
        state.queue.cancel(job)
        return state.status(job, _links(job))

    @api.get("/result/{task_id}", summary="Protected images (base64) and metrics of a finished task")
    def result(task_id: str, client: Client = guard) -> Response:
        job = state.job(task_id, client, KINDS)
        return _json(_body(job, state.finished(job)))

    @api.get("/result/{task_id}/zip", summary="The protected files and metrics.json as a zip")
    def result_zip(task_id: str, client: Client = guard) -> Response:
        job = state.job(task_id, client, KINDS)
        data = state.finished(job).zip_bytes()
        return Response(data, media_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{job.id}.zip"'})

    return api
