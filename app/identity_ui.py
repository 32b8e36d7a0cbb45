"""Protect page pieces for the identity target: face count per upload, the cloak's controls and its result."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image, ImageDraw

from apate_core.protect.identity import job as identity
from apate_core.protect.job import OUTPUT_FORMATS, ImageInput
from app import ui

SCALE = 127.5


def face_counts(images: Sequence[ImageInput]) -> dict[str, int]:
    """Faces MTCNN finds in each upload (by content hash, computed once per session)."""
    cache = st.session_state.setdefault("protect_face_counts", {})
    for image in images:
        if image.sha256 not in cache:
            cache[image.sha256] = len(identity.find_faces(image.rgb))
    return {image.sha256: cache[image.sha256] for image in images}


TARGETS = {"identity": identity.TARGET_LABEL,
           "generators": "Image-translation generators (StarGAN, GANimation, CycleGAN, pix2pixHD)"}


def target_picker(counts: dict[str, int]) -> str:
    """Identity by default when a face is present (or nothing is uploaded yet), the generators otherwise.
    The key follows that default, so the choice resets when the uploads change it."""
    has_faces = not counts or any(counts.values())
    choice = st.radio("Protect against", list(TARGETS), index=0 if has_faces else 1, format_func=TARGETS.get,
                      key=f"protect_target_{has_faces}", horizontal=True)
    if counts and not any(counts.values()):
        st.info("No face found in these photos, so there is no identity to cloak. The generator targets push "
                "image-translation models (StarGAN, GANimation, CycleGAN, pix2pixHD) to fail on a photo. What they "
                "can and cannot do here: Apate ships in-house stand-ins trained on CPU, which learn gentle edits "
                "that a small perturbation barely breaks (see the model note below); with released checkpoints "
                "you bring (under APATE_MODELS_DIR) the attack is the reference one, unchanged.",
                icon=":material/info:")
    elif counts:
        found = sum(counts.values())
        st.caption(f"{found} face(s) found in {sum(1 for n in counts.values() if n)} of {len(counts)} photo(s).")
    return choice


def start_job(images, params: identity.CloakParams, settings, store):
    """Queue an identity cloak job (raises jobs.QueueLimit past the session's share of the queue)."""
    return ui.submit_job("identity", lambda progress, cancel: identity.run_identity_job(
        images, params, settings, store=store, progress=progress, cancel=cancel))


def controls(card: dict) -> identity.CloakParams:
    left, mid, right = st.columns(3)
    defaults = identity.CloakParams()
    with left:
        auto = st.checkbox("Smallest budget that works", True, key="identity_auto",
                           help=f"Tries ε = {', '.join(map(str, identity.AUTO_BUDGETS_255))}/255 in turn and keeps "
                                f"the first that moves every face past the threshold, stopping before SSIM "
                                f"would fall below {identity.SSIM_FLOOR}.")
        eps255 = st.slider("ε (in /255)", 1, 16, 4, 1, key="identity_eps", disabled=auto,
                           help="The hard per-pixel bound of the saved file.")
        st.caption(f"Each pixel moves by at most {max(identity.AUTO_BUDGETS_255) if auto else eps255} of 255 steps.")
    with mid:
        iterations = st.number_input("Iterations", 1, 200, defaults.iterations, key="identity_iters",
                                     help="Stops early once every face is far past the match threshold.")
        samples = st.number_input("Random re-alignments per step", 1, 16, defaults.eot_samples,
                                  key="identity_samples",
                                  help="Expectation over shifts, scales, rotations, JPEG, resize and blur.")
    with right:
        shaping = st.checkbox("Perceptual shaping (hide the perturbation in texture)", True, key="identity_shaping")
        fmt = st.radio("Output format", OUTPUT_FORMATS, key="identity_format", horizontal=True,
                       format_func=str.upper)
    efficacy = card.get("cloak_efficacy")
    if isinstance(efficacy, dict):
        st.info(efficacy_sentence(efficacy), icon=":material/info:")
    else:
        st.caption("The cloak's efficacy has not been measured for this build (benchmarks/bench_identity_cloak.py).")
    return identity.CloakParams(epsilon=None if auto else eps255 / SCALE, iterations=int(iterations),
                                eot_samples=int(samples),
                                shaping=shaping, output_format=fmt)


def efficacy_sentence(e: dict) -> str:
    return (f"Measured ({e.get('measured_on', '?')}) on {e.get('faces', '?')} real faces at the defaults: "
            f"{e.get('unmatched_saved', 0):.0%} no longer matched by the recogniser, "
            f"{e.get('unmatched_jpeg75', 0):.0%} after JPEG 75, {e.get('unmatched_half', 0):.0%} after halving the "
            f"size; SSIM {e.get('ssim_min', 0):.3f} at worst. Measured against this one recogniser only: other "
            "recognisers (ArcFace, commercial services) are not measured here.")


def boxed(rgb: np.ndarray, faces: Sequence[dict]) -> np.ndarray:
    """The photo with each face's box and number drawn on it."""
    image = Image.fromarray(rgb)
    draw = ImageDraw.Draw(image)
    width = max(2, round(max(rgb.shape[:2]) / 300))
    for n, face in enumerate(faces, 1):
        x0, y0, x1, y1 = face["box"]
        draw.rectangle((x0, y0, x1, y1), outline=(255, 64, 64), width=width)
        draw.text((x0 + width + 2, y0 + width + 2), str(n), fill=(255, 64, 64))
    return np.asarray(image)


def _distance(value) -> str:
    return "face not found" if value is None else f"{value:.3f}"


def show_result(result: identity.IdentityJobResult) -> None:
    """The cloak's result: views, per-face distances, the robustness table and downloads."""
    images = result.images
    st.subheader("Result")
    budget = "automatic" if result.params.epsilon is None else f"{result.params.epsilon * SCALE:g}/255"
    st.caption(f"{identity.TARGET_LABEL} · {identity.RECOGNISER} · ε {budget} · "
               f"match threshold {identity.MATCH_THRESHOLD} · {result.seconds:.1f} s")
    if len(images) > 1:
        st.dataframe(pd.DataFrame([{
            "image": im.name, "faces": len(im.faces), "SSIM": im.metrics["quality"]["ssim"],
            "no longer matched": "—" if not im.faces else f"{im.unmatched():.0%}"} for im in images]),
            hide_index=True)
    index = st.selectbox("Image", range(len(images)), key="identity_view", format_func=lambda i: images[i].name) \
        if len(images) > 1 else 0
    image = images[index]
    if not image.faces:
        st.warning(f"No face found in {image.name}: nothing to cloak, the file is unchanged. Choose a generator "
                   "target to protect it against image-translation models instead.", icon=":material/face:")
        return
    m = image.metrics
    c1, c2, c3 = st.columns(3)
    c1.image(boxed(image.original, image.faces), caption=f"Original · {len(image.faces)} face(s) found")
    c2.image(image.protected, caption=f"Protected · {image.file_name}")
    c3.image(image.perturbation_image(), caption="Perturbation (amplified to the full range)")
    ui.before_after(image, "identity_split")
    cols = st.columns(4)
    cols[0].metric("L∞ (true max)", f"{m['perturbation']['linf_8bit']:.0f}/255",
                   help=f"Budget used: {m['epsilon_8bit']:.0f}/255")
    cols[1].metric("SSIM", f"{m['quality']['ssim']:.4f}")
    cols[2].metric("PSNR", "∞" if m["quality"]["psnr"] is None else f"{m['quality']['psnr']:.2f} dB")
    cols[3].metric("Faces no longer matched", f"{image.unmatched():.0%}")
    st.markdown(f"#### Per face: descriptor distance to the original face (a match is ≤ {identity.MATCH_THRESHOLD})")
    rows = [{"face": c.face + 1, "condition": c.condition, "protected": _distance(c.distance),
             "unprotected": _distance(c.baseline), "still matched": "yes" if c.matched else "no"}
            for c in image.checks]
    saved = [r for r in rows if r["condition"] == "as saved"]
    st.dataframe(pd.DataFrame(saved), hide_index=True)
    st.markdown("#### Robustness: faces re-detected and re-aligned after common transformations")
    table = [{"condition": cond, "no longer matched": f"{share:.0%}"} for cond, share in m["unmatched"].items()]
    st.dataframe(pd.DataFrame(table), hide_index=True)
    with st.expander("Every face under every condition"):
        st.dataframe(pd.DataFrame(rows), hide_index=True)
    st.caption("Measured against one recogniser (face-api.js / dlib's ResNet descriptor). Other recognisers "
               "(ArcFace, commercial services) are not measured here and may still match.")
    ui.protect_downloads(result, image, "identity")
