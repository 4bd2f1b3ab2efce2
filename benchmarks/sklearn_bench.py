"""chainrule's scikit-learn estimators against scikit-learn's own, each fit in its own process (one BLAS thread):

- digits (classification): NetClassifier against MLPClassifier, the same split (a held-out quarter), scaling
  and hidden sizes (100,), model seeds 0, 1, 2: test accuracy and fit time;
- diabetes (regression): NetRegressor against Ridge and MLPRegressor, StandardScaler first, hidden sizes (100,),
  a held-out quarter drawn by each seed (the data has 442 rows, so one split says little): test R² and fit time.

    python benchmarks/sklearn_bench.py [--seeds 3] [--splits 5]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

#: contender -> (task, how it is built from a seed, as Python source for the table)
CONTENDERS = {
    "NetClassifier()": ("digits", "NetClassifier(random_state=seed)"),
    "MLPClassifier()": ("digits", "MLPClassifier(random_state=seed)"),
    "Ridge()": ("diabetes", "Ridge()"),
    "MLPRegressor()": ("diabetes", "MLPRegressor(random_state=seed)"),
    "MLPRegressor(max_iter=2000)": ("diabetes", "MLPRegressor(max_iter=2000, random_state=seed)"),
    "NetRegressor()": ("diabetes", "NetRegressor(random_state=seed)"),
    "NetRegressor(reg=1e-3, epochs=40, validation_fraction=0.1, patience=None)": (
        "diabetes", "NetRegressor(reg=1e-3, epochs=40, validation_fraction=0.1, patience=None, random_state=seed)"),
}


def solo(contender: str, seed: int) -> dict[str, float]:
    sys.path.insert(0, str(HERE.parent))
    from sklearn.datasets import load_diabetes, load_digits
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    from chainrule.sklearn import NetClassifier, NetRegressor

    task, source = CONTENDERS[contender]
    names: dict[str, Any] = {"NetClassifier": NetClassifier, "MLPClassifier": MLPClassifier, "Ridge": Ridge,
                             "MLPRegressor": MLPRegressor, "NetRegressor": NetRegressor, "seed": seed}
    model = eval(source, names)  # noqa: S307 - the table's own constructors, above
    if task == "digits":
        X, y = load_digits(return_X_y=True)
        split_seed = 0  # one split; the model's seed varies
    else:
        X, y = load_diabetes(return_X_y=True)
        split_seed = seed  # a new held-out quarter per seed
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=split_seed)
    pipe = make_pipeline(StandardScaler(), model)
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLPRegressor's ConvergenceWarning: its row says what it reached
        start = time.perf_counter()
        pipe.fit(X_train, y_train)
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "score": float(pipe.score(X_test, y_test))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="model seeds on digits (default 3)")
    parser.add_argument("--splits", type=int, default=5, help="held-out quarters of diabetes (default 5)")
    parser.add_argument("--solo", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.solo:
        print(json.dumps(solo(args.solo[0], int(args.solo[1]))))
        return
    for task, measure, runs in (("digits", "test accuracy", args.seeds), ("diabetes", "test R²", args.splits)):
        print(f"\n{task}: {measure} and fit seconds, seeds 0..{runs - 1}")
        print(f"{'estimator':>34}  {measure + ' per seed':<40}  {'mean':>6}  {'fit s':>6}")
        for contender in [c for c, (t, _) in CONTENDERS.items() if t == task]:
            results = []
            for seed in range(runs):
                out = subprocess.run([sys.executable, __file__, "--solo", contender, str(seed)],
                                     capture_output=True, text=True, check=True)
                results.append(json.loads(out.stdout.strip().splitlines()[-1]))
            scores = [r["score"] for r in results]
            seconds = sum(r["seconds"] for r in results) / len(results)
            shown = " ".join(f"{s:.3f}" for s in scores)
            print(f"{contender:>34}  {shown:<40}  {sum(scores) / len(scores):6.3f}  {seconds:6.2f}")


if __name__ == "__main__":
    main()
