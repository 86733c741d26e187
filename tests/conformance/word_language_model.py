"""The Transformer of PyTorch's word_language_model example (examples/word_language_model:
data.py, model.py, main.py): a Dictionary and Corpus of words, batchify and get_batch over bptt
windows, TransformerModel subclassing nn.Transformer (its encoder, a PositionalEncoding buffer,
the decoder replaced by a Linear, the causal mask from torch.log(torch.tril(...))), NLLLoss,
clip_grad_norm_ and the hand-written SGD step, evaluation under torch.no_grad() with the
learning rate annealed. As published except that dropout is 0 (also inside nn.Transformer), the
weights come from NumPy and the corpus is a few lines; the SGD step is the published
p.data.add_(p.grad, alpha=-lr).
"""

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

rng = np.random.default_rng(7)
device = torch.device("cpu")

TRAIN = """the cat sat on the mat
the dog sat on the log
a cat saw a dog on the mat
the dog saw the cat
a dog sat on a log and a cat sat on a mat"""
VALID = """the cat saw a dog
a dog sat on the mat"""


class Dictionary(object):
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


class Corpus(object):
    def __init__(self):
        self.dictionary = Dictionary()
        self.train = self.tokenize(TRAIN)
        self.valid = self.tokenize(VALID)

    def tokenize(self, text):
        """Tokenizes a text."""
        for line in text.splitlines():
            for word in line.split() + ["<eos>"]:
                self.dictionary.add_word(word)
        idss = []
        for line in text.splitlines():
            words = line.split() + ["<eos>"]
            ids = []
            for word in words:
                ids.append(self.dictionary.word2idx[word])
            idss.append(torch.tensor(ids).type(torch.int64))
        ids = torch.cat(idss)
        return ids


class PositionalEncoding(nn.Module):
    r"""Inject some information about the relative or absolute position of the tokens in the
    sequence: sine and cosine functions of different frequencies."""

    def __init__(self, d_model, dropout=0.1, max_len=5000):
        super(PositionalEncoding, self).__init__()
        self.dropout = nn.Dropout(p=dropout)

        pe = torch.zeros(max_len, d_model)
        position = torch.arange(0, max_len, dtype=torch.float).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        pe = pe.unsqueeze(0).transpose(0, 1)
        self.register_buffer("pe", pe)

    def forward(self, x):
        x = x + self.pe[: x.size(0), :]
        return self.dropout(x)


class TransformerModel(nn.Transformer):
    """Container module with an encoder, a recurrent or transformer module, and a decoder."""

    def __init__(self, ntoken, ninp, nhead, nhid, nlayers, dropout=0.5):
        super(TransformerModel, self).__init__(
            d_model=ninp,
            nhead=nhead,
            dim_feedforward=nhid,
            num_encoder_layers=nlayers,
            dropout=dropout,
        )
        self.model_type = "Transformer"
        self.src_mask = None
        self.pos_encoder = PositionalEncoding(ninp, dropout)

        self.input_emb = nn.Embedding(ntoken, ninp)
        self.ninp = ninp
        self.decoder = nn.Linear(ninp, ntoken)

        self.init_weights()

    def _generate_square_subsequent_mask(self, sz):
        return torch.log(torch.tril(torch.ones(sz, sz)))

    def init_weights(self):
        initrange = 0.1
        with torch.no_grad():  # published: nn.init.uniform_ (PyTorch's stream)
            self.input_emb.weight.copy_(
                torch.from_numpy(rng.uniform(-initrange, initrange, self.input_emb.weight.shape))
            )
            nn.init.zeros_(self.decoder.bias)
            self.decoder.weight.copy_(
                torch.from_numpy(rng.uniform(-initrange, initrange, self.decoder.weight.shape))
            )
            for name, p in self.encoder.named_parameters():  # published: Xavier (PyTorch's stream)
                if "norm" not in name:
                    p.copy_(torch.from_numpy(rng.uniform(-0.3, 0.3, p.shape)))

    def forward(self, src, has_mask=True):
        if has_mask:
            device = src.device
            if self.src_mask is None or self.src_mask.size(0) != len(src):
                mask = self._generate_square_subsequent_mask(len(src)).to(device)
                self.src_mask = mask
        else:
            self.src_mask = None

        src = self.input_emb(src) * math.sqrt(self.ninp)
        src = self.pos_encoder(src)
        output = self.encoder(src, mask=self.src_mask)
        output = self.decoder(output)
        return F.log_softmax(output, dim=-1)


def batchify(data, bsz):
    # Work out how cleanly we can divide the dataset into bsz parts.
    nbatch = data.size(0) // bsz
    # Trim off any extra elements that wouldn't cleanly fit (remainders).
    data = data.narrow(0, 0, nbatch * bsz)
    # Evenly divide the data across the bsz batches.
    data = data.view(bsz, -1).t().contiguous()
    return data.to(device)


corpus = Corpus()
eval_batch_size = 2
train_data = batchify(corpus.train, 3)
val_data = batchify(corpus.valid, eval_batch_size)
bptt = 5
clip = 0.25
ntokens = len(corpus.dictionary)
model = TransformerModel(ntokens, 16, 2, 24, 2, dropout=0.0).to(device)
criterion = nn.NLLLoss()


def get_batch(source, i):
    seq_len = min(bptt, len(source) - 1 - i)
    data = source[i : i + seq_len]
    target = source[i + 1 : i + 1 + seq_len].view(-1)
    return data, target


def evaluate(data_source):
    # Turn on evaluation mode which disables dropout.
    model.eval()
    total_loss = 0.0
    with torch.no_grad():
        for i in range(0, data_source.size(0) - 1, bptt):
            data, targets = get_batch(data_source, i)
            output = model(data)
            output = output.view(-1, ntokens)
            total_loss += len(data) * criterion(output, targets).item()
    return total_loss / (len(data_source) - 1)


def train():
    # Turn on training mode which enables dropout.
    model.train()
    total_loss = 0.0
    for batch, i in enumerate(range(0, train_data.size(0) - 1, bptt)):
        data, targets = get_batch(train_data, i)
        # Starting each batch, we detach the hidden state from how it was previously produced.
        model.zero_grad()
        output = model(data)
        output = output.view(-1, ntokens)
        loss = criterion(output, targets)
        loss.backward()

        # `clip_grad_norm` helps prevent the exploding gradient problem in RNNs / LSTMs.
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)

        total_loss += loss.item()
    return total_loss / (batch + 1)


lr = 2.0
best_val_loss = None
val_losses = []
for epoch in range(1, 5):
    train_loss = train()
    val_loss = evaluate(val_data)
    val_losses.append(val_loss)
    print(
        f"| end of epoch {epoch:3d} | train loss {train_loss:5.3f} | valid loss {val_loss:5.3f} "
        f"| valid ppl {math.exp(val_loss):8.3f}"
    )
    if not best_val_loss or val_loss < best_val_loss:
        best_val_loss = val_loss
    else:
        # Anneal the learning rate if no improvement has been seen in the validation dataset.
        lr /= 4.0
