"""Identity cloak: alignment warp, the ε bound, shaping, a real face moved past the match threshold, the job."""

import numpy as np
import pytest
import torch
from skimage import data

from apate_core.errors import InputRefused
from apate_core.protect.convert import epsilon_steps, image_to_tensor, quantize_protected
from apate_core.protect.identity import align, job
from apate_core.protect.identity.cloak import IDENTITY_SHAPING, CloakConfig, cloak_faces
from apate_core.protect.identity.descriptor import MATCH_THRESHOLD, load_face_descriptor
from apate_core.protect.identity.verify import check_identity, unmatched_share
from apate_core.protect.job import ImageInput
from apate_core.protect.metrics import image_quality
from apate_core.protect.shaping import NO_SHAPING, Shaping
from apate_core.settings import load_settings
from apate_core.store import open_store

pytestmark = pytest.mark.usefixtures("one_thread")
QUICK = dict(iterations=12, eot_samples=1)


@pytest.fixture(scope="module")
def astronaut():
    return np.ascontiguousarray(data.astronaut())  # Eileen Collins, scikit-image's bundled portrait


@pytest.fixture(scope="module")
def net():
    return load_face_descriptor()


@pytest.fixture(scope="module")
def faces(astronaut):
    found = align.find_faces(astronaut)
    assert len(found) == 1 and found[0].prob > 0.99
    return found


def test_alignment_puts_the_landmarks_on_the_template(faces):
    face = faces[0]
    inverse = np.linalg.inv(np.vstack([face.matrix, [0, 0, 1]]))[:2]
    landed = np.c_[face.landmarks, np.ones(5)] @ inverse.T
    error = np.abs(landed - align.TEMPLATE)
    assert error[:2].max() < 4 and error.max() < 10  # the eyes land; nose and mouth as this face's shape allows


def test_warp_samples_the_photo_where_the_matrix_says():
    photo = torch.linspace(-1, 1, 3 * 300 * 400).reshape(1, 3, 300, 400)
    shift = np.array([[1.0, 0.0, 37.0], [0.0, 1.0, 21.0]])  # crop pixel (u, v) = photo pixel (u + 37, v + 21)
    crop = align.warp_faces(photo, [shift])
    assert crop.shape == (1, 3, 150, 150)
    assert torch.allclose(crop, photo[..., 21:171, 37:187], atol=1e-6)


def test_warp_is_differentiable_and_only_the_face_region_gets_gradient(astronaut, faces, net):
    photo = image_to_tensor(astronaut).requires_grad_(True)
    descriptor = net(align.to_descriptor_input(align.warp_faces(photo, [faces[0].matrix])))
    descriptor.norm().backward()
    grad = photo.grad.abs().sum(1)[0]
    x0, y0, x1, y1 = (int(v) for v in faces[0].box)
    assert grad[y0:y1, x0:x1].mean() > 0
    assert grad[:, 420:].sum() == 0  # far right of the photo: outside the crop's frame
    # a large face is reduced with an anti-aliased resize first: every pixel of the face gets gradient
    big = torch.nn.functional.interpolate(image_to_tensor(astronaut), scale_factor=3, mode="bilinear")
    big.requires_grad_(True)
    matrix = faces[0].matrix.copy()
    matrix[:, :2] *= 3
    matrix[:, 2] = matrix[:, 2] * 3 + 1
    net(align.to_descriptor_input(align.warp_faces(big, [matrix]))).norm().backward()
    region = big.grad.abs().sum(1)[0, y0 * 3 + 60:y1 * 3 - 60, x0 * 3 + 60:x1 * 3 - 60]
    assert (region > 0).float().mean() > 0.95


def test_cloak_moves_a_real_face_past_the_threshold_within_the_bound(astronaut, faces, net):
    eps = 6 / 127.5
    result = cloak_faces(net, image_to_tensor(astronaut), faces, CloakConfig(epsilon=eps, iterations=40))
    protected = quantize_protected(astronaut, result.protected, eps)
    delta = np.abs(protected.astype(int) - astronaut.astype(int))
    assert delta.max() <= epsilon_steps(eps) == 6  # the 8-bit file keeps the bound exactly
    checks = check_identity(net, astronaut, protected, faces)
    saved = [c for c in checks if c.condition == "as saved"][0]
    assert saved.found and saved.distance > MATCH_THRESHOLD and saved.baseline < 0.1
    assert unmatched_share(checks, "JPEG 75") == 1.0
    assert image_quality(astronaut, protected).ssim >= 0.95


def test_shaping_keeps_ssim_higher_at_the_same_budget(astronaut, faces, net):
    eps, x = 6 / 127.5, image_to_tensor(astronaut)
    ssim = {}
    for name, shaping in (("identity", IDENTITY_SHAPING), ("generic", Shaping()), ("plain", NO_SHAPING)):
        result = cloak_faces(net, x, faces, CloakConfig(epsilon=eps, shaping=shaping, **QUICK))
        ssim[name] = image_quality(astronaut, quantize_protected(astronaut, result.protected, eps)).ssim
    assert ssim["generic"] > ssim["plain"] + 0.01
    assert ssim["identity"] > ssim["plain"]  # faces are smooth skin: the identity floor is high (0.6)


def test_a_photo_without_faces_comes_back_unchanged_and_says_so(net):
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    image = job.protect_identity(ImageInput("noise.png", "0" * 64, noise), job.CloakParams(**QUICK), net)
    assert image.faces == [] and np.array_equal(image.protected, noise)
    assert image.metrics["faces"] == [] and image.unmatched() is None


@pytest.mark.parametrize("params, problem", [
    (job.CloakParams(epsilon=0.001), "less than one 8-bit step"),
    (job.CloakParams(epsilon=float("nan")), "Invalid epsilon"),
    (job.CloakParams(iterations=0), "iterations"),
    (job.CloakParams(output_format="gif"), "output format"),
])
def test_bad_parameters_are_refused_with_what_is_accepted(params, problem):
    with pytest.raises(InputRefused) as err:
        params.validate()
    assert problem in str(err.value) and err.value.accepted


def test_job_caches_results_and_reports_per_face_checks(astronaut, tmp_path, monkeypatch):
    monkeypatch.setenv("APATE_CACHE_DIR", str(tmp_path / "cache"))
    settings = load_settings()
    image = ImageInput("astronaut.png", "a" * 64, astronaut)
    params = job.CloakParams(epsilon=6 / 127.5, with_robustness=False, **QUICK)
    with open_store(settings) as store:
        first = job.run_identity_job([image], params, settings, store=store)
        second = job.run_identity_job([image], params, settings, store=store)
    a, b = first.images[0], second.images[0]
    assert not a.cached and b.cached and np.array_equal(a.protected, b.protected)
    assert [c.condition for c in a.checks] == ["as saved"] and len(a.faces) == 1
    assert b.metrics["checks"] == a.metrics["checks"]
    assert first.to_dict()["images"][0]["epsilon_steps"] == 6


@pytest.mark.parametrize("verified, climbs", [(0.0, False), (10.0, True)])
def test_automatic_budget_climbs_until_the_saved_file_is_verified(astronaut, net, monkeypatch, verified, climbs):
    """The float goal alone is not enough: the 8-bit file is re-detected (as saved and after JPEG 75) and the
    budget climbs while any face is still within VERIFIED_DISTANCE (here: never, or always)."""
    monkeypatch.setattr(job, "GOAL_DISTANCE", 0.0)  # isolate the verification step from the float goal
    monkeypatch.setattr(job, "SSIM_FLOOR", 0.0)
    monkeypatch.setattr(job, "VERIFIED_DISTANCE", verified)
    image = ImageInput("astronaut.png", "a" * 64, astronaut)
    cloaked = job.protect_identity(image, job.CloakParams(with_robustness=False, **QUICK), net)
    rungs = job.AUTO_BUDGETS_255
    assert cloaked.metrics["epsilon_steps"] == (rungs[-1] if climbs else rungs[0])
    assert cloaked.metrics["iterations_run"] > QUICK["iterations"] * (len(rungs) - 1 if climbs else 0)
    assert np.abs(cloaked.protected.astype(int) - astronaut.astype(int)).max() <= cloaked.metrics["epsilon_steps"]
