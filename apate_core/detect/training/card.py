"""Render a trained model's card (the JSON beside the weights) as a short Markdown README."""

from __future__ import annotations

from typing import Any, Mapping

TARGETS = {"test": ("ROC-AUC >= 0.99 in distribution", 0.99), "heldout": ("ROC-AUC >= 0.95 on the held-out family", 0.95)}
ECE_TARGET = 0.05


def _f(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "n/a"


def _tiling(card: Mapping[str, Any]) -> str:
    tile = (card.get("config") or {}).get("tile")
    if not tile:
        return ""
    return (f" Frames larger than {tile} px on a side are scored in equal tiles of at most {tile}x{tile} px "
            "(config `tile`): the frame's logit is the mean of the tile logits and its heatmap is stitched from "
            "the tiles', so memory does not grow with the frame; a frame that fits in one tile is one forward pass.")


def _re_encodes(options: Mapping[str, Any]) -> str:
    """The corpus's re-encode policy in words (both classes, drawn independently)."""
    if "h264_prob" not in options:
        return "Real and generated images alike are JPEG re-encoded at random."
    crf = options.get("h264_crf") or ["?", "?"]
    q = options.get("jpeg_quality") or ["?", "?"]
    return (f"Each image of either class, drawn independently, is re-encoded as JPEG (q {q[0]}-{q[1]}, "
            f"{options.get('jpeg_prob', 0):.0%}) or through H.264 (libx264 CRF {crf[0]}-{crf[1]}, yuv420p or "
            f"yuv444p, intra or P-frame; {options.get('h264_prob', 0):.0%}) or left as it is, so codec traces are "
            "no label cue.")


def render_readme(card: Mapping[str, Any], weights_name: str, weights_bytes: int) -> str:
    metrics = card.get("metrics") or {}
    trained = card.get("trained_on") or {}
    recipe = card.get("recipe") or {}
    families = trained.get("families") or {}
    lines = [
        f"# {card.get('name', 'apate')}: Apate's shipped default detector",
        "",
        f"`{weights_name}` ({weights_bytes / 1e6:.2f} MB, safetensors) + `{weights_name.rsplit('.', 1)[0]}.json` "
        f"(model card). Architecture `{card.get('architecture')}`: a small fully-convolutional CNN at native "
        "resolution (no resampling), one logit, P(fake) = sigmoid(logit / T) with the card's temperature T for "
        "calibrated probabilities. Load with `create_detector(\"apate\")`." + _tiling(card),
        "",
        f"Trained {card.get('date')} in-house, nothing downloaded. Real = augmented crops of "
        "photos bundled by scikit-image, scikit-learn and matplotlib (split by photo; `../shared/testdata` never "
        "used for training); generated = the same crops re-synthesised by small autoencoders of the families "
        f"{', '.join(families.get('train', []))}; held out entirely: **{families.get('heldout')}**. "
        + _re_encodes(trained.get("corpus_options") or {}),
        "",
        "Recipe (seeded, reproducible):",
        "",
        "```",
        str(recipe.get("corpus_command", "apate corpus DATA_DIR --holdout pixelshuffle --seed 0")),
        str(recipe.get("command", "apate train DATA_DIR")),
        "```",
        "",
        f"Wall time on a shared 2-core CPU (no GPU): corpus {_f((trained.get('corpus_seconds') or {}).get('total'), 0)} s, "
        f"training + evaluation {_f(card.get('train_seconds'), 0)} s (best epoch {card.get('best_epoch')}).",
        "",
        "| split (measured by `apate evaluate`) | n real / fake | ROC-AUC | AP | acc@0.5 | EER | ECE | ECE after T |",
        "|---|---|---|---|---|---|---|---|",
    ]
    labels = {"test": "in distribution (unseen photos)", "heldout": f"held-out family ({families.get('heldout')})",
              "val": "val (calibration split)"}
    for split in ("test", "heldout", "val"):
        m = metrics.get(split)
        if not m:
            continue
        lines.append(f"| {labels[split]} | {m.get('n_real')} / {m.get('n_fake')} | {_f(m.get('roc_auc'))} | "
                     f"{_f(m.get('average_precision'))} | {_f(m.get('accuracy'))} | {_f(m.get('eer'))} | "
                     f"{_f(m.get('ece'))} | {_f(m.get('ece_temperature_scaled'))} |")
    real = metrics.get("eval_real")
    if real:
        lines += ["", f"False-positive rate on the real camera photos/videos of `../shared/testdata/real` "
                      f"(never trained on): **{_f(real.get('false_positive_rate'), 3)}** "
                      f"({real.get('n_real')} files, mean P(fake) {_f(real.get('mean_p_fake'), 3)})."]
    lines += ["", "Targets:"]
    for split, (text, bound) in TARGETS.items():
        value = (metrics.get(split) or {}).get("roc_auc")
        met = isinstance(value, (int, float)) and value >= bound
        lines.append(f"- {text}: {_f(value)} ({'met' if met else 'NOT met'})")
    eces = [(metrics.get(s) or {}).get("ece_temperature_scaled") for s in ("test", "heldout")]
    ece_ok = all(isinstance(e, (int, float)) and e <= ECE_TARGET for e in eces)
    lines.append(f"- ECE <= {ECE_TARGET} after temperature scaling (T = {_f(card.get('temperature'), 3)}, fitted on val): "
                 f"{', '.join(_f(e) for e in eces)} ({'met' if ece_ok else 'NOT met'})")
    lines += ["", "Limits: trained on one corpus of ~18 bundled photos and small autoencoders; it has never seen "
                  "GAN, diffusion or commercial generators. Treat its score on media from unseen generators as "
                  "weak evidence, not proof; heavy re-compression or resizing erases the fingerprints it looks for.",
              ""]
    if card.get("roc_png"):
        lines.insert(-2, f"![ROC]({card['roc_png']})")
        lines.insert(-2, "")
    return "\n".join(lines)
