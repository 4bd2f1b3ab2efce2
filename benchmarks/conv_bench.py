"""Convolutional training steps: chainrule's Solver.step against PyTorch on the CPU, each alone in its own
process, float32, alternating rounds, medians with the rounds' range.

    python benchmarks/conv_bench.py                     # both nets, 5 rounds, 2 threads, then time to 92%
    python benchmarks/conv_bench.py --rounds 3 --threads 1 --fit-seeds 0

Contenders: chainrule with its compiled kernels (numba, the ``fast`` extra), chainrule on numpy alone
(``CHAINRULE_KERNELS=numpy``), a hand-written numpy im2col step (``numpy_step``) and PyTorch (when installed).
Nets: the MNIST-1D paper's CNN (Conv1D 1->25 k5 s2 p1, two Conv1D 25->25 k3 s2 p1, ReLU after each,
Affine 125->10) at a batch of 100, and a CIFAR-shaped net (Conv2D 3->32 3x3 p1, ReLU, MaxPool 2, Conv2D
32->64 3x3 p1, ReLU, MaxPool 2, Affine 4096->10) at a batch of 64. A step is forward, softmax loss, backward
and an SGD update. GFLOP/s counts the products of a step (convolutions and the Affine, forward and both
backward products, none for the first layer's input gradient) over chainrule's time; of peak divides that by
the machine's square float32 GEMM throughput.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
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


def numpy_step(name: str) -> Any:
    """The same step written by hand in numpy, as the course's fast layers do it: im2col (the padded input's
    windows, one row per output position) times the weights, max pooling by reshaping into 2x2 blocks, and
    the column gradients added back window offset by window offset (col2im)."""
    (c, *spatial), batch, convs, classes = NETS[name]
    rng = np.random.default_rng(0)
    weights = []
    for cout, k, _, _, _ in convs:
        fan_in = c * k ** len(spatial)
        weights.append([(rng.standard_normal((cout, fan_in)) * np.sqrt(2 / fan_in)).astype(np.float32),
                        np.zeros(cout, np.float32)])
        c = cout
    width = shapes(name)[1]
    W_out = (rng.standard_normal((width, classes)) * np.sqrt(2 / width)).astype(np.float32)
    b_out = np.zeros(classes, np.float32)
    axes = tuple(range(2, 2 + len(spatial)))

    def windows(xp: np.ndarray, k: int, s: int) -> np.ndarray:
        """(N, *out, C, *kernel) view of the padded input's windows."""
        view = np.lib.stride_tricks.sliding_window_view(xp, (k,) * len(spatial), axis=axes)
        view = view[(slice(None), slice(None), *[slice(None, None, s)] * len(spatial))]
        order = (0, *range(2, 2 + len(spatial)), 1, *range(2 + len(spatial), 2 + 2 * len(spatial)))
        return view.transpose(order)

    def step(X: np.ndarray, y: np.ndarray) -> float:
        caches, x = [], X
        for (cout, k, s, p, pool), (W, b) in zip(convs, weights, strict=True):
            xp = np.pad(x, [(0, 0), (0, 0), *[(p, p)] * len(spatial)])
            win = windows(xp, k, s)
            out_shape = win.shape[1:1 + len(spatial)]
            cols = win.reshape(-1, W.shape[1])  # a copy: the im2col matrix (N * out positions, C * k^d)
            z = cols @ W.T + b
            z = z.reshape(len(x), *out_shape, cout).transpose(0, -1, *range(1, 1 + len(spatial)))
            a = np.maximum(z, 0)
            mask = None
            if pool:
                n, ch, h, w = a.shape
                blocks = a.reshape(n, ch, h // pool, pool, w // pool, pool)
                pooled = blocks.max(axis=(3, 5))
                mask = blocks == pooled[:, :, :, None, :, None]
                a = pooled
            caches.append((x.shape, xp.shape, cols, z, mask, out_shape))
            x = a
        flat = x.reshape(len(x), -1)
        scores = flat @ W_out + b_out
        scores -= scores.max(axis=1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(axis=1, keepdims=True)
        loss = -np.mean(np.log(probs[np.arange(len(y)), y]))
        dscores = probs
        dscores[np.arange(len(y)), y] -= 1
        dscores /= len(y)
        dW_out, db_out = flat.T @ dscores, dscores.sum(axis=0)
        dx = (dscores @ W_out.T).reshape(x.shape)
        grads = []
        for i in reversed(range(len(convs))):
            (cout, k, s, p, pool), (W, b) = convs[i], weights[i]
            x_shape, xp_shape, cols, z, mask, out_shape = caches[i]
            if pool:
                n, ch, h, w = z.shape
                dx = (mask * dx[:, :, :, None, :, None]).reshape(n, ch, h, w)
            dz = dx * (z > 0)
            dz2 = dz.transpose(0, *range(2, 2 + len(spatial)), 1).reshape(-1, cout)
            grads.append((dz2.T @ cols, dz2.sum(axis=0)))
            if i == 0:
                break
            dcols = (dz2 @ W).reshape(x_shape[0], *out_shape, x_shape[1], *(k,) * len(spatial))
            dxp = np.zeros(xp_shape, np.float32)
            for offset in np.ndindex(*(k,) * len(spatial)):  # col2im: each window offset adds one strided slice
                target = tuple(slice(o, o + s * (n - 1) + 1, s) for o, n in zip(offset, out_shape, strict=True))
                moved = np.moveaxis(dcols[(slice(None), *[slice(None)] * len(spatial), slice(None), *offset)], -1, 1)
                dxp[(slice(None), slice(None), *target)] += moved
            dx = dxp[(slice(None), slice(None), *[slice(p, p + n) for n in x_shape[2:]])]
        for (W, b), (dW, db) in zip(reversed(weights), grads, strict=False):
            W -= 1e-3 * dW
            b -= 1e-3 * db
        W_out[...] -= 1e-3 * dW_out
        b_out[...] -= 1e-3 * db_out
        return float(loss)

    return step


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
        return float(loss.detach())

    return step


def solo(contender: str, name: str, threads: int, seconds: float) -> float:
    """Run in this process: the median seconds of one step, in blocks, after a warm-up."""
    (c, *spatial), batch, _, classes = NETS[name]
    rng = np.random.default_rng(0)
    data = [(rng.standard_normal((batch, c, *spatial)).astype(np.float32), rng.integers(0, classes, batch))
            for _ in range(4)]
    makers = {"torch": torch_step, "numpy": numpy_step, "chainrule": chainrule_step, "chainrule-numpy": chainrule_step}
    return contender_seconds(contender, lambda: makers[contender](name), data, threads, seconds)


def contender_seconds(contender: str, make_step: Any, data: list, threads: int, seconds: float) -> float:
    """``median_pass_seconds`` of the step ``make_step()`` gives, with ``threads`` threads for BLAS and numba (and
    for PyTorch, whose contender gets ``data`` as tensors). Shared with ``rnn_bench``."""
    from threadpoolctl import threadpool_limits

    if contender == "torch":  # nothing of chainrule's (nor numba's threads) in PyTorch's process
        import torch

        torch.set_num_threads(threads)
        with threadpool_limits(limits=threads):
            return median_pass_seconds(make_step(), [(torch.from_numpy(X), torch.from_numpy(y)) for X, y in data],
                                       seconds)
    sys.path.insert(0, str(HERE.parent))
    from layers.kernels import threads as kernel_threads

    with threadpool_limits(limits=threads), kernel_threads(threads):
        return median_pass_seconds(make_step(), data, seconds)


def median_pass_seconds(step: Any, data: list, seconds: float) -> float:
    """The median seconds of one step: two warm-up passes over ``data``, then passes timed whole, for
    ``seconds`` and at least 5 passes. Both benchmarks reach it through ``contender_seconds``."""
    for X, y in data * 2:
        step(X, y)
    samples, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end or len(samples) < 5:
        t0 = time.perf_counter()
        for X, y in data:
            step(X, y)
        samples.append((time.perf_counter() - t0) / len(data))
    return statistics.median(samples)


TARGET, EVAL_EVERY, MAX_STEPS = 0.92, 100, 6000


def time_to_accuracy(contender: str, threads: int, seed: int) -> tuple[float | None, int, float]:
    """Run in this process: the MNIST-1D paper's CNN trained with Adam (lr 1e-2, batches of 100) until its test
    accuracy, measured every EVAL_EVERY steps (not timed), reaches TARGET. Returns (training seconds to
    get there or None, steps, the last accuracy measured)."""
    from threadpoolctl import threadpool_limits

    sys.path.insert(0, str(HERE.parent))
    from chainrule.data import load_mnist1d
    from layers.kernels import threads as kernel_threads

    data = load_mnist1d(42)
    X, y = data["X_train"].astype(np.float32), data["y_train"]
    X_test, y_test = data["X_test"].astype(np.float32), data["y_test"]
    order = np.random.default_rng(seed)
    numba_threads = contextlib.nullcontext() if contender == "torch" else kernel_threads(threads)
    with threadpool_limits(limits=threads), numba_threads:
        if contender == "torch":
            import torch

            torch.set_num_threads(threads)
            torch.manual_seed(seed)
            step, accuracy = torch_fit(torch.from_numpy(X_test), y_test)
            batches = lambda idx: (torch.from_numpy(X[idx]), torch.from_numpy(y[idx]))  # noqa: E731
        else:
            step, accuracy = chainrule_fit(X, y, X_test, y_test, seed)
            batches = lambda idx: (X[idx], y[idx])  # noqa: E731
        seconds, acc = 0.0, 0.0
        for steps in range(1, MAX_STEPS + 1):
            batch = batches(order.integers(0, len(X), 100))
            t0 = time.perf_counter()
            step(*batch)
            seconds += time.perf_counter() - t0
            if steps % EVAL_EVERY == 0:
                acc = accuracy()
                if acc >= TARGET:
                    return seconds, steps, acc
    return None, MAX_STEPS, acc


def chainrule_fit(X: np.ndarray, y: np.ndarray, X_test: np.ndarray, y_test: np.ndarray, seed: int) -> Any:
    from layers import Affine, Conv1D, ReLU, Sequential
    from optim import Adam
    from solver import Solver

    rng = np.random.default_rng(seed)
    net = Sequential(Conv1D(1, 25, 5, stride=2, padding=1, rng=rng), ReLU(),
                     Conv1D(25, 25, 3, stride=2, padding=1, rng=rng), ReLU(),
                     Conv1D(25, 25, 3, stride=2, padding=1, rng=rng), ReLU(), Affine(125, 10, rng=rng))
    solver = Solver(net, {"X_train": X, "y_train": y, "X_val": X_test, "y_val": y_test}, optimizer=Adam(lr=1e-2),
                    verbose=False)
    return solver.step, lambda: float(np.mean(solver.predict(X_test) == y_test))


def torch_fit(X_test: Any, y_test: np.ndarray) -> Any:
    import torch

    net = torch.nn.Sequential(torch.nn.Conv1d(1, 25, 5, stride=2, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv1d(25, 25, 3, stride=2, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv1d(25, 25, 3, stride=2, padding=1), torch.nn.ReLU(),
                              torch.nn.Flatten(), torch.nn.Linear(125, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(X: Any, y: Any) -> None:
        opt.zero_grad()
        loss_fn(net(X), y).backward()
        opt.step()

    def accuracy() -> float:
        with torch.no_grad():
            return float(np.mean(net(X_test).argmax(dim=1).numpy() == y_test))

    return step, accuracy


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
    parser.add_argument("--fit-seeds", type=int, default=3, help="seeds of the time-to-92%% table (0: skip it)")
    parser.add_argument("--solo", nargs=2, metavar=("CONTENDER", "NET"), help=argparse.SUPPRESS)
    parser.add_argument("--solo-fit", nargs=2, metavar=("CONTENDER", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.solo:
        print(json.dumps(solo(args.solo[0], args.solo[1], args.threads, args.seconds)))
        return
    if args.solo_fit:
        print(json.dumps(time_to_accuracy(args.solo_fit[0], args.threads, int(args.solo_fit[1]))))
        return
    contenders = available_contenders(["chainrule", "chainrule-numpy", "numpy"])
    print(load_line())
    order = np.random.default_rng(0)
    samples: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for name in NETS:
            for contender in order.permutation(contenders):
                out = run_solo(__file__, str(contender), ["--solo", str(contender), name, "--threads",
                                                          str(args.threads), "--seconds", str(args.seconds)])
                samples.setdefault((name, str(contender)), []).append(float(out.strip().splitlines()[-1]))
    peak = float(subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(HERE)!r}); "
                                 f"import conv_bench; print(conv_bench.gemm_peak({args.threads}))"],
                                capture_output=True, text=True, check=True).stdout)
    print(f"{args.threads} threads, {args.rounds} rounds, float32; square GEMM peak {peak:.0f} GFLOP/s")
    print("Training step (ms, median of rounds, range); chainrule with kernels, then on numpy alone; ÷x: "
          "chainrule's time (with kernels) over x's; GFLOP/s and ÷peak: chainrule's with kernels")
    print(f"{'net':>12}  {'batch':>5}  {'chainrule ms (range)':>22}  {'chainrule numpy ms':>22}  {'÷':>5}  "
          f"{'numpy im2col ms':>22}  {'÷numpy':>6}  {'torch ms (range)':>22}  {'÷torch':>6}  {'GFLOP':>6}  "
          f"{'GFLOP/s':>7}  {'÷peak':>5}")
    for name in NETS:
        med = statistics.median(samples[(name, "chainrule")])
        cells = [f"{name:>12}", f"{NETS[name][1]:>5}", f"{spread(samples[(name, 'chainrule')]):>22}"]
        plain = samples.get((name, "chainrule-numpy"), [])
        cells += [f"{spread(plain):>22}", f"{med / statistics.median(plain):>5.2f}" if plain else f"{'-':>5}"]
        for contender in ("numpy", "torch"):
            theirs = samples.get((name, contender), [])
            cells += [f"{spread(theirs):>22}", f"{med / statistics.median(theirs):>6.2f}" if theirs else f"{'-':>6}"]
        gflops = step_flops(name) / med / 1e9
        cells += [f"{step_flops(name) / 1e9:>6.2f}", f"{gflops:>7.1f}", f"{gflops / peak:>5.2f}"]
        print("  ".join(cells))
    if args.fit_seeds:
        fit_table(contenders, args)


def available_contenders(ours: list[str]) -> list[str]:
    """``ours``, without the kernels' contender where numba is missing, and PyTorch where it is installed."""
    import importlib.util

    if importlib.util.find_spec("numba") is None:
        ours = [c for c in ours if c != "chainrule"] + ["chainrule"]  # chainrule then runs on numpy
    return ours + (["torch"] if importlib.util.find_spec("torch") else [])


def run_solo(script: str, contender: str, arguments: list[str]) -> str:
    """Run ``script`` with ``arguments`` in a process of its own (``chainrule-numpy``: with CHAINRULE_KERNELS=numpy);
    its standard output."""
    env = dict(os.environ, CHAINRULE_KERNELS="numpy") if contender.endswith("-numpy") else None
    return subprocess.run([sys.executable, script, *arguments], capture_output=True, text=True, check=True,
                          env=env).stdout


def load_line() -> str:
    """The machine's load average and cores, printed above each table: timings on a busy machine flatter numpy."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values) * 1e3:.2f} ({min(values) * 1e3:.2f}-{max(values) * 1e3:.2f})"


def fit_table(contenders: list[str], args: argparse.Namespace) -> None:
    """Time to TARGET test accuracy on MNIST-1D, each contender and seed in its own process."""
    rows = {}
    for seed in range(args.fit_seeds):
        for contender in (c for c in contenders if c != "numpy"):
            out = run_solo(__file__, contender, ["--solo-fit", contender, str(seed), "--threads", str(args.threads)])
            rows[(contender, seed)] = json.loads(out.strip().splitlines()[-1])
    print(f"\nMNIST-1D, the paper's CNN, Adam lr 1e-2, batches of 100: training seconds to {TARGET:.0%} test "
          f"accuracy (checked every {EVAL_EVERY} steps, not timed; at most {MAX_STEPS} steps)")
    print(f"{'contender':>15}  {'seed':>4}  {'seconds':>8}  {'steps':>6}  {'ms/step':>7}  {'accuracy':>8}")
    for (contender, seed), (seconds, steps, acc) in rows.items():
        shown = f"{seconds:8.2f}" if seconds is not None else f"{'not hit':>8}"
        per_step = f"{1e3 * seconds / steps:7.2f}" if seconds is not None else f"{'-':>7}"
        print(f"{contender:>15}  {seed:>4}  {shown}  {steps:>6}  {per_step}  {acc:>8.3f}")


if __name__ == "__main__":
    main()
