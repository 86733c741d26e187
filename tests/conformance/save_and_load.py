"""Saving and loading a model the way PyTorch's tutorials do ("Save and Load the Model"):
torch.save(model.state_dict(), path), a fresh model, model.load_state_dict(torch.load(path)),
then predictions in eval mode under torch.no_grad(), and a checkpoint dict with the optimizer;
then a whole model in one file (torch.save(model, "model.pt")) and state dicts through file
objects (an open file, io.BytesIO).
"""

import io

import numpy as np
import torch
from torch import nn

rng = np.random.default_rng(11)
inputs = torch.from_numpy(rng.standard_normal((32, 8)))
targets = torch.from_numpy(rng.standard_normal((32, 2)))


class Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(8, 16, bias=False)  # batch norm subtracts any bias again
        self.norm = nn.BatchNorm1d(16)
        self.out = nn.Linear(16, 2)

    def forward(self, x):
        return self.out(torch.tanh(self.norm(self.hidden(x))))


def initialise(model, seed):
    generator = np.random.default_rng(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.from_numpy(generator.normal(0.0, 0.3, tuple(param.shape))))


model = Regressor().double()
initialise(model, 0)
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
loss_fn = nn.MSELoss()
losses = []
for epoch in range(20):
    optimizer.zero_grad()
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())

torch.save(model.state_dict(), "model_weights.pth")

restored = Regressor().double()
initialise(restored, 1)  # different weights, overwritten by the load
restored.load_state_dict(torch.load("model_weights.pth", weights_only=True))
restored.eval()
model.eval()
with torch.no_grad():
    predictions = restored(inputs)
    same = torch.allclose(predictions, model(inputs))
print(f"restored model predicts the same: {same}")

# A checkpoint with the optimizer's state, to continue training later
torch.save(
    {"epoch": 20, "model_state_dict": model.state_dict(), "loss": losses[-1]},
    "checkpoint.pt",
)
checkpoint = torch.load("checkpoint.pt", weights_only=True)
resumed = Regressor().double()
resumed.load_state_dict(checkpoint["model_state_dict"])
epoch = checkpoint["epoch"]
last_loss = checkpoint["loss"]
resumed.train()
optimizer = torch.optim.SGD(resumed.parameters(), lr=0.05, momentum=0.9)
for step in range(10):
    optimizer.zero_grad()
    loss = loss_fn(resumed(inputs), targets)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
print(f"epoch {epoch}: loss {last_loss:.6f} -> {losses[-1]:.6f}")
running_mean = resumed.norm.running_mean

# The whole model, architecture and weights, in one file
classifier = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.Tanh(), nn.Linear(16, 2))
classifier = classifier.double()
initialise(classifier, 2)
classifier(inputs)  # running statistics away from their initial values
torch.save(classifier, "model.pt")
whole = torch.load("model.pt", weights_only=False)
whole.eval()
classifier.eval()
with torch.no_grad():
    print(f"whole model predicts the same: {torch.equal(whole(inputs), classifier(inputs))}")

# Through file objects: an open file, and memory (as when sending weights over a network)
with open("weights.pt", "wb") as f:
    torch.save(resumed.state_dict(), f)
from_file = Regressor().double()
with open("weights.pt", "rb") as f:
    from_file.load_state_dict(torch.load(f, weights_only=True))
buffer = io.BytesIO()
torch.save(whole, buffer)
buffer.seek(0)
from_memory = torch.load(buffer, weights_only=False)
print(f"from memory: {type(from_memory).__name__} of {len(from_memory)} layers")
