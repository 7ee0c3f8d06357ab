"""A cache of uint8 arrays: ``<root>/<key>.npy`` plus a manifest with shape and checksum.

Written to a temporary name and renamed, so a crash never leaves a half-written entry;
an entry whose file is missing, truncated or whose checksum does not match is rebuilt.
The checksum is computed when the entry is written; a load compares only the file's size
and modification time with the manifest's (hashing a large array at every start would read
all of it and defeat the memory map), and hashes again only when they differ.
"""
import errno
import hashlib
import json
import logging
import os

import numpy as np

from sharpdro.atomic import atomic_path, file_sha256, remove_stale

from .corruptions import VERSION as CORRUPTIONS_VERSION

log = logging.getLogger(__name__)
# One version in every key: the cache's own layout (bump LAYOUT) and what the corruptions
# produce (bump corruptions.VERSION, beside the code it describes).
LAYOUT = 2
VERSION = f"{LAYOUT}.{CORRUPTIONS_VERSION}"


def key_name(key):
    text = json.dumps({"version": VERSION, **key}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _atomic_write(path, write):
    # each writer has its own temporary folder: two processes may fill the same cache at once
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def _write_json(path, value):
    _atomic_write(path, lambda f: f.write(json.dumps(value, indent=1).encode()))


def _stamp(path):
    """What a load compares with the manifest instead of hashing the file."""
    st = os.stat(path)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


class ArrayCache:
    def __init__(self, root):
        self.root = root
        if os.path.exists(root) and not os.path.isdir(root):
            raise NotADirectoryError(errno.ENOTDIR, "not a folder", root)
        os.makedirs(root, exist_ok=True)
        remove_stale(root)  # what a killed process was writing

    def paths(self, key):
        name = key_name(key)
        return os.path.join(self.root, name + ".npy"), os.path.join(self.root, name + ".json")

    def load(self, key, mmap=False):
        """The cached array, or None if absent or damaged; ``mmap``: memory-mapped read-only
        (pages are read when used, so a large array does not have to fit in memory). A folder
        in place of the entry's file is an IsADirectoryError naming it (not deleted: it is
        not ours), raised before anything is built."""
        path, manifest_path = self.paths(key)
        for entry in (path, manifest_path):  # the rename of a rebuilt one would fail on it
            if os.path.isdir(entry):
                raise IsADirectoryError(errno.EISDIR, "a folder where this cache entry's file "
                                        "belongs; delete it (the entry is then rebuilt)", entry)
        if not (os.path.isfile(path) and os.path.isfile(manifest_path)):
            return None
        try:
            with open(manifest_path) as f:
                manifest = json.load(f)
            stamp = _stamp(path)
            if any(manifest.get(k) != v for k, v in stamp.items()):
                # changed since written (or a manifest from before stamps): the hash decides
                if file_sha256(path) != manifest["sha256"]:
                    raise ValueError("checksum mismatch")
                self._refresh_stamp(manifest_path, dict(manifest, **stamp))
            array = np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
            if list(array.shape) != manifest["shape"] or str(array.dtype) != manifest["dtype"]:
                raise ValueError("shape or dtype mismatch")
            return array
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as err:
            log.warning("cache entry %s is damaged (%s); rebuilding", path, err)
            return None

    def store(self, key, array):
        path, _ = self.paths(key)
        _atomic_write(path, lambda f: np.save(f, array, allow_pickle=False))
        self._write_manifest(key, array)

    def adopt(self, key, npy_path):
        """Make the finished .npy file at ``npy_path`` (in the cache folder) the entry of
        ``key``: synced, renamed into place, then its manifest (for arrays built in place)."""
        path, _ = self.paths(key)
        with open(npy_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(npy_path, path)
        self._write_manifest(key, np.load(path, mmap_mode="r"))

    def _write_manifest(self, key, array):
        """The manifest, written last: an entry without one is absent."""
        path, manifest_path = self.paths(key)
        # stamp before hashing: a write during the hash then shows as a newer mtime
        stamp = _stamp(path)
        manifest = {"key": key, "shape": list(array.shape), "dtype": str(array.dtype),
                    "sha256": file_sha256(path), "version": VERSION, **stamp}
        _write_json(manifest_path, manifest)

    @staticmethod
    def _refresh_stamp(manifest_path, manifest):
        """The verified file's new size/mtime, so the next load does not hash it again; a
        read-only cache keeps the old manifest (the array is valid, only slower to check)."""
        try:
            _write_json(manifest_path, manifest)
        except OSError as err:
            log.info("cache manifest %s not updated (%s)", manifest_path, err)

    def get(self, key, build):
        array = self.load(key)
        if array is None:
            array = build()
            self.store(key, array)
        return array
