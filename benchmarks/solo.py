"""One contender, alone in its own process, so no other library's thread pool takes its cores.

    python benchmarks/solo.py step CONTENDER THREADS SECONDS CONFIG:DTYPE ...   (chainrule, numpy, matmul, torch)
    python benchmarks/solo.py gemm THREADS N:DTYPE ...
    python benchmarks/solo.py accuracy CONTENDER THREADS TASK            (chainrule, sklearn, torch; digits, mnist1d)

Prints one JSON object. ``bench.py`` runs these in alternating rounds and takes medians.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from steps import CONFIGS, framework_step, matmul_step, numpy_step, torch_step  # noqa: E402

BLOCK_SECONDS = 0.02
DTYPES = {"float32": np.float32, "float64": np.float64}


def batches(d_in: int, classes: int, batch: int, dtype: Any, count: int = 8) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(2)
    return [(rng.standard_normal((batch, d_in)).astype(dtype), rng.integers(0, classes, batch)) for _ in range(count)]


def median_step_seconds(step: Any, data: list, seconds: float) -> float:
    """Median time per step over blocks of about BLOCK_SECONDS, for ``seconds`` in all, after a warm-up."""
    for X, y in data[:3]:
        step(X, y)
    t0 = time.perf_counter()
    for X, y in data:
        step(X, y)
    per_step = (time.perf_counter() - t0) / len(data)
    block = max(1, int(BLOCK_SECONDS / max(per_step, 1e-7)))
    samples, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end or len(samples) < 5:
        start = time.perf_counter()
        for i in range(block):
            step(*data[i % len(data)])
        samples.append((time.perf_counter() - start) / block)
    return statistics.median(samples)


def peak_bytes(make: Any, X: np.ndarray, y: np.ndarray) -> int:
    """Peak traced bytes of a second step (the first one's caches count), the parameters excluded."""
    step = make()
    tracemalloc.start()
    step(X, y)
    step(X, y)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def make_step(contender: str, spec: tuple, dtype: Any) -> Any:
    d_in, hidden, classes, batch = spec
    if contender == "chainrule":
        return framework_step(d_in, hidden, classes, dtype)
    if contender == "numpy":
        return numpy_step(d_in, hidden, classes, dtype)
    if contender == "matmul":
        return matmul_step(d_in, hidden, classes, dtype, batch)
    return torch_step(d_in, hidden, classes, dtype)


def time_steps(contender: str, seconds: float, cases: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for case in cases:
        name, dtype_name = case.split(":")
        spec, dtype = CONFIGS[name], DTYPES[dtype_name]
        step = make_step(contender, spec, dtype)
        if step is None:
            return {}
        data = batches(spec[0], spec[2], spec[3], dtype)
        if contender == "torch":
            import torch

            data = [(torch.from_numpy(X), torch.from_numpy(y)) for X, y in data]
        result = {"seconds": median_step_seconds(step, data, seconds)}
        if contender in ("chainrule", "numpy"):
            X, y = data[0]
            result["peak"] = peak_bytes(lambda: make_step(contender, spec, dtype), X, y)  # noqa: B023
        out[case] = result
    return out


def gemm(cases: list[str]) -> dict[str, float]:
    """GFLOP/s of a square n x n product, median of repeated runs."""
    out = {}
    for case in cases:
        n, dtype_name = case.split(":")
        size, dtype = int(n), DTYPES[dtype_name]
        rng = np.random.default_rng(0)
        A, B = rng.standard_normal((size, size)).astype(dtype), rng.standard_normal((size, size)).astype(dtype)
        C = np.empty_like(A)
        np.matmul(A, B, out=C)
        times = []
        for _ in range(7):
            t0 = time.perf_counter()
            np.matmul(A, B, out=C)
            times.append(time.perf_counter() - t0)
        out[case] = 2 * size**3 / statistics.median(times) / 1e9
    return out


TASKS = {  # name: (hidden widths, batch size, epochs)
    "digits": ([100], 32, 50),
    "mnist1d": ([256, 256], 100, 60),
}


def task_data(task: str) -> dict[str, np.ndarray]:
    """Train, validation (10% of the training rows: only chainrule's Solver looks at it) and test arrays."""
    from chainrule.data import hold_out_val, load_digits, load_mnist1d, split

    if task == "digits":
        data = split(*load_digits(), val_fraction=0.1, test_fraction=0.25, seed=0)
    else:
        data = hold_out_val(load_mnist1d(42), 0.1, 0)
    return {k: v.astype(np.float32) if k.startswith("X") else v for k, v in data.items()}


def fit_chainrule(data: dict, hidden: list[int], batch: int, epochs: int) -> Any:
    from layers import Affine, ReLU, Sequential
    from optim import Adam
    from solver import Solver

    rng = np.random.default_rng(0)
    dims = [data["X_train"].shape[1], *hidden, 10]
    layers: list[Any] = []
    for i, (d, m) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        layers += [Affine(d, m, rng=rng)] + ([ReLU()] if i < len(hidden) else [])
    model = Sequential(*layers)
    solver = Solver(model, data, loss="softmax", optimizer=Adam(lr=1e-3), batch_size=batch,
                    epochs=epochs, verbose=False, threads="auto")
    start = time.perf_counter()
    solver.train()
    seconds = time.perf_counter() - start
    return seconds, float(np.mean(solver.predict(data["X_test"]) == data["y_test"]))


def fit_sklearn(data: dict, hidden: list[int], batch: int, epochs: int) -> Any:
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=tuple(hidden), solver="adam", learning_rate_init=1e-3, batch_size=batch,
                        max_iter=epochs, alpha=0.0, tol=0.0, n_iter_no_change=10**9, random_state=0)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter reached is the plan
        clf.fit(data["X_train"], data["y_train"])
    seconds = time.perf_counter() - start
    return seconds, float(clf.score(data["X_test"], data["y_test"]))


def fit_torch(data: dict, hidden: list[int], batch: int, epochs: int) -> Any:
    import torch

    torch.manual_seed(0)
    dims = [data["X_train"].shape[1], *hidden, 10]
    modules: list[Any] = []
    for i, (d, m) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        modules += [torch.nn.Linear(d, m)] + ([torch.nn.ReLU()] if i < len(hidden) else [])
    net = torch.nn.Sequential(*modules)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    X, y = torch.from_numpy(data["X_train"]), torch.from_numpy(data["y_train"])
    generator = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(X), generator=generator)
        for i in range(0, len(X), batch):
            idx = order[i:i + batch]
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(net(X[idx]), y[idx]).backward()
            opt.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        pred = net(torch.from_numpy(data["X_test"])).argmax(dim=1).numpy()
    return seconds, float(np.mean(pred == data["y_test"]))


def accuracy(contender: str, task: str) -> dict[str, float]:
    hidden, batch, epochs = TASKS[task]
    data = task_data(task)
    fit = {"chainrule": fit_chainrule, "sklearn": fit_sklearn, "torch": fit_torch}[contender]
    seconds, acc = fit(data, hidden, batch, epochs)
    return {"seconds": seconds, "test_acc": acc}


def main(argv: list[str]) -> None:
    kind, *rest = argv
    if kind == "gemm":
        threads, cases = int(rest[0]), rest[1:]
        with threadpool_limits(limits=threads, user_api="blas"):
            print(json.dumps(gemm(cases)))
        return
    contender, threads = rest[0], int(rest[1])
    if contender == "torch":
        try:
            import torch
        except ImportError:
            print(json.dumps({}))
            return
        torch.set_num_threads(threads)
    with threadpool_limits(limits=threads):
        if kind == "step":
            print(json.dumps(time_steps(contender, float(rest[2]), rest[3:])))
        else:
            print(json.dumps(accuracy(contender, rest[2])))


if __name__ == "__main__":
    main(sys.argv[1:])
