"""Memory of an epoch over data larger than memory: a 2 GiB float32 training set (524,288 rows of 1,024
values) in a folder of .npy files, trained one epoch by `chainrule train` with the `npy` source (an MLP,
1024-64-10, batches of 256, standardized), with and without `solver.prefetch`.

    python benchmarks/npy_memory.py                 # writes the 2 GiB folder under a temporary folder
    python benchmarks/npy_memory.py --rows 65536    # a quick look (256 MiB)

Each training runs in its own process, which samples its own /proc/self/status every 20 ms: the peak of its
private memory (RssAnon: arrays, the model, Python) and of the file pages it has mapped (RssFile: pages of the
memory-mapped .npy the kernel keeps in its page cache and drops under memory pressure), and VmHWM (the two
together, what `ru_maxrss` and `/usr/bin/time -v` report).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
FEATURES, CLASSES = 1024, 10
CONFIG = """
[data]
source = "npy"
path = "{path}"
val_fraction = 0.02
test_fraction = 0.0
standardize = true
[model]
layers = [{{ type = "Affine", out_features = 64 }}, {{ type = "ReLU" }}, {{ type = "Affine" }}]
[optim]
type = "adam"
lr = 1e-3
[solver]
epochs = 1
batch_size = 256
threads = 2
prefetch = {prefetch}
[output]
dir = "{run}"
plot = false
"""


def write_folder(folder: Path, rows: int) -> None:
    """X_train.npy (rows x 1024 float32, written a block at a time) and y_train.npy (a linear rule's classes)."""
    rng = np.random.default_rng(0)
    direction = rng.standard_normal((FEATURES, CLASSES)).astype(np.float32)
    X = np.lib.format.open_memmap(folder / "X_train.npy", mode="w+", dtype=np.float32, shape=(rows, FEATURES))
    y = np.empty(rows, np.int64)
    for start in range(0, rows, 16384):
        block = rng.standard_normal((min(16384, rows - start), FEATURES), dtype=np.float32)
        X[start:start + len(block)] = block
        y[start:start + len(block)] = (block @ direction).argmax(axis=1)
    X.flush()
    del X
    np.save(folder / "y_train.npy", y)


def status() -> dict[str, int]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("RssAnon", "RssFile", "VmHWM"):
            fields[key] = int(value.split()[0]) // 1024  # MiB
    return fields


def solo(config: Path) -> dict[str, float]:
    """Train in this process, sampling its memory; the peaks and the seconds."""
    sys.path.insert(0, str(HERE.parent))
    peaks = {"RssAnon": 0, "RssFile": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for key, value in status().items():
                if key in peaks:
                    peaks[key] = max(peaks[key], value)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    from chainrule.cli import main

    start = time.perf_counter()
    code = main(["train", str(config)])
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    return {"code": code, "seconds": seconds, **peaks, "VmHWM": status()["VmHWM"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2**19)
    parser.add_argument("--solo", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.solo:
        print(json.dumps(solo(Path(args.solo))))
        return
    with tempfile.TemporaryDirectory(prefix="npy-memory-") as tmp:
        folder = Path(tmp) / "data"
        folder.mkdir()
        t0 = time.perf_counter()
        write_folder(folder, args.rows)
        size = (folder / "X_train.npy").stat().st_size / 2**20
        print(f"wrote {size:,.0f} MiB of X_train.npy in {time.perf_counter() - t0:.0f} s")
        rows = []
        for prefetch in ("false", "true"):
            config = Path(tmp) / f"train-{prefetch}.toml"
            config.write_text(CONFIG.format(path=folder, prefetch=prefetch, run=Path(tmp) / f"run-{prefetch}"))
            out = subprocess.run([sys.executable, __file__, "--solo", str(config)], capture_output=True, text=True,
                                 check=True)
            rows.append((prefetch, json.loads(out.stdout.strip().splitlines()[-1]),
                         json.loads((Path(tmp) / f"run-{prefetch}" / "metrics.json").read_text())))
    print(f"load average {os.getloadavg()[0]:.2f}; {args.rows:,} rows x {FEATURES} float32, one epoch, batches of "
          f"256, MLP 1024-64-10, standardized")
    print(f"{'prefetch':>8}  {'seconds':>7}  {'peak RssAnon MiB':>16}  {'peak RssFile MiB':>16}  {'VmHWM MiB':>9}  "
          f"{'val acc':>7}")
    for prefetch, row, metrics in rows:
        print(f"{prefetch:>8}  {row['seconds']:>7.1f}  {row['RssAnon']:>16,}  {row['RssFile']:>16,}  "
              f"{row['VmHWM']:>9,}  {metrics['best_val_acc']:>7.3f}")


if __name__ == "__main__":
    main()
