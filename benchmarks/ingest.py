"""Ingesting a folder of the user's own JPEG files: decode speed and memory.

    python benchmarks/ingest.py [--sizes 5000 40000] [--root /tmp/ingest] [--no-rss]

For each N: a folder ROOT/N/{train,test}/<class>/*.jpg of N training and N/10 test JPEG
files, 96 px colour, 10 classes (made once, reused). Then

1. images/second to decode, resize to 64 px and cache the training folder with our reader
   (``datasets.folders.read_image_folder``, threads over all cores, cold cache), side by
   side with ``mindspore.dataset.ImageFolderDataset`` + ``Decode`` + ``Resize`` +
   ``CenterCrop`` (the same rule) with as many parallel workers, iterated to NumPy;
2. the peak RSS of ``train.py`` (sharpdro_agnostic, ``data.groups: none``, 20 steps, then a
   full evaluation of the carved validation and the test split) on that folder with a warm
   cache, read from the child's rusage (``ru_maxrss``). The goal: from 5 000 to 40 000 images
   the peak grows by less than a quarter of what the cached pixels grow by (the cache is
   memory-mapped and evaluation passes release their pages).
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from sharpdro.runtime import configure_process  # noqa: E402

configure_process()  # before MindSpore loads
SOURCE_SIZE, TARGET_SIZE, CLASSES = 96, 64, 10


def make_folder(root, n, seed=0):
    """N training and N/10 test JPEGs (smooth random colour images), made once."""
    from PIL import Image

    done = os.path.join(root, "complete")
    if os.path.isfile(done):
        return root
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(seed)
    for split, count in (("train", n), ("test", max(n // 10, CLASSES))):
        for i in range(count):
            c = i % CLASSES
            folder = os.path.join(root, split, f"class{c}")
            os.makedirs(folder, exist_ok=True)
            coarse = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
            img = Image.fromarray(coarse).resize((SOURCE_SIZE, SOURCE_SIZE), Image.BICUBIC)
            img.save(os.path.join(folder, f"{i:06d}.jpg"), quality=90)
    open(done, "w").close()
    return root


def ours(root, cache):
    from datasets.folders import read_image_folder

    shutil.rmtree(cache, ignore_errors=True)
    start = time.perf_counter()
    source = read_image_folder(root, image_size=TARGET_SIZE, channels=3, cache_dir=cache)
    seconds = time.perf_counter() - start
    return seconds, len(source.train) + len(source.test)


def mindspore_folder(root, workers):
    import mindspore.dataset as ds
    from mindspore.dataset import vision

    start = time.perf_counter()
    count = 0
    for split in ("train", "test"):
        data = ds.ImageFolderDataset(os.path.join(root, split), shuffle=False,
                                     num_parallel_workers=workers)
        data = data.map([vision.Decode(), vision.Resize(TARGET_SIZE), vision.CenterCrop(TARGET_SIZE)],
                        input_columns="image", num_parallel_workers=workers)
        images = [image for image, _ in data.create_tuple_iterator(output_numpy=True, num_epochs=1)]
        out = np.stack(images)  # what our reader ends with: one array
        count += len(out)
    return time.perf_counter() - start, count


def peak_rss(root, cache, run_dir):
    """Peak RSS (MiB) of a short train.py run plus its evaluation, in a child process."""
    cmd = [sys.executable, "train.py", "--config", "configs/quickstart.yaml",
           "--data.dataset", "image_folder", "--data_dir", root, "--groups", "none",
           "--algorithm.name", "sharpdro_agnostic", "--image_size", str(TARGET_SIZE),
           "--channels", "3", "--cache_dir", cache, "--run_dir", run_dir, "--overwrite",
           "--max_steps", "20", "--batch_size", "64", "--export_mindir", "false",
           # one evaluation batch size below both sizes' set sizes: the activations of a
           # batch then weigh the same for both, and only the data can make a difference
           "--eval_batch_size", "250",
           "--log_every", "10", "--mode", "graph"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode:
        raise SystemExit(f"train.py failed:\n{done.stdout[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if after <= before:
        print("  note: ru_maxrss of children is a running maximum; run one size per process "
              "for exact numbers", flush=True)
    return after / 1024.0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 40000])
    parser.add_argument("--root", default="/tmp/sharpdro_ingest")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--no-rss", action="store_true", help="skip the training runs")
    parser.add_argument("--rss-only", type=int, help=argparse.SUPPRESS)  # one child per size
    args = parser.parse_args(argv)
    if args.rss_only:
        root = os.path.join(args.root, str(args.rss_only))
        cache = os.path.join(root, "cache")
        print(json.dumps({"n": args.rss_only,
                          "peak_rss_mib": peak_rss(root, cache, os.path.join(root, "run"))}))
        return
    rows = []
    for n in args.sizes:
        root = make_folder(os.path.join(args.root, str(n)), n)
        cache = os.path.join(args.root, str(n), "cache")
        t_ms, count_ms = mindspore_folder(root, args.workers)
        t_ours, count = ours(root, cache)
        assert count == count_ms, (count, count_ms)
        row = {"n": count, "ours_img_s": count / t_ours, "mindspore_img_s": count / t_ms,
               "cached_mib": count * TARGET_SIZE * TARGET_SIZE * 3 / 2 ** 20}
        print(f"{count} JPEGs {SOURCE_SIZE}->{TARGET_SIZE} px: ours {row['ours_img_s']:.0f} img/s "
              f"({t_ours:.1f}s), ImageFolderDataset+Decode+Resize {row['mindspore_img_s']:.0f} img/s "
              f"({t_ms:.1f}s), ratio {t_ms / t_ours:.2f}x", flush=True)
        rows.append(row)
    if not args.no_rss:
        for row, n in zip(rows, args.sizes):
            # a fresh process per size: ru_maxrss of children is a maximum over all of them
            out = subprocess.run([sys.executable, __file__, "--root", args.root, "--rss-only", str(n)],
                                 stdout=subprocess.PIPE, text=True, check=True).stdout
            row["peak_rss_mib"] = json.loads(out.strip().splitlines()[-1])["peak_rss_mib"]
            print(f"{row['n']} images: peak RSS of train.py (20 steps + evaluation) "
                  f"{row['peak_rss_mib']:.0f} MiB", flush=True)
        if len(rows) >= 2:
            grow_rss = rows[-1]["peak_rss_mib"] - rows[0]["peak_rss_mib"]
            grow_pixels = rows[-1]["cached_mib"] - rows[0]["cached_mib"]
            print(f"from {rows[0]['n']} to {rows[-1]['n']} images: cached pixels +{grow_pixels:.0f} "
                  f"MiB, peak RSS +{grow_rss:.0f} MiB ({100 * grow_rss / grow_pixels:.0f} %; goal "
                  f"< 25 %)")


if __name__ == "__main__":
    main()
