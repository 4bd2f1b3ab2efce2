"""Recurrent training steps: chainrule's Solver.step against PyTorch's fused recurrent layers on the CPU, each
alone in its own process, float32, alternating rounds, medians with the rounds' range.

    python benchmarks/rnn_bench.py                  # GRU and LSTM, 5 rounds, 2 threads
    python benchmarks/rnn_bench.py --rounds 3 --threads 1

The net reads MNIST-1D as 40 steps of one value (N = 100, T = 40, D = 1): a GRU or LSTM with 64 units, its last
hidden state into a linear layer to 10 classes; a step is forward, softmax loss, backward and an Adam update.
"""

from __future__ import annotations

import argparse
import json
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
N, T, D, H, CLASSES = 100, 40, 1, 64, 10


def chainrule_step(kind: str) -> Any:
    sys.path.insert(0, str(HERE.parent))
    from layers import GRU, LSTM, Affine, Sequential
    from optim import Adam
    from solver import Solver

    cell = {"gru": GRU, "lstm": LSTM}[kind]
    model = Sequential(cell(D, H, rng=0), Affine(H, CLASSES, rng=0))
    X, y = np.zeros((2, T, D), np.float32), np.zeros(2, np.int64)
    solver = Solver(model, {"X_train": X, "y_train": y, "X_val": X, "y_val": y}, optimizer=Adam(lr=3e-3),
                    verbose=False)
    return solver.step


def torch_step(kind: str) -> Any:
    import torch

    cell = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[kind](D, H, batch_first=True)
    head = torch.nn.Linear(H, CLASSES)
    opt = torch.optim.Adam([*cell.parameters(), *head.parameters()], lr=3e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(X: Any, y: Any) -> float:
        opt.zero_grad()
        hs, _ = cell(X)
        loss = loss_fn(head(hs[:, -1]), y)
        loss.backward()
        opt.step()
        return float(loss)

    return step


def solo(contender: str, kind: str, threads: int, seconds: float) -> float:
    """Run in this process: the median seconds of one step, after a warm-up."""
    rng = np.random.default_rng(0)
    data = [(rng.standard_normal((N, T, D)).astype(np.float32), rng.integers(0, CLASSES, N)) for _ in range(4)]
    make_step = torch_step if contender == "torch" else chainrule_step  # chainrule-numpy: the env says numpy
    return contender_seconds(contender, lambda: make_step(kind), data, threads, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=1.0, help="timing per net and contender in each round")
    parser.add_argument("--solo", nargs=2, metavar=("CONTENDER", "KIND"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.solo:
        print(json.dumps(solo(args.solo[0], args.solo[1], args.threads, args.seconds)))
        return
    contenders = available_contenders(["chainrule", "chainrule-numpy"])
    print(load_line())
    order = np.random.default_rng(0)
    samples: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for kind in ("gru", "lstm"):
            for contender in order.permutation(contenders):
                out = run_solo(__file__, str(contender), ["--solo", str(contender), kind, "--threads",
                                                          str(args.threads), "--seconds", str(args.seconds)])
                samples.setdefault((kind, str(contender)), []).append(float(out.strip().splitlines()[-1]))
    print(f"{args.threads} threads, {args.rounds} rounds, float32; N={N}, T={T}, D={D}, H={H}; a step: forward, "
          "softmax loss, backward, Adam")
    print(f"{'layer':>5}  {'chainrule ms (range)':>22}  {'chainrule numpy ms':>22}  {'÷':>5}  "
          f"{'torch ms (range)':>22}  {'÷torch':>6}")
    for kind in ("gru", "lstm"):
        ours = samples[(kind, "chainrule")]
        cells = [f"{kind.upper():>5}", f"{spread(ours):>22}"]
        for contender, width in (("chainrule-numpy", 5), ("torch", 6)):
            theirs = samples.get((kind, contender), [])
            ratio = f"{statistics.median(ours) / statistics.median(theirs):.2f}" if theirs else "-"
            cells += [f"{spread(theirs):>22}", f"{ratio:>{width}}"]
        print("  ".join(cells))


if __name__ == "__main__":
    main()
