"""How a matrix product behaves when other programs share the cores: the MNIST example net's
biggest Linear product (64 x 9216 @ 9216 x 128) timed many times with one BLAS thread, with two,
and cut over chainrule's thread pool (two threads, the chunks taken from a shared counter).

``python -m benchmarks.blas_stalls`` prints the median, 90th percentile, maximum and mean of
each. On a quiet machine two BLAS threads are the fastest; on a loaded one (run ``uptime``
beside it) a two-thread product now and then waits for a thread that has no core, and the mean
shows it. It explains most of the spread of the two-thread CNN rows of ``python -m benchmarks``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def measure(repeats: int = 6, calls: int = 30) -> dict:
    from threadpoolctl import threadpool_limits

    from chainrule import threads as batch_split

    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 9216), dtype=np.float32)
    w = rng.standard_normal((128, 9216), dtype=np.float32)
    out = np.empty((128, 64), np.float32)  # (x W^T)^T: a pool chunk owns whole rows of it

    def blas():
        np.matmul(w, x.T, out=out)

    def pooled():
        def work(start, stop, chunk):
            np.matmul(w[start:stop], x.T, out=out[start:stop])

        with batch_split.policy(min_parallel_bytes=0):
            batch_split.split_batch(work, len(w), 9216 * 4 * 64)

    cases = [("one BLAS thread", 1, blas), ("two BLAS threads", 2, blas)]
    cases.append(("chainrule's pool, two threads", 2, pooled))
    times: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    for _ in range(repeats):  # interleaved
        for name, threads, product in cases:
            with threadpool_limits(threads):
                product()
                for _ in range(calls):
                    start = time.perf_counter()
                    product()
                    times[name].append((time.perf_counter() - start) * 1e3)
    summary = {}
    for name, values in times.items():
        values.sort()
        summary[name] = {
            "median_ms": values[len(values) // 2],
            "p90_ms": values[int(0.9 * len(values))],
            "max_ms": values[-1],
            "mean_ms": sum(values) / len(values),
        }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=6)
    args = parser.parse_args()
    for name, s in measure(args.repeats).items():
        print(
            f"{name:<30} median {s['median_ms']:6.2f} ms  p90 {s['p90_ms']:7.2f}  "
            f"max {s['max_ms']:6.1f}  mean {s['mean_ms']:6.2f}"
        )


if __name__ == "__main__":
    main()
