"""The PyTorch side of benchmarks/step_time.py: the same models and train steps in PyTorch
eager mode, for a side-by-side time and memory comparison on the same CPU.

PyTorch is never a dependency of the project: this module is imported only by the
benchmark's PyTorch child process, and only where ``import torch`` works.

The SharpDRO step follows the authors' code: pass 1 (loss and gradient at theta), epsilon
from the batch-mean gradient, pass 2 at theta + epsilon with the BatchNorm moving statistics
frozen, then SGD (momentum 0.9, weight decay 5e-4) with g1 + g2.
"""
import torch
import torch.nn.functional as F
from torch import nn


class _Block(nn.Module):
    def __init__(self, in_c, out_c, stride, activate_before_residual):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_c)
        self.conv1 = nn.Conv2d(in_c, out_c, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_c)
        self.conv2 = nn.Conv2d(out_c, out_c, 3, 1, 1, bias=False)
        self.projection = in_c != out_c or stride != 1
        self.shortcut = nn.Conv2d(in_c, out_c, 1, stride, 0, bias=False) if self.projection else None
        self.activate_before_residual = activate_before_residual

    def forward(self, x):
        pre = F.leaky_relu(self.bn1(x), 0.1)
        if self.activate_before_residual:
            x = pre
        out = self.conv2(F.leaky_relu(self.bn2(self.conv1(pre)), 0.1))
        return (self.shortcut(x) if self.projection else x) + out


class WideResNet(nn.Module):
    def __init__(self, num_classes=10, in_channels=3, depth=28, widen_factor=2):
        super().__init__()
        n = (depth - 4) // 6
        widths = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.stem = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        blocks = []
        for stage, stride in enumerate((1, 2, 2)):
            for i in range(n):
                in_c = widths[stage] if i == 0 else widths[stage + 1]
                blocks.append(_Block(in_c, widths[stage + 1], stride if i == 0 else 1,
                                     stage == 0 and i == 0))
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(widths[3])
        self.fc = nn.Linear(widths[3], num_classes)

    def forward(self, x):
        x = F.leaky_relu(self.bn(self.blocks(self.stem(x))), 0.1)
        return self.fc(x.mean(dim=(2, 3)))


class SmallCNN(nn.Module):
    def __init__(self, num_classes=10, in_channels=3, width=32):
        super().__init__()

        def stage(i, o):
            return [nn.Conv2d(i, o, 3, 1, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU()]

        self.features = nn.Sequential(*(stage(in_channels, width) + [nn.MaxPool2d(2, 2)]
                                        + stage(width, 2 * width) + [nn.MaxPool2d(2, 2)]
                                        + stage(2 * width, 4 * width)))
        self.fc = nn.Linear(4 * width, num_classes)

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))


MODELS = {"wrn28_2": lambda: WideResNet(10, 3, 28, 2), "small_cnn": lambda: SmallCNN(10, 3)}


def _set_bn_momentum(model, momentum):
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = momentum


ALGORITHMS = ("erm", "sam", "groupdro", "sharpdro")


class Step:
    """One train step of ``algorithm`` on a fixed batch (SPEC sections 3 and 5).

    erm: SGD on the batch mean. groupdro: the group weights updated from the batch's group
    losses, SGD on sum_s w_s L_s. sam: gradient of the batch mean at theta + epsilon alone.
    sharpdro: g1 + gradient of sum_s w_s mean_{i in s}(l'_i - l_i) at theta + epsilon.
    """

    def __init__(self, model_key, algorithm, batch, size, num_groups=6, rho=0.05, eta=0.01,
                 seed=0):
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm {algorithm!r} is not one of {ALGORITHMS}")
        torch.manual_seed(seed)
        self.model = MODELS[model_key]()
        self.model.train()
        self.params = list(self.model.parameters())
        self.opt = torch.optim.SGD(self.params, lr=0.03, momentum=0.9, weight_decay=5e-4)
        self.algorithm, self.rho, self.eta, self.num_groups = algorithm, rho, eta, num_groups
        self.weights = torch.full((num_groups,), 1.0 / num_groups)
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(batch, 3, size, size, generator=g)
        self.y = torch.randint(0, 10, (batch,), generator=g)
        self.s = torch.randint(0, num_groups, (batch,), generator=g)
        self.onehot = F.one_hot(self.s, num_groups).float()
        self.counts = self.onehot.sum(0).clamp(min=1)

    def group_means(self, per_sample):
        return (per_sample @ self.onehot) / self.counts

    def update_weights(self, group_loss):
        w = self.weights * torch.exp(self.eta * (group_loss - group_loss.max()))
        self.weights = w / w.sum()

    def perturb(self):
        """theta += rho g / ||g|| from the gradients in .grad; returns epsilon."""
        with torch.no_grad():
            norm = torch.norm(torch.stack([p.grad.norm(2) for p in self.params]), 2)
            eps = [p.grad * (self.rho / (norm + 1e-12)) for p in self.params]
            for p, e in zip(self.params, eps):
                p.add_(e)
        return eps

    def restore(self, eps):
        with torch.no_grad():
            for p, e in zip(self.params, eps):
                p.sub_(e)

    def __call__(self):
        self.opt.zero_grad(set_to_none=True)
        per_sample = F.cross_entropy(self.model(self.x), self.y, reduction="none")
        loss = per_sample.mean()
        if self.algorithm == "groupdro":
            self.update_weights(self.group_means(per_sample.detach()))
            (self.weights * self.group_means(per_sample)).sum().backward()
        else:
            loss.backward()
        if self.algorithm in ("sam", "sharpdro"):
            eps = self.perturb()
            # pass 2 leaves the BatchNorm moving statistics alone (the authors' way)
            _set_bn_momentum(self.model, 0.0)
            per_sample_2 = F.cross_entropy(self.model(self.x), self.y, reduction="none")
            if self.algorithm == "sam":
                self.opt.zero_grad(set_to_none=True)
                per_sample_2.mean().backward()
            else:
                clean = per_sample.detach()
                self.update_weights(self.group_means(clean))
                (self.weights * self.group_means(per_sample_2 - clean)).sum().backward()  # + g1
            _set_bn_momentum(self.model, 0.1)
            self.restore(eps)
        self.opt.step()
        return float(loss.detach())
