"""Elementwise work in pieces on the batch pool (ReLU's passes, the optimizers' rules): the same
result as one call, bit for bit, and one call wherever the arrays cannot be cut alike."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim
from chainrule import threads as batch_split
from chainrule.ops.activations import ReLU

THREADED = {"threads": 2, "chunk_bytes": 64, "min_parallel_bytes": 0, "min_elementwise_bytes": 0}


def channels_last(x):
    """The same values as x (N, C, H, W), stored channels-last (as the fast ops' outputs)."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


@pytest.fixture
def pieces(monkeypatch):
    """Counts the calls that were cut into pieces (split_batch runs) and the pieces."""
    counts = {"splits": 0, "pieces": 0}
    split_batch = batch_split.split_batch

    def counting(work, n, bytes_per_example):
        counts["splits"] += 1

        def counted(start, stop, chunk):
            counts["pieces"] += 1
            work(start, stop, chunk)

        return split_batch(counted, n, bytes_per_example)

    monkeypatch.setattr(batch_split, "split_batch", counting)
    return counts


def scale_and_shift(x, out, *, scale, shift):
    np.multiply(x, scale, out=out)
    out += shift


def test_pieces_give_the_result_of_one_call(pieces):
    x = channels_last(np.random.default_rng(0).standard_normal((4, 3, 5, 6)))
    whole, cut = np.empty_like(x), np.empty_like(x)
    scale_and_shift(x, whole, scale=0.3, shift=1.5)
    with batch_split.policy(**THREADED):
        batch_split.elementwise(scale_and_shift, x, cut, scale=0.3, shift=1.5)
    np.testing.assert_array_equal(cut, whole)
    assert pieces["splits"] == 1 and pieces["pieces"] >= 4


def test_none_is_passed_on_as_it_is(pieces):
    seen = []
    x = np.arange(1000.0)
    with batch_split.policy(**THREADED):
        batch_split.elementwise(lambda a, b, c: seen.append((b is None, c.size)), x, None, x)
    assert pieces["splits"] == 1
    assert all(b_is_none for b_is_none, _ in seen) and sum(size for _, size in seen) == 1000


@pytest.mark.parametrize(
    "arrays",
    [
        lambda x: (x, np.empty(x.shape)),  # NCHW beside a channels-last view
        lambda x: (x, np.empty(x.shape[1:])),  # different shapes (broadcasting)
        lambda x: (np.broadcast_to(x[:1], x.shape), np.empty_like(x)),  # a broadcast view
        lambda x: (x[:, :, ::2], np.empty_like(x[:, :, ::2])),  # a strided view
    ],
    ids=["layouts", "shapes", "broadcast", "strided"],
)
def test_arrays_that_cannot_be_cut_alike_take_one_call(arrays, pieces):
    x = channels_last(np.random.default_rng(0).standard_normal((4, 3, 6, 6)))
    calls = []
    with batch_split.policy(**THREADED):
        batch_split.elementwise(lambda *a: calls.append(a), *arrays(x))
    assert pieces["splits"] == 0 and len(calls) == 1


def test_empty_arrays_are_fine(pieces):
    x = np.empty((0, 3))
    with batch_split.policy(**THREADED):
        batch_split.elementwise(np.multiply, x, x, x)
        y = ReLU.apply(cr.tensor(x, requires_grad=True))
    assert y.shape == (0, 3)


def test_small_work_takes_one_call(pieces):
    calls = []
    with batch_split.policy(threads=2):  # the default threshold of 2 MiB
        batch_split.elementwise(lambda *a: calls.append(a), np.empty(1000), np.empty(1000))
    assert pieces["splits"] == 0 and len(calls) == 1


# -- ReLU --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("upstream_layout", ["same", "nchw"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_relu_in_pieces_equals_relu_in_one_call(upstream_layout, dtype, pieces):
    rng = np.random.default_rng(1)
    x = channels_last(rng.standard_normal((4, 3, 5, 6)).astype(dtype))
    upstream = rng.standard_normal(x.shape).astype(dtype)
    upstream = channels_last(upstream) if upstream_layout == "same" else upstream
    runs = []
    for policy in ({}, THREADED):
        with batch_split.policy(**policy):
            t = cr.tensor(x, requires_grad=True)
            y = ReLU.apply(t)
            y.backward(upstream)
        runs.append((y.detach().numpy(), t.grad.detach().numpy()))
    np.testing.assert_array_equal(runs[1][0], np.maximum(x, 0))
    np.testing.assert_array_equal(runs[1][1], upstream * (x > 0))
    for whole, cut in zip(*runs):
        np.testing.assert_array_equal(cut, whole)
        assert cut.dtype == dtype
    assert pieces["splits"] == 1 + (upstream_layout == "same")  # backward too if layouts match
    assert runs[1][0].transpose(0, 2, 3, 1).flags.c_contiguous  # the output keeps x's layout


def test_relu_gradcheck_in_pieces():
    x = channels_last(np.random.default_rng(2).standard_normal((2, 3, 4, 5)))
    x[np.abs(x) < 1e-3] = 0.5  # away from the kink
    with batch_split.policy(**THREADED):
        assert cr.gradcheck(ReLU.apply, cr.tensor(x, requires_grad=True))


# -- the optimizers ----------------------------------------------------------------------------------

OPTIMIZERS = {
    "GD": lambda ps: optim.GD(ps, lr=0.05),
    "SGD": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "Adam": lambda ps: optim.Adam(ps, lr=0.01, weight_decay=1e-3),
    "Adam-amsgrad": lambda ps: optim.Adam(ps, lr=0.01, amsgrad=True),
    "AdamW": lambda ps: optim.AdamW(ps, lr=0.01),
    "RMSprop": lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.5, centered=True),
    "Adagrad": lambda ps: optim.Adagrad(ps, lr=0.05, lr_decay=0.01),
    "Adadelta": lambda ps: optim.Adadelta(ps, weight_decay=1e-3),
    "Adamax": lambda ps: optim.Adamax(ps, lr=0.01),
    "NAdam": lambda ps: optim.NAdam(ps, lr=0.01),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_optimizer_in_pieces_equals_one_call(name, pieces):
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((16, 20)), rng.standard_normal((16, 3))
    finals = []
    for policy in ({}, THREADED):
        cr.manual_seed(0)
        model = nn.Sequential(nn.Linear(20, 30), nn.Tanh(), nn.Linear(30, 3)).double()
        opt = OPTIMIZERS[name](model.parameters())
        with batch_split.policy(**policy):
            for step in range(4):
                opt.zero_grad()
                ((model(cr.tensor(x)) - cr.tensor(y)) ** 2).mean().backward()
                if step == 2:  # one step on the per-parameter path (the fused one needs all)
                    model[2].bias.grad = None
                opt.step()
        finals.append([p.detach().numpy().copy() for p in model.parameters()])
    for whole, cut in zip(*finals):
        np.testing.assert_array_equal(cut, whole)
    assert pieces["splits"] >= 4  # every step went in pieces
