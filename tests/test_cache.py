"""The array cache checks an entry by its size and modification time, and hashes the file
only when they differ from the manifest's: a normal load does not read the whole file."""
import json
import os

import numpy as np
import pytest

import datasets.cache as cache_module
from datasets.cache import ArrayCache

KEY = {"kind": "test", "n": 1}


@pytest.fixture
def entry(tmp_path):
    cache = ArrayCache(str(tmp_path / "cache"))
    array = np.random.default_rng(0).integers(0, 256, (50, 8, 8, 3), dtype=np.uint8)
    cache.store(KEY, array)
    return cache, array


@pytest.fixture
def hashes(monkeypatch):
    """The files hashed from now on (the real hash is still computed)."""
    calls = []
    real = cache_module.file_sha256
    monkeypatch.setattr(cache_module, "file_sha256", lambda p: calls.append(p) or real(p))
    return calls


def _manifest(cache):
    with open(cache.paths(KEY)[1]) as f:
        return json.load(f)


def _rebuilt(cache, want):
    """get() rebuilds the entry: the builder is called and its array stored and returned."""
    built = []
    got = cache.get(KEY, lambda: built.append(1) or want)
    np.testing.assert_array_equal(got, want)
    assert built == [1]
    np.testing.assert_array_equal(cache.load(KEY), want)


@pytest.mark.parametrize("mmap", [False, True])
def test_a_normal_load_does_not_hash_the_file(entry, monkeypatch, mmap):
    cache, array = entry

    def no_hash(path):
        raise AssertionError(f"{path} was hashed on a normal load")

    monkeypatch.setattr(cache_module, "file_sha256", no_hash)
    got = cache.load(KEY, mmap=mmap)
    np.testing.assert_array_equal(got, array)
    assert isinstance(got, np.memmap) == mmap
    # the checksum is still written, for provenance
    manifest = _manifest(cache)
    assert len(manifest["sha256"]) == 64
    assert manifest["size"] == os.path.getsize(cache.paths(KEY)[0])


def test_a_truncated_file_is_rebuilt(entry, hashes):
    cache, array = entry
    path = cache.paths(KEY)[0]
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 10)
    _rebuilt(cache, array)


def test_same_size_new_mtime_other_content_is_rebuilt(entry, hashes):
    cache, array = entry
    path = cache.paths(KEY)[0]
    stat = os.stat(path)
    with open(path, "r+b") as f:
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 0xFF]))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # even on a coarse clock
    assert cache.load(KEY) is None and hashes == [path]
    _rebuilt(cache, array)


def test_same_content_new_mtime_is_hashed_once_and_the_stamp_refreshed(entry, hashes):
    """A copied or touched cache: verified by its hash once, then trusted again."""
    cache, array = entry
    path = cache.paths(KEY)[0]
    os.utime(path, ns=(1, 10**9))
    np.testing.assert_array_equal(cache.load(KEY), array)
    assert hashes == [path]
    assert _manifest(cache)["mtime_ns"] == 10**9
    np.testing.assert_array_equal(cache.load(KEY, mmap=True), array)
    assert hashes == [path]


def test_an_old_manifest_without_a_stamp_is_upgraded(entry, hashes):
    cache, array = entry
    path, manifest_path = cache.paths(KEY)
    old = {k: v for k, v in _manifest(cache).items() if k not in ("size", "mtime_ns")}
    with open(manifest_path, "w") as f:
        json.dump(old, f)
    np.testing.assert_array_equal(cache.load(KEY), array)
    assert hashes == [path]  # computed once
    upgraded = _manifest(cache)
    assert upgraded == dict(old, size=os.path.getsize(path), mtime_ns=os.stat(path).st_mtime_ns)
    np.testing.assert_array_equal(cache.load(KEY), array)
    assert hashes == [path]  # and not again


def test_a_read_only_manifest_still_loads(entry, hashes, monkeypatch):
    """The stamp cannot be refreshed (a shared, read-only cache): the verified array loads."""
    cache, array = entry
    path = cache.paths(KEY)[0]
    os.utime(path, ns=(1, 10**9))

    def refuse(*_):
        raise PermissionError("read-only")

    monkeypatch.setattr(cache_module, "_atomic_write", refuse)
    np.testing.assert_array_equal(cache.load(KEY), array)
    assert hashes == [path]


@pytest.mark.parametrize("part", [0, 1], ids=["array", "manifest"])
def test_a_folder_in_place_of_an_entry_names_the_entry(entry, part):
    """A cache file replaced by a folder: the message named an internal temporary path
    (issue 32, item 16); it names the entry to delete, before anything is built."""
    from sharpdro.atomic import describe_os_error

    cache, array = entry
    path = cache.paths(KEY)[part]
    os.remove(path)
    os.makedirs(os.path.join(path, "inside"))
    built = []
    with pytest.raises(OSError) as e:
        cache.get(KEY, lambda: built.append(1) or array)
    message = describe_os_error(e.value)
    assert message.startswith(f"cannot use {path}: ") and "delete" in message, message
    assert ".tmp" not in message and "\n" not in message and built == []
    os.rmdir(os.path.join(path, "inside"))
    os.rmdir(path)  # as the message says: the entry is then rebuilt
    _rebuilt(cache, array)


def test_a_file_in_place_of_the_cache_folder_is_one_line(tmp_path):
    from sharpdro.atomic import describe_os_error

    (tmp_path / "cache").write_text("")
    with pytest.raises(OSError) as e:
        ArrayCache(str(tmp_path / "cache"))
    assert describe_os_error(e.value) == f"cannot use {tmp_path / 'cache'}: not a folder"
