"""The two PyTorch checks of Karpathy's micrograd (test/test_engine.py), as written there:
scalar expressions built with torch.Tensor([...]).double(), requires_grad set by assignment,
relu, powers, division, and the values and gradients read back with .data.item() / .grad.item().
"""

import torch


def test_sanity_check():
    x = torch.Tensor([-4.0]).double()
    x.requires_grad = True
    z = 2 * x + 2 + x
    q = z.relu() + z * x
    h = (z * z).relu()
    y = h + q + q * x
    y.backward()
    xpt, ypt = x, y
    return ypt.data.item(), xpt.grad.item()


def test_more_ops():
    a = torch.Tensor([-4.0]).double()
    b = torch.Tensor([2.0]).double()
    a.requires_grad = True
    b.requires_grad = True
    c = a + b
    d = a * b + b**3
    c = c + c + 1
    c = c + 1 + c + (-a)
    d = d + d * 2 + (b + a).relu()
    d = d + 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g = g + 10.0 / f
    g.backward()
    apt, bpt, gpt = a, b, g
    return gpt.data.item(), apt.grad.item(), bpt.grad.item()


y_value, x_grad = test_sanity_check()
g_value, a_grad, b_grad = test_more_ops()
print(f"sanity check: y = {y_value}, dy/dx = {x_grad}")
print(f"more ops: g = {g_value:.10f}, dg/da = {a_grad:.10f}, dg/db = {b_grad:.10f}")
assert abs(y_value - -20.0) < 1e-12 and abs(x_grad - 46.0) < 1e-12
