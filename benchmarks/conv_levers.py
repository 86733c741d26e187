"""``python -m benchmarks.conv_levers``: what each speed lever of the convolution path is worth.

Each lever is switched off and on, interleaved, on the layers where it matters: CPU time with
one thread (the work done, steady on a busy machine) and wall time with ``--threads`` (what a
user waits for). Levers kept in chainrule are switched through ``batch_split.policy`` and
``ChannelsLastConv2d.use_winograd``; the alternatives that were measured and not kept are small
functions below, so that their figures can be reproduced. Writes
``benchmarks/results/conv_levers.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time

import numpy as np

from . import environment
from .common import save_results, set_threads

# name, batch, in channels, out channels, kernel, padding, input size
LAYERS = {
    "MNIST conv2": (64, 32, 64, 3, 0, 26),
    "LeNet conv2": (128, 6, 16, 5, 0, 14),
    "LeNet conv1": (128, 1, 6, 5, 2, 28),
    "CIFAR 32->64": (128, 32, 64, 3, 1, 32),
    "CIFAR 64->128": (128, 64, 128, 3, 1, 16),
}


def timed(run, repeats: int, clock) -> list[float]:
    run()
    times = []
    for _ in range(repeats):
        start = clock()
        run()
        times.append((clock() - start) * 1e3)
    return times


def compare(variants: dict, repeats: int, clock) -> dict:
    """Median and range (ms) of each variant, the variants interleaved repetition by repetition."""
    samples = {name: [] for name in variants}
    for _ in range(repeats):
        for name, run in variants.items():
            samples[name] += timed(run, 1, clock)
    return {n: (statistics.median(v), min(v), max(v)) for n, v in samples.items()}


def conv_case(name, requires_input_grad=True):
    """A chainrule Conv2d layer with a channels-last input and upstream gradient, and a runner."""
    import chainrule as cr

    batch, c_in, c_out, k, pad, size = LAYERS[name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, size, size, c_in), dtype=np.float32).transpose(0, 3, 1, 2)
    layer = cr.nn.Conv2d(c_in, c_out, k, padding=pad)
    x = cr.Tensor._make(x, requires_input_grad)
    out = layer(x)
    grad = rng.standard_normal(out.shape, dtype=np.float32)
    grad = np.ascontiguousarray(grad.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    return layer, x, grad


def layer_runner(layer, x, grad):
    def run():
        layer(x).backward(grad)

    return run


def reference_runner(layer, x, grad):
    """The same layer through the readable im2col reference op."""
    from chainrule.ops import conv

    def run():
        k = layer.padding
        conv.Conv2d.apply(
            x, layer.weight, layer.bias, padding=((k[0], k[0]), (k[1], k[1]))
        ).backward(grad)

    return run


def relu_split_bound(shape):
    """The lever 'fused convolution + bias + ReLU': the most fusing can save is the ReLU's own
    passes. Times the ReLU op (forward + backward, one thread, as it runs after the convolution)
    against the same passes done in chunks on the pool, as a fused op would do them."""
    import chainrule as cr
    from chainrule import threads as batch_split

    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32)
    grad = rng.standard_normal(shape, dtype=np.float32)
    t = cr.Tensor._make(x, True)
    out = np.empty_like(x)

    def op():
        cr.relu(t).backward(grad)

    def in_chunks():
        def work(start, stop, worker):
            np.maximum(x[start:stop], 0, out=out[start:stop])
            np.multiply(grad[start:stop], x[start:stop] > 0, out=out[start:stop])

        batch_split.split_batch(work, len(x), x[0].nbytes)

    return {"ReLU op (after the convolution)": op, "ReLU passes in chunks (fused bound)": in_chunks}


def col2im_input_grad(grad_rows, w_taps, chunk_shape, k):
    """The lever 'dX by one product and a scatter-add (col2im)', not kept: dX patches = dZ W,
    then each tap's column block added back into place."""
    m, h, w, c = chunk_shape
    ho, wo = h - k + 1, w - k + 1
    cols = (grad_rows @ w_taps).reshape(m, ho, wo, k, k, c)
    out = np.zeros(chunk_shape, np.float32)
    for i in range(k):
        for j in range(k):
            out[:, i : i + ho, j : j + wo] += cols[:, :, :, i, j]
    return out


def transposed_input_grad(grad_image, w_flipped, chunk_shape, k):
    """The lever 'dX as a convolution with the transposed filters' (im2col of the padded dZ,
    one product), not kept."""
    from numpy.lib.stride_tricks import as_strided

    m, h, w, c = chunk_shape
    o = grad_image.shape[-1]
    q = k - 1
    padded = np.zeros((m, h + q, w + q, o), np.float32)
    padded[:, q : q + grad_image.shape[1], q : q + grad_image.shape[2]] = grad_image
    s = padded.strides
    windows = as_strided(padded, (m, h, w, k, k, o), (s[0], s[1], s[2], s[1], s[2], s[3]))
    return np.ascontiguousarray(windows).reshape(m * h * w, -1) @ w_flipped


def input_grad_variants(name):
    """dX of one layer (no padding form): per-tap products (kept) vs col2im vs transposed."""
    from chainrule.threads import split_batch

    batch, c, o, k, _, size = LAYERS[name]
    size = size + 2 * LAYERS[name][4]  # the padded input, so that all three agree
    rng = np.random.default_rng(0)
    ho = size - k + 1
    grad = rng.standard_normal((batch, ho, ho, o), dtype=np.float32)
    weight = rng.standard_normal((o, c, k, k), dtype=np.float32)
    w_taps = np.ascontiguousarray(weight.transpose(0, 2, 3, 1)).reshape(o, -1)
    w_by_tap = np.ascontiguousarray(weight.transpose(2, 3, 0, 1))
    w_flipped = np.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(2, 3, 0, 1)).reshape(-1, c)
    bytes_per_example = ho * ho * k * k * c * 4

    def per_tap(start, stop, worker):
        m = stop - start
        out = np.zeros((m, size, size, c), np.float32)
        rows = grad[start:stop].reshape(-1, o)
        for i in range(k):
            for j in range(k):
                out[:, i : i + ho, j : j + ho] += (rows @ w_by_tap[i, j]).reshape(m, ho, ho, c)

    def col2im(start, stop, worker):
        rows = grad[start:stop].reshape(-1, o)
        col2im_input_grad(rows, w_taps, (stop - start, size, size, c), k)

    def transposed(start, stop, worker):
        transposed_input_grad(grad[start:stop], w_flipped, (stop - start, size, size, c), k)

    return {
        f"dX per tap (kept), {name}": lambda: split_batch(per_tap, batch, bytes_per_example),
        f"dX col2im, {name}": lambda: split_batch(col2im, batch, bytes_per_example),
        f"dX transposed conv, {name}": lambda: split_batch(transposed, batch, bytes_per_example),
    }


@contextlib.contextmanager
def winograd(on: bool):
    from chainrule.ops.conv_fast import ChannelsLastConv2d

    previous = ChannelsLastConv2d.use_winograd
    ChannelsLastConv2d.use_winograd = on
    try:
        yield
    finally:
        ChannelsLastConv2d.use_winograd = previous


def with_settings(run, winograd_on=True, **policy):
    from chainrule import threads as batch_split

    def wrapped():
        with batch_split.policy(**policy), winograd(winograd_on):
            run()

    return wrapped


def lever_table(repeats: int, threads: int) -> list[str]:
    from chainrule import threads as batch_split

    groups = {}
    for name in LAYERS:
        case = conv_case(name, requires_input_grad=name != "LeNet conv1")
        run = layer_runner(*case)
        groups[f"{name}: forward + backward"] = {
            "readable reference (NCHW im2col)": reference_runner(*case),
            "fast path, all levers": run,
            "one worker (BLAS threads only)": with_settings(run, threads=1),
            "whole batch in one chunk": with_settings(run, chunk_bytes=1 << 40, min_chunks=1),
            "no Winograd": with_settings(run, winograd_on=False),
        }
    for name in ("MNIST conv2", "CIFAR 64->128", "LeNet conv2"):
        groups[f"{name}: input gradient alone"] = input_grad_variants(name)
    groups["ReLU on the MNIST conv2 output (64, 24, 24, 64)"] = relu_split_bound((64, 24, 24, 64))
    lines = []
    for clock_name, clock, n_threads in [
        ("CPU ms, 1 thread", time.process_time, 1),
        (f"wall ms, {threads} threads", time.perf_counter, threads),
    ]:
        set_threads(n_threads, torch=False)
        lines += [
            "",
            f"| {clock_name:<56} | {'median':>8} | {'range':>17} |",
            f"|{'-' * 58}|{'-' * 10}|{'-' * 19}|",
        ]
        for group, variants in groups.items():
            lines.append(f"| **{group}** | | |")
            for variant, (median, low, high) in compare(variants, repeats, clock).items():
                lines.append(f"| {variant:<56} | {median:>8.2f} | {low:>7.2f} - {high:>7.2f} |")
    set_threads(threads, torch=False)
    assert batch_split.current_policy() == batch_split.Policy()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.conv_levers", description=__doc__)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    environment.as_users_have_it("benchmarks.conv_levers")
    set_threads(args.threads, torch=False)
    import chainrule  # noqa: F401 - BLAS described after NumPy's library is loaded

    lines = [
        f"Convolution levers; load average before: {os.getloadavg()[0]:.1f}",
        f"CPU: {environment.cpu()}",
        f"Kernels: {environment.describe()}",
        f"Medians of {args.repeats} interleaved repetitions, ms",
    ]
    lines += lever_table(args.repeats, args.threads)
    lines.append(f"\nload average after: {os.getloadavg()[0]:.1f}")
    text = "\n".join(lines)
    print(text)
    save_results("conv_levers", text)


if __name__ == "__main__":
    main()
