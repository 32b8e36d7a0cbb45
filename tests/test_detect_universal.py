"""The universal detector's recipe: data sources, processing, held-out evaluation, training end to end."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from apate_core.detect import backbones
from apate_core.detect.training import probe
from apate_core.detect.training.datasets import list_data_sources, load_data_source, read_manifest
from apate_core.detect.training.embeddings import EmbeddingSet, embed_rows, load_rgb
from apate_core.detect.training.processing import process
from apate_core.errors import InputRefused
from apate_core.settings import load_settings


def _set(X, y, family, source) -> EmbeddingSet:
    n = len(y)
    return EmbeddingSet(X=np.asarray(X, np.float32), y=np.asarray(y), family=np.asarray(family),
                        source=np.asarray(source), path=np.array([f"f{i}" for i in range(n)]),
                        view=np.zeros(n, int), steps=np.array(["none"] * n))


def test_source_holdout_exposes_a_probe_that_memorised_each_repository():
    """Each repository's label is written in a dimension of its own (a style shortcut), nothing is shared:
    fitted on everything the probe looks perfect, held out by source it is at chance."""
    rng = np.random.default_rng(0)
    X, y, fam, src = [], [], [], []
    for s in range(6):
        for label in (0, 1):
            for _ in range(20):
                v = rng.normal(0, 1, 16)
                v[s] += 4.0 if label else -4.0
                X.append(v), y.append(label), fam.append(f"fam{s}" if label else "camera"), src.append(f"repo{s}")
    E = _set(X, y, fam, src)
    in_sample = probe.fit_probe(E).logits(E.X)
    held_out = probe.source_holdout_logits(E)
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(E.y, in_sample) > 0.99
    assert roc_auc_score(E.y, held_out) < 0.7


def test_family_holdout_drops_the_family_and_its_repositories_real_files():
    rng = np.random.default_rng(1)
    n = 30
    X = rng.normal(0, 1, (4 * n, 8))
    y = np.r_[np.zeros(n), np.ones(n), np.zeros(n), np.ones(n)].astype(int)
    X[y == 1, 0] += 3.0  # a cue shared by every family: it must survive the holdout
    E = _set(X, y, ["camera"] * n + ["famA"] * n + ["camera"] * n + ["famB"] * n,
             ["r1"] * (2 * n) + ["r2"] * (2 * n))
    z = probe.family_holdout_logits(E)
    assert np.isnan(z[E.y == 0]).all() and not np.isnan(z[E.y == 1]).any()
    report = probe.holdout_report(E)
    fams = report["as_is"]["family_holdout"]["families"]
    assert set(fams) == {"famA", "famB"} and all(m["roc_auc"] > 0.9 for m in fams.values())


def test_group_weights_balance_classes_and_shrink_big_repositories():
    E = _set(np.zeros((13, 2)), [1] * 9 + [0] * 4, ["a"] * 8 + ["b"] + ["camera"] * 4, ["big"] * 8 + ["small"] * 5)
    w = probe.group_weights(E)
    assert w[E.y == 1].sum() == pytest.approx(w[E.y == 0].sum())
    assert w[0] < w[8]  # a file of the 8-strong repository counts less than the lone one


def test_processing_policy_is_label_blind_and_reproducible():
    image = (np.random.default_rng(2).random((300, 400, 3)) * 255).astype(np.uint8)
    a, steps_a = process(image, np.random.default_rng(5))
    b, steps_b = process(image, np.random.default_rng(5))
    assert steps_a == steps_b and np.array_equal(a, b) and a.dtype == np.uint8 and a.ndim == 3
    seen = " ".join(process(image, np.random.default_rng(s))[1] for s in range(60))
    assert all(codec in seen for codec in ("jpeg", "webp", "h264", "down", "grey"))


def test_manifest_rows_and_a_missing_folder(tmp_path):
    assert {"detect-data", "testdata-generated"} <= set(list_data_sources())
    with pytest.raises(InputRefused, match="MANIFEST.tsv"):
        read_manifest(tmp_path)
    with pytest.raises(InputRefused, match="APATE_DETECT_DATA"):
        load_data_source("detect-data", load_settings(environ={}))


def test_load_rgb_drops_metadata_and_alpha(tmp_path):
    rgba = np.zeros((40, 50, 4), np.uint8)
    rgba[..., 0] = 200
    path = tmp_path / "a.png"
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "Steps: 20, Sampler: Euler a, Model: sd_xl_base")  # an A1111 chunk
    Image.fromarray(rgba, "RGBA").save(path, pnginfo=info)
    pixels = load_rgb(path)
    assert pixels.shape == (40, 50, 3) and (pixels == 255).all()  # transparent -> white, text chunk gone


def _tiny_corpus(root):
    """Two repositories, each with real photos and 'generated' versions (heavily posterised and smoothed)."""
    import skimage.data

    photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(), skimage.data.rocket()]
    lines = ["file\tlabel\tgenerator_or_camera\tfamily\tsource_repo\tsource_path\tlicence_of_repo\tnote"]
    for r, repo in enumerate(("repoA", "repoB")):
        for i, photo in enumerate(photos[2 * r:2 * r + 2]):
            real = f"real/{repo}_{i}.jpg"
            fake = f"generated/{repo}_{i}.png"
            (root / "real").mkdir(parents=True, exist_ok=True)
            (root / "generated").mkdir(parents=True, exist_ok=True)
            Image.fromarray(photo).save(root / real, quality=90)
            Image.fromarray((photo // 64 * 64).astype(np.uint8)).resize((256, 256)).save(root / fake)
            lines.append(f"{real}\treal\tcamera\tcamera\t{repo}\tx\tMIT\t")
            lines.append(f"{fake}\tgenerated\ttoy\tfam{r}\t{repo}\tx\tMIT\t")
    (root / "MANIFEST.tsv").write_text("\n".join(lines) + "\n")


def test_recipe_end_to_end_on_a_tiny_corpus(tmp_path):
    if not backbones.local_path("clip_vit_b16").is_file():
        pytest.skip("CLIP backbone not installed; run `python -m apate_core.detect.backbones`")
    from apate_core.detect import create_detector
    from apate_core.detect.checkpoints import read_card
    from apate_core.detect.training.embeddings import detector_encoder
    from apate_core.detect.training.universal import UniversalOptions, evaluate_source, train_universal

    _tiny_corpus(tmp_path / "data")
    settings = load_settings(environ={}, detect_data=str(tmp_path / "data"))
    weights = train_universal(settings, tmp_path / "out" / "u.safetensors", UniversalOptions(sources=("detect-data",), views=2),
                              cache_dir=tmp_path / "cache")
    card = read_card(weights)
    assert card["architecture"] == "clip_probe" and card["backbone"]["sha256"].startswith("2d2da5e2")
    assert card["trained_on"]["images"] == 8 and set(card["heldout"]) >= {"as_is", "processed", "temperature"}
    assert card["temperature"] > 0
    detector = create_detector(str(weights))
    rows = load_data_source("detect-data", settings)
    E = embed_rows(rows, detector_encoder(detector), views=2, cache=tmp_path / "cache" / "detect-data-clip_probe.npz")
    assert len(E) == 16  # all from the cache, nothing embedded twice
    report = evaluate_source(detector, settings, "detect-data", cache_dir=tmp_path / "cache")
    assert report["overall"]["roc_auc"] > 0.9  # fitted on these very files: it must at least separate them
    assert set(report["families"]) == {"fam0", "fam1"}


def test_recipe_with_own_scale_crops_keeps_them_in_the_card_and_its_own_cache(tmp_path):
    if not backbones.local_path("clip_vit_b16").is_file():
        pytest.skip("CLIP backbone not installed; run `python -m apate_core.detect.backbones`")
    from apate_core.detect import create_detector
    from apate_core.detect.checkpoints import read_card
    from apate_core.detect.training.universal import UniversalOptions, evaluate_source, train_universal

    _tiny_corpus(tmp_path / "data")
    settings = load_settings(environ={}, detect_data=str(tmp_path / "data"))
    weights = train_universal(settings, tmp_path / "u.safetensors",
                              UniversalOptions(sources=("detect-data",), views=1, native_side=320),
                              cache_dir=tmp_path / "cache")
    card = read_card(weights)
    assert card["config"]["native_side"] == 320 and "own scale" in card["trained_on"]["summary"]
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["detect-data-clip_probe-native320.npz"]
    detector = create_detector(str(weights))
    assert detector.config.native_side == 320
    evaluate_source(detector, settings, "detect-data", cache_dir=tmp_path / "cache")  # reads the same crops' cache
    assert len(list((tmp_path / "cache").iterdir())) == 1


def test_aligned_fakes_are_trained_on_but_never_scored():
    rng = np.random.default_rng(3)
    n = 20
    X = rng.normal(0, 1, (5 * n, 8))
    y = np.r_[np.zeros(n), np.ones(n), np.zeros(n), np.ones(n), np.ones(n)].astype(int)
    X[y == 1, 0] += 3.0
    E = _set(X, y, ["camera"] * n + ["famA"] * n + ["camera"] * n + ["famB"] * n + ["TAEF2 (aligned)"] * n,
             ["r1"] * (2 * n) + ["r2"] * (2 * n) + ["apate/taef2"] * n)
    assert np.isnan(probe.source_holdout_logits(E)[-n:]).all()
    assert np.isnan(probe.family_holdout_logits(E)[-n:]).all()
    report = probe.holdout_report(E)
    assert report["as_is"]["source_holdout"]["overall"]["n_fake"] == 2 * n
    assert "TAEF2 (aligned)" not in report["as_is"]["family_holdout"]["families"]


def test_taef2_aligned_source_re_synthesises_real_photos_once(tmp_path):
    from apate_core.detect.training import datasets

    settings = load_settings(environ={}, detect_data=str(tmp_path / "data"), cache_dir=str(tmp_path / "cache"))
    if not (settings.taef2_path / "taef2_decoder.pth").is_file():
        pytest.skip(f"TAEF2 weights not found at {settings.taef2_path} (../shared/models/taef2)")
    import skimage.data

    root = tmp_path / "data"
    (root / "real").mkdir(parents=True)
    repo = datasets.ALIGNED_SOURCES[0]
    lines = ["file\tlabel\tgenerator_or_camera\tfamily\tsource_repo\tsource_path\tlicence_of_repo\tnote"]
    for i in range(datasets.ALIGNED_EVERY + 1):
        Image.fromarray(skimage.data.astronaut()[::4, ::4]).save(root / "real" / f"p{i}.jpg", quality=92)
        lines.append(f"real/p{i}.jpg\treal\tcamera\tcamera\t{repo}\tx\tMIT\t")
    (root / "MANIFEST.tsv").write_text("\n".join(lines) + "\n")
    rows = load_data_source("detect-data-taef2", settings)
    assert len(rows) == 2 and all(r.label == 1 and r.source.startswith("apate/") for r in rows)
    made = load_rgb(rows[0].path)
    original = load_rgb(root / "real" / "p0.jpg")
    assert made.shape == original.shape and not np.array_equal(made, original)
    psnr = 10 * np.log10(255.0 ** 2 / np.mean((made.astype(float) - original) ** 2))
    assert 20 < psnr < 45  # the same photo, re-rendered
    stamp = rows[0].path.stat().st_mtime_ns
    load_data_source("detect-data-taef2", settings)
    assert rows[0].path.stat().st_mtime_ns == stamp  # made once, then read from the cache


def test_per_source_table_shows_the_repository_that_breaks_a_family():
    """One family from two repositories: the probe catches one repository's files and not the other's, and the
    per-source table (in the card) says which, where the family's row only shows the average."""
    from apate_core.detect.training.universal import report_tables

    rng = np.random.default_rng(2)
    n = 40
    X = rng.normal(0, 1, (6 * n, 8))
    y = np.r_[np.zeros(2 * n), np.ones(n), np.ones(n), np.zeros(n), np.ones(n)].astype(int)
    X[2 * n:3 * n, 0] += 3.0  # the swaps of "clear" carry the cue the diffusion files have; those of "hard" do not
    X[5 * n:, 0] += 3.0
    source = np.array(["hard"] * n + ["cams"] * n + ["clear"] * n + ["hard"] * n + ["cams"] * (2 * n))
    family = np.array(["camera"] * (2 * n) + ["swap"] * (2 * n) + ["camera"] * n + ["diffusion"] * n)
    report = probe.holdout_report(_set(X, y, family, source), target_fpr=None)
    per_source = report["as_is"]["source_holdout"]["sources"]
    assert set(per_source) == {"cams", "clear", "hard"}
    assert per_source["clear"]["roc_auc"] > 0.85 > per_source["hard"]["roc_auc"] + 0.2
    assert per_source["clear"]["n_fake"] == per_source["hard"]["n_fake"] == n
    title, table = report_tables(report)[-1]
    assert title.startswith("per source repository") and "| clear |" in table and "| hard |" in table
