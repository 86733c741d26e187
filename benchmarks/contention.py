"""Training speed on a busy machine: ``python -m benchmarks.contention``.

A laptop with a browser open is a busy machine. This benchmark makes one: it starts one busy
process per core (a Python loop that ends by itself after a bounded time, and is stopped when
the benchmark ends), and measures, quiet and then busy, each case in a fresh process, the
frameworks at their defaults beside one thread each:

* a small MLP (784-256-128-10, batch 64, Adam): training samples/s;
* a wide MLP (784-1024-1024-10, batch 256): where two threads pay on a quiet machine;
* ``chainrule train`` on the built-in digits (30 epochs): wall seconds of the whole command.

It reports, on the busy machine, chainrule's default against its own single thread (goal: at
least 0.5x) and against PyTorch's default (goal: at least 3x), and on the quiet one what the
default gains from the cores; chainrule's default follows the idle cores (``chainrule.cores``),
and each row says how many threads it chose.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from . import environment
from .common import in_subprocess, machine, save_results, set_threads

MLPS = {"small MLP": ((784, 256, 128, 10), 64), "wide MLP": ((784, 1024, 1024, 10), 256)}
SETTINGS = {  # label -> (framework, threads: None = the framework's default)
    "chainrule default": ("chainrule", None),
    "chainrule 1 thread": ("chainrule", 1),
    "PyTorch default": ("pytorch", None),
    "PyTorch 1 thread": ("pytorch", 1),
}
BUSY_LOOP = """
import sys, time
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    pass
"""


def measure_mlp(case: str, framework: str, threads: int | None, seconds: float) -> dict:
    """Samples/s of ``seconds`` of training (after a short warm-up), in this process."""
    from . import mlp

    set_threads(threads, torch=framework == "pytorch")
    sizes, batch = MLPS[case]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch * 50, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], batch * 50)
    make = mlp.chainrule_step if framework == "chainrule" else mlp.torch_step
    step, _ = make(sizes, x, y, batch)
    warm_until = time.perf_counter() + 0.3
    i = 0
    while time.perf_counter() < warm_until or i < 5:
        step(i)
        i += 1
    start, done = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        step(done)
        done += 1
    result = {"samples_per_s": done * batch / (time.perf_counter() - start)}
    if framework == "chainrule":
        from chainrule import cores, get_num_threads

        watch = cores.watching()
        result["threads"] = get_num_threads()
        result["others"] = None if watch is None else watch.others
    return result


def measure_cli(threads: int | None) -> dict:
    """Wall seconds of ``chainrule train`` on the digits (its defaults), in a fresh process."""
    out = tempfile.mkdtemp(prefix="chainrule-contention-")
    command = [sys.executable, "-m", "chainrule", "train", "--out", out, "--overwrite", "--quiet"]
    try:
        start = time.perf_counter()
        subprocess.run(
            command + ([] if threads is None else ["--threads", str(threads)]),
            check=True,
            capture_output=True,
            timeout=900,
        )
        return {"seconds": time.perf_counter() - start}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def measure_phase(args, label: str) -> dict:
    """Every case and setting, ``args.repeats`` interleaved rounds, each in a fresh process."""
    runs: dict = {}
    for _ in range(args.repeats):
        for case in MLPS:
            for setting, (framework, threads) in SETTINGS.items():
                if case == "wide MLP" and setting == "PyTorch 1 thread":
                    continue
                options = [
                    "--worker",
                    case,
                    "--framework",
                    framework,
                    "--seconds",
                    str(args.seconds),
                ]
                options += [] if threads is None else ["--threads", str(threads)]
                result = in_subprocess("benchmarks.contention", *options)
                runs.setdefault((case, setting), []).append(result)
        for setting, threads in (("chainrule default", None), ("chainrule 1 thread", 1)):
            runs.setdefault(("chainrule train (digits)", setting), []).append(measure_cli(threads))
        print(f"  {label}: round done (load average {os.getloadavg()[0]:.1f})", file=sys.stderr)
    return {
        key: {
            name: statistics.median(r[name] for r in results)
            for name in results[0]
            if results[0][name] is not None
        }
        for key, results in runs.items()
    }


def start_busy(count: int, seconds: float) -> list:
    """``count`` busy processes that end by themselves after ``seconds``."""
    return [subprocess.Popen([sys.executable, "-c", BUSY_LOOP, str(seconds)]) for _ in range(count)]


def stop(processes: list) -> None:
    for p in processes:
        p.terminate()
    for p in processes:
        p.wait(timeout=10)


def table(quiet: dict, busy: dict, busy_count: int) -> list[str]:
    lines = [
        f"| {'case':<26} | {'setting':<19} | {'quiet':>10} | {f'{busy_count} busy':>10} | threads "
        "chosen (q / b) |",
        f"|{'-' * 28}|{'-' * 21}|{'-' * 12}|{'-' * 12}|{'-' * 24}|",
    ]
    for case, setting in quiet:
        q, b = quiet[(case, setting)], busy[(case, setting)]
        unit, fmt = ("s", "{:>9.1f}s") if "seconds" in q else ("samples/s", "{:>10,.0f}")
        value = "seconds" if unit == "s" else "samples_per_s"
        chosen = f"{q['threads']:.0f} / {b['threads']:.0f}" if "threads" in q else ""
        lines.append(
            f"| {case:<26} | {setting:<19} | {fmt.format(q[value])} | {fmt.format(b[value])} | "
            f"{chosen:>22} |"
        )
    small = {s: busy[("small MLP", s)]["samples_per_s"] for s in SETTINGS}
    train = {
        s: busy[("chainrule train (digits)", s)]["seconds"] for s in SETTINGS if "chainrule" in s
    }
    wide_q = {
        s: quiet[("wide MLP", s)]["samples_per_s"] for s in SETTINGS if s != "PyTorch 1 thread"
    }
    lines += [
        "",
        f"busy, small MLP: chainrule default / its 1 thread = "
        f"{small['chainrule default'] / small['chainrule 1 thread']:.2f} (goal >= 0.5); "
        f"chainrule default / PyTorch default = "
        f"{small['chainrule default'] / small['PyTorch default']:.1f}x (goal >= 3)",
        f"busy, chainrule train: default {train['chainrule default']:.1f} s, --threads 1 "
        f"{train['chainrule 1 thread']:.1f} s",
        f"quiet, wide MLP: chainrule default / its 1 thread = "
        f"{wide_q['chainrule default'] / wide_q['chainrule 1 thread']:.2f}; / PyTorch default = "
        f"{wide_q['chainrule default'] / wide_q['PyTorch default']:.2f}x",
    ]
    return lines


def worker(args) -> None:
    print(json.dumps(measure_mlp(args.worker, args.framework, args.threads, args.seconds)))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.contention", description=__doc__)
    parser.add_argument("--busy", type=int, default=os.cpu_count(), help="busy processes")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--quick", action="store_true", help="1 round of 1.5 s measurements")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--framework", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    environment.as_users_have_it("benchmarks.contention")
    if args.worker:
        worker(args)
        return
    if args.quick:
        args.repeats, args.seconds = 1, 1.5
    started = time.time()
    quiet = measure_phase(args, "quiet")
    # each round takes about 14 measurements of `seconds` plus process starts and two trainings
    busy_for = args.repeats * (14 * (args.seconds + 3) + 60) + 60
    processes = start_busy(args.busy, busy_for)
    try:
        time.sleep(0.5)
        busy = measure_phase(args, "busy")
    finally:
        stop(processes)
    import chainrule  # noqa: F401 - the kernels are described after the libraries load

    lines = [
        f"Machine: {machine()}",
        f"CPU: {environment.cpu()}",
        f"Kernels: {environment.describe()}",
        f"Busy: {args.busy} processes, each a Python loop on one core; medians of "
        f"{args.repeats} rounds, each measurement a fresh process of {args.seconds:g} s",
        "",
        *table(quiet, busy, args.busy),
        f"\n(benchmark took {time.time() - started:.0f} s)",
    ]
    text = "\n".join(lines)
    print(text)
    data = {"quiet": {" / ".join(k): v for k, v in quiet.items()}}
    data["busy"] = {" / ".join(k): v for k, v in busy.items()}
    save_results("contention", text, data)


if __name__ == "__main__":
    main()
