"""Seconds to corrupt 60000 images at 28x28x1 and 10000 at 32x32x3, every corruption and
severity, and the speed-up of the batched noise family over a per-image Python loop.

The loop baseline is what the original per-image corruption scripts do: for each image,
draw float64 noise with NumPy and apply the float formula (our ``corrupt_reference``).

    python benchmarks/corruption_speed.py [--names gaussian_noise,...] [--scale 1.0]
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from datasets.corruptions import (CORRUPTIONS, NOISE, constant, corrupt,  # noqa: E402
                                  corrupt_reference, quantile_table)


def images(n, size, channels):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, size, size, channels), dtype=np.uint8)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--names", default=",".join(CORRUPTIONS.names()))
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the image counts")
    args = parser.parse_args()
    sets = {"28x28x1": images(int(60000 * args.scale), 28, 1),
            "32x32x3": images(int(10000 * args.scale), 32, 3)}
    print(f"seconds per severity ({', '.join(f'{len(v)} at {k}' for k, v in sets.items())})")
    print(f"{'corruption':<18} {'set':<8} " + " ".join(f"{'s' + str(s):>7}" for s in range(1, 6)))
    for name in args.names.split(","):
        for key, x in sets.items():
            times = []
            for s in range(1, 6):
                start = time.perf_counter()
                corrupt(x, name, s, np.random.default_rng(0))
                times.append(time.perf_counter() - start)
            print(f"{name:<18} {key:<8} " + " ".join(f"{t:7.2f}" for t in times), flush=True)
    print("\nbatched noise family against a per-image loop of the float definition (severity 3):")
    for key, x in sets.items():
        for name in NOISE:
            c = constant(name, 3, x.shape[1])
            quantile_table(name, c)  # built once per constant and reused: not part of the time
            start = time.perf_counter()
            corrupt(x, name, 3, np.random.default_rng(0))
            batched = time.perf_counter() - start
            rng = np.random.default_rng(0)
            start = time.perf_counter()
            for img in x:
                corrupt_reference(img[None], name, c, rng)
            loop = time.perf_counter() - start
            print(f"{name:<18} {key:<8} batched {batched:6.3f}s  loop {loop:6.3f}s  "
                  f"speed-up {loop / batched:5.1f}x", flush=True)

if __name__ == "__main__":
    main()
