"""Live frame processor on synthetic frames: scores, overlays, dropping under load, smoothing, lifecycle."""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile
from types import SimpleNamespace

import numpy as np
import pytest
import skimage.data

from apate_core.detect import compute_cam, create_detector
from apate_core.errors import ApateError
from apate_core.live import (
    FrameResult, LiveOptions, LiveProcessor, annotate, ema_alpha, fit_within, gallery_zip, score_colour,
)
from apate_core.live.overlay import FAKE_RGB, REAL_RGB
from apate_core.live.processor import analyse_frame, score_and_cam


class FakeDetector:
    """Stands in for a Detector: a fixed score after a fixed delay, under its lock like the real one."""

    def __init__(self, score: float = 0.7, delay: float = 0.0):
        self.score, self.delay = score, delay
        self.lock = threading.RLock()
        self.calls = 0
        self.name = "fake"
        self.config = SimpleNamespace(resize="resize")

    def predict_proba(self, images, batch_size: int = 16):
        with self.lock:
            time.sleep(self.delay)
            self.calls += 1
            return np.full(len(images), self.score, dtype=np.float32)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _frame(width: int = 640, height: int = 480, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)


def _wait(predicate, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError("condition not reached in time")


@pytest.fixture(scope="module")
def tiny():
    """A real (untrained) ResNet-18 at a small input size: real scores and heatmaps, quickly."""
    return create_detector("resnet18", input_size=64)


# ---- pure helpers ---------------------------------------------------------------------------------


def test_colour_moves_from_real_green_to_generated_red():
    assert score_colour(0.0) == REAL_RGB
    assert score_colour(1.0) == FAKE_RGB
    reds = [score_colour(s)[0] for s in np.linspace(0, 0.5, 6)]
    greens = [score_colour(s)[1] for s in np.linspace(0.5, 1, 6)]
    assert reds == sorted(reds) and greens == sorted(greens, reverse=True)
    assert score_colour(None) == (128, 128, 128)


def test_fit_within_downscales_keeping_aspect_and_never_upscales():
    assert fit_within(_frame(640, 480), (320, 240)).shape == (240, 320, 3)
    assert fit_within(_frame(1280, 720), (320, 240)).shape == (180, 320, 3)
    small = _frame(200, 100)
    assert fit_within(small, (320, 240)) is small


def test_ema_weight_is_one_half_after_one_half_life():
    assert ema_alpha(1.0, 1.0) == pytest.approx(0.5)
    assert ema_alpha(2.0, 1.0) == pytest.approx(0.75)
    assert ema_alpha(0.0, 1.0) == 0.0


# ---- scores and heatmaps ------------------------------------------------------------------------------


def test_frame_score_is_the_detectors_score_of_the_downscaled_frame(tiny):
    frame = _frame(640, 480, seed=1)
    result = LiveProcessor(tiny, LiveOptions(size=(320, 240))).analyse(frame)
    assert result.shape == (240, 320)
    assert result.score == pytest.approx(float(tiny.predict_proba([fit_within(frame, (320, 240))])[0]), abs=1e-6)
    assert result.heatmap is None and result.faces == ()


def test_one_pass_score_and_heatmap_match_the_engine(tiny):
    frames = [_frame(160, 120, seed=2), _frame(160, 120, seed=3)]
    probs, maps = score_and_cam(tiny, frames)
    np.testing.assert_allclose(probs, tiny.predict_proba(frames), atol=1e-5)
    np.testing.assert_allclose(np.stack(maps), compute_cam(tiny, frames), atol=1e-5)
    assert all(p.requires_grad for p in tiny.module.parameters())  # restored after the pass


def test_heatmap_option_gives_a_map_at_the_processed_size(tiny):
    result = LiveProcessor(tiny, LiveOptions(heatmap=True)).analyse(_frame(640, 480, seed=4))
    assert result.heatmap.shape == (240, 320) and result.heatmap.dtype == np.float32
    assert 0.0 <= result.heatmap.min() and result.heatmap.max() <= 1.0
    assert result.heat_rects == ((0, 0, 320, 240),)


def test_face_mode_scores_each_face_and_maps_only_faces(tiny):
    astronaut = skimage.data.astronaut()  # one face, nose at (223, 113) of 512x512
    score, faces, heat, rects = analyse_frame(tiny, fit_within(astronaut, (320, 240)), face_mode=True, heatmap=True)
    assert len(faces) >= 1 and score == max(f.score for f in faces)
    x, y, w, h = faces[0].box
    assert x <= 223 * 240 / 512 < x + w and y <= 113 * 240 / 512 < y + h
    outside = np.ones_like(heat, dtype=bool)
    for x0, y0, x1, y1 in rects:
        outside[y0:y1, x0:x1] = False
    assert heat[outside].max() == 0.0


def test_face_mode_without_a_face_has_no_score():
    detector = FakeDetector()
    result = LiveProcessor(detector, LiveOptions(face_mode=True)).analyse(np.full((240, 320, 3), 127, np.uint8))
    assert result.score is None and result.faces == () and detector.calls == 0


# ---- overlays -------------------------------------------------------------------------------------------


def _result(score, **kw) -> FrameResult:
    base = dict(index=0, captured=0.0, done=0.1, wall=time.time(), score=score, smoothed=score, faces=(),
                shape=(240, 320), face_mode=False, model="fake")
    return FrameResult(**{**base, **kw})


def test_overlay_draws_a_border_in_the_score_colour_and_leaves_the_input_alone():
    frame = np.zeros((480, 640, 3), np.uint8)
    out = annotate(frame, _result(0.95))
    assert frame.max() == 0 and out.shape == frame.shape
    assert tuple(out[478, 320]) == score_colour(0.95)  # bottom border, away from the label
    assert tuple(annotate(frame, _result(0.05))[478, 320]) == score_colour(0.05)
    assert annotate(frame, None)[:40, :200].max() > 0  # "warming up" label


def test_overlay_blends_the_heatmap_and_scales_face_boxes():
    frame = np.full((480, 640, 3), 100, np.uint8)
    heat = np.ones((240, 320), np.float32)
    out = annotate(frame, _result(0.5, heatmap=heat, heat_rects=((0, 0, 320, 240),)), opacity=0.5)
    assert abs(out[300, 300].astype(int) - 100).max() > 20  # centre tinted
    face = _result(0.9, face_mode=True, faces=(SimpleNamespace(box=(100, 100, 50, 50), score=0.9),))
    out = annotate(frame, face)
    assert tuple(out[250, 200]) == score_colour(0.9)  # left edge of the box, at twice the processed size
    assert tuple(out[250, 250]) == (100, 100, 100)  # inside the box: untouched


# ---- the worker: dropping, rate, smoothing, lifecycle ---------------------------------------------------


def test_slow_inference_drops_frames_and_never_blocks_the_callback():
    detector = FakeDetector(delay=0.15)
    processor = LiveProcessor(detector, LiveOptions(target_fps=0))
    frame = _frame(320, 240)
    worst = 0.0
    for _ in range(60):  # a 60 fps camera for one second
        start = time.perf_counter()
        out = processor.process(frame)
        worst = max(worst, time.perf_counter() - start)
        assert out.shape == frame.shape
        time.sleep(1 / 60)
    stats = processor.stats()
    processor.stop()
    assert worst < 0.1  # the callback never waited for a 150 ms inference
    assert stats.received == 60
    assert 1 <= stats.processed <= 12
    assert stats.dropped >= 60 - stats.processed - 2  # at most one frame waiting + one in flight
    assert processor._mailbox is None


def test_target_rate_limits_how_often_the_model_runs():
    detector = FakeDetector()
    processor = LiveProcessor(detector, LiveOptions(target_fps=5))
    frame = _frame(160, 120)
    end = time.monotonic() + 1.2
    while time.monotonic() < end:
        processor.process(frame)
        time.sleep(1 / 50)
    processor.stop()
    assert 4 <= detector.calls <= 8


def test_smoothed_score_is_a_time_based_ema():
    clock = FakeClock()
    processor = LiveProcessor(FakeDetector(), LiveOptions(half_life_s=1.0), clock=clock)
    for score in (0.0, 0.0):
        processor._publish(_result(score, done=clock.now))
        clock.now += 0.5
    clock.now += 0.5  # one half-life after the last 0.0
    published = processor._publish(_result(1.0, done=clock.now))
    assert published.smoothed == pytest.approx(0.5)
    assert processor.stats().smoothed == pytest.approx(0.5)
    none = processor._publish(_result(None, done=clock.now + 1))  # no face: smoothed score unchanged
    assert none.smoothed == pytest.approx(0.5)


def test_timeline_keeps_the_last_window_and_stats_count_rates():
    clock = FakeClock()
    processor = LiveProcessor(FakeDetector(), window_s=60.0, clock=clock)
    for i in range(100):  # 100 s at 1 result per second
        processor._publish(_result(0.2, done=clock.now, captured=clock.now - 0.05, index=i,
                                   frame=np.zeros((240, 320, 3), np.uint8), heatmap=np.zeros((240, 320), np.float32)))
        clock.now += 1.0
    points = processor.timeline()
    assert 59 <= len(points) <= 61 and all(-60.0 <= p["t"] <= 0 for p in points)
    stats = processor.stats()
    assert stats.points == len(points)
    assert all(r.frame is None and r.heatmap is None for r in processor._history)  # bounded memory
    assert stats.fps_processed == pytest.approx(1.0, abs=0.3)
    assert stats.latency_ms == pytest.approx(50.0)


def test_results_reach_the_page_through_the_buffer_while_streaming(tiny):
    processor = LiveProcessor(tiny, LiveOptions(target_fps=0))
    frame = _frame(320, 240, seed=5)
    deadline = time.monotonic() + 30
    while processor.stats().processed < 2 and time.monotonic() < deadline:
        out = processor.process(frame)
        time.sleep(0.02)
    stats = processor.stats()
    processor.stop()
    assert stats.processed >= 2 and stats.fps_processed > 0 and stats.latency_ms > 0
    assert stats.smoothed == pytest.approx(float(tiny.predict_proba([frame])[0]), abs=1e-5)
    assert not np.array_equal(out, frame)  # the result is drawn on the returned frame


def test_stop_releases_the_worker_and_a_new_stream_starts_again():
    detector = FakeDetector(delay=0.01)
    processor = LiveProcessor(detector, LiveOptions(target_fps=0))
    processor.process(_frame(160, 120))
    _wait(lambda: processor.stats().processed >= 1)
    thread = processor._thread
    processor.stop()
    assert not thread.is_alive() and not processor.running and processor._mailbox is None
    assert processor.latest().frame is None  # frames released
    processor.process(_frame(160, 120))
    _wait(lambda: processor.stats().processed >= 2)
    assert processor.running and processor._thread is not thread
    processor.stop()


def test_worker_exits_by_itself_when_frames_stop():
    processor = LiveProcessor(FakeDetector(), idle_timeout_s=0.2)
    processor.process(_frame(160, 120))
    _wait(lambda: processor.stats().processed >= 1)
    _wait(lambda: not processor.running, seconds=5)


def test_a_failing_frame_is_reported_and_the_stream_goes_on():
    detector = FakeDetector()
    processor = LiveProcessor(detector, LiveOptions(target_fps=0))
    detector.predict_proba = lambda images, batch_size=16: (_ for _ in ()).throw(RuntimeError("boom"))
    processor.process(_frame(160, 120))
    _wait(lambda: processor.stats().last_error != "")
    assert "boom" in processor.stats().last_error and processor.running
    del detector.predict_proba  # back to the class method
    _wait(lambda: (processor.process(_frame(160, 120)) is not None) and processor.stats().processed >= 1)
    processor.stop()


# ---- snapshots ---------------------------------------------------------------------------------------------


def test_snapshot_freezes_the_frame_with_its_heatmap_and_downloads_as_png_and_json(tiny):
    processor = LiveProcessor(tiny, LiveOptions(heatmap=False))
    assert processor.snapshot() is None  # nothing analysed yet
    processor._publish(processor.analyse(_frame(640, 480, seed=6)))
    snap = processor.snapshot()
    assert snap.result.heatmap is not None  # computed for the snapshot though the live heatmap is off
    assert snap.image.shape == (240, 320, 3) and not np.array_equal(snap.image, snap.frame)
    processor._publish(processor.analyse(_frame(640, 480, seed=7)))
    processor.snapshot()
    data = processor.gallery_zip()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = set(archive.namelist())
        assert {"snapshot_01.png", "snapshot_01_frame.png", "snapshot_02.png", "snapshots.json"} <= names
        assert archive.read("snapshot_01.png")[:8] == b"\x89PNG\r\n\x1a\n"
        meta = json.loads(archive.read("snapshots.json"))
    assert [round(s["score"], 4) for s in meta["snapshots"]] == [round(s.result.score, 4) for s in processor.gallery()]
    assert meta["snapshots"][0]["time_utc"].endswith("+00:00") and "half-life" in meta["smoothing"]
    assert len(meta["timeline_last_minute"]) == 2
    processor.clear_gallery()
    assert processor.gallery() == [] and zipfile.ZipFile(io.BytesIO(gallery_zip([]))).namelist() == ["snapshots.json"]


# ---- WebRTC configuration: nothing contacted by default ------------------------------------------------------


def test_ice_servers_default_to_none_and_no_public_stun_is_added(settings):
    from streamlit_webrtc.component import _resolve_server_rtc_configuration, enhance_frontend_rtc_configuration

    from app.live_ui import rtc_configuration

    config = rtc_configuration(settings)
    assert config == {"iceServers": []}
    assert _resolve_server_rtc_configuration(config).iceServers == []  # aiortc: no Google STUN default either
    assert enhance_frontend_rtc_configuration(config) == {"iceServers": []}  # the browser gets none either


def test_ice_servers_setting_names_a_turn_server(settings):
    from apate_core.settings import load_settings

    from app.live_ui import ice_servers

    turn = {"urls": "turn:turn.example.org:3478", "username": "u", "credential": "p"}
    for raw in (json.dumps([turn]), json.dumps(turn), json.dumps({"iceServers": [turn]})):
        assert ice_servers(load_settings({"APATE_ICE_SERVERS": raw})) == [turn]
    for bad in ("not json", '[{"username": "x"}]', "42"):
        with pytest.raises(ApateError):
            ice_servers(load_settings({"APATE_ICE_SERVERS": bad}))


# ---- the page, headless -------------------------------------------------------------------------------------


def _live_page(monkeypatch, tmp_path, calls=None, **env):
    """Run pages/live.py under AppTest; webrtc_streamer (which needs a real server runtime) is recorded."""
    import streamlit as st
    import streamlit_webrtc
    from streamlit.testing.v1 import AppTest

    from conftest import ROOT

    def fake_streamer(**kwargs):
        if calls is not None:
            calls.append(kwargs)
        return SimpleNamespace(state=SimpleNamespace(playing=False, signalling=False))

    monkeypatch.setattr(streamlit_webrtc, "webrtc_streamer", fake_streamer)
    monkeypatch.setenv("APATE_CACHE_DIR", str(tmp_path / "cache"))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    st.cache_resource.clear()
    return AppTest.from_file(str(ROOT / "pages" / "live.py"), default_timeout=120).run()


def test_live_page_renders_its_controls_and_panel(monkeypatch, tmp_path):
    from apate_core.live import default_detector_name

    calls = []
    at = _live_page(monkeypatch, tmp_path, calls)
    assert not at.exception
    streamer = calls[-1]
    assert streamer["rtc_configuration"] == {"iceServers": []} and streamer["async_processing"] is True
    assert callable(streamer["video_frame_callback"]) and callable(streamer["on_video_ended"])
    assert at.selectbox(key="live_model").value == default_detector_name()
    assert at.selectbox(key="live_size").value == "320x240" and at.slider(key="live_rate").value == 15
    assert {t.key for t in at.toggle} >= {"live_faces", "live_heatmap"}
    assert {m.label for m in at.metric} >= {"Smoothed P(fake)", "Processed fps", "Latency"}
    at.button(key="live_snapshot").click().run()
    assert "No analysed frame yet" in at.info[0].value


def test_live_page_shares_a_screen_or_tab_instead_of_the_camera(monkeypatch, tmp_path):
    from app.screen_share import STATE_KEY, ScreenShare

    calls = []
    at = _live_page(monkeypatch, tmp_path, calls)
    source = at.segmented_control(key="live_source")
    assert source.value == "Camera" and source.options == ["Camera", "Screen or tab"] and not source.disabled
    cameras = len(calls)
    at = source.set_value("Screen or tab").run()
    assert not at.exception and len(calls) == cameras  # the camera streamer is gone ...
    (component,) = at.get("component_instance")  # ... the share component is there, with the page's ICE servers
    args = json.loads(component.proto.json_args)
    assert component.proto.component_name.endswith("screen_share")
    assert args["ice_servers"] == [] and args["answer"] is None and args["constraints"]["audio"] is False
    assert any("· screen 0.0 fps" in c.value for c in at.caption)

    # a running share: its answer goes to the browser and the source cannot be switched until it stops
    stopped = []
    pc = SimpleNamespace(connectionState="connected")
    answer = {"id": "x", "sdp": "v=0", "type": "answer"}
    at.session_state[STATE_KEY] = ScreenShare(offer_id="x", answer=answer,
                                              worker=SimpleNamespace(pc=pc, stop=lambda: stopped.append(1)))
    at = at.run()
    assert json.loads(at.get("component_instance")[0].proto.json_args)["answer"] == answer
    assert at.segmented_control(key="live_source").disabled
    pc.connectionState = "closed"  # ICE failed, or the session left the page: the worker is released
    at = at.run()
    assert stopped == [1] and not at.segmented_control(key="live_source").disabled
    assert json.loads(at.get("component_instance")[0].proto.json_args)["answer"] is None


def test_live_page_refuses_a_bad_ice_setting_with_a_card(monkeypatch, tmp_path):
    at = _live_page(monkeypatch, tmp_path, APATE_ICE_SERVERS="{not json")
    assert not at.exception
    assert "APATE_ICE_SERVERS" in at.error[0].value


def test_video_callback_turns_webrtc_frames_around_without_waiting():
    import av

    from app.live_ui import ended_callback, video_callback

    processor = LiveProcessor(FakeDetector(delay=0.3), LiveOptions(target_fps=0))
    callback = video_callback(processor)
    frame = av.VideoFrame.from_ndarray(_frame(640, 480), format="rgb24").reformat(format="yuv420p")
    start = time.perf_counter()
    out = callback(frame)
    assert time.perf_counter() - start < 0.25  # did not wait for the 300 ms inference
    assert (out.width, out.height) == (640, 480)
    _wait(lambda: processor.stats().processed >= 1)
    ended_callback(processor)()  # the stream ended: the worker is told to go
    _wait(lambda: not processor.running, seconds=5)


# ---- screen or tab sharing: the component's offer, answered by streamlit-webrtc's worker ---------------------


@pytest.fixture
def rtc_loop():
    """An asyncio loop on its own thread, standing in for Streamlit's server loop that WebRtcWorker runs on."""
    import asyncio

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="test-rtc-loop", daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def _on(loop, coro, timeout: float = 20.0):
    import asyncio

    return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)


async def _browser_offer():
    """What main.js does, with aiortc as the browser: one grey 'screen' track, an offer carrying its candidates."""
    import asyncio

    import av
    from aiortc import RTCConfiguration, RTCPeerConnection, VideoStreamTrack
    from aiortc.mediastreams import MediaStreamError

    class Screen(VideoStreamTrack):
        async def recv(self):
            pts, time_base = await self.next_timestamp()
            frame = av.VideoFrame.from_ndarray(np.full((240, 320, 3), 128, np.uint8), format="rgb24")
            frame.pts, frame.time_base = pts, time_base
            return frame

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    returned: list[np.ndarray] = []

    @pc.on("track")
    def on_track(track):
        async def pull():
            while True:
                try:
                    returned.append((await track.recv()).to_ndarray(format="rgb24"))
                except MediaStreamError:
                    return

        asyncio.ensure_future(pull())

    pc.addTrack(Screen())
    await pc.setLocalDescription(await pc.createOffer())
    return pc, returned


async def _relay():
    from aiortc.contrib.media import MediaRelay

    return MediaRelay()


def _share_once(share, processor, loop, relay, offer_id: str):
    """Offer, answer, connect; returns the browser's peer connection and the frames it gets back."""
    from aiortc import RTCSessionDescription

    pc, returned = _on(loop, _browser_offer())
    value = {"id": offer_id, "offer": {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}}
    share.handle(value, processor, {"iceServers": []}, loop=loop, relay=relay)
    assert share.error is None and share.active
    assert share.answer["id"] == offer_id and share.answer["type"] == "answer"
    assert "a=candidate:" in share.answer["sdp"]  # no trickle: the answer carries the server's candidates
    _on(loop, pc.setRemoteDescription(RTCSessionDescription(share.answer["sdp"], share.answer["type"])))
    return pc, returned, value


def test_screen_share_offer_runs_the_shared_frames_through_the_live_processor(rtc_loop):
    from app.screen_share import ScreenShare

    relay = _on(rtc_loop, _relay())
    processor = LiveProcessor(FakeDetector(score=0.9), LiveOptions(target_fps=0))
    share = ScreenShare()
    pc, returned, value = _share_once(share, processor, rtc_loop, relay, "first")
    try:
        _wait(lambda: processor.stats().processed >= 2 and len(returned) >= 30, seconds=60)
        # the frames that come back carry the result: a border in the score's colour around the grey screen
        frame = returned[-1]
        colour = np.array(score_colour(processor.stats().smoothed), dtype=float)
        assert frame.shape == (240, 320, 3)
        assert np.abs(frame[120, 1].astype(float) - colour).max() < 40
        assert np.abs(frame[200, 160].astype(float) - 128).max() < 20
        worker = share.worker
        share.handle(value, processor, {"iceServers": []}, loop=rtc_loop, relay=relay)  # a rerun: same value
        assert share.worker is worker
    finally:
        share.handle({"id": "first", "stopped": True}, processor, {"iceServers": []})
        _on(rtc_loop, pc.close())
    assert share.worker is None and share.answer is None and not share.active
    assert worker.pc.connectionState == "closed"
    _wait(lambda: not processor.running, seconds=10)  # the ended callback told the processor's worker to go

    # sharing again: a new offer gets a new worker and frames flow again
    processed = processor.stats().processed
    pc, returned, _ = _share_once(share, processor, rtc_loop, relay, "second")
    try:
        assert share.worker is not worker
        _wait(lambda: processor.stats().processed > processed and len(returned) >= 5, seconds=60)
    finally:
        share.handle({"id": "second", "stopped": True}, processor, {"iceServers": []})
        _on(rtc_loop, pc.close())


def test_screen_share_reports_an_offer_it_cannot_answer_and_ignores_stale_values(rtc_loop):
    from app.screen_share import ScreenShare

    relay = _on(rtc_loop, _relay())
    processor = LiveProcessor(FakeDetector(), LiveOptions())
    share = ScreenShare()
    share.handle({"id": "bad", "offer": {"sdp": "v=0 not an offer", "type": "offer"}}, processor, {"iceServers": []},
                 loop=rtc_loop, relay=relay)
    assert share.worker is None and share.answer is None
    assert share.error["id"] == "bad" and "could not answer" in share.error["message"]
    for stale in (None, {}, {"id": ""}, {"id": "other", "stopped": True}):
        share.handle(stale, processor, {"iceServers": []})
    assert share.error["id"] == "bad" and share.offer_id == "bad"


def test_screen_share_component_ships_its_static_files_with_the_module():
    import shutil
    import subprocess

    from app.screen_share import COMPONENT_DIR

    from conftest import ROOT

    files = [COMPONENT_DIR / "index.html", COMPONENT_DIR / "main.js"]
    assert all(f.is_file() for f in files) and 'src="main.js"' in files[0].read_text()
    if shutil.which("git") and (ROOT / ".git").exists():  # a fresh clone must have them: not ignored
        ignored = subprocess.run(["git", "check-ignore", *map(str, files)], cwd=ROOT, capture_output=True, text=True)
        assert ignored.returncode == 1, ignored.stdout


def test_the_stream_worker_holds_a_queue_slot_and_waits_its_turn():
    """With the server's queue as admission, the worker analyses only while it holds a slot: behind another
    session's job it waits (and the frame waits in the mailbox), then runs, and frees the slot when stopped."""
    import threading

    from apate_core.jobs import JobQueue, JobState

    queue = JobQueue(slots=1, per_session=3)
    release = threading.Event()
    other = queue.submit("detect", lambda progress, cancel: release.wait(10), session="someone-else")
    detector = FakeDetector()
    processor = LiveProcessor(detector, LiveOptions(target_fps=0),
                              admission=lambda stop, on_queued: queue.hold("live", session="me", stop=stop,
                                                                           on_queued=on_queued))
    try:
        processor.submit(np.zeros((48, 64, 3), np.uint8))
        _wait(lambda: processor.admission_job is not None, seconds=5)
        job = processor.admission_job
        assert job.state is JobState.QUEUED and queue.status(job).position == 1
        time.sleep(0.3)
        assert detector.calls == 0  # waiting for the slot: nothing analysed
        release.set()
        _wait(lambda: job.state is JobState.RUNNING, seconds=5)
        _wait(lambda: detector.calls == 1, seconds=5)  # the frame kept in the mailbox, analysed once admitted
        assert other.wait(5)
        processor.stop()
        assert job.wait(5) and job.state is JobState.SUCCEEDED
        assert queue.counts()["running"] == 0
    finally:
        release.set()
        processor.stop()
        queue.shutdown()
