"""Our corruptions against the published per-image code, side by side, single-threaded.

For every corruption, all five severities of N colour images (default 512 at 32 px): ours
(``datasets.corruptions.corrupt`` on the batch, ImageNet-C constants, in a fresh process
per corruption so that one-off costs such as building the noise tables are counted) and
the published per-image code (``imagecorruptions`` 1.1.2, Hendrycks' scripts; skipped with
a note if it is not installed). Prints seconds, the ratio published / ours per corruption,
the total and the geometric mean of the ratios.

    python benchmarks/corruption_speed.py [--images 512] [--size 32] [--names a,b,...]
                                          [--repeat 1]

``--repeat k`` times every side of every corruption k times, each in a fresh process, and
keeps the fastest (the machines here are noisy: the same run varies by 20-30 %).

Also prints the batch throughput at the protocol's sizes (60000 at 28 px grey, 10000 at
32 px colour) with ``--throughput``.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

# single-threaded on both sides; set before NumPy, SciPy and OpenCV load
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def images(n, size, channels=3):
    """Natural-looking test images: smooth colour texture (upsampled noise)."""
    import cv2

    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (n, max(2, size // 4), max(2, size // 4), channels), dtype=np.uint8)
    out = [cv2.resize(img, (size, size), interpolation=cv2.INTER_CUBIC) for img in small]
    return np.stack(out).reshape(n, size, size, channels)


def time_ours(name, n, size):
    """Seconds for severities 1..5 in this (fresh) process."""
    import cv2

    cv2.setNumThreads(1)
    from datasets.corruptions import corrupt

    x = images(n, size)
    start = time.perf_counter()
    for severity in range(1, 6):
        corrupt(x, name, severity, np.random.default_rng(severity), table="imagenet_c")
    return time.perf_counter() - start


def time_published(name, n, size):
    import cv2
    import warnings

    cv2.setNumThreads(1)
    warnings.filterwarnings("ignore")
    import imagecorruptions
    import imagecorruptions.corruptions as published
    import skimage.filters

    def gaussian(image, sigma=1, multichannel=None, **kwargs):  # old scikit-image keyword
        if multichannel is not None:
            kwargs["channel_axis"] = -1 if multichannel else None
        return skimage.filters.gaussian(image, sigma=sigma, **kwargs)

    published.gaussian = gaussian
    x = images(n, size)
    start = time.perf_counter()
    for severity in range(1, 6):
        np.random.seed(severity)
        for img in x:
            imagecorruptions.corrupt(img, severity=severity, corruption_name=name)
    return time.perf_counter() - start


def in_fresh_process(side, name, n, size):
    code = (f"import sys; sys.path.insert(0, {ROOT!r}); sys.argv = ['x']; "
            f"from benchmarks.corruption_speed import time_{side}; "
            f"print(time_{side}({name!r}, {n}, {size}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return float(out.stdout.strip().splitlines()[-1])


def throughput():
    from datasets.corruptions import corrupt
    from datasets import CORRUPTIONS

    sets = {"28x28x1": images(60000, 28, 1), "32x32x3": images(10000, 32, 3)}
    print(f"\nseconds per severity, default tables "
          f"({', '.join(f'{len(v)} at {k}' for k, v in sets.items())})")
    print(f"{'corruption':<18} {'set':<8} " + " ".join(f"{'s' + str(s):>7}" for s in range(1, 6)))
    for name in CORRUPTIONS.names():
        for key, x in sets.items():
            times = []
            for s in range(1, 6):
                start = time.perf_counter()
                corrupt(x, name, s, np.random.default_rng(0))
                times.append(time.perf_counter() - start)
            print(f"{name:<18} {key:<8} " + " ".join(f"{t:7.2f}" for t in times), flush=True)


def main():
    from datasets import CORRUPTIONS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--names", default=",".join(CORRUPTIONS.names()))
    parser.add_argument("--repeat", type=int, default=1,
                        help="fresh-process runs per side and corruption; the fastest counts")
    parser.add_argument("--throughput", action="store_true")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    try:
        import imagecorruptions  # noqa: F401
        have_published = True
    except ImportError:
        have_published = False
        print("imagecorruptions is not installed: timing ours only (setup.sh installs it)")
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    print(f"{args.images} colour images at {args.size} px, severities 1-5, single-threaded, "
          f"ImageNet-C constants; fastest of {args.repeat} fresh process(es) per side")
    print(f"{'corruption':<18} {'ours s':>8} {'published s':>12} {'published/ours':>15}")
    rows = []
    for name in args.names.split(","):
        ours = min(in_fresh_process("ours", name, args.images, args.size)
                   for _ in range(args.repeat))
        theirs = min(in_fresh_process("published", name, args.images, args.size)
                     for _ in range(args.repeat)) if have_published else None
        rows.append({"corruption": name, "ours_s": ours, "published_s": theirs})
        ratio = f"{theirs / ours:14.1f}x" if theirs else ""
        print(f"{name:<18} {ours:8.3f} {theirs or float('nan'):12.3f} {ratio}", flush=True)
    if have_published:
        from datasets.benchmark import STANDARD

        standard = [r for r in rows if r["corruption"] in STANDARD] or rows
        ratios = [r["published_s"] / r["ours_s"] for r in standard]
        total_ours = sum(r["ours_s"] for r in standard)
        total_theirs = sum(r["published_s"] for r in standard)
        geo = math.exp(sum(map(math.log, ratios)) / len(ratios))
        print(f"{'total':<18} {total_ours:8.2f} {total_theirs:12.2f} {total_theirs / total_ours:14.1f}x"
              f"   (the {len(standard)} benchmark corruptions)")
        print(f"geometric mean of the ratios {geo:.1f}x; slowest {min(ratios):.1f}x "
              f"({standard[ratios.index(min(ratios))]['corruption']})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    if args.throughput:
        throughput()


if __name__ == "__main__":
    main()
