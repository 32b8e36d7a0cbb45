"""The shared upload area: one folder per content, touched on reuse, pruned after APATE_UPLOAD_KEEP_DAYS."""

from __future__ import annotations

import os
import time

import cv2
import numpy as np
import pytest

from apate_core.errors import InputRefused
from apate_core.media.upload_area import DAY_S, INCOMING, prune, save_bytes


def _age(path, days: float) -> None:
    then = time.time() - days * DAY_S
    os.utime(path, (then, then))


def test_same_content_is_stored_once_under_a_safe_name(tmp_path):
    first = save_bytes(b"clip bytes", tmp_path, "../../etc/My clip (1).mp4")
    again = save_bytes(b"clip bytes", tmp_path, "../../etc/My clip (1).mp4")
    assert first == again and first.read_bytes() == b"clip bytes"
    assert first.parent.parent == tmp_path and first.name == "My_clip_1_.mp4"
    assert oct(first.parent.stat().st_mode & 0o777) == "0o700"
    assert not list((tmp_path / INCOMING).iterdir())  # no partial copy left behind


def test_folders_unused_for_longer_than_keep_days_are_pruned_on_the_next_save(tmp_path):
    old = save_bytes(b"old upload", tmp_path, "old.jpg")
    reused = save_bytes(b"reused upload", tmp_path, "reused.jpg")
    stale_partial = tmp_path / INCOMING / "tmpabc"
    stale_partial.write_bytes(b"half")
    for path in (old.parent, reused.parent, stale_partial):
        _age(path, 10)
    save_bytes(b"reused upload", tmp_path, "reused.jpg", keep_days=7)  # a reuse touches its folder
    new = save_bytes(b"new upload", tmp_path, "new.jpg", keep_days=7)
    assert not old.exists() and not stale_partial.exists()
    assert reused.exists() and new.exists()


def test_keep_days_zero_keeps_everything_and_fresh_folders_stay(tmp_path):
    kept = save_bytes(b"a", tmp_path, "a.png")
    _age(kept.parent, 400)
    assert prune(tmp_path, 0) == [] and kept.exists()
    recent = save_bytes(b"b", tmp_path, "b.png")
    _age(recent.parent, 6.9)
    assert prune(tmp_path, 7) == [kept.parent] and recent.exists()


def test_a_frame_of_a_pruned_upload_is_refused_with_the_reason(tmp_path):
    from apate_core.detect.pipeline import _decode_one

    frame = np.zeros((8, 8, 3), np.uint8)
    path = save_bytes(cv2.imencode(".png", frame)[1].tobytes(), tmp_path, "photo.png")
    data = {"input": {"path": str(path), "format": "png"}, "kind": "image"}
    assert _decode_one(data, {"index": 0, "time": 0.0}).shape == (8, 8, 3)
    _age(path.parent, 30)
    prune(tmp_path, 7)
    with pytest.raises(InputRefused, match="no longer at 'photo.png'") as info:
        _decode_one(data, {"index": 0, "time": 0.0})
    assert "APATE_UPLOAD_KEEP_DAYS" in info.value.limit and info.value.accepted == "analysing the file again"
