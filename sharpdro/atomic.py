"""Atomic file writes: write inside a private temporary folder beside the target, then
rename into place with the user's normal file mode.

A private folder, not a temporary name beside the target, because the writers we call
make temporary files of their own (MindSpore's checkpoint writer ``<name>.tmp``) and change
the permissions of the folder they write into (MindSpore's ONNX writer chmods it 0700):
both stay inside our folder, which is removed on success and on any error. What a killed
process leaves behind (``kill -9`` gives no chance to clean up) is removed by
:func:`remove_stale` the next time a run starts in that folder.
"""
import contextlib
import hashlib
import os
import re
import shutil
import tempfile

# .<file name>.<tag><pid>-<random>: the private folder of one write
_PRIVATE = re.compile(r"^\..+\.[a-z]+(\d+)-[A-Za-z0-9_]+$")
# temporary names beside the target: of earlier versions (<base>.tmp<pid><ext>, MindSpore's
# <base>.tmp<pid>.tmp) and the decode cache's shared file (<entry>.npy.decoding<pid>.npy)
_LEGACY = re.compile(r"^.+\.(?:tmp|unverified|decoding)(\d+)(?:\.[A-Za-z0-9]+)*$")


def default_file_mode():
    """The mode a file created by ``open()`` gets: 0o666 minus the umask (read from
    /proc where it can be: setting the umask to read it is not thread-safe)."""
    try:
        with open("/proc/self/status") as f:
            mask = next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        mask = os.umask(0)
        os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path, tag="tmp"):
    """Yield a temporary path (same file name, in a private folder beside ``path``) to
    write; on success the file gets the user's normal mode (umask) and replaces ``path``;
    on any error ``path`` stays as it was. Either way the private folder is removed."""
    directory, name = os.path.split(os.path.abspath(path))
    private = tempfile.mkdtemp(prefix=f".{name}.{tag}{os.getpid()}-", dir=directory)
    try:
        tmp = os.path.join(private, name)
        yield tmp
        os.chmod(tmp, default_file_mode())  # MindSpore writes its files 0400
        os.replace(tmp, path)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def describe_os_error(err):
    """An OSError in one line: 'cannot write PATH: No space left on device' (a full disk, a
    read-only or forbidden place) or 'cannot use PATH: ...' (anything else)."""
    import errno

    verb = "write" if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC,
                                    errno.EDQUOT) else "use"
    where = f" {err.filename}" if err.filename else ""
    return f"cannot {verb}{where}: {err.strerror or err}"


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale(directory):
    """Remove the temporary files and folders in ``directory`` whose writing process is
    dead (a kill or a power cut mid-write); returns their names."""
    if not os.path.isdir(directory):
        return []
    removed = []
    for name in sorted(os.listdir(directory)):
        match = _PRIVATE.match(name) or _LEGACY.match(name)
        if match is None or int(match.group(1)) == os.getpid() or _alive(int(match.group(1))):
            continue
        path = os.path.join(directory, name)
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
        removed.append(name)
    return removed


def file_sha256(path, chunk=1 << 22):
    """The sha256 hex digest of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
