"""Flatness of a trained model's loss on each severity's test set.

    python benchmarks/flatness.py --run runs/<name> [--run runs/<other> ...] [--out results/flatness]

For each run (its best.ckpt, else last.ckpt) and each severity s, on up to --images test
images of severity s (BatchNorm in inference mode, so the loss is a fixed function of the
weights theta):

- grad_rise: L(theta + rho g/||g||) - L(theta), g the gradient of L: the sharpness SAM and
  SharpDRO minimise, at the same radius rho (default: the run's algorithm.rho);
- random_rise: the mean of L(theta + rho d) - L(theta) over --directions random unit
  directions d (Gaussian, normalised over all weights);
- top_eigenvalue: the largest Hessian eigenvalue, by power iteration on Hessian-vector
  products; H v is the central difference (g(theta + e v) - g(theta - e v)) / 2e with
  e = 1e-3, accurate to O(e^2) (MindSpore's double backward through BatchNorm is not
  available on every backend).

Prints a table; with --out writes <out>.md, <out>.json and <out>.png (mean over the runs
of each algorithm, by severity).
"""
import argparse
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from sharpdro.runtime import configure_process  # noqa: E402
configure_process()  # before MindSpore loads (sharpdro/runtime.py)
from sharpdro.runtime import set_context  # noqa: E402


def _loss_grad_cell(net, params):
    from mindspore import nn, ops

    class LossGrad(nn.Cell):
        """Summed CE and its gradient; a Cell so graph mode compiles it once and reads the
        weights' current values at every call."""

        def __init__(self):
            super().__init__(auto_prefix=False)
            self.net, self.params = net, params
            self.grad = ops.GradOperation(get_by_list=True)

        def loss(self, x, y):
            return ops.cross_entropy(self.net(x), y, reduction="sum")

        def construct(self, x, y):
            return self.loss(x, y), self.grad(self.loss, self.params)(x, y)

    return LossGrad()


class Landscape:
    """Loss and gradient of a network on fixed data as functions of a flat weight vector."""

    def __init__(self, net, images, labels, batch_size=500):
        import mindspore as ms

        self.ms = ms
        self.net = net
        self.params = net.trainable_params()
        self.shapes = [p.shape for p in self.params]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.theta0 = self.get()
        self.batches = [(ms.Tensor(images[i:i + batch_size]), ms.Tensor(labels[i:i + batch_size]))
                        for i in range(0, len(labels), batch_size)]
        self.n = len(labels)

        self.value_and_grad = _loss_grad_cell(net, self.params)

    def get(self):
        return np.concatenate([p.asnumpy().reshape(-1) for p in self.params]).astype(np.float64)

    def set(self, flat):
        start = 0
        for p, shape, size in zip(self.params, self.shapes, self.sizes):
            p.set_data(self.ms.Tensor(flat[start:start + size].reshape(shape).astype(np.float32)))
            start += size

    def loss_grad(self, theta, grad=True):
        self.set(theta)
        total, grads = 0.0, None
        for x, y in self.batches:
            value, g = self.value_and_grad(x, y)
            total += float(value.asnumpy())
            if grad:
                flat = np.concatenate([t.asnumpy().reshape(-1) for t in g]).astype(np.float64)
                grads = flat if grads is None else grads + flat
        self.set(self.theta0)
        return total / self.n, (grads / self.n if grad else None)

    def loss(self, theta):
        return self.loss_grad(theta, grad=False)[0]


def measure(land, rho, directions, power_iters, seed=0, e=1e-3):
    theta = land.theta0
    base, g = land.loss_grad(theta)
    grad_rise = land.loss(theta + rho * g / (np.linalg.norm(g) + 1e-12)) - base
    rng = np.random.default_rng(seed)
    rises = []
    for _ in range(directions):
        d = rng.normal(size=theta.shape)
        rises.append(land.loss(theta + rho * d / np.linalg.norm(d)) - base)
    v = rng.normal(size=theta.shape)
    v /= np.linalg.norm(v)
    eigenvalue = 0.0
    for _ in range(power_iters):
        hv = (land.loss_grad(theta + e * v)[1] - land.loss_grad(theta - e * v)[1]) / (2 * e)
        eigenvalue = float(v @ hv)
        v = hv / (np.linalg.norm(hv) + 1e-12)
    return {"loss": base, "grad_rise": grad_rise, "random_rise": float(np.mean(rises)),
            "top_eigenvalue": eigenvalue}


def run_flatness(run_dir, rho, images, directions, power_iters):
    from datasets import build_data
    from datasets.pipeline import normalise
    from sharpdro import config as C
    from sharpdro.checkpoint import create_trained_model
    from callbacks.run_folder import RunFolder

    folder = RunFolder(run_dir)
    ckpt = folder.model_checkpoint()
    if ckpt is None:
        raise SystemExit(f"{run_dir} has no checkpoint")
    cfg = C.load_config(folder.file(RunFolder.CONFIG))
    set_context(cfg.device_target, "graph", cfg.device_id)
    data = build_data(cfg)
    net = create_trained_model(cfg.model, data.num_classes, data.in_channels, ckpt)
    rho = cfg.algorithm.rho if rho is None else rho
    out = {"run": run_dir, "algorithm": cfg.algorithm.name, "seed": cfg.seed, "rho": rho,
           "severity": {}}
    for s, test in sorted(data.test.items()):
        pick = np.random.default_rng([cfg.seed, s]).permutation(len(test))[:images]
        x = normalise(test.images[pick], test.mean, test.std)  # only the images used
        land = Landscape(net, x, test.labels[pick])
        out["severity"][s] = measure(land, rho, directions, power_iters)
        m = out["severity"][s]
        print(f"{cfg.algorithm.name:>18} seed {cfg.seed} severity {s}: loss {m['loss']:.4f} "
              f"grad_rise {m['grad_rise']:.4f} random_rise {m['random_rise']:.5f} "
              f"top_eig {m['top_eigenvalue']:.2f}", flush=True)
    return out


def report(results, out):
    by_algorithm = {}
    for r in results:
        by_algorithm.setdefault(r["algorithm"], []).append(r)
    severities = sorted(results[0]["severity"])
    keys = ("grad_rise", "random_rise", "top_eigenvalue")
    lines = [f"# Flatness by severity (test images, rho = {results[0]['rho']}); mean +- std "
             "over runs", ""]
    summary = {}
    for key in keys:
        lines += [f"## {key}", "", "| algorithm | runs | " + " | ".join(map(str, severities)) + " |",
                  "|---" * (len(severities) + 2) + "|"]
        for a, runs in by_algorithm.items():
            values = np.array([[r["severity"][s][key] for s in severities] for r in runs])
            std = values.std(0, ddof=1) if len(runs) > 1 else np.zeros(len(severities))
            summary.setdefault(a, {})[key] = {"mean": values.mean(0).tolist(), "std": std.tolist()}
            lines.append(f"| {a} | {len(runs)} | "
                         + " | ".join(f"{m:.4g} +- {d:.2g}" for m, d in zip(values.mean(0), std)) + " |")
        lines.append("")
    text = "\n".join(lines)
    print(text)
    if not out:
        return
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out + ".md", "w") as f:
        f.write(text)
    with open(out + ".json", "w") as f:
        json.dump({"runs": results, "summary": summary}, f, indent=2)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(keys), figsize=(13, 3.6))
    for ax, key in zip(axes, keys):
        for a, stats in summary.items():
            ax.errorbar(severities, stats[key]["mean"], yerr=stats[key]["std"], marker="o",
                        capsize=3, label=a)
        ax.set_xlabel("severity")
        ax.set_title(key)
    axes[0].legend(fontsize=8)
    fig.savefig(out + ".png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(f"written: {out}.md, {out}.json, {out}.png")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--run", action="append", required=True, help="run folder (repeatable)")
    parser.add_argument("--rho", type=float, help="radius (default: each run's algorithm.rho)")
    parser.add_argument("--images", type=int, default=1000, help="test images per severity")
    parser.add_argument("--directions", type=int, default=10)
    parser.add_argument("--power_iters", type=int, default=20)
    parser.add_argument("--out", help="output prefix for .md/.json/.png")
    args = parser.parse_args(argv)
    for run in args.run:
        if not os.path.isfile(os.path.join(run, "config.yaml")):
            parser.error(f"{run} is not a run folder (no config.yaml)")
    results = [run_flatness(r, args.rho, args.images, args.directions, args.power_iters)
               for r in args.run]
    report(results, args.out)
    return results


if __name__ == "__main__":
    main()
