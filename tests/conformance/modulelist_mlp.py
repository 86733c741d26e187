"""A custom Module holding its layers in nn.ModuleList and its activations in nn.ModuleDict,
built from a list of sizes and looped over in forward; trained with SGD (momentum, Nesterov,
weight decay) and MultiStepLR, in float64. Parameter counting, named_parameters and
state_dict keys as every tutorial prints them.
"""

import numpy as np
import torch
from torch import nn

torch.set_default_dtype(torch.float64)


class MLP(nn.Module):
    def __init__(self, sizes, activation="tanh"):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.activations = nn.ModuleDict({"tanh": nn.Tanh(), "relu": nn.ReLU()})
        self.activation = activation

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = self.activations[self.activation](x)
        return x


rng = np.random.default_rng(15)
x = torch.from_numpy(rng.uniform(-1, 1, (64, 3)))
y = (x[:, :1] * x[:, 1:2] - x[:, 2:].sin()).detach()

model = MLP([3, 16, 16, 1])
for name, param in model.named_parameters():
    print(name, tuple(param.shape))
print("parameters:", sum(p.numel() for p in model.parameters() if p.requires_grad))
print(list(model.state_dict().keys()))

with torch.no_grad():
    for layer in model.layers:
        nn.init.zeros_(layer.bias)
        layer.weight.copy_(torch.from_numpy(rng.normal(0, 0.5, tuple(layer.weight.shape))))

optimizer = torch.optim.SGD(
    model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3
)
scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[30, 60], gamma=0.5)
loss_fn = nn.MSELoss()
losses = []
for step in range(90):
    prediction = model(x)
    loss = loss_fn(prediction, y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()
    losses.append(loss.item())
    if step % 30 == 0:
        print(f"step {step:2d}  loss {loss.item():.8f}  lr {scheduler.get_last_lr()[0]:.4f}")

model.activation = "relu"  # the other activation of the ModuleDict, same weights
with torch.no_grad():
    relu_loss = loss_fn(model(x), y).item()
print(f"with ReLU instead: {relu_loss:.6f}")
