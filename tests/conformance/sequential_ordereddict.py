"""nn.Sequential built from an OrderedDict of named layers (so that they are reached as
model.hidden, and state_dict keys read "hidden.weight"), and a layer added afterwards with
add_module, which Sequential then runs last, as PyTorch's tutorials and model zoos do.
"""

from collections import OrderedDict

import torch
from torch import nn

model = nn.Sequential(
    OrderedDict(
        [
            ("hidden", nn.Linear(3, 4)),
            ("activation", nn.Tanh()),
            ("output", nn.Linear(4, 2)),
        ]
    )
)
model.add_module("probabilities", nn.Softmax(dim=1))
print(list(model.state_dict().keys()))
print([name for name, _ in model.named_children()], len(model))
with torch.no_grad():
    for k, p in enumerate(model.parameters()):
        p.copy_(torch.linspace(-1, 1, p.numel()).reshape(p.shape) * (k + 1) / 4)
    hidden_weight = model.hidden.weight.clone()
    outputs = model(torch.tensor([[0.5, -1.0, 2.0]]))
print(outputs)
