"""The identity-cloaking job: one typed API shared by ``apate protect --target identity`` and the Protect page.

    images = [load_image(p, settings) for p in paths]          # same intake and limits as every Protect job
    result = run_identity_job(images, CloakParams(), settings, store=store, progress=cb, cancel=token)
    result.images[0].checks                                     # per face: distance after re-detection, per condition

Every face MTCNN finds is cloaked at the photo's full resolution, the file is quantised to 8 bits with the ε
bound kept, and the saved file is checked the way a scraper would see it (``verify.check_identity``).
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import math
import time
import zipfile
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from ... import history
from ...media.intake import sha256_file
from ...progress import CancelToken, ProgressCallback, check_cancelled, no_progress
from ...settings import Settings
from ...store import ResultStore, make_key
from ..convert import SCALE, epsilon_steps, image_to_tensor, quantize_protected
from ..job import LOSSY_QUALITY, OUTPUT_FORMATS, ImageInput, InvalidProtectParams, decode_bytes, encode_image
from ..metrics import image_quality, perturbation_norms
from ..shaping import NO_SHAPING
from ..views import PairViews
from .align import AlignedFace, find_faces
from .cloak import IDENTITY_SHAPING, CloakConfig, cloak_faces
from .descriptor import DEFAULT_WEIGHTS, MATCH_THRESHOLD, load_face_descriptor
from .verify import (CONDITIONS, HEADLINE, VERIFIED, FaceCheck, check_identity, descriptors, protected_distances,
                     unmatched_share)

TARGET = "identity"
TARGET_LABEL = "Identity (face recognition)"
RECOGNISER = "face-api.js FaceRecognitionNet (dlib ResNet, 128-d), ported to PyTorch"
# The automatic budget: the smallest of these (in /255) that takes every face to GOAL_DISTANCE.
AUTO_BUDGETS_255 = (4, 5, 6, 8)
GOAL_DISTANCE = 0.68  # in float, before 8-bit rounding and re-detection: a margin over MATCH_THRESHOLD
# ...and on the 8-bit file, re-detected as saved and after JPEG 75 (verify.VERIFIED): at a 4/255 budget one face
# in three that reached GOAL_DISTANCE in float was matched again after JPEG 75, so the budget climbs for those
VERIFIED_DISTANCE = 0.62
SSIM_FLOOR = 0.95  # the automatic budget stops climbing where the photo would visibly change


def card() -> dict:
    """The face descriptor's model card (source, licence, exactness and the cloak's measured efficacy)."""
    try:
        data = json.loads(DEFAULT_WEIGHTS.with_suffix(".json").read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


@functools.lru_cache(maxsize=1)
def weights_sha256() -> str:
    return sha256_file(DEFAULT_WEIGHTS)


@dataclass(frozen=True)
class CloakParams:
    """Identity-cloak parameters; ε on the [-1, 1] scale like every Protect budget (4/255 = 0.0314).
    ``epsilon=None`` (the default) tries AUTO_BUDGETS_255 in turn and keeps the first that works."""

    epsilon: Optional[float] = None
    iterations: int = CloakConfig.iterations
    eot_samples: int = CloakConfig.eot_samples
    shaping: bool = True
    output_format: str = "png"
    with_robustness: bool = True  # every condition of verify.CONDITIONS, not only the saved file
    seed: int = 0

    def validate(self) -> "CloakParams":
        eps = self.budgets[-1]
        checks = [
            (math.isfinite(eps) and 0 < eps <= 0.25, f"Invalid epsilon {eps:g}",
             "0 < eps <= 0.25 on the [-1, 1] scale (4/255 = 0.0314)"),
            (eps * SCALE >= 1, f"Epsilon {eps:g} is less than one 8-bit step", f"eps >= {1 / SCALE:.4f} (1/255)"),
            (1 <= int(self.iterations) <= 500 and int(self.iterations) == self.iterations,
             f"Invalid number of iterations {self.iterations}", "a whole number from 1 to 500"),
            (1 <= int(self.eot_samples) <= 16, f"Invalid number of samples {self.eot_samples}", "1 to 16"),
            (self.output_format in OUTPUT_FORMATS, f"Unknown output format {self.output_format!r}",
             ", ".join(OUTPUT_FORMATS)),
        ]
        for ok, problem, accepted in checks:
            if not ok:
                raise InvalidProtectParams(problem, accepted=accepted)
        return dataclasses.replace(self, iterations=int(self.iterations), eot_samples=int(self.eot_samples))

    @property
    def budgets(self) -> tuple[float, ...]:
        """Budgets to try, smallest first, on the [-1, 1] scale."""
        return (self.epsilon,) if self.epsilon is not None else tuple(b / SCALE for b in AUTO_BUDGETS_255)

    def config(self, epsilon: float) -> CloakConfig:
        shaping = IDENTITY_SHAPING if self.shaping else NO_SHAPING
        return CloakConfig(epsilon=epsilon, iterations=self.iterations, eot_samples=self.eot_samples,
                           shaping=shaping, seed=self.seed)


@dataclass
class CloakedImage(PairViews):
    name: str
    sha256: str
    original: np.ndarray  # (H, W, 3) uint8
    protected: np.ndarray  # (H, W, 3) uint8, |protected - original| <= floor(eps * 127.5)
    faces: list[dict]  # box, prob, landmarks per face found in the original
    checks: list[FaceCheck]
    metrics: dict  # JSON-ready
    encoded: bytes
    output_format: str
    cached: bool = False

    def unmatched(self, condition: str = "as saved") -> Optional[float]:
        return unmatched_share(self.checks, condition)

    def to_dict(self) -> dict:
        h, w = self.original.shape[:2]
        return {"name": self.name, "sha256": self.sha256, "width": w, "height": h, "file": self.file_name,
                "format": self.output_format, "cached": self.cached, **self.metrics}


@dataclass
class IdentityJobResult:
    images: list[CloakedImage]
    params: CloakParams
    weights_sha256: str
    seconds: float

    def to_dict(self) -> dict:
        return {"target": TARGET, "recogniser": RECOGNISER, "weights_sha256": self.weights_sha256,
                "match_threshold": MATCH_THRESHOLD, "params": dataclasses.asdict(self.params),
                "seconds": round(self.seconds, 3), "images": [im.to_dict() for im in self.images]}

    def metrics_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def zip_bytes(self) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
            for n, image in enumerate(self.images, 1):
                zf.writestr(f"{n:02d}-{image.file_name}", image.encoded)
            zf.writestr("metrics.json", self.metrics_json())
        return buffer.getvalue()


def _metrics(image: ImageInput, protected: np.ndarray, faces: Sequence[AlignedFace], checks: Sequence[FaceCheck],
             params: CloakParams, epsilon: float, steps: int, seconds: float) -> dict:
    norms, quality = perturbation_norms(image.rgb, protected), image_quality(image.rgb, protected)
    conditions = list(dict.fromkeys(c.condition for c in checks))
    return {
        "target": TARGET, "epsilon": epsilon, "epsilon_8bit": epsilon * SCALE, "epsilon_steps": epsilon_steps(epsilon),
        "automatic_budget": params.epsilon is None, "shaping": params.shaping,
        "perturbation": {"l2": norms.l2, "linf": norms.linf, "linf_8bit": norms.linf_8bit},
        "quality": {"ssim": quality.ssim, "psnr": quality.psnr if math.isfinite(quality.psnr) else None},
        "faces": [f.to_dict() for f in faces], "match_threshold": MATCH_THRESHOLD,
        "checks": [c.to_dict() for c in checks],
        "unmatched": {c: unmatched_share(checks, c) for c in conditions},
        "iterations_run": steps, "seconds": round(seconds, 3),
        "seconds_per_face": round(seconds / len(faces), 3) if faces else None,
    }


def _summary(done: CloakedImage) -> str:
    faces = len(done.faces)
    if not faces:
        return "identity: no face found, unchanged"
    return (f"identity: {done.unmatched():.0%} of {faces} face(s) no longer matched, "
            f"{done.metrics['epsilon_steps']}/255, SSIM {done.metrics['quality']['ssim']:.3f}")


def _from_store(store: Optional[ResultStore], key: str, image: ImageInput, fmt: str) -> Optional[CloakedImage]:
    hit = store.get(key) if store is not None else None
    if hit is None or "protected" not in hit.arrays or hit.arrays["protected"].shape != image.rgb.shape:
        return None
    metrics = hit.meta["metrics"]
    checks = [FaceCheck(c["face"], c["condition"], c["distance"], c["baseline"]) for c in metrics["checks"]]
    protected = hit.arrays["protected"]
    return CloakedImage(image.name, image.sha256, image.rgb, protected, metrics["faces"], checks, metrics,
                        encode_image(protected, fmt), fmt, cached=True)


def _cloak(image: ImageInput, faces: Sequence[AlignedFace], reference: torch.Tensor, params: CloakParams, net,
           report, cancel: Optional[CancelToken]) -> tuple[np.ndarray, int, float]:
    """(protected, steps, epsilon): the smallest budget whose 8-bit file keeps every face past the goals
    (GOAL_DISTANCE in float, VERIFIED_DISTANCE re-detected as saved and after JPEG 75); with the automatic
    budget, climbing stops where SSIM would fall below SSIM_FLOOR (the rung below is kept)."""
    budgets, kept, steps = params.budgets, None, 0
    for n, epsilon in enumerate(budgets if faces else ()):
        step = lambda f, m, n=n: report(0.05 + 0.75 * (n + f) / len(budgets), f"{image.name}: {m}")  # noqa: E731
        result = cloak_faces(net, image_to_tensor(image.rgb), faces, params.config(epsilon), progress=step,
                             cancel=cancel)
        protected, steps = quantize_protected(image.rgb, result.protected, epsilon), steps + result.iterations
        if kept is not None and image_quality(image.rgb, protected).ssim < SSIM_FLOOR:
            break
        kept = (protected, steps, epsilon)
        if n == len(budgets) - 1 or min(result.distances) < GOAL_DISTANCE:
            continue
        step(1.0, "checking the saved file as a recogniser would")
        if min(protected_distances(net, protected, faces, reference, VERIFIED)) >= VERIFIED_DISTANCE:
            break
    return kept if kept is not None else (image.rgb, 0, budgets[0])


def protect_identity(image: ImageInput, params: CloakParams, net, *, progress: Optional[ProgressCallback] = None,
                     cancel: Optional[CancelToken] = None) -> CloakedImage:
    """Find, cloak and check every face of one photo (a photo without faces comes back unchanged)."""
    report, started = progress or no_progress, time.perf_counter()
    report(0.0, f"{image.name}: finding faces")
    faces = find_faces(image.rgb)
    check_cancelled(cancel)
    reference = descriptors(net, image.rgb, faces)
    protected, steps, epsilon = _cloak(image, faces, reference, params, net, report, cancel)
    seconds = time.perf_counter() - started
    report(0.85, f"{image.name}: checking the recogniser on the saved file")
    encoded = encode_image(protected, params.output_format)
    saved = decode_bytes(encoded) if params.output_format != "png" else protected
    conditions = CONDITIONS if params.with_robustness else CONDITIONS[:1]
    checks = check_identity(net, image.rgb, saved, faces, conditions, reference)
    metrics = _metrics(image, protected, faces, checks, params, epsilon, steps, seconds)
    if params.output_format != "png":
        metrics["saved_file"] = f"{params.output_format} q{LOSSY_QUALITY}: checks are on the re-compressed file"
    return CloakedImage(image.name, image.sha256, image.rgb, protected, metrics["faces"], checks, metrics,
                        encoded, params.output_format)


def run_identity_job(images: Sequence[ImageInput], params: CloakParams, settings: Settings, *,
                     store: Optional[ResultStore] = None, progress: Optional[ProgressCallback] = None,
                     cancel: Optional[CancelToken] = None) -> IdentityJobResult:
    """Cloak every face in up to ``settings.max_batch`` photos; results are cached in ``store``."""
    started, report = time.perf_counter(), progress or no_progress
    params = params.validate()
    if not images:
        raise InvalidProtectParams("No images to protect", accepted="one or more JPEG, PNG or WebP images")
    if len(images) > settings.max_batch:
        raise InvalidProtectParams(f"{len(images)} images in one job",
                                   limit=f"{settings.max_batch} images (APATE_MAX_BATCH)")
    report(0.0, "loading the face recogniser")
    net, sha = load_face_descriptor(), weights_sha256()
    payload = dataclasses.asdict(params)
    results = []
    for n, image in enumerate(images):
        check_cancelled(cancel)
        key = make_key(image.sha256, "protect", TARGET, sha, payload)
        done = _from_store(store, key, image, params.output_format)
        if done is None:
            step = lambda f, m, n=n: report((n + f) / len(images), m)  # noqa: E731
            with torch.inference_mode(False):
                done = protect_identity(image, params, net, progress=step, cancel=cancel)
            if store is not None:
                store.put(key, {"metrics": done.metrics, "kind": "protect", "target": TARGET, "name": image.name},
                          {"protected": done.protected})
                history.record(store, history.protect_entry(key, image.name, TARGET, RECOGNISER, sha, payload,
                                                            _summary(done)), done.protected)
        results.append(done)
    report(1.0, "done")
    return IdentityJobResult(results, params, sha, time.perf_counter() - started)

