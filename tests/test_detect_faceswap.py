"""The face-swap recipe (training/faceswap.py): its held-out protocol, and a tiny run end to end."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from apate_core.detect import backbones, mtcnn
from apate_core.detect.training.embeddings import EmbeddingSet
from apate_core.detect.training.faceswap import (
    SBI_FAMILY, SWAP_FAMILY, FaceSwapOptions, origin_of, sbi_only_logits, swap_metrics,
)
from apate_core.settings import load_settings


def _set(rows) -> EmbeddingSet:
    X, y, family, source = zip(*rows)
    n = len(y)
    return EmbeddingSet(X=np.asarray(X, np.float32), y=np.asarray(y), family=np.asarray(family),
                        source=np.asarray(source), path=np.array([f"f{i}.png" for i in range(n)]),
                        view=np.zeros(n, int), steps=np.array(["none"] * n))


def _corpus(swap_direction: int):
    """Three repositories of real faces and self-blends (SBI written in dimension 0); one of them
    also holds face swaps, written in ``swap_direction``."""
    rng = np.random.default_rng(0)
    rows = []
    for s, repo in enumerate(("repoA", "repoB", "repoC")):
        for _ in range(30):
            rows.append((rng.normal(0, 1, 8), 0, "camera", repo))
            v = rng.normal(0, 1, 8)
            v[0] += 3
            rows.append((v, 1, SBI_FAMILY, repo))
        if repo == "repoC":
            for _ in range(30):
                v = rng.normal(0, 1, 8)
                v[swap_direction] += 3
                rows.append((v, 1, SWAP_FAMILY, repo))
    return _set(rows)


def test_sbi_only_probes_never_see_a_face_swap():
    # swaps that share the self-blends' trace are found by probes trained on self-blends alone ...
    shared = _corpus(swap_direction=0)
    figures = swap_metrics(shared, sbi_only_logits(shared), 1.0, 0.5, min_within=10)
    assert figures["overall"]["roc_auc"] > 0.9 and figures["within"]["repoC"]["roc_auc"] > 0.9
    assert figures["self_blends"]["roc_auc"] > 0.9
    # ... swaps with a trace of their own are not: no face swap leaks into an SBI-only probe
    own = _corpus(swap_direction=5)
    figures = swap_metrics(own, sbi_only_logits(own), 1.0, 0.5, min_within=10)
    assert 0.3 < figures["overall"]["roc_auc"] < 0.7


def test_a_self_blend_crop_names_its_real_face():
    assert origin_of("/c/real-kush_camera_001~sbi1.png") == origin_of("/c/real-kush_camera_001.png") == \
        "real-kush_camera_001"


def _tiny_detect_data(root: Path) -> None:
    source = Path(os.environ.get("APATE_DETECT_DATA", ""))
    with open(source / "MANIFEST.tsv", newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        fields, rows = reader.fieldnames, list(reader)
    kush = [r for r in rows if r["source_repo"].startswith("kushagragupta-23/")]
    picked = ([r for r in kush if r["label"] == "real"][:3] + [r for r in kush if r["family"] == SWAP_FAMILY][:3]
              + [r for r in rows if r["source_repo"] == "muxspace/facial_expressions"][:3])
    for r in picked:
        (root / r["file"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / r["file"], root / r["file"])
    with open(root / "MANIFEST.tsv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, delimiter="\t")
        writer.writeheader()
        writer.writerows(picked)


def test_recipe_end_to_end_on_a_handful_of_faces(tmp_path):
    if not os.environ.get("APATE_DETECT_DATA") or not (Path(os.environ["APATE_DETECT_DATA"]) / "MANIFEST.tsv").is_file():
        pytest.skip("APATE_DETECT_DATA (shared detect-data) is not set")
    if not backbones.local_path("clip_vit_b16").is_file() or not mtcnn.weights_installed():
        pytest.skip("CLIP or MTCNN backbone not installed; run `python -m apate_core.detect.backbones`")
    import skimage.data

    from apate_core.detect import create_detector, score_faces
    from apate_core.detect.checkpoints import read_card
    from apate_core.detect.training.faceswap import embed_faces, train_faceswap

    _tiny_detect_data(tmp_path / "data")
    settings = load_settings(environ={}, detect_data=str(tmp_path / "data"))
    options = FaceSwapOptions(views=1, sbi_per_face=1, min_within=2)
    weights = train_faceswap(settings, tmp_path / "out" / "fs.safetensors", options, cache_dir=tmp_path / "cache")
    card = read_card(weights)
    trained = card["trained_on"]
    assert card["name"] == "apate-faceswap" and card["architecture"] == "clip_probe"
    assert trained["real"] == trained["self_blends"] >= 6 and trained["face_swaps"] >= 2  # astronaut included
    assert card["temperature"] > 0 and card["face_detector"]["weights"][0]["package"] == "facenet-pytorch==2.6.0"
    faceswap = card["heldout"]["faceswap"]["as_is"]
    assert set(faceswap) == {"sbi_only", "with_swaps_source_holdout"}
    assert "kushagragupta" in " ".join(card["metrics"])  # the within-repository figure made the card
    # the crops and embeddings are cached: a second pass embeds nothing new
    E, _ = embed_faces(create_detector("clip_probe"), settings, options, tmp_path / "cache")
    assert len(E) == trained["crops"]
    detector = create_detector(str(weights))
    scores = score_faces(detector, skimage.data.astronaut())
    assert len(scores) == 1 and 0.0 < scores[0].score < 1.0
