"""The ``chainrule`` command. For now: a tiny network learning XOR, printing its falling loss."""

from __future__ import annotations

import chainrule as cr


def xor_demo(steps: int = 2000, lr: float = 0.5) -> float:
    """Fit a 2-4-1 tanh/sigmoid network to XOR by plain gradient descent; returns the final loss."""
    cr.manual_seed(0)
    x = cr.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = cr.tensor([[0.0], [1.0], [1.0], [0.0]])
    w1, b1 = cr.randn(4, 2, requires_grad=True), cr.zeros(4, requires_grad=True)
    w2, b2 = cr.randn(1, 4, requires_grad=True), cr.zeros(1, requires_grad=True)
    for step in range(steps + 1):
        prediction = cr.linear(cr.linear(x, w1, b1).tanh(), w2, b2).sigmoid()
        loss = ((prediction - y) ** 2).mean()
        for p in (w1, b1, w2, b2):
            p.grad = None
        loss.backward()
        with cr.no_grad():
            for p in (w1, b1, w2, b2):
                p.data -= lr * p.grad
        if step % 250 == 0:
            print(f"step {step:5d}  loss {loss.item():.5f}")
    print("predictions:", prediction.data.ravel().round(3), "targets:", y.data.ravel())
    return loss.item()


def main(argv=None) -> int:
    xor_demo()
    return 0
