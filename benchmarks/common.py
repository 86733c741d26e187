"""Shared benchmark helpers: thread control, timing by interleaved medians, peak memory, data."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


_DEFAULTS: dict = {}  # the thread counts the libraries started with, to go back to


def set_threads(n: int | None, torch: bool = True) -> dict:
    """Limit chainrule and NumPy's BLAS (and PyTorch, if ``torch``) to ``n`` threads, or with
    ``None`` leave every framework at its default (chainrule: the idle cores, see
    ``chainrule.cores``; PyTorch: one thread per core); returns what is in use."""
    from threadpoolctl import threadpool_info, threadpool_limits

    import chainrule

    _DEFAULTS.setdefault("blas", max(i["num_threads"] for i in threadpool_info()))
    threadpool_limits(n or _DEFAULTS["blas"])
    chainrule.set_num_threads(n or "auto")
    info = {
        "chainrule": "auto (the idle cores)" if n is None else f"{n} threads",
        "threads": n,
        "blas": [
            f"{i['internal_api']} {i.get('version')} ({i.get('architecture')}, "
            f"{i['num_threads']} threads)"
            for i in threadpool_info()
        ],
    }
    info["torch"] = None
    if torch:
        try:
            import torch as pytorch

            _DEFAULTS.setdefault("torch", pytorch.get_num_threads())
            pytorch.set_num_threads(n or _DEFAULTS["torch"])
            info["torch"] = f"torch {pytorch.__version__} ({pytorch.get_num_threads()} threads)"
        except ImportError:
            pass
    return info


def thread_args(args) -> list[str]:
    """The ``--threads`` option to pass on to a benchmark's fresh process (none: the defaults)."""
    return [] if args.threads is None else ["--threads", str(args.threads)]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, NumPy {np.__version__}"
    )


def interleaved_medians(runners: dict, repeats: int = 5) -> dict:
    """Run each ``runners[name]() -> value`` in turn, ``repeats`` rounds; median per name.

    Interleaving spreads the noise of a shared machine over all contestants alike.
    """
    values = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            values[name].append(run())
    return {name: statistics.median(v) for name, v in values.items()}


def throughput(step, batch_size: int, steps: int, warmup: int = 10) -> float:
    """Samples per second of ``step(i)`` over ``steps`` steps after a warm-up."""
    for i in range(warmup):
        step(i)
    start = time.perf_counter()
    for i in range(steps):
        step(i)
    return steps * batch_size / (time.perf_counter() - start)


def forward_backward_ms(fn, x, grad, calls: int) -> tuple[float, float]:
    """Median milliseconds of ``fn(x)`` and of its ``backward(grad)`` over ``calls`` calls."""
    forward, backward = [], []
    for _ in range(calls):
        start = time.perf_counter()
        y = fn(x)
        middle = time.perf_counter()
        y.backward(grad)
        forward.append(middle - start)
        backward.append(time.perf_counter() - middle)
    return statistics.median(forward) * 1e3, statistics.median(backward) * 1e3


def median_columns(times: dict) -> dict:
    """``{framework: [(forward ms, backward ms), ...]}`` as the row's median columns."""
    row = {}
    for fw, values in times.items():
        row[f"{fw}_forward_ms"] = statistics.median(v[0] for v in values)
        row[f"{fw}_backward_ms"] = statistics.median(v[1] for v in values)
    return row


def peak_rss_mib() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: a child's ru_maxrss keeps its
    parent's size at fork, across exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def in_subprocess(module: str, *args: str) -> dict:
    """Run ``python -m module args`` (which prints one JSON line last) and parse its result."""
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=1800,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def mnist(standardize: bool = True):
    """MNIST as float32 (N, 784) from ../shared/data/mnist, or random data of the same shape."""
    import chainrule as cr

    if (SHARED_MNIST / "train-images-idx3-ubyte.gz").exists():
        (x, y), (xt, yt) = cr.data.load_mnist(SHARED_MNIST)
        source = "MNIST"
    else:
        rng = np.random.default_rng(0)
        x, y = rng.integers(0, 256, (60000, 28, 28), dtype=np.uint8), rng.integers(0, 10, 60000)
        xt, yt = rng.integers(0, 256, (10000, 28, 28), dtype=np.uint8), rng.integers(0, 10, 10000)
        source = "random MNIST-shaped data"
    x, xt = (cr.data.scale(a).reshape(len(a), -1) for a in (x, xt))
    if standardize:  # in place: the data should not dominate the peak memory we measure
        s = cr.data.Standardizer.fit(x)
        for a in (x, xt):
            a -= s.mean
            a /= s.std
    return (x, y.astype(np.int64)), (xt, yt.astype(np.int64)), source


def matmul_peak_gflops(size: int = 2048, repeats: int = 10) -> float:
    """The machine's float32 matrix-product speed, measured now."""
    rng = np.random.default_rng(0)
    a = rng.random((size, size), dtype=np.float32)
    b = rng.random((size, size), dtype=np.float32)
    for _ in range(3):
        a @ b
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = max(best, 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9)
    return best


def chainrule_training_step(model, x, y, batch: int, label_smoothing: float = 0.0):
    """``step(i)``: forward, loss, zero_grad, backward and an Adam step on batch i of (x, y)."""
    import chainrule as cr
    from chainrule import nn, optim

    opt = optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    batches = len(x) // batch

    def step(i):
        lo = (i % batches) * batch
        loss = loss_fn(model(cr.Tensor._make(x[lo : lo + batch], False)), y[lo : lo + batch])
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()

    return step


def torch_training_step(model, x, y, batch: int, label_smoothing: float = 0.0):
    """The same step with PyTorch (default eager Adam)."""
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    batches = len(x) // batch

    def step(i):
        lo = (i % batches) * batch
        loss = loss_fn(model(xt[lo : lo + batch]), yt[lo : lo + batch])
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


RESULTS = Path(__file__).parent / "results"


def save_results(name: str, text: str, data=None) -> None:
    """Write ``results/NAME.md`` (the printed table) and, given ``data``, ``results/NAME.json``."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.md").write_text(text + "\n")
    if data is not None:
        (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
