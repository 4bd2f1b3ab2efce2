"""Convolutional training steps: chainrule's Solver.step against PyTorch on the CPU, each alone in its own
process, float32, alternating rounds, medians with the rounds' range.

    python benchmarks/conv_bench.py                     # both nets, 5 rounds, 2 threads
    python benchmarks/conv_bench.py --rounds 3 --threads 1

Nets: the MNIST-1D paper's CNN (Conv1D 1->25 k5 s2 p1, two Conv1D 25->25 k3 s2 p1, ReLU after each,
Affine 125->10) at a batch of 100, and a CIFAR-shaped net (Conv2D 3->32 3x3 p1, ReLU, MaxPool 2, Conv2D
32->64 3x3 p1, ReLU, MaxPool 2, Affine 4096->10) at a batch of 64. A step is forward, softmax loss, backward
and an SGD update. GFLOP/s counts the products of a step (convolutions and the Affine, forward and both
backward products, none for the first layer's input gradient) over chainrule's time; of peak divides that by
the machine's square float32 GEMM throughput.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
NETS = {  # name: (input shape of one example, batch, conv specs (out, kernel, stride, padding, pool), classes)
    "mnist1d-cnn": ((1, 40), 100, [(25, 5, 2, 1, 0), (25, 3, 2, 1, 0), (25, 3, 2, 1, 0)], 10),
    "cifar-cnn": ((3, 32, 32), 64, [(32, 3, 1, 1, 2), (64, 3, 1, 1, 2)], 10),
}


def shapes(name: str) -> tuple[list[tuple], int]:
    """Per convolution (C_in, C_out, kernel, out spatial) and the Affine's input width."""
    (c, *spatial), _, convs, _ = NETS[name]
    out = []
    for cout, k, s, p, pool in convs:
        spatial = [(n + 2 * p - k) // s + 1 for n in spatial]
        out.append((c, cout, k, spatial))
        if pool:
            spatial = [n // pool for n in spatial]
        c = cout
    return out, c * int(np.prod(spatial))


def step_flops(name: str) -> float:
    (_, batch, _, classes), (convs, width) = NETS[name], shapes(name)
    flops = 0.0
    for i, (cin, cout, k, spatial) in enumerate(convs):
        product = 2 * batch * int(np.prod(spatial)) * cin * k ** len(spatial) * cout
        flops += product * (2 if i == 0 else 3)
    return flops + 3 * 2 * batch * width * classes


def chainrule_step(name: str) -> Any:
    sys.path.insert(0, str(HERE.parent))
    from layers import Affine, Conv1D, Conv2D, MaxPool2D, ReLU, Sequential
    from optim import SGD
    from solver import Solver

    (c, *spatial), batch, convs, classes = NETS[name]
    conv = Conv1D if len(spatial) == 1 else Conv2D
    layers: list[Any] = []
    for cout, k, s, p, pool in convs:
        layers += [conv(c, cout, k, stride=s, padding=p, rng=0), ReLU()]
        if pool:
            layers.append(MaxPool2D(pool))
        c = cout
    layers.append(Affine(shapes(name)[1], classes, rng=0))
    X = np.zeros((2, NETS[name][0][0], *spatial), np.float32)
    y = np.zeros(2, np.int64)
    solver = Solver(Sequential(*layers), {"X_train": X, "y_train": y, "X_val": X, "y_val": y},
                    optimizer=SGD(lr=1e-3), verbose=False)
    return solver.step


def torch_step(name: str) -> Any:
    import torch

    (c, *spatial), batch, convs, classes = NETS[name]
    conv = torch.nn.Conv1d if len(spatial) == 1 else torch.nn.Conv2d
    layers: list[Any] = []
    for cout, k, s, p, pool in convs:
        layers += [conv(c, cout, k, stride=s, padding=p), torch.nn.ReLU()]
        if pool:
            layers.append(torch.nn.MaxPool2d(pool))
        c = cout
    net = torch.nn.Sequential(*layers, torch.nn.Flatten(), torch.nn.Linear(shapes(name)[1], classes))
    opt = torch.optim.SGD(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(X: Any, y: Any) -> float:
        opt.zero_grad()
        loss = loss_fn(net(X), y)
        loss.backward()
        opt.step()
        return float(loss)

    return step


def solo(contender: str, name: str, threads: int, seconds: float) -> float:
    """Run in this process: the median seconds of one step, in blocks, after a warm-up."""
    from threadpoolctl import threadpool_limits

    (c, *spatial), batch, _, classes = NETS[name]
    rng = np.random.default_rng(0)
    data = [(rng.standard_normal((batch, c, *spatial)).astype(np.float32), rng.integers(0, classes, batch))
            for _ in range(4)]
    with threadpool_limits(limits=threads):
        if contender == "torch":
            import torch

            torch.set_num_threads(threads)
            data = [(torch.from_numpy(X), torch.from_numpy(y)) for X, y in data]
            step = torch_step(name)
        else:
            step = chainrule_step(name)
        for X, y in data * 2:
            step(X, y)
        samples, end = [], time.perf_counter() + seconds
        while time.perf_counter() < end or len(samples) < 5:
            t0 = time.perf_counter()
            for X, y in data:
                step(X, y)
            samples.append((time.perf_counter() - t0) / len(data))
    return statistics.median(samples)


def gemm_peak(threads: int) -> float:
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((2, 2048, 2048)).astype(np.float32)
    with threadpool_limits(limits=threads):
        A @ B
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            A @ B
            times.append(time.perf_counter() - t0)
    return 2 * 2048**3 / statistics.median(times) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=1.0, help="timing per net and contender in each round")
    parser.add_argument("--solo", nargs=2, metavar=("CONTENDER", "NET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.solo:
        print(json.dumps(solo(args.solo[0], args.solo[1], args.threads, args.seconds)))
        return
    try:
        import torch  # noqa: F401
        contenders = ["chainrule", "torch"]
    except ImportError:
        contenders = ["chainrule"]
    order = np.random.default_rng(0)
    samples: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for name in NETS:
            for contender in order.permutation(contenders):
                out = subprocess.run([sys.executable, __file__, "--solo", str(contender), name, "--threads",
                                      str(args.threads), "--seconds", str(args.seconds)],
                                     capture_output=True, text=True, check=True)
                samples.setdefault((name, str(contender)), []).append(float(out.stdout.strip().splitlines()[-1]))
    peak = float(subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(HERE)!r}); "
                                 f"import conv_bench; print(conv_bench.gemm_peak({args.threads}))"],
                                capture_output=True, text=True, check=True).stdout)
    print(f"{args.threads} threads, {args.rounds} rounds, float32; square GEMM peak {peak:.0f} GFLOP/s")
    print(f"{'net':>12}  {'batch':>5}  {'chainrule ms (range)':>22}  {'torch ms (range)':>22}  {'÷torch':>6}  "
          f"{'GFLOP':>6}  {'GFLOP/s':>7}  {'÷peak':>5}")
    for name in NETS:
        ours = samples[(name, "chainrule")]
        theirs = samples.get((name, "torch"), [])
        med = statistics.median(ours)
        span = f"{med * 1e3:.2f} ({min(ours) * 1e3:.2f}-{max(ours) * 1e3:.2f})"
        tspan = (f"{statistics.median(theirs) * 1e3:.2f} ({min(theirs) * 1e3:.2f}-{max(theirs) * 1e3:.2f})"
                 if theirs else "-")
        ratio = f"{med / statistics.median(theirs):.2f}" if theirs else "-"
        gflops = step_flops(name) / med / 1e9
        print(f"{name:>12}  {NETS[name][1]:>5}  {span:>22}  {tspan:>22}  {ratio:>6}  {step_flops(name) / 1e9:>6.2f}  "
              f"{gflops:>7.1f}  {gflops / peak:>5.2f}")


if __name__ == "__main__":
    main()
