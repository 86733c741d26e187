"""Data-parallel training over MPI on this machine: measured speeds, and a model for many machines.

``python -m benchmarks.distributed`` (needs ``pip install '.[mpi]'``) measures, in fresh processes,
interleaved and repeated (the machine is shared: ranges, and the load seen, are reported):

* samples/s of ``fit`` (MNIST, global batch 128, Adam) for the MLP 784-256-128-10 and LeNet-5,
  as 1 process x 2 BLAS threads, 1 process x 1 thread, and ``mpiexec -n 2`` x 1 thread each; for
  the MPI runs also the time per step spent in the gradient all-reduce (waiting for the slower
  process included);
* the time of one in-place ``Allreduce`` (float32, 2 processes) from 1 KB to 64 MB.

From the measured compute time per sample and the model's gradient bytes, it then *models* N
machines joined by a network (see docs/distributed.md): a step costs ``c b`` of computing (``b``
examples per process) plus a ring all-reduce of ``2 (N - 1) / N S`` bytes at bandwidth ``W`` and
``2 (N - 1)`` message latencies ``a``; scaling efficiency ``E = c b / (c b + t_allreduce)``.
It prints the per-process batch needed for E >= 80% (weak scaling: the global batch grows with N).

``--worker`` runs one measurement (used by the benchmark itself, under mpiexec for N = 2).
Results go to ``benchmarks/results/distributed.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from . import environment
from .common import machine, mnist, save_results, set_threads

BATCH = 128
# name, timed steps, steps per window: the best window is the speed with the least interference
# from other users of the machine, the whole run's the speed with what interference there was
CASES = {"mlp": ("MLP 784-256-128-10", 300, 30), "lenet": ("LeNet-5", 60, 10)}
SETUPS = {
    "1 process x 2 threads": (1, 2),
    "1 process x 1 thread": (1, 1),
    "mpiexec -n 2 x 1": (2, 1),
}
SIZES = [1 << k for k in range(10, 27, 2)]  # 1 KB .. 64 MB
# networks for the model: (name, bandwidth bytes/s, latency per message s); assumptions, not
# measurements: link rates, and typical small-message latencies of TCP and of InfiniBand
NETWORKS = [
    ("1 Gb/s Ethernet", 1e9 / 8, 50e-6),
    ("10 Gb/s Ethernet", 10e9 / 8, 20e-6),
    ("25 Gb/s Ethernet", 25e9 / 8, 15e-6),
    ("100 Gb/s InfiniBand", 100e9 / 8, 2e-6),
]
LATENCY = 20e-6
ENV = {
    **{k: v for k, v in os.environ.items() if k not in environment.NOT_A_USERS},
    "OMPI_ALLOW_RUN_AS_ROOT": "1",  # Open MPI refuses root without these (containers run as root)
    "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
}


# -- one measurement (in a fresh process, possibly one of an MPI job) ---------------------------


def build(case: str):
    import chainrule as cr
    from chainrule import models, nn

    cr.manual_seed(0)
    if case == "mlp":
        return nn.Sequential(
            nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10)
        )
    return models.from_spec(models.LENET5, (1, 28, 28), 10)


def measure_fit(case: str, threads: int) -> dict:
    """samples/s of ``fit`` over ``steps`` batches of 128 (after a warm-up fit of 10), over the
    whole run and in its fastest window of a few steps, and the seconds per step spent in
    ``allreduce_mean_grads`` (0 on one process)."""
    import chainrule.distributed as dist
    from chainrule import nn, optim
    from chainrule.train import Callback, fit

    class Clock(Callback):
        def on_batch_end(self, run, logs, batch_size):
            ends.append(time.perf_counter())

    set_threads(threads, torch=False)
    comm = dist.init()
    spent = [0.0]
    if comm.world_size > 1:
        inner = comm.allreduce_mean_grads

        def timed(optimizer, count):
            started = time.perf_counter()
            inner(optimizer, count)
            spent[0] += time.perf_counter() - started

        comm.allreduce_mean_grads = timed
    (x, y), _, _ = mnist()
    x = x.reshape(-1, 1, 28, 28) if case == "lenet" else x
    _, steps, window = CASES[case]
    ends: list[float] = []
    model = build(case)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    def run(n_steps):
        data = (x[: n_steps * BATCH], y[: n_steps * BATCH])
        fit(model, loss_fn, opt, data, batch_size=BATCH, progress=False, comm=comm,
            callbacks=[Clock()])  # fmt: skip

    run(10)
    spent[0] = 0.0
    comm.barrier()
    started = time.perf_counter()
    ends.clear()
    run(steps)
    comm.barrier()
    seconds = time.perf_counter() - started
    gradient_bytes = sum(p.detach().numpy().nbytes for p in model.parameters())
    best = min(b - a for a, b in zip(ends, ends[window:]))
    return {
        "samples_per_s": steps * BATCH / seconds,
        "best_window_samples_per_s": window * BATCH / best,
        "allreduce_s_per_step": spent[0] / steps,
        "gradient_bytes": gradient_bytes,
        "rank": comm.rank,
    }


def measure_allreduce() -> dict:
    """Median seconds of one in-place Allreduce (sum) of float32 arrays of each size."""
    import chainrule.distributed as dist

    comm = dist.init()
    found = {}
    for size in SIZES:
        array = np.ones(size // 4, dtype=np.float32)
        repeats = max(5, min(200, (1 << 24) // size))
        times = []
        for _ in range(repeats):
            comm.barrier()
            started = time.perf_counter()
            comm.all_reduce(array)
            times.append(time.perf_counter() - started)
        found[size] = statistics.median(times)
    return {"seconds": found, "rank": comm.rank}


# -- the benchmark: interleaved fresh processes ---------------------------------------------------


def mpiexec() -> str | None:
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def launch(processes: int, *worker_args: str) -> dict:
    command = [sys.executable, "-m", "benchmarks.distributed", "--worker", *worker_args]
    if processes > 1:
        command = [mpiexec(), "-n", str(processes), *command]
    done = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def load() -> float:
    return os.getloadavg()[0]


def spread(values) -> str:
    return f"{statistics.median(values):>8,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def run(repeats: int) -> dict:
    """Measure everything, ``repeats`` rounds, each round every setup in a rotated order."""
    speeds = {(case, setup): [] for case in CASES for setup in SETUPS}
    best = {(case, setup): [] for case in CASES for setup in SETUPS}
    waits = {case: [] for case in CASES}
    allreduce = {size: [] for size in SIZES}
    loads, gradient_bytes = [load()], {}
    order = list(SETUPS)
    for round_ in range(repeats):
        for case in CASES:
            for setup in order[round_ % len(order) :] + order[: round_ % len(order)]:
                processes, threads = SETUPS[setup]
                found = launch(processes, case, "--threads", str(threads))
                speeds[case, setup].append(found["samples_per_s"])
                best[case, setup].append(found["best_window_samples_per_s"])
                gradient_bytes[case] = found["gradient_bytes"]
                if processes > 1:
                    waits[case].append(found["allreduce_s_per_step"])
                loads.append(load())
        for size, seconds in launch(2, "allreduce")["seconds"].items():
            allreduce[int(size)].append(seconds)
        loads.append(load())
        print(f"round {round_ + 1}/{repeats} done (load {loads[-1]:.1f})", file=sys.stderr)
    return {
        "speeds": {f"{case}|{setup}": v for (case, setup), v in speeds.items()},
        "best_window_speeds": {f"{case}|{setup}": v for (case, setup), v in best.items()},
        "allreduce_s_per_step": waits,
        "allreduce_seconds": allreduce,
        "gradient_bytes": gradient_bytes,
        "load_1min": loads,
    }


# -- the model --------------------------------------------------------------------------------


def ring_allreduce_seconds(nbytes: float, n: int, bandwidth: float, latency: float) -> float:
    """A ring all-reduce: 2 (N - 1) steps, each sending 1/N of the bytes."""
    return 2 * (n - 1) * (latency + nbytes / n / bandwidth)


def batch_for_efficiency(c: float, nbytes: float, n: int, bw: float, lat: float, target=0.8):
    """Smallest per-process batch b with c b / (c b + t_allreduce) >= target."""
    t = ring_allreduce_seconds(nbytes, n, bw, lat)
    return int(np.ceil(target / (1 - target) * t / c))


def link_for_efficiency(c: float, b: int, nbytes: float, n: int, lat: float, target=0.8):
    """Smallest link rate (bits/s) with c b / (c b + t_allreduce) >= target; inf if latency alone
    takes longer than the all-reduce may."""
    allowed = c * b * (1 - target) / target - 2 * (n - 1) * lat
    return 8 * 2 * (n - 1) / n * nbytes / allowed if allowed > 0 else float("inf")


def table(results: dict) -> list[str]:
    speeds = {tuple(k.split("|")): v for k, v in results["speeds"].items()}
    best = {tuple(k.split("|")): v for k, v in results["best_window_speeds"].items()}
    loads = results["load_1min"]
    runs = len(next(iter(speeds.values())))
    lines = [
        f"Machine: {machine()}",
        f"Load average (1 minute, other users of the machine included) during the runs: "
        f"{min(loads):.1f} to {max(loads):.1f}",
        f"fit on MNIST, global batch {BATCH} (64 per process with 2), Adam; each cell the median "
        f"(min-max) of {runs} interleaved runs in fresh processes: samples/s over the whole run, "
        "and in its fastest window of a few steps (the least disturbed by other users)",
        "",
        f"| samples/s | {' | '.join(SETUPS)} | 2 x 1 vs 1 x 1 | all-reduce per step |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for case, (name, _, window) in CASES.items():
        nbytes = results["gradient_bytes"][case]
        wait = statistics.median(results["allreduce_s_per_step"][case]) * 1e3
        for label, found in (("whole run", speeds), (f"best {window} steps", best)):
            cells = [spread(found[case, s]) for s in SETUPS]
            gain = statistics.median(found[case, "mpiexec -n 2 x 1"]) / statistics.median(
                found[case, "1 process x 1 thread"]
            )
            extra = f"{wait:.2f} ms ({nbytes / 1e6:.2f} MB)" if label == "whole run" else ""
            lines.append(f"| {name}, {label} | {' | '.join(cells)} | {gain:.2f}x | {extra} |")
    lines += ["", "| Allreduce (sum, float32), 2 processes, this machine | median time | bytes/s |"]
    lines.append("| --- | --- | --- |")
    for size, times in results["allreduce_seconds"].items():
        t = statistics.median(times)
        label = f"{int(size) >> 10} KB" if int(size) < 1 << 20 else f"{int(size) >> 20} MB"
        lines.append(f"| {label} | {t * 1e6:,.0f} us | {int(size) / t / 1e9:.2f} GB/s |")
    lines += [
        "",
        "Modelled, not measured: the per-process batch b for 80% scaling efficiency on N machines",
        "(E = c b / (c b + t_allreduce); c, the compute seconds per sample, measured here as the",
        "best-window speed of 1 process x 1 thread; a ring all-reduce of the gradient bytes at the",
        "network's link rate with an assumed latency per message; global batch N b)",
        "",
        f"| model, network | {' | '.join(f'N = {n}' for n in (2, 4, 8, 16))} |",
        "| --- | --- | --- | --- | --- |",
    ]
    for case, (name, _, _) in CASES.items():
        c = 1 / statistics.median(best[case, "1 process x 1 thread"])
        nbytes = results["gradient_bytes"][case]
        for network, bw, lat in NETWORKS:
            cells = [str(batch_for_efficiency(c, nbytes, n, bw, lat)) for n in (2, 4, 8, 16)]
            lines.append(f"| {name} (c = {c * 1e6:.0f} us), {network} | {' | '.join(cells)} |")
    lines += [
        "",
        "Modelled, not measured: the link rate needed for 80% efficiency, per-process batch b,",
        f"{LATENCY * 1e6:.0f} us latency per message (TCP over Ethernet)",
        "",
        f"| model, b | {' | '.join(f'N = {n}' for n in (2, 4, 8, 16))} |",
        "| --- | --- | --- | --- | --- |",
    ]
    for case, (name, _, _) in CASES.items():
        c = 1 / statistics.median(best[case, "1 process x 1 thread"])
        nbytes = results["gradient_bytes"][case]
        for b in (32, 128, 512):
            rates = [link_for_efficiency(c, b, nbytes, n, LATENCY) for n in (2, 4, 8, 16)]
            cells = [f"{r / 1e9:.1f} Gb/s" if r < float("inf") else "never" for r in rates]
            lines.append(f"| {name}, b = {b} | {' | '.join(cells)} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.distributed", description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", choices=[*CASES, "allreduce"], help="one measurement")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--table", type=Path, help="only print the tables of a saved .json")
    args = parser.parse_args()
    if args.table:
        print("\n".join(table(json.loads(args.table.read_text()))))
        return
    if args.worker:
        found = measure_allreduce() if args.worker == "allreduce" else None
        found = found or measure_fit(args.worker, args.threads)
        if found["rank"] == 0:
            print(json.dumps(found))
        return
    if mpiexec() is None:
        sys.exit("benchmarks.distributed needs mpiexec: pip install '.[mpi]'")
    started = time.time()
    results = run(args.repeats)
    lines = table(results)
    lines.append(f"\n(benchmark took {time.time() - started:.0f} s)")
    text = "\n".join(lines)
    print(text)
    save_results("distributed", text, results)


if __name__ == "__main__":
    main()
