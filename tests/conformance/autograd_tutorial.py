"""PyTorch's "Automatic Differentiation with torch.autograd" tutorial: a one-layer network with
binary_cross_entropy_with_logits, requires_grad, grad_fn, backward, .grad, torch.no_grad and
detach, and the Jacobian-vector products with retain_graph and grad.zero_(). torch.randn is
replaced by NumPy values.
"""

import numpy as np
import torch

rng = np.random.default_rng(23)
x = torch.ones(5)  # input tensor
y = torch.zeros(3)  # expected output
w = torch.tensor(rng.standard_normal((5, 3)), dtype=torch.float32, requires_grad=True)
b = torch.tensor(rng.standard_normal(3), dtype=torch.float32, requires_grad=True)
z = torch.matmul(x, w) + b
loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y)

print(f"Gradient function for z = {z.grad_fn is not None}")
print(f"Gradient function for loss = {loss.grad_fn is not None}")

loss.backward()
print(w.grad)
print(b.grad)

z = torch.matmul(x, w) + b
print(z.requires_grad)

with torch.no_grad():
    z = torch.matmul(x, w) + b
print(z.requires_grad)

z = torch.matmul(x, w) + b
z_det = z.detach()
print(z_det.requires_grad)

inp = torch.eye(4, 5, requires_grad=True)
out = (inp + 1).pow(2).t()
out.backward(torch.ones_like(out), retain_graph=True)
print(f"First call\n{inp.grad}")
out.backward(torch.ones_like(out), retain_graph=True)
print(f"\nSecond call\n{inp.grad}")
inp.grad.zero_()
out.backward(torch.ones_like(out), retain_graph=True)
print(f"\nCall after zeroing gradients\n{inp.grad}")

# torch.autograd.grad: the gradient without touching .grad
a = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
(da,) = torch.autograd.grad((a**3).sum(), a)
print(da)
