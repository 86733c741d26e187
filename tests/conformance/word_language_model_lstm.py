"""A word-level LSTM language model in the style of PyTorch's examples/word_language_model: a
Dictionary and Corpus, batchify and get_batch with bptt, the RNNModel (Embedding, two-layer
LSTM with inter-layer dropout, Linear decoder with tied weights, log_softmax), init_hidden with
new_zeros, repackage_hidden (detach between batches), clip_grad_norm_, the hand-written SGD
update as published (p.data.add_(p.grad, alpha=-lr)), evaluation under no_grad with
perplexity, learning-rate annealing, greedy generation.
Dropout is 0 (random streams differ); float32; initial weights from NumPy. Ten epochs: the loss
has left the plateau and float32 runs still agree to about 3e-7 of the largest weight.
"""

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

rng = np.random.default_rng(22)
TEXT = (
    "the cat sat on the mat . the dog sat on the log . a cat saw a dog on the mat . "
    "the dog saw the cat . a dog sat on a log and the cat sat on a mat . "
) * 4


class Dictionary:
    def __init__(self):
        self.word2idx = {}
        self.idx2word = []

    def add_word(self, word):
        if word not in self.word2idx:
            self.idx2word.append(word)
            self.word2idx[word] = len(self.idx2word) - 1
        return self.word2idx[word]

    def __len__(self):
        return len(self.idx2word)


class Corpus:
    def __init__(self, text):
        self.dictionary = Dictionary()
        words = text.split() + ["<eos>"]
        ids = [self.dictionary.add_word(w) for w in words]
        split = int(len(ids) * 0.8)
        self.train = torch.tensor(ids[:split], dtype=torch.int64)
        self.valid = torch.tensor(ids[split:], dtype=torch.int64)


def batchify(data, bsz):
    nbatch = data.size(0) // bsz
    data = data.narrow(0, 0, nbatch * bsz)
    return data.view(bsz, -1).t().contiguous()


corpus = Corpus(TEXT)
batch_size, eval_batch_size, bptt = 4, 2, 6
train_data = batchify(corpus.train, batch_size)
val_data = batchify(corpus.valid, eval_batch_size)


def get_batch(source, i):
    seq_len = min(bptt, len(source) - 1 - i)
    data = source[i : i + seq_len]
    target = source[i + 1 : i + 1 + seq_len].view(-1)
    return data, target


class RNNModel(nn.Module):
    """Container module with an encoder, a recurrent module, and a decoder."""

    def __init__(self, rnn_type, ntoken, ninp, nhid, nlayers, dropout=0.5, tie_weights=False):
        super().__init__()
        self.ntoken = ntoken
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = getattr(nn, rnn_type)(ninp, nhid, nlayers, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        if tie_weights:
            self.decoder.weight = self.encoder.weight
        self.rnn_type, self.nhid, self.nlayers = rnn_type, nhid, nlayers

    def forward(self, input, hidden):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        output = self.drop(output)
        decoded = self.decoder(output)
        decoded = decoded.view(-1, self.ntoken)
        return F.log_softmax(decoded, dim=1), hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        if self.rnn_type == "LSTM":
            return (
                weight.new_zeros(self.nlayers, bsz, self.nhid),
                weight.new_zeros(self.nlayers, bsz, self.nhid),
            )
        return weight.new_zeros(self.nlayers, bsz, self.nhid)


def repackage_hidden(h):
    """Wraps hidden states in new Tensors, to detach them from their history."""
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)


ntokens = len(corpus.dictionary)
model = RNNModel("LSTM", ntokens, 12, 12, 2, dropout=0.0, tie_weights=True)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(rng.uniform(-0.3, 0.3, tuple(p.shape)).astype(np.float32)))
model.rnn.flatten_parameters()
criterion = nn.NLLLoss()
lr, clip = 5.0, 1.0


def train():
    model.train()
    total_loss = 0.0
    hidden = model.init_hidden(batch_size)
    for batch, i in enumerate(range(0, train_data.size(0) - 1, bptt)):
        data, targets = get_batch(train_data, i)
        model.zero_grad()
        hidden = repackage_hidden(hidden)
        output, hidden = model(data, hidden)
        loss = criterion(output, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)
        total_loss += loss.item()
    return total_loss / (batch + 1)


def evaluate(data_source):
    model.eval()
    total_loss = 0.0
    hidden = model.init_hidden(eval_batch_size)
    with torch.no_grad():
        for i in range(0, data_source.size(0) - 1, bptt):
            data, targets = get_batch(data_source, i)
            output, hidden = model(data, hidden)
            hidden = repackage_hidden(hidden)
            total_loss += len(data) * criterion(output, targets).item()
    return total_loss / (len(data_source) - 1)


best_val_loss = None
val_losses = []
for epoch in range(1, 11):
    train_loss = train()
    val_loss = evaluate(val_data)
    val_losses.append(val_loss)
    print(
        "| end of epoch {:3d} | lr {:02.2f} | train loss {:5.4f} | valid loss {:5.4f} | "
        "valid ppl {:8.4f}".format(epoch, lr, train_loss, val_loss, math.exp(val_loss))
    )
    if not best_val_loss or val_loss < best_val_loss:
        best_val_loss = val_loss
    else:
        lr /= 4.0

# generate, greedily, from the first word
words = [corpus.dictionary.idx2word[0]]
hidden = model.init_hidden(1)
input = torch.tensor([[0]], dtype=torch.long)
with torch.no_grad():
    for i in range(12):
        output, hidden = model(input, hidden)
        word_idx = output.squeeze().argmax().item()
        input.fill_(word_idx)
        words.append(corpus.dictionary.idx2word[word_idx])
print(" ".join(words))
