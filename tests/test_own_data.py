"""The user's own images: image folders and a metadata CSV, with groups from the
photon-limited protocol (severity), from the data (given) or from nowhere (none); and every
bad input as a one-line error."""
import csv
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from datasets.folders import read_csv, read_image_folder
from sharpdro.config import load_config

CLASSES = ["cat", "dog", "owl"]
GROUPS = ["day", "night"]
SIZE = 12


def make_images(n, seed, channels=3, size=SIZE):
    rng = np.random.default_rng(seed)
    shape = (n, size, size) + ((channels,) if channels == 3 else ())
    return rng.integers(0, 256, shape, dtype=np.uint8)


def seed_of(split, g, c):
    return 100 * (split == "test") + 10 * g + c


def write_tree(root, per_class=(10, 4), groups=True, jpeg_every=3):
    """root/{train,test}/[<group>/]<class>/<i>.png|.jpg and a metadata CSV for the same files.
    Returns {relative path: (label, group, split)}."""
    meta = {}
    for split, n in zip(("train", "test"), per_class):
        for g, group in enumerate(GROUPS if groups else [None]):
            for c, name in enumerate(CLASSES):
                folder = os.path.join(root, split, *([group] if group else []), name)
                os.makedirs(folder, exist_ok=True)
                for i, img in enumerate(make_images(n, seed=seed_of(split, g, c))):
                    ext = ".jpg" if i % jpeg_every == 0 else ".png"
                    path = os.path.join(folder, f"{i:03d}{ext}")
                    Image.fromarray(img).save(path)
                    meta[os.path.relpath(path, root)] = (name, group, split)
    return meta


def write_csv(path, meta, columns=("path", "label", "group", "split")):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(columns)
        for rel, (label, group, split) in sorted(meta.items()):
            w.writerow([rel, label, group, split][:len(columns)])


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("own"))
    meta = write_tree(root)
    write_csv(os.path.join(root, "metadata.csv"), meta)
    return root, meta


def test_folder_and_csv_read_the_same_images(tree, tmp_path):
    root, meta = tree
    cache = str(tmp_path / "cache")
    folder = read_image_folder(root, cache_dir=cache)
    table = read_csv(metadata=os.path.join(root, "metadata.csv"), cache_dir=cache)
    assert folder.class_names == table.class_names == CLASSES
    assert folder.group_names == table.group_names == GROUPS
    assert folder.val is None and len(folder.train) == 2 * 3 * 10 and len(folder.test) == 2 * 3 * 4
    # the CSV lists files in another order: compare by file
    for split in ("train", "test"):
        a, b = getattr(folder, split), getattr(table, split)
        order = {f: i for i, f in enumerate(b.files)}
        idx = [order[f] for f in a.files]
        np.testing.assert_array_equal(a.images, np.asarray(b.images)[idx])
        np.testing.assert_array_equal(a.labels, b.labels[idx])
        np.testing.assert_array_equal(a.groups, b.groups[idx])
    # a PNG is read back exactly (no resize at its own size)
    i = folder.train.files.index(os.path.join("train", "day", "cat", "001.png"))
    want = make_images(10, seed=seed_of("train", 0, 0))[1]
    np.testing.assert_array_equal(folder.train.images[i], want)


def test_grey_and_non_square_images_follow_the_one_rule(tmp_path):
    root = tmp_path / "r"
    for split in ("train", "test"):
        (root / split / "a").mkdir(parents=True)
        Image.fromarray(np.tile(np.arange(40, dtype=np.uint8)[None], (20, 1))).save(root / split / "a" / "wide.png")
        Image.fromarray(make_images(1, 1)[0]).save(root / split / "a" / "colour.png")
        Image.fromarray(make_images(1, 2)[0]).save(root / split / "a" / "more.png")
    source = read_image_folder(str(root), image_size=10, channels=1, cache_dir=str(tmp_path / "c"))
    assert source.train.images.shape == (3, 10, 10, 1)
    wide = source.train.images[source.train.files.index(os.path.join("train", "a", "wide.png"))][..., 0]
    # 40 x 20 -> shorter side 20 to 10 (40 -> 20), centre crop 10 of 20: columns 10..29 of the original
    assert abs(int(wide[0, 0]) - 11) <= 1 and abs(int(wide[0, -1]) - 28) <= 1
    # default channels: what most images are (two colour, one grey)
    assert read_image_folder(str(root), image_size=10, cache_dir=str(tmp_path / "c")).train.images.shape[-1] == 3


def test_cache_is_reused_and_invalidated_when_a_file_changes(tmp_path, monkeypatch):
    import datasets.folders as F

    root = str(tmp_path / "r")
    write_tree(root, per_class=(3, 2), groups=False)
    cache = str(tmp_path / "cache")
    calls = []
    real = F.decode
    monkeypatch.setattr(F, "decode", lambda *a: calls.append(a[0]) or real(*a))
    first = read_image_folder(root, cache_dir=cache)
    assert len(calls) == 9 + 6
    calls.clear()
    again = read_image_folder(root, cache_dir=cache)
    assert calls == []  # every image from the cache
    assert isinstance(again.train.images, np.memmap)  # memory-mapped, not held in memory
    np.testing.assert_array_equal(first.train.images, again.train.images)
    edited = os.path.join(root, "train", "dog", "001.png")
    Image.fromarray(np.zeros((SIZE, SIZE, 3), np.uint8)).save(edited)
    os.utime(edited, ns=(1, 1))  # another mtime even on a coarse clock
    changed = read_image_folder(root, cache_dir=cache)
    assert len(calls) == 9  # the training split is read again, the test split is not
    i = changed.train.files.index(os.path.join("train", "dog", "001.png"))
    assert changed.train.images[i].max() == 0
    assert changed.fingerprint != first.fingerprint


def _cfg(tmp_path, **over):
    values = {"data.cache_dir": str(tmp_path / "cache"), "data.image_size": SIZE,
              "train.batch_size": 8}
    values.update(over)
    return load_config(None, values)


def test_severity_on_a_folder_equals_the_protocol_on_the_same_images(tmp_path):
    """The synthetic dataset written to files (class by class, in its own order) and read as
    an image folder: the same split and the same corrupted pixels as the built-in reader."""
    from datasets import prepare_arrays
    from datasets.synthetic import read_synthetic

    raw = read_synthetic(image_size=SIZE, channels=3, num_classes=3)
    root = tmp_path / "synthetic"
    for split in ("train", "test"):
        data = getattr(raw, split)
        for i, (img, label) in enumerate(zip(data.images, data.labels)):
            folder = root / split / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(folder / f"{i:05d}.png")
    common = {"data.num_per_class": 200, "data.corruption": "shot_noise", "data.channels": 3,
              "data.num_classes": 3}
    builtin = prepare_arrays(_cfg(tmp_path, **common))
    own = prepare_arrays(_cfg(tmp_path, **common, **{"data.dataset": "image_folder",
                                                     "data.data_dir": str(root)}))
    for a, b in zip(builtin.train, own.train):
        np.testing.assert_array_equal(a, b)
    for s in range(6):
        np.testing.assert_array_equal(builtin.test[s][0], own.test[s][0])
        np.testing.assert_array_equal(builtin.val[s][0], own.val[s][0])
    assert own.group_names == list(range(6)) and own.group_kind == "severity"
    assert own.class_names == ["0", "1", "2"]
    # no standard mean/std for own files: computed from the training images
    assert own.mean != builtin.mean and 0 < own.std[0] < 1


def test_given_groups_carve_a_stratified_validation_set(tree, tmp_path):
    from datasets import prepare_arrays

    root, _ = tree
    arrays = prepare_arrays(_cfg(tmp_path, **{"data.dataset": "image_folder", "data.data_dir": root,
                                              "data.groups": "given", "data.val_fraction": 0.2}))
    assert arrays.group_names == GROUPS and arrays.group_kind == "group"
    assert arrays.train_counts == [24, 24]  # 30 per group, 2 of each (class, group) carved
    assert list(arrays.val) == list(arrays.test) == GROUPS
    assert [len(arrays.val[g][1]) for g in GROUPS] == [6, 6]
    assert [len(arrays.test[g][1]) for g in GROUPS] == [12, 12]
    assert sorted(np.bincount(arrays.val["day"][1]).tolist()) == [2, 2, 2]


def test_no_groups_trains_one_group_and_evaluates_the_data_groups(tree, tmp_path):
    from datasets import prepare_arrays

    root, _ = tree
    arrays = prepare_arrays(_cfg(tmp_path, **{"data.dataset": "image_folder", "data.data_dir": root,
                                              "data.groups": "none"}))
    assert arrays.group_names == ["all"] and set(arrays.train[2]) == {0}
    assert list(arrays.test) == GROUPS  # the test data has groups: evaluated per group


TRAIN = ["--config", "configs/quickstart.yaml", "--data.dataset", "image_folder",
         "--image_size", str(SIZE), "--epochs", "2", "--batch_size", "8", "--eval_batch_size", "32",
         "--log_every", "4", "--mode", "graph", "--export_mindir", "false"]


@pytest.fixture(scope="module")
def given_run(tree, tmp_path_factory):
    import train as train_entry

    root, _ = tree
    out = tmp_path_factory.mktemp("given")
    argv = TRAIN + ["--data_dir", root, "--groups", "given", "--cache_dir", str(out / "cache")]
    train_entry.main(argv + ["--run_dir", str(out / "run")])
    return out, argv


def test_given_groups_train_end_to_end_under_their_names(given_run):
    import json

    out, _ = given_run
    run = out / "run"
    records = [json.loads(line) for line in (run / "eval.jsonl").read_text().splitlines()]
    assert [(r["epoch"], r["split"]) for r in records] == [(1, "val"), (1, "test"), (2, "val"), (2, "test")]
    for r in records:
        assert list(r["acc"]) == GROUPS and r["group_kind"] == "group"
        assert r["worst_acc"] == min(r["acc"].values())
        overall = sum(r["acc"][g] * r["count"][g] for g in GROUPS) / sum(r["count"].values())
        assert r["overall_acc"] == pytest.approx(overall)
    header = (run / "group_weights.csv").read_text().splitlines()[0]
    assert header == "epoch,step,w_day,w_night"
    assert (run / "train_log.csv").read_text().splitlines()[0].endswith("group_loss_day,group_loss_night")
    info = json.loads((run / "data.json").read_text())
    assert info["class_names"] == CLASSES and info["group_names"] == GROUPS
    assert info["image_size"] == SIZE and info["channels"] == 3 and len(info["mean"]) == 3
    for png in ("groups", "group_weights", "accuracy_by_group"):  # named by the group kind
        assert (run / "plots" / f"{png}.png").read_bytes()[:4] == b"\x89PNG"
    assert not (run / "plots" / "accuracy_by_severity.png").exists()


def test_eval_on_other_data_matches_classes_by_name(given_run, tree, tmp_path, capsys):
    import eval as eval_entry

    out, _ = given_run
    root, meta = tree
    # another folder: test/ only, classes in another order on disk, one class missing
    other = tmp_path / "other"
    for rel, (label, group, split) in meta.items():
        if split == "test" and label != "cat":
            dest = other / group / label / os.path.basename(rel)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(os.path.join(root, rel), dest)
    result = eval_entry.main(["--run", str(out / "run"), "--data", str(other)])
    assert list(result["acc"]) == GROUPS and sum(result["count"].values()) == 16
    assert (out / "run" / "evals" / "data_other_best.json").is_file()
    # the same images through the run's own test split give the same accuracy
    full = eval_entry.main(["--run", str(out / "run"), "--data", root])
    assert sum(full["count"].values()) == 24
    (other / "day" / "zebra").mkdir()
    shutil.copy(os.path.join(root, next(iter(meta))), other / "day" / "zebra" / "z.png")
    with pytest.raises(SystemExit, match="zebra"):
        eval_entry.main(["--run", str(out / "run"), "--data", str(other)])


def test_photon_sweep_of_a_given_groups_run_starts_from_the_images_as_given(given_run, capsys):
    """Given groups: the sweep's first column is the test set as the data has it, not 'clean'."""
    import eval as eval_entry

    out, _ = given_run
    run = out / "run"
    (result,) = eval_entry.main(["--run", str(run), "--photon-sweep", "--photons", "1e4,10,1"]).values()
    assert result["reference"] == "as given"
    printed = capsys.readouterr().out
    assert "photons  | as given " in printed and "of the accuracy as given" in printed
    assert "clean" not in printed
    rows = (run / "evals" / "photon_sweep.csv").read_text().splitlines()
    assert rows[1].startswith("as given,")


def test_resume_on_a_folder_dataset_equals_an_uninterrupted_run(given_run, tmp_path, monkeypatch):
    import train as train_entry
    from helpers import crash_at_epoch_2

    out, argv = given_run
    half = str(tmp_path / "half")
    undo = crash_at_epoch_2(monkeypatch)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_entry.main(argv + ["--run_dir", half])
    undo()
    train_entry.main(["--resume", half])
    assert (out / "run" / "eval.jsonl").read_text() == open(os.path.join(half, "eval.jsonl")).read()


@pytest.mark.parametrize("algorithm", ["groupdro", "sharpdro"])
def test_no_groups_refuses_group_algorithms(tree, tmp_path, algorithm):
    import train as train_entry

    root, _ = tree
    run = tmp_path / "run"
    with pytest.raises(SystemExit, match="sharpdro_agnostic"):
        train_entry.main(TRAIN + ["--data_dir", root, "--groups", "none", "--algorithm.name", algorithm,
                                  "--cache_dir", str(tmp_path / "c"), "--run_dir", str(run)])
    assert not run.exists()


@pytest.mark.slow
def test_msrun_two_ranks_on_a_folder_dataset(tree, tmp_path):
    import json

    from test_distributed import msrun

    root, _ = tree
    run = tmp_path / "dp"
    msrun(["train.py", *TRAIN, "--data_dir", root, "--groups", "given", "--cache_dir",
           str(tmp_path / "cache"), "--run_dir", str(run)], str(tmp_path / "logs"))
    records = [json.loads(line) for line in (run / "eval.jsonl").read_text().splitlines()]
    assert len(records) == 4 and list(records[-1]["acc"]) == GROUPS
    assert (run / "done").is_file()


# -- bad input: one line naming the file (and the CSV line) -------------------------------------
def _fresh(tmp_path, **kw):
    root = tmp_path / "bad"
    write_tree(str(root), per_class=(3, 2), **kw)
    return root


def _read(root, tmp_path, **kw):
    return read_image_folder(str(root), cache_dir=str(tmp_path / "c"), **kw)


def one_line(excinfo):
    text = str(excinfo.value)
    assert "\n" not in text, text
    return text


def test_missing_root_and_missing_splits(tmp_path):
    with pytest.raises(ValueError, match="no such folder") as e:
        _read(tmp_path / "nowhere", tmp_path)
    one_line(e)
    root = _fresh(tmp_path, groups=False)
    shutil.rmtree(root / "test")
    with pytest.raises(ValueError, match="no test/ folder"):
        _read(root, tmp_path)
    shutil.rmtree(root / "train")
    with pytest.raises(ValueError, match="no train/ folder"):
        _read(root, tmp_path)


def test_empty_class_folder_and_unknown_class(tmp_path):
    root = _fresh(tmp_path, groups=False)
    (root / "train" / "empty").mkdir()
    with pytest.raises(ValueError, match="empty class folder.*empty"):
        _read(root, tmp_path)
    (root / "train" / "empty").rmdir()
    (root / "test" / "emu").mkdir()
    shutil.copy(next((root / "test" / "cat").iterdir()), root / "test" / "emu" / "x.png")
    with pytest.raises(ValueError, match="test has class.*emu"):
        _read(root, tmp_path)


def test_unreadable_images_are_listed_or_skipped(tmp_path, capsys, caplog):
    root = _fresh(tmp_path, groups=False)
    broken = root / "train" / "dog" / "000.jpg"
    data = broken.read_bytes()
    broken.write_bytes(data[:len(data) // 2])  # truncated JPEG
    (root / "train" / "owl" / "junk.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="2 unreadable or truncated image.*000.jpg.*junk.png") as e:
        _read(root, tmp_path)
    one_line(e)
    with caplog.at_level("INFO", logger="datasets.folders"):
        source = _read(root, tmp_path, skip_unreadable=True)
    assert len(source.train) == 9 - 1  # 3 classes x 3 + junk - 2
    assert "skipped 2 unreadable image(s): " in capsys.readouterr().out
    # the count says what was read: 8 training and 6 test images, not the 16 files
    assert f"{root}: 14 images in train/test, 3 classes" in caplog.text


def test_other_files_are_ignored_and_counted(tmp_path, capsys):
    root = _fresh(tmp_path, groups=False)
    (root / "train" / "cat" / "notes.txt").write_text("x")
    (root / "train" / "README").write_text("x")
    source = _read(root, tmp_path)
    assert len(source.train) == 9
    assert "2 file(s)" in capsys.readouterr().out


def test_small_images_are_upscaled_with_a_warning(tmp_path, capsys):
    root = _fresh(tmp_path, groups=False)
    source = _read(root, tmp_path, image_size=2 * SIZE)
    assert source.train.images.shape[1:] == (2 * SIZE, 2 * SIZE, 3)
    assert "smaller than 24 px were upscaled" in capsys.readouterr().out


def test_csv_errors_name_the_line(tmp_path):
    root = _fresh(tmp_path)
    meta = {os.path.relpath(str(p), str(root)): (p.parent.name, p.parent.parent.name, p.parts[-4])
            for p in root.rglob("*") if p.is_file()}
    path = str(root / "m.csv")

    def check(rows, pattern, columns=("path", "label", "group", "split")):
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(columns)
            w.writerows(rows)
        with pytest.raises(ValueError, match=pattern) as e:
            read_csv(metadata=path, cache_dir=str(tmp_path / "c"))
        return one_line(e)

    good = [[rel, label, group, split] for rel, (label, group, split) in sorted(meta.items())]
    check([r[:3] for r in good], "no 'label' column", columns=("path", "y", "group"))
    check(good[:1] + [[good[1][0], good[1][1], good[1][2], "holdout"]], "line 3: split 'holdout'")
    check(good[:2] + [[good[2][0], "", good[2][2], "train"]], "line 4: empty label")
    check(good + [["nope/a.png", "cat", "day", "train"], ["nope/b.png", "cat", "day", "test"]],
          r"2 path\(s\) that do not exist: nope/a.png \(line \d+\), nope/b.png")
    check(good + [good[0]], "duplicated path")
    with pytest.raises(ValueError, match="no such file"):
        read_csv(metadata=str(root / "absent.csv"))
    # group_DRO's numbered splits and custom column names work
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["img", "y", "place", "split"])
        for rel, label, group, split in good:
            w.writerow([rel, label, group, {"train": 0, "test": 2}[split]])
    source = read_csv(metadata=path, columns={"path": "img", "label": "y", "group": "place"},
                      cache_dir=str(tmp_path / "c"))
    assert source.group_names == GROUPS and len(source.test) == 2 * 3 * 2


def _malformed_csv(path, good, last, close=""):
    """The rows ``good`` as a CSV whose second-to-last line ends in ``last`` and last line
    in ``close`` (raw text)."""
    lines = ["path,label,group,split"] + [",".join(r) for r in good]
    lines[-2] += last
    lines[-1] += close
    with open(path, "w", newline="") as f:
        f.write("\n".join(lines) + "\n")
    return len(lines) - 1  # the 1-based line number of the damaged line


@pytest.mark.parametrize("last,close,pattern", [
    (',"oops', "", r"line {n}: a quoted field .*not closed"),         # issue 32, item 7
    (',"oops', '"', r"line {n}: a field runs on to line {m}"),        # closed a line later
    (',"oops"', "", r"line {n}: 5 fields, the header has 4"),         # a stray field
    (',"a"b', "", r"line {n}: .*',' expected after '\"'"),            # text after a quote
])
def test_a_malformed_csv_is_refused_with_its_line(tmp_path, last, close, pattern):
    """An unbalanced quote near the end swallowed the next row into one field and the rest
    read as "N-1 images"; a malformed line is refused with its number instead."""
    root = _fresh(tmp_path)
    good = sorted([os.path.relpath(str(p), str(root)), p.parent.name, p.parent.parent.name,
                   p.parts[-4]] for p in root.rglob("*") if p.is_file())
    path = str(root / "m.csv")
    n = _malformed_csv(path, good, last, close)
    pattern = pattern.format(n=n, m=n + 1)
    with pytest.raises(ValueError, match=pattern) as e:
        read_csv(metadata=path, cache_dir=str(tmp_path / "c"))
    one_line(e)
    # the predict listing reads the same file the same way
    from datasets.folders import list_images
    with pytest.raises(ValueError, match=pattern):
        list_images(path)


def test_quoted_commas_and_quotes_in_a_csv_still_read(tmp_path):
    root = _fresh(tmp_path, groups=False)
    rows = sorted([os.path.relpath(str(p), str(root)), p.parent.name, p.parts[-3]]
                  for p in root.rglob("*") if p.is_file())
    first = root / rows[0][0]
    renamed = first.with_name('a, "b" c.png')
    first.rename(renamed)
    rows[0][0] = os.path.relpath(str(renamed), str(root))
    path = str(root / "m.csv")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "split"])
        w.writerows(rows)
    assert '"' in open(path).read()
    source = read_csv(metadata=path, cache_dir=str(tmp_path / "c"))
    assert len(source.train) + len(source.test) == len(rows)
    from datasets.folders import list_images
    assert str(renamed) in list_images(path)[0]


def test_group_errors(tree, tmp_path):
    from datasets import prepare_arrays

    flat = _fresh(tmp_path, groups=False)
    with pytest.raises(ValueError, match="given, but image_folder has no group labels"):
        prepare_arrays(_cfg(tmp_path, **{"data.dataset": "image_folder", "data.data_dir": str(flat),
                                         "data.groups": "given"}))
    root = _fresh(tmp_path / "g")
    shutil.rmtree(root / "test" / "night")
    (root / "test" / "dusk" / "cat").mkdir(parents=True)
    shutil.copy(next((root / "test" / "day" / "cat").iterdir()), root / "test" / "dusk" / "cat" / "a.png")
    with pytest.raises(ValueError, match="test has group.*dusk"):
        prepare_arrays(_cfg(tmp_path, **{"data.dataset": "image_folder", "data.data_dir": str(root),
                                         "data.groups": "given"}))


def test_group_without_test_images_is_a_warning(tmp_path, capsys):
    from datasets import prepare_arrays

    root = _fresh(tmp_path)
    shutil.rmtree(root / "test" / "night")
    arrays = prepare_arrays(_cfg(tmp_path, **{"data.dataset": "image_folder", "data.data_dir": str(root),
                                              "data.groups": "given"}))
    assert list(arrays.test) == ["day"]
    assert "group 'night' has no test images" in capsys.readouterr().out


def test_fewer_images_than_a_batch_writes_nothing(tmp_path):
    import train as train_entry

    root = _fresh(tmp_path, groups=False)
    run = tmp_path / "run"
    # num_per_class does nothing without the protocol: the hint must not name it
    with pytest.raises(SystemExit, match="fewer than one batch .*; add training images or "
                                         "lower train.batch_size"):
        train_entry.main(TRAIN + ["--data_dir", str(root), "--groups", "none", "--batch_size", "64",
                                  "--algorithm.name", "erm",
                                  "--cache_dir", str(tmp_path / "c"), "--run_dir", str(run)])
    assert not run.exists()


def test_worker_processes_decode_the_same_pixels(tmp_path, monkeypatch):
    """Large folders are decoded by spawned worker processes writing into the shared cache
    file: the same arrays as in-process decoding, and unreadable files still listed."""
    import datasets.folders as F

    root = _fresh(tmp_path, groups=False)
    inline = _read(root, tmp_path / "a")
    monkeypatch.setattr(F, "PROCESS_MIN", 4)
    monkeypatch.setattr(F, "CHUNK_FILES", 2)
    spawned = read_image_folder(str(root), cache_dir=str(tmp_path / "b"), channels=3)
    np.testing.assert_array_equal(inline.train.images, spawned.train.images)
    np.testing.assert_array_equal(inline.test.images, spawned.test.images)
    (root / "train" / "dog" / "junk.png").write_bytes(b"no")
    with pytest.raises(ValueError, match="1 unreadable or truncated image.*junk.png"):
        read_image_folder(str(root), cache_dir=str(tmp_path / "b"), channels=3)
    assert not [f for f in os.listdir(tmp_path / "b") if ".decoding" in f]  # no leftovers


# -- silent data mistakes: a misspelt label, an unknown group ------------------------------------
TEN = ["photo", "sketch", "cartoon", "painting", "clipart", "quickdraw", "infograph", "real",
       "product", "scan"]


def write_ten_classes(root, extra=()):
    """A metadata CSV of 10 classes x 2 groups (4 training and 1 test image each) and
    ``extra`` training rows (label, group). -> the CSV's path."""
    root.mkdir(parents=True, exist_ok=True)
    rows, images = [], iter(make_images(10 * 2 * 5 + len(extra), seed=7))
    for c, label in enumerate(TEN):
        for g, group in enumerate(GROUPS):
            for i in range(5):
                rows.append((f"{label}_{group}_{i}.png", label, group, "test" if i == 4 else "train"))
    rows += [(f"extra_{i}.png", label, group, "train") for i, (label, group) in enumerate(extra)]
    for name, *_ in rows:
        Image.fromarray(next(images)).save(root / name)
    write_csv(str(root / "metadata.csv"), {r[0]: r[1:] for r in rows})
    return str(root / "metadata.csv")


def test_a_misspelt_label_and_an_unknown_group_are_warned_about(tmp_path, capsys):
    # the case: one training row labelled 'phto' among 'photo' rows, one of group 'dusk'
    path = write_ten_classes(tmp_path / "typo", extra=[("phto", "day"), ("photo", "dusk")])
    source = read_csv(metadata=path, cache_dir=str(tmp_path / "c"))
    assert len(source.class_names) == 11  # still read (a warning, not an error)
    out = capsys.readouterr().out
    assert ("class 'phto' has 1 training image(s), none in validation or test (did you mean "
            "'photo'?)") in out
    dusk = next(line for line in out.splitlines() if "group 'dusk'" in line)
    assert dusk.startswith("warning: ") and "1 training image(s)" in dusk
    assert "did you mean" not in dusk  # not close to day or night: no suggestion
    # data.strict: the same as one error line
    with pytest.raises(ValueError, match=r"class 'phto' has 1 .*did you mean 'photo'.*; "
                                         r"group 'dusk' has 1 .*data.strict") as e:
        read_csv(metadata=path, cache_dir=str(tmp_path / "c"), strict=True)
    one_line(e)


def test_a_clean_dataset_gives_no_rare_name_warning(tree, tmp_path, capsys):
    root, _ = tree
    read_csv(metadata=os.path.join(root, "metadata.csv"), cache_dir=str(tmp_path / "c"),
             strict=True)
    read_csv(metadata=write_ten_classes(tmp_path / "ten"), cache_dir=str(tmp_path / "c"))
    assert "warning" not in capsys.readouterr().out


def test_a_misspelt_class_folder_is_warned_about(tmp_path, capsys):
    root = _fresh(tmp_path, groups=False)
    (root / "train" / "dogg").mkdir()
    shutil.copy(next((root / "train" / "dog").iterdir()), root / "train" / "dogg" / "x.png")
    assert _read(root, tmp_path).class_names == ["cat", "dog", "dogg", "owl"]
    assert "class 'dogg' has 1 training image(s), none in validation or test (did you mean 'dog'?)" \
        in capsys.readouterr().out
    with pytest.raises(ValueError, match="class 'dogg'"):
        _read(root, tmp_path, strict=True)


def test_strict_stops_train_py_before_anything_is_written(tmp_path):
    import train as train_entry

    path = write_ten_classes(tmp_path / "typo", extra=[("phto", "day")])
    run = tmp_path / "run"
    with pytest.raises(SystemExit, match="did you mean 'photo'") as e:
        train_entry.main(TRAIN + ["--data.dataset", "csv", "--data.metadata", path, "--groups",
                                  "given", "--data.strict", "true", "--cache_dir",
                                  str(tmp_path / "c"), "--run_dir", str(run)])
    assert "\n" not in str(e.value.code)
    assert not run.exists()


@pytest.mark.parametrize("config", ["quickstart", "own_folder", "own_csv_given"])
def test_the_readme_configs_set_nothing_their_algorithm_ignores(config):
    """The README's runs print no 'is ignored' warning (own_csv_given set irm's anneal_steps;
    the comparison's irm and vrex rows now pass it: tests/test_benchmarks.py)."""
    from callbacks.checks import ignored_settings

    assert ignored_settings(load_config(f"configs/{config}.yaml")) == []
