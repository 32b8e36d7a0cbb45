"""Models (list, load, unload), the attack methods Protect offers, health and Prometheus metrics."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from .. import __version__
from ..monitoring import loaded_models
from .registry import IDENTITY, UnknownModel
from .state import ApiState

PARAMS = {  # what attack_params each method reads
    "fgsm": ("epsilon",),
    "ifgsm": ("epsilon", "iterations", "step_size"),
    "pgd": ("epsilon", "iterations", "step_size", "random_start"),
}


def attack_methods(state: ApiState) -> dict[str, Any]:
    from ..protect import list_attacks
    from ..protect.attacks.registry import get_attack_class
    from ..protect.job import OUTPUT_FORMATS, ProtectParams
    from ..protect.identity.job import AUTO_BUDGETS_255, CloakParams

    defaults = ProtectParams()
    methods = []
    for name in list_attacks():
        doc = (get_attack_class(name).__doc__ or "").strip().splitlines()
        accepted = PARAMS.get(name, ("epsilon",))
        methods.append({"name": name, "description": doc[0] if doc else "", "attack_params": list(accepted),
                        "defaults": {k: getattr(defaults, k) for k in accepted}})
    cloak = CloakParams()
    return {
        "attack_methods": methods,
        "model_types": state.models.generator_names() + [IDENTITY],
        "identity": {"attack_params": ["epsilon", "iterations"], "defaults": {
            "epsilon": None, "iterations": cloak.iterations},
            "note": f"epsilon null = automatic: the smallest of {', '.join(map(str, AUTO_BUDGETS_255))} /255 that "
                    "works"},
        "output_formats": list(OUTPUT_FORMATS),
        "scale": "epsilon and step_size are on the [-1, 1] image scale (0.05 = 6.4/255)",
        "limits": {"epsilon": "0 < epsilon <= 0.5 (identity 0.25), at least 1/255 = 0.0078",
                   "iterations": "1..1000 (identity 1..500)", "step_size": "0 < step_size <= 0.5"},
        "defaults": {k: v for k, v in dataclasses.asdict(defaults).items() if k not in ("targets", "seed")},
    }


def router(state: ApiState) -> APIRouter:
    api = APIRouter()
    guard = Depends(state.guard)

    @api.get("/health", tags=["service"], summary="Liveness and a summary of the queue, store and models")
    def health() -> dict[str, Any]:
        usage = state.store.usage()
        return {"status": "ok", "version": __version__, "device": state.device, "jobs": state.queue.counts(),
                "models_loaded": sorted(set(loaded_models())), "keys_required": state.guard.keys_required,
                "store": {"bytes": usage.bytes_used, "limit_bytes": usage.bytes_limit, "entries": usage.entries}}

    @api.get("/metrics", tags=["service"], summary="Prometheus metrics (text format)", dependencies=[guard])
    def metrics() -> Response:
        return Response(state.monitor.render(), media_type=CONTENT_TYPE_LATEST)

    @api.get("/api/v1/models", tags=["models"], summary="Detectors, Protect generators and the identity recogniser",
             dependencies=[guard])
    def models() -> dict[str, Any]:
        from ..detect.pipeline import default_detector_name

        return {"default_detector": default_detector_name(), "models": state.models.describe_all()}

    @api.post("/api/v1/models/{name:path}/load", tags=["models"], summary="Load a model now (jobs load on demand)",
              dependencies=[guard])
    def load(name: str) -> dict[str, Any]:
        _known(state, name)
        return state.models.load(name)

    @api.post("/api/v1/models/{name:path}/unload", tags=["models"], summary="Drop a loaded model",
              dependencies=[guard])
    def unload(name: str) -> dict[str, Any]:
        _known(state, name)
        was_loaded = state.models.unload(name)
        return {**state.models.describe(name), "unloaded": was_loaded}

    @api.get("/api/v1/config/attack-methods", tags=["protect"], summary="Attack methods, model types, defaults",
             dependencies=[guard])
    def config() -> dict[str, Any]:
        return attack_methods(state)

    return api


def _known(state: ApiState, name: str) -> None:
    """An unknown model is a 404 on these routes (the name is the resource)."""
    try:
        state.models.kind_of(name)
    except UnknownModel as exc:
        raise HTTPException(404, detail=str(exc)) from None
