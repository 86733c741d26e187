"""Gradient clipping in a training loop: torch.nn.utils.clip_grad_norm_ (returning the total
norm, printed as tutorials do) and clip_grad_value_, NAdam, a CosineAnnealingLR schedule, and
p.grad.norm() per parameter. Float32, data and weights from NumPy.
"""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

rng = np.random.default_rng(16)
inputs = torch.tensor(rng.normal(0, 1, (128, 10)), dtype=torch.float32)
targets = torch.tensor(rng.normal(0, 1, (128, 1)), dtype=torch.float32)

model = nn.Sequential(
    nn.Linear(10, 32), nn.GELU(), nn.Linear(32, 32), nn.Softplus(), nn.Linear(32, 1)
)
with torch.no_grad():
    for p in model.parameters():
        p.copy_(torch.tensor(rng.normal(0, 0.3, tuple(p.shape))))

optimizer = torch.optim.NAdam(model.parameters(), lr=0.01)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=40)
losses, norms = [], []
for step in range(40):
    optimizer.zero_grad()
    loss = F.mse_loss(model(inputs), targets)
    loss.backward()
    total_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.5)
    norms.append(total_norm.item())
    if step % 10 == 0:
        largest = max(p.grad.norm().item() for p in model.parameters())
        print(
            f"step {step}: loss {loss.item():.5f}, grad norm {total_norm:.4f}, largest {largest:.4f}"
        )
    optimizer.step()
    scheduler.step()
    losses.append(loss.item())

# clipping by value
optimizer.zero_grad()
F.mse_loss(model(inputs), targets).backward()
torch.nn.utils.clip_grad_value_(model.parameters(), clip_value=0.1)
clipped = [p.grad.clone() for p in model.parameters()]
print("largest clipped gradient:", max(g.abs().max().item() for g in clipped))
