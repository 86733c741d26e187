"""The two ways chainrule can use two threads, measured per network:
``python -m benchmarks.thread_arrangements``.

* ``blas``: OpenBLAS splits every matrix product over the threads (and chainrule's pool splits
  the batch of convolutions, pooling and large elementwise passes);
* ``pool``: every product on one thread, the threads on the pool's batch splitting only;
* ``one``: one thread.

chainrule's default tries the first two while training and keeps the faster (``chainrule.cores``);
this shows why both are needed. Medians of interleaved repetitions in one process.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

from . import convnets, environment, mlp
from .common import machine, save_results, throughput

MLPS = {"MLP 784-256-128-10, batch 128": ((784, 256, 128, 10), 128, 100)}
MLPS["wide MLP 784-1024-1024-10, batch 256"] = ((784, 1024, 1024, 10), 256, 30)
NETS = {"mnist": 8, "lenet": 30, "cifar": 3}  # training steps per measurement


def cases() -> dict:
    """``{label: (step, batch, steps)}`` for chainrule's MLPs and convolutional networks."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12800, 784), dtype=np.float32)
    y = rng.integers(0, 10, 12800)
    found = {
        label: (mlp.chainrule_step(sizes, x, y, batch)[0], batch, steps)
        for label, (sizes, batch, steps) in MLPS.items()
    }
    for net, steps in NETS.items():
        images, labels = convnets.data(net)
        step = convnets.training_step("chainrule", net, images, labels, "adam", True)
        found[f"{net} net"] = (step, convnets.BATCH[net], steps)
    return found


def speed(arrangement: str, step, batch: int, steps: int) -> float:
    import chainrule as cr

    if arrangement == "one":
        cr.set_num_threads(1)
    else:
        cr.set_num_threads(2, arrangement=arrangement)
    return throughput(step, batch, steps, warmup=2)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.thread_arrangements")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    environment.as_users_have_it("benchmarks.thread_arrangements")
    lines = [
        f"Machine: {machine()}",
        f"CPU: {environment.cpu()}",
        f"Kernels: {environment.describe()}",
        f"chainrule training, samples/s, medians of {args.repeats} interleaved repetitions",
        "",
        f"| {'network':<38} | {'blas':>8} | {'pool':>8} | {'one':>8} | pool / blas |",
        f"|{'-' * 40}|{'-' * 10}|{'-' * 10}|{'-' * 10}|{'-' * 13}|",
    ]
    for label, (step, batch, steps) in cases().items():
        runs = {a: [] for a in ("blas", "pool", "one")}
        for _ in range(args.repeats):
            for arrangement in runs:
                runs[arrangement].append(speed(arrangement, step, batch, steps))
        median = {a: statistics.median(v) for a, v in runs.items()}
        lines.append(
            f"| {label:<38} | {median['blas']:>8,.0f} | {median['pool']:>8,.0f} | "
            f"{median['one']:>8,.0f} | {median['pool'] / median['blas']:>10.2f}x |"
        )
    text = "\n".join(lines)
    print(text)
    save_results("thread_arrangements", text)


if __name__ == "__main__":
    main()
