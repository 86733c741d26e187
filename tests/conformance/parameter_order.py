"""The order in which a module lists its parameters, which a program sees whenever it pairs
parameters with values drawn in a loop (``for p in model.parameters(): p.copy_(next_values)``)
or reads an optimizer's param_groups: a module's own parameters first, then each child's, in
the order they were assigned (and state_dict() in the same order, with the buffers).
"""

import torch
from torch import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(5, 3)
        self.position = nn.Parameter(torch.zeros(3))
        self.linear = nn.Linear(3, 2)
        self.register_buffer("steps", torch.zeros(1))
        self.scale = nn.Parameter(torch.ones(2))

    def forward(self, idx):
        return self.linear(self.embedding(idx) + self.position) * self.scale


model = nn.Sequential(Block(), nn.ReLU(), nn.Linear(2, 1))
print([name for name, _ in model.named_parameters()])
print(list(model.state_dict().keys()))
print([name for name, _ in model.named_modules()])
print([type(child).__name__ for child in model[0].children()])
with torch.no_grad():
    for k, p in enumerate(model.parameters()):
        p.fill_(k / 10)
output = model(torch.tensor([[1, 2]]))
