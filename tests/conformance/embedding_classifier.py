"""A bag-of-embeddings text classifier (no RNN): nn.Embedding with padding_idx, mean pooling over
the tokens, a Linear head, CrossEntropyLoss, Adam, accuracy from argmax, evaluation under
torch.no_grad(). Token ids, labels and initial weights come from NumPy.
"""

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
rng = np.random.default_rng(14)

VOCAB, EMBED, CLASSES, LENGTH = 50, 8, 3, 12
labels = rng.integers(0, CLASSES, 96)
tokens = rng.integers(1, VOCAB, (96, LENGTH))
tokens[:, :4] = labels[:, None] * 10 + rng.integers(1, 4, (96, 4))  # class-revealing words
tokens[rng.random((96, LENGTH)) < 0.2] = 0  # padding
dataset = TensorDataset(torch.from_numpy(tokens), torch.from_numpy(labels))
train_set, valid_set = dataset[:64], dataset[64:]
loader = DataLoader(TensorDataset(*train_set), batch_size=16, shuffle=False)


class BagOfEmbeddings(nn.Module):
    def __init__(self, vocab_size, embed_dim, num_class):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.fc = nn.Linear(embed_dim, num_class)

    def forward(self, text):
        embedded = self.embedding(text)  # (batch, length, embed_dim)
        return self.fc(embedded.mean(dim=1))


model = BagOfEmbeddings(VOCAB, EMBED, CLASSES)
with torch.no_grad():
    model.embedding.weight.copy_(torch.from_numpy(rng.normal(0, 1, (VOCAB, EMBED))))
    model.embedding.weight[0].fill_(0)
    model.fc.weight.copy_(torch.from_numpy(rng.uniform(-0.3, 0.3, (CLASSES, EMBED))))
    model.fc.bias.zero_()

criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=0.05, betas=(0.9, 0.99), weight_decay=1e-4)
losses = []

for epoch in range(8):
    model.train()
    total_acc, total_count = 0, 0
    for text, label in loader:
        optimizer.zero_grad()
        predicted_label = model(text)
        loss = criterion(predicted_label, label)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        total_acc += (predicted_label.argmax(1) == label).sum().item()
        total_count += label.size(0)
    model.eval()
    with torch.no_grad():
        text, label = valid_set
        logits = model(text)
        valid_loss = criterion(logits, label).item()
        valid_acc = (logits.argmax(dim=1) == label).float().mean().item()
    print(
        f"| epoch {epoch:3d} | train accuracy {total_acc / total_count:8.3f} "
        f"| valid loss {valid_loss:8.4f} | valid accuracy {valid_acc:8.3f}"
    )

probabilities = torch.softmax(logits, dim=-1)
top_probability, top_class = probabilities.max(dim=1)
