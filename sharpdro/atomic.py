"""Atomic file writes: write to a temporary name beside the target, then rename."""
import contextlib
import os


@contextlib.contextmanager
def atomic_path(path, tag="tmp"):
    """Yield a temporary path ``<base>.<tag><pid><ext>`` to write; on success it replaces
    ``path``, on any error it is removed and ``path`` stays as it was.

    The extension is kept because writers add or read it: MindSpore appends ``.ckpt``,
    NumPy ``.npz``, and matplotlib picks the format from it.
    """
    base, ext = os.path.splitext(path)
    # the pid: data-parallel ranks may write the same file (the data cache) at once
    tmp = f"{base}.{tag}{os.getpid()}{ext}"
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
