"""Result store: keys, no pickle, privacy, eviction, recovery from corruption and deletion."""

import os
import pickle
import shutil
import stat

import numpy as np
import pytest

from apate_core.store import ResultStore, decode_result, encode_result, make_key


@pytest.fixture
def store(tmp_path):
    with ResultStore(tmp_path / "store", 50 * 1024 * 1024) as s:
        yield s


def test_key_depends_on_every_part():
    base = dict(content_sha256="a" * 64, task="detect", model_id="m", weights_sha256="w", params={"fps": 1})
    key = make_key(**base)
    assert key == make_key(**{**base, "params": {"fps": 1}})
    for field, other in (("content_sha256", "b" * 64), ("task", "protect"), ("model_id", "n"),
                         ("weights_sha256", "v"), ("params", {"fps": 2})):
        assert make_key(**{**base, field: other}) != key, field


def test_round_trip_json_and_arrays(store):
    arrays = {"scores": np.linspace(0, 1, 7, dtype=np.float32), "frames": np.zeros((2, 4, 4, 3), np.uint8)}
    store.put("k", {"label": "real", "nested": {"n": 3}}, arrays)
    got = store.get("k")
    assert got.meta == {"label": "real", "nested": {"n": 3}}
    np.testing.assert_array_equal(got.arrays["scores"], arrays["scores"])
    assert got.arrays["frames"].dtype == np.uint8 and "k" in store
    assert store.get("missing") is None


def test_directory_is_private(store):
    assert stat.S_IMODE(os.stat(store.directory).st_mode) == 0o700


def test_values_are_never_unpickled(store):
    class Boom:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with pytest.raises(TypeError):
        store._cache.set("evil", {"python": "object"})  # the disk layer refuses to pickle
    # A pickle planted in the database by someone else is refused on read, and treated as a miss.
    import diskcache

    raw = diskcache.Cache(str(store.directory))
    raw.set("planted", Boom())  # a plain diskcache pickles it
    raw.close()
    assert store.get("planted") is None
    with pytest.raises(ValueError):
        decode_result(pickle.dumps(Boom()))


def test_object_arrays_cannot_be_smuggled_in():
    with pytest.raises(ValueError):
        decode_result(encode_result({"a": 1}, {"obj": np.array([object()], dtype=object)}))


def test_eviction_keeps_the_store_under_its_limit(tmp_path):
    with ResultStore(tmp_path / "small", 2 * 1024 * 1024) as small:
        for i in range(12):
            small.put_bytes(f"blob{i}", os.urandom(400 * 1024))
        usage = small.usage()
        assert usage.bytes_used <= 2 * 1024 * 1024 + 400 * 1024
        assert small.get_bytes("blob11") is not None and small.get_bytes("blob0") is None


def test_corrupted_store_is_rebuilt(tmp_path):
    directory = tmp_path / "store"
    with ResultStore(directory, 10**7) as s:
        s.put("k", {"v": 1})
    (directory / "cache.db").write_bytes(b"not a database" * 100)
    with ResultStore(directory, 10**7) as s:
        assert s.get("k") is None
        s.put("k", {"v": 2})
        assert s.get("k").meta == {"v": 2}


def test_deleted_store_is_rebuilt_while_open(store):
    store.put("k", {"v": 1})
    shutil.rmtree(store.directory)
    assert store.get("k") is None
    store.put("k", {"v": 3})
    assert store.get("k").meta == {"v": 3}
    assert stat.S_IMODE(os.stat(store.directory).st_mode) == 0o700


def test_eviction_is_least_recently_used(tmp_path):
    with ResultStore(tmp_path / "lru", 2 * 1024 * 1024) as small:
        for i in range(4):
            small.put_bytes(f"blob{i}", os.urandom(400 * 1024))
        assert small.get_bytes("blob0") is not None  # touch the oldest
        for i in range(4, 6):
            small.put_bytes(f"blob{i}", os.urandom(400 * 1024))
        assert small.get_bytes("blob0") is not None and small.get_bytes("blob1") is None
