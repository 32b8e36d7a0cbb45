import re
from pathlib import Path

import pytest

from apate_core.errors import ApateError
from apate_core.settings import Settings, describe, load_settings

README = Path(__file__).resolve().parent.parent / "README.md"


def test_defaults_match_the_product_limits():
    s = load_settings({})
    assert s.max_video_mb == 200 and s.max_video_bytes == 200 * 1024 * 1024
    assert s.max_image_mb == 10 and s.max_image_side == 2048
    assert s.video_containers == ("mp4", "mov", "mkv", "webm", "avi", "flv")
    assert s.image_formats == ("jpeg", "png", "webp")
    assert s.sample_fps == 1.0 and s.device == "auto" and s.max_batch == 10


def test_environment_overrides_are_typed():
    s = load_settings({"APATE_MAX_VIDEO_MB": "50", "APATE_IMAGE_FORMATS": "PNG, jpeg", "APATE_MAX_BATCH": "3"})
    assert s.max_video_mb == 50.0 and s.image_formats == ("png", "jpeg") and s.max_batch == 3


@pytest.mark.parametrize("env", [{"APATE_MAX_BATCH": "many"}, {"APATE_DEVICE": "tpu"}, {"APATE_ANIMATED_GIF": "x"}])
def test_bad_values_say_what_is_accepted(env):
    with pytest.raises(ApateError) as info:
        load_settings(env)
    assert next(iter(env)) in str(info.value)


def test_cpu_device_resolves_without_cuda():
    assert load_settings({"APATE_DEVICE": "cpu"}).resolved_device() == "cpu"
    assert load_settings({}).resolved_device() in ("cpu", "cuda")


def test_readme_lists_every_setting_with_its_default():
    text = README.read_text()
    for variable, default, _doc in describe():
        row = re.search(rf"^\|\s*`{variable}`\s*\|\s*`?([^|`]*)`?\s*\|", text, re.MULTILINE)
        assert row, f"{variable} missing from the README settings table"
        assert row.group(1).strip() == default, f"README default for {variable} is {row.group(1)!r}, not {default!r}"
    assert len(describe()) == len(Settings.__dataclass_fields__)
