"""The face-swap recipe (training/faceswap_cnn.py): views, the held-out split, and a tiny run end to end."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from apate_core.detect import backbones, mtcnn
from apate_core.detect.training.datasets import GENERATED, REAL
from apate_core.detect.training.faceswap_cnn import (
    DUAL_CUE, LABORATORIET, FaceCnnOptions, FaceRecord, face_view, split_faces, training_pair,
)
from apate_core.settings import load_settings


def _record(source: str, label: int = REAL) -> FaceRecord:
    return FaceRecord(Path(f"/c/{source}.png"), (40.0, 40.0, 80.0, 80.0),
                      ((60, 70), (100, 70), (80, 90), (65, 105), (95, 105)), label,
                      "camera" if label == REAL else "face-swap", source, f"/o/{source}.jpg")


def test_held_out_and_calibration_faces_are_never_trained_on():
    records = [_record("a"), _record("b"), _record(DUAL_CUE), _record(LABORATORIET), _record(DUAL_CUE, GENERATED),
               _record("b", GENERATED)]
    split = split_faces(records, FaceCnnOptions())
    assert [r.source for r in split["train"]] == ["a", "b"]
    assert [r.source for r in split["heldout"]] == [DUAL_CUE]
    assert [r.source for r in split["calibration"]] == [LABORATORIET]
    assert [r.label for r in split["swaps"]] == [GENERATED, GENERATED]  # every face swap: evaluation only


def test_a_training_pair_differs_only_inside_the_face():
    import skimage.data

    image = skimage.data.astronaut()[:256, 100:356].copy()
    record = FaceRecord(Path("/c/a.png"), (70.0, 60.0, 90.0, 110.0),
                        ((95, 95), (135, 95), (115, 115), (100, 140), (130, 140)), REAL, "camera", "a", "/o/a.png")
    real, fake = training_pair(record, image, np.random.default_rng(3), 96)
    assert real.shape == fake.shape == (96, 96, 3) and real.dtype == np.uint8
    assert np.abs(real.astype(int) - fake.astype(int)).mean() > 1.0  # the blend (and its processing) shows
    plain = face_view(image, record.box, 96)
    assert plain.shape == (96, 96, 3)
    # the face is centred: the box + margin maps the box's centre to the view's centre
    assert np.allclose(face_view(np.indices((256, 256)).transpose(1, 2, 0)[..., [0, 1, 0]].astype(np.uint8),
                                 record.box, 96)[48, 48, :2], [115, 115], atol=3)


def _tiny_detect_data(root: Path) -> None:
    source = Path(os.environ.get("APATE_DETECT_DATA", ""))
    with open(source / "MANIFEST.tsv", newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        fields, rows = reader.fieldnames, list(reader)
    dual = [r for r in rows if r["source_repo"] == DUAL_CUE]
    picked = ([r for r in dual if r["label"] == "real"][:3] + [r for r in dual if r["family"] == "face-swap"][:3]
              + [r for r in rows if r["source_repo"] == "muxspace/facial_expressions"][:4]
              + [r for r in rows if r["source_repo"] == LABORATORIET and r["label"] == "real"][:12])
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
    if not backbones.local_path("mobilenet_v2").is_file() or not mtcnn.weights_installed():
        pytest.skip("MobileNetV2 or MTCNN backbone not installed; run `python -m apate_core.detect.backbones`")
    import skimage.data

    from apate_core.detect import create_detector, score_faces
    from apate_core.detect.checkpoints import read_card
    from apate_core.detect.training.faceswap_cnn import collect_faces, train_faceswap

    _tiny_detect_data(tmp_path / "data")
    settings = load_settings(environ={}, detect_data=str(tmp_path / "data"))
    options = FaceCnnOptions(epochs=1, side=64, batch=8)
    weights = train_faceswap(settings, tmp_path / "out" / "fs.safetensors", options, cache_dir=tmp_path / "cache")
    card = read_card(weights)
    faces = card["trained_on"]["faces"]
    assert card["name"] == "apate-faceswap" and card["architecture"] == "mobilenet_v2"
    assert faces["train"] >= 3 and faces["heldout"] >= 1 and faces["swaps"] >= 1  # astronaut trains too
    assert card["temperature"] > 0 and card["calibration"]["bias_shift"] <= 0
    assert card["backbone"]["sha256"].startswith("b0353104")
    assert card["face_detector"]["weights"][0]["package"] == "facenet-pytorch==2.6.0"
    assert f"within_{DUAL_CUE}" in card["metrics"]  # the within-repository figure made the card
    # the face crops are cached: a second pass finds every image already done
    records, _ = collect_faces(settings, tmp_path / "cache" / "faceswap-faces", options,
                               progress=lambda f, m: pytest.fail("nothing should be recomputed"))
    assert len(records) == sum(faces.values())
    detector = create_detector(str(weights))
    scores = score_faces(detector, skimage.data.astronaut())
    assert len(scores) == 1 and 0.0 < scores[0].score < 1.0
