"""Protect page pieces: queued jobs, the controls and the result views."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from apate_core import jobs
from apate_core.errors import ApateError
from apate_core.protect import get_family, list_attacks
from apate_core.protect.job import (OUTPUT_FORMATS, ImageInput, ProtectJobResult, ProtectParams, available_generators,
                                    choice_target_names, load_image, run_protect_job, shipped_summary)
from app import ui

SCALE = 127.5
FAMILY_ORDER = ("stargan", "ganimation", "cyclegan", "pix2pixhd")
ATTACK_LABELS = {"pgd": "PGD (random start)", "ifgsm": "I-FGSM", "fgsm": "FGSM (one step)"}


def generator_job(images, choice, params, settings, store) -> jobs.Job:
    """Queue a generator protect job (raises jobs.QueueLimit past the session's share of the queue)."""
    return ui.submit_job("protect", lambda progress, cancel: run_protect_job(
        images, choice, params, settings, store=store, progress=progress, cancel=cancel))


def load_uploads(uploaded, settings) -> list[ImageInput]:
    """Intake each upload once per file; refusals (videos, oversized, not an image) shown as error cards."""
    cache = st.session_state.setdefault("protect_inputs", {})
    images = []
    for file in uploaded[: settings.max_batch]:
        if file.file_id not in cache:
            try:
                cache[file.file_id] = load_image(ui.save_upload(file), settings, name=file.name)
            except ApateError as exc:
                cache[file.file_id] = exc
        item = cache[file.file_id]
        if isinstance(item, ApateError):
            ui.error_card(item, title=f"{file.name} was refused")
        else:
            images.append(item)
    if len(uploaded) > settings.max_batch:
        st.warning(f"{len(uploaded)} files dropped: one job takes at most {settings.max_batch} images "
                   "(APATE_MAX_BATCH); the first ones are used.")
    return images


@dataclass
class Controls:
    choice: object
    params: ProtectParams


def controls(settings) -> Controls:
    left, mid, right = st.columns(3)
    with left:
        family = st.selectbox("Generator", FAMILY_ORDER, key="protect_family",
                              format_func=lambda f: get_family(f).display_name,
                              help="The image-translation model the protection is aimed at.")
        choices = {c.label.split(": ", 1)[1]: c for c in available_generators(settings, family)}
        choice = choices[st.selectbox("Model source (checkpoint)", list(choices), key=f"protect_model_{family}")]
        if choice.demo:
            st.warning(f"No {get_family(family).display_name} weights found, so this uses small **random weights "
                       "(demo only — not a real generator)**: the numbers say nothing about a real model. "
                       f"Put a checkpoint under "
                       f"`{settings.models_path}/{family}/` ({get_family(family).checkpoint_files}).",
                       icon=":material/science:")
        targets, names = None, None
        try:
            names = choice_target_names(choice, settings.resolved_device())
        except ApateError as exc:
            ui.error_card(exc, title="This model source cannot be used")
        if names:
            index = list(choices.values()).index(choice)
            targets = st.multiselect("Target condition(s)", names, default=names[:5],
                                     key=f"protect_targets_{family}_{index}",
                                     help="One perturbation is optimised against all the chosen conditions.")
        elif names is not None:
            st.caption("This generator is unconditional: no target condition to choose.")
    with mid:
        attack = st.selectbox("Attack", list_attacks()[::-1], key="protect_attack", format_func=ATTACK_LABELS.get)
        eps255 = st.slider("ε (in /255)", 1.0, 63.75, 6.375, 0.125, key="protect_eps", format="%.3f")
        eps = eps255 / SCALE
        st.caption(f"ε = {eps255:g}/255 = **{eps:.4f}** on the model's [-1, 1] scale: each pixel of the saved "
                   f"file moves by at most {math.floor(eps * SCALE + 1e-9)} of 255 steps.")
        iterations = st.number_input("Iterations", 1, 200, 10, key="protect_iters", disabled=attack == "fgsm")
        step255 = st.number_input("Step (in /255)", 0.125, 63.75, 1.275, 0.125, key="protect_step",
                                  format="%.3f", disabled=attack == "fgsm",
                                  help=f"{1.275 / SCALE:.2f} on the model scale by default, as in the reference.")
    with right:
        random_start = st.checkbox("Random start (PGD)", True, key="protect_random_start", disabled=attack != "pgd",
                                   help="Off: start from ±0.001 noise like I-FGSM.")
        shaping = st.checkbox("Perceptual shaping (hide the perturbation in texture)", True, key="protect_shaping",
                              help="Less change in flat and dark areas, more in texture, moving R, G, B together.")
        robust = st.checkbox("Robust to JPEG / resize / blur (slower)", False, key="protect_robust",
                             help="Expectation over random transformations during the attack.")
        fmt = st.radio("Output format", OUTPUT_FORMATS, key="protect_format", horizontal=True,
                       format_func=str.upper)
        if fmt != "png":
            st.warning(f"{fmt.upper()} re-compresses the protected image (quality 95): the ε bound no longer holds "
                       "exactly and part of the protection can be lost. See the *saved file* row of the "
                       "robustness table.", icon=":material/warning:")
    summary = shipped_summary(choice)  # full width: what the model is and how Protect measured against it
    if summary:
        st.info(summary, icon=":material/info:")
    params = ProtectParams(attack=attack, epsilon=eps, step_size=step255 / SCALE, iterations=int(iterations),
                           random_start=random_start, targets=tuple(targets) if targets else None, robust=robust,
                           output_format=fmt, shaping=shaping)
    return Controls(choice, params)


def _fmt_psnr(value) -> str:
    return "∞" if value is None else f"{value:.2f} dB"


def show_result(result: ProtectJobResult) -> None:
    images = result.images
    st.subheader("Result")
    st.caption(f"{result.generator.label} · {result.params.attack.upper()} · ε {result.params.epsilon:.4f} "
               f"({result.params.epsilon * SCALE:g}/255) · model input {result.model_size[1]}×{result.model_size[0]}"
               f" · {result.seconds:.1f} s")
    if len(images) > 1:
        st.dataframe(pd.DataFrame([{
            "image": im.name, "size": f"{im.original.shape[1]}×{im.original.shape[0]}",
            "L∞ (/255)": im.metrics["perturbation"]["linf_8bit"], "SSIM": im.metrics["quality"]["ssim"],
            "PSNR": _fmt_psnr(im.metrics["quality"]["psnr"]), "disrupted": f"{im.metrics['disrupted_fraction']:.0%}"}
            for im in images]), hide_index=True)
    index = st.selectbox("Image", range(len(images)), key="protect_view", format_func=lambda i: images[i].name) \
        if len(images) > 1 else 0
    image = images[index]
    m = image.metrics
    c1, c2, c3 = st.columns(3)
    c1.image(image.original, caption=f"Original · {image.original.shape[1]}×{image.original.shape[0]}")
    c2.image(image.protected, caption=f"Protected · {image.file_name}")
    c3.image(image.perturbation_image(), caption="Perturbation (amplified to the full range)")
    ui.before_after(image, "protect_split")
    cols = st.columns(5)
    cols[0].metric("L∞ (true max)", f"{m['perturbation']['linf_8bit']:.0f}/255")
    cols[1].metric("L2 ([-1, 1] scale)", f"{m['perturbation']['l2']:.3f}")
    cols[2].metric("SSIM", f"{m['quality']['ssim']:.4f}")
    cols[3].metric("PSNR", _fmt_psnr(m["quality"]["psnr"]))
    cols[4].metric("Disrupted targets", f"{sum(o['disrupted'] for o in m['outputs'])}/{len(m['outputs'])}")
    st.markdown("#### Generator output: on the original vs on the protected image")
    for start in range(0, len(image.target_names), 5):
        row = st.columns(5)
        for col, t in zip(row, range(start, min(start + 5, len(image.target_names)))):
            col.image(image.outputs_original[t], caption=f"{image.target_names[t]} · on original", width="stretch")
            col.image(image.outputs_protected[t], caption=f"{image.target_names[t]} · on protected", width="stretch")
    st.markdown("#### Output distortion per target (disrupted: MSE > 0.05 on the [-1, 1] scale)")
    st.dataframe(pd.DataFrame(m["outputs"]), hide_index=True)
    st.markdown("#### Robustness: disruption left after common transformations")
    rows = list(m["robustness"]) + ([m["saved_file"]] if m.get("saved_file") else [])
    if rows:
        table = [{"transform": r["transform"], "disrupted": f"{r['disrupted_fraction']:.0%}",
                  **{f"MSE {d['target']}": d["mse"] for d in r["targets"]}} for r in rows]
        st.dataframe(pd.DataFrame(table), hide_index=True)
    if m.get("saved_file"):
        st.warning(f"Saved as {image.output_format.upper()}: the file itself differs from the original by up to "
                   f"{m['saved_file']['linf_8bit']}/255 and keeps {m['saved_file']['disrupted_fraction']:.0%} "
                   "disruption.", icon=":material/warning:")
    ui.protect_downloads(result, image, "protect")
