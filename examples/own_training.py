"""SharpDRO in your own MindSpore script: your network, your dataset, mindspore.Model.

    pip install .            (from the repository: installs the `sharpdro` package)
    python examples/own_training.py [--steps 200]

Data here: NumPy arrays of (image, label, group); group 2 is rare and noisy, as the severe
images of a photon-limited set are. Replace make_data with your own arrays or pipeline.
"""
import argparse

import numpy as np

import sharpdro

sharpdro.configure_process()  # optional CPU settings; before MindSpore is imported
import mindspore as ms  # noqa: E402
from mindspore import nn  # noqa: E402
from mindspore.dataset import GeneratorDataset  # noqa: E402

GROUPS = ["bright", "dim", "dark"]


class Net(nn.Cell):  # any nn.Cell that maps images to logits
    def __init__(self, classes=4):
        super().__init__()
        self.body = nn.SequentialCell(nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.AvgPool2d(8, 8), nn.Flatten(), nn.Dense(32, classes))

    def construct(self, x):
        return self.body(x)


def make_data(n, seed):
    """(images N x 1 x 16 x 16 float32, labels int32, groups int32): class = bright quadrant,
    noise grows with the group, group 2 rare."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n).astype(np.int32)
    groups = rng.choice(3, n, p=[0.6, 0.35, 0.05]).astype(np.int32)
    x = np.zeros((n, 1, 16, 16), np.float32)
    for i, (c, g) in enumerate(zip(labels, groups)):
        x[i, 0, (c // 2) * 8:(c // 2) * 8 + 8, (c % 2) * 8:(c % 2) * 8 + 8] = 0.3
        x[i] += rng.normal(0, [0.5, 1.5, 3.0][g], (1, 16, 16))
    return x, labels, groups


def dataset(arrays, batch, shuffle):
    data = GeneratorDataset(list(zip(*arrays)), ["image", "label", "group"], shuffle=shuffle)
    return data.batch(batch, drop_remainder=shuffle)


def main(steps):
    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_seed(0)
    net = Net()
    optimizer = sharpdro.create_optimizer(net.trainable_params(), lr=0.05)
    step = sharpdro.create_train_step("sharpdro", net, optimizer, num_groups=len(GROUPS), rho=0.05)
    model = ms.Model(step, eval_network=sharpdro.GroupEvalCell(net),
                     metrics={"groups": sharpdro.GroupAccuracy(len(GROUPS), GROUPS)})
    train = dataset(make_data(32 * steps, seed=0), 32, shuffle=True)
    # TrainingGuard: one error at the first group id outside 0..2 or non-finite loss or weights
    model.train(1, train, callbacks=[sharpdro.TrainingGuard(step),
                                     sharpdro.GroupWeightMonitor(step, every=max(steps // 4, 1),
                                                                 group_names=GROUPS)])
    result = model.eval(dataset(make_data(1200, seed=1), 200, shuffle=False))["groups"]
    print("accuracy per group: " + ", ".join(f"{g} {100 * a:.1f} %" for g, a in result["acc"].items()))
    print(f"mean {100 * result['mean']:.1f} %, worst group {result['worst_group']} "
          f"{100 * result['worst']:.1f} %")
    ms.export(net, ms.Tensor(np.zeros((1, 1, 16, 16), np.float32)), file_name="own_model",
              file_format="MINDIR")
    print("exported own_model.mindir")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200)
    main(parser.parse_args().steps)
