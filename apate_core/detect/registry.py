"""timm-style detector registry: small builder functions registered by name.

    @register_detector(target_layers=lambda m: [m.layer4[-1]])
    def resnet18(config): return tvm.resnet18(weights=None, num_classes=1)

Builders never download anything: torchvision models are always built with weights=None.
Weights come from checkpoints users bring (see checkpoints.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Union

import torch
from torch import nn

from ..errors import InputRefused
from .clip_vit import CLIP_MEAN, CLIP_STD
from .models import CONFIG_FIELDS, CnnGru, Detector, DetectorConfig, TargetLayersFn

Builder = Callable[[DetectorConfig], nn.Module]
WeightsArg = Union[str, Path, Mapping[str, torch.Tensor], None]


@dataclass(frozen=True)
class DetectorSpec:
    """What the registry knows about an architecture besides how to build it."""

    name: str
    builder: Builder
    target_layers: TargetLayersFn
    defaults: Mapping[str, Any] = field(default_factory=dict)  # DetectorConfig field defaults
    options: Mapping[str, Any] = field(default_factory=dict)  # builder options and their defaults
    token_grid: bool = False  # transformer: CAM needs tokens reshaped to a grid
    temporal: bool = False  # has a clip-level head (predict_clip)
    fixed_input: bool = False  # needs exactly input_size x input_size input
    description: str = ""

    def default_config(self) -> DetectorConfig:
        return DetectorConfig(architecture=self.name, options=dict(self.options), **dict(self.defaults))


_REGISTRY: dict[str, DetectorSpec] = {}


def register_detector(target_layers: TargetLayersFn, *, defaults: Optional[Mapping[str, Any]] = None,
                      options: Optional[Mapping[str, Any]] = None, token_grid: bool = False,
                      temporal: bool = False, fixed_input: bool = False,
                      name: Optional[str] = None) -> Callable[[Builder], Builder]:
    """Decorator registering a builder (config -> nn.Module with one output) under its name."""

    def wrap(builder: Builder) -> Builder:
        key = name or builder.__name__
        if key in _REGISTRY:
            raise ValueError(f"detector {key!r} is already registered")
        _REGISTRY[key] = DetectorSpec(
            name=key, builder=builder, target_layers=target_layers, defaults=dict(defaults or {}),
            options=dict(options or {}), token_grid=token_grid, temporal=temporal,
            fixed_input=fixed_input, description=_first_line(builder.__doc__),
        )
        return builder

    return wrap


def _first_line(text: Optional[str]) -> str:
    return text.strip().splitlines()[0] if text and text.strip() else ""


def list_detectors() -> list[str]:
    return sorted(_REGISTRY)


def get_spec(name: str) -> DetectorSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InputRefused(f"Unknown detector architecture {name!r}", accepted=", ".join(list_detectors())) from None


def is_registered(name: str) -> bool:
    return name in _REGISTRY


def make_config(spec: DetectorSpec, base: Optional[DetectorConfig] = None, **overrides: Any) -> DetectorConfig:
    """Config for spec: base (or the defaults) with overrides split into config fields and builder options."""
    config = base or spec.default_config()
    unknown = sorted(set(overrides) - set(CONFIG_FIELDS) - set(spec.options))
    if unknown:
        raise TypeError(f"{spec.name} does not take {unknown}; config fields {list(CONFIG_FIELDS)}, "
                        f"options {sorted(spec.options)}")
    fields = {k: v for k, v in overrides.items() if k in CONFIG_FIELDS}
    options = {**spec.options, **config.option_dict, **{k: v for k, v in overrides.items() if k in spec.options}}
    config = config.replace(**fields, options=options)
    if spec.fixed_input and config.resize == "none":
        raise ValueError(f"{spec.name} needs a fixed input size; use resize='resize' or 'center_crop'")
    return config


def build_detector(spec: DetectorSpec, config: DetectorConfig, card: Optional[Mapping[str, Any]] = None,
                   sha256: Optional[str] = None) -> Detector:
    """Randomly initialised Detector for spec/config (weights are loaded by the caller)."""
    module = spec.builder(config)
    return Detector(module=module, config=config, target_layers_fn=spec.target_layers,
                    card=dict(card or untrained_card(spec.name)), token_grid=spec.token_grid,
                    temporal=spec.temporal, _sha256=sha256)


def untrained_card(name: str) -> dict[str, Any]:
    return {"name": name, "architecture": name, "trained_on": None, "metrics": {}, "recipe": None,
            "date": None, "format": "apate", "source": "random initialisation (untrained)"}


def create_detector(name: Union[str, Path], weights: WeightsArg = None, *, device: str = "cpu",
                    **overrides: Any) -> Detector:
    """Build a registered detector, or load one from a checkpoint path.

    name: a registered architecture (see list_detectors) or a checkpoint path (.safetensors/.pth/...).
    weights: optional checkpoint path or state_dict for the named architecture.
    overrides: DetectorConfig fields (input_size, resize, mean, std, interpolation) or builder options.
    """
    from . import checkpoints  # checkpoints imports this module

    if str(name) in SHIPPED_MODELS and weights is None:  # Apate's shipped weights, with their model card
        return checkpoints.load_detector(SHIPPED_MODELS[str(name)](), device=device, **overrides)
    if not is_registered(str(name)) and checkpoints.looks_like_checkpoint(name):
        return checkpoints.load_detector(name, device=device, **overrides)
    spec = get_spec(str(name))
    config = make_config(spec, **overrides)
    if weights is None:
        detector = build_detector(spec, config)
    elif isinstance(weights, Mapping):
        detector = build_detector(spec, config)
        checkpoints.load_state_into(detector.module, dict(weights), source="state_dict")
        detector.card["source"] = "state_dict given in memory"
    else:
        detector = checkpoints.load_detector(weights, architecture=spec.name, device=device, **overrides)
    return detector.to(device)


# --------------------------------------------------------------------------------------------
# Built-in architectures (all CPU-sized, one logit out)
# --------------------------------------------------------------------------------------------


def _last_resnet_block(module: nn.Module) -> list[nn.Module]:
    return [module.layer4[-1]]


@register_detector(target_layers=_last_resnet_block)
def resnet18(config: DetectorConfig) -> nn.Module:
    """torchvision ResNet-18 with a 1-logit fc."""
    import torchvision.models as tvm

    return tvm.resnet18(weights=None, num_classes=1)


@register_detector(target_layers=_last_resnet_block)
def resnet50(config: DetectorConfig) -> nn.Module:
    """torchvision ResNet-50 with a 1-logit fc (the CNNDetection architecture)."""
    import torchvision.models as tvm

    return tvm.resnet50(weights=None, num_classes=1)


@register_detector(target_layers=lambda m: [m.features[-1]],
                   defaults={"interpolation": "bicubic"})
def efficientnet_b0(config: DetectorConfig) -> nn.Module:
    """torchvision EfficientNet-B0 with a 1-logit classifier."""
    import torchvision.models as tvm

    return tvm.efficientnet_b0(weights=None, num_classes=1)


@register_detector(target_layers=lambda m: [m.features[-1]])
def mobilenet_v2(config: DetectorConfig) -> nn.Module:
    """torchvision MobileNetV2 with a 1-logit classifier (apate-faceswap's architecture)."""
    import torchvision.models as tvm

    return tvm.mobilenet_v2(weights=None, num_classes=1)


VIT_TINY_OPTIONS = {"patch_size": 16, "num_layers": 6, "num_heads": 3, "hidden_dim": 192, "mlp_dim": 768}


@register_detector(target_layers=lambda m: [m.encoder.layers[-1].ln_1], options=VIT_TINY_OPTIONS,
                   token_grid=True, fixed_input=True)
def vit_tiny(config: DetectorConfig) -> nn.Module:
    """torchvision VisionTransformer at a CPU size (6 layers, 3 heads, width 192), 1-logit head."""
    from torchvision.models.vision_transformer import VisionTransformer

    opts = config.option_dict
    if config.input_size % int(opts["patch_size"]):
        raise ValueError("vit_tiny input_size must be a multiple of patch_size")
    return VisionTransformer(image_size=config.input_size, num_classes=1, **{k: int(opts[k]) for k in VIT_TINY_OPTIONS})


@register_detector(target_layers=lambda m: [m.backbone.layer4[-1]], options={"hidden_size": 128}, temporal=True)
def cnn_gru(config: DetectorConfig) -> nn.Module:
    """Per-frame ResNet-18 features -> GRU -> clip logit, plus a per-frame logit head."""
    return CnnGru(hidden_size=int(config.option_dict["hidden_size"]))


CLIP_DEFAULTS = {"input_size": 224, "resize": "center_crop", "interpolation": "bicubic", "mean": CLIP_MEAN,
                 "std": CLIP_STD, "tile": 0}


def _clip_target(module: nn.Module) -> list[nn.Module]:
    return [module.encoder.layers[module.last_block].layer_norm1]


@register_detector(target_layers=_clip_target, token_grid=True, fixed_input=True,
                   defaults=CLIP_DEFAULTS, options={"layers": "", "use_embedding": True})
def clip_probe(config: DetectorConfig) -> nn.Module:
    """Frozen CLIP ViT-B/16 image encoder (pretrained, installed by backbones.py) + a linear probe on
    the embedding and/or the class tokens of chosen blocks (option layers: "2,3,4", 0-based)."""
    from . import backbones
    from .clip_vit import LAYERS, ClipProbe, ClipVisionEncoder, OnnxClipEncoder, parse_layers

    opts = config.option_dict
    layers, use_embedding = parse_layers(opts["layers"]), bool(opts["use_embedding"])
    # The port holds only the blocks the probe reads (scores and heatmaps never pass the last one): built
    # without weights and given the installed ones in place, it costs their memory once, not twice.
    blocks = LAYERS if use_embedding or not layers else max(layers) + 1  # no layers: ClipProbe says what is wrong
    with torch.device("meta"):
        encoder = ClipVisionEncoder(layers=blocks)
    state = backbones.load_state("clip_vit_b16", keep=lambda key: not key.startswith("layers.")
                                 or int(key.split(".")[1]) < blocks)
    encoder.load_state_dict(state, strict=True, assign=True)
    module = ClipProbe(layers=layers, use_embedding=use_embedding, encoder=encoder)
    module.encoder.requires_grad_(False)
    onnx_file = backbones.original_path("clip_vit_b16")
    if onnx_file.is_file():
        module.fast_encoder = OnnxClipEncoder(str(onnx_file), last_block=None if module.use_embedding
                                              else module.last_block)
    return module.eval()


# --------------------------------------------------------------------------------------------
# Apate's in-house fingerprint detector (apate_core/detect/training) and its shipped weights
# --------------------------------------------------------------------------------------------

from .training.network import (  # noqa: E402 - torch-only module, no import cycle
    FINGERPRINT_MEAN, FINGERPRINT_STD, SHIPPED_NAME, FingerprintNet, shipped_weights_path,
)


@register_detector(target_layers=lambda m: [m.stage3], options={"width": 16},
                   defaults={"resize": "none", "input_size": 128, "mean": FINGERPRINT_MEAN, "std": FINGERPRINT_STD})
def apate_fingerprint(config: DetectorConfig) -> nn.Module:
    """Apate's small fully-convolutional fingerprint CNN (native resolution, no early stride)."""
    return FingerprintNet(width=int(config.option_dict["width"]))


from .training.universal import SHIPPED_NAME as UNIVERSAL_NAME  # noqa: E402
from .training.universal import shipped_weights_path as universal_weights_path  # noqa: E402
from .training.faceswap_cnn import SHIPPED_NAME as FACESWAP_NAME  # noqa: E402
from .training.faceswap_cnn import shipped_weights_path as faceswap_weights_path  # noqa: E402

# name -> local weights path (a function, so tests may point it elsewhere). create_detector(name) loads
# the file with its model card; nothing is ever downloaded.
SHIPPED_MODELS: dict[str, Callable[[], Path]] = {SHIPPED_NAME: shipped_weights_path,
                                                 UNIVERSAL_NAME: universal_weights_path,
                                                 FACESWAP_NAME: faceswap_weights_path}  # face crops only

if shipped_weights_path().is_file():

    @register_detector(target_layers=lambda m: [m.stage3], options={"width": 16}, name=SHIPPED_NAME,
                       defaults={"resize": "none", "input_size": 128, "mean": FINGERPRINT_MEAN,
                                 "std": FINGERPRINT_STD})
    def _apate_shipped(config: DetectorConfig) -> nn.Module:
        """Apate's shipped default detector (apate_fingerprint trained in-house; assets/models)."""
        from .checkpoints import load_state_into, read_state_dict

        module = FingerprintNet(width=int(config.option_dict["width"]))
        state, _ = read_state_dict(shipped_weights_path())
        load_state_into(module, state, source=shipped_weights_path().name)
        return module


def _universal_ready() -> bool:
    from . import backbones

    return universal_weights_path().is_file() and backbones.local_path("clip_vit_b16").is_file()


if _universal_ready():

    @register_detector(target_layers=_clip_target, token_grid=True, fixed_input=True, name=UNIVERSAL_NAME,
                       defaults=CLIP_DEFAULTS)
    def _apate_universal(config: DetectorConfig) -> nn.Module:
        """Apate's default detector: CLIP ViT-B/16 + the linear probe trained in-house (assets/models)."""
        from .checkpoints import load_detector

        return load_detector(universal_weights_path()).module
