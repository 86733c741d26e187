"""A Dataset subclass with __len__/__getitem__ returning (features, label) pairs of tensors, a
Sampler subclass that shuffles with NumPy, a collate_fn, drop_last, random_split with a fixed
split by generator-free index lists (Subset), and a training loop with Adamax and ExponentialLR.
"""

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler, Subset


class PointsDataset(Dataset):
    def __init__(self, n, seed):
        rng = np.random.default_rng(seed)
        self.points = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
        self.labels = (self.points[:, 0] ** 2 + self.points[:, 1] ** 2 < 0.5).astype(np.int64)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, idx):
        return torch.from_numpy(self.points[idx]), torch.tensor(self.labels[idx])


class NumpyShuffle(Sampler):
    """Shuffles with NumPy's generator, so that every framework visits the same order."""

    def __init__(self, data_source, seed):
        self.data_source = data_source
        self.rng = np.random.default_rng(seed)

    def __iter__(self):
        return iter(self.rng.permutation(len(self.data_source)).tolist())

    def __len__(self):
        return len(self.data_source)


def collate(batch):
    features = torch.stack([f for f, _ in batch])
    labels = torch.stack([label for _, label in batch])
    return features, labels


dataset = PointsDataset(300, seed=19)
train_set, valid_set = Subset(dataset, range(0, 240)), Subset(dataset, range(240, 300))
train_loader = DataLoader(
    train_set, batch_size=32, sampler=NumpyShuffle(train_set, 0), collate_fn=collate, drop_last=True
)
valid_loader = DataLoader(valid_set, batch_size=64)
print(f"{len(train_set)} training points in {len(train_loader)} batches")

model = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.1), nn.Linear(16, 2))
rng = np.random.default_rng(20)
with torch.no_grad():
    for p in model.parameters():
        p.copy_(torch.from_numpy(rng.normal(0, 0.5, tuple(p.shape))))
optimizer = torch.optim.Adamax(model.parameters(), lr=0.02)
scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.9)
loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
losses = []
for epoch in range(6):
    model.train()
    for features, labels in train_loader:
        optimizer.zero_grad()
        loss = loss_fn(model(features), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    scheduler.step()
    model.eval()
    correct = 0
    with torch.no_grad():
        for features, labels in valid_loader:
            correct += (model(features).argmax(dim=1) == labels).sum().item()
    print(
        f"epoch {epoch}: lr {scheduler.get_last_lr()[0]:.5f}, valid accuracy {correct / len(valid_set):.3f}"
    )
