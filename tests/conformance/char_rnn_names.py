"""A character-level name generator, as in Karpathy's makemore and PyTorch's char-RNN tutorials:
names of unequal lengths padded with pad_sequence and packed with pack_padded_sequence
(enforce_sorted=False), an Embedding, a two-layer batch-first GRU and a Linear head trained with
Adam on the packed steps (cross-entropy on PackedSequence.data), pad_packed_sequence back, then
names generated greedily one character at a time from the carried hidden state, and a GRUCell
holding the first layer's weights stepped by hand. Float64; initial weights from NumPy.
"""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence

torch.set_default_dtype(torch.float64)
rng = np.random.default_rng(21)

words = (
    "emma olivia ava isabella sophia mia amelia harper evelyn abigail emily ella liam noah "
    "oliver elijah james william benjamin lucas henry theodore jack levi alexander mason ethan "
    "daniel jacob logan"
).split()
chars = sorted(set("".join(words)))
stoi = {s: i + 1 for i, s in enumerate(chars)}
stoi["."] = 0  # starts and ends every name
itos = {i: s for s, i in stoi.items()}
vocab_size = len(stoi)

inputs = [torch.tensor([0] + [stoi[c] for c in w]) for w in words]
targets = [torch.tensor([stoi[c] for c in w] + [0]) for w in words]
lengths = [len(w) + 1 for w in words]


class CharGRU(nn.Module):
    def __init__(self, vocab_size, embed_dim, hidden_size, num_layers):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.rnn = nn.GRU(embed_dim, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, x, lengths):
        embedded = self.embedding(x)
        packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
        output, hidden = self.rnn(packed)
        return self.head(output.data), output, hidden

    def step(self, x, hidden=None):
        output, hidden = self.rnn(self.embedding(x), hidden)
        return self.head(output[:, -1]), hidden


model = CharGRU(vocab_size, 8, 16, 2)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(rng.normal(0, 0.3, tuple(p.shape))))
optimizer = torch.optim.Adam(model.parameters(), lr=0.02)

order = rng.permutation(len(words))
losses = []
for epoch in range(12):
    epoch_loss = 0.0
    for start in range(0, len(words), 10):
        batch = order[start : start + 10]
        x = pad_sequence([inputs[i] for i in batch], batch_first=True)
        y = pad_sequence([targets[i] for i in batch], batch_first=True)
        batch_lengths = [lengths[i] for i in batch]
        packed_y = pack_padded_sequence(y, batch_lengths, batch_first=True, enforce_sorted=False)
        logits, output, hidden = model(x, batch_lengths)
        loss = F.cross_entropy(logits, packed_y.data)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        epoch_loss += loss.item()
        losses.append(loss.item())
    if epoch % 3 == 0:
        print(f"epoch {epoch}: loss {epoch_loss / 3:.6f}")

padded, out_lengths = pad_packed_sequence(output, batch_first=True)
print("padded output", tuple(padded.shape), "lengths", out_lengths.tolist())
print("final hidden", tuple(hidden.shape), f"{hidden.abs().mean().item():.8f}")

generated = []
with torch.no_grad():
    for first in "aejl":
        hidden = None
        x = torch.tensor([[0, stoi[first]]])
        name = first
        for _ in range(10):
            logits, hidden = model.step(x, hidden)
            index = logits.argmax(dim=-1).item()
            if index == 0:
                break
            name += itos[index]
            x = torch.tensor([[index]])
        generated.append(name)
print("generated:", " ".join(generated))

# one GRU step by hand with a GRUCell holding the first layer's weights
cell = nn.GRUCell(8, 16)
with torch.no_grad():
    cell.weight_ih.copy_(model.rnn.weight_ih_l0)
    cell.weight_hh.copy_(model.rnn.weight_hh_l0)
    cell.bias_ih.copy_(model.rnn.bias_ih_l0)
    cell.bias_hh.copy_(model.rnn.bias_hh_l0)
    h_cell = None
    for index in [0, stoi["e"], stoi["m"]]:
        h_cell = cell(model.embedding(torch.tensor([index])), h_cell)
    print(f"cell state after '.em': norm {h_cell.norm().item():.8f}")
