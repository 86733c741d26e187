"""Where one training step's wall time goes, op by op, chainrule beside PyTorch.

``python -m benchmarks.step_profile --net mnist --threads 2`` trains the network for a few
steps in each library, interleaved, and prints the median milliseconds per step spent in each
op's forward and backward (chainrule: every :class:`~chainrule.function.Function` subclass's
``forward``/``backward``, timed by wrapping them; PyTorch: its profiler's self CPU time per aten
op), the optimizer step, and what is left (Python, the engine, the autograd bookkeeping).
Inclusive op times of chainrule nest (an op that calls another counts both), so they can sum to
more than the step; PyTorch's are self times. Like every benchmark here it runs without the
variables a user would not have (see :mod:`.environment`).
"""

from __future__ import annotations

import argparse
import collections
import statistics
import time

from . import convnets, environment
from .common import set_threads


def _function_classes():
    from chainrule.function import Function

    seen, todo = [], [Function]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub not in seen:
                seen.append(sub)
                todo.append(sub)
    return seen


class ChainruleTimer:
    """Wraps every op's forward and backward to add up their wall time by name."""

    def __init__(self):
        self.totals = collections.Counter()
        self.on = False
        for cls in _function_classes():
            for method in ("forward", "backward"):
                if method in vars(cls):
                    setattr(cls, method, self._timed(vars(cls)[method], f"{cls.__name__}.{method}"))

    def _timed(self, fn, name):
        totals = self.totals

        def timed(*args, **kwargs):
            if not self.on:
                return fn(*args, **kwargs)
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                totals[name] += time.perf_counter() - start

        return timed


def profile_chainrule(net, optimizer, steps, dropout):
    x, y = convnets.data(net)
    timer = ChainruleTimer()
    step = convnets.training_step("chainrule", net, x, y, optimizer, dropout)
    opt_time = collections.Counter()
    # time the optimizer step by wrapping the instance the closure uses
    opt = next(c.cell_contents for c in step.__closure__ if hasattr(c.cell_contents, "step"))
    raw_step = opt.step

    def timed_step(*a, **k):
        start = time.perf_counter()
        try:
            return raw_step(*a, **k)
        finally:
            opt_time["optimizer.step"] += time.perf_counter() - start

    opt.step = timed_step
    for i in range(3):
        step(i)
    timer.totals.clear()
    opt_time.clear()
    timer.on = True
    start = time.perf_counter()
    for i in range(steps):
        step(i)
    total = time.perf_counter() - start
    timer.on = False
    result = {k: v / steps * 1e3 for k, v in (timer.totals + opt_time).items()}
    result["STEP (wall)"] = total / steps * 1e3
    return result


def profile_pytorch(net, optimizer, steps, dropout):
    import torch

    x, y = convnets.data(net)
    step = convnets.training_step("pytorch", net, x, y, optimizer, dropout)
    for i in range(3):
        step(i)
    start = time.perf_counter()
    for i in range(steps):
        step(i)
    total = time.perf_counter() - start
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for i in range(steps):
            step(i)
    result = {
        e.key: e.self_cpu_time_total / steps / 1e3
        for e in prof.key_averages()
        if e.self_cpu_time_total / steps / 1e3 >= 0.05
    }
    result["STEP (wall)"] = total / steps * 1e3
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--net", choices=sorted(convnets.BATCH), default="mnist")
    parser.add_argument("--optimizer", choices=["adam", "adadelta"], default="adam")
    parser.add_argument("--no-dropout", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--framework", action="append", choices=["chainrule", "pytorch"])
    args = parser.parse_args()
    environment.as_users_have_it("benchmarks.step_profile")
    set_threads(args.threads)
    frameworks = args.framework or ["chainrule", "pytorch"]
    runs = {fw: [] for fw in frameworks}
    profilers = {"chainrule": profile_chainrule, "pytorch": profile_pytorch}
    for _ in range(args.repeats):
        for fw in frameworks:
            runs[fw].append(
                profilers[fw](args.net, args.optimizer, args.steps, not args.no_dropout)
            )
    for fw, values in runs.items():
        keys = set().union(*values)
        medians = {k: statistics.median(v.get(k, 0.0) for v in values) for k in keys}
        walls = sorted(v["STEP (wall)"] for v in values)
        print(f"\n{fw}: {args.net}, {args.optimizer}, {args.threads} threads, ms per step")
        step = medians.pop("STEP (wall)")
        print(f"  {'STEP (wall)':<40} {step:8.2f}  range {walls[0]:.1f}-{walls[-1]:.1f}")
        for name, ms in sorted(medians.items(), key=lambda kv: -kv[1])[: args.top]:
            print(f"  {name:<40} {ms:8.2f}")


if __name__ == "__main__":
    main()
