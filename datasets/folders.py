"""The user's own images: an image-folder tree or a metadata CSV (two registry entries).

    data.dataset: image_folder   data.data_dir: ROOT
        ROOT/{train,val,test}/<class>/*            (val/ optional)
        ROOT/{train,val,test}/<group>/<class>/*    groups given by the data (found by depth)
    data.dataset: csv            data.metadata: FILE.csv
        header row; columns path (relative to the CSV's folder, or absolute), label,
        optional group, optional split (train/val/test, or group_DRO's 0/1/2);
        other column names through data.columns {path: ..., label: ..., ...}

Images (png, jpg/jpeg, bmp, tif/tiff in any case; other files are ignored and counted) are
decoded once, in parallel, into the array cache by the one decoder (``datasets/images.py``):
grey or colour converted to ``data.channels`` (default: what most images are), and made
square by its ``crop`` rule: the shorter side is resized to ``data.image_size`` (bilinear,
antialiased) and the centre is cropped. The cache key holds
every file's path, size and modification time, so an edited folder is read again; the
cached pixels are memory-mapped, so the process does not hold them all.

Every bad input is a ValueError of one line that names the file (and the CSV line). A class
or group with fewer than RARE training images and none in validation or test (a misspelt
label, an unknown group) is a warning naming the closest known name, or with
``data.strict: true`` an error.
"""
import collections
import concurrent.futures
import csv
import hashlib
import io
import logging
import os

import numpy as np

from sharpdro.field import Field
from sharpdro.registry import closest

from .cache import ArrayCache, key_name
from .images import EXTENSIONS, decode, image_header, is_image
from .registry import CHANNELS, IMAGE_SIZE, READERS, SKIP_UNREADABLE
from .source import Source, Split

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")
# group_DRO's metadata.csv numbers its splits
SPLIT_VALUES = {"train": "train", "val": "val", "valid": "val", "validation": "val",
                "test": "test", "0": "train", "1": "val", "2": "test"}
COLUMNS = ("path", "label", "group", "split")
DECODE_VERSION = 1  # bump when decoding changes what it produces
DEFAULT_SIZE_CAP = 224  # image_size null: the images' own size, at most this
SAMPLE = 500  # headers read to choose the default size and channels
SHOW = 5  # files named in an error
RARE = 5  # a class or group with fewer training images and none in val/test is suspect
TYPO_CUTOFF = 0.75  # difflib ratio from which a rare name is taken for a typo of a known one
STRICT = Field(False, bool, f"image_folder/csv: a class or group with fewer than {RARE} "
               "training images and none in validation or test (a misspelt label, an "
               "unknown group) stops the run instead of a warning")


def _listing(paths, what):
    shown = ", ".join(paths[:SHOW]) + (", ..." if len(paths) > SHOW else "")
    return f"{len(paths)} {what}: {shown}"


# -- decoding -----------------------------------------------------------------------------
def default_shape(paths, image_size, channels):
    """``image_size``/``channels`` as configured, or what most images are (a sample of the
    headers); the size capped at DEFAULT_SIZE_CAP."""
    if image_size and channels:
        return image_size, channels
    step = max(1, len(paths) // SAMPLE)
    headers = [h for h in map(image_header, paths[::step]) if h is not None]
    if not headers:
        return image_size or 32, channels or 3
    if not image_size:
        side = collections.Counter(h[0] for h in headers).most_common(1)[0][0]
        image_size = min(side, DEFAULT_SIZE_CAP)
        log.info("data.image_size not set: %d px (the images' most common shorter side%s)",
                 image_size, f", capped at {DEFAULT_SIZE_CAP}" if side > DEFAULT_SIZE_CAP else "")
    if not channels:
        channels = collections.Counter(h[1] for h in headers).most_common(1)[0][0]
        log.info("data.channels not set: %d (what most images are)", channels)
    return image_size, channels


def _fingerprint(paths):
    """sha256 over every file's path, size and modification time (an edit changes it)."""
    digest = hashlib.sha256()
    for p in paths:
        st = os.stat(p)
        digest.update(f"{os.path.abspath(p)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def decode_all(paths, size, channels, cache_dir, skip_unreadable=False, desc="decoding",
               workers=None):
    """(uint8 N x size x size x channels for ``paths``, memory-mapped from the cache; the
    boolean mask of the files kept, all True unless ``skip_unreadable`` dropped some; the
    cache key's name, which identifies these files as they are now)."""
    cache = ArrayCache(cache_dir)
    key = {"kind": "decoded", "files": _fingerprint(paths), "count": len(paths), "size": size,
           "channels": channels, "skip_unreadable": bool(skip_unreadable),
           "decode_version": DECODE_VERSION}
    name = key_name(key)
    images = cache.load(key, mmap=True)
    kept = cache.load(dict(key, part="kept"))
    if images is None or kept is None:
        tmp = cache.paths(key)[0] + f".decoding{os.getpid()}.npy"
        try:
            kept = _decode_parallel(paths, size, channels, skip_unreadable, desc, workers, tmp)
            cache.adopt(key, tmp)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        cache.store(dict(key, part="kept"), kept.astype(np.uint8))
        images = np.load(cache.paths(key)[0], mmap_mode="r")  # just written and checksummed
    kept = kept.astype(bool)
    if not kept.all():  # skip_unreadable: said on every read, cached or not
        skipped = [p for p, k in zip(paths, kept) if not k]
        print(f"warning: skipped {_listing(skipped, 'unreadable image(s)')}", flush=True)
    return images, kept, name


PROCESS_MIN = 2000  # folders at least this large are decoded by worker processes
CHUNK_FILES = 256


def _decode_chunk(out_path, start, paths, size, channels):
    """Worker: decode ``paths`` into rows start.. of the .npy at ``out_path`` (memory-mapped,
    shared with the other workers). -> (failures [(index, message)], count smaller)."""
    out = np.load(out_path, mmap_mode="r+")
    failed, small = [], 0
    for k, path in enumerate(paths):
        try:
            out[start + k], was_small = decode(path, size, channels)
            small += was_small
        except Exception as err:  # noqa: BLE001  (PIL raises many kinds)
            failed.append((start + k, f"{path} ({type(err).__name__}: {err})"))
    out.flush()
    return failed, small


def _decode_parallel(paths, size, channels, skip_unreadable, desc, workers, out_path):
    """Decode into a new .npy at ``out_path``; -> kept mask (the file then holds the kept
    rows only). Python's per-image work holds the GIL, so large folders go to worker
    processes (spawned: safe beside MindSpore's threads) that write into the shared file."""
    import multiprocessing

    from tqdm import tqdm

    out = np.lib.format.open_memmap(out_path, "w+", np.uint8, (len(paths), size, size, channels))
    del out  # the workers open it themselves
    starts = range(0, len(paths), CHUNK_FILES)
    jobs = [(out_path, i, paths[i:i + CHUNK_FILES], size, channels) for i in starts]
    workers = workers or os.cpu_count() or 1
    bad, smaller = [], 0
    bar = tqdm(total=len(paths), desc=desc, unit="img", disable=None if len(paths) > 500 else True,
               leave=False)
    with bar:
        if len(paths) >= PROCESS_MIN and workers > 1:
            context = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
                for (failed, small), job in zip(pool.map(_decode_chunk, *zip(*jobs)), jobs):
                    bad, smaller = bad + failed, smaller + small
                    bar.update(len(job[2]))
        else:
            for job in jobs:
                failed, small = _decode_chunk(*job)
                bad, smaller = bad + failed, smaller + small
                bar.update(len(job[2]))
    if smaller:
        print(f"warning: {smaller} image(s) smaller than {size} px were upscaled "
              f"({desc})", flush=True)
    kept = np.ones(len(paths), bool)
    if bad:
        if not skip_unreadable:
            os.remove(out_path)
            raise ValueError(_listing([b[1] for b in bad], "unreadable or truncated image(s)")
                             + "; fix or remove them, or set data.skip_unreadable: true")
        kept[[i for i, _ in bad]] = False
        compact = np.load(out_path, mmap_mode="r")[kept]
        np.save(out_path, compact)
    return kept


# -- the common part of both readers --------------------------------------------------------
def _names(values):
    """Sorted distinct names (integers sorted as numbers) and each value's index."""
    distinct = sorted(set(values))
    if all(v.lstrip("-").isdigit() for v in distinct):
        distinct = sorted(distinct, key=int)
    index = {v: i for i, v in enumerate(distinct)}
    return distinct, index


def rare_names(entries, with_groups):
    """One message per class (and group) with fewer than RARE training images and none in
    the validation or test split the data gives (or fewer than RARE when it gives neither):
    what a misspelt label or an unknown group looks like; the closest well-populated name
    is suggested when it is close enough to be the intended one."""
    evaluated = [entries[s] for s in ("val", "test") if s in entries]
    where = ", none in validation or test" if evaluated else ""
    messages = []
    for kind, pos in [("class", 1)] + ([("group", 2)] if with_groups else []):
        counts = collections.Counter(e[pos] for e in entries["train"])
        seen = {e[pos] for rows in evaluated for e in rows}
        rare = sorted(n for n, c in counts.items() if c < RARE and n not in seen)
        known = [n for n in counts if n not in rare]
        for name in rare:
            hint = closest(name, known, TYPO_CUTOFF)
            messages.append(f"{kind} {name!r} has {counts[name]} training image(s){where}"
                            + (f" (did you mean {hint!r}?)" if hint else ""))
    return messages


def check_rare_names(entries, root, with_groups, strict):
    """rare_names as warnings, or with ``strict`` as one ValueError line."""
    messages = rare_names(entries, with_groups)
    if messages and strict:
        more = f"; ... ({len(messages)} in all)" if len(messages) > SHOW else ""
        raise ValueError(f"{root}: " + "; ".join(messages[:SHOW]) + more
                         + " (data.strict is true: fix the data or set it to false)")
    for message in messages[:SHOW]:
        print(f"warning: {root}: {message}", flush=True)
    if len(messages) > SHOW:
        print(f"warning: {root}: {len(messages) - SHOW} more such class(es) or group(s)",
              flush=True)


def build_source(entries, root, image_size, channels, cache_dir, skip_unreadable, with_groups,
                 strict=False):
    """``entries``: {split: [(path, class name, group name or None)]} -> Source. Class and
    group names come from the training split; val/test may not add new ones; rare ones are
    warned about (check_rare_names)."""
    train = entries["train"]
    class_names, class_index = _names([c for _, c, _ in train])
    group_names = group_index = None
    if with_groups:
        group_names, group_index = _names([g for _, _, g in train])
    for split in ("val", "test"):
        for kind, names, pos in (("class", class_index, 1), ("group", group_index, 2)):
            if names is None or split not in entries:
                continue
            unknown = sorted({e[pos] for e in entries[split]} - set(names))
            if unknown:
                raise ValueError(f"{root}: {split} has {kind}(es) that train lacks: "
                                 f"{', '.join(unknown[:SHOW])}")
    check_rare_names(entries, root, with_groups, strict)
    size, channels = default_shape([p for p, _, _ in train], image_size, channels)
    out, fingerprint = {}, hashlib.sha256(f"{size} {channels} {skip_unreadable}".encode())
    for split, rows in entries.items():
        paths = [p for p, _, _ in rows]
        images, kept, key = decode_all(paths, size, channels, cache_dir, skip_unreadable,
                                       desc=f"decoding {split}")
        fingerprint.update(f"{split} {key}\n".encode())
        labels = np.array([class_index[c] for _, c, _ in rows], np.int64)[kept]
        groups = (np.array([group_index[g] for _, _, g in rows], np.int64)[kept]
                  if with_groups else None)
        files = [os.path.relpath(p, root) for p, k in zip(paths, kept) if k]
        out[split] = Split(images, labels, groups, files)
    # the images read: skipped unreadable files are not counted
    log.info("%s: %d images in %s, %d classes%s, %d px, %d channel(s)", root,
             sum(len(split) for split in out.values()),
             "/".join(out), len(class_names),
             f", {len(group_names)} groups" if with_groups else "", size, channels)
    return Source(out["train"], out.get("test"), class_names, val=out.get("val"),
                  group_names=group_names, fingerprint=fingerprint.hexdigest()[:20])


def _report_ignored(ignored, where):
    if ignored:
        print(f"note: {len(ignored)} file(s) in {where} are not images ({', '.join(EXTENSIONS)})"
              f" and were ignored, e.g. {ignored[0]}", flush=True)


# -- image folders ------------------------------------------------------------------------
def _scan_split(folder):
    """-> ([(path, class, group or None)], depth, ignored files); depth 1: <class>/*,
    depth 2: <group>/<class>/*."""
    entries, ignored, empty, depths = [], [], [], set()
    for top in sorted(os.listdir(folder)):
        top_path = os.path.join(folder, top)
        if not os.path.isdir(top_path):
            ignored.append(top_path)
            continue
        files = sorted(os.listdir(top_path))
        subdirs = [f for f in files if os.path.isdir(os.path.join(top_path, f))]
        images = [f for f in files if not os.path.isdir(os.path.join(top_path, f)) and is_image(f)]
        ignored += [os.path.join(top_path, f) for f in files
                    if not os.path.isdir(os.path.join(top_path, f)) and not is_image(f)]
        if subdirs and not images:  # <group>/<class>/*
            depths.add(2)
            for sub in subdirs:
                sub_path = os.path.join(top_path, sub)
                names = sorted(os.listdir(sub_path))
                found = [n for n in names if is_image(n) and os.path.isfile(os.path.join(sub_path, n))]
                ignored += [os.path.join(sub_path, n) for n in names if not is_image(n)]
                if not found:
                    empty.append(sub_path)
                entries += [(os.path.join(sub_path, n), sub, top) for n in found]
        else:
            depths.add(1)
            if not images:
                empty.append(top_path)
            entries += [(os.path.join(top_path, n), top, None) for n in images]
    if empty:
        raise ValueError(_listing(empty, "empty class folder(s)") + " (no png/jpg/bmp/tif files)")
    if len(depths) > 1:
        raise ValueError(f"{folder}: mixes <class>/* and <group>/<class>/* folders; use one layout")
    return entries, depths.pop() if depths else 1, ignored


@READERS.register("image_folder", file_names=True, options={
    "image_size": IMAGE_SIZE, "channels": CHANNELS, "skip_unreadable": SKIP_UNREADABLE,
    "strict": STRICT})
def read_image_folder(data_dir="data", seed=0, image_size=None, channels=None,
                      skip_unreadable=False, cache_dir="cache", strict=False):
    """ROOT/{train,val,test}/[<group>/]<class>/* (val optional)."""
    root = data_dir
    if not os.path.isdir(root):
        raise ValueError(f"data.data_dir {root}: no such folder (expected {root}/train/<class>/* "
                         f"and {root}/test/<class>/*)")
    for split in ("train", "test"):
        if not os.path.isdir(os.path.join(root, split)):
            raise ValueError(f"{root}: no {split}/ folder (expected {root}/{split}/<class>/*, "
                             f"or {root}/{split}/<group>/<class>/*)")
    entries, depths, ignored = {}, {}, []
    for split in SPLITS:
        folder = os.path.join(root, split)
        if os.path.isdir(folder):
            entries[split], depths[split], more = _scan_split(folder)
            ignored += more
            if not entries[split]:
                raise ValueError(f"{folder}: no class folders with images")
    if len(set(depths.values())) > 1:
        raise ValueError(f"{root}: the splits use different layouts "
                         f"({', '.join(f'{s}: {d} level(s)' for s, d in depths.items())})")
    _report_ignored(ignored, root)
    return build_source(entries, root, image_size, channels, cache_dir, skip_unreadable,
                        with_groups=depths["train"] == 2, strict=strict)


# -- a metadata CSV -------------------------------------------------------------------------
def csv_columns(columns):
    """data.columns ({role: column name}) over the defaults; unknown roles are errors."""
    columns = dict(columns or {})
    unknown = sorted(set(columns) - set(COLUMNS))
    if unknown:
        raise ValueError(f"data.columns: unknown role(s) {unknown}; valid: {list(COLUMNS)}")
    return {role: str(columns.get(role, role)) for role in COLUMNS}


def read_csv_rows(path):
    """(header, [(line number, fields)] of the non-blank rows) of the CSV file ``path``.

    Every record must sit on one line of the file and have no more non-empty fields than the
    header: a quote opened and not closed would otherwise run on over the following lines and
    swallow their rows into one field (a malformed file read as fewer images, without a word);
    with one record a line, the rows read are the file's lines. Quoted commas and doubled
    quotes ("a, ""b"" c.png") read as usual. A malformed line is a ValueError naming it."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise ValueError(f"{path} line {line}: not UTF-8 text ({err.reason}); save the CSV as "
                         "UTF-8") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows, end = [], 0
    try:
        for fields in reader:
            start, end = end + 1, reader.line_num
            if end > start:
                raise ValueError(f"{path} line {start}: a field runs on to line {end}; a "
                                 "quoted field is not closed on its own line (an unbalanced \")")
            if any(c.strip() for c in fields):
                rows.append((start, fields))
    except csv.Error as err:
        if reader.line_num > end + 1:  # the record began on the line after the last one read
            raise ValueError(f"{path} line {end + 1}: a quoted field is not closed on its own "
                             f"line (an unbalanced \"; {err})") from None
        raise ValueError(f"{path} line {reader.line_num}: {err}") from None
    if not rows:
        return None, []
    (_, header), rows = rows[0], rows[1:]
    header = [h.strip() for h in header]
    for line, fields in rows:
        if any(c.strip() for c in fields[len(header):]):
            raise ValueError(f"{path} line {line}: {len(fields)} fields, the header has "
                             f"{len(header)} (quote a field that holds a comma)")
    return header, rows


def _csv_entries(metadata, columns):
    """-> ({split: [(path, class, group or None)]}, whether it has a group column, base
    folder). Without a split column every row is "train"."""
    if not os.path.isfile(metadata):
        raise ValueError(f"data.metadata {metadata}: no such file")
    cols = csv_columns(columns)
    base = os.path.dirname(os.path.abspath(metadata))
    header, rows = read_csv_rows(metadata)
    if not header:
        raise ValueError(f"{metadata}: empty file (expected a header row with "
                         f"{cols['path']}, {cols['label']}[, {cols['group']}, {cols['split']}])")
    for role in ("path", "label"):
        if cols[role] not in header:
            raise ValueError(f"{metadata}: no {cols[role]!r} column (found {header}); "
                             f"name it in data.columns")
    pos = {role: header.index(name) for role, name in cols.items() if name in header}
    with_groups, with_split = "group" in pos, "split" in pos
    entries = {s: [] for s in SPLITS}
    seen, missing, duplicates, ignored = {}, [], [], []
    for line, row in rows:
        if len(row) < len(header):
            raise ValueError(f"{metadata} line {line}: {len(row)} fields, the header has {len(header)}")
        value = {role: row[i].strip() for role, i in pos.items()}
        for role in ("path", "label") + (("group",) if with_groups else ()):
            if not value[role]:
                raise ValueError(f"{metadata} line {line}: empty {cols[role]}")
        split = "train"
        if with_split:
            split = SPLIT_VALUES.get(value["split"].lower())
            if split is None:
                raise ValueError(f"{metadata} line {line}: split {value['split']!r} is not one of "
                                 "train, val, test (or 0, 1, 2)")
        path = value["path"]
        full = os.path.normpath(path if os.path.isabs(path) else os.path.join(base, path))
        if full in seen:
            duplicates.append(f"{path} (lines {seen[full]} and {line})")
            continue
        seen[full] = line
        if not is_image(full):
            ignored.append(full)
        elif not os.path.isfile(full):
            missing.append(f"{path} (line {line})")
        else:
            entries[split].append((full, value["label"], value.get("group")))
    if duplicates:
        raise ValueError(f"{metadata}: " + _listing(duplicates, "duplicated path(s)"))
    if missing:
        raise ValueError(f"{metadata}: " + _listing(missing, "path(s) that do not exist")
                         + f" (relative paths are read from {base})")
    _report_ignored(ignored, metadata)
    return {s: e for s, e in entries.items() if e}, with_groups, base


@READERS.register("csv", file_names=True, options={
    "metadata": Field(None, str, "csv: the metadata CSV (columns path, label, optional group "
                      "and split)"),
    "columns": Field({}, dict, "csv: column names for the roles path, label, group, split "
                     "where they differ, e.g. {label: y, group: place}"),
    "image_size": IMAGE_SIZE, "channels": CHANNELS, "skip_unreadable": SKIP_UNREADABLE,
    "strict": STRICT})
def read_csv(data_dir=None, seed=0, metadata=None, columns=None, image_size=None, channels=None,
             skip_unreadable=False, cache_dir="cache", strict=False):
    """A metadata CSV (module docstring). Without a split column every row is training data
    (validation and test are then carved from it)."""
    if not metadata:
        raise ValueError("data.dataset csv needs data.metadata: the path of the CSV file")
    entries, with_groups, base = _csv_entries(metadata, columns)
    if "train" not in entries:
        raise ValueError(f"{metadata}: no training rows")
    return build_source(entries, base, image_size, channels, cache_dir, skip_unreadable,
                        with_groups=with_groups, strict=strict)


def read_eval_data(path, class_names, image_size, channels, cache_dir, columns=None,
                   skip_unreadable=False):
    """Images to evaluate a trained model on, with its classes and preprocessing: a folder
    (its test/ split if it has one, else the folder itself: <class>/* or <group>/<class>/*)
    or a CSV (its test rows if it has a split column, else every row). -> (Split with labels
    indexing ``class_names``, group names or None). A class the model lacks is an error."""
    if os.path.isfile(path):
        entries, with_groups, _ = _csv_entries(path, columns)
        rows = entries.get("test") or [e for split in entries.values() for e in split]
    elif os.path.isdir(path):
        folder = os.path.join(path, "test") if os.path.isdir(os.path.join(path, "test")) else path
        rows, depth, ignored = _scan_split(folder)
        _report_ignored(ignored, folder)
        with_groups = depth == 2
    else:
        raise ValueError(f"--data {path}: no such folder or file")
    if not rows:
        raise ValueError(f"--data {path}: no images")
    index = {str(c): i for i, c in enumerate(class_names)}
    unknown = sorted({c for _, c, _ in rows} - set(index))
    if unknown:
        raise ValueError(f"--data {path}: class(es) the model does not know: "
                         f"{', '.join(unknown[:SHOW])} (the model's classes: "
                         f"{', '.join(map(str, class_names[:10]))}{', ...' if len(class_names) > 10 else ''})")
    images, kept, _ = decode_all([p for p, _, _ in rows], image_size, channels, cache_dir,
                                 skip_unreadable, desc="decoding")
    labels = np.array([index[c] for _, c, _ in rows], np.int64)[kept]
    groups = names = None
    if with_groups:
        names, group_index = _names([g for _, _, g in rows])
        groups = np.array([group_index[g] for _, _, g in rows], np.int64)[kept]
    return Split(images, labels, groups), names


def list_images(path, columns=None):
    """The image files to predict: a folder searched recursively (sorted; other files are
    counted and ignored), or the path column of a CSV (relative to its folder). -> (full
    paths, names as shown: relative to the folder, or as the CSV writes them)."""
    if os.path.isdir(path):
        found, ignored = [], []
        for folder, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                (found if is_image(name) else ignored).append(os.path.join(folder, name))
        _report_ignored(ignored, path)
        names = [os.path.relpath(p, path) for p in found]
    elif os.path.isfile(path):
        cols = csv_columns(columns)
        base = os.path.dirname(os.path.abspath(path))
        header, rows = read_csv_rows(path)
        if header and cols["path"] not in header:
            raise ValueError(f"{path}: no {cols['path']!r} column (found {header})")
        at = header.index(cols["path"]) if header else 0
        names = [r[at].strip() for _, r in rows if len(r) > at and r[at].strip()]
        found = [os.path.normpath(n if os.path.isabs(n) else os.path.join(base, n)) for n in names]
        missing = [n for n, p in zip(names, found) if not os.path.isfile(p)]
        if missing:
            raise ValueError(f"{path}: " + _listing(missing, "path(s) that do not exist"))
    else:
        raise ValueError(f"{path}: no such folder or file")
    if not found:
        raise ValueError(f"{path}: no image files ({', '.join(EXTENSIONS)})")
    return found, names
