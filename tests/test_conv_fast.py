"""The fast convolution, pooling and batch-norm paths against the readable references, and their
gradients against finite differences.

Every fast path (channels-last convolution, max and average pooling, the tiling and the scatter
backward of pooling, the global-average shortcut of adaptive pooling) runs inline and split over
two threads in one-example chunks, on float64 and float32, on NCHW and channels-last inputs.
"""

import itertools
import threading

import numpy as np
import pytest

import chainrule as cr
from chainrule import threads as batch_split
from chainrule.ops import conv, conv_fast, pool_fast
from chainrule.ops.batchnorm_fast import ChannelsLastBatchNorm2d
from chainrule.ops.normalization import BatchNorm

INLINE = {}
THREADED = {"threads": 2, "chunk_bytes": 1, "min_parallel_bytes": 0}  # one example per chunk
TOLERANCE = {np.float64: 1e-10, np.float32: 2e-4}


def channels_last(x):
    """The same values as x (N, C, H, W), stored channels-last (as the fast ops' outputs)."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def values_and_gradients(op, arrays, upstream_seed=1, **params):
    """op's output and the gradient of every input, for a fixed random upstream gradient."""
    tensors = [None if a is None else cr.tensor(a, requires_grad=True) for a in arrays]
    y = op.apply(*tensors, **params)
    upstream = np.random.default_rng(upstream_seed).standard_normal(y.shape).astype(y.dtype)
    y.backward(upstream)
    return [y.detach().numpy()] + [t.grad for t in tensors if t is not None]


def assert_same(reference, fast, dtype):
    tol = TOLERANCE[dtype]
    assert len(reference) == len(fast)
    for r, f in zip(reference, fast):
        assert r.shape == f.shape and f.dtype == dtype
        np.testing.assert_allclose(f, r, rtol=tol, atol=tol)


CONV_CASES = [  # groups, kernel, stride, padding ((top, bottom), (left, right)), dilation
    (1, (5, 5), (1, 1), ((2, 2), (2, 2)), (1, 1), 1),  # one input channel: tap-major patches
    (1, (3, 2), (2, 1), ((1, 0), (0, 1)), (2, 1), 1),
    (1, (3, 3), (1, 1), ((0, 0), (0, 0)), (1, 1)),
    (1, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1)),
    (1, (5, 5), (1, 1), ((2, 2), (2, 2)), (1, 1)),
    (1, (1, 1), (1, 1), ((0, 0), (0, 0)), (1, 1)),  # the 1x1 shortcut: no patch copy
    (1, (1, 1), (2, 2), ((0, 0), (0, 0)), (1, 1)),
    (1, (3, 2), (2, 1), ((1, 2), (0, 1)), (1, 1)),  # uneven everything
    (1, (3, 3), (2, 2), ((1, 1), (1, 1)), (2, 1)),
    (1, (2, 3), (1, 2), ((0, 1), (2, 0)), (2, 2)),
    (2, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1)),
    (2, (2, 2), (2, 1), ((0, 1), (1, 0)), (1, 2)),
    (4, (3, 1), (1, 1), ((1, 1), (0, 0)), (1, 1)),  # depthwise (one channel per group)
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("policy", [INLINE, THREADED], ids=["inline", "threaded"])
@pytest.mark.parametrize("case", CONV_CASES)
def test_fast_conv_equals_the_reference(case, policy, dtype):
    groups, kernel, stride, padding, dilation, channels = (*case, 4)[:6]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, channels, 9, 8)).astype(dtype)
    w = rng.standard_normal((8, channels // groups, *kernel)).astype(dtype)
    b = rng.standard_normal(8).astype(dtype)
    params = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    reference = values_and_gradients(conv.Conv2d, [x, w, b], **params)
    for layout in (x, channels_last(x), x[:, :, ::-1]):  # NCHW, channels-last, a strided view
        with batch_split.policy(**policy):
            fast = values_and_gradients(conv_fast.ChannelsLastConv2d, [layout, w, b], **params)
        if layout is not x:
            reference = values_and_gradients(conv.Conv2d, [np.array(layout), w, b], **params)
        assert_same(reference, fast, dtype)


@pytest.mark.parametrize("policy", [INLINE, THREADED], ids=["inline", "threaded"])
def test_fast_conv_computes_only_the_gradients_asked_for(policy):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((4, 3, 6, 6)), rng.standard_normal((5, 3, 3, 3))
    for x_grad, w_grad in [(False, True), (True, False)]:
        xt, wt = cr.tensor(x, requires_grad=x_grad), cr.tensor(w, requires_grad=w_grad)
        with batch_split.policy(**policy):
            y = conv_fast.ChannelsLastConv2d.apply(xt, wt, None, padding=((1, 1), (1, 1)))
            y.backward(np.ones(y.shape))
        reference = [cr.tensor(x, requires_grad=True), cr.tensor(w, requires_grad=True)]
        conv.Conv2d.apply(*reference, None, padding=((1, 1), (1, 1))).sum().backward()
        for t, r, asked in [(xt, reference[0], x_grad), (wt, reference[1], w_grad)]:
            if asked:
                np.testing.assert_allclose(t.grad, r.grad, rtol=1e-10, atol=1e-10)
            else:
                assert t.grad is None


def test_fast_conv_output_is_channels_last_and_owns_its_memory():
    rng = np.random.default_rng(0)
    x = cr.tensor(rng.standard_normal((2, 3, 8, 8)), dtype=cr.float32)
    w = cr.tensor(rng.standard_normal((4, 3, 3, 3)), dtype=cr.float32)
    first = conv_fast.ChannelsLastConv2d.apply(x, w)
    kept = first.numpy().copy()
    assert first.numpy().transpose(0, 2, 3, 1).flags.c_contiguous
    conv_fast.ChannelsLastConv2d.apply(cr.tensor(np.zeros((2, 3, 8, 8)), dtype=cr.float32), w)
    np.testing.assert_array_equal(first.numpy(), kept)  # no shared buffer leaked into the output


@pytest.fixture
def winograd_for_any_channels(monkeypatch):
    monkeypatch.setattr(conv_fast.ChannelsLastConv2d, "WINOGRAD_MIN_CHANNELS", 1)


WINOGRAD_PADDINGS = [((0, 0), (0, 0)), ((1, 1), (1, 1)), ((2, 2), (2, 2)), ((0, 2), (1, 0))]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("policy", [INLINE, THREADED], ids=["inline", "threaded"])
@pytest.mark.parametrize("padding", WINOGRAD_PADDINGS)
@pytest.mark.parametrize("size", [(8, 8), (7, 6), (5, 9)])  # even and odd outputs
def test_winograd_conv_equals_the_reference(size, padding, policy, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 16, *size)).astype(dtype)
    w = (rng.standard_normal((16, 16, 3, 3)) / 12).astype(dtype)
    b = rng.standard_normal(16).astype(dtype)
    reference = values_and_gradients(conv.Conv2d, [x, w, b], padding=padding)
    xt, wt, bt = (cr.tensor(a, requires_grad=True) for a in (channels_last(x), w, b))
    with batch_split.policy(**policy):
        y = conv_fast.ChannelsLastConv2d.apply(xt, wt, bt, padding=padding)
        assert y._ctx.winograd
        y.backward(np.random.default_rng(1).standard_normal(y.shape).astype(dtype))
    assert_same(reference, [y.detach().numpy(), xt.grad, wt.grad, bt.grad], dtype)


@pytest.mark.parametrize("policy", [INLINE, THREADED], ids=["inline", "threaded"])
@pytest.mark.parametrize("padding", WINOGRAD_PADDINGS)
def test_winograd_conv_gradcheck(padding, policy, winograd_for_any_channels):
    rng = np.random.default_rng(6)
    x = cr.tensor(rng.standard_normal((2, 2, 5, 4)), requires_grad=True)
    w = cr.tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
    b = cr.tensor(rng.standard_normal(3), requires_grad=True)
    with batch_split.policy(**policy):
        y = conv_fast.ChannelsLastConv2d.apply(x, w, b, padding=padding)
        assert y._ctx.winograd
        cr.gradcheck(lambda *t: conv_fast.ChannelsLastConv2d.apply(*t, padding=padding), x, w, b)


def test_winograd_is_only_taken_where_it_applies(winograd_for_any_channels):
    rng = np.random.default_rng(0)
    x = cr.tensor(rng.standard_normal((1, 2, 7, 7)), dtype=cr.float32)
    for weight_shape, params, expected in [
        ((2, 2, 3, 3), {}, True),
        ((2, 2, 3, 3), {"stride": (2, 2)}, False),
        ((2, 2, 3, 3), {"dilation": (2, 2)}, False),
        ((2, 1, 3, 3), {"groups": 2}, False),
        ((2, 2, 5, 5), {}, False),
        ((2, 2, 3, 3), {"padding": ((3, 3), (0, 0))}, False),
    ]:
        w = cr.tensor(rng.standard_normal(weight_shape), dtype=cr.float32, requires_grad=True)
        assert conv_fast.ChannelsLastConv2d.apply(x, w, **params)._ctx.winograd is expected


POOL_CASES = [  # kernel, stride, padding
    ((2, 2), (2, 2), ((0, 0), (0, 0))),  # tiles the image: the reshape backward
    ((3, 3), (3, 3), ((0, 0), (0, 0))),  # tiles, leaving an uncovered border (floor mode)
    ((3, 3), (2, 2), ((1, 1), (1, 1))),  # overlapping, padded: the scatter backward
    ((2, 3), (1, 2), ((1, 1), (0, 0))),
    ((1, 2), (3, 1), ((0, 0), (1, 1))),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("policy", [INLINE, THREADED], ids=["inline", "threaded"])
@pytest.mark.parametrize("case", POOL_CASES)
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_fast_pooling_equals_the_reference(kind, case, policy, dtype):
    kernel, stride, padding = case
    reference_op, fast_op = {
        "max": (conv.MaxPool2d, pool_fast.ChannelsLastMaxPool2d),
        "avg": (conv.AvgPool2d, pool_fast.ChannelsLastAvgPool2d),
    }[kind]
    rng = np.random.default_rng(0)
    x = (rng.permutation(3 * 4 * 8 * 7).reshape(3, 4, 8, 7) / 10).astype(dtype)
    x[0, 0, :3, :3] = 99.0  # ties: the first maximum takes the gradient, as in PyTorch
    params = dict(kernel=kernel, stride=stride, padding=padding)
    reference = values_and_gradients(reference_op, [x], **params)
    for layout in (x, channels_last(x)):
        with batch_split.policy(**policy):
            fast = values_and_gradients(fast_op, [layout], **params)
        assert_same(reference, fast, dtype)


@pytest.mark.parametrize("size, out", [((8, 8), (1, 1)), ((6, 8), (3, 2)), ((7, 5), (2, 3))])
def test_adaptive_average_pooling_equals_the_reference(size, out):
    x = np.random.default_rng(0).standard_normal((2, 3, *size))
    reference = values_and_gradients(conv.AdaptiveAvgPool2d, [x], output_size=out)
    t = cr.tensor(channels_last(x), requires_grad=True)
    y = cr.nn.functional.adaptive_avg_pool2d(t, out)  # equal bins take the fast average pool
    y.backward(np.random.default_rng(1).standard_normal(y.shape))
    assert_same(reference, [y.detach().numpy(), t.grad], np.float64)


# -- gradient checks (float64 central differences) of every fast path ---------------------------


@pytest.mark.parametrize("policy", [INLINE, THREADED], ids=["inline", "threaded"])
@pytest.mark.parametrize("case", CONV_CASES[::2] + CONV_CASES[-2:])
def test_fast_conv_gradcheck(case, policy):
    groups, kernel, stride, padding, dilation, channels = (*case, 4)[:6]
    rng = np.random.default_rng(2)
    x = cr.tensor(rng.standard_normal((2, channels, 6, 5)), requires_grad=True)
    w = cr.tensor(rng.standard_normal((4, channels // groups, *kernel)), requires_grad=True)
    b = cr.tensor(rng.standard_normal(4), requires_grad=True)
    params = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    with batch_split.policy(**policy):
        cr.gradcheck(lambda *t: conv_fast.ChannelsLastConv2d.apply(*t, **params), x, w, b)


@pytest.mark.parametrize("policy", [INLINE, THREADED], ids=["inline", "threaded"])
@pytest.mark.parametrize("case", POOL_CASES)
@pytest.mark.parametrize("op", [pool_fast.ChannelsLastMaxPool2d, pool_fast.ChannelsLastAvgPool2d])
def test_fast_pooling_gradcheck(op, case, policy):
    kernel, stride, padding = case
    rng = np.random.default_rng(3)
    x = cr.tensor(rng.permutation(2 * 3 * 7 * 6).reshape(2, 3, 7, 6) / 7.0, requires_grad=True)
    params = dict(kernel=kernel, stride=stride, padding=padding)
    with batch_split.policy(**policy):
        cr.gradcheck(lambda t: op.apply(t, **params), x)


def test_layers_gradcheck_through_the_fast_paths():
    """Conv2d -> ReLU -> MaxPool2d -> Conv2d -> AdaptiveAvgPool2d, channels-last in between."""
    cr.manual_seed(0)
    conv1, conv2 = cr.nn.Conv2d(2, 3, 3, padding=1), cr.nn.Conv2d(3, 2, 2, stride=1)
    x = cr.tensor(np.random.default_rng(4).standard_normal((2, 2, 6, 6)), requires_grad=True)

    def net(t, w1, b1, w2, b2):
        F = cr.nn.functional
        h = F.max_pool2d(F.relu(F.conv2d(t, w1, b1, padding=1)), 2)
        return F.adaptive_avg_pool2d(F.conv2d(h, w2, b2), 1)

    params = [cr.tensor(p.detach().numpy(), dtype=cr.float64, requires_grad=True) for p in (
        conv1.weight, conv1.bias, conv2.weight, conv2.bias)]  # fmt: skip
    with batch_split.policy(**THREADED):
        cr.gradcheck(net, x, *params)


# -- the batch split itself ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n, threads, chunk", list(itertools.product([1, 5, 16], [1, 2, 3], [1, 4, 64]))
)
def test_split_batch_covers_every_example_once(n, threads, chunk):
    seen = []
    with batch_split.policy(threads=threads, chunk_bytes=chunk, min_parallel_bytes=0):
        used = batch_split.split_batch(lambda a, b, k: seen.append((a, b, k)), n, 1)
        expected = batch_split.chunks(n, 1)
    covered = sorted(i for a, b, _ in seen for i in range(a, b))
    assert covered == list(range(n))
    assert all(b - a <= chunk for a, b, _ in seen)
    assert sorted(seen) == [(a, b, k) for k, (a, b) in enumerate(expected)]  # index: the chunk's
    assert len(expected) % 2 == 0 or len(expected) == n  # a multiple of min_chunks (2)
    sizes = [b - a for a, b in expected]
    assert max(sizes) - min(sizes) <= 1  # equal shares
    assert used == min(threads, len(expected))


def test_a_stalled_thread_does_not_hold_up_the_batch():
    """The chunks go to whichever thread asks next: while the pool's thread is held up on its
    first chunk (as if another program had its core), the calling thread takes all the others.
    (With a fixed half per thread it would wait for the held-up half instead.)"""
    done_by = {}
    lock = threading.Lock()
    others_done = threading.Event()

    def work(start, stop, chunk):
        me = threading.current_thread().name
        if me != "MainThread":
            others_done.wait(timeout=10)  # held up until the caller has done the rest
        with lock:
            done_by[chunk] = me
            if sum(name == "MainThread" for name in done_by.values()) == 7:
                others_done.set()

    with batch_split.policy(threads=2, chunk_bytes=1, min_parallel_bytes=0):
        batch_split.split_batch(work, 8, 1)
    assert sorted(done_by) == list(range(8))
    assert list(done_by.values()).count("MainThread") >= 7
    assert others_done.is_set()


def test_split_batch_follows_the_blas_setting_and_restores_it():
    before = batch_split.blas_threads()
    try:
        cr.set_num_threads(2)
        threads_inside = []
        with batch_split.policy(min_parallel_bytes=0):
            used = batch_split.split_batch(
                lambda a, b, t: threads_inside.append(batch_split.blas_threads()), 8, 1
            )
        assert used == 2 and set(threads_inside) == {1}  # one BLAS thread per worker inside
        assert batch_split.blas_threads() == 2
        cr.set_num_threads(1)
        assert batch_split.split_batch(lambda a, b, t: None, 8, 1 << 30) == 1
    finally:
        cr.set_num_threads(before)
        cr.set_num_threads("auto")  # the default, for the tests after this one


def test_split_batch_passes_errors_on_and_restores_blas():
    before = batch_split.blas_threads()

    def fail_in_the_second_worker(start, stop, chunk):
        if chunk == 1:
            raise RuntimeError("worker failed")

    with batch_split.policy(threads=2, min_parallel_bytes=0):
        with pytest.raises(RuntimeError, match="worker failed"):
            batch_split.split_batch(fail_in_the_second_worker, 4, 1)
    assert batch_split.blas_threads() == before


@pytest.mark.parametrize("winograd", [False, True])
def test_results_are_the_same_for_any_thread_count(winograd):
    """Sums over the batch are added in chunk order, whichever thread did which chunk."""
    rng = np.random.default_rng(0)
    channels = 16 if winograd else 3  # Winograd from 16 channels on
    x, w = rng.standard_normal((6, channels, 7, 7)), rng.standard_normal((16, channels, 3, 3))
    runs = []
    for threads in (1, 2, 3, 2):
        with batch_split.policy(threads=threads, chunk_bytes=1, min_parallel_bytes=0):
            runs.append(values_and_gradients(conv_fast.ChannelsLastConv2d, [x, w]))
    for run in runs[1:]:
        for a, b in zip(runs[0], run):
            np.testing.assert_array_equal(a, b)


# -- batch normalisation of images ------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("policy", [INLINE, THREADED], ids=["inline", "threaded"])
@pytest.mark.parametrize("affine", [True, False])
def test_fast_batch_norm_equals_the_fused_reference(affine, policy, dtype):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((5, 3, 4, 6)) * 3 + 2).astype(dtype)
    w, b = (rng.standard_normal(3).astype(dtype) if affine else None for _ in range(2))
    results = []
    for op, layout in [
        (BatchNorm, x),
        (ChannelsLastBatchNorm2d, x),
        (ChannelsLastBatchNorm2d, channels_last(x)),
    ]:
        stats = {}
        with batch_split.policy(**policy):
            values = values_and_gradients(op, [layout, w, b], eps=1e-5, stats_out=stats)
        results.append(values + [stats["mean"].reshape(-1), stats["var"].reshape(-1)])
    for fast in results[1:]:
        assert_same(results[0], fast, dtype)


@pytest.mark.parametrize("policy", [INLINE, THREADED], ids=["inline", "threaded"])
def test_fast_batch_norm_gradcheck(policy):
    rng = np.random.default_rng(5)
    x = cr.tensor(rng.standard_normal((3, 2, 4, 3)) * 2 + 1, requires_grad=True)
    w = cr.tensor(rng.standard_normal(2), requires_grad=True)
    b = cr.tensor(rng.standard_normal(2), requires_grad=True)
    with batch_split.policy(**policy):
        cr.gradcheck(lambda *t: ChannelsLastBatchNorm2d.apply(*t), x, w, b)


def test_batch_norm_2d_layer_takes_the_fast_path_and_keeps_running_statistics():
    cr.manual_seed(0)
    layer = cr.nn.BatchNorm2d(3)
    x = np.random.default_rng(0).standard_normal((8, 3, 5, 5)).astype(np.float32) * 2 + 1
    y = layer(cr.tensor(x))
    assert y.detach().numpy().transpose(0, 2, 3, 1).flags.c_contiguous  # the channels-last op ran
    np.testing.assert_allclose(layer.running_mean, 0.1 * x.mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(
        layer.running_var, 0.9 + 0.1 * x.var(axis=(0, 2, 3), ddof=1), rtol=1e-5
    )


def _threaded_conv_sum(queue):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((8, 3, 9, 9)), rng.standard_normal((4, 3, 3, 3))
    with batch_split.policy(**THREADED):
        queue.put(float(conv_fast.ChannelsLastConv2d.apply(cr.tensor(x), cr.tensor(w)).sum()))


def test_a_forked_child_gets_its_own_pool():
    import multiprocessing

    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    _threaded_conv_sum(queue)  # the parent's pool is running
    child = context.Process(target=_threaded_conv_sum, args=(queue,))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0
    assert queue.get(timeout=5) == pytest.approx(queue.get(timeout=5))
