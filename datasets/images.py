"""The one image decoder and the one list of image extensions, for every reader of image
files: imagenet30, the user's folders and CSV (``datasets/folders.py``) and the ImageNet-C
benchmark folders (``datasets/benchmark.py``).

Two resize rules, because the data's protocols differ:
- ``crop`` (the user's own images): the shorter side resized to ``size``, the centre
  cropped, so nothing is stretched;
- ``squash`` (ImageNet-30 and its corrupted sets): the whole image resized to size x size,
  as the authors' ``torchvision.transforms.Resize((64, 64))`` does; their corruption
  constants and published file lists are for those pixels.

Imports nothing else of the package: any reader can use it without loading the others.
"""
import numpy as np

# matched case-insensitively (ImageNet's files are .JPEG)
EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
CROP, SQUASH = "crop", "squash"
RULES = (CROP, SQUASH)
GREY_MODES = ("1", "L", "LA", "I", "F", "I;16", "I;16L", "I;16B", "I;16N")


def is_image(name):
    return name.lower().endswith(EXTENSIONS)


def _open(path):
    from PIL import Image

    return Image.open(path)


def _grey_or_colour(img, channels):
    """A PIL image in mode L (channels 1) or RGB (3); 16-bit grey keeps its top 8 bits."""
    from PIL import Image

    if img.mode.startswith("I") or img.mode == "F":  # 16/32-bit grey (scientific cameras)
        values = np.asarray(img, np.float64)
        top = 65535.0 if values.max(initial=0) > 255 else 255.0
        img = Image.fromarray(np.clip(values * (255.0 / top) + 0.5, 0, 255).astype(np.uint8), "L")
    return img.convert("L" if channels == 1 else "RGB")


def decode(path, size, channels, rule=CROP):
    """One image file -> (uint8 size x size x channels, whether it was smaller than size),
    made square by ``rule`` (module docstring)."""
    from PIL import Image

    if rule not in RULES:
        raise ValueError(f"unknown resize rule {rule!r}; valid: {', '.join(RULES)}")
    mode = "L" if channels == 1 else "RGB"
    with _open(path) as img:
        if rule == CROP:
            # JPEG: decode at the smallest DCT scale that keeps both sides >= size (much
            # faster for large photographs, same result up to resampling). Not for squash:
            # the authors resize the full decode, and we keep their pixels.
            img.draft(mode, (size, size))
        img.load()  # a truncated file raises here
        smaller = min(img.size) < size
        if img.mode != mode:
            img = _grey_or_colour(img, channels)
        box = None  # squash: the whole image
        if rule == CROP:
            # the centred square, resized to size (= the shorter side resized, the centre
            # cropped), in one resampling call
            w, h = img.size
            side = min(w, h)
            left, top = (w - side) / 2, (h - side) / 2
            box = (left, top, left + side, top + side)
        img = img.resize((size, size), Image.BILINEAR, box=box)
        return np.asarray(img, np.uint8).reshape(size, size, channels), smaller


def decode_files(paths, size, channels, rule):
    """uint8 N x size x size x channels of ``paths``, in this process (small folders)."""
    out = np.empty((len(paths), size, size, channels), np.uint8)
    for i, path in enumerate(paths):
        out[i] = decode(path, size, channels, rule)[0]
    return out


def image_header(path):
    """(shorter side, channels) from the file's header, or None if it cannot be opened."""
    try:
        with _open(path) as img:
            return min(img.size), 1 if img.mode in GREY_MODES else 3
    except Exception:  # noqa: BLE001  (decode reports it properly later)
        return None
