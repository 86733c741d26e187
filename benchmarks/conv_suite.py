"""The convolutional part of ``python -m benchmarks``: training speed and peak memory of three
networks, per-layer times of their biggest convolutions, and the full MNIST example run, all
chainrule vs PyTorch in one process (memory: one fresh process per framework and network).

``python -m benchmarks.conv_suite --net mnist`` measures only the training rows of some networks
(interleaved, the same environment as the whole benchmark), for quick iterations.
"""

from __future__ import annotations

import argparse
import json
import time

from . import conv_layers, convnets, environment, mnist_example
from .common import in_subprocess, interleaved_medians, mnist, set_threads, thread_args, throughput

# label, network, optimizer, dropout
TRAINING_CASES = [
    ("MNIST example net, Adam", "mnist", "adam", True),
    ("MNIST example net, Adam, no dropout", "mnist", "adam", False),
    ("MNIST example net, Adadelta", "mnist", "adadelta", True),
    ("MNIST example net, Adadelta, no dropout", "mnist", "adadelta", False),
    ("LeNet-5, Adam", "lenet", "adam", True),
    ("CIFAR-shaped net (BN, residual), Adam", "cifar", "adam", True),
]


def steps_for(net: str, steps: int) -> int:
    """Training steps per measurement: about the same time for each network."""
    return {
        "mnist": max(steps // 5, 8),
        "lenet": max(steps // 2, 20),
        "cifar": max(steps // 40, 3),
    }[net]


def training_rows(args, nets=("mnist", "lenet", "cifar")) -> list[dict]:
    data = {net: convnets.data(net) for net in nets}
    rows = []
    for label, net, opt, dropout in TRAINING_CASES:
        if net not in nets:
            continue
        x, y = data[net]
        steps = {
            fw: convnets.training_step(fw, net, x, y, opt, dropout)
            for fw in ("chainrule", "pytorch")
        }
        batch = convnets.BATCH[net]
        row = {"case": f"{label}, batch {batch}", "net": net, "optimizer": opt, "dropout": dropout}
        if steps["chainrule"] is None:
            row["skipped"] = f"chainrule has no {opt} optimizer"
            rows.append(row)
            continue
        n = steps_for(net, args.steps)
        speed = interleaved_medians(
            {
                fw: (lambda s=s, b=batch, n=n: throughput(s, b, n, warmup=2))
                for fw, s in steps.items()
            },
            args.repeats,
        )
        row.update(speed, ratio_vs_pytorch=speed["chainrule"] / speed["pytorch"])
        rows.append(row)
    return rows


def work_per_step(args) -> dict:
    """CPU milliseconds per training step with one thread each (Adam, dropout on): the work
    done, which, unlike wall time, hardly moves when other programs share the cores."""
    set_threads(1)
    result = {}
    try:
        for net in ("mnist", "lenet", "cifar"):
            x, y = convnets.data(net)
            steps = {fw: convnets.training_step(fw, net, x, y) for fw in ("chainrule", "pytorch")}
            n = max(steps_for(net, args.steps) // 2, 2)

            def cpu_ms(step, n=n):
                step(0)
                start = time.process_time()
                for i in range(n):
                    step(i)
                return (time.process_time() - start) / n * 1e3

            result[net] = interleaved_medians(
                {fw: (lambda s=s: cpu_ms(s)) for fw, s in steps.items()}, args.repeats
            )
    finally:
        set_threads(args.threads)
    return result


def alone(args) -> dict:
    """Samples/s and peak RSS (MiB) of a fresh process training each network with Adam, per
    framework: ``{net: {framework: {"samples_per_s", "peak_rss_mib"}}}``."""
    return {
        net: {
            fw: in_subprocess(
                "benchmarks.convnets",
                *("--framework", fw, "--net", net, *thread_args(args)),
                *("--steps", str(max(steps_for(net, args.steps) // 2, 3))),
            )
            for fw in ("chainrule", "pytorch")
        }
        for net in ("mnist", "lenet", "cifar")
    }


def full_mnist_example(repeats: int) -> dict:
    """Whole runs of the MNIST example script (1 epoch + test), interleaved."""
    import chainrule as cr

    optimizer = "adadelta" if hasattr(cr.optim, "Adadelta") else "adam"
    train, test, _ = mnist()
    train = (train[0].reshape(-1, 1, 28, 28), train[1])
    test = (test[0].reshape(-1, 1, 28, 28), test[1])
    runs = {"chainrule": [], "pytorch": []}
    for _ in range(repeats):
        for fw in runs:
            runs[fw].append(mnist_example.run(fw, train, test, optimizer))
    result = {"optimizer": optimizer}
    for fw, values in runs.items():
        seconds = sorted(v["seconds"] for v in values)
        result[fw] = {
            "seconds": seconds[len(seconds) // 2],
            "range": (seconds[0], seconds[-1]),
            "accuracy": [v["accuracy"] for v in values],
        }
    result["time_ratio"] = result["chainrule"]["seconds"] / result["pytorch"]["seconds"]
    return result


def run(args, table: list[str], results: dict) -> None:
    """Measure everything in a fresh process and append the rows to ``table`` and ``results``.

    A fresh process, because what ran before in this one (the MLP and scikit-learn rows, with
    their OpenMP and BLAS thread pools) measurably slowed PyTorch's two-thread CNN steps (MNIST
    net 1,040 samples/s there against 1,650-1,940 alone), which would flatter chainrule."""
    measured = in_subprocess(
        "benchmarks.conv_suite",
        *("--all", *thread_args(args), "--repeats", str(args.repeats)),
        *("--steps", str(args.steps), *(["--quick"] if args.quick else [])),
    )
    table += measured["table"]
    results["cnn"] = measured["cnn"]


def measure(args, table: list[str], results: dict) -> None:
    """Measure everything here and append the rows to ``table`` and ``results``."""
    rows = training_rows(args)
    work = work_per_step(args)
    fresh = alone(args)
    layers = conv_layers.measure(repeats=args.repeats)
    table += [
        "",
        f"| {'CNN training, samples/s':<52} | {'chainrule':>9} | {'PyTorch':>9} | {'ratio':>6} | "
        f"{'fresh':>6} | {'peak MiB ours/PyTorch':>21} |",
        f"|{'-' * 54}|{'-' * 11}|{'-' * 11}|{'-' * 8}|{'-' * 8}|{'-' * 23}|",
    ]
    shown = set()
    for row in rows:
        if "skipped" in row:
            table.append(f"| {row['case']:<52} | {row['skipped']:^43} | {'':>21} |")
            continue
        mem = ratio = ""
        if row["net"] not in shown:  # fresh runs once per network (with Adam and dropout)
            shown.add(row["net"])
            m = fresh[row["net"]]
            mem = f"{m['chainrule']['peak_rss_mib']:.0f} / {m['pytorch']['peak_rss_mib']:.0f}"
            ratio = f"{m['chainrule']['samples_per_s'] / m['pytorch']['samples_per_s']:>5.2f}x"
        table.append(
            f"| {row['case']:<52} | {row['chainrule']:>9,.0f} | {row['pytorch']:>9,.0f} | "
            f"{row['ratio_vs_pytorch']:>5.2f}x | {ratio:>6} | {mem:>21} |"
        )
    table.append(
        "work per step, CPU ms with one thread each (chainrule / PyTorch): "
        + ", ".join(
            f"{net} {w['chainrule']:.1f} / {w['pytorch']:.1f} ({w['pytorch'] / w['chainrule']:.2f}x)"
            for net, w in work.items()
        )
    )
    table += [
        "",
        f"| {'convolution layer (forward / backward ms)':<46} | {'chainrule':>15} | "
        f"{'PyTorch':>15} | {'ratio f / b':>11} |",
        f"|{'-' * 48}|{'-' * 17}|{'-' * 17}|{'-' * 13}|",
    ]
    for layer in layers:
        ours = (layer["chainrule_forward_ms"], layer["chainrule_backward_ms"])
        theirs = (layer["pytorch_forward_ms"], layer["pytorch_backward_ms"])
        table.append(
            f"| {layer['layer']:<46} | {ours[0]:>6.1f} / {ours[1]:>6.1f} | "
            f"{theirs[0]:>6.1f} / {theirs[1]:>6.1f} | "
            f"{theirs[0] / ours[0]:>4.2f} / {theirs[1] / ours[1]:>4.2f} |"
        )
    table.append("(ratios above 1: chainrule faster)")
    results["cnn"] = {
        "training": rows,
        "cpu_ms_per_step_one_thread": work,
        "alone": fresh,
        "layers": layers,
    }
    if not args.quick:
        full = full_mnist_example(repeats=max(args.repeats // 2, 1))
        results["cnn"]["mnist_example"] = full
        ours, theirs = full["chainrule"], full["pytorch"]
        table.append(
            f"full MNIST example (1 epoch + test, {full['optimizer']}): chainrule "
            f"{ours['seconds']:.1f} s (test accuracy {ours['accuracy'][0]:.4f}), PyTorch "
            f"{theirs['seconds']:.1f} s ({theirs['accuracy'][0]:.4f}); time ratio "
            f"{full['time_ratio']:.2f} (below 1: chainrule faster)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.conv_suite")
    parser.add_argument("--net", action="append", choices=sorted(convnets.BATCH))
    parser.add_argument("--threads", type=int, help="default: each framework's own default")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--all", action="store_true", help="the whole suite; prints JSON last")
    parser.add_argument("--quick", action="store_true", help="with --all: no full MNIST run")
    args = parser.parse_args()
    environment.as_users_have_it("benchmarks.conv_suite")
    set_threads(args.threads)
    if args.all:
        table, results = [], {}
        measure(args, table, results)
        print(json.dumps({"table": table, "cnn": results["cnn"]}, default=str))
        return
    for row in training_rows(args, tuple(args.net or convnets.BATCH)):
        if "skipped" in row:
            print(f"{row['case']:<56} {row['skipped']}")
        else:
            print(
                f"{row['case']:<56} chainrule {row['chainrule']:>8,.0f}  PyTorch "
                f"{row['pytorch']:>8,.0f}  ratio {row['ratio_vs_pytorch']:.2f}x"
            )


if __name__ == "__main__":
    main()
