"""One supervised recipe per Protect family: learn a deterministic photo edit from bundled photos.

The shipped in-house weights are small configurations of the released architectures (same class, same keys),
trained *paired and supervised* (L1 plus an L1 on image gradients) to reproduce synthetic edits from ``edits.py``
on crops of photos bundled with installed packages. They are stand-ins so that Protect has a real,
visibly-working model of each family out of the box; they are not the released GANs and were not trained
adversarially or on faces.

    result = train_family("stargan", steps=400, seed=0)
    write_model(result, "assets/models/protect")
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import torch
import torch.nn.functional as F

from ...progress import CancelToken, ProgressCallback, check_cancelled, no_progress
from ..generators import TranslationGenerator, create_generator
from .data import HELDOUT_PHOTOS, SOURCES, TRAIN_PHOTOS, CropSampler, heldout_crops
from .edits import EDIT_DESCRIPTIONS, LOCAL_EDITS, apply_edit, autolevel, blend_edits

Batch = tuple[torch.Tensor, Optional[torch.Tensor], torch.Tensor]  # input, condition, target


@dataclass(frozen=True)
class Recipe:
    family: str
    config: dict[str, Any]
    task: str
    conditions: tuple[tuple[str, str], ...]  # (name, meaning); empty for unconditional families
    steps: int
    batch: int = 8
    crop: int = 64  # most steps train on small crops (CPU budget) ...
    final_crop: int = 128  # ... the last ``final_fraction`` of steps on native-size crops
    final_batch: int = 4
    final_fraction: float = 0.1
    # Extra (size, batch) crop settings cycled with (crop, batch) step by step; multi-size training keeps the
    # condition signal (which per-image InstanceNorm lets through only via zero-padded borders) size-robust.
    extra_crops: tuple[tuple[int, int], ...] = ()
    condition_init: bool = False  # StarGAN/GANimation: first conv starts with condition-only detector channels
    lr: float = 2e-3
    grad_weight: float = 1.0
    attention_weight: float = 0.0  # GANimation: mean(mask) penalty so the mask does not saturate to 1
    attention_tv_weight: float = 0.0
    edits: tuple[str, ...] = ()
    notes: str = ""

    @property
    def condition_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.conditions)


RECIPES: dict[str, Recipe] = {
    "stargan": Recipe(
        family="stargan", config=dict(conv_dim=32, c_dim=6, repeat_num=3),
        task="photo edit into one of six domains chosen by a one-hot vector (of the auto-levelled photo)",
        conditions=tuple((e, f"one-hot: {EDIT_DESCRIPTIONS[e]}") for e in LOCAL_EDITS),
        # One size throughout: the border-borne condition signal's strength depends on the input size.
        steps=2000, edits=LOCAL_EDITS, batch=4, crop=128, final_crop=128, condition_init=True,
        notes="Input = photo + one-hot domain tiled over H x W (StarGAN conditioning); per-image InstanceNorm in "
              "training and inference, as the engine's StarGAN runs."),
    "ganimation": Recipe(
        family="ganimation", config=dict(conv_dim=32, c_dim=6, repeat_num=3, layout="official"),
        task="continuous photo edits of the auto-levelled photo: each condition is the intensity of one edit "
             "(all zero = auto-levelled photo); output composed through the attention mask "
             "(final = mask * x + (1 - mask) * colour)",
        conditions=tuple((e, f"intensity in [0, 1] of: {EDIT_DESCRIPTIONS[e]}") for e in LOCAL_EDITS),
        steps=4000, edits=LOCAL_EDITS, attention_weight=0.05, attention_tv_weight=0.01,
        batch=4, crop=128, final_crop=128, condition_init=True,
        notes="Target = a + sum_i c_i (edit_i(a) - a), clipped, a = autolevel(x); c sampled sparse (one-hot at "
              "random intensity, "
              "random sparse mixes, some all-zero = auto-levelled photo). Loss on the composed image plus GANimation's "
              "attention regularisation (mean mask, total variation)."),
    "cyclegan": Recipe(
        family="cyclegan", config=dict(input_nc=3, output_nc=3, ngf=16, n_blocks=3),
        task="photo -> stylised 'cartoon' photo (unconditional; cartoon of the auto-levelled photo)", conditions=(),
        steps=500, edits=("cartoon",),
        notes=f"cartoon = {EDIT_DESCRIPTIONS['cartoon']}. Paired L1 proxy for CycleGAN's unpaired task."),
    "pix2pixhd": Recipe(
        family="pix2pixhd",
        config=dict(input_nc=3, output_nc=3, ngf=16, netG="global", n_downsample_global=2, n_blocks_global=3),
        task="photo (RGB input) -> stylised 'colour pencil sketch' (unconditional; of the auto-levelled photo)",
        conditions=(), steps=400,
        edits=("sketch",),
        notes=f"sketch = {EDIT_DESCRIPTIONS['sketch']}. RGB-input GlobalGenerator in place of the label-map model."),
}


def get_recipe(family: str) -> Recipe:
    key = family.lower().strip()
    if key not in RECIPES:
        raise KeyError(f"no training recipe for {family!r}; known: {', '.join(sorted(RECIPES))}")
    return RECIPES[key]


def make_batch(recipe: Recipe, x: torch.Tensor, generator: torch.Generator) -> Batch:
    """Conditions and targets for a batch of crops, following the recipe's task."""
    b = x.shape[0]
    with torch.no_grad():
        if recipe.family == "stargan":
            idx = torch.randint(len(recipe.edits), (b,), generator=generator)
            c = F.one_hot(idx, len(recipe.edits)).float()
        elif recipe.family == "ganimation":
            c = sample_intensities(b, len(recipe.edits), generator)
        else:
            c = None
        return x, c, torch.cat([target_for(recipe, x[k:k + 1], None if c is None else c[k:k + 1])
                                for k in range(b)])


def sample_intensities(b: int, n: int, generator: torch.Generator) -> torch.Tensor:
    """Half one-hot at a random intensity (often full), 3/8 sparse mixes, 1/8 all-zero (identity)."""
    c = torch.zeros(b, n)
    for k in range(b):
        kind = float(torch.rand((), generator=generator))
        if kind < 0.5:
            full = float(torch.rand((), generator=generator)) < 0.4
            level = 1.0 if full else float(torch.rand((), generator=generator))
            c[k, int(torch.randint(n, (1,), generator=generator))] = level
        elif kind < 0.875:
            c[k] = torch.rand(n, generator=generator) * (torch.rand(n, generator=generator) < 0.35)
    return c


def forward_train(model: TranslationGenerator, x: torch.Tensor, c: Optional[torch.Tensor]
                  ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Final image (and the GANimation attention mask, for its regulariser)."""
    if model.family == "ganimation":
        colour, mask = model(x, c)  # official layout: (colour, mask)
        return mask * x + (1 - mask) * colour, mask
    return model.generate(x, c), None


def gradient_l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    da = (a[..., 1:, :] - a[..., :-1, :]) - (b[..., 1:, :] - b[..., :-1, :])
    db = (a[..., :, 1:] - a[..., :, :-1]) - (b[..., :, 1:] - b[..., :, :-1])
    return da.abs().mean() + db.abs().mean()


def recipe_loss(recipe: Recipe, out: torch.Tensor, target: torch.Tensor, mask: Optional[torch.Tensor]
                ) -> torch.Tensor:
    loss = F.l1_loss(out, target) + recipe.grad_weight * gradient_l1(out, target)
    if mask is not None:
        tv = (mask[..., 1:, :] - mask[..., :-1, :]).abs().mean() + (mask[..., :, 1:] - mask[..., :, :-1]).abs().mean()
        loss = loss + recipe.attention_weight * mask.mean() + recipe.attention_tv_weight * tv
    return loss


@dataclass
class TrainResult:
    recipe: Recipe
    model: TranslationGenerator
    seed: int
    steps: int
    losses: list[float]
    wall_s: float
    heldout: dict[str, Any]
    started: str
    extra: dict[str, Any] = field(default_factory=dict)


def train_family(family: str, steps: Optional[int] = None, seed: int = 0, *, batch: Optional[int] = None,
                 crop: Optional[int] = None, threads: Optional[int] = 2, progress: ProgressCallback = no_progress,
                 cancel: Optional[CancelToken] = None, photos: tuple[str, ...] = TRAIN_PHOTOS,
                 evaluate: bool = True, **overrides: Any) -> TrainResult:
    """Train the family's recipe from a fixed seed; returns the trained model (eval mode) and its metrics.

    ``overrides`` replace recipe fields (``config``, ``final_crop``, ``lr``...), e.g. for a tiny test run.
    """
    recipe = get_recipe(family)
    if overrides:
        if "config" in overrides:
            overrides["config"] = {**recipe.config, **overrides["config"]}
        recipe = dataclasses.replace(recipe, **overrides)
    steps = recipe.steps if steps is None else int(steps)
    if steps < 1:
        raise ValueError("steps must be at least 1")
    batch = batch or recipe.batch
    crop = crop or recipe.crop
    recipe = dataclasses.replace(recipe, batch=batch, crop=crop)
    final_steps = int(round(steps * recipe.final_fraction)) if recipe.final_crop != crop else 0
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = create_generator(recipe.family, **recipe.config)
    model.train()
    if recipe.condition_init:
        init_condition_detectors(model)
    schedule = [(crop, batch)] + list(recipe.extra_crops)
    samplers = {size: CropSampler(photos=photos, size=size) for size, _ in schedule}
    final_sampler = samplers.get(recipe.final_crop) or CropSampler(photos=photos, size=recipe.final_crop)
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr, betas=(0.5, 0.999))
    warmup = max(1, min(50, steps // 10))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * (0.05 + 0.95 * 0.5 * (1 + torch.cos(
            torch.tensor(torch.pi * min(s, steps) / steps)).item())))
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    losses: list[float] = []
    for step in range(steps):
        check_cancelled(cancel)
        late = step >= steps - final_steps
        size, size_batch = schedule[step % len(schedule)]
        crops = (final_sampler.sample(recipe.final_batch, gen) if late
                 else samplers[size].sample(size_batch, gen))
        x, c, target = make_batch(recipe, crops, gen)
        out, mask = forward_train(model, x, c)
        loss = recipe_loss(recipe, out, target, mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if step % 10 == 0 or step == steps - 1:
            recent = sum(losses[-20:]) / len(losses[-20:])
            progress((step + 1) / steps, f"{recipe.family} step {step + 1}/{steps} loss {recent:.4f}")
    wall = time.perf_counter() - t0
    model.eval().requires_grad_(False)
    heldout = evaluate_heldout(model, recipe) if evaluate else {}
    return TrainResult(recipe, model, seed, steps, losses, wall, heldout, started)


def init_condition_detectors(model: TranslationGenerator, scale: float = 0.05) -> None:
    """Start 2 * c_dim first-layer channels as condition-only detectors (+c_i - mean of others, and its negative).

    Under per-image InstanceNorm a tiled constant condition survives only through the zero-padded borders (IN
    removes constants, and only the sign of a condition-only channel survives its scale normalisation); channels
    that see nothing but the condition give that border signal the clearest start. Training then adapts them.
    """
    weight = model.main[0].weight
    n = model.c_dim
    with torch.no_grad():
        for i in range(min(n, weight.shape[0] // 2)):
            for sign, j in ((1.0, 2 * i), (-1.0, 2 * i + 1)):
                weight[j].zero_()
                weight[j, 3:] = -sign * scale / n
                weight[j, 3 + i] = sign * scale


def condition_list(recipe: Recipe) -> list[tuple[str, Optional[torch.Tensor]]]:
    """(label, condition) pairs the model is evaluated / demonstrated on: each edit at full strength."""
    if not recipe.conditions:
        return [(recipe.edits[0], None)]
    n = len(recipe.conditions)
    return [(name, F.one_hot(torch.tensor([i]), n).float()) for i, name in enumerate(recipe.condition_names)]


def target_for(recipe: Recipe, x: torch.Tensor, c: Optional[torch.Tensor]) -> torch.Tensor:
    """The training target: the recipe's edit of the auto-levelled input (per image: levels are per-image)."""
    if x.shape[0] > 1:
        return torch.cat([target_for(recipe, x[k:k + 1], c if c is None or c.shape[0] == 1 else c[k:k + 1])
                          for k in range(x.shape[0])])
    base = autolevel(x)
    if recipe.family == "ganimation":
        return blend_edits(base, c, recipe.edits)
    if recipe.family == "stargan":
        return apply_edit(recipe.edits[int(c.argmax())], base)
    return apply_edit(recipe.edits[0], base)


def half_mix(recipe: Recipe, pair: tuple[int, int] = (0, 4)) -> tuple[tuple[str, str], torch.Tensor]:
    """GANimation's mixed condition that the card's held-out metrics and the demo figure show: two edits
    at intensity 0.5 each (names, (1, c_dim) intensities)."""
    c = torch.zeros(1, len(recipe.conditions))
    c[0, list(pair)] = 0.5
    return (recipe.condition_names[pair[0]], recipe.condition_names[pair[1]]), c


def autolevel_each(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([autolevel(x[k:k + 1]) for k in range(x.shape[0])])


@torch.no_grad()
def evaluate_heldout(model: TranslationGenerator, recipe: Recipe, crops: Optional[torch.Tensor] = None
                     ) -> dict[str, Any]:
    """Per condition: mean L1 (on [-1, 1]) to the target edit of the model output, of the input (identity) and of
    the auto-levelled input without the edit (the baseline an edit-blind model could reach)."""
    x = heldout_crops(recipe.final_crop) if crops is None else crops
    per = {}
    for label, c in condition_list(recipe):
        target = target_for(recipe, x, c)
        out = model.generate(x, c)
        mse = F.mse_loss(out, target).item()
        per[label] = {"l1_model": round(F.l1_loss(out, target).item(), 5),
                      "l1_identity": round(F.l1_loss(x, target).item(), 5),
                      "l1_autolevel_only": round(F.l1_loss(autolevel_each(x), target).item(), 5),
                      "psnr_model_db": round(10 * torch.log10(torch.tensor(4.0 / max(mse, 1e-10))).item(), 2)}
    if recipe.family == "ganimation":  # half-strength check: intensities are continuous
        (first, second), c = half_mix(recipe)
        target = target_for(recipe, x, c)
        per[f"{first}0.5+{second}0.5"] = {"l1_model": round(F.l1_loss(model.generate(x, c), target).item(), 5),
                                        "l1_identity": round(F.l1_loss(x, target).item(), 5),
                                        "l1_autolevel_only": round(F.l1_loss(autolevel_each(x), target).item(), 5)}
    return {"crops": f"{x.shape[0]} crops {x.shape[-1]}x{x.shape[-2]} (5 per photo, photos resized to short side "
                     f"256) of {', '.join(HELDOUT_PHOTOS)}, never trained on", "per_condition": per,
            "mean_l1_model": round(sum(v["l1_model"] for v in per.values()) / len(per), 5),
            "mean_l1_identity": round(sum(v["l1_identity"] for v in per.values()) / len(per), 5),
            "mean_l1_autolevel_only": round(sum(v["l1_autolevel_only"] for v in per.values()) / len(per), 5)}


def _crop_schedule(r: Recipe, short: bool = False) -> str:
    """The crop sizes a recipe trains on, in words (mirrors train_family's schedule)."""
    text = f"{r.crop}x{r.crop} crops" + ("" if short else f" (batch {r.batch})") + "".join(
        f", alternating with {c}x{c}" + ("" if short else f" (batch {b})") for c, b in r.extra_crops)
    if r.final_crop != r.crop:
        text += f", the last {r.final_fraction:.0%} of steps on {r.final_crop}x{r.final_crop}"
        text += "" if short else f" (batch {r.final_batch})"
    return text


def model_card(result: TrainResult, weights: Optional[Path] = None, command: Optional[str] = None) -> dict[str, Any]:
    r = result.recipe
    model = result.model
    tail = result.losses[-50:]
    card: dict[str, Any] = {
        "name": f"apate-inhouse-{r.family}",
        "family": r.family,
        "configuration": dataclasses.asdict(model.config),
        "parameters": sum(p.numel() for p in model.parameters()),
        "native_size": [r.final_crop, r.final_crop],
        "native_size_note": f"trained on {_crop_schedule(r, short=True)}; fully convolutional, runs at any size "
                            f"that is a multiple of {model.size_multiple}",
        "input": "RGB photo in [-1, 1] (NCHW), 3 channels",
        "output": "RGB in [-1, 1]",
        "task": r.task,
        "conditions": [{"index": i, "name": n, "meaning": m} for i, (n, m) in enumerate(r.conditions)],
        "condition_kind": ("one-hot domain vector" if r.family == "stargan" else
                           "edit intensities in [0, 1], any mix" if r.family == "ganimation" else "none"),
        "training": {
            "kind": "paired, supervised (L1 + L1 on image gradients) on synthetic edits of bundled photos; not "
                    "adversarial, no faces dataset, not the released GAN weights",
            "data": [SOURCES[p][0] for p in TRAIN_PHOTOS],
            "heldout": [SOURCES[p][0] for p in HELDOUT_PHOTOS],
            "crops": f"random {_crop_schedule(r)}, horizontal flips, from each photo resized to short side "
                     f"160/224/320",
            "steps": result.steps, "optimizer": f"Adam lr {r.lr} betas (0.5, 0.999), warm-up + "
                                                                   "cosine decay to 5%",
            "loss_weights": {"l1": 1.0, "gradient_l1": r.grad_weight, "attention_mean": r.attention_weight,
                             "attention_tv": r.attention_tv_weight},
            "condition_init": r.condition_init,
            "seed": result.seed, "threads": torch.get_num_threads(), "device": "cpu",
            "wall_time_s": round(result.wall_s, 1), "started_utc": result.started,
            "torch": torch.__version__,
            "final_loss_mean_last50": round(sum(tail) / len(tail), 5),
            "first_loss": round(result.losses[0], 5),
        },
        "recipe_command": command or f"apate train-protect {r.family} --out assets/models/protect "
                                     f"--steps {result.steps} --seed {result.seed}",
        "heldout_metrics": result.heldout,
        "edits": {e: EDIT_DESCRIPTIONS[e] for e in ("autolevel",) + r.edits},
        "target": "edit(autolevel(x)) computed over the whole model input (see edits.autolevel for why)",
        "notes": r.notes,
        "limitations": "Small stand-in models of the released architectures for demos, tests and default "
                       "protection; they reproduce simple photo edits, not facial attribute/expression editing.",
        "license": "same as Apate",
    }
    if weights is not None:
        data = Path(weights).read_bytes()
        card["weights"] = {"file": Path(weights).name, "format": "safetensors", "bytes": len(data),
                           "sha256": hashlib.sha256(data).hexdigest()}
    return card


def write_model(result: TrainResult, out_dir: Union[str, Path], command: Optional[str] = None) -> tuple[Path, Path]:
    """Write ``<family>.safetensors`` (the engine's state_dict keys) and ``<family>.json`` (the model card)."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    family = result.recipe.family
    weights = out / f"{family}.safetensors"
    state = {k: v.detach().cpu().contiguous().clone() for k, v in result.model.state_dict().items()}
    save_file(state, str(weights), metadata={"family": family,
                                             "configuration": json.dumps(dataclasses.asdict(result.model.config))})
    card_path = out / f"{family}.json"
    card_path.write_text(json.dumps(model_card(result, weights, command), indent=2) + "\n")
    return weights, card_path
