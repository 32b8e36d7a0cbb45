"""The Protect job: one typed API shared by ``apate protect`` and the Protect page.

    choices = available_generators(settings)                 # shipped, discovered, or random demo weights
    params = ProtectParams(attack="pgd", epsilon=0.05)        # [-1, 1] scale, like the reference code
    images = [load_image(p, settings) for p in paths]         # intake + protect size limit
    result = run_protect_job(images, choices[0], params, settings, store=store, progress=cb, cancel=token)
    result.images[0].encoded                                  # the protected file, input's size, ε bound exact

The perturbation is optimised at each image's own resolution through the differentiable resize that feeds the
generator, then quantised to 8 bits with the bound kept (``quantize_protected``). Images of the same size are
attacked together as one batch on the device.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import math
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from PIL import Image

from .. import history
from ..errors import InputRefused, UnsupportedMedia
from ..media.images import check_protect_size, decode_image
from ..media.intake import intake_file, sha256_file
from ..progress import CancelToken, ProgressCallback, check_cancelled, no_progress
from ..settings import Settings
from ..store import ResultStore, make_key
from .attacks import create_attack, list_attacks
from .checkpoints import discover_checkpoints, load_generator
from .convert import SCALE, epsilon_steps, fit_to_model, image_to_tensor, quantize_protected, tensor_to_image
from .generators import TranslationGenerator, default_targets, get_family, list_generators
from .generators.ganimation import EXPRESSION_PRESETS
from .metrics import DISRUPTION_THRESHOLD, ProtectionReport, evaluate_protection, output_distortion
from .shaping import NO_SHAPING, Shaping
from .views import MIME, SUFFIX, PairViews  # noqa: F401 - MIME, SUFFIX re-exported

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_DIR = ROOT / "assets" / "models" / "protect"
RANDOM_LABEL = "random weights (demo only — not a real generator)"
# Small configurations for the random-weights demo: same conditions as the release, far fewer channels.
DEMO_CONFIGS: dict[str, dict[str, Any]] = {
    "stargan": {"conv_dim": 16, "repeat_num": 2},
    "ganimation": {"conv_dim": 16, "repeat_num": 2},
    "cyclegan": {"ngf": 16, "n_blocks": 2},
    "pix2pixhd": {"input_nc": 3, "netG": "global", "ngf": 8, "n_downsample_global": 3, "n_blocks_global": 2},
}
# Random demo weights mean nothing at any size: run them at a small one to keep the demo quick.
DEMO_MODEL_SIZE = (128, 128)
DEFAULT_TARGETS = 5  # targets attacked when none are chosen (all five StarGAN attributes, five expressions)
OUTPUT_FORMATS = ("png", "jpeg", "webp")
LOSSY_QUALITY = 95
MAX_BATCH_PIXELS = 16_000_000  # full-resolution pixels attacked together in one batch


class InvalidProtectParams(InputRefused):
    """An attack parameter outside its accepted range."""


# --------------------------------------------------------------------------------------------- model choice
@dataclass(frozen=True)
class GeneratorChoice:
    family: str
    label: str  # for a picker
    path: Optional[Path]  # None: random weights
    config: dict = field(default_factory=dict, hash=False)  # configuration overrides (random weights only)
    source: str = "random"  # "shipped" | "checkpoint" | "random"
    model_size: Optional[tuple[int, int]] = None  # the generator's input size; None: its native size
    conditions: Optional[tuple[str, ...]] = None  # condition names from a model card (one-hot targets)

    @property
    def demo(self) -> bool:
        return self.path is None

    def to_dict(self) -> dict:
        return {"family": self.family, "label": self.label, "path": str(self.path) if self.path else None,
                "config": dict(self.config), "source": self.source,
                "model_size": list(self.model_size) if self.model_size else None,
                "conditions": list(self.conditions) if self.conditions else None}


def _model_card(path: Path) -> dict:
    try:
        card = json.loads(path.with_suffix(".json").read_text())
        return card if isinstance(card, dict) else {}
    except (OSError, ValueError):
        return {}


def _card_size(card: dict) -> Optional[tuple[int, int]]:
    size = card.get("native_size")
    if isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size):
        return (size[0], size[1])
    return None


def _card_conditions(card: dict) -> Optional[tuple[str, ...]]:
    items = card.get("conditions")
    if not isinstance(items, list) or not items:
        return None
    names = [item.get("name") if isinstance(item, dict) else item for item in items]
    return tuple(str(n) for n in names) if all(isinstance(n, str) and n for n in names) else None


def shipped_summary(choice: GeneratorChoice) -> Optional[str]:
    """What a shipped model is and how well Protect measured against it, from its card (None otherwise)."""
    if choice.source != "shipped" or choice.path is None:
        return None
    card = _model_card(Path(choice.path))
    text = (f"Apate's in-house weights, trained here on CPU. Task: {card.get('task', '?')}. "
            f"Training: {card.get('training', {}).get('kind', '?')}.")
    eff = card.get("efficacy")
    if isinstance(eff, dict) and {"disrupted", "pairs", "photos"} <= set(eff):
        text += (f" Measured ({eff.get('measured_on', '?')}, {eff.get('attack', '?')}) on {len(eff['photos'])} real "
                 f"photos: {eff['disrupted']:.0%} of {eff['pairs']} (photo, target) pairs disrupted")
        if eff.get("faithful_bound") is not None:
            text += f"; a perfect model of the same task: {eff['faithful_bound']:.0%}"
        text += "."
        if eff["disrupted"] < 0.95:
            text += (" A faithful model of a gentle photo edit barely amplifies a small perturbation, so expect "
                     "little disruption, above all on high-contrast photos.")
    return text


def available_generators(settings: Settings, family: Optional[str] = None,
                         shipped_dir: Optional[Path] = None) -> list[GeneratorChoice]:
    """Model sources per family: shipped defaults (assets/models/protect/<family>.safetensors), checkpoints
    under ``settings.models_path``, and, only for a family with neither, small random demo weights."""
    shipped_dir = SHIPPED_DIR if shipped_dir is None else Path(shipped_dir)
    families = [get_family(family).name] if family else list_generators()
    discovered = discover_checkpoints(settings.models_path)
    choices: list[GeneratorChoice] = []
    for name in families:
        display = get_family(name).display_name
        found: list[GeneratorChoice] = []
        shipped = shipped_dir / f"{name}.safetensors"
        if shipped.is_file():
            card = _model_card(shipped)
            title = card.get("title") or card.get("name") or "Apate in-house weights"
            found.append(GeneratorChoice(name, f"{display}: {title} (shipped)", shipped, {}, "shipped",
                                         _card_size(card), _card_conditions(card)))
        found += [GeneratorChoice(name, f"{display}: {c.label}", c.path, {}, "checkpoint")
                  for c in discovered if c.family == name]
        if not found:
            found.append(GeneratorChoice(name, f"{display}: {RANDOM_LABEL}", None, dict(DEMO_CONFIGS[name]),
                                         model_size=None if name == "pix2pixhd" else DEMO_MODEL_SIZE))
        choices += found
    return choices


@functools.lru_cache(maxsize=64)
def _file_sha256(path: str, mtime: float, size: int) -> str:
    return sha256_file(path)


def weights_id(choice: GeneratorChoice) -> str:
    """sha256 of the weights file, or of the random configuration (seeded, hence reproducible)."""
    if choice.path is None:
        blob = json.dumps({"family": choice.family, "random": choice.config, "seed": 0}, sort_keys=True)
        return "random:" + hashlib.sha256(blob.encode()).hexdigest()
    stat = Path(choice.path).stat()
    return _file_sha256(str(choice.path), stat.st_mtime, stat.st_size)


_MODELS: dict[tuple, TranslationGenerator] = {}


def load_choice(choice: GeneratorChoice, device: str = "cpu") -> TranslationGenerator:
    """The generator of a choice, loaded once per process (random weights seeded: the same every time)."""
    key = (choice.family, weights_id(choice), device)
    if key not in _MODELS:
        if choice.path is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                model = load_generator(choice.family, device=device, **choice.config)
        else:
            model = load_generator(choice.family, choice.path, device=device)
        if model.input_channels != 3:
            raise InputRefused(f"This {get_family(choice.family).display_name} model takes "
                               f"{model.input_channels}-channel label maps, not photos",
                               accepted="a generator with RGB input (e.g. an RGB-input pix2pixHD, CycleGAN, StarGAN)")
        if len(_MODELS) >= 4:
            _MODELS.pop(next(iter(_MODELS)))
        _MODELS[key] = model
    return _MODELS[key]


def target_options(generator: TranslationGenerator, conditions: Optional[Sequence[str]] = None
                   ) -> list[tuple[str, Optional[torch.Tensor]]]:
    """(name, condition) pairs a person can pick: StarGAN's five attribute targets, GANimation's expression
    presets, a single unconditional entry otherwise. A model card's named conditions give one-hot targets."""
    if not generator.conditional:
        return [("none", None)]
    if conditions and len(conditions) == generator.c_dim:
        return [(name, torch.eye(generator.c_dim)[i:i + 1]) for i, name in enumerate(conditions)]
    if generator.family == "ganimation":
        names = [name for name, _ in EXPRESSION_PRESETS]
    else:
        names = list(generator.condition_names)
    conditions = default_targets(generator, len(names))
    return list(zip(names, conditions))


def family_target_names(family: str) -> list[str]:
    """Target names of a family's released configuration, without building a model (for pickers)."""
    fam = get_family(family)
    if fam.name == "ganimation":
        return [name for name, _ in EXPRESSION_PRESETS]
    return list(fam.condition_names)


def choice_target_names(choice: GeneratorChoice, device: str = "cpu") -> list[str]:
    """Target names a picker offers for a model source ([] for unconditional generators)."""
    if choice.conditions:
        return list(choice.conditions)
    if choice.path is None:
        return family_target_names(choice.family)
    names = [name for name, c in target_options(load_choice(choice, device)) if c is not None]
    return names


def default_model_size(generator: TranslationGenerator, height: int, width: int,
                       override: Optional[tuple[int, int]] = None) -> tuple[int, int]:
    """The generator's native input size (or ``override``); pix2pixHD (1024x2048 native) runs at the image's
    size instead, rounded to its stride multiple and capped at native."""
    if override is not None:
        return (int(override[0]), int(override[1]))
    if generator.family != "pix2pixhd":
        return tuple(generator.native_size)
    m = generator.size_multiple
    nh, nw = generator.native_size
    return (max(m, min(nh, round(height / m) * m)), max(m, min(nw, round(width / m) * m)))


# --------------------------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class ProtectParams:
    """Attack parameters on the [-1, 1] scale (ε 0.05 = 6.4/255), defaults of the reference code."""

    attack: str = "pgd"
    epsilon: float = 0.05
    step_size: float = 0.01
    iterations: int = 10
    random_start: bool = True  # PGD only
    targets: Optional[tuple[str, ...]] = None  # names from target_options; None: the first DEFAULT_TARGETS
    robust: bool = False  # expectation over JPEG/resize/blur during the attack (slower)
    output_format: str = "png"
    with_robustness: bool = True  # the robustness table (JPEG 95/75/50, resize x0.5, blur 1.5)
    seed: int = 0
    shaping: bool = True  # perceptual shaping (shaping.py): less in flat/dark areas, luminance steps; False: plain

    def validate(self) -> "ProtectParams":
        attack = self.attack.lower().replace("-", "").replace("_", "")
        if attack not in list_attacks():
            raise InvalidProtectParams(f"Unknown attack {self.attack!r}", accepted=", ".join(list_attacks()))
        checks = [
            (math.isfinite(self.epsilon) and 0 < self.epsilon <= 0.5, f"Invalid epsilon {self.epsilon:g}",
             "0 < eps <= 0.5 on the [-1, 1] scale (0.05 = 6.4/255)"),
            (self.epsilon * SCALE >= 1, f"Epsilon {self.epsilon:g} is less than one 8-bit step",
             f"eps >= {1 / SCALE:.4f} (1/255), or the 8-bit file cannot change"),
            (math.isfinite(self.step_size) and 0 < self.step_size <= 0.5, f"Invalid step {self.step_size:g}",
             "0 < step <= 0.5 on the [-1, 1] scale"),
            (1 <= int(self.iterations) <= 1000 and int(self.iterations) == self.iterations,
             f"Invalid number of iterations {self.iterations}", "a whole number from 1 to 1000"),
            (self.output_format in OUTPUT_FORMATS, f"Unknown output format {self.output_format!r}",
             ", ".join(OUTPUT_FORMATS)),
        ]
        for ok, problem, accepted in checks:
            if not ok:
                raise InvalidProtectParams(problem, accepted=accepted)
        return dataclasses.replace(self, attack=attack, iterations=int(self.iterations))

    def attack_config(self, n_targets: int) -> dict:
        config: dict[str, Any] = {"epsilon": self.epsilon, "transferable": n_targets > 1, "robust": self.robust,
                                  "seed": self.seed, "shaping": Shaping() if self.shaping else NO_SHAPING}
        if self.attack != "fgsm":
            config.update(step_size=self.step_size, iterations=self.iterations)
        if self.attack == "pgd":
            config["random_start"] = self.random_start
        return config


def resolve_targets(generator: TranslationGenerator, names: Optional[Sequence[str]],
                    conditions: Optional[Sequence[str]] = None) -> list[tuple[str, Optional[torch.Tensor]]]:
    options = target_options(generator, conditions)
    if not names:
        return options[:DEFAULT_TARGETS]
    by_name = {name.lower(): (name, c) for name, c in options}
    if [n for n in names if n.lower() == "all"]:
        return options
    unknown = [n for n in names if n.lower() not in by_name]
    if unknown:
        raise InvalidProtectParams(f"Unknown target condition(s) {', '.join(unknown)} for {generator.family}",
                                   accepted=", ".join(name for name, _ in options) + " or all")
    return [by_name[n.lower()] for n in dict.fromkeys(names)]


# --------------------------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class ImageInput:
    name: str
    sha256: str
    rgb: np.ndarray  # (H, W, 3) uint8, upright


def load_image(path: str | Path, settings: Settings, name: Optional[str] = None) -> ImageInput:
    """Intake (content sniffing, limits), refuse videos, check the protect size limit, decode to RGB8."""
    if not Path(path).is_file():
        raise InputRefused(f"{path} does not exist or is not a file", accepted="JPEG, PNG or WebP images")
    media = intake_file(path, settings, name=name)
    if media.kind != "image":
        raise UnsupportedMedia(f"{media.name} is a {media.format.upper()} video; Protect works on still images",
                               accepted=", ".join(f.upper() for f in settings.image_formats) + " images")
    check_protect_size(media.image.width, media.image.height, settings.max_image_side)
    rgb = decode_image(media.path, max_pixels=settings.max_image_pixels, accepted=settings.image_formats).rgb
    return ImageInput(media.name, media.sha256, rgb)


# --------------------------------------------------------------------------------------------- results
@dataclass
class ProtectedImage(PairViews):
    name: str
    sha256: str
    original: np.ndarray  # (H, W, 3) uint8
    protected: np.ndarray  # (H, W, 3) uint8, |protected - original| <= floor(eps * 127.5)
    target_names: tuple[str, ...]
    outputs_original: np.ndarray  # (T, h, w, 3) uint8: G(original, c) at the model size
    outputs_protected: np.ndarray  # (T, h, w, 3) uint8: G(protected, c)
    metrics: dict  # JSON-ready: norms, quality, per-target distortion, robustness, saved-file row
    encoded: bytes  # the protected file in the output format
    output_format: str
    cached: bool = False

    def to_dict(self) -> dict:
        h, w = self.original.shape[:2]
        return {"name": self.name, "sha256": self.sha256, "width": w, "height": h, "file": self.file_name,
                "format": self.output_format, "cached": self.cached, **self.metrics}


@dataclass
class ProtectJobResult:
    images: list[ProtectedImage]
    generator: GeneratorChoice
    params: ProtectParams
    model_size: tuple[int, int]
    seconds: float

    def to_dict(self) -> dict:
        return {"generator": self.generator.to_dict(), "params": dataclasses.asdict(self.params),
                "model_size": list(self.model_size), "seconds": round(self.seconds, 3),
                "disruption_threshold_mse": DISRUPTION_THRESHOLD, "images": [im.to_dict() for im in self.images]}

    def metrics_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=_json_default)

    def zip_bytes(self) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
            names: set[str] = set()
            for image in self.images:
                name, n = image.file_name, 1
                while name in names:
                    n += 1
                    name = f"{Path(image.file_name).stem}-{n}{Path(image.file_name).suffix}"
                names.add(name)
                zf.writestr(name, image.encoded)
            zf.writestr("metrics.json", self.metrics_json())
        return buffer.getvalue()


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def _finite(x: float) -> Optional[float]:
    return float(x) if math.isfinite(x) else None  # JSON has no inf (PSNR of identical images)


def encode_image(rgb: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image = Image.fromarray(rgb)
    if fmt == "png":
        image.save(buffer, format="PNG", optimize=False, compress_level=6)
    elif fmt == "jpeg":
        image.save(buffer, format="JPEG", quality=LOSSY_QUALITY, subsampling=0)
    else:
        image.save(buffer, format="WEBP", quality=LOSSY_QUALITY)
    return buffer.getvalue()


def decode_bytes(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB")).copy()


def _metrics_dict(report: ProtectionReport, names: Sequence[str], params: ProtectParams,
                  saved_row: Optional[dict]) -> dict:
    def dist(d):
        return {"target": names[d.target_index], "mse": d.mse, "l1": d.l1, "l2": d.l2, "disrupted": d.disrupted}

    epsilon = params.epsilon
    return {
        "epsilon": epsilon, "epsilon_8bit": epsilon * SCALE, "epsilon_steps": epsilon_steps(epsilon),
        "shaping": params.shaping,
        "perturbation": {"l2": report.norms.l2, "linf": report.norms.linf, "linf_8bit": report.norms.linf_8bit},
        "quality": {"ssim": report.quality.ssim, "psnr": _finite(report.quality.psnr)},
        "outputs": [dist(d) for d in report.distortions],
        "disrupted_fraction": report.disrupted_fraction,
        "robustness": [{"transform": r.transform, "disrupted_fraction": r.disrupted_fraction,
                        "targets": [dist(d) for d in r.distortions], "baseline_mse": list(r.baseline_mse)}
                       for r in report.robustness],
        "saved_file": saved_row,
    }


class _OnDevice:
    """Lets the metrics (CPU tensors) drive a generator that lives on another device."""

    def __init__(self, generator: TranslationGenerator, device: str) -> None:
        self.generator, self.device = generator, device
        self.native_size = generator.native_size

    def generate(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        c = None if c is None else c.to(self.device)
        return self.generator.generate(x.to(self.device), c).cpu()


def _outputs(generator, rgb: np.ndarray, conditions, size) -> np.ndarray:
    with torch.no_grad():
        x = fit_to_model(image_to_tensor(rgb), size)
        return np.stack([tensor_to_image(generator.generate(x, c))[0] for c in conditions])


def _store_key(image: ImageInput, choice: GeneratorChoice, params: ProtectParams, size, names) -> str:
    payload = {**dataclasses.asdict(params), "targets": list(names), "model_size": list(size)}
    return make_key(image.sha256, "protect", choice.family, weights_id(choice), payload)


def _from_store(store: Optional[ResultStore], key: str, image: ImageInput, fmt: str) -> Optional[ProtectedImage]:
    if store is None:
        return None
    hit = store.get(key)
    if hit is None or not {"protected", "outputs_original", "outputs_protected"} <= set(hit.arrays):
        return None
    protected = hit.arrays["protected"]
    if protected.shape != image.rgb.shape or protected.dtype != np.uint8:
        return None
    return ProtectedImage(image.name, image.sha256, image.rgb, protected, tuple(hit.meta["targets"]),
                          hit.arrays["outputs_original"], hit.arrays["outputs_protected"], hit.meta["metrics"],
                          encode_image(protected, fmt), fmt, cached=True)


def _groups(images: Sequence[ImageInput], todo: Sequence[int]) -> list[list[int]]:
    """Indices of same-size images, chunked so one batch stays under MAX_BATCH_PIXELS."""
    by_size: dict[tuple, list[int]] = {}
    for i in todo:
        by_size.setdefault(images[i].rgb.shape, []).append(i)
    chunks = []
    for shape, idx in by_size.items():
        per = max(1, MAX_BATCH_PIXELS // (shape[0] * shape[1]))
        chunks += [idx[k:k + per] for k in range(0, len(idx), per)]
    return chunks


def run_protect_job(images: Sequence[ImageInput], choice: GeneratorChoice, params: ProtectParams,
                    settings: Settings, *, store: Optional[ResultStore] = None,
                    progress: Optional[ProgressCallback] = None, cancel: Optional[CancelToken] = None,
                    generator: Optional[TranslationGenerator] = None) -> ProtectJobResult:
    """Protect up to ``settings.max_batch`` images against one generator; results are cached in ``store``."""
    started, report = time.perf_counter(), progress or no_progress
    params = params.validate()
    if not images:
        raise InvalidProtectParams("No images to protect", accepted="one or more JPEG, PNG or WebP images")
    if len(images) > settings.max_batch:
        raise InvalidProtectParams(f"{len(images)} images in one job", limit=f"{settings.max_batch} images "
                                   "(APATE_MAX_BATCH)")
    for image in images:
        check_protect_size(image.rgb.shape[1], image.rgb.shape[0], settings.max_image_side)
    device = settings.resolved_device()
    report(0.0, "loading the generator")
    generator = generator if generator is not None else load_choice(choice, device)
    device = next(generator.parameters()).device.type if any(True for _ in generator.parameters()) else device
    chosen = resolve_targets(generator, params.targets, choice.conditions)
    names, conditions = tuple(n for n, _ in chosen), [c for _, c in chosen]
    sizes = {default_model_size(generator, *im.rgb.shape[:2], choice.model_size) for im in images}
    model_size = sizes.pop() if len(sizes) == 1 else tuple(generator.native_size)
    params = dataclasses.replace(params, targets=names)
    keys = [_store_key(im, choice, params, default_model_size(generator, *im.rgb.shape[:2], choice.model_size),
                       names) for im in images]
    results: list[Optional[ProtectedImage]] = [_from_store(store, k, im, params.output_format)
                                               for k, im in zip(keys, images)]
    todo = [i for i, r in enumerate(results) if r is None]
    attack = create_attack(params.attack, **params.attack_config(len(conditions)))
    metric_gen = _OnDevice(generator, device) if device != "cpu" else generator
    work = max(1, len(todo))
    done = 0
    for chunk in _groups(images, todo):
        check_cancelled(cancel)
        size = default_model_size(generator, *images[chunk[0]].rgb.shape[:2], choice.model_size)
        base = done / work
        span = len(chunk) / work

        def step(f: float, m: str, base=base, span=span, n=len(chunk)) -> None:
            report(0.02 + 0.93 * (base + 0.8 * span * f), f"{n} image(s): {m}")

        batch = image_to_tensor(np.stack([images[i].rgb for i in chunk])).to(device)
        device_conditions = [None if c is None else c.to(device) for c in conditions]
        result = attack.run(generator, batch, device_conditions, model_size=size, progress=step, cancel=cancel)
        protected_batch = result.protected.cpu()
        for j, i in enumerate(chunk):
            check_cancelled(cancel)
            image = images[i]
            report(0.02 + 0.93 * (base + span * (0.8 + 0.2 * j / len(chunk))), f"metrics for {image.name}")
            protected = quantize_protected(image.rgb, protected_batch[j:j + 1], params.epsilon)
            evaluation = evaluate_protection(metric_gen, image.rgb, protected, conditions, size,
                                             with_robustness=params.with_robustness)
            encoded = encode_image(protected, params.output_format)
            saved_row = None
            if params.output_format != "png":
                saved = decode_bytes(encoded)
                ds = output_distortion(metric_gen, image.rgb, saved, conditions, size)
                delta = np.abs(saved.astype(np.int16) - image.rgb.astype(np.int16))
                saved_row = {"transform": f"saved as {params.output_format} q{LOSSY_QUALITY}",
                             "linf_8bit": int(delta.max()),
                             "disrupted_fraction": sum(d.disrupted for d in ds) / len(ds),
                             "targets": [{"target": names[d.target_index], "mse": d.mse, "l1": d.l1, "l2": d.l2,
                                          "disrupted": d.disrupted} for d in ds]}
            metrics = _metrics_dict(evaluation, names, params, saved_row)
            out_o = _outputs(metric_gen, image.rgb, conditions, size)
            out_p = _outputs(metric_gen, protected, conditions, size)
            results[i] = ProtectedImage(image.name, image.sha256, image.rgb, protected, names, out_o, out_p,
                                        metrics, encoded, params.output_format)
            if store is not None:
                store.put(keys[i], {"targets": list(names), "metrics": metrics},
                          {"protected": protected, "outputs_original": out_o, "outputs_protected": out_p})
                summary = (f"{choice.family}: {metrics['disrupted_fraction']:.0%} of {len(names)} targets disrupted, "
                           f"SSIM {metrics['quality']['ssim']:.3f}")
                history.record(store, history.protect_entry(
                    keys[i], image.name, choice.family, choice.label, weights_id(choice),
                    dataclasses.asdict(params), summary), protected)
        done += len(chunk)
    report(1.0, "done")
    return ProtectJobResult([r for r in results if r is not None], choice, params, tuple(model_size),
                            time.perf_counter() - started)
