"""A single-head causal self-attention block, in the style of minGPT and the transformer
tutorials: einsum and bmm scores, masked_fill with a triu mask, softmax, a residual connection
and LayerNorm, trained with AdamW and a LinearLR warm-up, then topk over the next-token logits.
Float64; token ids and weights from NumPy.
"""

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
rng = np.random.default_rng(18)
VOCAB, T, C = 11, 6, 8


class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd, block_size):
        super().__init__()
        # no bias, as nanoGPT's bias=False (a key bias cannot change the softmax: its gradient
        # is 0, and Adam would turn the rounding noise of that 0 into steps)
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=False)
        self.c_proj = nn.Linear(n_embd, n_embd)
        mask = torch.triu(torch.ones(block_size, block_size), diagonal=1).bool()
        self.register_buffer("mask", mask)
        self.n_embd = n_embd

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        att = torch.einsum("btc,bsc->bts", q, k) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(self.mask[:T, :T], float("-inf"))
        att = F.softmax(att, dim=-1)
        y = torch.bmm(att, v)
        return self.c_proj(y)


class TinyTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok_emb = nn.Embedding(VOCAB, C)
        self.pos_emb = nn.Parameter(torch.zeros(1, T, C))
        self.attn = CausalSelfAttention(C, T)
        self.ln = nn.LayerNorm(C)
        self.head = nn.Linear(C, VOCAB, bias=False)

    def forward(self, idx):
        x = self.tok_emb(idx) + self.pos_emb[:, : idx.size(1), :]
        x = x + self.attn(self.ln(x))
        return self.head(x)


model = TinyTransformer()
with torch.no_grad():
    for name, p in model.state_dict().items():
        if name.endswith("mask"):
            continue
        if name.endswith("bias"):
            p.zero_()
        elif "ln" in name:
            p.fill_(1.0)
        else:
            p.copy_(torch.from_numpy(rng.normal(0, 0.2, tuple(p.shape))))

idx = torch.from_numpy(rng.integers(0, VOCAB, (4, T + 1)))
inputs, targets = idx[:, :-1], idx[:, 1:]
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-2, weight_decay=0.1)
scheduler = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.25, total_iters=10)
losses = []
for step in range(30):
    logits = model(inputs)
    loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    scheduler.step()
    losses.append(loss.item())
    if step % 10 == 0:
        print(f"step {step}: loss {loss.item():.6f}")

model.eval()
with torch.no_grad():
    logits = model(inputs)[:, -1, :]
    probs = F.softmax(logits, dim=-1)
    top_probs, top_tokens = torch.topk(probs, k=3, dim=-1)
    print("most likely next tokens:", top_tokens.tolist())
    values, order = torch.sort(probs[0], descending=True)
    print("first row sorted:", [round(v, 4) for v in values.tolist()])
