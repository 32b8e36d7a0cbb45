"""Demo figure of Apate's shipped in-house Protect generators: input | model output per condition.

    python scripts/protect_demo.py [--models assets/models/protect] [--photo astronaut] [--size 256]

For each family, one row of model outputs on the demo photo (never seen in training) and, below it, the target
edit the model was trained to reproduce, for comparison. Writes ``<models>/demo.png``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from apate_core.protect import load_generator  # noqa: E402
from apate_core.protect.training.data import demo_input  # noqa: E402
from apate_core.protect.training.train import condition_list, get_recipe, half_mix, target_for  # noqa: E402

FAMILIES = ("stargan", "ganimation", "cyclegan", "pix2pixhd")
ROOT = Path(__file__).resolve().parent.parent


def _show(ax, img: torch.Tensor, title: str = "") -> None:
    ax.imshow(((img[0].permute(1, 2, 0).numpy() + 1.0) / 2.0).clip(0, 1))
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=str(ROOT / "assets/models/protect"))
    parser.add_argument("--photo", default="astronaut", help="bundled photo (astronaut, chelsea, grace_hopper)")
    parser.add_argument("--size", type=int, default=128, help="model input size (the cards' native size: 128)")
    parser.add_argument("--out", default=None, help="output PNG (default <models>/demo.png)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    models = Path(args.models)
    x = demo_input(args.photo, args.size)
    rows = []
    for family in FAMILIES:
        weights = models / f"{family}.safetensors"
        if not weights.is_file():
            print(f"skipping {family}: {weights} not found")
            continue
        card = json.loads((models / f"{family}.json").read_text())
        gen = load_generator(family, weights, **card["configuration"])
        recipe = get_recipe(family)
        conds = condition_list(recipe)
        if family == "ganimation":
            (first, second), mix = half_mix(recipe)
            conds.append((f"{first} 0.5\n+ {second} 0.5", mix))
        with torch.no_grad():
            outs = [(label, gen.generate(x, c), target_for(recipe, x, c)) for label, c in conds]
            mask = None
            if family == "ganimation":
                _, mask = gen(x, conds[1][1])  # official layout: (colour, mask); sepia
        rows.append((family, outs, mask))
    if not rows:
        raise SystemExit(f"no models under {models}")
    ncols = 1 + max(len(outs) for _, outs, _ in rows) + 1
    fig, axes = plt.subplots(2 * len(rows), ncols, figsize=(1.9 * ncols, 2.05 * 2 * len(rows)))
    for r, (family, outs, mask) in enumerate(rows):
        top, bottom = axes[2 * r], axes[2 * r + 1]
        _show(top[0], x, f"{family}: input")
        bottom[0].axis("off")
        bottom[0].text(0.5, 0.5, "target edit\n(what it was\ntrained to do)", ha="center", va="center", fontsize=9)
        for k, (label, out, target) in enumerate(outs, start=1):
            _show(top[k], out, f"{family}: {label}")
            _show(bottom[k], target, f"target: {label}")
        for k in range(len(outs) + 1, ncols):
            top[k].axis("off")
            bottom[k].axis("off")
        if mask is not None:
            top[-1].imshow(mask[0, 0].numpy(), cmap="gray", vmin=0, vmax=1)
            top[-1].set_title("attention mask (sepia)\nwhite = keep input", fontsize=8)
            top[-1].axis("on")
            top[-1].set_xticks([])
            top[-1].set_yticks([])
    fig.suptitle(f"Apate in-house Protect generators on skimage.data.{args.photo}() (held out from training), "
                 f"{args.size}x{args.size}", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    out = Path(args.out) if args.out else models / "demo.png"
    fig.savefig(out, dpi=72)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
