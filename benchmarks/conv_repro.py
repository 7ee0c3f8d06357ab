"""Smallest reproduction for MindSpore's issue tracker: on the CPU, MindSpore 2.10 runs every
convolution through oneDNN's im2col + GEMM implementation (``x64:gemm:jit``) on plain NCHW
memory, where PyTorch (same oneDNN family, same machine, same thread count) gets the direct
JIT kernels (``jit:avx2``) on blocked ``nChw8c`` memory.

    python benchmarks/conv_repro.py          # needs PyTorch for the second half

Standalone on purpose (no project imports): one 3x3 convolution, forward and both
gradients, timed in each framework, with oneDNN's own log naming the implementation.
"""
import importlib.util
import os
import subprocess
import sys

SHAPES = [(128, 32, 32, 32, 1), (128, 64, 16, 64, 1), (128, 128, 8, 128, 1)]
REPEAT = 6



def mindspore_step(n, c, h, k, s):
    import numpy as np
    import mindspore as ms
    from mindspore import nn, ops

    ms.set_device("CPU")
    ms.set_context(mode=ms.GRAPH_MODE)
    conv = nn.Conv2d(c, k, 3, stride=s, pad_mode="pad", padding=1, has_bias=False)

    class Loss(nn.Cell):
        def __init__(self):
            super().__init__()
            self.conv = conv

        def construct(self, x, dy):
            return (self.conv(x) * dy).sum()

    x = ms.Tensor(np.random.randn(n, c, h, h).astype(np.float32))
    dy = ms.Tensor(np.random.randn(n, k, h // s, h // s).astype(np.float32))
    # a train step as in a network: the input gradient is needed by the layer below, so
    # ask for it too, and keep both inside the graph (an SGD step with lr 0 on the weights)
    loss = Loss()
    grad = ms.value_and_grad(loss, 0, conv.trainable_params())
    opt = nn.SGD(conv.trainable_params(), learning_rate=0.0)

    class Step(nn.Cell):
        def __init__(self):
            super().__init__()
            self.opt = opt

        def construct(self, x, dy):
            value, (dx, dw) = grad(x, dy)
            return ops.depend(value + dx.sum(), self.opt(dw))

    step = Step()
    return lambda: step(x, dy).asnumpy()


def torch_step(n, c, h, k, s):
    import torch

    torch.set_num_threads(os.cpu_count())
    conv = torch.nn.Conv2d(c, k, 3, stride=s, padding=1, bias=False)
    x = torch.randn(n, c, h, h, requires_grad=True)
    dy = torch.randn(n, k, h // s, h // s)
    return lambda: (conv(x) * dy).sum().backward()


def main():
    if len(sys.argv) == 3:  # child: framework, shape index
        shape = SHAPES[int(sys.argv[2])]
        run = (mindspore_step if sys.argv[1] == "mindspore" else torch_step)(*shape)
        for _ in range(2):
            run()
        print("=====START", flush=True)
        for _ in range(REPEAT):
            run()
        print("=====END", flush=True)
        return
    env = dict(os.environ, ONEDNN_VERBOSE="1", ONEDNN_MAX_CPU_ISA=os.environ.get(
        "ONEDNN_MAX_CPU_ISA", "AVX2"), GLOG_v="3")
    frameworks = ["mindspore"]
    if importlib.util.find_spec("torch") is not None:
        frameworks.append("torch")
    else:
        print("(PyTorch is not importable: its half is left out)")
    print(f"{os.cpu_count()} CPUs; ms per call, median over {REPEAT} forward + backward calls")
    print("| framework | N x C x H x W -> K | pass | oneDNN implementation | src memory | ms |")
    print("|---|---|---|---|---|---:|")
    for i, (n, c, h, k, s) in enumerate(SHAPES):
        for framework in frameworks:
            out = subprocess.run([sys.executable, os.path.abspath(__file__), framework, str(i)],
                                 capture_output=True, text=True, env=env)
            if out.returncode:
                sys.stderr.write(out.stderr[-2000:])
                raise SystemExit(f"{framework} child failed")
            lines = out.stdout.splitlines()
            body = lines[lines.index("=====START") + 1:lines.index("=====END")]
            calls = {}
            for line in body:
                f = line.split(",")
                if len(f) > 8 and f[2] == "primitive" and f[3] == "exec" and f[5] == "convolution" \
                        and "kh3" in f[-2]:
                    src = f[8].split()[0].split(":")[4] if f[8].count(":") > 3 else f[8]
                    calls.setdefault((f[7], f[6], src), []).append(float(f[-1]))
            for (prop, impl, src), times in sorted(calls.items()):
                times.sort()
                print(f"| {framework} | {n}x{c}x{h}x{h} -> {k} | {prop} | {impl} | {src} | "
                      f"{times[len(times) // 2]:.1f} |", flush=True)


if __name__ == "__main__":
    main()
