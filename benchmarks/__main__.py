"""``python -m benchmarks``: chainrule side by side with PyTorch and scikit-learn, in one run.

Prints a table of samples/s, ratios and peak memory, and writes it to
``benchmarks/results/latest.md`` and ``latest.json``. Speeds are medians of interleaved
repetitions in this process, and again from one fresh process per framework (which also gives
peak memory). Every framework runs at its defaults, as its users install it: the run
re-executes itself without the variables a user would not have (see environment.py) and prints
the CPU and the kernels each library runs. ``--threads N`` fixes N threads for all.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from . import conv_suite, distributed, environment, estimators, mlp, op_overhead
from .common import (
    in_subprocess,
    interleaved_medians,
    machine,
    matmul_peak_gflops,
    mnist,
    save_results,
    set_threads,
    thread_args,
    throughput,
)

MLP_CASES = [
    ("MLP 784-256-128-10", (784, 256, 128, 10), 128),
    ("MLP 784-256-128-10", (784, 256, 128, 10), 32),
    ("wide MLP 784-1024-1024-10", (784, 1024, 1024, 10), 256),
]


def parse_args():
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--threads", type=int, help="threads for every framework (default: each one's default)"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=150, help="training steps per measurement")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, no time-to-98%%")
    parser.add_argument(
        "--estimators",
        action="store_true",
        help="also compare chainrule.sklearn with scikit-learn's MLPs (benchmarks.estimators)",
    )
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="also measure data-parallel training under mpiexec (benchmarks.distributed)",
    )
    return parser.parse_args()


def step_params(sizes) -> int:
    return sum(a * b + b for a, b in zip(sizes, sizes[1:]))


def fresh(module: str, args, *options: str) -> dict:
    """``{framework: result}`` of ``python -m module --framework F options`` for chainrule and
    PyTorch, each in a fresh process, interleaved ``args.repeats`` rounds (median speed)."""
    runs = {"chainrule": [], "pytorch": []}
    for _ in range(max(args.repeats // 2, 1)):
        for fw in runs:
            runs[fw].append(in_subprocess(module, "--framework", fw, *options, *thread_args(args)))
    return {
        fw: {
            "samples_per_s": statistics.median(r["samples_per_s"] for r in results),
            "peak_rss_mib": max(r["peak_rss_mib"] for r in results),
        }
        for fw, results in runs.items()
    }


def run_mlp(args, train, rows, table):
    x, y = train
    for name, sizes, batch in MLP_CASES:
        ours, _ = mlp.chainrule_step(sizes, x, y, batch)
        theirs, _ = mlp.torch_step(sizes, x, y, batch)
        runners = {
            "chainrule": lambda s=ours, b=batch: throughput(s, b, args.steps),
            "pytorch": lambda s=theirs, b=batch: throughput(s, b, args.steps),
        }
        speed = interleaved_medians(runners, args.repeats)
        if batch == 128:  # whole epochs against whole epochs of scikit-learn, interleaved
            epochs = interleaved_medians(
                {
                    "chainrule": lambda s=ours: throughput(s, 128, len(x) // 128, warmup=0),
                    "sklearn": lambda s=sizes: mlp.sklearn_samples_per_second(s, x, y, 128),
                },
                repeats=3,
            )
        alone = fresh(
            "benchmarks.mlp",
            args,
            *("--sizes", ",".join(map(str, sizes)), "--batch", str(batch)),
            *("--steps", str(args.steps)),
        )
        row = {
            "case": f"{name}, batch {batch}",
            "chainrule": speed["chainrule"],
            "pytorch": speed["pytorch"],
            "ratio_vs_pytorch": speed["chainrule"] / speed["pytorch"],
            "fresh": alone,
            "ratio_fresh": alone["chainrule"]["samples_per_s"] / alone["pytorch"]["samples_per_s"],
            "gflops": 6 * step_params(sizes) * speed["chainrule"] / 1e9,
        }
        if batch == 128:
            row["sklearn"] = epochs["sklearn"]
            row["ratio_vs_sklearn"] = epochs["chainrule"] / epochs["sklearn"]
            sklearn = in_subprocess("benchmarks.mlp", "--framework", "sklearn", *thread_args(args))
            row["peak_rss_mib"] = {
                **{fw: alone[fw]["peak_rss_mib"] for fw in alone},
                "sklearn": sklearn["peak_rss_mib"],
            }
        rows.append(row)
        sk = (
            f"{row['sklearn']:>9,.0f} {row['ratio_vs_sklearn']:>6.2f}x"
            if "sklearn" in row
            else f"{'-':>9} {'-':>7}"
        )
        table.append(
            f"| {row['case']:<40} | {row['chainrule']:>9,.0f} | {row['pytorch']:>9,.0f} | "
            f"{row['ratio_vs_pytorch']:>5.2f}x | {row['ratio_fresh']:>5.2f}x | {sk} | "
            f"{row['gflops']:>6.1f} |"
        )


def main() -> None:
    args = parse_args()
    environment.as_users_have_it("benchmarks")
    if args.quick:
        args.repeats, args.steps = 3, 60
    threads = set_threads(args.threads)
    train, test, source = mnist()
    started, load_before = time.time(), os.getloadavg()[0]
    rows: list[dict] = []
    table = [
        f"Machine: {machine()}",
        f"CPU: {environment.cpu()}",
        f"Kernels: {environment.describe()}",
        f"Threads: chainrule {threads['chainrule']}; {threads['torch']}",
        f"Data: {source}; speeds are medians of {args.repeats} interleaved runs of {args.steps} steps",
        "",
        f"| {'training, samples/s':<40} | {'chainrule':>9} | {'PyTorch':>9} | {'ratio':>6} | "
        f"{'fresh':>6} | {'sklearn64':>9} {'ratio*':>7} | GFLOP/s |",
        f"|{'-' * 42}|{'-' * 11}|{'-' * 11}|{'-' * 8}|{'-' * 8}|{'-' * 19}|{'-' * 9}|",
    ]
    run_mlp(args, train, rows, table)
    table.append(
        "(ratio: interleaved in this process; fresh: each framework alone in a fresh process; "
        "* whole 60,000-sample epochs, chainrule vs scikit-learn, interleaved)"
    )
    peak = matmul_peak_gflops()
    wide = rows[-1]
    memory = rows[0]["peak_rss_mib"]
    overhead = op_overhead.measure()
    table += [
        "",
        f"float32 matrix-product peak: {peak:.0f} GFLOP/s; wide MLP training step: "
        f"{wide['gflops']:.0f} GFLOP/s = {wide['gflops'] / peak:.0%} of peak (6 x batch x parameters)",
        f"peak RSS, MLP batch 128 (fresh process each, data included): chainrule "
        f"{memory['chainrule']:.0f} MiB, PyTorch {memory['pytorch']:.0f} MiB, scikit-learn "
        f"{memory['sklearn']:.0f} MiB "
        f"(ratio chainrule/PyTorch {memory['chainrule'] / memory['pytorch']:.2f})",
        f"per-op overhead, (x @ w).relu().sum() forward+backward on 10x10: chainrule "
        f"{overhead['chainrule_us']:.1f} us, PyTorch {overhead['pytorch_us']:.1f} us "
        f"(ratio {overhead['ratio']:.2f}, lower is faster)",
    ]
    results = {
        "machine": machine(),
        "threads": threads,
        "mlp": rows,
        "matmul_peak_gflops": peak,
        "op_overhead": overhead,
    }
    if not args.quick:
        reach = {
            fw: mlp.time_to_accuracy(fw, (train[0].copy(), train[1].copy()), test)
            for fw in ("chainrule", "pytorch")
        }
        results["time_to_98"] = reach
        table.append(
            "time to 98% MNIST test accuracy (784-256-128-10, Adam, batch 128): "
            + ", ".join(
                f"{fw} {r['seconds']:.1f} s ({r['epochs']} epochs)"
                if r["seconds"]
                else f"{fw} not reached in {r['epochs']} epochs ({r['accuracy']:.4f})"
                for fw, r in reach.items()
            )
        )
    conv_suite.run(args, table, results)
    if args.estimators:
        results["estimators"] = estimators.run(quick=args.quick, progress=lambda _: None)
        table += ["", *estimators.table(results["estimators"])]
    if args.distributed:
        results["distributed"] = distributed.run(repeats=3 if args.quick else args.repeats)
        table += ["", *distributed.table(results["distributed"])]
    table.append(
        f"\n(benchmark took {time.time() - started:.0f} s; 1-minute load average before "
        f"{load_before:.1f}, after {os.getloadavg()[0]:.1f}; the two-thread rows move when other "
        "programs share the cores)"
    )
    text = "\n".join(table)
    print(text)
    save_results("latest", text, results)


if __name__ == "__main__":
    main()
