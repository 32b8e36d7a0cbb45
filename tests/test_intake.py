"""intake_file on videos: every accepted container, GIF and animated WebP policy, and each kind of refusal."""

import shutil

import pytest

from apate_core.errors import CorruptMedia, MediaTooLarge, UnsupportedMedia
from apate_core.media.intake import intake_file
from apate_core.settings import load_settings
from media_factory import frame_image, make_animated_webp, make_audio_only, make_video, truncate

CONTAINERS = ["mp4", "mov", "mkv", "webm", "avi", "flv"]


@pytest.mark.parametrize("container", CONTAINERS)
def test_every_accepted_container(tmp_path, settings, container):
    path = make_video(tmp_path / f"clip.{container}", container, seconds=1, fps=10, audio=container != "flv")
    media = intake_file(path, settings)
    assert (media.kind, media.format) == ("video", container)
    assert (media.video.width, media.video.height) == (160, 120)
    assert media.video.frame_count == 10 and abs(media.video.duration - 1.0) < 0.15


@pytest.mark.parametrize("container", CONTAINERS)
def test_a_container_left_out_of_the_setting_is_refused(tmp_path, container):
    path = make_video(tmp_path / f"clip.{container}", container, seconds=1)
    others = tuple(c for c in CONTAINERS if c != container)
    with pytest.raises(UnsupportedMedia) as info:
        intake_file(path, load_settings({}, video_containers=others))
    assert container.upper() in str(info.value) and "Accepted:" in str(info.value)


def test_mislabelled_video_is_judged_by_content(tmp_path, settings):
    path = make_video(tmp_path / "clip.mkv", "mkv", seconds=1)
    disguised = tmp_path / "portrait.jpg"
    shutil.copy(path, disguised)
    media = intake_file(disguised, settings)
    assert (media.kind, media.format, media.name) == ("video", "mkv", "portrait.jpg")


def test_animated_gif_is_a_video_unless_refused(tmp_path, settings):
    path = make_video(tmp_path / "loop.gif", "gif", seconds=1, fps=5)
    media = intake_file(path, settings)
    assert (media.kind, media.format) == ("video", "gif") and media.video.frame_count == 5
    with pytest.raises(UnsupportedMedia, match="APATE_ANIMATED_GIF=refuse"):
        intake_file(path, load_settings({}, animated_gif="refuse"))


def test_animated_webp_is_a_video_unless_refused_and_a_still_webp_an_image(tmp_path, settings):
    from PIL import Image

    path = make_animated_webp(tmp_path / "loop.webp", [200] * 5)
    media = intake_file(path, settings)
    assert (media.kind, media.format) == ("video", "webp") and media.image is None
    assert media.video.frame_count == 5 and media.video.duration == pytest.approx(1.0)
    with pytest.raises(UnsupportedMedia, match="APATE_ANIMATED_GIF=refuse"):
        intake_file(path, load_settings({}, animated_gif="refuse"))
    with pytest.raises(MediaTooLarge):
        intake_file(path, load_settings({}, max_image_pixels=100 * 100))  # the canvas, checked before decoding
    still = tmp_path / "still.webp"
    Image.fromarray(frame_image(2)).save(still)
    for policy in ("video", "refuse"):
        media = intake_file(still, load_settings({}, animated_gif=policy))
        assert (media.kind, media.format, media.image.width) == ("image", "webp", 160)


def test_audio_only_is_refused(tmp_path, settings):
    path = make_audio_only(tmp_path / "voice.mp4")
    with pytest.raises(UnsupportedMedia) as info:
        intake_file(path, settings)
    assert "audio" in str(info.value).lower()


def test_empty_and_truncated_videos(tmp_path, settings):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(CorruptMedia, match="empty"):
        intake_file(empty, settings)
    whole = make_video(tmp_path / "whole.mp4", "mp4", seconds=2)
    cut = truncate(whole, 0.4, tmp_path / "cut.mp4")  # the index (moov) is at the end: nothing decodable
    with pytest.raises(CorruptMedia):
        intake_file(cut, settings)


def test_oversized_and_overlong_videos(tmp_path):
    path = make_video(tmp_path / "clip.mp4", "mp4", seconds=2, size=(320, 240))
    with pytest.raises(MediaTooLarge) as info:
        intake_file(path, load_settings({}, max_video_mb=0.001))
    assert "APATE_MAX_VIDEO_MB" in str(info.value)
    with pytest.raises(MediaTooLarge):
        intake_file(path, load_settings({}, max_video_seconds=1.0))


def test_real_videos(testdata, settings):
    cockatoo = intake_file(testdata / "real" / "cockatoo.mp4", settings)
    assert (cockatoo.format, cockatoo.video.width, cockatoo.video.height) == ("mp4", 1280, 720)
    assert cockatoo.video.frame_count == 280 and round(cockatoo.video.fps) == 20
    mov = intake_file(testdata / "c2pa" / "C-recorded-as-mov.mov", settings)
    assert mov.format == "mov" and (mov.video.width, mov.video.height) == (2750, 1834)
    gif = intake_file(testdata / "real" / "newtonscradle.gif", settings)
    assert gif.kind == "video" and gif.format == "gif"


def test_video_frames_over_the_pixel_cap_are_refused(tmp_path):
    path = make_video(tmp_path / "wide.mp4", "mp4", seconds=0.5, size=(640, 480))
    with pytest.raises(MediaTooLarge) as info:
        intake_file(path, load_settings({}, max_image_pixels=640 * 480 - 1))
    assert "640x480" in str(info.value)
