"""A character GPT's training step: chainrule's Solver.step against the same net in PyTorch (eager, its own
TransformerEncoderLayer), each alone in its own process, float32, alternating rounds, medians with the rounds'
range, and each process's peak memory.

    python benchmarks/gpt_bench.py                  # 5 rounds, 2 threads
    python benchmarks/gpt_bench.py --rounds 3 --threads 1

The net: an Embedding of 96 characters into D = 64, learned positions, 2 causal pre-norm blocks of 4 heads with
an MLP of 4D, a LayerNorm and a read-out to 96 scores per step; batches of 32 sequences of T = 64; a step is
forward, softmax loss over every step, backward and an AdamW update.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np
from conv_bench import (  # the same timing, processes and table cells as the conv benchmark
    available_contenders,
    contender_seconds,
    load_line,
    run_solo,
    spread,
)

HERE = Path(__file__).resolve().parent
N, T, D, HEADS, VOCABULARY, BLOCKS = 32, 64, 64, 4, 96, 2


def chainrule_step() -> Any:
    sys.path.insert(0, str(HERE.parent))
    from layers import Embedding, LayerNorm, PositionalEmbedding, Sequential, TemporalAffine, TransformerBlock
    from optim import AdamW
    from solver import Solver

    rng = np.random.default_rng(0)
    model = Sequential(Embedding(VOCABULARY, D, rng=rng), PositionalEmbedding(T, D, rng=rng),
                       *(TransformerBlock(D, HEADS, causal=True, rng=rng) for _ in range(BLOCKS)), LayerNorm(D),
                       TemporalAffine(D, VOCABULARY, rng=rng))
    X, y = np.zeros((2, T), np.int64), np.zeros((2, T), np.int64)
    solver = Solver(model, {"X_train": X, "y_train": y, "X_val": X, "y_val": y}, optimizer=AdamW(lr=1e-3),
                    verbose=False)
    return solver.step


def torch_step() -> Any:
    import torch

    class GPT(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = torch.nn.Embedding(VOCABULARY, D)
            self.positions = torch.nn.Parameter(0.02 * torch.randn(T, D))
            self.blocks = torch.nn.ModuleList(torch.nn.TransformerEncoderLayer(
                D, HEADS, 4 * D, 0.0, "gelu", batch_first=True, norm_first=True) for _ in range(BLOCKS))
            self.norm, self.head = torch.nn.LayerNorm(D), torch.nn.Linear(D, VOCABULARY)
            self.register_buffer("mask", torch.nn.Transformer.generate_square_subsequent_mask(T))

        def forward(self, x: Any) -> Any:
            h = self.embedding(x) + self.positions
            for block in self.blocks:
                h = block(h, src_mask=self.mask, is_causal=True)
            return self.head(self.norm(h))

    model = GPT()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step(X: Any, y: Any) -> float:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(X).reshape(-1, VOCABULARY), y.reshape(-1))
        loss.backward()
        opt.step()
        return float(loss)

    return step


def solo(contender: str, threads: int, seconds: float) -> dict[str, float]:
    """Run in this process: the median seconds of one step, after a warm-up, and the process's peak memory."""
    rng = np.random.default_rng(0)
    data = [(rng.integers(0, VOCABULARY, (N, T)), rng.integers(0, VOCABULARY, (N, T))) for _ in range(4)]
    make_step = torch_step if contender == "torch" else chainrule_step
    step = contender_seconds(contender, make_step, data, threads, seconds)
    return {"seconds": step, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=1.0, help="timing per contender in each round")
    parser.add_argument("--solo", metavar="CONTENDER", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.solo:
        print(json.dumps(solo(args.solo, args.threads, args.seconds)))
        return
    contenders = available_contenders(["chainrule", "chainrule-numpy"])
    load = load_line()
    order = np.random.default_rng(0)
    samples: dict[str, list[dict[str, float]]] = {}
    for _ in range(args.rounds):
        for contender in order.permutation(contenders):
            out = run_solo(__file__, str(contender), ["--solo", str(contender), "--threads", str(args.threads),
                                                      "--seconds", str(args.seconds)])
            samples.setdefault(str(contender), []).append(json.loads(out.strip().splitlines()[-1]))
    print(f"{load} (before); {args.threads} threads, {args.rounds} rounds, float32; N={N}, T={T}, D={D}, "
          f"heads={HEADS}, blocks={BLOCKS}; a step: forward, softmax loss, backward, AdamW")
    print(f"{'contender':>15}  {'ms a step (range)':>22}  {'÷torch':>6}  {'peak MB':>7}")
    theirs = [s["seconds"] for s in samples.get("torch", [])]
    for contender, rows in samples.items():
        times = [s["seconds"] for s in rows]
        ratio = f"{statistics.median(times) / statistics.median(theirs):.2f}" if theirs else "-"
        peak = statistics.median(s["peak_mb"] for s in rows)
        print(f"{contender:>15}  {spread(times):>22}  {ratio:>6}  {peak:>7.0f}")


if __name__ == "__main__":
    main()
