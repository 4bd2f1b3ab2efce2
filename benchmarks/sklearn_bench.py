"""NetClassifier against scikit-learn's MLPClassifier on digits: test accuracy and fit time, the same split,
scaling and hidden sizes, each fit in its own process (one BLAS thread), seeds 0, 1, 2.

    python benchmarks/sklearn_bench.py [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def solo(contender: str, seed: int) -> dict[str, float]:
    sys.path.insert(0, str(HERE.parent))
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    from chainrule.sklearn import NetClassifier

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    model = (NetClassifier(hidden_layer_sizes=(100,), random_state=seed) if contender == "chainrule"
             else MLPClassifier(hidden_layer_sizes=(100,), random_state=seed))
    pipe = make_pipeline(StandardScaler(), model)
    with threadpool_limits(limits=1):
        start = time.perf_counter()
        pipe.fit(X_train, y_train)
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "accuracy": float(pipe.score(X_test, y_test))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--solo", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.solo:
        print(json.dumps(solo(args.solo[0], int(args.solo[1]))))
        return
    print(f"{'contender':>14}  {'seed':>4}  {'fit s':>6}  {'test accuracy':>13}")
    for seed in range(args.seeds):
        for contender in ("chainrule", "sklearn-mlp"):
            out = subprocess.run([sys.executable, __file__, "--solo", contender, str(seed)], capture_output=True,
                                 text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            name = "NetClassifier" if contender == "chainrule" else "MLPClassifier"
            print(f"{name:>14}  {seed:>4}  {r['seconds']:6.2f}  {r['accuracy']:13.4f}")


if __name__ == "__main__":
    main()
