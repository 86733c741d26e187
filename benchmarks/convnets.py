"""Convolutional networks, chainrule vs PyTorch: the same model code runs on both libraries.

* ``mnist``: PyTorch's classic MNIST example network (conv 32 and 64 of 3x3 on 28x28, ReLU, max
  pool, dropout 0.25, 9216-128, dropout 0.5, 128-10, log-softmax + NLL), batch 64;
* ``lenet``: LeNet-5 (conv 6@5x5 pad 2, pool, conv 16@5x5, pool, 120, 84, 10), batch 128;
* ``cifar``: a CIFAR-shaped network on random 3x32x32 data: 3x3 convolutions with 32-64-128
  channels, batch norm, ReLU, max pooling, one residual block, global average pooling, batch 128.

``python -m benchmarks.convnets --framework chainrule --net mnist`` trains one network alone and
prints a JSON line with its speed and peak memory (the parent benchmark runs each in a fresh
process for the memory figure).
"""

from __future__ import annotations

import argparse
import json
from types import SimpleNamespace

import numpy as np

from .common import mnist, peak_rss_mib, set_threads, throughput

BATCH = {"mnist": 64, "lenet": 128, "cifar": 128}


def library(framework: str) -> SimpleNamespace:
    """The names a model definition needs, from chainrule or from PyTorch."""
    if framework == "chainrule":
        import chainrule as cr
        from chainrule import nn, optim

        return SimpleNamespace(
            nn=nn, F=nn.functional, optim=optim, flatten=cr.flatten, seed=cr.manual_seed,
            tensor=lambda a: cr.Tensor._make(a, False), no_grad=cr.no_grad,
        )  # fmt: skip
    import torch

    return SimpleNamespace(
        nn=torch.nn, F=torch.nn.functional, optim=torch.optim, flatten=torch.flatten,
        seed=torch.manual_seed, tensor=torch.from_numpy, no_grad=torch.no_grad,
    )  # fmt: skip


def mnist_example_net(lib, dropout: bool = True):
    """PyTorch's examples/mnist network, written once for either library."""
    nn, F = lib.nn, lib.F

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 32, 3, 1)
            self.conv2 = nn.Conv2d(32, 64, 3, 1)
            self.dropout1 = nn.Dropout(0.25 if dropout else 0.0)
            self.dropout2 = nn.Dropout(0.5 if dropout else 0.0)
            self.fc1 = nn.Linear(9216, 128)
            self.fc2 = nn.Linear(128, 10)

        def forward(self, x):
            x = F.relu(self.conv2(F.relu(self.conv1(x))))
            x = self.dropout1(F.max_pool2d(x, 2))
            x = self.dropout2(F.relu(self.fc1(lib.flatten(x, 1))))
            return F.log_softmax(self.fc2(x), dim=1)

    return Net()


def lenet5(lib):
    nn = lib.nn
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )  # fmt: skip


def cifar_net(lib):
    """32 -> 64 (pool) -> residual 64 -> 128 (pool) -> global average -> 10, batch norm after
    every convolution."""
    nn, F = lib.nn, lib.F

    def block(c_in, c_out):
        return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]

    class Residual(nn.Module):
        def __init__(self, channels):
            super().__init__()
            self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(channels)
            self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(channels)

        def forward(self, x):
            y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
            return F.relu(x + y)

    return nn.Sequential(
        *block(3, 32), *block(32, 64), nn.MaxPool2d(2),
        Residual(64),
        *block(64, 128), nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10),
    )  # fmt: skip


def build(framework: str, net: str, dropout: bool = True):
    lib = library(framework)
    lib.seed(0)
    if net == "mnist":
        return mnist_example_net(lib, dropout)
    return {"lenet": lenet5, "cifar": cifar_net}[net](lib)


def optimizer(framework: str, name: str, params):
    """Adam (lr 1e-3) or Adadelta (lr 1.0, as the MNIST example); None if the library lacks it."""
    optim = library(framework).optim
    if name == "adam":
        return optim.Adam(params, lr=1e-3)
    rule = getattr(optim, "Adadelta", None)
    return rule(params, lr=1.0) if rule is not None else None


def data(net: str):
    """(x, y) float32 NCHW images and int64 labels: MNIST for mnist/lenet, random for cifar."""
    if net == "cifar":
        rng = np.random.default_rng(0)
        return (
            rng.standard_normal((1024, 3, 32, 32), dtype=np.float32),
            rng.integers(0, 10, 1024).astype(np.int64),
        )
    (x, y), _, _ = mnist()
    return x.reshape(-1, 1, 28, 28), y


def training_step(framework: str, net: str, x, y, optimizer_name="adam", dropout=True):
    """``step(i)``: forward, loss, zero_grad, backward, optimizer step on batch i; None if the
    library lacks the optimizer."""
    lib = library(framework)
    model = build(framework, net, dropout)
    model.train()
    opt = optimizer(framework, optimizer_name, model.parameters())
    if opt is None:
        return None
    batch = BATCH[net]
    batches = len(x) // batch
    if net == "mnist":
        loss_fn = lib.F.nll_loss  # the network ends in log_softmax, as the example
    else:
        loss_fn = lib.nn.CrossEntropyLoss()
    labels = y if framework == "chainrule" else lib.tensor(y)

    def step(i):
        lo = (i % batches) * batch
        loss = loss_fn(model(lib.tensor(x[lo : lo + batch])), labels[lo : lo + batch])
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--framework", choices=["chainrule", "pytorch"], required=True)
    parser.add_argument("--net", choices=sorted(BATCH), required=True)
    parser.add_argument("--optimizer", choices=["adam", "adadelta"], default="adam")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, help="default: each framework's own default")
    args = parser.parse_args()
    set_threads(args.threads, torch=args.framework == "pytorch")
    x, y = data(args.net)
    step = training_step(args.framework, args.net, x, y, args.optimizer)
    rate = throughput(step, BATCH[args.net], args.steps, warmup=3)
    print(json.dumps({"samples_per_s": rate, "peak_rss_mib": peak_rss_mib()}))


if __name__ == "__main__":
    main()
