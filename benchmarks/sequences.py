"""Sequence-model training speed and peak memory: chainrule vs PyTorch on the CPU (issue 21).

``python -m benchmarks.sequences [--quick]`` trains, for each case, a fresh process per framework
(the order interleaved, repeated) and prints samples/s and peak RSS side by side:

* a word-level language model as PyTorch's ``word_language_model`` example: embedding, 2-layer
  LSTM (hidden 200 and 650, embedding as wide), dropout 0.2, linear decoder, log-softmax + NLL,
  sequence 35, batch 20, 10,000 words (synthetic ids), SGD with ``clip_grad_norm_(0.25)``;
* the same with a GRU;
* Karpathy's "Let's build GPT" lecture model: token + position embedding, 4 blocks of LayerNorm,
  causal self-attention of 4 separate heads and an MLP 4x, d=128, context 64, batch 32,
  65 characters, dropout 0.2, AdamW.

Each model is written once against a module ``lib`` that is either ``torch`` or ``chainrule``,
as a program that only swaps its imports. A sample is one sequence of the batch.
``python -m benchmarks.sequences --framework chainrule --model lstm --hidden 200`` runs one
measurement alone and prints its JSON line.

No environment variables are set: each framework runs as a user's program would (chainrule
tells glibc to keep its heap itself, see ``backend.py``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import time

import numpy as np

from .common import in_subprocess, machine, peak_rss_mib, save_results, set_threads

BPTT, LM_BATCH, WORDS = 35, 20, 10_000
GPT = {"layers": 4, "heads": 4, "width": 128, "context": 64, "batch": 32, "vocab": 65}
CASES = [  # label, model, hidden size
    ("LSTM LM, 2 x 200, seq 35, batch 20", "lstm", 200),
    ("LSTM LM, 2 x 650, seq 35, batch 20", "lstm", 650),
    ("GRU LM, 2 x 200, seq 35, batch 20", "gru", 200),
    ("GRU LM, 2 x 650, seq 35, batch 20", "gru", 650),
    ("GPT 4 layers, 4 heads, d 128, ctx 64, batch 32", "gpt", 128),
]


def library(framework: str):
    """The module a program imports as ``torch``."""
    return importlib.import_module("torch" if framework == "pytorch" else "chainrule")


def language_model(lib, kind: str, size: int, layers: int = 2, dropout: float = 0.2):
    """PyTorch's word_language_model ``RNNModel`` (tied weights off)."""
    nn, F = lib.nn, lib.nn.functional

    class RNNModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.drop = nn.Dropout(dropout)
            self.encoder = nn.Embedding(WORDS, size)
            self.rnn = getattr(nn, kind.upper())(size, size, layers, dropout=dropout)
            self.decoder = nn.Linear(size, WORDS)

        def forward(self, input, hidden):
            emb = self.drop(self.encoder(input))
            output, hidden = self.rnn(emb, hidden)
            output = self.drop(output)
            decoded = self.decoder(output).view(-1, WORDS)
            return F.log_softmax(decoded, dim=1), hidden

    return RNNModel()


def lm_step(lib, kind: str, size: int):
    """One training step of the word_language_model example (``train()``'s loop body)."""
    model = language_model(lib, kind, size)
    criterion = lib.nn.NLLLoss()
    opt = lib.optim.SGD(model.parameters(), lr=20)
    tokens = np.random.default_rng(0).integers(0, WORDS, (8 * BPTT + 1, LM_BATCH))
    zeros = lib.zeros(2, LM_BATCH, size)
    state = {"hidden": (zeros, zeros) if kind == "lstm" else zeros}

    def detach(h):
        return tuple(detach(v) for v in h) if isinstance(h, tuple) else h.detach()

    def step(i):
        lo = (i % 8) * BPTT
        data = lib.from_numpy(tokens[lo : lo + BPTT])
        targets = lib.from_numpy(tokens[lo + 1 : lo + 1 + BPTT].reshape(-1))
        hidden = detach(state["hidden"])
        model.zero_grad()
        output, state["hidden"] = model(data, hidden)
        loss = criterion(output, targets)
        loss.backward()
        lib.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        opt.step()

    model.train()
    return step, LM_BATCH


def gpt_model(lib, dropout: float = 0.2):
    """The lecture's ``BigramLanguageModel`` (gpt.py) at the sizes of ``GPT``."""
    nn, F = lib.nn, lib.nn.functional
    n_embd, n_head, block = GPT["width"], GPT["heads"], GPT["context"]

    class Head(nn.Module):
        def __init__(self, head_size):
            super().__init__()
            self.key = nn.Linear(n_embd, head_size, bias=False)
            self.query = nn.Linear(n_embd, head_size, bias=False)
            self.value = nn.Linear(n_embd, head_size, bias=False)
            self.register_buffer("tril", lib.tril(lib.ones(block, block)))
            self.dropout = nn.Dropout(dropout)

        def forward(self, x):
            B, T, C = x.shape
            k, q = self.key(x), self.query(x)
            wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5
            wei = wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))
            wei = self.dropout(F.softmax(wei, dim=-1))
            return wei @ self.value(x)

    class MultiHeadAttention(nn.Module):
        def __init__(self, num_heads, head_size):
            super().__init__()
            self.heads = nn.ModuleList([Head(head_size) for _ in range(num_heads)])
            self.proj = nn.Linear(head_size * num_heads, n_embd)
            self.dropout = nn.Dropout(dropout)

        def forward(self, x):
            out = lib.cat([h(x) for h in self.heads], dim=-1)
            return self.dropout(self.proj(out))

    class FeedFoward(nn.Module):
        def __init__(self, n_embd):
            super().__init__()
            self.net = nn.Sequential(
                nn.Linear(n_embd, 4 * n_embd),
                nn.ReLU(),
                nn.Linear(4 * n_embd, n_embd),
                nn.Dropout(dropout),
            )

        def forward(self, x):
            return self.net(x)

    class Block(nn.Module):
        def __init__(self, n_embd, n_head):
            super().__init__()
            self.sa = MultiHeadAttention(n_head, n_embd // n_head)
            self.ffwd = FeedFoward(n_embd)
            self.ln1 = nn.LayerNorm(n_embd)
            self.ln2 = nn.LayerNorm(n_embd)

        def forward(self, x):
            x = x + self.sa(self.ln1(x))
            return x + self.ffwd(self.ln2(x))

    class GPTLanguageModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.token_embedding_table = nn.Embedding(GPT["vocab"], n_embd)
            self.position_embedding_table = nn.Embedding(block, n_embd)
            self.blocks = nn.Sequential(*[Block(n_embd, n_head) for _ in range(GPT["layers"])])
            self.ln_f = nn.LayerNorm(n_embd)
            self.lm_head = nn.Linear(n_embd, GPT["vocab"])

        def forward(self, idx, targets):
            B, T = idx.shape
            tok_emb = self.token_embedding_table(idx)
            pos_emb = self.position_embedding_table(lib.arange(T))
            x = self.ln_f(self.blocks(tok_emb + pos_emb))
            logits = self.lm_head(x)
            B, T, C = logits.shape
            return F.cross_entropy(logits.view(B * T, C), targets.view(B * T))

    return GPTLanguageModel()


def gpt_step(lib, kind: str = "gpt", size: int = 128):
    """One step of the lecture's training loop (random batches of a synthetic text)."""
    model = gpt_model(lib)
    opt = lib.optim.AdamW(model.parameters(), lr=3e-4)
    rng = np.random.default_rng(0)
    text = rng.integers(0, GPT["vocab"], 20_000)
    context, batch = GPT["context"], GPT["batch"]
    starts = rng.integers(0, len(text) - context - 1, (16, batch))
    rows = np.arange(context)

    def step(i):
        at = starts[i % len(starts), :, None] + rows
        loss = model(lib.from_numpy(text[at]), lib.from_numpy(text[at + 1]))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    model.train()
    return step, batch


def measure_one(framework: str, model: str, hidden: int, steps: int, threads: int) -> dict:
    """Samples/s and CPU milliseconds per step (all threads) of ``steps`` training steps after
    2 warm-up steps, and this process's peak RSS."""
    set_threads(threads, torch=framework == "pytorch")
    lib = library(framework)
    lib.manual_seed(0)
    step, batch = (gpt_step if model == "gpt" else lm_step)(lib, model, hidden)
    for i in range(2):
        step(i)
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(steps):
        step(i)
    rate = steps * batch / (time.perf_counter() - start)
    cpu_ms = (time.process_time() - cpu) / steps * 1e3
    return {"samples_per_s": rate, "cpu_ms_per_step": cpu_ms, "peak_rss_mib": peak_rss_mib()}


def steps_for(model: str, hidden: int, quick: bool) -> int:
    """Steps per measurement: a few seconds each (a fraction of that with ``quick``)."""
    steps = {("lstm", 200): 40, ("gru", 200): 40, ("gpt", 128): 20}.get((model, hidden), 10)
    return max(steps // 8, 3) if quick else steps


def run_cases(args) -> list[dict]:
    """Every case, one fresh process per framework and repeat, frameworks interleaved."""
    cases = CASES[::2] if args.quick else CASES  # quick: hidden 200 and the GPT
    samples = {(label, fw): [] for label, *_ in cases for fw in ("chainrule", "pytorch")}
    for _ in range(args.repeats):
        for label, model, hidden in cases:
            for fw in ("chainrule", "pytorch"):
                samples[label, fw].append(
                    in_subprocess(
                        "benchmarks.sequences",
                        *("--framework", fw, "--model", model, "--hidden", str(hidden)),
                        *("--steps", str(steps_for(model, hidden, args.quick))),
                        *("--threads", str(args.threads)),
                    )
                )
    rows = []
    for label, *_ in cases:
        row = {"case": label}
        for fw in ("chainrule", "pytorch"):
            runs = samples[label, fw]
            row[fw] = statistics.median(r["samples_per_s"] for r in runs)
            row[f"{fw}_cpu_ms_per_step"] = statistics.median(r["cpu_ms_per_step"] for r in runs)
            row[f"{fw}_peak_rss_mib"] = max(r["peak_rss_mib"] for r in runs)
        row["ratio_vs_pytorch"] = row["chainrule"] / row["pytorch"]
        row["work_ratio"] = row["pytorch_cpu_ms_per_step"] / row["chainrule_cpu_ms_per_step"]
        rows.append(row)
    return rows


def table(rows: list[dict], args, kernels: str) -> list[str]:
    lines = [
        f"sequence models, {args.threads} threads, median of {args.repeats} interleaved fresh "
        f"processes each{' (quick)' if args.quick else ''}",
        f"machine: {machine()}",
        f"kernels: {kernels}",
        "",
        f"| {'training, samples/s':<48} | {'chainrule':>9} | {'PyTorch':>9} | {'ratio':>6} | "
        f"{'CPU ms/step ours/PyTorch':>26} | {'peak MiB ours/PyTorch':>21} |",
        f"|{'-' * 50}|{'-' * 11}|{'-' * 11}|{'-' * 8}|{'-' * 28}|{'-' * 23}|",
    ]
    for row in rows:
        mem = f"{row['chainrule_peak_rss_mib']:.0f} / {row['pytorch_peak_rss_mib']:.0f}"
        work = (
            f"{row['chainrule_cpu_ms_per_step']:.0f} / {row['pytorch_cpu_ms_per_step']:.0f} "
            f"({row['work_ratio']:.2f}x)"
        )
        lines.append(
            f"| {row['case']:<48} | {row['chainrule']:>9,.1f} | {row['pytorch']:>9,.1f} | "
            f"{row['ratio_vs_pytorch']:>5.2f}x | {work:>26} | {mem:>21} |"
        )
    lines.append(
        "(ratios above 1: chainrule faster; CPU time per step counts the work of all threads, "
        "which moves less than wall time when other programs share the cores)"
    )
    return lines


def kernels() -> str:
    """The kernels each library runs, with both imported as the children import them."""
    import torch  # noqa: F401

    import chainrule  # noqa: F401

    from .environment import describe

    return describe()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sequences")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, help="default 3 (1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="hidden 200 and the GPT, few steps")
    parser.add_argument("--framework", choices=["chainrule", "pytorch"], help="one run alone")
    parser.add_argument("--model", choices=["lstm", "gru", "gpt"], default="lstm")
    parser.add_argument("--hidden", type=int, default=200)
    parser.add_argument("--steps", type=int)
    args = parser.parse_args()
    if args.framework:
        steps = args.steps or steps_for(args.model, args.hidden, quick=False)
        print(json.dumps(measure_one(args.framework, args.model, args.hidden, steps, args.threads)))
        return
    args.repeats = args.repeats or (1 if args.quick else 3)
    set_threads(args.threads)
    rows = run_cases(args)
    lines = table(rows, args, kernels())
    print("\n".join(lines))
    save_results("sequences" + ("-quick" if args.quick else ""), "\n".join(lines), rows)


if __name__ == "__main__":
    main()
