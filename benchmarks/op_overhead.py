"""Per-op overhead: forward + backward of a tiny graph, chainrule vs PyTorch in the same run.

    python -m benchmarks.op_overhead

The graph is (x @ w).relu().sum() with 10x10 inputs: three ops, so the time is almost all
bookkeeping. Reports the median over repetitions and the ratio chainrule / PyTorch.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

import chainrule as cr


def median_seconds(step, repeats: int = 7, number: int = 2000) -> float:
    """Median over ``repeats`` of the mean time of ``number`` calls, after a warm-up."""
    for _ in range(200):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            step()
        times.append((time.perf_counter() - start) / number)
    return statistics.median(times)


def chainrule_step():
    x = cr.tensor(np.random.default_rng(0).standard_normal((10, 10)).astype(np.float32))
    w = cr.tensor(
        np.random.default_rng(1).standard_normal((10, 10)).astype(np.float32), requires_grad=True
    )

    def step():
        w.grad = None
        (x @ w).relu().sum().backward()

    return step


def torch_step():
    import torch

    x = torch.randn(10, 10)
    w = torch.randn(10, 10, requires_grad=True)

    def step():
        w.grad = None
        (x @ w).relu().sum().backward()

    return step


def measure() -> dict:
    """Seconds per tiny forward+backward (3 ops) for chainrule and, if installed, PyTorch."""
    result = {"chainrule_us": median_seconds(chainrule_step()) * 1e6}
    try:
        import torch

        torch.set_num_threads(1)
        result["pytorch_us"] = median_seconds(torch_step()) * 1e6
        result["ratio"] = result["chainrule_us"] / result["pytorch_us"]
    except ImportError:
        result["pytorch_us"] = result["ratio"] = None
    return result


def main() -> None:
    r = measure()
    print("tiny forward+backward: (x @ w).relu().sum(), 10x10, float32")
    print(f"  chainrule: {r['chainrule_us']:8.1f} us per step ({r['chainrule_us'] / 3:.1f} us/op)")
    if r["pytorch_us"] is None:
        print("  PyTorch not installed (pip install -e '.[bench]') - no ratio")
        return
    print(f"  PyTorch:   {r['pytorch_us']:8.1f} us per step ({r['pytorch_us'] / 3:.1f} us/op)")
    print(f"  ratio chainrule/PyTorch time: {r['ratio']:.2f}  (<= 1.0 means chainrule is faster)")


if __name__ == "__main__":
    main()
