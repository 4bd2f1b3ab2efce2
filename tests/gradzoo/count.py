"""Count the gradient checker's false failures and misses over the zoo: python -m tests.gradzoo.count --seeds 50.

``--checker MODULE`` names the module whose ``gradcheck`` is used (default layers.gradcheck).
"""

import argparse
import importlib
import inspect

import numpy as np

from .broken import BROKEN
from .correct import CORRECT


def passes(gradcheck, cls, seed, batch):
    rng = np.random.default_rng((seed, batch))
    layer, inputs = cls.example(rng, batch=batch)
    kwargs = {"rng": seed} if "rng" in inspect.signature(gradcheck).parameters else {}
    try:
        return gradcheck(layer, *inputs, **kwargs).passed
    except Exception:
        return False


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--checker", default="layers.gradcheck")
    args = parser.parse_args()
    gradcheck = importlib.import_module(args.checker).gradcheck
    cases = [(s, b) for s in range(args.seeds) for b in (1, 3)]
    false_fail = {c.__name__: sum(not passes(gradcheck, c, s, b) for s, b in cases) for c in CORRECT}
    missed = {c.__name__: sum(passes(gradcheck, c, s, b) for s, b in cases) for c in BROKEN}
    print(f"{len(CORRECT)} correct and {len(BROKEN)} broken layers, {len(cases)} cases each ({args.seeds} seeds x "
          f"batch 1 and 3), checker {args.checker}")
    print(f"false failures: {sum(false_fail.values())} of {len(CORRECT) * len(cases)}  "
          + " ".join(f"{k}={v}" for k, v in false_fail.items() if v))
    print(f"misses: {sum(missed.values())} of {len(BROKEN) * len(cases)}  "
          + " ".join(f"{k}={v}" for k, v in missed.items() if v))


if __name__ == "__main__":
    main()
