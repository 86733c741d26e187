"""The pytorch/examples MNIST convolutional network (mnist/main.py), smaller and on random
16x16 images from NumPy: Conv2d, ReLU, max_pool2d, torch.flatten, log_softmax with nll_loss,
Adadelta with StepLR(gamma=0.7), the train/test functions with `.to(device)`. Dropout is left
out: its masks come from each library's own random stream.
"""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader, TensorDataset


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, 1)
        self.conv2 = nn.Conv2d(4, 8, 3, 1)
        self.fc1 = nn.Linear(288, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.fc2(x)
        output = F.log_softmax(x, dim=1)
        return output


losses = []


def train(model, device, train_loader, optimizer, epoch):
    model.train()
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if batch_idx % 2 == 0:
            print(
                "Train Epoch: {} [{}/{} ({:.0f}%)]\tLoss: {:.6f}".format(
                    epoch,
                    batch_idx * len(data),
                    len(train_loader.dataset),
                    100.0 * batch_idx / len(train_loader),
                    loss.item(),
                )
            )


def test(model, device, test_loader):
    model.eval()
    test_loss = 0
    correct = 0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction="sum").item()  # sum up batch loss
            pred = output.argmax(dim=1, keepdim=True)  # get the index of the max log-probability
            correct += pred.eq(target.view_as(pred)).sum().item()

    test_loss /= len(test_loader.dataset)

    print(
        "\nTest set: Average loss: {:.4f}, Accuracy: {}/{} ({:.0f}%)\n".format(
            test_loss, correct, len(test_loader.dataset), 100.0 * correct / len(test_loader.dataset)
        )
    )
    return correct


torch.manual_seed(1)
use_cuda = torch.cuda.is_available()
device = torch.device("cuda" if use_cuda else "cpu")

rng = np.random.default_rng(13)
labels = rng.integers(0, 10, 160)
images = rng.normal(0.0, 0.5, (160, 1, 16, 16)).astype(np.float32)
images[np.arange(160), 0, labels, labels] += 3.0  # the class is a bright pixel on the diagonal
dataset1 = TensorDataset(torch.from_numpy(images[:128]), torch.from_numpy(labels[:128]))
dataset2 = TensorDataset(torch.from_numpy(images[128:]), torch.from_numpy(labels[128:]))
train_loader = DataLoader(dataset1, batch_size=32)
test_loader = DataLoader(dataset2, batch_size=100)

model = Net().to(device)
with torch.no_grad():
    for param in model.parameters():
        bound = 1 / np.sqrt(np.prod(param.shape[1:])) if param.dim() > 1 else 0.1
        param.copy_(torch.from_numpy(rng.uniform(-bound, bound, tuple(param.shape))))
optimizer = optim.Adadelta(model.parameters(), lr=1.0)

scheduler = StepLR(optimizer, step_size=1, gamma=0.7)
for epoch in range(1, 4):
    train(model, device, train_loader, optimizer, epoch)
    correct = test(model, device, test_loader)
    scheduler.step()
