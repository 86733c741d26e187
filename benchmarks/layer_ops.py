"""Forward and backward time of the layers and ops that the MLP and sequence benchmarks spend
their steps in, chainrule vs PyTorch in the same process, interleaved.

    python -m benchmarks.layer_ops [--threads 2] [--repeats 5]

Each case is one layer or op on the input it sees inside its model (the MLP's Linear layers at
batch 128, the word language model's decoder and log-softmax over 10,000 words, its LSTM and GRU
layers, the GPT's LayerNorm and dropout) and the Adam step over the MLP's parameters. A case's
input requires a gradient where it does inside the model. The frameworks take turns, resting
``SETTLE`` seconds before each turn so that the other one's waiting threads are asleep. Prints
median milliseconds and the ratio PyTorch / chainrule (above 1: chainrule faster); writes
``results/layer_ops.md``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from . import environment
from .common import forward_backward_ms, machine, median_columns, save_results, set_threads

WORDS, STEPS, BATCH = 10_000, 35, 20
SETTLE = 0.3
"""Seconds of rest before each framework's calls: the threads the other one just used wait
busily for more work for a while (OpenBLAS's and OpenMP's, about 0.1-0.2 s), and would take a
core from the one being timed."""


def _cases(lib, rng) -> list[tuple[str, object, object, object]]:
    """(name, function of the input, input tensor, upstream gradient or None for a scalar)."""
    nn, F = lib.nn, lib.nn.functional

    def tensor(shape, grad=True):
        array = rng.standard_normal(shape, dtype=np.float32)
        return lib.tensor(array, requires_grad=grad)

    targets = lib.from_numpy(rng.integers(0, WORDS, STEPS * BATCH))
    cases = []
    for n_in, n_out, grad in ((784, 256, False), (256, 128, True), (128, 10, True)):
        layer = nn.Linear(n_in, n_out)
        cases.append((f"Linear {n_in}->{n_out}, batch 128 (MLP)", layer, tensor((128, n_in), grad)))
    cases.append(
        (f"Linear 200->{WORDS:,}, 700 rows (LM decoder)", nn.Linear(200, WORDS), tensor((700, 200)))
    )
    scores = tensor((STEPS * BATCH, WORDS))
    cases.append(
        (
            "log_softmax + NLL, 700 x 10,000",
            lambda x: F.nll_loss(F.log_softmax(x, 1), targets),
            scores,
        )
    )
    cases.append(("cross_entropy, 700 x 10,000", lambda x: F.cross_entropy(x, targets), scores))
    for kind, size in (("LSTM", 200), ("GRU", 200), ("LSTM", 650)):
        layer = getattr(nn, kind)(size, size)
        cases.append(
            (
                f"{kind} {size}, seq 35, batch 20 (LM)",
                lambda x, m=layer: m(x)[0],
                tensor((STEPS, BATCH, size)),
            )
        )
    cases.append(("LayerNorm 128, (32, 64, 128) (GPT)", nn.LayerNorm(128), tensor((32, 64, 128))))
    dropout = nn.Dropout(0.2)
    dropout.train()
    cases.append(("Dropout 0.2, (32, 64, 512) (GPT)", dropout, tensor((32, 64, 512))))
    return [
        (
            name,
            fn,
            x,
            None if name.startswith(("log_softmax", "cross")) else _gradient(lib, fn, x, rng),
        )
        for name, fn, x in cases
    ]


def _gradient(lib, fn, x, rng):
    shape = tuple(fn(x).shape)
    return lib.from_numpy(rng.standard_normal(shape, dtype=np.float32))


def _adam(lib, rng):
    """The Adam step over MLP 784-256-128-10's parameters, their gradients set once."""
    nn = lib.nn
    model = nn.Sequential(
        nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10)
    )
    for p in model.parameters():
        p.grad = lib.from_numpy(rng.standard_normal(tuple(p.shape), dtype=np.float32))
    return lib.optim.Adam(model.parameters(), lr=1e-3).step


def _step_ms(step, calls: int) -> tuple[float, float]:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3, 0.0


def measure(repeats: int = 5, calls: int = 7) -> list[dict]:
    """Per case: the median forward and backward milliseconds of each framework."""
    import torch

    import chainrule

    libraries = {"chainrule": chainrule, "pytorch": torch}
    setups = {}
    for fw, lib in libraries.items():
        lib.manual_seed(0)
        rng = np.random.default_rng(0)
        setups[fw] = [
            (name, forward_backward_ms, (fn, x, g)) for name, fn, x, g in _cases(lib, rng)
        ]
        setups[fw].append(
            ("Adam step, MLP 784-256-128-10 (235,146 parameters)", _step_ms, (_adam(lib, rng),))
        )
    rows = []
    for k, (name, *_) in enumerate(setups["chainrule"]):
        times = {fw: [] for fw in setups}
        for fw in setups:  # warm-up
            _, timer, args = setups[fw][k]
            timer(*args, 2)
        for _ in range(repeats):
            for fw in setups:
                _, timer, args = setups[fw][k]
                time.sleep(SETTLE)
                timer(*args, 1)  # this framework's threads awake again
                times[fw].append(timer(*args, calls))
        rows.append({"case": name, **median_columns(times)})
    return rows


def table(rows: list[dict], threads: int) -> list[str]:
    lines = [
        f"layers and ops, {threads} threads each, medians of interleaved calls in one process",
        f"machine: {machine()}",
        f"kernels: {environment.describe()}",
        "",
        f"| {'forward / backward ms':<52} | {'chainrule':>15} | {'PyTorch':>15} | {'ratio f / b':>11} |",
        f"|{'-' * 54}|{'-' * 17}|{'-' * 17}|{'-' * 13}|",
    ]
    for row in rows:
        ours = (row["chainrule_forward_ms"], row["chainrule_backward_ms"])
        theirs = (row["pytorch_forward_ms"], row["pytorch_backward_ms"])
        ratios = " / ".join(f"{t / o:.2f}" if o else "-" for o, t in zip(ours, theirs))
        lines.append(
            f"| {row['case']:<52} | {ours[0]:>6.2f} / {ours[1]:>6.2f} | "
            f"{theirs[0]:>6.2f} / {theirs[1]:>6.2f} | {ratios:>11} |"
        )
    lines.append("(ratio: PyTorch's time / chainrule's; above 1: chainrule faster)")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.layer_ops")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    environment.as_users_have_it("benchmarks.layer_ops")
    set_threads(args.threads)
    rows = measure(args.repeats)
    text = "\n".join(table(rows, args.threads))
    print(text)
    save_results("layer_ops", text, rows)


if __name__ == "__main__":
    main()
