"""``apate api``: a real uvicorn on a loopback port, spoken to over HTTP with urllib.

Two servers share this process (and so the one job queue): ``local`` (no keys, tiny upload limits so 413 is cheap
to reach, no rate limit) and ``keyed`` (API keys and a small per-key rate limit). Detect uses the untrained
resnet18, Protect the shipped StarGAN with one or two attack steps.
"""

from __future__ import annotations

import base64
import io
import re
import json
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from typing import Any, Iterable, Optional

import numpy as np
import pytest
from PIL import Image

ALPHA, BETA, GAMMA = "alpha-key-0123456789", "beta-key-0123456789", "gamma-key-0123456789"
LIMIT_MB = 0.05  # both image and video: ~51 KB
RATE = 30  # per key per minute on the keyed server: room for one job followed to its end, yet quick to exhaust


# ------------------------------------------------------------------------------------------ helpers


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Api:
    """A base URL and a few urllib calls that return (status, headers, body) whatever the status."""

    def __init__(self, base: str, key: Optional[str] = None):
        self.base, self.key = base, key

    def call(self, method: str, path: str, body: Any = None, ctype: str = "", headers: Optional[dict] = None,
             key: Optional[str] = None) -> tuple[int, Any, bytes]:
        sent = dict(headers or {})
        if ctype:
            sent["Content-Type"] = ctype
        if key or self.key:
            sent.setdefault("X-API-Key", key or self.key)
        request = urllib.request.Request(self.base + path, data=body, headers=sent, method=method)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, exc.read()

    def get(self, path: str, **kw) -> tuple[int, Any, bytes]:
        return self.call("GET", path, **kw)

    def json(self, method: str, path: str, **kw) -> tuple[int, Any]:
        status, _headers, body = self.call(method, path, **kw)
        return status, json.loads(body)

    def post_json(self, path: str, data: dict, **kw) -> tuple[int, Any]:
        return self.json("POST", path, body=json.dumps(data).encode(), ctype="application/json", **kw)

    def post_form(self, path: str, fields: dict, files: Iterable[tuple[str, str, bytes]] = (), **kw):
        body, ctype = multipart(fields, files)
        return self.json("POST", path, body=body, ctype=ctype, **kw)

    def wait(self, status_path: str, seconds: float = 60) -> dict:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            code, data = self.json("GET", status_path)
            assert code == 200, data
            if data["status"] in ("succeeded", "failed", "cancelled"):
                return data
            time.sleep(0.2)
        raise AssertionError(f"{status_path} did not finish in {seconds} s")


def multipart(fields: dict, files: Iterable[tuple[str, str, bytes]] = ()) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, filename, data in files:
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                  f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def png(side: int = 64, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def decode(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB"))


@pytest.fixture(scope="module")
def serve(tmp_path_factory, one_thread):
    """Start ``create_app(settings)`` under a real uvicorn in a thread; every server stops after the module."""
    import uvicorn

    from apate_core.api import create_app
    from apate_core.settings import load_settings

    servers = []

    def start(**overrides) -> str:
        folder = tmp_path_factory.mktemp("api")
        # the device stays "auto": the first app creates the process's one queue, which later tests share
        settings = load_settings({}, cache_dir=str(folder / "cache"), models_dir=str(folder / "models"), **overrides)
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                               log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def local(serve) -> Api:
    return Api(serve(max_image_mb=LIMIT_MB, max_video_mb=LIMIT_MB, api_rate_per_minute=0))


@pytest.fixture(scope="module")
def keyed(serve) -> Api:
    return Api(serve(api_keys=f"{ALPHA},{BETA},{GAMMA}", api_rate_per_minute=RATE))


@pytest.fixture(scope="module")
def detected(local) -> str:
    """One finished Detect job on the local server (its id)."""
    code, data = local.post_form("/api/upload", {"model": "resnet18", "top_k": "2"}, [("file", "noise.png", png())])
    assert code == 202, data
    assert data["status_url"] == f"/api/status/{data['job_id']}"
    status = local.wait(data["status_url"])
    assert status["status"] == "succeeded", status
    return data["job_id"]


# ------------------------------------------------------------------------------------------ Detect


def test_the_face_check_can_be_switched_off(local):
    code, data = local.post_form("/api/upload", {"model": "resnet18", "cam": "none", "face_check": "false"},
                                 [("file", "noise.png", png())])
    assert code == 202, data
    assert local.wait(data["status_url"])["status"] == "succeeded"
    code, result = local.json("GET", f"/api/result/{data['job_id']}")
    assert code == 200 and "face_evidence" not in result and result["params"]["face_evidence"] is False


def test_upload_status_result_report_and_heatmaps(local, detected):
    code, status = local.json("GET", f"/api/status/{detected}")
    assert code == 200 and status["progress"] == 1.0 and status["error"] is None
    assert set(status["links"]) == {"result", "report", "heatmaps_zip", "files"}

    code, result = local.json("GET", f"/api/result/{detected}")
    assert code == 200 and result["kind"] == "image" and 0.0 <= result["score"] <= 1.0
    assert result["model"]["name"] == "resnet18" and result["input"]["name"] == "noise.png"
    assert "path" not in result["input"] and "video_path" not in result  # server paths stay on the server
    assert result["face_evidence"]["faces"] == 0 and result["params"]["face_evidence"]  # checked, no face in noise

    code, headers, html = local.get(f"/api/result/{detected}/report.html")
    assert code == 200 and headers["content-type"].startswith("text/html") and b"Apate detect report" in html
    code, headers, blob = local.get(f"/api/result/{detected}/heatmaps.zip")
    assert code == 200 and headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(blob)).namelist()
    assert "result.json" in names and any(n.startswith("heatmaps/") for n in names)

    code, listing = local.json("GET", f"/api/result/{detected}/files")
    heatmap = next(f for f in listing["files"] if f["name"].startswith("heatmaps/"))
    code, headers, data = local.get(heatmap["url"])
    assert code == 200 and headers["content-type"] == "image/png" and data.startswith(b"\x89PNG")
    assert local.get(f"/api/result/{detected}/heatmaps/999999.png")[0] == 404


def test_url_input_goes_through_the_ssrf_guard(local):
    for url in ("http://127.0.0.1:9/x.png", "http://169.254.169.254/latest/meta-data", "file:///etc/passwd",
                "/etc/passwd"):
        code, data = local.post_form("/api/upload", {"url": url, "model": "resnet18"})
        assert code == 400 and data["error"] == "UrlRefused", (url, data)
    assert "loopback" in local.post_form("/api/upload", {"url": "http://127.0.0.1/x.png"})[1]["detail"]


def test_error_codes(local):
    code, data = local.post_form("/api/upload", {"model": "resnet18"})
    assert code == 400 and "No input" in data["detail"]
    code, data = local.post_form("/api/upload", {"model": "no-such-model"}, [("file", "a.png", png())])
    assert code == 400 and "resnet18" in data["accepted"]
    assert local.json("GET", "/api/status/detect-0-deadbeef")[0] == 404
    assert local.json("GET", "/api/result/detect-0-deadbeef")[0] == 404

    code, data = local.post_form("/api/upload", {}, [("file", "notes.png", b"just some text, not an image\n" * 20)])
    assert code == 415 and data["error"] == "UnsupportedMedia" and "Accepted" in data["detail"]

    big_png = png(side=160, seed=1)  # ~77 KB of noise: a valid PNG over the 51 KB image limit, within the body's
    assert LIMIT_MB * 2**20 < len(big_png) < LIMIT_MB * 2**20 + 60_000
    code, data = local.post_form("/api/upload", {}, [("file", "big.png", big_png)])
    assert code == 413 and data["error"] == "MediaTooLarge" and "APATE_MAX_IMAGE_MB" in data["limit"], data

    body, ctype = multipart({}, [("file", "huge.bin", b"\0" * 400_000)])
    code, data = local.json("POST", "/api/upload", body=body, ctype=ctype)  # declared length over the limit
    assert code == 413 and data["error"] == "MediaTooLarge" and "APATE_MAX_VIDEO_MB" in data["detail"]
    chunks = (body[i:i + 16384] for i in range(0, len(body), 16384))  # no length: streamed, stopped at the limit
    code, _headers, raw = local.call("POST", "/api/upload", body=chunks, ctype=ctype)
    assert code == 413 and json.loads(raw)["error"] == "MediaTooLarge" and b"request body is over" in raw


def test_no_traceback_in_any_response(local, monkeypatch):
    from apate_core.api import routes_models

    def broken(state):
        raise RuntimeError("secret internal detail at /srv/apate")

    monkeypatch.setattr(routes_models, "attack_methods", broken)
    code, _headers, body = local.get("/api/v1/config/attack-methods")
    assert code == 500 and b"Traceback" not in body and b"secret" not in body
    assert json.loads(body)["error"] == "InternalError"


# ------------------------------------------------------------------------------------------ Protect


def test_protect_image_json_and_multipart(local):
    original = png(seed=2)
    request = {"image": base64.b64encode(original).decode(), "name": "face.png", "model_type": "stargan",
               "attack_method": "pgd", "attack_params": {"epsilon": 0.05, "iterations": 2, "step_size": 0.01,
                                                         "random_start": True},
               "targets": ["grayscale"], "with_robustness": False, "output_format": "png"}
    code, data = local.post_json("/api/v1/protect/image", request)
    assert code == 200, data
    assert data["model_type"] == "stargan" and data["mime"] == "image/png" and data["file_name"].endswith(".png")
    protected, source = decode(data["image"]), decode(base64.b64encode(original).decode())
    assert protected.shape == source.shape and 0 < np.abs(protected.astype(int) - source).max() <= 6
    assert data["metrics"]["perturbation"]["linf_8bit"] <= 0.05 * 127.5 and data["params"]["attack"] == "pgd"
    assert "path" not in data["generator"]

    code, data = local.post_form("/api/v1/protect/image", {
        "model_type": "stargan", "attack_method": "fgsm", "attack_params": json.dumps({"epsilon": 0.03}),
        "targets": "grayscale", "with_robustness": "false", "output_format": "jpeg"}, [("file", "b.png", original)])
    assert code == 200 and data["mime"] == "image/jpeg" and data["params"]["attack"] == "fgsm", data
    assert data["params"]["epsilon"] == 0.03

    code, data = local.post_json("/api/v1/protect/image", {
        "image": base64.b64encode(original).decode(), "model_type": "identity",
        "attack_params": {"epsilon": 0.03, "iterations": 1}, "with_robustness": False})
    assert code == 200 and data["model_type"] == "identity" and data["metrics"]["faces"] == [], data


def test_protect_refusals(local):
    good = base64.b64encode(png()).decode()
    cases = [({"image": "not base64!!"}, "base64"), ({"image": good, "model_type": "dalle"}, "model_type"),
             ({"image": good, "attack_params": {"epsilon": 9}}, "epsilon"),
             ({"image": good, "attack_method": "cw"}, "attack"), ({"image": good, "colour": "red"}, "colour"),
             ({"name": "x.png"}, "image")]
    for request, word in cases:
        code, data = local.post_json("/api/v1/protect/image", request)
        assert code == 400 and word in data["detail"], (request, data)
    code, data = local.json("POST", "/api/v1/protect/image", body=b"x", ctype="text/plain")
    assert code == 415
    code, data = local.post_json("/api/v1/protect/image", {"image": base64.b64encode(b"GIF89a" + b"\0" * 50).decode()})
    assert code in (415, 422), data
    assert local.json("GET", "/api/v1/protect/status/protect-0-deadbeef")[0] == 404
    code, data = local.post_json("/api/v1/protect/image", {"image": "A" * 300_000})  # over 51 KB once decoded
    assert code == 413 and "APATE_MAX_IMAGE_MB" in data["detail"]


def test_protect_batch(local):
    files = [("files", "one.png", png(seed=3)), ("files", "two.png", png(seed=4))]
    code, data = local.post_form("/api/v1/protect/batch", {  # attack_params' keys as fields of their own
        "attack_method": "pgd", "iterations": "1", "epsilon": "0.04", "targets": "grayscale",
        "with_robustness": "false"}, files)
    assert code == 202, data
    status = local.wait(data["status_url"])
    assert status["status"] == "succeeded" and status["links"]["zip"].endswith("/zip"), status
    code, result = local.json("GET", data["result_url"])
    assert code == 200 and [im["file_name"] for im in result["images"]] == ["one.protected.png", "two.protected.png"]
    assert result["params"]["iterations"] == 1 and result["params"]["epsilon"] == 0.04
    assert decode(result["images"][1]["image"]).shape == (64, 64, 3)
    code, _headers, blob = local.get(status["links"]["zip"])
    assert code == 200 and "metrics.json" in zipfile.ZipFile(io.BytesIO(blob)).namelist()
    code, status = local.json("POST", f"/api/v1/protect/cancel/{data['task_id']}")
    assert code == 200 and status["status"] == "succeeded"  # too late to cancel: nothing changes
    assert local.json("GET", f"/api/result/{data['task_id']}")[0] == 404  # a Protect task is not a Detect job


# ------------------------------------------------------------------------------------------ models, health, metrics


def test_models_load_and_unload(local):
    code, listing = local.json("GET", "/api/v1/models")
    names = {m["name"]: m for m in listing["models"]}
    assert code == 200 and {"resnet18", "stargan", "identity"} <= set(names)
    code, model = local.json("POST", "/api/v1/models/resnet18/load")
    device = local.json("GET", "/health")[1]["device"]
    assert code == 200 and model["loaded"] and model["device"].startswith(device) and model["parameter_bytes"] > 10**7
    code, model = local.json("POST", "/api/v1/models/stargan/load")
    assert code == 200 and model["loaded"] and model["kind"] == "generator" and model["source"] == "shipped"
    for name in ("resnet18", "stargan"):
        code, model = local.json("POST", f"/api/v1/models/{name}/unload")
        assert code == 200 and model["unloaded"] and not model["loaded"]
    assert not local.json("POST", "/api/v1/models/resnet18/unload")[1]["unloaded"]
    assert local.json("POST", "/api/v1/models/nonexistent/load")[0] == 404
    code, config = local.json("GET", "/api/v1/config/attack-methods")
    assert code == 200 and {m["name"] for m in config["attack_methods"]} == {"fgsm", "ifgsm", "pgd"}
    assert "identity" in config["model_types"]


def test_health_metrics_and_docs(local, detected):
    code, health = local.json("GET", "/health")
    assert code == 200 and health["status"] == "ok" and health["device"] in ("cpu", "cuda")
    code, headers, text = local.get("/metrics")
    assert code == 200 and headers["content-type"].startswith("text/plain")
    assert 'apate_jobs_finished_total{kind="detect",state="succeeded"}' in text.decode()
    code, _headers, docs = local.get("/docs")
    assert code == 200 and b"swagger" in docs.lower()
    # Offline: the documentation pages load their scripts and styles from this server, never from a CDN.
    for page in ("/docs", "/redoc"):
        html = local.get(page)[2].decode()
        assets = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)
        assert assets and all(a.startswith("/") for a in assets), assets
        for asset in assets:
            assert local.get(asset)[0] == 200, asset
    code, spec = local.json("GET", "/openapi.json")
    assert {"/api/upload", "/api/v1/protect/image", "/api/v1/protect/batch", "/health"} <= set(spec["paths"])


# ------------------------------------------------------------------------------------------ keys and rate limits


def test_api_keys_and_job_isolation(keyed):
    code, data = keyed.json("GET", "/api/v1/models")
    assert code == 401 and data["error"] == "Unauthorized"
    assert keyed.json("GET", "/api/v1/models", key="wrong-key-0123456789")[0] == 401
    assert keyed.json("GET", "/metrics")[0] == 401
    assert keyed.json("GET", "/health")[0] == 200  # liveness stays open
    assert keyed.json("GET", "/api/v1/models", key=ALPHA)[0] == 200
    assert keyed.json("GET", "/api/v1/models", headers={"Authorization": f"Bearer {ALPHA}"})[0] == 200

    code, job = keyed.post_form("/api/upload", {"model": "resnet18", "cam": "none"}, [("file", "a.png", png())],
                                key=ALPHA)
    assert code == 202, job
    assert keyed.json("GET", job["status_url"], key=ALPHA)[0] == 200
    assert keyed.json("GET", job["status_url"], key=BETA)[0] == 404  # another key's job does not exist for it
    assert keyed.json("POST", f"/api/cancel/{job['job_id']}", key=BETA)[0] == 404
    code, status = keyed.json("POST", f"/api/cancel/{job['job_id']}", key=ALPHA)
    assert code == 200 and status["job_id"] == job["job_id"]
    final = Api(keyed.base, ALPHA).wait(job["status_url"])
    assert final["status"] in ("cancelled", "succeeded")  # it may have finished before the cancel arrived
    if final["status"] == "cancelled":
        assert keyed.json("GET", job["result_url"], key=ALPHA)[0] == 409


def test_rate_limit_gives_429_with_retry_after(keyed):
    codes = [keyed.call("GET", "/api/v1/models", key=GAMMA)[0] for _ in range(RATE)]
    assert codes == [200] * RATE
    code, headers, body = keyed.call("GET", "/api/v1/models", key=GAMMA)
    assert code == 429 and int(headers["Retry-After"]) >= 1 and b"APATE_API_RATE_PER_MINUTE" in body
    assert keyed.json("GET", "/api/v1/models", key=BETA)[0] == 200  # buckets are per key


def test_api_command_refuses_a_public_address_without_keys(monkeypatch, capsys):
    from apate_core.api.security import check_binding, is_loopback, load_keys
    from apate_core.cli import main
    from apate_core.errors import ApateError

    monkeypatch.delenv("APATE_API_KEYS", raising=False)
    assert main(["api", "--host", "0.0.0.0", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Refusing to serve the API on 0.0.0.0 without API keys") and "APATE_API_KEYS" in err
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("[::1]") and not is_loopback("::")
    check_binding("10.0.0.5", (ALPHA,))  # with keys any address is fine
    with pytest.raises(ApateError, match="16 characters"):
        load_keys("short")


def test_keys_from_a_file(tmp_path):
    from apate_core.api.security import load_keys

    path = tmp_path / "keys.txt"
    path.write_text(f"# service keys\n{ALPHA}\n\n{BETA}\n")
    assert load_keys(str(path)) == (ALPHA, BETA)
    assert load_keys(f" {ALPHA} , {BETA},") == (ALPHA, BETA) and load_keys("") == ()
