"""Pretrained backbones: hash checks, weights_only loading, and that the converted networks really work."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from apate_core.detect import backbones
from apate_core.errors import CheckpointError


def _installed(name: str) -> None:
    if not backbones.local_path(name).is_file():
        pytest.skip(f"backbone {name} not installed ({backbones.local_path(name)}); "
                    "run `python -m apate_core.detect.backbones`")


def test_sha256_check_refuses_a_changed_file(tmp_path):
    good = tmp_path / "weights.bin"
    good.write_bytes(b"\x00" * 1024)
    expected = backbones.sha256_file(good)
    backbones.check_sha256(good, expected)
    good.write_bytes(b"\x00" * 1023 + b"\x01")
    with pytest.raises(CheckpointError, match="SHA-256"):
        backbones.check_sha256(good, expected)


def test_prepare_refuses_a_member_with_the_wrong_hash(tmp_path):
    fake = tmp_path / "clip.onnx"
    fake.write_bytes(b"not the CLIP file")
    with pytest.raises(CheckpointError, match="expected 2d2da5e254d60501"):
        backbones.prepare("clip_vit_b16", tmp_path / "out", member_path=fake)
    assert not (tmp_path / "out" / "clip_vit_b16.safetensors").exists()


def test_missing_backbone_says_how_to_install(tmp_path):
    with pytest.raises(CheckpointError, match="python -m apate_core.detect.backbones"):
        backbones.load_state("clip_vit_b16", tmp_path)


def test_mobilenet_pth_is_read_with_weights_only(tmp_path, monkeypatch):
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    path = tmp_path / "tiny.pth"
    torch.save({"w": torch.ones(2)}, path)
    assert backbones.convert_torch_pickle_free(path)["w"].sum() == 2
    assert calls == [True]


def test_mobilenet_v2_imagenet_weights_recognise_a_cat():
    _installed("mobilenet_v2")
    import skimage.data
    import torchvision.models as tvm
    import torchvision.transforms.v2.functional as TF

    model = tvm.mobilenet_v2(weights=None)
    model.load_state_dict(backbones.load_state("mobilenet_v2"), strict=True)
    cat = torch.tensor(skimage.data.chelsea()).permute(2, 0, 1).float() / 255
    x = TF.normalize(TF.resize(cat, [224, 224], antialias=True), [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    with torch.no_grad():
        top = model.eval()(x[None]).argmax().item()
    assert 281 <= top <= 285  # ImageNet's domestic cats (tabby, tiger cat, Persian, Siamese, Egyptian)


def test_clip_port_matches_the_int8_onnx_and_keeps_semantics():
    _installed("clip_vit_b16")
    import skimage.data

    from apate_core.detect import create_detector

    detector = create_detector("clip_probe")
    assert detector.module.fast_encoder is not None
    photos = [skimage.data.chelsea(), skimage.data.cat(), skimage.data.astronaut(), skimage.data.coffee()]
    pixels = detector.preprocess(photos)
    with torch.no_grad():
        fast = detector.module.raw_features(pixels)  # no gradients: the int8 ONNX
        with torch.enable_grad():
            port = detector.module.raw_features(pixels).detach()  # gradients on: the PyTorch port
    for block in (slice(0, 512), slice(512 + 5 * 768, 512 + 6 * 768)):  # the embedding, block 6's class token
        agreement = torch.nn.functional.cosine_similarity(fast[:, block], port[:, block])
        assert agreement.min() > 0.9, agreement
    port = torch.nn.functional.normalize(port[:, :512], dim=-1)
    similarity = port @ port.T
    assert similarity[0, 1] > similarity[0, 2] and similarity[0, 1] > similarity[0, 3]  # cat ~ cat


def test_an_images_int8_clip_features_do_not_depend_on_its_batch():
    # The int8 graph quantises activations with scales over the whole input: run batched, an image's score
    # would move with its neighbours (by up to 0.05 in P(fake) before the encoder ran one image at a time).
    _installed("clip_vit_b16")
    import skimage.data

    from apate_core.detect import create_detector

    detector = create_detector("clip_probe")
    photos = [skimage.data.chelsea(), skimage.data.astronaut(), skimage.data.coffee(), skimage.data.rocket()]
    with torch.no_grad():
        together = detector.module.raw_features(detector.preprocess(photos))
        alone = torch.cat([detector.module.raw_features(detector.preprocess([p])) for p in photos])
        other = detector.module.raw_features(detector.preprocess([photos[0], skimage.data.camera()]))
    assert torch.equal(together, alone) and torch.equal(other[0], alone[0])


def test_a_maps_only_heatmap_pass_skips_the_int8_encoder_and_keeps_the_maps():
    # Top-k heatmaps are made for frames already scored: their pass needs the port's gradients, not the
    # int8 encoder's score, and the maps must not change when that encoder is skipped.
    _installed("clip_vit_b16")
    import skimage.data

    from apate_core.detect import create_detector
    from apate_core.detect.cam import score_and_cam

    detector = create_detector("clip_probe")
    photos = [skimage.data.chelsea(), skimage.data.coffee()]
    runs = []
    encoder = detector.module.fast_encoder
    detector.module.fast_encoder = lambda *a, **k: runs.append(1) or encoder(*a, **k)
    scored_probs, scored_maps = score_and_cam(detector, photos)
    assert len(runs) == 1 and np.allclose(scored_probs, detector.predict_proba(photos), atol=1e-5)
    runs.clear()
    probs, maps = score_and_cam(detector, photos, scores=False)
    assert probs is None and runs == [] and detector.module.match_fast_scores  # restored after the pass
    for a, b in zip(scored_maps, maps):
        assert np.allclose(a, b, atol=1e-4)


def test_a_probe_without_the_embedding_holds_only_the_blocks_it_reads():
    _installed("clip_vit_b16")
    import skimage.data

    from apate_core.detect import create_detector

    full, short = create_detector("clip_probe"), create_detector("clip_probe", layers="1,3", use_embedding=False)
    assert len(short.module.encoder.layers) == 4 and len(full.module.encoder.layers) == 12
    pixels = short.preprocess([skimage.data.chelsea()])
    with torch.enable_grad():  # the port: its block 3 equals the whole encoder's
        _, (mine,) = short.module.encoder(pixels, [3], embedding=False)
        _, (whole,) = full.module.encoder(pixels, [3], embedding=False)
        assert torch.allclose(mine, whole)
        with pytest.raises(ValueError, match="blocks 0-3 only"):
            short.module.encoder(pixels, [5], embedding=False)
    with pytest.raises(ValueError, match="needs layers or the embedding"):
        create_detector("clip_probe", layers="", use_embedding=False)
