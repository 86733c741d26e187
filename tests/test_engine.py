"""The engine: tensor creation, backward, accumulation, graph freeing, no_grad, tracer, errors."""

import threading
import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule.autograd import trace_backward
from chainrule.function import Function

# -- creation and attributes ---------------------------------------------------------------------


def test_dtypes_follow_the_rules():
    assert cr.tensor([1.0, 2.0]).dtype == np.float32
    assert cr.tensor(np.zeros(3)).dtype == np.float64
    assert cr.tensor(np.zeros(3, dtype=np.float32)).dtype == np.float32
    assert cr.tensor([1, 2]).dtype == np.int64
    assert cr.tensor([1, 2], dtype="float64").dtype == np.float64
    assert cr.tensor([1.0], dtype=cr.float64).dtype == np.float64
    assert cr.zeros(2, 3).dtype == np.float32 and cr.zeros(2, 3).shape == (2, 3)
    assert cr.ones((2, 3), dtype="float64").dtype == np.float64
    assert cr.full((2,), 7.0).numpy().tolist() == [7.0, 7.0]
    assert cr.arange(5).dtype == np.int64 and cr.arange(0.0, 1.0, 0.5).dtype == np.float32
    t = cr.randn(4, 5)
    assert cr.zeros_like(t).shape == (4, 5) and cr.ones_like(t).numpy().sum() == 20
    assert cr.full_like(t, 2.0).numpy().mean() == 2.0
    assert cr.rand_like(t).numpy().min() >= 0 and cr.randn_like(t).dtype == np.float32


def test_tensor_copies_its_input():
    source = np.ones(3)
    t = cr.tensor(source)
    source[0] = 5
    assert t.numpy()[0] == 1


def test_python_and_numpy_scalars_never_upcast_float32():
    x = cr.ones(3, requires_grad=True)
    for y in (x * 2.5, 2.5 * x, np.float64(2.5) * x, x / np.float64(3), x ** cr.arange(3)):
        assert y.dtype == np.float32
    assert (
        x + np.ones(3)
    ).dtype == np.float64  # a float64 array is a float64 tensor, as in PyTorch


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(RuntimeError, match="floating-point"):
        cr.tensor([1, 2, 3], requires_grad=True)
    with pytest.raises(RuntimeError, match="floating-point"):
        cr.arange(3).requires_grad_()
    assert not (cr.arange(3) + cr.ones(3, requires_grad=True)).dtype == np.int64


def test_manual_seed_makes_random_tensors_reproducible():
    cr.manual_seed(3)
    a = cr.randn(5).numpy().copy()
    cr.manual_seed(3)
    assert np.array_equal(a, cr.randn(5).numpy())
    with pytest.raises(TypeError):
        cr.manual_seed(1.5)


def test_a_thread_can_draw_from_its_own_stream():
    """use_rng: each thread's draws come from its generator alone, however the threads
    interleave, and the global stream is left as it was (the playground's sessions)."""
    from chainrule.backend import new_rng, use_rng

    cr.manual_seed(5)
    expected_global = np.random.default_rng(5).random(3)
    drawn, start = {}, threading.Barrier(2)

    def draw(seed):
        with use_rng(new_rng(seed)):
            start.wait()
            drawn[seed] = [cr.nn.functional.dropout(cr.ones(50), 0.5).numpy() for _ in range(20)]

    threads = [threading.Thread(target=draw, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for seed in (1, 2):
        with use_rng(new_rng(seed)):
            alone = [cr.nn.functional.dropout(cr.ones(50), 0.5).numpy() for _ in range(20)]
        assert all(np.array_equal(a, b) for a, b in zip(drawn[seed], alone))
    assert np.array_equal(cr.backend.rng().random(3), expected_global)


def test_attributes_and_protocols():
    t = cr.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    assert t.shape == (2, 2) and t.ndim == 2 and t.numel() == 4 and len(t) == 2
    assert t.size() == (2, 2) and t.size(1) == 2 and t.size(-1) == 2 and t.dim() == 2
    assert t.grad is None and t.requires_grad and t.is_leaf
    assert np.asarray(t) is t.detach().numpy() and t.data.numpy() is t.detach().numpy()
    with pytest.raises(RuntimeError, match=r"detach\(\)\.numpy\(\)"):
        t.numpy()  # as PyTorch: a tensor that requires grad must be detached first
    assert t.sum().item() == 10.0
    with pytest.raises(ValueError, match="one element"):
        t.item()
    d = t.detach()
    assert not d.requires_grad and d.numpy() is t.data.numpy()
    t.data = np.zeros((2, 2), dtype=np.float32)
    assert t.sum().item() == 0.0
    assert "requires_grad=True" in repr(t)
    assert "grad_fn=<MulBackward>" in repr(t * 2)
    assert "float64" in repr(cr.tensor(np.ones(2)))


def test_axis_and_dim_spellings_agree():
    x = cr.randn(3, 4)
    a = x.sum(axis=1, keepdims=True)
    b = x.sum(dim=1, keepdim=True)
    assert a.shape == b.shape == (3, 1) and np.allclose(a.numpy(), b.numpy())
    assert cr.softmax(x, dim=0).shape == cr.softmax(x, axis=0).shape
    with pytest.raises(TypeError, match="either axis"):
        x.sum(axis=0, dim=0)


def test_transpose_swaps_two_axes_like_pytorch_and_permutes_like_numpy():
    x = cr.randn(2, 3, 4)
    assert x.transpose(0, 2).shape == (4, 3, 2)
    assert x.transpose((2, 0, 1)).shape == (4, 2, 3)
    assert x.transpose().shape == (4, 3, 2) and x.T.shape == (4, 3, 2)


# -- backward ------------------------------------------------------------------------------------


def test_broadcast_gradients_are_summed_back_to_input_shapes():
    a = cr.randn(3, 1, requires_grad=True)
    b = cr.randn(4, requires_grad=True)
    (a * b).sum().backward()
    assert a.grad.shape == (3, 1) and b.grad.shape == (4,)
    np.testing.assert_allclose(a.grad[:, 0], np.full(3, b.detach().numpy().sum()), rtol=1e-6)
    np.testing.assert_allclose(b.grad, np.full(4, a.detach().numpy().sum()), rtol=1e-6)


def test_gradients_accumulate_across_backward_calls():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    (w * 3).sum().backward()
    (w * 3).sum().backward()
    np.testing.assert_array_equal(w.grad, [6.0, 6.0])
    w.grad = None
    assert w.grad is None


def test_a_tensor_used_twice_gets_both_contributions():
    x = cr.tensor(3.0, requires_grad=True)
    y = x * x + x  # dy/dx = 2x + 1 = 7
    y.backward()
    assert x.grad == pytest.approx(7.0)


def test_leaf_gradients_never_share_memory():
    a = cr.randn(3, requires_grad=True)
    b = cr.randn(3, requires_grad=True)
    (a + b).sum().backward()
    a.grad *= 10
    np.testing.assert_array_equal(b.grad, np.ones(3))


def test_graph_is_freed_after_backward():
    x = cr.randn(3, requires_grad=True)
    y = (x.exp() * 2).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = cr.randn(3, requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad, 4 * x.detach().numpy(), rtol=1e-6)


def test_backward_on_non_scalar_needs_grad():
    x = cr.randn(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="non-scalar.*gradient="):
        (x * 2).backward()
    (x * 2).backward(grad=np.ones(3))
    np.testing.assert_array_equal(x.grad, np.full(3, 2.0))
    with pytest.raises(ValueError, match="shape"):
        (x * 2).backward(grad=np.ones(4))


def test_backward_without_requires_grad_says_what_to_do():
    with pytest.raises(RuntimeError, match="requires_grad=True"):
        (cr.randn(3) * 2).sum().backward()


def test_deep_chain_of_100k_ops_backpropagates_without_recursion():
    x = cr.tensor(1.0, requires_grad=True, dtype="float64")
    y = x
    for _ in range(100_000):
        y = y * 1.0 + 1e-6
    y.backward()
    assert x.grad == 1.0
    assert y.item() == pytest.approx(1.1)
    unused = x
    for _ in range(100_000):
        unused = unused + 1.0
    del unused  # dropping a deep graph must not overflow the C stack either


def test_no_grad_records_no_graph_as_context_and_decorator():
    x = cr.randn(3, requires_grad=True)
    with cr.no_grad():
        y = x * 2
        with cr.enable_grad():
            z = x * 2
    assert not y.requires_grad and y._ctx is None
    assert z.requires_grad
    assert cr.is_grad_enabled()

    @cr.no_grad()
    def predict(t):
        return t.exp()

    assert not predict(x).requires_grad and cr.is_grad_enabled()


def test_setitem_refuses_to_corrupt_a_gradient():
    x = cr.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="no_grad"):
        x[0] = 1.0
    with cr.no_grad():
        x[0] = 1.0
    assert x.detach().numpy()[0] == 1.0


def test_tracer_sees_every_node_with_upstream_and_input_gradients():
    w = cr.tensor([0.5, -1.0], requires_grad=True)
    x = cr.tensor([2.0, 3.0])
    events = []
    with trace_backward(events.append):
        loss = ((w * x).sum() - 1.0) ** 2
        loss.backward()
    assert [type(e.op).__name__ for e in events] == ["Pow", "Sub", "Sum", "Mul"]
    mul = events[-1]
    np.testing.assert_allclose(mul.input_grads[0], w.grad)
    assert mul.input_grads[1] is None  # x does not require grad
    # the chain rule: d loss / d w = 2 (w.x - 1) x
    np.testing.assert_allclose(
        w.grad,
        2 * ((w.detach().numpy() * x.detach().numpy()).sum() - 1) * x.detach().numpy(),
        rtol=1e-6,
    )


def test_extreme_inputs_are_stable():
    x = cr.tensor([-1000.0, -20.0, 0.0, 20.0, 1000.0], requires_grad=True, dtype="float64")
    fns = [cr.sigmoid, cr.tanh, cr.softplus, cr.gelu, cr.softmax, cr.log_softmax, cr.logsumexp]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            for fn in fns:
                x.grad = None
                y = fn(x)
                y.sum().backward()
                assert np.all(np.isfinite(y.detach().numpy())), fn.__name__
                assert np.all(np.isfinite(x.grad)), fn.__name__
    np.testing.assert_allclose(cr.log_softmax(x).detach().numpy()[-1], 0.0, atol=1e-12)
    assert cr.logsumexp(x).item() == pytest.approx(1000.0)


# -- gradcheck as a tool -------------------------------------------------------------------------


class WrongSquare(Function):
    """z = a^2 with a deliberately wrong derivative (a instead of 2a)."""

    def forward(self, a):
        self.save(a)
        return a * a

    def backward(self, grad):
        (a,) = self.saved
        return grad * a


def test_gradcheck_catches_a_wrong_derivative_and_reports_where():
    x = cr.randn(2, 3, requires_grad=True)
    with pytest.raises(cr.GradcheckError, match="FAILED") as info:
        cr.gradcheck(WrongSquare.apply, x)
    assert "input 0" in str(info.value) and "(2, 3)" in str(info.value)
    report = cr.gradcheck(WrongSquare.apply, x, raise_exception=False)
    assert not report.passed and report.rows[0].max_abs_error > 0.1


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gradcheck_nudges_inputs_laid_out_in_any_order(dtype):
    """A transposed (channels-last) input: the finite differences must see every nudge."""
    values = np.ascontiguousarray(np.random.default_rng(0).standard_normal((2, 3, 4)).T).T
    x = cr.tensor(values.astype(dtype), requires_grad=True)
    assert not x.detach().numpy().flags.c_contiguous
    assert cr.gradcheck(lambda t: (t * t).sum(), x)
    with pytest.raises(cr.GradcheckError, match="FAILED"):
        cr.gradcheck(WrongSquare.apply, x)


def test_gradcheck_upcasts_and_leaves_the_inputs_alone():
    x = cr.randn(4, requires_grad=True)
    before = x.detach().numpy().copy()
    report = cr.gradcheck(lambda t: (t.tanh() * 3).sum(), x)
    assert report and np.array_equal(x.detach().numpy(), before) and x.grad is None
    assert "passed" in str(report)
    with pytest.raises(ValueError, match="requires grad"):
        cr.gradcheck(lambda t: t.sum(), cr.randn(3))


def test_user_defined_function_plugs_into_the_engine():
    class Cube(Function):
        """z = a^3.   dz/da = 3 a^2."""

        def forward(self, a):
            self.save(a)
            return a**3

        def backward(self, grad):
            (a,) = self.saved
            return grad * 3 * a * a

    assert cr.gradcheck(lambda t: Cube.apply(t).sum(), cr.randn(5, requires_grad=True))


def test_shape_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"Add of inputs with shapes \(3,\), \(4,\)"):
        cr.randn(3) + cr.randn(4)
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        cr.matmul(cr.randn(2, 3), cr.randn(4, 5))
    with pytest.raises(ValueError, match="reshape"):
        cr.randn(2, 3).reshape(4, 2)
    assert cr.squeeze(cr.randn(2, 3), 0).shape == (2, 3)  # as PyTorch: a longer axis is kept
    with pytest.raises(ValueError, match="cat"):
        cr.concatenate([cr.randn(2, 3), cr.randn(2, 4)], axis=0)


def test_grad_mode_is_per_thread():
    """Two threads interleave their no_grad blocks (forced by barriers): with one process-wide
    flag, thread A's exit would restore B's 'off' and leave gradients off for everyone."""
    entered, a_left = threading.Barrier(2), threading.Event()
    seen = {}

    def thread_a():
        with cr.no_grad():
            entered.wait()  # B is inside its own no_grad now
        a_left.set()
        seen["a_after"] = cr.is_grad_enabled()

    def thread_b():
        entered_b = cr.no_grad()
        entered_b.__enter__()
        seen["b_inside"] = cr.is_grad_enabled()
        entered.wait()
        a_left.wait(5)
        entered_b.__exit__(None, None, None)
        seen["b_after"] = cr.is_grad_enabled()

    with cr.no_grad():  # the main thread's mode is its own too: new threads start enabled
        threads = [threading.Thread(target=f) for f in (thread_a, thread_b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert not cr.is_grad_enabled()
    assert cr.is_grad_enabled()
    assert seen == {"b_inside": False, "a_after": True, "b_after": True}


def test_no_grad_decorator_is_safe_in_two_threads_at_once():
    inside = threading.Barrier(2)

    @cr.no_grad()
    def measure():
        inside.wait(5)  # both threads are inside the same decorated function
        return cr.is_grad_enabled()

    results = []
    threads = [threading.Thread(target=lambda: results.append(measure())) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    x = cr.ones(2, requires_grad=True)
    (x * 2).sum().backward()  # gradients are still on in this thread
    assert results == [False, False] and x.grad.tolist() == [2.0, 2.0]


def test_tracer_is_per_thread():
    events = []
    x = cr.ones(3, requires_grad=True)
    with trace_backward(events.append):
        worker = threading.Thread(target=lambda: (x * 3).sum().backward())
        worker.start()
        worker.join(10)
    assert events == []  # the other thread's backward is not traced by this thread's tracer
