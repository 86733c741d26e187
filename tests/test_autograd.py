"""cr.autograd: custom Functions with PyTorch's contract, autograd.grad, grad modes, retain_grad."""

import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")


def make_clamp_function(lib):
    class MyReLU(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x, scale):
            ctx.save_for_backward(x)
            ctx.scale = scale
            return x.clamp(min=0) * scale

        @staticmethod
        def backward(ctx, grad_output):
            (x,) = ctx.saved_tensors
            grad = grad_output.clone()
            grad[x < 0] = 0
            return grad * ctx.scale, None

    return MyReLU


def test_a_custom_function_runs_on_the_engine_like_pytorch():
    values = np.array([[-1.0, 0.5, 2.0], [0.3, -0.2, 1.5]])
    grads = []
    for lib in (cr, torch):
        x = lib.tensor(values, requires_grad=True)
        y = make_clamp_function(lib).apply(x * 2, 3.0)
        assert y.requires_grad and not y.is_leaf
        (y * y).sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)


def test_a_custom_function_checks_what_backward_returns():
    class Wrong(cr.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * y

        @staticmethod
        def backward(ctx, grad):
            return grad  # one gradient for two inputs

    a, b = cr.ones(2, requires_grad=True), cr.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="returned 1 gradients.*took 2 arguments"):
        Wrong.apply(a, b).sum().backward()


def test_saved_tensors_changed_in_place_are_refused():
    class Square(cr.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return 2 * x * grad

    w = cr.ones(3, requires_grad=True)
    h = w * 1
    y = Square.apply(h)
    h.add_(1)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.sum().backward()


def test_setup_context_style_functions_work_too():
    class Cube(cr.autograd.Function):
        @staticmethod
        def forward(x):
            return x**3

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(inputs[0])

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return 3 * x**2 * grad

    x = cr.tensor([1.0, -2.0], requires_grad=True)
    Cube.apply(x).sum().backward()
    assert x.grad.tolist() == [3.0, 12.0]


def test_autograd_grad_leaves_dot_grad_alone_and_reaches_non_leaves():
    for lib in (cr, torch):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True, dtype=lib.float64)
        h = x * x
        y = (h * 3).sum()
        gx, gh = lib.autograd.grad(y, (x, h))
        assert x.grad is None
        np.testing.assert_allclose(gx.numpy(), [6.0, 12.0, 18.0])
        np.testing.assert_allclose(gh.numpy(), [3.0, 3.0, 3.0])
    unused = cr.ones(2, requires_grad=True)
    x = cr.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="not used"):
        cr.autograd.grad((x * 2).sum(), [x, unused])
    gx, gu = cr.autograd.grad((x * 2).sum(), [x, unused], allow_unused=True)
    assert gu is None and gx.tolist() == [2.0, 2.0]
    with pytest.raises(NotImplementedError, match="create_graph"):
        cr.autograd.grad((x * 2).sum(), x, create_graph=True)


def test_grad_modes_as_in_pytorch():
    w = cr.ones(2, requires_grad=True)

    @cr.no_grad()
    def with_parens():
        return w * 2

    @cr.no_grad
    def bare():
        return w * 2

    assert not with_parens().requires_grad and not bare().requires_grad
    with cr.no_grad():
        assert not (w * 2).requires_grad
        with cr.enable_grad():
            assert (w * 2).requires_grad
    with cr.set_grad_enabled(False):
        assert not (w * 2).requires_grad
    assert (w * 2).requires_grad
    cr.set_grad_enabled(False)  # called as a function: takes effect at once
    try:
        assert not cr.is_grad_enabled()
    finally:
        cr.set_grad_enabled(True)
    with cr.inference_mode():
        assert not (w * 2).requires_grad and cr.is_inference_mode_enabled()
    with cr.inference_mode(False):
        assert (w * 2).requires_grad


def test_retain_grad_keeps_a_non_leaf_gradient():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    h.retain_grad()
    (h * h).sum().backward()
    assert h.grad.tolist() == [6.0, 12.0] and x.grad.tolist() == [18.0, 36.0]


def test_backward_with_inputs_only_fills_those_leaves():
    a, b = cr.ones(2, requires_grad=True), cr.ones(2, requires_grad=True)
    (a * b * 2).sum().backward(inputs=[a])
    assert a.grad.tolist() == [2.0, 2.0] and b.grad is None
