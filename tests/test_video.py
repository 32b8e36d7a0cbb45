"""Video intake: probing, frame sampling and browser copies, on synthetic clips of every container and on real files.

The synthetic clips (tests/media_factory.py) draw their frame number into every frame, so each sampled frame's
pixels can be checked against its timestamp: clips run at 10 fps, so the frame at ``t`` shows number ``10 t``.
"""

from __future__ import annotations

import inspect
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import media_factory as mf
from apate_core.errors import Cancelled, CorruptMedia, MediaTooLarge, UnsupportedMedia
from apate_core.media.video import (
    browser_size,
    choose_strategy,
    count_samples,
    iter_frames,
    make_browser_copy,
    probe_video,
    sample_times,
)
from apate_core.progress import CancelToken

# (container, codec asked of the factory, codec name probe_video reports, audio codec probe_video reports)
CASES = [
    ("mp4", "h264", "h264", "aac"),
    ("mov", "h264", "h264", "aac"),
    ("mkv", "h264", "h264", "aac"),
    ("mkv", "vp9", "vp9", "aac"),
    ("webm", "vp8", "vp8", "opus"),
    ("webm", "vp9", "vp9", "opus"),
    ("avi", "mpeg4", "mpeg4", "pcm_s16le"),
    ("avi", "mjpeg", "mjpeg", "pcm_s16le"),
    ("flv", "flv1", "flv1", "aac"),
    ("flv", "h264", "h264", "aac"),
    ("gif", "gif", "gif", None),
]
CASE_IDS = [f"{c}-{v}" for c, v, _, _ in CASES]
FPS, SECONDS, SIZE = 10, 2, (160, 120)
N_FRAMES = FPS * SECONDS
ROTATIONS = {90: "top-right", 180: "bottom-right", 270: "bottom-left"}  # where the stored top-left marker ends up


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> dict:
    """Every factory clip, made once: keys are (container, codec) and ("rot", degrees)."""
    folder = tmp_path_factory.mktemp("clips")
    made = {}
    for container, codec, _, audio_codec in CASES:
        path = folder / f"{container}-{codec}.{container}"
        made[(container, codec)] = mf.make_video(path, container, codec, seconds=SECONDS, fps=FPS, size=SIZE,
                                                 audio=audio_codec is not None)
    for degrees in ROTATIONS:
        made[("rot", degrees)] = mf.make_video(folder / f"rot{degrees}.mp4", "mp4", rotation=degrees)
    return made


def _indices(frames, rotation: int = 0) -> list[int]:
    return [mf.read_frame_index(f.image, rotation) for f in frames]


def _assert_content_matches_time(frames, rotation: int = 0) -> None:
    for frame in frames:
        assert mf.read_frame_index(frame.image, rotation) == round(frame.time * FPS), f"frame at {frame.time} s"


def _top_level_boxes(path: Path) -> list[str]:
    """Names of the top-level ISO-BMFF boxes, in file order."""
    names, data, at = [], path.read_bytes(), 0
    while at + 8 <= len(data):
        size, name = struct.unpack(">I4s", data[at : at + 8])
        if size == 1:
            size = struct.unpack(">Q", data[at + 8 : at + 16])[0]
        elif size == 0:
            size = len(data) - at
        names.append(name.decode("latin-1"))
        at += size
    return names


# -- probe -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("container,codec,codec_name,audio_codec", CASES, ids=CASE_IDS)
def test_probe_every_container(clips, container, codec, codec_name, audio_codec):
    info = probe_video(clips[(container, codec)])
    assert (info.container, info.codec) == (container, codec_name)
    assert (info.width, info.height, info.rotation) == (*SIZE, 0)
    assert (info.display_width, info.display_height) == SIZE
    assert info.fps == pytest.approx(FPS)
    assert info.duration == pytest.approx(SECONDS, abs=0.05)
    assert info.frame_count == N_FRAMES
    assert info.has_audio is (audio_codec is not None)
    assert info.audio_codec == audio_codec
    if audio_codec:
        assert info.audio_channels == 2 and info.audio_sample_rate in (44100, 48000)
    assert info.keyframe_interval and 0 < info.keyframe_interval <= SECONDS
    assert info.pixel_format
    assert info.is_animated


def test_probe_reads_tags(clips):
    tags = probe_video(clips[("mp4", "h264")]).tags
    assert tags["major_brand"] == "isom" and tags["encoder"].startswith("Lavf")
    assert tags["handler_name"] == "VideoHandler"  # from the video stream
    assert probe_video(clips[("mov", "h264")]).tags["major_brand"] == "qt  "


@pytest.mark.parametrize("degrees", sorted(ROTATIONS))
def test_probe_reads_rotation(clips, degrees):
    info = probe_video(clips[("rot", degrees)])
    assert info.rotation == degrees
    assert (info.width, info.height) == SIZE
    expected = SIZE[::-1] if degrees in (90, 270) else SIZE
    assert (info.display_width, info.display_height) == expected


def test_keyframe_interval_is_measured(tmp_path):
    info = probe_video(mf.make_video(tmp_path / "gop5.mp4", "mp4", seconds=3, gop=5))
    assert info.keyframe_interval == pytest.approx(0.5)


def test_audio_only_is_unsupported(tmp_path):
    with pytest.raises(UnsupportedMedia, match="only audio"):
        probe_video(mf.make_audio_only(tmp_path / "tone.m4a"))


def test_empty_file_is_corrupt(tmp_path):
    with pytest.raises(CorruptMedia, match="empty"):
        probe_video(mf.write_empty(tmp_path / "empty.mp4"))


def test_text_file_is_unsupported(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 50)
    with pytest.raises(UnsupportedMedia, match="not a recognised video"):
        probe_video(path)


def test_still_image_is_unsupported(tmp_path):
    from PIL import Image

    path = tmp_path / "photo.png"
    Image.fromarray(mf.frame_image(3)).save(path)
    with pytest.raises(UnsupportedMedia):
        probe_video(path)


def test_mp4_cut_before_its_index_is_corrupt(clips, tmp_path):
    # PyAV writes the moov index at the end, so half an mp4 has no index at all
    with pytest.raises(CorruptMedia, match="MP4/MOV"):
        probe_video(mf.truncate(clips[("mp4", "h264")], 0.5, tmp_path / "half.mp4"))


@pytest.mark.parametrize("container,codec", [(c, v) for c, v, _, _ in CASES], ids=CASE_IDS)
def test_a_few_bytes_are_corrupt(clips, tmp_path, container, codec):
    """The first 64 bytes: the container's signature and nothing to decode."""
    with pytest.raises(CorruptMedia):
        probe_video(mf.truncate(clips[(container, codec)], 0.0, tmp_path / f"stub.{container}", keep_bytes=64))


@pytest.mark.parametrize("container,codec", [(c, v) for c, v, _, _ in CASES], ids=CASE_IDS)
def test_truncated_file_ends_cleanly(clips, tmp_path, container, codec):
    """A cut file either refuses as corrupt or streams the frames it still has, without crashing."""
    path = mf.truncate(clips[(container, codec)], 0.6, tmp_path / f"cut.{container}")
    try:
        info = probe_video(path)
    except CorruptMedia:
        return
    for strategy in ("sequential", "seek"):
        frames = list(iter_frames(path, 5, strategy=strategy, info=info))
        assert 1 <= len(frames) <= 10
        _assert_content_matches_time(frames)
    copy = probe_video(make_browser_copy(path, tmp_path / f"cut-{container}.mp4", info=info))
    assert copy.codec == "h264" and copy.frame_count >= 1


def test_max_seconds_refuses_long_video(clips):
    with pytest.raises(MediaTooLarge, match="2.0 s long") as refused:
        probe_video(clips[("mkv", "h264")], max_seconds=1.5)
    assert refused.value.limit.startswith("1.5 s")
    assert probe_video(clips[("mkv", "h264")], max_seconds=10).duration == pytest.approx(2, abs=0.05)


def test_containers_filter(clips):
    with pytest.raises(UnsupportedMedia, match="FLV video is not accepted"):
        probe_video(clips[("flv", "flv1")], containers=("mp4", "webm"))


# -- sampling --------------------------------------------------------------------------------------------------


def test_sample_times():
    assert sample_times(2.0, 1) == [0.0, 1.0]
    assert sample_times(2.0, 5) == pytest.approx([k / 5 for k in range(10)])
    assert sample_times(10.0, 1, start=2.5, end=5) == [2.5, 3.5, 4.5]
    assert sample_times(0.82, 1) == [0.0]
    assert sample_times(0.0, 1) == [0.0]  # the first frame always counts
    assert sample_times(3.0, 1, start=3.0) == []
    assert count_samples(3600.0, 30) == 108_000
    assert count_samples(2.0, 3) == len(sample_times(2.0, 3)) == 6


@pytest.mark.parametrize("fps", [1, 5, 3, 25])
@pytest.mark.parametrize("key", [("mp4", "h264"), ("webm", "vp9"), ("avi", "mpeg4"), ("flv", "h264"), ("gif", "gif")],
                         ids=lambda k: "-".join(k))
def test_frames_match_targets_and_content(clips, key, fps):
    frames = list(iter_frames(clips[key], fps))
    targets = sample_times(SECONDS, fps)
    for frame in frames:
        assert frame.image.shape == (SIZE[1], SIZE[0], 3) and frame.image.dtype == np.uint8
        # the first frame at or after its target: the 10 fps grid point at or after t_k
        assert frame.time == pytest.approx(np.ceil(targets[frame.index] * FPS - 1e-6) / FPS, abs=1e-3)
    _assert_content_matches_time(frames)
    expected = N_FRAMES if fps > FPS else len(targets)  # faster than the video: each frame once
    assert len(frames) == expected
    assert len({f.time for f in frames}) == len(frames)


@pytest.mark.parametrize("container,codec", [(c, v) for c, v, _, _ in CASES], ids=CASE_IDS)
def test_sequential_and_seek_yield_identical_frames(clips, container, codec):
    for fps in (1, 3, 5):
        for start, end in ((0.0, None), (0.35, 1.55)):
            runs = [list(iter_frames(clips[(container, codec)], fps, start=start, end=end, strategy=s))
                    for s in ("sequential", "seek")]
            assert [(f.index, f.time) for f in runs[0]] == [(f.index, f.time) for f in runs[1]]
            assert all(np.array_equal(a.image, b.image) for a, b in zip(*runs))
            assert runs[0] and runs[0][0].time >= start - 1e-6
            _assert_content_matches_time(runs[1])


def test_start_and_end(clips):
    frames = list(iter_frames(clips[("mkv", "h264")], 2, start=0.5, end=1.6))
    assert [f.time for f in frames] == pytest.approx([0.5, 1.0, 1.5])
    assert [f.index for f in frames] == [0, 1, 2]


def test_auto_strategy_choice(clips, tmp_path):
    dense = probe_video(mf.make_video(tmp_path / "gop2.mp4", "mp4", seconds=3, gop=2))  # keyframe every 0.2 s
    sparse = probe_video(clips[("mp4", "h264")])  # one keyframe
    assert choose_strategy(dense, fps=1) == "seek"
    assert choose_strategy(dense, fps=5) == "seek"  # keyframes every sample: one frame's decode per sample
    assert choose_strategy(dense, fps=10) == "sequential"  # keyframes two samples apart: break-even, decode in order
    assert choose_strategy(sparse, fps=1) == "sequential"
    assert choose_strategy(probe_video(clips[("gif", "gif")]), fps=0.1) == "sequential"
    frames = list(iter_frames(tmp_path / "gop2.mp4", 1, info=dense))
    assert [f.time for f in frames] == [0.0, 1.0, 2.0]
    _assert_content_matches_time(frames)


@pytest.mark.parametrize("degrees", sorted(ROTATIONS))
def test_frames_come_out_upright(clips, degrees):
    frames = list(iter_frames(clips[("rot", degrees)], 5))
    upright = SIZE[::-1] if degrees in (90, 270) else SIZE
    for frame in frames:
        assert frame.image.shape[:2] == (upright[1], upright[0])
        assert mf.red_corner(frame.image) == ROTATIONS[degrees]
    _assert_content_matches_time(frames, rotation=degrees)


def test_max_side_downscales(clips):
    frames = list(iter_frames(clips[("rot", 90)], 5, max_side=80))
    assert frames[0].image.shape == (80, 60, 3)
    _assert_content_matches_time(frames, rotation=90)
    assert list(iter_frames(clips[("mp4", "h264")], 1, max_side=1000))[0].image.shape == (120, 160, 3)


def test_frames_stream_lazily_with_bounded_memory(tmp_path):
    path = mf.make_video(tmp_path / "long.mkv", "mkv", seconds=6, fps=10, size=(320, 240))
    calls = []
    frames = iter_frames(path, 10, progress=lambda f, m: calls.append(f))
    assert inspect.isgenerator(frames) and calls == []  # nothing decoded before the first next()
    first = next(frames)
    assert first.index == 0 and len(calls) == 1
    frame_bytes = first.image.nbytes
    del first
    tracemalloc.start()
    try:
        count = 0
        for frame in frames:
            count += 1
            del frame
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 59
    assert peak < 6 * frame_bytes, f"peak {peak} bytes for {count} frames of {frame_bytes} bytes"
    assert calls == sorted(calls) and calls[-1] == pytest.approx(1.0)


def test_cancel_stops_between_frames(clips):
    token = CancelToken()
    frames = iter_frames(clips[("mp4", "h264")], 5, cancel=token)
    next(frames)
    token.cancel()
    with pytest.raises(Cancelled):
        next(frames)


def test_bad_arguments(clips):
    with pytest.raises(ValueError):
        iter_frames(clips[("mp4", "h264")], 0)
    with pytest.raises(ValueError):
        iter_frames(clips[("mp4", "h264")], 1, start=1, end=0.5)
    with pytest.raises(ValueError):
        iter_frames(clips[("mp4", "h264")], 1, strategy="fast")


# -- browser copies --------------------------------------------------------------------------------------------


def _check_browser_copy(path: Path, has_audio: bool, max_height: int = 720):
    info = probe_video(path)
    assert (info.container, info.codec, info.pixel_format, info.rotation) == ("mp4", "h264", "yuv420p", 0)
    assert info.height <= max_height and info.width % 2 == 0 and info.height % 2 == 0
    boxes = _top_level_boxes(path)
    assert boxes.index("moov") < boxes.index("mdat"), f"not faststart: {boxes}"
    assert info.has_audio is has_audio
    if has_audio:
        assert (info.audio_codec, info.audio_channels, info.audio_sample_rate) == ("aac", 2, 48000)
    return info


@pytest.mark.parametrize("container,codec,codec_name,audio_codec", CASES, ids=CASE_IDS)
def test_browser_copy_of_every_container(clips, tmp_path, container, codec, codec_name, audio_codec):
    out = make_browser_copy(clips[(container, codec)], tmp_path / "copy.mp4")
    info = _check_browser_copy(out, audio_codec is not None)
    assert (info.width, info.height) == SIZE
    assert info.fps == pytest.approx(FPS) and info.frame_count == N_FRAMES
    assert info.duration == pytest.approx(SECONDS, abs=0.05)
    frames = list(iter_frames(out, 5))
    assert len(frames) == 10
    _assert_content_matches_time(frames)


@pytest.mark.parametrize("degrees", sorted(ROTATIONS))
def test_browser_copy_turns_pixels_upright(clips, tmp_path, degrees):
    out = make_browser_copy(clips[("rot", degrees)], tmp_path / "upright.mp4")
    info = _check_browser_copy(out, has_audio=False)
    upright = SIZE[::-1] if degrees in (90, 270) else SIZE
    assert (info.width, info.height) == upright
    frames = list(iter_frames(out, 5))
    assert all(mf.red_corner(f.image) == ROTATIONS[degrees] for f in frames)
    _assert_content_matches_time(frames, rotation=degrees)


def test_browser_copy_scales_and_reports_progress(clips, tmp_path):
    calls = []
    out = make_browser_copy(clips[("mkv", "vp9")], tmp_path / "small.mp4", max_height=100,
                            progress=lambda f, m: calls.append((f, m)))
    info = _check_browser_copy(out, has_audio=True, max_height=100)
    assert (info.width, info.height) == (134, 100)
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) > 2


def test_browser_copy_max_seconds(clips, tmp_path):
    info = probe_video(make_browser_copy(clips[("mp4", "h264")], tmp_path / "head.mp4", max_seconds=0.75))
    assert info.duration == pytest.approx(0.8, abs=0.06) and info.frame_count == 8


def test_browser_copy_cancel_leaves_nothing(clips, tmp_path):
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        make_browser_copy(clips[("mp4", "h264")], tmp_path / "never.mp4", cancel=token)
    assert list(tmp_path.iterdir()) == []


def test_browser_size():
    assert browser_size(1280, 720) == (1280, 720)
    assert browser_size(2750, 1834) == (1080, 720)
    assert browser_size(720, 1280) == (404, 720)
    assert browser_size(161, 121) == (160, 120)


# -- real files (APATE_TESTDATA) -------------------------------------------------------------------------------

@pytest.mark.testdata
def test_real_probes(testdata):
    cockatoo = probe_video(testdata / "real/cockatoo.mp4")
    assert (cockatoo.container, cockatoo.codec, cockatoo.width, cockatoo.height) == ("mp4", "h264", 1280, 720)
    assert cockatoo.fps == 20 and cockatoo.duration == pytest.approx(14) and cockatoo.frame_count == 280
    assert cockatoo.has_audio and cockatoo.audio_codec == "mp3" and cockatoo.pixel_format == "yuv444p"

    short = probe_video(testdata / "real/realshort.mp4")
    assert (short.width, short.height, short.frame_count) == (320, 240, 36)
    assert short.fps == pytest.approx(30, abs=0.1) and short.duration == pytest.approx(1.2, abs=0.01)
    assert short.tags["creation_time"].startswith("2014-11-05")

    gif = probe_video(testdata / "real/newtonscradle.gif")
    assert (gif.container, gif.codec, gif.width, gif.height) == ("gif", "gif", 200, 150)
    assert gif.frame_count == 36 and gif.is_animated and not gif.has_audio

    portrait = probe_video(testdata / "c2pa/video1.mp4")
    assert (portrait.width, portrait.height, portrait.rotation) == (720, 1280, 0)
    assert portrait.duration == pytest.approx(2) and portrait.audio_codec == "aac"

    mov = probe_video(testdata / "c2pa/C-recorded-as-mov.mov")
    assert (mov.container, mov.width, mov.height) == ("mov", 2750, 1834)
    assert mov.fps == pytest.approx(59.4, abs=0.1) and mov.duration == pytest.approx(5.2, abs=0.05)
    assert mov.tags["com.apple.quicktime.make"] == "Apple"
    assert mov.keyframe_interval == pytest.approx(0.48, abs=0.05)


@pytest.mark.testdata
def test_real_streaming_strategies_agree(testdata):
    path = testdata / "real/cockatoo.mp4"
    runs = [list(iter_frames(path, 1, max_side=320, strategy=s)) for s in ("sequential", "seek")]
    assert [f.time for f in runs[0]] == [float(t) for t in range(14)]
    assert [f.time for f in runs[1]] == [f.time for f in runs[0]]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(*runs))
    assert runs[0][0].image.shape == (180, 320, 3)


@pytest.mark.testdata
def test_real_streaming_other_files(testdata):
    short = list(iter_frames(testdata / "real/realshort.mp4", 5))
    assert [f.index for f in short] == list(range(6)) and short[0].image.shape == (240, 320, 3)
    gif = list(iter_frames(testdata / "real/newtonscradle.gif", 5))
    assert len(gif) == 5 and gif[0].image.shape == (150, 200, 3)
    portrait = list(iter_frames(testdata / "c2pa/video1.mp4", 2, max_side=256))
    assert len(portrait) == 4 and portrait[0].image.shape == (256, 144, 3)
    mov = testdata / "c2pa/C-recorded-as-mov.mov"
    info = probe_video(mov)
    assert choose_strategy(info, 1) == "seek"
    frames = list(iter_frames(mov, 1, end=2.5, max_side=512, info=info))
    assert [f.time for f in frames] == [0.0, 1.0, 2.0] and frames[0].image.shape == (341, 512, 3)


@pytest.mark.testdata
def test_real_browser_copies(testdata, tmp_path):
    cockatoo = _check_browser_copy(
        make_browser_copy(testdata / "real/cockatoo.mp4", tmp_path / "cockatoo.mp4", max_seconds=2), has_audio=True
    )
    assert (cockatoo.width, cockatoo.height, cockatoo.fps, cockatoo.frame_count) == (1280, 720, 20, 40)

    gif = _check_browser_copy(make_browser_copy(testdata / "real/newtonscradle.gif", tmp_path / "gif.mp4"), False)
    assert (gif.width, gif.height) == (200, 150) and gif.duration == pytest.approx(0.82, abs=0.05)

    portrait = _check_browser_copy(
        make_browser_copy(testdata / "c2pa/video1.mp4", tmp_path / "portrait.mp4", max_seconds=1), has_audio=True
    )
    assert (portrait.width, portrait.height) == (404, 720)

    mov = _check_browser_copy(
        make_browser_copy(testdata / "c2pa/C-recorded-as-mov.mov", tmp_path / "mov.mp4", max_seconds=0.5), False
    )
    assert (mov.width, mov.height) == (1080, 720) and mov.fps <= 60


# -- animated WebP (Pillow decodes it: FFmpeg has no animated-WebP decoder) -----------------------------------


def test_animated_webp_probes_streams_and_copies_like_a_clip(tmp_path):
    path = mf.make_animated_webp(tmp_path / "loop.webp", [1000 // FPS] * FPS, SIZE)
    info = probe_video(path)
    assert (info.container, info.codec, info.width, info.height, info.rotation) == ("webp", "webp", *SIZE, 0)
    assert info.frame_count == FPS and info.duration == pytest.approx(1.0) and info.fps == pytest.approx(FPS)
    assert not info.has_audio and info.tags == {"loop": "0"}
    frames = list(iter_frames(path, 5, info=info))
    assert [f.time for f in frames] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8]) and len(set(_indices(frames))) == 5
    _assert_content_matches_time(frames)
    _assert_content_matches_time(list(iter_frames(path, 2, start=0.5, max_side=80)))
    copy = _check_browser_copy(make_browser_copy(path, tmp_path / "copy.mp4"), has_audio=False)
    assert copy.frame_count == FPS and copy.duration == pytest.approx(1.0, abs=0.05)
    _assert_content_matches_time(list(iter_frames(tmp_path / "copy.mp4", 5)))


def test_animated_webp_frames_keep_their_own_durations(tmp_path):
    # 0 ms is shown as 100 ms, as browsers do
    path = mf.make_animated_webp(tmp_path / "hold.webp", [100, 1000, 0], SIZE)
    info = probe_video(path)
    assert info.duration == pytest.approx(1.2) and info.frame_count == 3
    frames = list(iter_frames(path, 1))
    assert [f.time for f in frames] == pytest.approx([0.0, 1.1]) and _indices(frames) == [0, 2]
    copy = tmp_path / "hold.mp4"
    make_browser_copy(path, copy)
    shown = list(iter_frames(copy, 5))  # 10 fps copy: frame 1 holds from 0.1 s to 1.1 s
    assert _indices(shown) == [0 if f.time < 0.1 else 1 if f.time < 1.1 else 2 for f in shown]


def test_still_filtered_and_damaged_webp_are_not_clips(tmp_path):
    from PIL import Image

    still = tmp_path / "still.webp"
    Image.fromarray(mf.frame_image(1)).save(still)
    with pytest.raises(UnsupportedMedia, match="still WebP"):
        probe_video(still)
    with pytest.raises(UnsupportedMedia, match="WEBP video is not accepted"):
        probe_video(mf.make_animated_webp(tmp_path / "a.webp", [100] * 3), containers=("mp4",))
    cut = mf.truncate(mf.make_animated_webp(tmp_path / "b.webp", [100] * 10), 0.6, tmp_path / "cut.webp")
    with pytest.raises(CorruptMedia):
        probe_video(cut)
