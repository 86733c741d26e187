"""The BLAS-product sums (chainrule.sums) equal NumPy's sums for every layout they are given."""

import numpy as np
import pytest

from chainrule.sums import last_axes_sums, leading_axes_sums, ones

SHAPES = [(7,), (3, 5), (2, 3, 4), (4, 1, 6), (1, 9)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.float16])
@pytest.mark.parametrize("shape", SHAPES)
def test_last_axes_sums_equal_numpy(shape, dtype):
    x = np.random.default_rng(0).uniform(-3, 3, shape).astype(dtype)
    for count in range(1, len(shape) + 1):
        axes = tuple(range(len(shape) - count, len(shape)))
        got = last_axes_sums(x, count)
        assert got.shape == x.sum(axis=axes, keepdims=True).shape
        np.testing.assert_allclose(got, x.sum(axis=axes, keepdims=True), rtol=2e-3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("shape", SHAPES)
def test_leading_axes_sums_equal_numpy(shape, dtype):
    x = np.random.default_rng(1).uniform(-3, 3, shape).astype(dtype)
    for count in range(len(shape) + 1):
        expected = x.sum(axis=tuple(range(count)))
        got = leading_axes_sums(x, count)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_views_and_empty_arrays_take_numpys_sum():
    x = np.arange(24.0).reshape(4, 6)
    np.testing.assert_array_equal(last_axes_sums(x[:, ::2]), x[:, ::2].sum(-1, keepdims=True))
    np.testing.assert_array_equal(leading_axes_sums(x.T, 1), x.T.sum(axis=0))
    empty = np.zeros((0, 3))
    assert leading_axes_sums(empty, 1).tolist() == [0.0, 0.0, 0.0]
    assert last_axes_sums(empty).shape == (0, 1)


def test_float64_sums_are_exact_enough_for_gradient_checks():
    x = np.random.default_rng(2).standard_normal((50, 10_000))
    np.testing.assert_allclose(last_axes_sums(x)[:, 0], x.sum(axis=1), rtol=0, atol=1e-11)


def test_the_ones_vector_is_shared_and_read_only():
    a = ones(5, np.float32)
    assert a.tolist() == [1.0] * 5 and not a.flags.writeable
    assert ones(3000, np.float32).size == 3000 and ones(4, np.float32).base is not None


def test_sums_do_not_change_with_the_number_of_blas_threads():
    """OpenBLAS splits a big matrix-vector product over its threads, which changes the last bit
    of some rows (700 x 10,000 on two threads did); chainrule's sums stay on one."""
    from threadpoolctl import threadpool_limits

    x = np.random.default_rng(3).standard_normal((700, 3000)).astype(np.float32)
    results = []
    for threads in (1, 2):
        with threadpool_limits(threads, user_api="blas"):
            results.append((last_axes_sums(x), leading_axes_sums(x, 1)))
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)
