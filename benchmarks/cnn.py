"""LeNet-5 training speed and memory: chainrule vs PyTorch (CPU, same threads, same data).

conv 6@5x5 pad 2, ReLU, maxpool 2, conv 16@5x5, ReLU, maxpool 2, 120, 84, 10; batch 128; Adam.
``python -m benchmarks.cnn --framework chainrule`` runs one framework alone and prints a JSON line.
"""

from __future__ import annotations

import argparse
import json

from .common import (
    chainrule_training_step,
    mnist,
    peak_rss_mib,
    set_threads,
    throughput,
    torch_training_step,
)


def chainrule_step(x, y, batch):
    import chainrule as cr
    from chainrule import models

    cr.manual_seed(0)
    return chainrule_training_step(models.from_spec(models.LENET5, (1, 28, 28), 10), x, y, batch)


def torch_step(x, y, batch):
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )  # fmt: skip
    return torch_training_step(model, x, y, batch)


def images():
    (x, y), _, source = mnist()
    return x.reshape(-1, 1, 28, 28), y, source


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--framework", choices=["chainrule", "pytorch"], required=True)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    set_threads(args.threads, torch=args.framework == "pytorch")
    x, y, _ = images()
    step = (chainrule_step if args.framework == "chainrule" else torch_step)(x, y, 128)
    rate = throughput(step, 128, args.steps, warmup=3)
    print(json.dumps({"samples_per_s": rate, "peak_rss_mib": peak_rss_mib()}))


if __name__ == "__main__":
    main()
