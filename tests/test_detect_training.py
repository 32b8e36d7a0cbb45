"""In-house detector training: corpus -> train -> card -> load; metrics; calibration; CLI; shipped model."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from apate_core.cli import main


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, one_thread):
    """The whole recipe at toy size: corpus (64 px crops, 3-step decoders), 1 epoch of a width-4 net."""
    from apate_core.detect.training.corpus import CorpusOptions, build_corpus
    from apate_core.detect.training.train import TrainOptions, train_detector

    root = tmp_path_factory.mktemp("training")
    opts = CorpusOptions(crop=64, crops_train=2, crops_eval=2, decoder_variants=1, decoder_steps=3)
    summary = build_corpus(root / "corpus", opts)
    result = train_detector(root / "corpus", root / "model" / "tiny.safetensors",
                            TrainOptions(epochs=1, batch_size=8, patch=32, width=4), name="tiny",
                            eval_real=root / "corpus" / "test" / "real")
    return summary, result


def test_corpus_layout_and_holdout(tiny_run):
    summary, _ = tiny_run
    manifest = json.loads((summary.root / "manifest.json").read_text())
    assert manifest["families"]["heldout"] == "pixelshuffle"
    assert "pixelshuffle" not in manifest["families"]["train"]
    for split in ("train", "val", "test", "heldout"):
        real = sorted(p.name for p in (summary.root / split / "real").glob("*.png"))
        fake = sorted(p.name for p in (summary.root / split / "fake").glob("*.png"))
        assert real and real == fake  # every real crop has its re-synthesised twin
    used = {r["decoder"].split("-")[0] for r in manifest["records"]["heldout"]}
    assert used == {"pixelshuffle"}
    assert not {r["decoder"].split("-")[0] for r in manifest["records"]["train"]} & {"pixelshuffle"}
    # test photos are never training photos
    assert not set(manifest["photos"]["test"]) & set(manifest["photos"]["train"])


def test_corpus_re_encodes_both_classes_with_jpeg_and_h264(tiny_run):
    """Codec traces must not be a label cue: JPEG, H.264 and untouched images on both sides."""
    summary, _ = tiny_run
    manifest = json.loads((summary.root / "manifest.json").read_text())
    records = [r for split in manifest["records"].values() for r in split]
    for side in ("post_real", "post_fake"):
        kinds = {(r[side] or "none").split()[0] for r in records}
        assert {"jpeg", "h264", "none"} <= kinds, side
    crfs = [int(r[side].split()[1][3:]) for r in records for side in ("post_real", "post_fake")
            if (r[side] or "").startswith("h264")]
    low, high = manifest["options"]["h264_crf"]
    assert all(low <= c <= high for c in crfs)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-12)))


def test_h264_reencode_intra_and_p_frame():
    import skimage.data

    from apate_core.detect.training.corpus import h264_reencode

    image = np.ascontiguousarray(skimage.data.astronaut()[80:208, 160:288])
    intra = h264_reencode(image, 23)
    assert intra.shape == image.shape and intra.dtype == np.uint8 and not np.array_equal(intra, image)
    assert _psnr(intra, image) > 30
    assert _psnr(h264_reencode(image, 40), image) < _psnr(intra, image) - 3  # higher CRF, coarser
    moved = h264_reencode(image, 23, shift=(3, -4), frames=5)  # ends on the image itself, as a P-frame
    assert moved.shape == image.shape and _psnr(moved, image) > 28
    assert _psnr(moved, np.roll(image, (3, -4), axis=(0, 1))) < _psnr(moved, image) - 5
    chroma = lambda x: x.astype(np.float64) - x.astype(np.float64).mean(axis=2, keepdims=True)  # noqa: E731
    err420 = np.abs(chroma(h264_reencode(image, 18, "yuv420p")) - chroma(image)).mean()
    err444 = np.abs(chroma(h264_reencode(image, 18, "yuv444p")) - chroma(image)).mean()
    assert err444 < err420  # 4:2:0 subsamples chroma
    with pytest.raises(ValueError):
        h264_reencode(image[:127], 23)


def test_recipe_produces_loadable_checkpoint(tiny_run):
    from apate_core.detect import create_detector

    _, result = tiny_run
    assert result.weights.suffix == ".safetensors" and result.weights.with_suffix(".json").is_file()
    card = result.card
    for key in ("trained_on", "metrics", "recipe", "date", "temperature"):
        assert card.get(key) is not None, key
    assert {"val", "test", "heldout", "eval_real"} <= set(card["metrics"])
    assert card["trained_on"]["summary"].startswith("Crops of") and len(card["trained_on"]["summary"]) <= 240
    assert card["config"]["tile"] == 1024  # large frames are scored in tiles: part of the card's semantics
    detector = create_detector(str(result.weights))
    assert detector.architecture == "apate_fingerprint" and detector.config.resize == "none"
    assert detector.card["temperature"] == pytest.approx(card["temperature"])
    probs = detector.predict_proba([np.zeros((40, 52, 3), np.uint8)])
    assert probs.shape == (1,) and 0.0 <= probs[0] <= 1.0


def test_metrics_agree_with_sklearn():
    from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

    from apate_core.detect.training.evaluate import binary_metrics

    rng = np.random.default_rng(1)
    labels = np.r_[np.zeros(60, int), np.ones(40, int)]
    logits = rng.normal(size=100) + 1.5 * labels
    m = binary_metrics(labels, logits)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(labels, logits))
    assert m["average_precision"] == pytest.approx(average_precision_score(labels, logits))
    assert m["accuracy"] == pytest.approx(np.mean((logits >= 0) == (labels == 1)))
    fpr, tpr, _ = roc_curve(labels, logits)
    i = int(np.argmin(np.abs(fpr - (1 - tpr))))
    assert abs(m["eer"] - (fpr[i] + 1 - tpr[i]) / 2) < 0.03
    assert m["n_real"] == 60 and m["n_fake"] == 40


def test_ece_hand_checkable():
    from apate_core.detect.training.evaluate import expected_calibration_error

    # P(fake) 0.9 for four fakes and one real: confidence 0.9, accuracy 0.8 -> gap 0.1 on half the data.
    # P(fake) 0.3 for five reals: confidence 0.7, accuracy 1.0 -> gap 0.3 on the other half.
    labels = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    probs = [0.9] * 5 + [0.3] * 5
    assert expected_calibration_error(labels, probs) == pytest.approx(0.5 * 0.1 + 0.5 * 0.3)
    assert expected_calibration_error([1, 0], [1.0, 0.0]) == pytest.approx(0.0)


def test_temperature_scaling_fixes_overconfidence():
    from apate_core.detect.training.evaluate import expected_calibration_error, fit_temperature, sigmoid

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 4000)
    x = rng.normal(size=4000) + (2 * labels - 1)  # N(+-1, 1): the true log-odds are 2x ...
    overconfident = 3.0 * 2.0 * x  # ... made three times too confident
    t = fit_temperature(labels, overconfident)
    assert 2.5 < t < 3.5
    before = expected_calibration_error(labels, sigmoid(overconfident))
    after = expected_calibration_error(labels, sigmoid(overconfident / t))
    assert after < before / 2 and after < 0.03


def test_cli_evaluate_json_and_png(tiny_run, tmp_path, capsys):
    summary, result = tiny_run
    code = main(["evaluate", str(summary.root / "test"), "--model", str(result.weights), "--json",
                 "--out", str(tmp_path)])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    for key in ("roc_auc", "average_precision", "accuracy", "eer", "ece", "ece_temperature_scaled", "temperature"):
        assert isinstance(data["metrics"][key], float), key
    assert (tmp_path / "roc.png").stat().st_size > 1000


def test_cli_refuses_bad_input(tiny_run, tmp_path, capsys):
    summary, result = tiny_run
    (tmp_path / "real").mkdir()
    assert main(["evaluate", str(tmp_path), "--model", str(result.weights)]) == 2
    assert "no fake/ folder" in capsys.readouterr().err
    (tmp_path / "fake").mkdir()
    assert main(["evaluate", str(tmp_path), "--model", str(result.weights)]) == 2
    assert "holds no images" in capsys.readouterr().err
    assert main(["evaluate", str(summary.root / "test"), "--model", "no-such-model"]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "missing"), "--out", str(tmp_path / "m.safetensors")]) == 2
    assert main(["corpus", str(summary.root)]) == 2  # not empty
    capsys.readouterr()


def test_shipped_model_separates_fresh_resynthesis(one_thread):
    """The shipped weights on crops generated now, with a new seed, from photos it never trained on."""
    from apate_core.detect import create_detector, list_detectors
    from apate_core.detect.training.corpus import match_colour, sample_crop
    from apate_core.detect.training.decoders import resynthesise, train_decoder
    from apate_core.detect.training.evaluate import image_logits
    from apate_core.detect.training.network import shipped_weights_path
    from apate_core.detect.training.sources import load_photos
    from sklearn.metrics import roc_auc_score

    if not shipped_weights_path().is_file():
        pytest.skip("no shipped model in assets/models")
    assert "apate" in list_detectors()
    detector = create_detector("apate")
    assert detector.card.get("temperature") and detector.card["metrics"]["heldout"]["roc_auc"] > 0.5
    photos = [p for p in load_photos("test") if not p.grey]
    rng = np.random.default_rng(12345)
    real, fake = [], []
    for family in ("nearest", "pixelshuffle"):  # one training family, the held-out one
        decoder = train_decoder(family, [p.image for p in photos], width=16, seed=777, steps=80, batch_size=8,
                                lr=3e-3).model
        for _ in range(8):
            crop = sample_crop(photos[int(rng.integers(len(photos)))].image, 96, rng)
            real.append(crop)
            fake.append(match_colour(resynthesise(decoder, crop), crop))
    logits = image_logits(detector, real + fake)
    auc = roc_auc_score([0] * len(real) + [1] * len(fake), logits)
    assert auc > 0.9, auc
    assert math.isfinite(float(logits.mean()))


def test_cli_family_names_match_decoders():
    from apate_core.commands.corpus import FAMILIES as CLI_FAMILIES
    from apate_core.detect.training.decoders import FAMILIES

    assert CLI_FAMILIES == FAMILIES
