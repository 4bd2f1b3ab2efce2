"""A character GPT's quality: validation bits per character on a corpus every machine has (the running Python's
standard-library sources, `Lib/*.py` sorted by name, the first 2 MB), for

- chainrule's GPT (the speed benchmark's net: 2 causal pre-norm blocks, D = 64, 4 heads, T = 64) after STEPS
  AdamW steps of 32 sequences;
- the same GPT in PyTorch, from the same initial weights, on the same batches, for the same steps (goal: within
  0.02 bits per character of chainrule's);
- chainrule's LSTM character model with about as many parameters, trained for as much CPU time as the GPT took.

    python benchmarks/gpt_quality.py                 # 1500 steps, 1 thread
    python benchmarks/gpt_quality.py --steps 300     # a quick look

Each contender trains alone in its own process. Training time is CPU seconds of the process (so a busy machine
moves the wall clock, not the equal-time comparison); the wall seconds are printed beside them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
N, T, D, HEADS, BLOCKS, LR, CORPUS_BYTES = 32, 64, 64, 4, 2, 2e-3, 2_000_000
EMBED_LSTM, HIDDEN_LSTM = 32, 144


def corpus() -> str:
    """The first 2 MB of the standard library's top-level sources, sorted by file name."""
    files = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))
    raw = b"".join(path.read_bytes() for path in files)[:CORPUS_BYTES]
    return raw.decode("utf-8", errors="replace")


def encoded() -> tuple[np.ndarray, np.ndarray, int]:
    """Training and validation indices (the last 10% validates) and the vocabulary's size."""
    text = corpus()
    vocabulary = sorted(set(text))
    index = {c: i for i, c in enumerate(vocabulary)}
    ids = np.fromiter((index[c] for c in text), np.int64, len(text))
    cut = int(0.9 * len(ids))
    return ids[:cut], ids[cut:], len(vocabulary)


def batches(train: np.ndarray, steps: int) -> np.ndarray:
    """The start of each sequence of each step: (steps, N), from a seeded Generator, shared by every contender."""
    return np.random.default_rng(0).integers(0, len(train) - T - 1, (steps, N))


def windows(ids: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows = starts[:, None] + np.arange(T)
    return ids[rows], ids[rows + 1]


def validation(val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping windows of the validation text, at most 256 of them."""
    starts = np.arange(0, len(val) - T - 1, T)[:256]
    return windows(val, starts)


def bits_per_character(logits: np.ndarray, targets: np.ndarray) -> float:
    logits = logits.astype(np.float64).reshape(-1, logits.shape[-1])
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(logits)), targets.reshape(-1)].mean() / math.log(2))


def chainrule_model(kind: str, vocabulary: int) -> Any:
    sys.path.insert(0, str(HERE.parent))
    from layers import LSTM, Embedding, LayerNorm, PositionalEmbedding, Sequential, TemporalAffine, TransformerBlock

    rng = np.random.default_rng(0)
    if kind == "lstm":
        return Sequential(Embedding(vocabulary, EMBED_LSTM, rng=rng),
                          LSTM(EMBED_LSTM, HIDDEN_LSTM, return_sequences=True, rng=rng),
                          TemporalAffine(HIDDEN_LSTM, vocabulary, rng=rng))
    return Sequential(Embedding(vocabulary, D, rng=rng), PositionalEmbedding(T, D, rng=rng),
                      *(TransformerBlock(D, HEADS, causal=True, rng=rng) for _ in range(BLOCKS)), LayerNorm(D),
                      TemporalAffine(D, vocabulary, rng=rng))


def train_chainrule(kind: str, steps: int, cpu_seconds: float, weights: Path) -> dict[str, Any]:
    """Train chainrule's GPT for `steps` (saving its initial weights to `weights`), or its LSTM for `cpu_seconds`."""
    from optim import AdamW
    from solver import Solver

    train, val, vocabulary = encoded()
    model = chainrule_model(kind, vocabulary)
    if kind == "gpt":
        np.savez(weights, **model.params)
    X, y = windows(train, np.zeros(2, np.int64))
    solver = Solver(model, {"X_train": X, "y_train": y, "X_val": X, "y_val": y}, optimizer=AdamW(lr=LR),
                    verbose=False)
    starts = batches(train, steps if kind == "gpt" else 1_000_000)
    wall, cpu, done = time.perf_counter(), time.process_time(), 0
    for row in starts:
        if kind == "gpt" and done == steps or kind == "lstm" and time.process_time() - cpu >= cpu_seconds:
            break
        solver.step(*windows(train, row))
        done += 1
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    X_val, y_val = validation(val)
    model.eval()
    bpc = bits_per_character(model.forward(X_val), y_val)
    return {"params": sum(p.size for p in model.params.values()), "steps": done, "cpu_s": cpu, "wall_s": wall,
            "bpc": bpc}


def train_torch(steps: int, weights: Path) -> dict[str, Any]:
    """The same GPT in PyTorch, from chainrule's initial weights, on the same batches."""
    import torch

    train, val, vocabulary = encoded()

    class GPT(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = torch.nn.Embedding(vocabulary, D)
            self.positions = torch.nn.Parameter(torch.zeros(T, D))
            self.blocks = torch.nn.ModuleList(torch.nn.TransformerEncoderLayer(
                D, HEADS, 4 * D, 0.0, "gelu", batch_first=True, norm_first=True) for _ in range(BLOCKS))
            self.norm, self.head = torch.nn.LayerNorm(D), torch.nn.Linear(D, vocabulary)
            self.register_buffer("mask", torch.nn.Transformer.generate_square_subsequent_mask(T))

        def forward(self, x: Any) -> Any:
            h = self.embedding(x) + self.positions[: x.shape[1]]
            for block in self.blocks:
                h = block(h, src_mask=self.mask, is_causal=True)
            return self.head(self.norm(h))

    model = GPT()
    ours = np.load(weights)
    last = BLOCKS + 2
    mapping = {"embedding.weight": ours["0.W"], "positions": ours["1.P"], "norm.weight": ours[f"{last}.gamma"],
               "norm.bias": ours[f"{last}.beta"], "head.weight": ours[f"{last + 1}.W"].T,
               "head.bias": ours[f"{last + 1}.b"]}
    for i in range(BLOCKS):
        block = f"{i + 2}."
        for theirs, name, transpose in (("norm1.weight", "ln1.gamma", False), ("norm1.bias", "ln1.beta", False),
                                        ("norm2.weight", "ln2.gamma", False), ("norm2.bias", "ln2.beta", False),
                                        ("linear1.weight", "fc1.W", True), ("linear1.bias", "fc1.b", False),
                                        ("linear2.weight", "fc2.W", True), ("linear2.bias", "fc2.b", False),
                                        ("self_attn.in_proj_weight", "attn.W_qkv", True),
                                        ("self_attn.in_proj_bias", "attn.b_qkv", False),
                                        ("self_attn.out_proj.weight", "attn.W_out", True),
                                        ("self_attn.out_proj.bias", "attn.b_out", False)):
            value = ours[block + name]
            mapping[f"blocks.{i}.{theirs}"] = value.T if transpose else value
    parameters = dict(model.named_parameters())
    assert set(parameters) == set(mapping), set(parameters) ^ set(mapping)
    with torch.no_grad():
        for name, value in mapping.items():
            parameters[name].copy_(torch.from_numpy(np.ascontiguousarray(value)))
    opt = torch.optim.AdamW(model.parameters(), lr=LR)
    wall, cpu = time.perf_counter(), time.process_time()
    for row in batches(train, steps):
        X, y = (torch.from_numpy(a) for a in windows(train, row))
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(X).reshape(-1, vocabulary), y.reshape(-1)).backward()
        opt.step()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    X_val, y_val = validation(val)
    model.eval()
    with torch.no_grad():
        bpc = bits_per_character(model(torch.from_numpy(X_val)).numpy(), y_val)
    return {"params": sum(p.numel() for p in model.parameters()), "steps": steps, "cpu_s": cpu, "wall_s": wall,
            "bpc": bpc}


def solo(args: argparse.Namespace) -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    weights = Path(args.weights)
    if args.solo == "torch":
        import torch
        torch.set_num_threads(args.threads)
        return train_torch(args.steps, weights)
    with threadpool_limits(args.threads):
        return train_chainrule(args.solo, args.steps, args.cpu_seconds, weights)


def run(contender: str, args: argparse.Namespace, weights: Path, cpu_seconds: float = 0.0) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--solo", contender, "--steps", str(args.steps), "--threads",
                          str(args.threads), "--weights", str(weights), "--cpu-seconds", str(cpu_seconds)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--solo", help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    parser.add_argument("--cpu-seconds", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.solo:
        print(json.dumps(solo(args)))
        return
    train, val, vocabulary = encoded()
    with tempfile.TemporaryDirectory() as folder:
        weights = Path(folder) / "gpt0.npz"
        rows = {"chainrule GPT": run("gpt", args, weights)}
        try:
            import torch  # noqa: F401
            rows["PyTorch GPT"] = run("torch", args, weights)
        except ImportError:
            pass
        rows["chainrule LSTM"] = run("lstm", args, weights, rows["chainrule GPT"]["cpu_s"])
    print(f"load average {os.getloadavg()[0]:.2f}; {args.threads} thread(s), float32; corpus: {len(train):,} "
          f"training and {len(val):,} validation characters, {vocabulary} distinct; batches of {N} x {T}; "
          f"AdamW lr {LR}")
    print(f"{'model':>15}  {'params':>7}  {'steps':>6}  {'CPU s':>6}  {'wall s':>6}  {'val bits/char':>13}")
    for name, row in rows.items():
        print(f"{name:>15}  {row['params']:>7,}  {row['steps']:>6}  {row['cpu_s']:>6.0f}  {row['wall_s']:>6.0f}  "
              f"{row['bpc']:>13.3f}")


if __name__ == "__main__":
    main()
