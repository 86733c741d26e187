"""The everyday tensor functions and methods in one program, as a user writes them: reductions
with dim/keepdim and the (values, indices) tuples of max/min/sort/topk, std/var with their default
correction, norms, cumulative sums, rounding, gather/chunk/split/narrow/unbind/flip, comparisons,
masked_fill, einsum/mm/bmm, nn.init and F.one_hot; gradients through a loss built from them.
Float64, values from NumPy.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

torch.set_default_dtype(torch.float64)
rng = np.random.default_rng(24)
x = torch.tensor(rng.normal(0, 1, (4, 5)), requires_grad=True)
w = torch.tensor(rng.normal(0, 1, (5, 3)), requires_grad=True)
labels = torch.tensor([0, 2, 1, 2])

# reductions and their (values, indices) results
values, indices = torch.max(x, dim=1)
smallest = x.min(0)
print("max along dim 1:", indices.tolist(), "min along dim 0:", smallest.indices.tolist())
print("argmax/argmin:", x.argmax().item(), torch.argmin(x, dim=1, keepdim=True).shape)
std, var = x.std(dim=0), torch.var(x, 1, keepdim=True)
biased = x.var(dim=1, unbiased=False)
print(f"norms: {x.norm():.6f} {torch.norm(x, p=1):.6f} {x.norm(dim=1).sum():.6f}")
print("prod/cumsum:", x.prod(dim=1).shape, x.cumsum(dim=1)[:, -1].sum().item())
print("all/any:", (x > -5).all().item(), torch.any(x > 2).item(), (x > 0).sum(dim=0).tolist())

# elementwise
rounded = [x.sign(), torch.floor(x), x.ceil(), torch.round(x, decimals=1), x.abs().sqrt()]
smooth = x.sin() + torch.cos(x) * 0.5 + x.tanh() + torch.log1p(x.abs()) + x.expm1().clamp(-1, 1)
clipped = torch.clamp(x, min=-0.5, max=0.5) + torch.where(x > 0, x, 0.1 * x)
biggest = torch.maximum(x, torch.zeros_like(x)) - torch.minimum(x, torch.zeros(1))

# picking and cutting
top = torch.topk(x, k=2, dim=1)
ordered, order = x.sort(dim=0, descending=True)
ranks = torch.argsort(x, dim=1)
picked = torch.gather(x, 1, labels.unsqueeze(1)).squeeze(1)
first, second = x.chunk(2, dim=0)
pieces = torch.split(x, [2, 3], dim=1)
middle = x.narrow(1, 1, 3)
rows = torch.unbind(x)
mirrored = x.flip(0)
hidden = x.masked_fill(x < -1, 0.0)
print("split sizes:", [tuple(p.shape) for p in pieces], "rows:", len(rows))

# comparisons
print(
    "comparisons:",
    torch.allclose(x, x + 1e-12),
    torch.isclose(x, mirrored).sum().item(),
    x.eq(mirrored).any().item(),
    torch.isfinite(x.log()).sum().item(),
    torch.isnan(x.log()).sum().item(),
    torch.isinf(torch.tensor([1.0, float("inf")])).tolist(),
)

# products
scores = torch.einsum("ij,jk->ik", x, w)
same = torch.mm(x, w)
batched = torch.bmm(x.unsqueeze(0).expand(2, 4, 5), w.unsqueeze(0).repeat(2, 1, 1))
print("einsum == mm:", torch.allclose(scores, same), "bmm:", tuple(batched.shape))
print("t/mT/view_as:", tuple(x.t().shape), tuple(batched.mT.shape), tuple(x.view_as(x.t()).shape))

# a loss from all of the above, and its gradients
target = F.one_hot(labels, num_classes=3).to(torch.float64)
loss = (
    F.mse_loss(torch.softmax(scores, dim=1), target)
    + values.sum() * 0.1
    + std.mean()
    + var.sum() * 0.01
    + top.values.sum() * 0.05
    + ordered[0].sum() * 0.02
    + picked.sum() * 0.3
    + (first * second).sum() * 0.01
    + middle.pow(2).mean()
    + smooth.mean()
    + clipped.sum() * 0.1
    + biggest.mean()
    + hidden.mean()
    + sum(r.sum() for r in rounded) * 0.0
    + batched.sum() * 0.001
)
loss.backward()
print(f"loss {loss.item():.10f}")
x_grad, w_grad = x.grad, w.grad

# nn.init without randomness, and numpy()
layer = nn.Linear(3, 3)
nn.init.eye_(layer.weight)
nn.init.constant_(layer.bias, 0.25)
conv = nn.Conv2d(2, 2, 3)
nn.init.dirac_(conv.weight)
nn.init.zeros_(conv.bias)
image = torch.tensor(rng.normal(0, 1, (1, 2, 5, 5)))
passed_through = conv(image)
as_numpy = x.detach().numpy()
print("numpy:", type(as_numpy).__name__, as_numpy.shape, ranks.dtype == torch.int64)
