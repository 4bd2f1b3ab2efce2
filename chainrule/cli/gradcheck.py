"""``python -m layers.gradcheck [MODULE ...]`` (also ``chainrule gradcheck``): check layers and losses by class.

Each class builds its own small case with ``example(rng, batch=3)``: the classmethod returns an
instance and a tuple of float64 inputs (``(scores, labels)`` for a loss). The default builds
``cls()`` with one input of shape (batch, 2, 3) for a layer and scores of shape (batch, 4) for a
loss; a class whose ``__init__`` needs arguments defines its own. Every class is checked at a batch
of 1 and of 3, for each seed, and a layer with parameters once more at parameter values drawn away
from its example's (``draw_params``: rows marked "params drawn").
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from pathlib import Path

from chainrule.build import build_objects, load_data
from chainrule.cli.shell import OneLineParser, quiet_on_broken_pipe
from chainrule.config import apply_sets, read_config, resolve, self_contained
from chainrule.usercode import import_config_modules, import_file, import_named
from layers import REGISTRY
from layers.gradcheck import HEADER, GradReport, format_table
from losses import LOSSES
from losses.gradcheck import check_case, check_objective, one_line


def builtin_classes() -> list[type]:
    layers = [c for c in REGISTRY.values() if c.__module__.startswith("layers.")]
    return layers + [c for c in LOSSES.values() if c.__module__.startswith("losses.")]


def module_classes(name: str) -> list[type]:
    """The registered Layer and Loss subclasses that module ``name`` defines: a module importable from the
    working directory (``mylayers``, ``mywork.mylayers``) or a file (``mywork/mylayers.py``)."""
    module = import_file(Path(name)) if name.endswith(".py") or "/" in name or "\\" in name else import_named(name)
    registered = {id(c) for c in (*REGISTRY.values(), *LOSSES.values())}
    return [c for c in vars(module).values()
            if inspect.isclass(c) and c.__module__ == module.__name__ and id(c) in registered]


def parser(prog: str = "python -m layers.gradcheck") -> OneLineParser:
    p = OneLineParser(
        prog=prog,
        description="Gradient-check layers and losses: the built-ins, or the Layer and Loss subclasses of the "
                    "named modules (importable from the working directory, or given as a file).",
        epilog=f"examples:\n  {prog}                    # every built-in layer and loss\n"
               f"  {prog} mylayers           # only the classes defined in mylayers.py\n"
               f"  {prog} mywork/myact.py    # a module given as a file\n"
               f"  {prog} --seeds 100 --json report.json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("modules", nargs="*", metavar="MODULE",
                   help="module defining Layer or Loss subclasses: a name (mylayers) or a file (mywork/mylayers.py)")
    p.add_argument("--builtins", action="store_true", help="check the built-ins too when modules are named")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the examples' inputs and of dout (default 0); each case draws from its own stream")
    p.add_argument("--seeds", type=int, default=1, metavar="N", help="repeat the whole check for seeds SEED..SEED+N-1")
    p.add_argument("--mode", choices=("train", "eval"), default="train", help="the layers' mode (default train)")
    p.add_argument("--json", metavar="PATH", help="also write every report as JSON")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def classes_for(args: argparse.Namespace) -> list[type]:
    classes = builtin_classes() if args.builtins or not args.modules else []
    for name in args.modules:
        try:
            found = module_classes(name)
        except Exception as e:  # the module is missing, or its own code failed: name it
            raise ImportError(f"cannot import module {name!r}: {type(e).__name__}: {one_line(e)}") from e
        if not found:
            raise ImportError(f"module {name!r} defines no Layer or Loss subclass")
        classes += [c for c in found if c not in classes]
    return classes


def summary(reports: list[tuple[int, int, GradReport]], classes: list[type], seeds: int) -> str:
    failed = sorted({r.layer for _, _, r in reports if not r.passed})
    tensors = sum(len(r.checks) for _, _, r in reports)
    losses = sum(c in LOSSES.values() for c in classes)
    kinds = f"{count(len(classes) - losses, 'layer')}, {count(losses, 'loss', 'losses')}"
    seeds_text = f", {count(seeds, 'seed')}" if seeds > 1 else ""
    verdict = f"FAILED: {', '.join(failed)}" if failed else "all passed"
    return f"\n{kinds}{seeds_text}, {count(len(reports), 'case')}, {count(tensors, 'tensor')} checked: {verdict}"


def count(n: int, one: str, many: str | None = None) -> str:
    """``n`` and the noun, singular for 1: "1 layer", "2 layers", "1 loss", "0 losses"."""
    return f"{n} {one if n == 1 else many or one + 's'}"


def main(argv: list[str] | None = None, prog: str = "python -m layers.gradcheck") -> int:
    args = parser(prog).parse_args(argv)
    if args.seeds < 1:
        print(f"{prog}: error: --seeds must be at least 1", file=sys.stderr)
        return 2
    if args.json and not Path(args.json).parent.is_dir():  # said before the checks, not after them
        print(f"{prog}: error: --json {args.json!r}: No such file or directory", file=sys.stderr)
        return 2
    try:
        classes = classes_for(args)
    except ImportError as e:
        if args.debug:
            raise
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    cases = [(seed, batch, check_case(cls, batch, seed, args.mode, drawn, variant))
             for seed in range(args.seed, args.seed + args.seeds) for cls in classes
             for variant in range(getattr(cls, "variants", 1)) for batch in (1, 3) for drawn in (False, True)]
    reports = [(seed, batch, report) for seed, batch, report in cases if report is not None]
    shown = [r for _, _, r in reports if args.seeds == 1 or not r.passed]
    rows = [row for r in shown for row in r.rows()]
    if rows:
        print(format_table([HEADER, *rows]))
    for note in sorted({n for _, _, r in reports for n in r.notes}):
        print(f"note: {note}")
    print(summary(reports, classes, args.seeds))
    if args.json:
        data = [{"seed": s, "batch": b, **r.as_dict()} for s, b, r in reports]
        try:
            Path(args.json).write_text(json.dumps(data, indent=1, default=float) + "\n")
        except OSError as e:
            print(f"{prog}: error: --json {args.json!r}: {e.strerror or e}", file=sys.stderr)
            return 2
    return 0 if all(r.passed for _, _, r in reports) else 1


def gradcheck_model(args: argparse.Namespace, rows: int = 4) -> int:
    """Check the config's whole objective (data loss + L2) against every parameter, in float64, on a few rows."""
    cfg = self_contained(resolve(apply_sets(read_config(args.config), [*args.set, 'model.dtype="float64"'])),
                         Path(args.config).parent)
    import_config_modules(cfg)
    data, _ = load_data(cfg)
    model, solver = build_objects(cfg, data)
    X, y = data["X_train"][:rows], data["y_train"][:rows]
    report = check_objective(model, solver.loss, X, y, reg=solver.objective.reg, rng=cfg["solver"]["seed"])
    print(format_table([HEADER, *report.rows()]))
    for note in report.notes:
        print(f"note: {note}")
    verdict = "all passed" if report.passed else "FAILED"
    print(f"\n{report.layer} on {len(y)} rows of the training data, float64: {len(report.checks)} tensors, {verdict}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(quiet_on_broken_pipe(main))
