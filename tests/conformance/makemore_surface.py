"""makemore (karpathy/makemore), its MLP model and the code around it: the dataset's targets
masked with -1 and F.cross_entropy(..., ignore_index=-1), torch.roll to shift the context,
torch.LongTensor, autograd.Variable, nn.LeakyReLU(0.2, inplace=True) and nn.ReLU(True),
nn.DataParallel, SmoothL1Loss, the cudnn flags, and the "infinite" loader:
RandomSampler(replacement=True, num_samples=int(1e10)) imported from torch.utils.data.sampler.
The initial weights come from NumPy.
"""

import numpy as np
import torch
import torch.backends.cudnn as cudnn
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd import Variable
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.sampler import RandomSampler

cudnn.deterministic = True
cudnn.benchmark = False
device = "cuda" if torch.cuda.is_available() else "cpu"

words = ["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "harper"]
chars = sorted(set("".join(words)))
stoi = {ch: i + 1 for i, ch in enumerate(chars)}
vocab_size = len(chars) + 1
block_size = max(len(w) for w in words) + 1


def encode(word):
    """makemore's CharDataset.__getitem__: -1 masks the loss past the end of the word."""
    ix = torch.LongTensor([stoi[c] for c in word])
    x = torch.zeros(block_size, dtype=torch.long)
    y = torch.zeros(block_size, dtype=torch.long)
    x[1 : 1 + len(ix)] = ix
    y[: len(ix)] = ix
    y[len(ix) + 1 :] = -1
    return x, y


class MLP(nn.Module):
    def __init__(self, n_embd=8, n_embd2=16):
        super().__init__()
        self.wte = nn.Embedding(vocab_size + 1, n_embd)  # + 1: a special <BLANK> token
        self.mlp = nn.Sequential(
            nn.Linear(block_size * n_embd, n_embd2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(n_embd2, n_embd2),
            nn.ReLU(True),
            nn.Linear(n_embd2, vocab_size),
        )

    def forward(self, idx, targets=None):
        embs = []
        for _ in range(block_size):
            embs.append(self.wte(idx))
            idx = torch.roll(idx, 1, 1)
            idx[:, 0] = vocab_size
        logits = self.mlp(torch.cat(embs, -1))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(
                logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1
            )
        return logits, loss


pairs = [encode(w) for w in words]
X = Variable(torch.stack([x for x, _ in pairs]))
Y = Variable(torch.stack([y for _, y in pairs]))
print("on cuda:", X.is_cuda, "ignored targets:", int((Y == -1).sum()))

model = MLP()
rng = np.random.default_rng(7)
with torch.no_grad():
    for param in model.parameters():
        param.copy_(torch.from_numpy(rng.uniform(-0.3, 0.3, tuple(param.shape))))
model = nn.DataParallel(model).to(device)
print(sorted(model.state_dict())[:2])

optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
losses = []
for step in range(40):
    logits, loss = model(X, Y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
    if step % 10 == 0:
        print(f"step {step} loss {loss.item():.6f}")

probs = F.softmax(logits, dim=-1)
smooth = nn.SmoothL1Loss(beta=0.5)(probs, F.one_hot(Y.clamp(min=0), vocab_size).float())
print(f"smooth l1 {smooth.item():.6f}")

dataset = TensorDataset(X, Y)
sampler = RandomSampler(dataset, replacement=True, num_samples=int(1e10))
loader = DataLoader(dataset, batch_size=4, sampler=sampler)
xb, yb = next(iter(loader))  # drawn from another random stream than PyTorch's: shapes only
print("batches per 'epoch':", len(loader), "batch:", tuple(xb.shape), tuple(yb.shape))
del xb, yb
