"""The HTTP API (FastAPI, served by ``apate api``): Detect and Protect over the engine, its job queue and store.

    from apate_core.api import create_app
    app = create_app(load_settings())      # an ASGI app; `apate api` runs it under uvicorn

Routes: ``/api/upload``, ``/api/status/{id}``, ``/api/result/{id}`` (+ report.html, heatmaps.zip, files),
``/api/v1/protect/{image,batch,status,result}``, ``/api/v1/models``, ``/api/v1/config/attack-methods``,
``/health``, ``/metrics``; interactive documentation at ``/docs``.
"""

from __future__ import annotations

from typing import Any


def create_app(*args: Any, **kwargs: Any):  # imported lazily: `apate --help` need not import FastAPI
    from .app import create_app as build

    return build(*args, **kwargs)


__all__ = ["create_app"]
